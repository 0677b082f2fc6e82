// NotificationEncoder (the cycle's fast path) against the reference path it replaces: toWireSample ->
// buildNotification -> encodeNotification, which the golden captures and the CPython property tests
// pin down. Same inputs, same ids, same clock: the same bytes, for every case below and for a
// seeded random mix of awkward strings, numbers, states and options.

import { describe, expect, it } from 'vitest';

import type { Instance } from '../../src/discovery/instance.js';
import { DomainState } from '../../src/libvirt/protocol.js';
import { NotificationEncoder, type EncodedNotification } from '../../src/publish/notification-encoder.js';
import type { Clock, IdSource } from '../../src/samples/clock.js';
import type { Sample, SampleOptions } from '../../src/samples/sample.js';
import { VECTOR_INSTANCE, VECTOR_OPTIONS, vectorSample } from '../support/sample-vector.js';

const base = VECTOR_INSTANCE;
const opts = VECTOR_OPTIONS;
const sample = vectorSample;

/** A deterministic IdSource and Clock: two of them made alike hand out the same values in the same order. */
function fixed(): { ids: IdSource; clock: Clock } {
  let n = 0;
  let t = 1_795_702_979_905_717;
  const hex = (k: number): string => k.toString(16).padStart(12, '0');
  return {
    ids: {
      sampleId: () => `6c3a6c52-07d4-11ef-9f0a-${hex(++n)}`,
      messageId: () => `0d4f5a2e-1111-4222-8333-${hex(++n)}`,
      uniqueId: () => `ab${hex(++n)}${hex(n)}cdef`.slice(0, 32),
    },
    clock: { nowMicros: () => (t += 1234), monotonicSeconds: () => 8812.345678912 },
  };
}

/** Both paths on equal footing; returns both results (or both errors). */
function both(o: SampleOptions, meter: string, samples: Sample[]): { fast: EncodedNotification; ref: EncodedNotification } {
  const a = fixed();
  const b = fixed();
  const fast = new NotificationEncoder(o, a.ids, a.clock).encode(meter, samples);
  const ref = new NotificationEncoder(o, b.ids, b.clock).encodeReference(meter, samples);
  return { fast, ref };
}

function expectSame(o: SampleOptions, meter: string, samples: Sample[]): EncodedNotification {
  const { fast, ref } = both(o, meter, samples);
  expect(fast.body.toString('latin1')).toBe(ref.body.toString('latin1'));
  expect(fast.uniqueId).toBe(ref.uniqueId);
  expect(fast.sampleIds).toEqual(ref.sampleIds);
  return fast;
}

const inner = (e: EncodedNotification): { payload: { samples: Array<Record<string, unknown>> } } =>
  JSON.parse((JSON.parse(e.body.toString('utf8')) as Record<string, string>)['oslo.message']!) as { payload: { samples: Array<Record<string, unknown>> } };

describe('NotificationEncoder', () => {
  it('writes the reference bytes for a batch, signatures included (the §5 vector)', () => {
    const s = sample(base);
    const e = expectSame(opts, 'memory.usage', [s, sample(base, { id: '6c3a6c52-07d4-11ef-9f0a-525400123457', volume: 1024 })]);
    const samples = inner(e).payload.samples;
    expect(samples[0]!['message_signature']).toBe('942b44468de96574ccc99ffe4df6b24510f8408ec1129ebab7d1487062f93a91');
    expect(samples[1]!['counter_volume']).toBe(1024);
    expect(e.body.toString('latin1')).toContain('\\"counter_volume\\": 1024.0,');
  });

  it('with user_name/project_name, without a secret, for every power state, monotonic_time None', () => {
    for (const state of [0, 1, 2, 3, 4, 5, 6, 7, 42]) {
      expectSame({ ...opts, nameKeys: true }, 'memory.usage', [sample(base, { state })]);
      expectSame({ ...opts, secret: '' }, 'memory.usage', [sample(base, { state, monotonicTime: null })]);
    }
  });

  it('caches per instance and power state: a state change or a new instance object shows at once', () => {
    const a = fixed();
    const b = fixed();
    const enc = new NotificationEncoder(opts, a.ids, a.clock);
    const ref = new NotificationEncoder(opts, b.ids, b.clock);
    const batches = [[sample(base)], [sample(base, { state: DomainState.PAUSED })], [sample({ ...base, displayName: 'renamed' })], [sample(base)]];
    const out = batches.map((batch) => {
      const e = enc.encode('memory.usage', batch);
      expect(e.body.toString('latin1')).toBe(ref.encodeReference('memory.usage', batch).body.toString('latin1'));
      return inner(e).payload.samples[0]!['resource_metadata'] as Record<string, unknown>;
    });
    expect(out.map((m) => m['status'])).toEqual(['active', 'paused', 'active', 'active']);
    expect(out.map((m) => m['display_name'])).toEqual(['test.dom.com', 'test.dom.com', 'renamed', 'test.dom.com']);
  });

  it('handles pre-images beyond its first scratch buffer, and ids and timestamps that JSON must escape, as the reference does', () => {
    // a 40 000-character display name: each pre-image is beyond the signer's first 16 KiB
    const big = { ...base, displayName: 'é'.repeat(20_000) + 'x'.repeat(20_000) };
    const many = Array.from({ length: 60 }, (_, k) => sample(k % 2 === 0 ? big : base, { id: `6c3a6c52-07d4-11ef-9f0a-${k.toString().padStart(12, '0')}` }));
    const a = fixed();
    const b = fixed();
    const enc = new NotificationEncoder(opts, a.ids, a.clock);
    const ref = new NotificationEncoder(opts, b.ids, b.clock);
    // the same encoder before and after its scratch grew: small, large, small again
    for (const batch of [[sample(base)], many, [sample(base)]]) {
      const fast = enc.encode('memory.usage', batch);
      expect(fast.body.toString('latin1')).toBe(ref.encodeReference('memory.usage', batch).body.toString('latin1'));
    }
    expect(enc.encode('memory.usage', many).body.length).toBeGreaterThan(1_000_000);
    // ids and timestamps are written into the JSON as they are only when they need no escaping
    expectSame(opts, 'memory.usage', [sample(base, { id: 'quote"and\\backslash' })]);
    expectSame(opts, 'memory.usage', [sample(base, { id: '6c3a6c52-07d4-11ef-9f0a-5254001234ü6', timestamp: '2024-05-01T12:00:00.12345ß' })]);
  });

  it('falls back to the reference path where it must: NaN volumes, a lone surrogate, a non-UTF-8 secret', () => {
    expectSame(opts, 'memory.usage', [sample(base, { volume: NaN })]);
    expectSame(opts, 'memory.usage', [sample(base, { volume: Infinity, monotonicTime: -Infinity })]);
    const lone = { ...base, displayName: 'bad \ud800 name' };
    expect(() => both(opts, 'memory.usage', [sample(lone)]).fast).toThrow(TypeError);
    expect(() => both({ ...opts, secret: 'x\udc00' }, 'memory.usage', [sample(base)]).fast).toThrow(TypeError);
    // the reference path's own checks: an empty batch, a sample of another meter
    expect(() => both(opts, 'memory.usage', []).fast).toThrow(/no samples/);
    expect(() => both(opts, 'memory.usage', [sample(base, { name: 'memory.resident' })]).fast).toThrow(/carries one meter/);
  });

  it('matches the reference on 3000 seeded random samples with awkward strings and numbers', () => {
    let seed = 20261126;
    const rnd = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const strings = ['plain', 'with "quotes"', 'back\\slash', 'tab\tnew\nline\r', 'ctl\u0001\u001f\u007f', 'é café', '日本語', '🎉 emoji',
      '</script>', '', ' ', 'a/b', '\u2028\u2029', 'x'.repeat(300)];
    const numbers = [0, 1, 1024, 0.5, 610.98828125, 1e-5, 1.5e-7, 123456789.123, 1e16, 1.7976931348623157e308, -0, -12.5, 5e-324];
    const instances = Array.from({ length: 40 }, (_, i): Instance => ({
      ...base,
      uuid: `a75c2fa5-6c03-45a8-bbf7-${i.toString().padStart(12, '0')}`,
      domainName: pick(strings) || `instance-${i}`,
      displayName: pick(strings),
      flavor: { id: pick(strings), name: pick(strings), vcpus: pick([1, 2, 64]), ram: pick([64, 512, 131072]), disk: pick([0, 1, 20]), ephemeral: pick([0, 1]), swap: pick([0, 512]) },
      userId: pick(['a1f4684e58bd4c88aefd2ecb0783b497', ...strings]),
      projectId: pick(['d99c829753f64057bc0f2030da309943', ...strings]),
      imageId: pick([null, 'bdaf114a-35e9-4163-accd-226d5944bf11', 'é']),
      osType: pick(['hvm', 'linux', '']),
      arch: pick(['x86_64', 'aarch64', 'ü']),
    }));
    let checked = 0;
    while (checked < 3000) {
      const o: SampleOptions = { host: pick(['compute-1', 'höst', 'a"b']), source: pick(['openstack', 'src"\\', 'ü']), secret: pick([opts.secret, '', 'sécret', 'k'.repeat(100)]), unit: pick(['MB', 'MiB']), nameKeys: rnd() < 0.5 };
      const meter = pick(['memory.usage', 'memory.resident', 'memory.swap.in']);
      const n = 1 + Math.floor(rnd() * 12);
      const samples = Array.from({ length: n }, (_, k) => sample(pick(instances), {
        name: meter,
        type: pick(['gauge', 'cumulative']),
        unit: o.unit,
        volume: pick(numbers) * (rnd() < 0.5 ? 1 : rnd()),
        state: Math.floor(rnd() * 9),
        timestamp: pick(['2024-05-01T12:00:00.123456', '2024-05-01T12:00:00']),
        id: `6c3a6c52-07d4-11ef-9f0a-${k.toString().padStart(12, '0')}`,
        monotonicTime: rnd() < 0.2 ? null : rnd() * 1e6,
      }));
      expectSame(o, meter, samples);
      checked += n;
    }
  });
});
