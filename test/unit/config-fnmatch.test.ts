import { execFileSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { fnmatch, fnmatchToRegExp } from '../../src/config/fnmatch.js';

// polling.yaml meter patterns are matched with Python's fnmatch (Zed: agent.py Source.is_supported).
// CPython itself is the oracle: one python3 process answers the whole table.

/** [name, pattern] */
const CASES: Array<[string, string]> = [
  // plain names and "*"
  ['memory.usage', 'memory.usage'],
  ['memory.usage', 'memory.usag'],
  ['memory.usage', 'Memory.usage'],
  ['memory.usage', '*'],
  ['', '*'],
  ['memory.usage', 'memory.*'],
  ['memory', 'memory.*'],
  ['memory.swap.in', 'memory.*'],
  ['memory.swap.in', 'memory.*.in'],
  ['memory.swap.in', '*.in'],
  ['memory.usage', '**'],
  ['memory.usage', 'mem*ry*'],
  ['disk.device.read.bytes', 'disk.*.bytes'],
  // "?" is exactly one character, "." included
  ['memory', 'memor?'],
  ['memory', 'memory?'],
  ['memoryX', 'memory?'],
  ['memory.usage', 'memory?usage'],
  // "." and other regex metacharacters are literal
  ['memoryXusage', 'memory.usage'],
  ['a+b', 'a+b'],
  ['aab', 'a+b'],
  ['a(b)c', 'a(b)c'],
  ['a$b', 'a$b'],
  ['a^b', 'a^b'],
  ['a|b', 'a|b'],
  ['a', 'a|b'],
  ['a{2}', 'a{2}'],
  ['aa', 'a{2}'],
  ['a\\b', 'a\\b'],
  ['a/b', 'a*b'],
  ['line\nbreak', 'line?break'],
  // brackets
  ['memory.swap.in', 'memory.swap.[io]*'],
  ['memory.swap.out', 'memory.swap.[io]*'],
  ['memory.swap.x', 'memory.swap.[io]*'],
  ['memory.swap.x', 'memory.swap.[!io]*'],
  ['memory.swap.in', 'memory.swap.[!io]*'],
  ['cpu1', 'cpu[0-9]'],
  ['cpua', 'cpu[0-9]'],
  ['cpu-', 'cpu[a-]'],
  ['cpu-', 'cpu[-a]'],
  ['cpub', 'cpu[-a]'],
  ['cpu]', 'cpu[]]'],
  ['cpu]', 'cpu[!]]'],
  ['cpux', 'cpu[!]]'],
  ['cpu[', 'cpu['],
  ['cpu[x', 'cpu[x'],
  ['cpu!', 'cpu[!]'],
  ['cpu[!]', 'cpu[!]'],
  ['b', '[z-a]'],
  ['b', '[!z-a]'],
  ['a', '[az-ab]'],
  ['b', '[az-ab]'],
  ['z', '[az-ab]'],
  ['-', '[a-c-e]'],
  ['d', '[a-c-e]'],
  ['e', '[a-c-e]'],
  ['^', '[^a]'],
  ['b', '[^a]'],
  ['\\', '[\\]'],
  ['&', '[&&]'],
  ['~', '[a~~]'],
  ['|', '[||]'],
  ['[', '[[]'],
  ['.', '[.]'],
  ['x', '[.]'],
  ['b', '[a-c]x'],
  ['bx', '[a-c]x'],
  ['é', '?'],
  ['😀', '?'],
  ['😀x', '[😀]x'],
];

function pythonAnswers(cases: Array<[string, string]>): boolean[] {
  const script = 'import sys, json, fnmatch\nprint(json.dumps([fnmatch.fnmatchcase(n, p) for n, p in json.load(sys.stdin)]))';
  const out = execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(cases) });
  return JSON.parse(out.toString()) as boolean[];
}

describe('fnmatch: the same answers as CPython fnmatch.fnmatchcase', () => {
  const expected = pythonAnswers(CASES);

  it(`agrees on all ${CASES.length} cases`, () => {
    const ours = CASES.map(([name, pattern]) => fnmatch(name, pattern));
    const differences = CASES.flatMap(([name, pattern], i) => (ours[i] === expected[i] ? [] : [{ name, pattern, python: expected[i], ours: ours[i] }]));
    expect(differences).toEqual([]);
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    // the table exercises both outcomes
    expect(expected.filter(Boolean).length).toBeGreaterThan(10);
    expect(expected.filter((x) => !x).length).toBeGreaterThan(10);
  });
});

describe('fnmatch: the semantics polling.yaml relies on', () => {
  it('"*" spans dots', () => {
    expect(fnmatch('memory.swap.in', 'memory.*')).toBe(true);
    expect(fnmatch('memory', 'memory.*')).toBe(false);
  });

  it('is case-sensitive', () => {
    expect(fnmatch('memory.usage', 'MEMORY.*')).toBe(false);
  });

  it('matches the whole name', () => {
    expect(fnmatch('memory.usage.extra', 'memory.usage')).toBe(false);
    expect(fnmatch('xmemory.usage', 'memory.usage')).toBe(false);
  });

  it('compiles each pattern once', () => {
    expect(fnmatchToRegExp('memory.*')).toBe(fnmatchToRegExp('memory.*'));
  });
});
