// Python 3's `json.dumps(obj)` with default arguments, and `str()` as Ceilometer's signature applies it,
// reproduced byte for byte: Ceilometer serialises both the sample envelope and the inner oslo.message with
// `json.dumps` defaults (docs/ceilometer-wire.md §4.2), and signs `str(value)` (§5). A verifier
// re-signs the values it reads back from our JSON, so the two must agree on every number form.

/**
 * A Python float. JS numbers cannot tell `1024.0` from `1024`, but Python's JSON output and signature
 * pre-image can (§4.2, §5: Zed signs `"1024.0"` for a memory volume), so floats are wrapped and plain
 * numbers mean Python ints.
 */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** `pyFloat(x)`: the float x, e.g. a memory volume `pyFloat(kib / 1024)` that must be written `1024.0`. */
export const pyFloat = (value: number): PyFloat => new PyFloat(value);

/** A Python dict with str keys. Insertion order is the JSON order. */
export interface PyDict {
  readonly [key: string]: PyValue;
}

/**
 * A dict as a Map: use it when a key looks like an array index ("0", "42"), because JS enumerates such
 * keys of a plain object first and in numeric order, where Python keeps insertion order.
 */
export type PyMap = ReadonlyMap<string, PyValue>;

export type PyList = readonly PyValue[];

/**
 * A value json.dumps accepts, in Python terms: None, bool, int (an integral `number` up to 2^53, or a
 * `bigint`), float (`PyFloat`), str, list, dict.
 */
export type PyValue = null | boolean | number | bigint | string | PyFloat | PyList | PyDict | PyMap;

// CPython's int->str refuses more than sys.int_info.default_max_str_digits (4300) digits since 3.11
// (Debian 12 runs 3.11): both json.dumps and str() raise ValueError there.
const PY_INT_MAX_STR_DIGITS = 4300;

/** Where a value failed, collected on the way out so the happy path pays nothing for it. */
class EncodeError extends TypeError {
  readonly path: (string | number)[] = [];
}

const pathStep = (p: string | number): string =>
  typeof p === 'number' ? `[${p}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`;

const formatPath = (path: readonly (string | number)[]): string => '$' + path.map(pathStep).join('');

function rethrowWithPath(fn: string, err: unknown): never {
  if (err instanceof EncodeError) {
    throw new TypeError(`${fn}: ${err.message} at ${formatPath(err.path)}`);
  }
  throw err;
}

function within<T>(key: string | number, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof EncodeError) err.path.unshift(key);
    throw err;
  }
}

const isList = Array.isArray as (v: unknown) => v is PyList;

/** True for a Map standing for a Python dict (the type only says ReadonlyMap, which instanceof cannot name). */
export const isPyMap = (v: unknown): v is PyMap => v instanceof Map;

function isPlainObject(v: object): v is PyDict {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function typeName(v: unknown): string {
  if (typeof v !== 'object' || v === null) return typeof v;
  const ctor = (Object.getPrototypeOf(v) as { constructor?: { name?: string } } | null)?.constructor?.name;
  return ctor ?? 'object';
}

function intRepr(v: number | bigint): string {
  if (typeof v === 'bigint') {
    const s = v.toString();
    if (s.length - (v < 0n ? 1 : 0) > PY_INT_MAX_STR_DIGITS) {
      throw new EncodeError(`int with more than ${PY_INT_MAX_STR_DIGITS} digits (Python 3.11 refuses to convert it)`);
    }
    return s;
  }
  if (Number.isSafeInteger(v)) return String(v); // String(-0) is "0", like Python's int 0
  if (Number.isInteger(v)) {
    throw new EncodeError(`integer ${v} is beyond 2^53 as a plain number and may have lost digits: pass a bigint`);
  }
  throw new EncodeError(
    `plain number ${v} is not an integer: plain numbers are Python ints, wrap floats as pyFloat(${v})`,
  );
}

/**
 * Python's `repr(float)` (also `str(float)`): shortest round-trip digits like JS, but integral values keep
 * ".0" and the exponent form is used when the decimal exponent is < -4 or >= 16, written with a sign and
 * at least two digits ("1e-05", "1.5e+16") (CPython `float_repr_style = 'short'`, §4.2).
 */
export function pyFloatRepr(x: number): string {
  if (x !== x) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const abs = Math.abs(x);
  // In this range both JS and Python write positional notation with the same shortest digits
  // (JS switches only below 1e-6 and from 1e21).
  if (abs >= 1e-4 && abs < 1e16) {
    const s = String(x);
    return Number.isInteger(x) ? s + '.0' : s;
  }
  // toExponential() without an argument gives the same shortest digits as String(x) ("1.5e+16", "1e-7").
  const e = x.toExponential();
  const at = e.indexOf('e');
  const sign = e.charAt(at + 1);
  const digits = e.slice(at + 2);
  return `${e.slice(0, at)}e${sign}${digits.length < 2 ? '0' + digits : digits}`;
}

/** json.dumps writes non-finite floats as the JavaScript literals (allow_nan=True is the default). */
function floatJson(x: number): string {
  if (x !== x) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  return pyFloatRepr(x);
}

// ensure_ascii=True: everything outside 0x20-0x7E is \uXXXX with lowercase hex, short forms for
// \" \\ \n \r \t \b \f, "/" left alone (§4.2). Matching per UTF-16 code unit (no `u` flag) turns astral
// characters into surrogate-pair escapes and lone surrogates into their own escape, as CPython does.
const JSON_NEEDS_ESCAPE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;
const JSON_ESCAPE_ALL = /[^\x20\x21\x23-\x5b\x5d-\x7e]/g;
const JSON_SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '"': '\\"',
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
};

const jsonEscapeChar = (c: string): string =>
  JSON_SHORT_ESCAPES[c] ?? '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');

// Below 0x7F, V8's native JSON.stringify escapes exactly as Python does (" and \\ backslashed, \n \r
// \t \b \f short, other controls as lowercase \u00XX); from 0x7F on Python escapes and JSON.stringify
// does not. The notification envelope's one big string (the inner message, full of quotes) is the hot
// case: natively it costs a fraction of the regex replace.
const BEYOND_ASCII_PRINTABLE = /[\u007f-\uffff]/;

function jsonString(s: string): string {
  if (!JSON_NEEDS_ESCAPE.test(s)) return '"' + s + '"';
  return BEYOND_ASCII_PRINTABLE.test(s) ? '"' + s.replace(JSON_ESCAPE_ALL, jsonEscapeChar) + '"' : JSON.stringify(s);
}

function mapKey(k: unknown): string {
  if (typeof k !== 'string') throw new EncodeError(`dict key of type ${typeName(k)}: only str keys are supported`);
  return k;
}

// Python's encoder keeps a marker per container being written and raises "Circular reference
// detected"; a Set of the containers on the current path does the same.
function encode(v: PyValue, active: Set<object>): string {
  switch (typeof v) {
    case 'string':
      return jsonString(v);
    case 'number':
    case 'bigint':
      return intRepr(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object': {
      if (v === null) return 'null';
      if (v instanceof PyFloat) return floatJson(v.value);
      if (active.has(v)) throw new EncodeError('circular reference');
      active.add(v);
      let out: string;
      if (isList(v)) {
        out = '[';
        for (let i = 0; i < v.length; i++) {
          const item = v[i] as PyValue;
          out += (i === 0 ? '' : ', ') + within(i, () => encode(item, active));
        }
        out += ']';
      } else if (isPyMap(v)) {
        out = '{';
        let first = true;
        for (const [k, item] of v) {
          const key = mapKey(k);
          out += (first ? '' : ', ') + jsonString(key) + ': ' + within(key, () => encode(item, active));
          first = false;
        }
        out += '}';
      } else if (isPlainObject(v)) {
        out = '{';
        let first = true;
        for (const key of Object.keys(v)) {
          const item = v[key] as PyValue;
          out += (first ? '' : ', ') + jsonString(key) + ': ' + within(key, () => encode(item, active));
          first = false;
        }
        out += '}';
      } else {
        throw new EncodeError(`Object of type ${typeName(v)} is not JSON serializable`);
      }
      active.delete(v);
      return out;
    }
    default:
      throw new EncodeError(`Object of type ${typeof v} is not JSON serializable`);
  }
}

/**
 * `json.dumps(value)` with Python 3's defaults, byte for byte (§4.2). Throws a TypeError naming the
 * offending value's path for anything Python would not write the same way (a non-integral plain number,
 * undefined, a class instance, a non-str key, a cycle).
 */
export function pyJsonDumps(value: PyValue): string {
  try {
    return encode(value, new Set());
  } catch (err) {
    rethrowWithPath('pyJsonDumps', err);
  }
}

/**
 * Python's str ordering (code points), where JS's default sort compares UTF-16 code units and so puts
 * astral characters (surrogates 0xD800-0xDFFF) before U+E000-U+FFFF. Keys are sorted this way per level in
 * the signature (§5).
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === n) return a.length - b.length;
  const ca = a.charCodeAt(i);
  const cb = b.charCodeAt(i);
  // Below the surrogate range a code unit is its own code point, and anything at or above it is larger.
  if (ca < 0xd800 || cb < 0xd800) return ca - cb;
  // The differing unit may be the second half of a pair that starts one unit earlier.
  let j = i > 0 && (a.charCodeAt(i - 1) & 0xfc00) === 0xd800 ? i - 1 : i;
  for (;;) {
    if (j >= a.length || j >= b.length) return a.length - b.length;
    const pa = a.codePointAt(j) as number;
    const pb = b.codePointAt(j) as number;
    if (pa !== pb) return pa - pb;
    j += pa > 0xffff ? 2 : 1;
  }
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function loneSurrogate(s: string): string | null {
  const m = LONE_SURROGATE.exec(s);
  if (!m) return null;
  return (
    `a lone surrogate U+${m[0].charCodeAt(0).toString(16).toUpperCase()} at index ${m.index}, ` +
    `which Python cannot encode to UTF-8 ('surrogates not allowed')`
  );
}

/** Python's `s.encode('utf-8')` raises on a lone surrogate where Node would write U+FFFD. */
export function assertEncodableUtf8(s: string, what: string): void {
  const problem = loneSurrogate(s);
  if (problem !== null) throw new TypeError(`${what} has ${problem}`);
}

const BYTES_PLAIN = /^[\x20-\x26\x28-\x5b\x5d-\x7e]*$/;
const BYTES_ESCAPE_SQ = /[^\x20-\x26\x28-\x5b\x5d-\x7e]/g;
const BYTES_ESCAPE_DQ = /[^\x20\x21\x23-\x5b\x5d-\x7e]/g;
const BYTES_SHORT_ESCAPES: Readonly<Record<string, string>> = {
  "'": "\\'",
  '"': '\\"',
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
};

const bytesEscapeChar = (c: string): string =>
  BYTES_SHORT_ESCAPES[c] ?? '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0');

/**
 * `repr(s.encode('utf-8'))`: decode_unicode turns every str inside a list into bytes (§5). CPython's
 * bytes repr quotes with ' unless the bytes hold a ' and no ", escapes \\, the quote, \t \n \r, and every
 * other byte outside 0x20-0x7E as \xNN (lowercase).
 */
function bytesRepr(s: string): string {
  if (BYTES_PLAIN.test(s)) return "b'" + s + "'";
  const problem = loneSurrogate(s);
  if (problem !== null) throw new EncodeError(`a str inside a list has ${problem}`);
  // latin1 maps each UTF-8 byte to one char, so the escapes can work byte-wise on a string.
  const bytes = Buffer.from(s, 'utf8').toString('latin1');
  const dq = bytes.includes("'") && !bytes.includes('"');
  return dq
    ? 'b"' + bytes.replace(BYTES_ESCAPE_DQ, bytesEscapeChar) + '"'
    : "b'" + bytes.replace(BYTES_ESCAPE_SQ, bytesEscapeChar) + "'";
}

function dictEntries(d: PyDict | PyMap): [string, PyValue][] {
  if (isPyMap(d)) return [...d].map(([k, v]) => [mapKey(k), v]);
  return Object.keys(d).map((k) => [k, d[k] as PyValue]);
}

/** Python's repr of decode_unicode(value) (§5): str -> bytes, dicts rebuilt with sorted keys. */
function decodedRepr(v: PyValue, active: Set<object>): string {
  switch (typeof v) {
    case 'string':
      return bytesRepr(v);
    case 'number':
    case 'bigint':
      return intRepr(v);
    case 'boolean':
      return v ? 'True' : 'False';
    case 'object': {
      if (v === null) return 'None';
      if (v instanceof PyFloat) return pyFloatRepr(v.value);
      // Python's repr writes "[...]" / "{...}" for a container inside itself; decode_unicode would have
      // recursed forever first, so a cycle is an error here.
      if (active.has(v)) throw new EncodeError('circular reference');
      active.add(v);
      let out: string;
      if (isList(v)) {
        out = '[' + v.map((item, i) => within(i, () => decodedRepr(item, active))).join(', ') + ']';
      } else if (isPyMap(v) || isPlainObject(v)) {
        const entries = dictEntries(v).sort((x, y) => compareCodePoints(x[0], y[0]));
        out =
          '{' +
          entries.map(([k, item]) => within(k, () => bytesRepr(k) + ': ' + decodedRepr(item, active))).join(', ') +
          '}';
      } else {
        throw new EncodeError(`Object of type ${typeName(v)} has no Python equivalent`);
      }
      active.delete(v);
      return out;
    }
    default:
      throw new EncodeError(`Object of type ${typeof v} has no Python equivalent`);
  }
}

/**
 * Python's `str(value)` as compute_signature applies it to each leaf (§5): str as is, int in decimal,
 * float as repr, True/False, None, and a list as the repr of decode_unicode(list) (strs become bytes
 * literals, dicts inside get sorted keys: `[b'a', 1, None, {b'href': b'x'}, 1.0, True]`). A dict is never
 * str()'d by the signature (recursive_keypairs flattens it), so it is rejected rather than guessed.
 */
export function pyStr(value: PyValue): string {
  try {
    switch (typeof value) {
      case 'string':
        return value;
      case 'object':
        if (value !== null && !(value instanceof PyFloat) && !isList(value)) {
          throw new EncodeError(
            'a dict is not rendered by str() in the signature (recursive_keypairs flattens it, §5)',
          );
        }
        return decodedRepr(value, new Set());
      default:
        return decodedRepr(value, new Set());
    }
  } catch (err) {
    rethrowWithPath('pyStr', err);
  }
}

/** True for the values recursive_keypairs descends into (Python dicts). */
export function isPyDict(v: PyValue): v is PyDict | PyMap {
  if (typeof v !== 'object' || v === null || v instanceof PyFloat || isList(v)) return false;
  return isPyMap(v) || isPlainObject(v);
}
