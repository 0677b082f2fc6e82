// Time and identifiers as Ceilometer's Python writes them, behind small interfaces so tests and
// golden comparisons can inject fixed values (ceilometer-wire.md §3.1, §4.2).

import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import { v1 as uuidv1 } from 'uuid';

/** Wall time in microseconds since the epoch, and a monotonic clock in seconds. */
export interface Clock {
  nowMicros(): number;
  monotonicSeconds(): number;
}

export const systemClock: Clock = {
  // performance.now() has sub-millisecond resolution; Date.now() only milliseconds.
  nowMicros: () => Math.floor((performance.timeOrigin + performance.now()) * 1000),
  monotonicSeconds: () => performance.now() / 1000 + MONOTONIC_BASE,
};

// process.hrtime reads CLOCK_MONOTONIC like Python's time.monotonic(); anchor performance.now() on it once.
const MONOTONIC_BASE = Number(process.hrtime.bigint()) / 1e9 - performance.now() / 1000;

export interface IdSource {
  /** Sample.id: str(uuid.uuid1()) */
  sampleId(): string;
  /** oslo message_id: str(uuid.uuid4()) */
  messageId(): string;
  /** oslo _unique_id: uuid.uuid4().hex */
  uniqueId(): string;
}

export const randomIds: IdSource = {
  sampleId: () => uuidv1(),
  messageId: () => randomUUID(),
  uniqueId: () => randomUUID().replace(/-/g, ''),
};

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

function parts(micros: number): { date: string; time: string; frac: string } {
  const ms = Math.floor(micros / 1000);
  const us = micros - ms * 1000;
  const d = new Date(ms);
  const date = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  const fracUs = d.getUTCMilliseconds() * 1000 + us;
  // Python drops the fraction entirely when the microseconds are 0.
  return { date, time, frac: fracUs === 0 ? '' : `.${pad(fracUs, 6)}` };
}

/** datetime.utcnow().isoformat(): naive, "T", microseconds unless zero. The sample timestamp. */
export function pyIsoformat(micros: number): string {
  const p = parts(micros);
  return `${p.date}T${p.time}${p.frac}`;
}

/** str(datetime.utcnow()): as isoformat with a space. The oslo message timestamp. */
export function pyStrDatetime(micros: number): string {
  const p = parts(micros);
  return `${p.date} ${p.time}${p.frac}`;
}

/** Parses the pyIsoformat form back to epoch microseconds (for replaying captured timestamps). */
export function parsePyIsoformat(s: string): number {
  const m = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?$/.exec(s);
  if (!m) throw new RangeError(`not a Python naive datetime: "${s}"`);
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return ms * 1000 + Number((m[7] ?? '').padEnd(6, '0'));
}
