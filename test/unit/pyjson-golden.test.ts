import { describe, expect, it } from 'vitest';

import { PyFloat, pyJsonDumps, type PyDict, type PyValue } from '../../src/samples/pyjson.js';
import { DEFAULT_TELEMETRY_SECRET, computeSignature, verifySignature } from '../../src/samples/signature.js';
import { asDict, bodies, parsePythonJson, type Body } from '../support/golden.js';

// Raw AMQP bodies the real Ceilometer 19 (Zed) polling agent published, copied from the shared golden
// captures (golden/README.md): each must come out of pyJsonDumps byte for byte, and each sample's
// message_signature must be what computeSignature gives with Zed's default secret.

function samplesOf(body: Body): PyDict[] {
  const envelope = asDict(parsePythonJson(body.raw), `${body.name} envelope`);
  const inner = asDict(parsePythonJson(envelope['oslo.message'] as string), `${body.name} oslo.message`);
  const payload = asDict(inner['payload'] as PyValue, `${body.name} payload`);
  return (payload['samples'] as PyValue[]).map((s, i) => asDict(s, `${body.name} sample ${i}`));
}

describe('golden captures of Ceilometer 19 (Zed) re-serialise byte for byte', () => {
  it('has the captured bodies', () => {
    expect(bodies.length).toBe(24);
  });

  it.each(bodies)('$name: envelope and inner oslo.message', (body) => {
    const envelope = parsePythonJson(body.raw);
    expect(pyJsonDumps(envelope)).toBe(body.raw);
    const message = asDict(envelope, body.name)['oslo.message'];
    expect(typeof message).toBe('string');
    expect(pyJsonDumps(parsePythonJson(message as string))).toBe(message);
  });
});

describe('golden captures: every message_signature is computeSignature with the default secret', () => {
  it.each(bodies)('$name', (body) => {
    const samples = samplesOf(body);
    expect(samples.length).toBe(3);
    for (const sample of samples) {
      const { message_signature: claimed, ...unsigned } = sample;
      expect(computeSignature(sample, DEFAULT_TELEMETRY_SECRET)).toBe(claimed);
      expect(computeSignature(unsigned, DEFAULT_TELEMETRY_SECRET)).toBe(claimed);
      expect(verifySignature(sample, DEFAULT_TELEMETRY_SECRET)).toBe(true);
    }
  });

  it('would not verify had the volumes been written as ints (0 instead of 0.0)', () => {
    const zero = bodies.flatMap(samplesOf).find((s) => (s['counter_volume'] as PyFloat).value === 0)!;
    expect(zero['counter_volume']).toBeInstanceOf(PyFloat);
    expect(verifySignature({ ...zero, counter_volume: 0 }, DEFAULT_TELEMETRY_SECRET)).toBe(false);
  });
});
