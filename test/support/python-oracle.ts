// Shared by the property tests that use CPython as the oracle: a seeded generator, and a tagged
// encoding of Python values (floats as their 64 bits, ints as decimal text) that a Python snippet
// turns back into exactly the same values (PY_DECODE defines `dec`).

import { PyFloat, type PyValue } from '../../src/samples/pyjson.js';

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  float(): number {
    return this.next();
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  u32(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  hex(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[this.int(0, 15)];
    return s;
  }
}

const f64 = new DataView(new ArrayBuffer(8));
export const floatBits = (x: number): string => {
  f64.setFloat64(0, x);
  return f64.getBigUint64(0).toString(16).padStart(16, '0');
};

export type Tagged = [string] | [string, unknown];

export function tag(v: PyValue): Tagged {
  if (v === null) return ['N'];
  if (typeof v === 'boolean') return [v ? 'T' : 'F'];
  if (typeof v === 'string') return ['s', v];
  if (typeof v === 'number' || typeof v === 'bigint') return ['i', v.toString()];
  if (v instanceof PyFloat) return ['f', floatBits(v.value)];
  if (Array.isArray(v)) return ['l', (v as readonly PyValue[]).map(tag)];
  const entries: [string, PyValue][] = v instanceof Map ? [...(v as Map<string, PyValue>)] : Object.entries(v);
  return ['d', entries.map(([k, x]) => [k, tag(x)])];
}

export const PY_DECODE = String.raw`
import sys, json, struct
def dec(t):
    k = t[0]
    if k == 'N': return None
    if k == 'T': return True
    if k == 'F': return False
    if k == 's': return t[1]
    if k == 'i': return int(t[1])
    if k == 'f': return struct.unpack('>d', bytes.fromhex(t[1]))[0]
    if k == 'l': return [dec(x) for x in t[1]]
    if k == 'd': return {kk: dec(vv) for kk, vv in t[1]}
    raise ValueError(k)
`;

/** Zed's publisher/utils.py decode_unicode (§5): str values become bytes, dicts get sorted keys. */
export const PY_DECODE_UNICODE = String.raw`
def decode_unicode(input):
    if isinstance(input, dict):
        temp = {}
        for key, value in sorted(input.items()):
            temp[decode_unicode(key)] = decode_unicode(value)
        return temp
    elif isinstance(input, (tuple, list)):
        return [decode_unicode(element) for element in input]
    elif isinstance(input, str):
        return input.encode('utf-8')
    elif isinstance(input, bytes):
        return input.decode('utf-8')
    else:
        return input
`;
