import { execFileSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { parsePyIsoformat, pyIsoformat, pyStrDatetime, randomIds, systemClock, uuid1Generator } from '../../src/samples/clock.js';

describe('Python datetime formats', () => {
  it('match Python for microsecond, millisecond and whole-second times', () => {
    const cases = [1_795_702_979_905_717, 1_795_702_979_000_000, 1_795_702_979_000_001, 0, 951_782_400_123_000];
    const py = execFileSync('python3', ['-c', `
import sys, datetime
for line in sys.stdin:
    us = int(line)
    d = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=us)
    print(d.isoformat() + "|" + str(d))
`], { input: cases.join('\n') + '\n' }).toString().trim().split('\n');
    expect(cases.map((us) => `${pyIsoformat(us)}|${pyStrDatetime(us)}`)).toEqual(py);
  });

  it('round-trips through parsePyIsoformat', () => {
    for (const us of [1_795_702_979_905_717, 1_795_702_979_000_000]) expect(parsePyIsoformat(pyIsoformat(us))).toBe(us);
    expect(() => parsePyIsoformat('2026-11-26T14:22:59Z')).toThrow(/not a Python naive datetime/);
  });
});

describe('ids and clocks', () => {
  it('sample ids are time-based uuid1, message ids uuid4, unique ids 32 hex digits', () => {
    expect(randomIds.sampleId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(randomIds.messageId()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(randomIds.uniqueId()).toMatch(/^[0-9a-f]{32}$/);
  });

  it('the wall clock is within a second of Date.now(); the monotonic clock agrees with Python\'s', () => {
    expect(Math.abs(systemClock.nowMicros() / 1000 - Date.now())).toBeLessThan(1000);
    const ours = systemClock.monotonicSeconds();
    const py = Number(execFileSync('python3', ['-c', 'import time; print(time.monotonic())']).toString());
    expect(Math.abs(py - ours)).toBeLessThan(5);
  });
});

describe('uuid1Generator', () => {
  // Python's uuid.UUID(s): version, variant, the 60-bit time (100 ns since 1582-10-15), clock_seq, node
  const pyFields = (ids: string[]): string[] => execFileSync('python3', ['-c', `
import sys, uuid
for line in sys.stdin:
    u = uuid.UUID(line.strip())
    print(u.version, u.variant == uuid.RFC_4122, u.time, u.clock_seq, '%012x' % u.node, u.node >> 40 & 1)
`], { input: ids.join('\n') + '\n' }).toString().trim().split('\n');
  const ticks = (ms: number, count: number): string => ((BigInt(ms) + 12219292800000n) * 10000n + BigInt(count)).toString();
  const fixedRandom = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => 0xa0 + i);

  it('encodes the clock in ms plus a counter within the ms, as Python reads it back', () => {
    let now = 1_795_702_979_905;
    const next = uuid1Generator(() => now, fixedRandom);
    const ids = [next(), next(), next()];
    now += 1;
    ids.push(next());
    now = 4_102_444_800_000; // 2100-01-01: the high time bits
    ids.push(next());
    const fields = pyFields(ids).map((l) => l.split(' '));
    expect(fields.map((f) => f[0])).toEqual(['1', '1', '1', '1', '1']);
    expect(fields.map((f) => f[1])).toEqual(['True', 'True', 'True', 'True', 'True']);
    expect(fields.map((f) => f[2])).toEqual([
      ticks(1_795_702_979_905, 0), ticks(1_795_702_979_905, 1), ticks(1_795_702_979_905, 2),
      ticks(1_795_702_979_906, 0), ticks(4_102_444_800_000, 0),
    ]);
    // node from the random bytes with the multicast bit set, clock sequence from the next two (14 bits)
    expect(new Set(fields.map((f) => `${f[3]} ${f[4]} ${f[5]}`))).toEqual(new Set([`${((0xa6 << 8) | 0xa7) & 0x3fff} a1a1a2a3a4a5 1`]));
  });

  it('stays unique past 10 000 ids in one ms and when the clock steps back', () => {
    let now = 1_795_702_979_905;
    const next = uuid1Generator(() => now, fixedRandom);
    const ids: string[] = [];
    for (let i = 0; i < 25_000; i++) ids.push(next());
    now -= 5_000; // the clock stepped back 5 s
    for (let i = 0; i < 100; i++) ids.push(next());
    expect(new Set(ids).size).toBe(ids.length);
    const fields = pyFields([ids[9_999]!, ids[10_000]!, ids[24_999]!, ids[25_000]!]).map((l) => l.split(' '));
    expect(fields.map((f) => f[2])).toEqual([ticks(1_795_702_979_905, 9_999), ticks(1_795_702_979_906, 0), ticks(1_795_702_979_907, 4_999), ticks(1_795_702_979_905 - 5_000, 0)]);
    expect(Number(fields[3]![3])).toBe((Number(fields[2]![3]) + 1) & 0x3fff);
  });

  it('follows the real clock', () => {
    const before = Date.now();
    const id = uuid1Generator()();
    const [f] = pyFields([id]).map((l) => l.split(' '));
    const ms = Number(BigInt(f![2]!) / 10000n) - 12219292800000;
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(Date.now());
  });
});
