// The captured Ceilometer 19 AMQP bodies (test/fixtures/golden, copied from the shared golden
// captures) and a JSON parser that keeps what JSON.parse loses: whether Python wrote 0.0 or 0.

import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { PyFloat, type PyDict, type PyValue } from '../../src/samples/pyjson.js';

export const GOLDEN = fileURLToPath(new URL('../fixtures/golden/', import.meta.url));
export const CAPTURES = ['zed-3guests', 'zed-3guests-flavorid'];

/**
 * JSON.parse forgets whether Python wrote `0.0` or `0`, which decides both the bytes and the signature,
 * so this parser keeps it: a number with ".", "e" or "E" (or NaN/Infinity) is a PyFloat, any other an int.
 */
export function parsePythonJson(text: string): PyValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`golden JSON: ${what} at offset ${i}: ${JSON.stringify(text.slice(i, i + 20))}`);
  };
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const isIndexLike = (k: string): boolean => /^(?:0|[1-9]\d{0,9})$/.test(k) && Number(k) < 2 ** 32 - 1;

  const str = (): string => {
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    i++;
    const s: unknown = JSON.parse(text.slice(start, i));
    return s as string;
  };

  const value = (): PyValue => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const entries: [string, PyValue][] = [];
      ws();
      if (text[i] === '}') {
        i++;
        return {};
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const k = str();
        ws();
        if (text[i++] !== ':') fail('expected ":"');
        entries.push([k, value()]);
        ws();
        const sep = text[i++];
        if (sep === '}') break;
        if (sep !== ',') fail('expected "," or "}"');
      }
      // A Map where a plain object would reorder the keys (array indexes) or drop one (__proto__)
      if (entries.some(([k]) => isIndexLike(k) || k === '__proto__')) return new Map(entries);
      return Object.fromEntries<PyValue>(entries);
    }
    if (c === '[') {
      i++;
      const items: PyValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return items;
      }
      for (;;) {
        items.push(value());
        ws();
        const sep = text[i++];
        if (sep === ']') break;
        if (sep !== ',') fail('expected "," or "]"');
      }
      return items;
    }
    if (c === '"') return str();
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
      ['NaN', new PyFloat(NaN)],
      ['Infinity', new PyFloat(Infinity)],
      ['-Infinity', new PyFloat(-Infinity)],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) return fail('unexpected character');
    i += m[0].length;
    if (/[.eE]/.test(m[0])) return new PyFloat(Number(m[0]));
    const n = BigInt(m[0]);
    return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
  };

  const v = value();
  ws();
  if (i !== text.length) fail('trailing data');
  return v;
}

export const asDict = (v: PyValue, what: string): PyDict => {
  if (typeof v !== 'object' || v === null || v instanceof PyFloat || v instanceof Map || Array.isArray(v)) {
    throw new TypeError(`${what} is not a JSON object`);
  }
  return v as PyDict;
};

export interface Body {
  name: string;
  raw: string;
}

export const bodies: Body[] = CAPTURES.flatMap((capture) => {
  const dir = `${GOLDEN}${capture}/amqp/`;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.body'))
    .sort()
    .map((f) => ({ name: `${capture}/amqp/${f}`, raw: readFileSync(dir + f, 'utf8') }));
});

