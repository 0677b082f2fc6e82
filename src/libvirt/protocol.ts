// The remote program's procedures ceilopoll uses: numbers, argument encoders and reply decoders.
// Numbers and structs are libvirt's append-only ABI (remote_protocol.x); see docs/libvirt-rpc.md §3.
// Everything here is pure: bytes in, plain objects out.

import { ProtocolError, type RemoteErrorFields } from './errors.js';
import { XdrReader, XdrWriter, readTypedParam } from './xdr.js';

export const Proc = {
  CONNECT_OPEN: 1,
  CONNECT_CLOSE: 2,
  DOMAIN_GET_XML_DESC: 14,
  DOMAIN_LOOKUP_BY_UUID: 24,
  CONNECT_GET_HOSTNAME: 59,
  CONNECT_SUPPORTS_FEATURE: 60,
  AUTH_LIST: 66,
  AUTH_POLKIT: 70,
  CONNECT_GET_URI: 110,
  CONNECT_GET_LIB_VERSION: 157,
  DOMAIN_MEMORY_STATS: 159,
  DOMAIN_GET_STATE: 212,
  DOMAIN_GET_METADATA: 265,
  CONNECT_LIST_ALL_DOMAINS: 273,
  DOMAIN_SET_MEMORY_STATS_PERIOD: 308,
  CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: 316,
  CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: 317,
  DOMAIN_EVENT_CALLBACK_LIFECYCLE: 318,
  CONNECT_GET_ALL_DOMAIN_STATS: 344,
  DOMAIN_EVENT_CALLBACK_METADATA_CHANGE: 379,
} as const;

const procNames = new Map<number, string>(Object.entries(Proc).map(([k, v]) => [v, k]));
export const procName = (proc: number): string => procNames.get(proc) ?? `procedure ${proc}`;

export const Limits = {
  DOMAIN_LIST_MAX: 16_384,
  DOMAIN_STATS_PARAMS_MAX: 262_144,
  DOMAIN_MEMORY_STATS_MAX: 1024,
  AUTH_TYPE_LIST_MAX: 20,
} as const;

export const AuthType = { NONE: 0, SASL: 1, POLKIT: 2 } as const;

/** virDrvFeature values for CONNECT_SUPPORTS_FEATURE. */
export const Feature = { PROGRAM_KEEPALIVE: 10, REMOTE_EVENT_CALLBACK: 14 } as const;

export const ConnectFlags = { READ_ONLY: 1 } as const;

export const ListDomainsFlags = { ACTIVE: 1, INACTIVE: 2 } as const;

/** VIR_DOMAIN_STATS_* groups for CONNECT_GET_ALL_DOMAIN_STATS. */
export const StatsGroup = { STATE: 1, CPU_TOTAL: 2, BALLOON: 4, VCPU: 8 } as const;

export const GetAllStatsFlags = {
  ACTIVE: 1,
  INACTIVE: 2,
  NOWAIT: 1 << 29,
  BACKING: 1 << 30,
  ENFORCE_STATS: 0x80000000,
} as const;

export const MetadataType = { DESCRIPTION: 0, TITLE: 1, ELEMENT: 2 } as const;

/** VIR_DOMAIN_AFFECT_* / VIR_DOMAIN_MEM_*: same values. */
export const AffectFlags = { CURRENT: 0, LIVE: 1, CONFIG: 2 } as const;

export const EventId = { LIFECYCLE: 0, METADATA_CHANGE: 23 } as const;

export const DomainState = {
  NOSTATE: 0,
  RUNNING: 1,
  BLOCKED: 2,
  PAUSED: 3,
  SHUTDOWN: 4,
  SHUTOFF: 5,
  CRASHED: 6,
  PMSUSPENDED: 7,
} as const;

const stateNames = ['nostate', 'running', 'blocked', 'paused', 'shutdown', 'shutoff', 'crashed', 'pmsuspended'];
export const domainStateName = (s: number): string => stateNames[s] ?? `unknown(${s})`;

export const LifecycleEvent = {
  DEFINED: 0,
  UNDEFINED: 1,
  STARTED: 2,
  SUSPENDED: 3,
  RESUMED: 4,
  STOPPED: 5,
  SHUTDOWN: 6,
  PMSUSPENDED: 7,
  CRASHED: 8,
} as const;

const lifecycleNames = ['defined', 'undefined', 'started', 'suspended', 'resumed', 'stopped', 'shutdown', 'pmsuspended', 'crashed'];
export const lifecycleEventName = (e: number): string => lifecycleNames[e] ?? `unknown(${e})`;

// ---- types -----------------------------------------------------------------------------------------

/**
 * A domain as the daemon names it. Passed back verbatim in calls: the daemon looks domains up by
 * uuid (the name only shows in error text).
 */
export interface DomainRef {
  name: string;
  /** canonical text form, lower case, e.g. c0ffee00-0000-4000-8000-000000000001 */
  uuid: string;
  /** -1 when the domain is not running */
  id: number;
}

/**
 * libvirt's "no value" for an unsigned 64-bit stat (2^64 - 1) as it arrives in a JS number: the
 * conversion rounds it to 2^64. Stats are KiB and counts, far below 2^53, so nothing real is rounded.
 */
export const U64_MAX_AS_NUMBER = 2 ** 64;

/** Memory statistics by name, in KiB except the fault counts and last_update (epoch seconds). */
export interface MemoryStats {
  swap_in?: number;
  swap_out?: number;
  major_fault?: number;
  minor_fault?: number;
  unused?: number;
  available?: number;
  actual?: number;
  rss?: number;
  usable?: number;
  last_update?: number;
  disk_caches?: number;
  hugetlb_pgalloc?: number;
  hugetlb_pgfail?: number;
}
export type MemoryStatName = keyof MemoryStats;

/** VIR_DOMAIN_MEMORY_STAT_* tags, in tag order (libvirt-domain.h). */
export const MEMORY_STAT_TAGS: readonly MemoryStatName[] = [
  'swap_in',
  'swap_out',
  'major_fault',
  'minor_fault',
  'unused',
  'available',
  'actual',
  'rss',
  'usable',
  'last_update',
  'disk_caches',
  'hugetlb_pgalloc',
  'hugetlb_pgfail',
];
/** VIR_DOMAIN_MEMORY_STAT_NR: how many stats we ask for. */
export const MEMORY_STAT_NR = MEMORY_STAT_TAGS.length;

/**
 * The BALLOON group of CONNECT_GET_ALL_DOMAIN_STATS, by name. `current` is what dommemstat calls
 * `actual`; `last_update` is the wire's `balloon.last-update` (a hyphen there). Guest-side fields are
 * present only for a running domain whose job lock was free (see NOWAIT) and whose guest reports.
 */
export interface BalloonStats extends Omit<MemoryStats, 'actual'> {
  current?: number;
  maximum?: number;
}

export type ParamValue = number | bigint | string | boolean;

export interface DomainStatsRecord {
  domain: DomainRef;
  /** the STATE group, when asked for */
  state?: DomainStateInfo;
  /** the BALLOON group, when asked for and the driver has it (libvirt's test driver does not) */
  balloon?: BalloonStats;
  /** every typed parameter as sent, by field name ("state.state", "balloon.last-update", ...) */
  params: Record<string, ParamValue>;
}

export interface DomainStateInfo {
  state: number;
  reason: number;
}

export interface LifecycleEventMsg {
  callbackId: number;
  domain: DomainRef;
  event: number;
  detail: number;
}

export interface MetadataChangeEventMsg {
  callbackId: number;
  domain: DomainRef;
  type: number;
  nsuri: string | null;
}

// ---- shared codecs -----------------------------------------------------------------------------------

/** A hex digit's value, or -1. */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  const l = c | 0x20; // a-f, A-F
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/**
 * The 16 bytes of a uuid written as 32 hex digits, with or without dashes anywhere (as before:
 * dashes are dropped, then exactly 32 hex digits must remain). By hand, not with a regex and a hex
 * decode: every per-domain call of a cycle encodes one.
 */
export function uuidToBytes(uuid: string): Buffer {
  const out = Buffer.allocUnsafe(16);
  let k = 0;
  let hi = -1;
  for (let i = 0; i < uuid.length; i++) {
    const c = uuid.charCodeAt(i);
    if (c === 45) continue; // '-'
    const v = hexValue(c);
    if (v < 0 || k === 16) throw new RangeError(`not a uuid: "${uuid}"`);
    if (hi < 0) hi = v;
    else {
      out[k++] = (hi << 4) | v;
      hi = -1;
    }
  }
  if (k !== 16 || hi >= 0) throw new RangeError(`not a uuid: "${uuid}"`);
  return out;
}

export function uuidFromBytes(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function readDomain(r: XdrReader): DomainRef {
  const name = r.string();
  const uuid = uuidFromBytes(r.fixedOpaque(16));
  const id = r.int();
  return { name, uuid, id };
}

export function writeDomain(w: XdrWriter, d: DomainRef): void {
  w.string(d.name).fixedOpaque(uuidToBytes(d.uuid), 16).int(d.id);
}

const optString = (r: XdrReader): string | null => r.optional((x) => x.string());

export function decodeRemoteError(payload: Buffer): RemoteErrorFields {
  const r = new XdrReader(payload, 'remote_error');
  const code = r.int();
  const domain = r.int();
  const message = optString(r);
  const level = r.int();
  const dom = r.optional(readDomain);
  const str1 = optString(r);
  const str2 = optString(r);
  const str3 = optString(r);
  const int1 = r.int();
  const int2 = r.int();
  // remote_network net (optional name + uuid): read it only to check the struct's length.
  r.optional((x) => {
    x.string();
    x.fixedOpaque(16);
  });
  r.end();
  return { code, domain, message, level, domainName: dom?.name ?? null, str1, str2, str3, int1, int2 };
}

// ---- per-procedure arguments ----------------------------------------------------------------------

export const encode = {
  connectOpen(name: string | null, flags: number): Buffer {
    return new XdrWriter()
      .optional(name, (w, v) => w.string(v))
      .uint(flags)
      .toBuffer();
  },
  supportsFeature(feature: number): Buffer {
    return new XdrWriter().int(feature).toBuffer();
  },
  listAllDomains(flags: number): Buffer {
    return new XdrWriter().int(1 /* need_results */).uint(flags).toBuffer();
  },
  domainFlags(dom: DomainRef, flags: number): Buffer {
    const w = new XdrWriter();
    writeDomain(w, dom);
    return w.uint(flags).toBuffer();
  },
  memoryStats(dom: DomainRef, maxStats: number, flags: number): Buffer {
    const w = new XdrWriter();
    writeDomain(w, dom);
    return w.uint(maxStats).uint(flags).toBuffer();
  },
  getMetadata(dom: DomainRef, type: number, uri: string | null, flags: number): Buffer {
    const w = new XdrWriter();
    writeDomain(w, dom);
    return w
      .int(type)
      .optional(uri, (x, v) => x.string(v))
      .uint(flags)
      .toBuffer();
  },
  getAllDomainStats(doms: readonly DomainRef[], stats: number, flags: number): Buffer {
    return new XdrWriter()
      .array(doms, Limits.DOMAIN_LIST_MAX, writeDomain)
      .uint(stats)
      .uint(flags)
      .toBuffer();
  },
  setMemoryStatsPeriod(dom: DomainRef, period: number, flags: number): Buffer {
    const w = new XdrWriter();
    writeDomain(w, dom);
    return w.int(period).uint(flags).toBuffer();
  },
  eventRegisterAny(eventId: number, dom: DomainRef | null): Buffer {
    return new XdrWriter().int(eventId).optional(dom, writeDomain).toBuffer();
  },
  eventDeregisterAny(callbackId: number): Buffer {
    return new XdrWriter().int(callbackId).toBuffer();
  },
  lookupByUuid(uuid: string): Buffer {
    return new XdrWriter().fixedOpaque(uuidToBytes(uuid), 16).toBuffer();
  },
};

// ---- per-procedure replies ------------------------------------------------------------------------

function decodeWith<T>(payload: Buffer, what: string, read: (r: XdrReader) => T): T {
  const r = new XdrReader(payload, what);
  const v = read(r);
  r.end();
  return v;
}

/** Memory stats reply: {tag, val} pairs in driver order. Unknown tags (newer libvirt) are ignored. */
function readMemoryStats(r: XdrReader): MemoryStats {
  const out: MemoryStats = {};
  const n = r.uint();
  if (n > Limits.DOMAIN_MEMORY_STATS_MAX) {
    throw new ProtocolError(`memory stats reply: ${n} entries exceeds the maximum ${Limits.DOMAIN_MEMORY_STATS_MAX}`);
  }
  for (let i = 0; i < n; i++) {
    const tag = r.int();
    const val = r.uhyperNumber();
    const name = MEMORY_STAT_TAGS[tag];
    if (name !== undefined) out[name] = val;
  }
  return out;
}

const BALLOON_FIELDS: Record<string, keyof BalloonStats> = {
  'balloon.current': 'current',
  'balloon.maximum': 'maximum',
  'balloon.swap_in': 'swap_in',
  'balloon.swap_out': 'swap_out',
  'balloon.major_fault': 'major_fault',
  'balloon.minor_fault': 'minor_fault',
  'balloon.unused': 'unused',
  'balloon.available': 'available',
  'balloon.usable': 'usable',
  'balloon.last-update': 'last_update',
  'balloon.disk_caches': 'disk_caches',
  'balloon.hugetlb_pgalloc': 'hugetlb_pgalloc',
  'balloon.hugetlb_pgfail': 'hugetlb_pgfail',
  'balloon.rss': 'rss',
};

function readStatsRecord(r: XdrReader): DomainStatsRecord {
  const domain = readDomain(r);
  const list = r.array(Limits.DOMAIN_STATS_PARAMS_MAX, readTypedParam, 'typed parameters');
  const rec: DomainStatsRecord = { domain, params: {} };
  let stateValue: number | undefined;
  let reason: number | undefined;
  for (const { field, value } of list) {
    rec.params[field] = value.value;
    if (field === 'state.state') stateValue = Number(value.value);
    else if (field === 'state.reason') reason = Number(value.value);
    else {
      const name = BALLOON_FIELDS[field];
      if (name !== undefined && (typeof value.value === 'bigint' || typeof value.value === 'number')) {
        (rec.balloon ??= {})[name] = Number(value.value);
      }
    }
  }
  if (stateValue !== undefined) rec.state = { state: stateValue, reason: reason ?? 0 };
  return rec;
}

export const decode = {
  empty(payload: Buffer, what: string): void {
    decodeWith(payload, what, () => undefined);
  },
  authList(payload: Buffer): number[] {
    return decodeWith(payload, 'AUTH_LIST reply', (r) => r.array(Limits.AUTH_TYPE_LIST_MAX, (x) => x.int(), 'auth types'));
  },
  int(payload: Buffer, what: string): number {
    return decodeWith(payload, what, (r) => r.int());
  },
  string(payload: Buffer, what: string): string {
    return decodeWith(payload, what, (r) => r.string());
  },
  uhyper(payload: Buffer, what: string): bigint {
    return decodeWith(payload, what, (r) => r.uhyper());
  },
  domain(payload: Buffer, what: string): DomainRef {
    return decodeWith(payload, what, readDomain);
  },
  listAllDomains(payload: Buffer): DomainRef[] {
    return decodeWith(payload, 'CONNECT_LIST_ALL_DOMAINS reply', (r) => {
      const doms = r.array(Limits.DOMAIN_LIST_MAX, readDomain, 'domains');
      r.uint(); // ret: the count again
      return doms;
    });
  },
  domainState(payload: Buffer): DomainStateInfo {
    return decodeWith(payload, 'DOMAIN_GET_STATE reply', (r) => ({ state: r.int(), reason: r.int() }));
  },
  memoryStats(payload: Buffer): MemoryStats {
    return decodeWith(payload, 'DOMAIN_MEMORY_STATS reply', readMemoryStats);
  },
  allDomainStats(payload: Buffer): DomainStatsRecord[] {
    return decodeWith(payload, 'CONNECT_GET_ALL_DOMAIN_STATS reply', (r) =>
      r.array(Limits.DOMAIN_LIST_MAX, readStatsRecord, 'stats records'),
    );
  },
  lifecycleEvent(payload: Buffer): LifecycleEventMsg {
    return decodeWith(payload, 'lifecycle event', (r) => ({
      callbackId: r.int(),
      domain: readDomain(r),
      event: r.int(),
      detail: r.int(),
    }));
  },
  metadataChangeEvent(payload: Buffer): MetadataChangeEventMsg {
    return decodeWith(payload, 'metadata-change event', (r) => ({
      callbackId: r.int(),
      domain: readDomain(r),
      type: r.int(),
      nsuri: optString(r),
    }));
  },
};
