import { execFileSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { parsePyIsoformat, pyIsoformat, pyStrDatetime, randomIds, systemClock } from '../../src/samples/clock.js';

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
