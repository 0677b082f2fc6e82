// Ceilometer's message signature (ceilometer/publisher/utils.py compute_signature, recursive_keypairs,
// verify_signature; docs/ceilometer-wire.md §5): HMAC-SHA256 over "name" + str(value) for every leaf, in
// per-level sorted key order, nested names joined with ":". No notification agent checks it (§5), but
// the real Zed agent emits it and ceilopoll's output must be byte-identical.

import { createHmac, timingSafeEqual } from 'node:crypto';

import { assertEncodableUtf8, compareCodePoints, isPyDict, isPyMap, pyStr, type PyDict, type PyMap } from './pyjson.js';

/** `[publisher] telemetry_secret`'s default in Zed, which the golden captures were signed with. */
export const DEFAULT_TELEMETRY_SECRET = 'change this for valid signing';

const ANY_SURROGATE = /[\ud800-\udfff]/;

/** The HMAC input: name and str(value) of every leaf, with no separators (§5). */
function preimage(d: PyDict | PyMap, prefix: string, out: string[]): void {
  const map = isPyMap(d) ? d : null;
  // sorted(d.items()) on str keys: Python orders by code point at each level, not on the joined name.
  const keys = (map ? [...map.keys()] : Object.keys(d)).sort(compareCodePoints);
  for (const key of keys) {
    const value = map ? map.get(key) : (d as PyDict)[key];
    const name = prefix + key;
    if (typeof value === 'string') {
      if (name !== 'message_signature') out.push(name, value);
      continue;
    }
    if (value === undefined) {
      throw new TypeError(`computeSignature: ${name} is undefined, which has no Python equivalent`);
    }
    // A nested dict is descended into even under 'message_signature', and an empty one yields nothing:
    // the skip below only ever matches a top-level leaf, as in Python.
    if (isPyDict(value)) {
      preimage(value, name + ':', out);
      continue;
    }
    if (name !== 'message_signature') out.push(name, pyStr(value));
  }
}

/**
 * The pre-image part of one nested dict, as it appears inside a message's pre-image under `prefix`
 * (e.g. "resource_metadata:"): for callers that cache the unchanging parts of many messages.
 */
export function preimageOf(d: PyDict | PyMap, prefix: string): string {
  const parts: string[] = [];
  preimage(d, prefix, parts);
  return parts.join('');
}

/**
 * Ceilometer's compute_signature: lowercase hex HMAC-SHA256 keyed with utf8(secret), or '' for an empty
 * secret. Sign the values exactly as they will be written (a PyFloat signs "1024.0", an int "1024").
 * Throws a TypeError where Python would raise (a lone surrogate, which Python cannot encode to UTF-8).
 */
export function computeSignature(message: PyDict | PyMap, secret: string): string {
  if (secret === '') return '';
  assertEncodableUtf8(secret, 'computeSignature: the secret');
  const parts: string[] = [];
  preimage(message, '', parts);
  // One update for the whole pre-image: the same digest as Python's update per name and per value.
  const text = parts.join('');
  // Checked part by part: a name ending in a lone high surrogate and a value starting with a lone low
  // one would join into a valid pair, where Python fails on encoding the name alone.
  if (ANY_SURROGATE.test(text)) {
    for (let i = 0; i < parts.length; i += 2) {
      const name = parts[i] as string;
      assertEncodableUtf8(name, `computeSignature: key ${JSON.stringify(name)}`);
      assertEncodableUtf8(parts[i + 1] as string, `computeSignature: value of ${JSON.stringify(name)}`);
    }
  }
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(text, 'utf8').digest('hex');
}

/**
 * Ceilometer's verify_signature: true when `message_signature` matches the signature of the rest (an
 * empty secret accepts everything). Where Python would raise instead of answering (a non-str or
 * non-ASCII signature) this returns false.
 */
export function verifySignature(message: PyDict | PyMap, secret: string): boolean {
  if (secret === '') return true;
  const claimed = isPyMap(message) ? message.get('message_signature') : message['message_signature'];
  const old = claimed === undefined ? '' : claimed;
  if (typeof old !== 'string' || /[\u0080-\uffff]/.test(old)) return false;
  const fresh = computeSignature(message, secret);
  return old.length === fresh.length && timingSafeEqual(Buffer.from(old, 'ascii'), Buffer.from(fresh, 'ascii'));
}
