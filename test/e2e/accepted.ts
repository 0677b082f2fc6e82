// What the real ceilometer-agent-notification stored, read back from its file:// publisher, and the check
// that it is what was sent. The publisher (Zed `publisher/file.py`, with `?json`) writes one
// `json.dumps(sample.as_dict())` per line, and TelemetryIpc (`telemetry/notifications.py`) built that
// Sample from the wire dict, so the fields map as follows:
//   counter_name → name, counter_type → type, counter_unit → unit, counter_volume → volume,
//   message_id → id; user_id, project_id, resource_id, timestamp, resource_metadata and source are kept
//   as they were; monotonic_time is not passed on (always null), message_signature is dropped.
// Nothing is re-serialised on the way apart from json.dumps itself, so a float volume keeps its form
// (0.0 stays "0.0") and the resource_metadata comes back exactly (docs/ceilometer-wire.md §7.1).

import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

import { PyFloat } from '../../src/samples/pyjson.js';

/** One line of the file publisher's output (Zed: these keys, in this order). */
export interface AcceptedSample {
  name: string;
  type: string;
  unit: string;
  volume: number;
  user_id: string | null;
  project_id: string | null;
  resource_id: string;
  timestamp: string | null;
  resource_metadata: Record<string, unknown>;
  source: string;
  /** the sample's message_id as sent */
  id: string;
  /** Zed's TelemetryIpc does not pass monotonic_time on: null */
  monotonic_time: number | null;
  /** 2023.1+ only */
  user_name?: string | null;
  project_name?: string | null;
}

/** The key order Zed's Sample.as_dict() writes. */
export const ACCEPTED_KEYS_ZED = [
  'name',
  'type',
  'unit',
  'volume',
  'user_id',
  'project_id',
  'resource_id',
  'timestamp',
  'resource_metadata',
  'source',
  'id',
  'monotonic_time',
] as const;

/**
 * The key order of 2023.1 and later (Ceilometer 24 in Debian 13 checked): Sample has user_name and
 * project_name after user_id and project_id, and TelemetryIpc sets them from the wire dict, null when
 * the sample did not carry them.
 */
export const ACCEPTED_KEYS_WITH_NAMES = ['name', 'type', 'unit', 'volume', 'user_id', 'user_name', 'project_id', 'project_name', 'resource_id', 'timestamp', 'resource_metadata', 'source', 'id', 'monotonic_time'] as const;

/** Which notification agent the e2e runs use (test/e2e/notification-agent.sh): Zed by default. */
export const CEILOMETER_RELEASE = process.env.CEILOMETER_RELEASE ?? 'debian12';

/**
 * The line a notification agent of `release` stores for a sample Zed stored as `zedLine`: the same
 * bytes on Zed; on Ceilometer 24 the same with `"user_name": null` and `"project_name": null` added
 * after user_id and project_id (ACCEPTED_KEYS_WITH_NAMES), the samples having neither.
 */
export function storedLine(zedLine: string, release: string = CEILOMETER_RELEASE): string {
  if (release === 'debian12') return zedLine;
  // the first occurrences: the top-level keys come before resource_metadata
  return zedLine.replace(', "project_id": ', ', "user_name": null, "project_id": ').replace(', "resource_id": ', ', "project_name": null, "resource_id": ');
}

/**
 * The complete lines of a file publisher output, as written. A last line without its newline is still
 * being written (Python's logging handler writes the record, then the terminator) and is left out.
 * A file that does not exist yet reads as no lines.
 */
export function readAcceptedLines(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const lines = text.split('\n');
  lines.pop(); // '' after the last newline, or a partial line
  return lines.filter((l) => l !== '');
}

/** The samples in a file publisher output (`file://PATH?json`), in the order the agent stored them. */
export function readAccepted(file: string): AcceptedSample[] {
  return readAcceptedLines(file).map((line, i) => {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      throw new Error(
        `${file}:${i + 1}: not JSON (${(err as Error).message}); was the publisher configured with "?json"? ` +
          `Without it the file holds Python reprs. Line: ${line.slice(0, 120)}`,
      );
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${file}:${i + 1}: not a JSON object`);
    const o = v as Record<string, unknown>;
    for (const k of ['name', 'resource_id', 'id'] as const) {
      if (typeof o[k] !== 'string') throw new Error(`${file}:${i + 1}: "${k}" is not a string: is this a file publisher's sample output?`);
    }
    return o as unknown as AcceptedSample;
  });
}

/**
 * A sample as sent: the wire dict's fields (docs/ceilometer-wire.md §3.2). The four required ones are
 * always compared; the optional ones when present. message_id, when given, pairs a sent sample with
 * the accepted one of the same id (the agent keeps it as `id`); without it, samples pair by resource
 * and meter. resource_metadata may hold ceilopoll's Python-typed values (PyFloat, Map, bigint).
 */
export interface SentSample {
  resource_id: string;
  counter_name: string;
  counter_volume: number;
  resource_metadata: unknown;
  message_id?: string;
  counter_type?: string;
  counter_unit?: string;
  user_id?: string | null;
  project_id?: string | null;
  timestamp?: string | null;
  source?: string;
}

export interface Mismatch<S extends SentSample = SentSample> {
  sent: S;
  accepted: AcceptedSample;
  /** one line per differing field, e.g. `counter_volume: sent 45.0625, accepted 45.1` */
  differences: string[];
}

export interface Comparison<S extends SentSample = SentSample> {
  /** sent samples the agent did not store */
  missing: S[];
  /** sent samples stored with a different value */
  mismatched: Mismatch<S>[];
  /** sent samples stored as sent */
  matched: number;
  /** accepted samples that repeat the id of a sent sample already paired: stored more than once */
  duplicates: AcceptedSample[];
}

/**
 * Pairs every sent sample with one accepted sample (each accepted sample is used at most once) and
 * says which were stored as sent, stored differently, or not stored. Accepted samples with unrelated ids
 * (someone else's messages on the same queue) are ignored; ones that repeat a sent id are `duplicates`.
 */
export function compareSent<S extends SentSample>(sent: readonly S[], accepted: readonly AcceptedSample[]): Comparison<S> {
  const used = new Set<number>();
  const byId = new Map<string, number[]>();
  const byKey = new Map<string, number[]>();
  accepted.forEach((a, i) => {
    push(byId, a.id, i);
    push(byKey, key(a.resource_id, a.name), i);
  });

  const out: Comparison<S> = { missing: [], mismatched: [], matched: 0, duplicates: [] };
  const sentIds = new Set<string>();
  for (const s of sent) {
    let candidates: number[];
    if (s.message_id !== undefined) {
      sentIds.add(s.message_id);
      candidates = (byId.get(s.message_id) ?? []).filter((i) => !used.has(i));
    } else {
      candidates = (byKey.get(key(s.resource_id, s.counter_name)) ?? []).filter((i) => !used.has(i));
    }
    if (candidates.length === 0) {
      out.missing.push(s);
      continue;
    }
    // without an id, prefer an exact match among the samples of that resource and meter
    const exact = candidates.find((i) => differences(s, accepted[i]!).length === 0);
    const pick = exact ?? candidates[0]!;
    used.add(pick);
    const diffs = exact === undefined ? differences(s, accepted[pick]!) : [];
    if (diffs.length === 0) out.matched++;
    else out.mismatched.push({ sent: s, accepted: accepted[pick]!, differences: diffs });
  }
  accepted.forEach((a, i) => {
    if (!used.has(i) && sentIds.has(a.id)) out.duplicates.push(a);
  });
  return out;
}

/** A one-paragraph account of a comparison for an assertion message. */
export function describeComparison(c: Comparison, limit = 5): string {
  const parts = [`${c.matched} matched, ${c.missing.length} missing, ${c.mismatched.length} mismatched, ${c.duplicates.length} duplicates`];
  for (const s of c.missing.slice(0, limit)) parts.push(`missing: ${s.counter_name} ${s.resource_id} id=${s.message_id ?? '-'}`);
  for (const m of c.mismatched.slice(0, limit)) {
    parts.push(`mismatched: ${m.sent.counter_name} ${m.sent.resource_id} id=${m.sent.message_id ?? '-'}: ${m.differences.join('; ')}`);
  }
  for (const d of c.duplicates.slice(0, limit)) parts.push(`duplicate: ${d.name} ${d.resource_id} id=${d.id}`);
  return parts.join('\n');
}

function differences(s: SentSample, a: AcceptedSample): string[] {
  const out: string[] = [];
  const field = (name: string, sent: unknown, got: unknown): void => {
    if (!isDeepStrictEqual(plain(sent), got)) out.push(`${name}: sent ${show(sent)}, accepted ${show(got)}`);
  };
  field('counter_name', s.counter_name, a.name);
  field('resource_id', s.resource_id, a.resource_id);
  field('counter_volume', s.counter_volume, a.volume);
  if (s.counter_type !== undefined) field('counter_type', s.counter_type, a.type);
  if (s.counter_unit !== undefined) field('counter_unit', s.counter_unit, a.unit);
  if (s.user_id !== undefined) field('user_id', s.user_id, a.user_id);
  if (s.project_id !== undefined) field('project_id', s.project_id, a.project_id);
  if (s.timestamp !== undefined) field('timestamp', s.timestamp, a.timestamp);
  if (s.source !== undefined) field('source', s.source, a.source);
  if (s.message_id !== undefined) field('message_id', s.message_id, a.id);
  out.push(...pathDiffs('resource_metadata', plain(s.resource_metadata), a.resource_metadata));
  return out;
}

/** Where two JSON values differ, as `path: sent X, accepted Y` lines. */
function pathDiffs(path: string, sent: unknown, got: unknown): string[] {
  if (isDeepStrictEqual(sent, got)) return [];
  if (isObject(sent) && isObject(got)) {
    const keys = new Set([...Object.keys(sent), ...Object.keys(got)]);
    return [...keys].flatMap((k) => {
      if (!(k in sent)) return [`${path}.${k}: not sent, accepted ${show(got[k])}`];
      if (!(k in got)) return [`${path}.${k}: sent ${show(sent[k])}, not accepted`];
      return pathDiffs(`${path}.${k}`, sent[k], got[k]);
    });
  }
  return [`${path}: sent ${show(sent)}, accepted ${show(got)}`];
}

/** ceilopoll's Python-typed values (PyFloat, Map, bigint) as JSON.parse would give them back. */
function plain(v: unknown): unknown {
  if (v instanceof PyFloat) return v.value;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Map) return Object.fromEntries([...(v as Map<string, unknown>)].map(([k, x]) => [k, plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => JSON.stringify(plain(v)) ?? String(v);
const key = (resource: string, meter: string): string => `${resource}\u0000${meter}`;
const push = <K, V>(m: Map<K, V[]>, k: K, v: V): void => {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
};
