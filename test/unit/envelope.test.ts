// The oslo.messaging 2.0 envelope around a batch of samples (ceilometer-wire.md §4.1, §4.2): every AMQP
// body the real Ceilometer 19 (Zed) polling agent sent must come out of buildNotification +
// encodeNotification byte for byte, given the ids and clock it used.

import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { batchSamples, buildNotification, encodeNotification, notificationMessage } from '../../src/publish/envelope.js';
import { parsePyIsoformat, type Clock, type IdSource } from '../../src/samples/clock.js';
import type { PyDict, PyValue } from '../../src/samples/pyjson.js';
import { GOLDEN, asDict, bodies, parsePythonJson } from '../support/golden.js';

/** Replays fixed ids and a fixed wall clock, as the captured message had them. */
function replay(messageId: string, uniqueId: string, timestamp: string): { ids: IdSource; clock: Clock } {
  return {
    ids: {
      sampleId: () => {
        throw new Error('a notification takes no sample id');
      },
      messageId: () => messageId,
      uniqueId: () => uniqueId,
    },
    clock: { nowMicros: () => parsePyIsoformat(timestamp), monotonicSeconds: () => 0 },
  };
}

const sample = (meter: string, n: number): PyDict => ({ counter_name: meter, resource_id: `vm-${n}` });

describe('golden bodies are rebuilt byte for byte', () => {
  it.each(bodies)('$name', (body) => {
    const inner = asDict(parsePythonJson(asDict(parsePythonJson(body.raw), 'envelope')['oslo.message'] as string), 'oslo.message');
    const samples = (asDict(inner['payload'] as PyValue, 'payload')['samples'] as PyValue[]).map((s) => asDict(s, 'sample'));
    const meter = samples[0]!['counter_name'] as string;
    const { ids, clock } = replay(inner['message_id'] as string, inner['_unique_id'] as string, inner['timestamp'] as string);

    const ours = encodeNotification(buildNotification(meter, samples, ids, clock));

    expect(ours.equals(readFileSync(`${GOLDEN}${body.name}`))).toBe(true);
  });

  it('covers both captures (24 bodies)', () => {
    expect(bodies.length).toBe(24);
  });
});

describe('the inner message', () => {
  const { ids, clock } = replay('0e1b5f3c-0000-4000-8000-000000000000', '5d0c'.padEnd(32, '0'), '2024-05-01 12:00:00.234567');

  it('has oslo\'s keys in Python\'s insertion order, priority upper case, no context keys', () => {
    const msg = notificationMessage(buildNotification('memory.usage', [sample('memory.usage', 1)], ids, clock));
    expect(Object.keys(msg)).toEqual(['message_id', 'publisher_id', 'event_type', 'priority', 'payload', 'timestamp', '_unique_id']);
    expect(msg).toMatchObject({ publisher_id: 'ceilometer.polling', event_type: 'telemetry.polling', priority: 'SAMPLE', timestamp: '2024-05-01 12:00:00.234567' });
  });

  it('writes the timestamp as str(datetime), without a fraction when microseconds are 0', () => {
    const whole = { nowMicros: () => Date.UTC(2024, 4, 1, 12) * 1000, monotonicSeconds: () => 0 };
    expect(buildNotification('memory.usage', [sample('memory.usage', 1)], ids, whole).timestamp).toBe('2024-05-01 12:00:00');
  });

  it('double-encodes like Python: the inner JSON is a string, escaped again, all ASCII', () => {
    const n = buildNotification('m', [{ counter_name: 'm', n: 'é\u2028😀\x7f' }], ids, clock);
    const body = encodeNotification(n).toString('latin1');
    // json.dumps({'oslo.version': '2.0', 'oslo.message': json.dumps({... 'n': 'é\u2028😀\x7f'})}) in CPython 3.11
    expect(body).toContain('\\"n\\": \\"\\\\u00e9\\\\u2028\\\\ud83d\\\\ude00\\\\u007f\\"');
    expect(body.startsWith('{"oslo.version": "2.0", "oslo.message": "{\\"message_id\\": ')).toBe(true);
    expect(/^[\x20-\x7e]*$/.test(body)).toBe(true);
  });
});

describe('batching: per pollster run, [polling] batch_size', () => {
  const run = Array.from({ length: 120 }, (_, i) => sample('memory.usage', i));

  it.each([
    [50, [50, 50, 20]],
    [0, Array<number>(120).fill(1)],
    [500, [120]],
    [120, [120]],
    [1, Array<number>(120).fill(1)],
  ])('batch_size %i gives batches of %j, in order', (size, lengths) => {
    const batches = batchSamples(run, size);
    expect(batches.map((b) => b.length)).toEqual(lengths);
    expect(batches.flat()).toEqual(run);
  });

  it('defaults to 50', () => {
    expect(batchSamples(run).map((b) => b.length)).toEqual([50, 50, 20]);
  });

  it('sends nothing for a run with no samples', () => {
    expect(batchSamples([], 50)).toEqual([]);
  });

  it('refuses a negative or fractional batch_size', () => {
    expect(() => batchSamples(run, -1)).toThrow(/batch_size -1/);
    expect(() => batchSamples(run, 2.5)).toThrow(/batch_size 2.5/);
  });

  it('never mixes meters: each pollster run is batched on its own, and a notification refuses another meter', () => {
    const { ids, clock } = replay('m', 'u', '2024-05-01 12:00:00');
    const runs = { 'memory.usage': run.slice(0, 60), 'memory.resident': run.slice(0, 60).map((s) => ({ ...s, counter_name: 'memory.resident' })) };
    const notifications = Object.entries(runs).flatMap(([meter, samples]) =>
      batchSamples(samples, 50).map((batch) => buildNotification(meter, batch, ids, clock)),
    );
    expect(notifications.map((n) => [n.meter, n.samples.length])).toEqual([
      ['memory.usage', 50], ['memory.usage', 10], ['memory.resident', 50], ['memory.resident', 10],
    ]);
    for (const n of notifications) expect(new Set(n.samples.map((s) => s['counter_name']))).toEqual(new Set([n.meter]));

    expect(() => buildNotification('memory.usage', [sample('memory.usage', 1), sample('memory.resident', 2)], ids, clock))
      .toThrow(/sample 1 is "memory.resident"; a notification carries one meter/);
  });

  it('refuses an empty notification (the agent drops it silently; Zed never sends one)', () => {
    const { ids, clock } = replay('m', 'u', '2024-05-01 12:00:00');
    expect(() => buildNotification('memory.usage', [], ids, clock)).toThrow(/no samples/);
  });
});
