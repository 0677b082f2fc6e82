import { execFileSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import {
  PyFloat,
  compareCodePoints,
  pyFloat,
  pyFloatRepr,
  pyJsonDumps,
  pyStr,
  type PyValue,
} from '../../src/samples/pyjson.js';
import { PY_DECODE, PY_DECODE_UNICODE, Rng, tag } from '../support/python-oracle.js';

// Property tests run CPython itself as the oracle: one python3 process per batch, values passed on stdin
// as a tagged tree (floats as their 64 bits, ints as decimal text) so Python rebuilds them exactly.
// PYJSON_SEED reproduces a failing run.
const SEED = Number(process.env.PYJSON_SEED ?? 0x5eed_2024);

const f64 = new DataView(new ArrayBuffer(8));
const fromBits = (hi: number, lo: number): number => {
  f64.setUint32(0, hi);
  f64.setUint32(4, lo);
  return f64.getFloat64(0);
};
const nextAfter = (x: number, up: boolean): number => {
  f64.setFloat64(0, x);
  const bits = f64.getBigInt64(0);
  f64.setBigInt64(0, bits + ((x >= 0) === up ? 1n : -1n));
  return f64.getFloat64(0);
};

/** Runs a Python snippet with `input` as JSON on stdin; the snippet writes one JSON value to stdout. */
function python<T>(script: string, input: unknown): T {
  // Non-ASCII is escaped so the bytes on the pipe do not depend on Python's locale.
  const text = JSON.stringify(input).replace(
    /[\u007f-\uffff]/g,
    (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'),
  );
  const out = execFileSync('python3', ['-c', PY_DECODE + script], {
    input: text,
    maxBuffer: 256 * 1024 * 1024,
    encoding: 'utf8',
  });
  return JSON.parse(out) as T;
}

// ---- generators --------------------------------------------------------------------------------------

function specialDoubles(): number[] {
  const xs = [
    0, -0, 1, -1, 0.1, 0.2, 0.3, 1 / 3, 2 / 3, 610.984375, 1024, 45.01953125, 1728.049411247, 2497.92954049,
    5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308, -1.7976931348623157e308,
    1e16, 1e16 - 2, 9999999999999998, 1e16 + 2, 1.5e16, 1e15, 1e17, 2 ** 53, 2 ** 53 + 2, 2 ** 63, 2 ** 64, 1e21, 1e22, 1e23,
    1e-4, 1e-5, 9.999999999999999e-5, 0.00011, 0.000099, 1e-6, 1e-7, 1.5e-7, 123456789012345680000,
    Number.EPSILON, Number.MAX_SAFE_INTEGER, Number.MIN_VALUE, NaN, Infinity, -Infinity,
  ];
  return xs.flatMap((x) => [x, nextAfter(x, true), nextAfter(x, false)]);
}

function randomDouble(rng: Rng): number {
  const sign = rng.chance(0.5) ? -1 : 1;
  switch (rng.int(0, 6)) {
    case 0:
      return fromBits(rng.u32(), rng.u32()); // any bit pattern: subnormals, huge, NaN, infinities
    case 1: {
      // short decimals around every exponent, where repr's digit choice is easiest to get wrong
      const digits = String(rng.int(1, 99_999_999)).slice(0, rng.int(1, 8));
      return sign * Number(`${digits}e${rng.int(-330, 310)}`);
    }
    case 2: {
      // the notation boundaries: exponent -4/-5 and 15/16
      const digits = String(rng.int(1, 999_999_999_999)).slice(0, rng.int(1, 17));
      return sign * Number(`0.${digits}e${rng.pick([-3, -4, -5, 15, 16, 17])}`);
    }
    case 3:
      return sign * rng.int(0, 2 ** 30) * 2 ** rng.int(0, 40); // integral floats
    case 4:
      return rng.int(0, 2 ** 31) / 1024; // what the memory pollsters produce (§1.2)
    case 5:
      return sign * rng.float() * 10 ** rng.int(-20, 20);
    default:
      return nextAfter(sign * 10 ** rng.int(-323, 308), rng.chance(0.5));
  }
}

function randomInt(rng: Rng): number | bigint {
  switch (rng.int(0, 3)) {
    case 0:
      return rng.int(-1000, 1000);
    case 1:
      return rng.int(-(2 ** 31), 2 ** 31);
    case 2:
      return BigInt.asIntN(64, (BigInt(rng.u32()) << 32n) | BigInt(rng.u32()));
    default: {
      const b = (BigInt(rng.u32()) << 32n) | BigInt(rng.u32());
      return rng.chance(0.5) ? b : -b;
    }
  }
}

const CHAR_POOLS: readonly (readonly [number, number])[] = [
  [0x20, 0x7e], // printable ASCII, incl. " \ /
  [0x20, 0x7e],
  [0x00, 0x1f], // control characters
  [0x7f, 0xff], // DEL and Latin-1
  [0x100, 0xd7ff],
  [0xe000, 0xffff],
  [0x10000, 0x10ffff], // astral
  [0xd800, 0xdfff], // lone surrogates (two in a row may pair up, on both sides alike)
];

function randomString(rng: Rng, maxLen = 12): string {
  let s = '';
  const n = rng.int(0, maxLen);
  for (let i = 0; i < n; i++) {
    const [lo, hi] = rng.pick(CHAR_POOLS);
    s += String.fromCodePoint(rng.int(lo, hi));
  }
  return s;
}

const isIndexLike = (k: string): boolean => /^(?:0|[1-9]\d{0,9})$/.test(k) && Number(k) < 2 ** 32 - 1;

function randomValue(rng: Rng, depth: number): PyValue {
  const kind = rng.int(0, depth > 0 ? 8 : 5);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return randomInt(rng);
    case 3:
      return pyFloat(randomDouble(rng));
    case 4:
    case 5:
      return randomString(rng);
    case 6:
      return Array.from({ length: rng.int(0, 4) }, () => randomValue(rng, depth - 1));
    default: {
      const entries = new Map<string, PyValue>();
      const n = rng.int(0, 4);
      for (let i = 0; i < n; i++) {
        entries.set(rng.chance(0.3) ? String(rng.int(0, 20)) : randomString(rng, 5), randomValue(rng, depth - 1));
      }
      // Plain objects too, except where JS would reorder array-index keys (a Map keeps Python's order).
      if (rng.chance(0.5) && ![...entries.keys()].some((k) => isIndexLike(k) || k === '__proto__')) {
        return Object.fromEntries(entries);
      }
      return entries;
    }
  }
}

// ---- unit vectors ------------------------------------------------------------------------------------

describe('pyJsonDumps writes what Python json.dumps writes with default arguments (§4.2)', () => {
  it('uses ", " and ": " separators and keeps dict insertion order', () => {
    expect(pyJsonDumps({ b: 1, a: [1, 2], c: {}, d: [] })).toBe('{"b": 1, "a": [1, 2], "c": {}, "d": []}');
    expect(pyJsonDumps(new Map<string, PyValue>([['2', 1], ['1', 2], ['x', null]]))).toBe('{"2": 1, "1": 2, "x": null}');
  });

  it('writes true, false, null, ints and bigints', () => {
    expect(pyJsonDumps([true, false, null, 0, -0, -7, Number.MAX_SAFE_INTEGER, 2n ** 63n - 1n, -(2n ** 63n)])).toBe(
      '[true, false, null, 0, 0, -7, 9007199254740991, 9223372036854775807, -9223372036854775808]',
    );
  });

  it('writes floats as repr: integral floats keep .0, exponents are signed and two digits at least', () => {
    const cases: [number, string][] = [
      [1024, '1024.0'],
      [0, '0.0'],
      [-0, '-0.0'],
      [610.984375, '610.984375'],
      [0.1, '0.1'],
      [1e-4, '0.0001'],
      [1e-5, '1e-05'],
      [1.5e-7, '1.5e-07'],
      [9999999999999998, '9999999999999998.0'],
      [1e16, '1e+16'],
      [1.5e16, '1.5e+16'],
      [1e22, '1e+22'],
      [123456789012345680000, '1.2345678901234568e+20'],
      [5e-324, '5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [NaN, 'NaN'],
      [Infinity, 'Infinity'],
      [-Infinity, '-Infinity'],
    ];
    for (const [x, want] of cases) expect(pyJsonDumps(pyFloat(x)), String(x)).toBe(want);
  });

  it('escapes everything outside 0x20-0x7E as lowercase \\uXXXX, with the short forms and "/" left alone', () => {
    expect(pyJsonDumps('a/b"c\\d\n\r\t\b\f')).toBe('"a/b\\"c\\\\d\\n\\r\\t\\b\\f"');
    expect(pyJsonDumps('\x00\x1f\x7f\u00e9\u20ac\uffff')).toBe('"\\u0000\\u001f\\u007f\\u00e9\\u20ac\\uffff"');
    expect(pyJsonDumps('\u{1F600}')).toBe('"\\ud83d\\ude00"');
    expect(pyJsonDumps('\ud800x\udfff')).toBe('"\\ud800x\\udfff"');
    expect(pyJsonDumps({ 'k\u00e9': 'v' })).toBe('{"k\\u00e9": "v"}');
  });

  it('double-encodes an oslo.message envelope as oslo.messaging does (§4.2)', () => {
    const inner = pyJsonDumps({ priority: 'SAMPLE', payload: { samples: [{ counter_volume: pyFloat(45.0625) }] } });
    expect(pyJsonDumps({ 'oslo.version': '2.0', 'oslo.message': inner })).toBe(
      '{"oslo.version": "2.0", "oslo.message": "{\\"priority\\": \\"SAMPLE\\", \\"payload\\": {\\"samples\\": [{\\"counter_volume\\": 45.0625}]}}"}',
    );
  });

  it('refuses what Python would not write the same way, naming where', () => {
    expect(() => pyJsonDumps({ payload: { samples: [{ counter_volume: 45.5 }] } })).toThrow(
      /plain number 45\.5 is not an integer.*pyFloat\(45\.5\) at \$\.payload\.samples\[0\]\.counter_volume$/,
    );
    expect(() => pyJsonDumps([2 ** 60])).toThrow(/beyond 2\^53.*bigint at \$\[0\]$/);
    expect(() => pyJsonDumps({ 'a b': undefined as unknown as PyValue })).toThrow(
      /Object of type undefined is not JSON serializable at \$\["a b"\]/,
    );
    expect(() => pyJsonDumps({ when: new Date(0) as unknown as PyValue })).toThrow(
      /Object of type Date is not JSON serializable at \$\.when/,
    );
    expect(() => pyJsonDumps(new Map([[1, 2]]) as unknown as PyValue)).toThrow(/dict key of type number/);
    const loop: PyValue[] = [];
    loop.push(loop);
    expect(() => pyJsonDumps({ x: loop })).toThrow(/circular reference at \$\.x\[0\]/);
    // CPython 3.11 limits int->str to 4300 digits
    expect(pyJsonDumps(10n ** 4299n)).toHaveLength(4300);
    expect(() => pyJsonDumps(10n ** 4300n)).toThrow(/more than 4300 digits/);
  });

  it('accepts the same value twice when it is not a cycle', () => {
    const flavor = { id: '1' };
    expect(pyJsonDumps([flavor, flavor])).toBe('[{"id": "1"}, {"id": "1"}]');
  });
});

describe('pyFloatRepr is Python repr(float)', () => {
  it('writes non-finite values as Python does, not as JSON does', () => {
    expect([NaN, Infinity, -Infinity, -0].map(pyFloatRepr)).toEqual(['nan', 'inf', '-inf', '-0.0']);
  });
});

describe('pyStr is str() as compute_signature applies it (§5)', () => {
  it('renders scalars as Python str()', () => {
    expect([pyStr('x\u00e9'), pyStr(3), pyStr(2n ** 64n), pyStr(pyFloat(1024)), pyStr(pyFloat(Infinity))]).toEqual([
      'x\u00e9',
      '3',
      '18446744073709551616',
      '1024.0',
      'inf',
    ]);
    expect([pyStr(true), pyStr(false), pyStr(null)]).toEqual(['True', 'False', 'None']);
  });

  it('renders a list as the repr of decode_unicode(list): strs as bytes, dict keys sorted', () => {
    expect(pyStr(['a', 1, null, { rel: 'self', href: 'x' }, pyFloat(1), true])).toBe(
      "[b'a', 1, None, {b'href': b'x', b'rel': b'self'}, 1.0, True]",
    );
    expect(pyStr([["it's"], 'say "hi"', `both ' "`, '\\\t\n\r\x00\x7f\u00e9'])).toBe(
      `[[b"it's"], b'say "hi"', b'both \\' "', b'\\\\\\t\\n\\r\\x00\\x7f\\xc3\\xa9']`,
    );
    expect(pyStr([{}, [], new Map<string, PyValue>([['b', 1], ['a', [pyFloat(1e-5)]]])])).toBe("[{}, [], {b'a': [1e-05], b'b': 1}]");
  });

  it('refuses what Python cannot render: a lone surrogate inside a list, a dict', () => {
    expect(() => pyStr(['ok', '\ud800'])).toThrow(/lone surrogate U\+D800 at index 0.* at \$\[1\]/);
    expect(() => pyStr({ a: 1 })).toThrow(/recursive_keypairs flattens it/);
  });
});

describe('compareCodePoints orders like Python str comparison', () => {
  it('puts U+E000..U+FFFF before astral characters, unlike JS default sort', () => {
    const keys = ['\u{10000}', '\uffff', '\ue000', 'z', '\ud800', 'a\u{1F600}', 'a\uffff', 'a', ''];
    expect([...keys].sort(compareCodePoints)).toEqual(['', 'a', 'a\uffff', 'a\u{1F600}', 'z', '\ud800', '\ue000', '\uffff', '\u{10000}']);
  });

  it('treats an unpaired high surrogate as its own code point', () => {
    expect(compareCodePoints('\ud800x', '\ud800\udc00')).toBeLessThan(0);
    expect(compareCodePoints('\ud800\ue000', '\ud800\udc00')).toBeLessThan(0);
    expect(compareCodePoints('\ud800\ue000', '\ud800\ue000')).toBe(0);
  });
});

// ---- against CPython ---------------------------------------------------------------------------------

interface Mismatch {
  input: unknown;
  ours: string;
  python: string | null;
}

function compareAll(values: PyValue[], python: (string | null)[], ours: (v: PyValue) => string): Mismatch[] {
  const bad: Mismatch[] = [];
  values.forEach((v, i) => {
    let mine: string;
    try {
      mine = ours(v);
    } catch (err) {
      mine = `<threw ${String(err)}>`;
    }
    const theirs = python[i] ?? null;
    if (mine !== theirs && !(theirs === null && mine.startsWith('<threw'))) bad.push({ input: tag(v), ours: mine, python: theirs });
  });
  return bad.slice(0, 10);
}

const PY_DUMPS = `
vals = [dec(t) for t in json.loads(sys.stdin.buffer.read())]
sys.stdout.write(json.dumps([json.dumps(v) for v in vals]))
`;

describe(`pyJsonDumps agrees with CPython json.dumps (seed ${SEED})`, () => {
  it('on 5,000 doubles: random bits, decimals at every exponent, notation boundaries, integral, /1024', () => {
    const rng = new Rng(SEED);
    const xs = [...specialDoubles(), ...Array.from({ length: 5000 }, () => randomDouble(rng))];
    const values = xs.map(pyFloat);
    expect(values.length).toBeGreaterThan(5000);
    expect(compareAll(values, python<string[]>(PY_DUMPS, values.map(tag)), pyJsonDumps)).toEqual([]);
  });

  it('on every power of ten and its two neighbours from 1e-323 to 1e308', () => {
    const xs: number[] = [];
    for (let p = -323; p <= 308; p++) {
      const x = Number(`1e${p}`);
      xs.push(x, nextAfter(x, true), nextAfter(x, false), -x);
    }
    const values = xs.map(pyFloat);
    expect(compareAll(values, python<string[]>(PY_DUMPS, values.map(tag)), pyJsonDumps)).toEqual([]);
  });

  it('on 2,000 ints up to 2^64 and 3,000 strings (control chars, DEL, BMP, astral, lone surrogates)', () => {
    const rng = new Rng(SEED + 1);
    const values: PyValue[] = [
      2n ** 63n - 1n,
      -(2n ** 63n),
      2n ** 64n,
      10n ** 4299n,
      Number.MAX_SAFE_INTEGER,
      -Number.MAX_SAFE_INTEGER,
      ...Array.from({ length: 2000 }, () => randomInt(rng)),
      ...Array.from({ length: 3000 }, () => randomString(rng, 20)),
    ];
    expect(compareAll(values, python<string[]>(PY_DUMPS, values.map(tag)), pyJsonDumps)).toEqual([]);
  });

  it('on 1,500 nested dicts and lists of all of the above', () => {
    const rng = new Rng(SEED + 2);
    const values = Array.from({ length: 1500 }, () => randomValue(rng, 4));
    expect(compareAll(values, python<string[]>(PY_DUMPS, values.map(tag)), pyJsonDumps)).toEqual([]);
  });
});

const PY_STR = `
out = []
for t in json.loads(sys.stdin.buffer.read()):
    v = dec(t)
    try:
        out.append(str(decode_unicode(v)) if isinstance(v, list) else str(v))
    except UnicodeEncodeError:
        out.append(None)
sys.stdout.write(json.dumps(out))
`;

describe(`pyStr agrees with CPython str() / repr(decode_unicode(list)) (seed ${SEED})`, () => {
  it('on 3,000 scalars and lists (with nested dicts, bytes quoting, lone surrogates that must throw)', () => {
    const rng = new Rng(SEED + 3);
    const values: PyValue[] = [];
    while (values.length < 3000) {
      const v = randomValue(rng, 4);
      if (v === null || typeof v !== 'object' || v instanceof PyFloat || Array.isArray(v)) values.push(v);
      else values.push([v]);
    }
    values.push(["'", '"', `'"`, ["'\\"]]);
    const py = python<(string | null)[]>(PY_DECODE_UNICODE + PY_STR, values.map(tag));
    expect(py.filter((x) => x === null).length).toBeGreaterThan(0); // the throwing path is exercised
    expect(compareAll(values, py, pyStr)).toEqual([]);
  });
});
