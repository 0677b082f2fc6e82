// Time and identifiers as Ceilometer's Python writes them, behind small interfaces so tests and
// golden comparisons can inject fixed values (ceilometer-wire.md §3.1, §4.2).

import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

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

/** 100-ns intervals between the UUID epoch (1582-10-15) and the Unix epoch, in ms */
const UUID_EPOCH_OFFSET_MS = 12219292800000;

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

/**
 * A generator of version-1 UUIDs in str(uuid.uuid1()) form, as many as needed per millisecond: the
 * 100-ns timestamp is the wall clock in ms plus a counter (0-9999) within it, running into the next
 * millisecond if the counter overflows; the clock sequence goes up by one if the clock steps back.
 * Node (with the multicast bit, RFC 4122 4.5) and clock sequence are random, once per generator:
 * Python takes the host's MAC, which identifies nothing here. The `uuid` package's v1 draws 16 random
 * bytes per id, which cost 1-2 µs each on the sample path.
 */
export function uuid1Generator(now: () => number = Date.now, random: (n: number) => Uint8Array = randomBytes): () => string {
  const seed = random(8);
  const node = hex(((seed[0] as number) | 0x01) * 2 ** 40 + (seed[1] as number) * 2 ** 32 + (((seed[2] as number) << 24) >>> 0) + ((seed[3] as number) << 16) + ((seed[4] as number) << 8) + (seed[5] as number), 12);
  let clockSeq = (((seed[6] as number) << 8) | (seed[7] as number)) & 0x3fff;
  const suffix = (): string => `-${hex((clockSeq >>> 8) | 0x80, 2)}${hex(clockSeq & 0xff, 2)}-${node}`;
  let tail = suffix();
  let lastMs = -Infinity; // the millisecond the ids are being counted in (may run ahead of the clock)
  let lastClock = -Infinity; // the clock's last reading
  let count = 0;
  return () => {
    const ms = now();
    if (ms < lastClock) {
      clockSeq = (clockSeq + 1) & 0x3fff; // the clock stepped back: a new sequence keeps the ids unique
      tail = suffix();
      lastMs = ms;
      count = 0;
    } else if (ms > lastMs) {
      lastMs = ms;
      count = 0;
    } else if (++count >= 10000) {
      lastMs += 1; // 10 000 ids in one millisecond: borrow the next one
      count = 0;
    }
    lastClock = ms;
    const msecs = lastMs + UUID_EPOCH_OFFSET_MS;
    const t = (msecs % 0x10000000) * 10000 + count;
    const low = t % 0x100000000;
    const high = (Math.floor(msecs / 0x10000000) * 625 + Math.floor(t / 0x100000000)) & 0xfffffff;
    return `${hex(low, 8)}-${hex(high & 0xffff, 4)}-${hex(((high >>> 16) & 0x0fff) | 0x1000, 4)}${tail}`;
  };
}

export const randomIds: IdSource = {
  sampleId: uuid1Generator(),
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
