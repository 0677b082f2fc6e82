// Memory inspection: libvirt's numbers for one domain in, the memory meters' values out, and for
// every value that cannot be given, exactly one reason an operator can act on. Pure: the clock
// comes in as `nowSeconds`.
//
// memory.usage = (available - usable) / 1024, else (available - unused) / 1024 (Ceilometer's
// formula since Rocky, ceilometer-wire.md §1.2); KiB in, MB (really MiB) out, always a float.

import { DomainState, U64_MAX_AS_NUMBER, type BalloonStats, type MemoryStats } from '../libvirt/protocol.js';

export type MissingReason =
  | 'not-running'
  | 'no-balloon-device'
  | 'stats-period-disabled'
  | 'guest-not-reporting'
  | 'stale'
  | 'busy'
  | 'invalid-stats'
  | 'libvirt-error';

export const MISSING_REASONS: readonly MissingReason[] = [
  'not-running',
  'no-balloon-device',
  'stats-period-disabled',
  'guest-not-reporting',
  'stale',
  'busy',
  'invalid-stats',
  'libvirt-error',
];

export type UsageFormula = 'available-usable' | 'available-unused';

/** What the domain XML says about the balloon (see discovery). */
export interface BalloonDevice {
  /** 'virtio', 'none', another model, or null when the XML has no <memballoon> at all */
  model: string | null;
  /** <stats period='N'/>, 0 when absent */
  statsPeriod: number;
}

export interface InspectInput {
  /** libvirt domain state (DomainState) */
  state: number;
  balloon: BalloonDevice;
  /** stats by name, from the bulk call or DOMAIN_MEMORY_STATS; null when the call failed */
  stats: MemoryStats | null;
  /** the libvirt error when the per-domain call failed */
  error?: Error;
  /** true when the stats came from GET_ALL_DOMAIN_STATS (rss missing there means NOWAIT skipped it) */
  fromBulk: boolean;
  /** true when libvirtd gave no answer for the domain within the stall budget (state is the last known) */
  unanswered?: boolean;
  nowSeconds: number;
  /** stats older than factor x period are stale (default 3) */
  stalenessFactor?: number;
}

export interface Missing {
  reason: MissingReason;
  /** one line for logs and `doctor`: what was seen */
  detail: string;
}

/** The memory meters' volumes in MB, each a value or the reason it is missing. */
export interface MemoryInspection {
  usage: { value: number; formula: UsageFormula } | Missing;
  resident: number | Missing;
  swapIn: number | Missing;
  swapOut: number | Missing;
  actual: number | Missing;
  available: number | Missing;
  /** the guest's last_update (epoch s), when it reported one */
  lastUpdate: number | null;
}

export const isMissing = (v: unknown): v is Missing => typeof v === 'object' && v !== null && 'reason' in v;

/** libvirt's "no value": -1 from a signed source, or 2^64-1 (which a JS number rounds to 2^64). */
const isSentinel = (v: number): boolean => v < 0 || v >= U64_MAX_AS_NUMBER / 2;

/** Converts the bulk call's balloon group to DOMAIN_MEMORY_STATS names (current is actual). */
export function balloonToMemoryStats(b: BalloonStats): MemoryStats {
  const { current, maximum: _maximum, ...rest } = b;
  return current === undefined ? rest : { actual: current, ...rest };
}

const stateWord = (s: number): string =>
  ({ 0: 'in no state', 2: 'blocked', 4: 'shutting down', 5: 'shut off', 6: 'crashed', 7: 'suspended by guest power management' } as Record<number, string>)[s] ??
  `in state ${s}`;

const notRunning = (inp: InspectInput): Missing | null =>
  inp.state === DomainState.RUNNING || inp.state === DomainState.PAUSED
    ? null
    : { reason: 'not-running', detail: `domain is ${stateWord(inp.state)}` };

// The domain's own call had no answer within the stall budget: libvirtd holds the domain (a destroy
// while QEMU dies, the clean-up after a QEMU exited), which NOWAIT cannot skip.
const noAnswer = (inp: InspectInput): Missing | null =>
  inp.unanswered
    ? { reason: 'busy', detail: 'libvirtd gave no answer for the domain within the stall budget: it holds the domain (a destroy, or the clean-up after its QEMU exited)' }
    : null;

const callFailed = (inp: InspectInput): Missing | null =>
  inp.error || inp.stats === null ? { reason: 'libvirt-error', detail: inp.error?.message ?? 'no statistics returned' } : null;

// With NOWAIT, a domain whose job lock is held (migration, snapshot, a stuck monitor) comes back
// with only what needs no QEMU query: no rss, which libvirt otherwise always reads for a live domain.
const skippedByNowait = (inp: InspectInput): Missing | null =>
  inp.fromBulk && inp.stats !== null && inp.stats.rss === undefined
    ? { reason: 'busy', detail: 'libvirt skipped the balloon query: the domain is busy with another job (NOWAIT)' }
    : null;

/** Why the host-side numbers (rss, the balloon's actual size) are missing, or null. */
const hostSideMissing = (inp: InspectInput): Missing | null => notRunning(inp) ?? noAnswer(inp) ?? callFailed(inp) ?? skippedByNowait(inp);

/**
 * Why the guest-side numbers (available, usable, unused, swap) cannot be used, or null. The first
 * cause that explains the absence wins.
 */
function guestSideMissing(inp: InspectInput): Missing | null {
  const { balloon } = inp;
  const first = notRunning(inp) ?? noAnswer(inp) ?? callFailed(inp);
  if (first) return first;
  const stats = inp.stats ?? {};
  if (balloon.model === null || balloon.model === 'none') {
    return { reason: 'no-balloon-device', detail: balloon.model === null ? 'the domain XML has no <memballoon>' : "<memballoon model='none'/>" };
  }
  const busy = skippedByNowait(inp);
  if (busy) return busy;
  if (balloon.statsPeriod <= 0) {
    return { reason: 'stats-period-disabled', detail: `<memballoon model='${balloon.model}'> has no <stats period>: QEMU never refreshes the guest's numbers` };
  }
  const lastUpdate = stats.last_update;
  if (stats.available === undefined && stats.unused === undefined && stats.usable === undefined) {
    return {
      reason: 'guest-not-reporting',
      detail: `stats period ${balloon.statsPeriod}s but the guest sends no balloon statistics (last_update ${lastUpdate ?? 'absent'}): no virtio-balloon driver in the guest (Windows: the virtio-win balloon driver and its BLNSVR service), or it has just booted`,
    };
  }
  if (lastUpdate === undefined || lastUpdate === 0 || isSentinel(lastUpdate)) {
    return { reason: 'stale', detail: "the guest's statistics carry no last_update time" };
  }
  const factor = inp.stalenessFactor ?? 3;
  const age = inp.nowSeconds - lastUpdate;
  if (age > factor * balloon.statsPeriod) {
    const paused = inp.state === DomainState.PAUSED ? ' (the domain is paused)' : '';
    return { reason: 'stale', detail: `last_update is ${Math.round(age)}s old, over ${factor} x the ${balloon.statsPeriod}s stats period${paused}` };
  }
  return null;
}

function kibToMB(name: string, v: number | undefined, missing: Missing | null): number | Missing {
  if (missing) return missing;
  if (v === undefined) return { reason: 'guest-not-reporting', detail: `the guest reports no ${name}` };
  if (isSentinel(v)) return { reason: 'invalid-stats', detail: `${name} is libvirt's "no value" (${v === U64_MAX_AS_NUMBER ? '2^64-1' : v})` };
  return v / 1024;
}

export function inspectMemory(inp: InspectInput): MemoryInspection {
  const s = inp.stats ?? {};
  const guestMissing = guestSideMissing(inp);

  let usage: MemoryInspection['usage'];
  if (guestMissing) {
    usage = guestMissing;
  } else {
    const free = s.usable !== undefined ? s.usable : s.unused;
    const formula: UsageFormula = s.usable !== undefined ? 'available-usable' : 'available-unused';
    if (s.available === undefined || free === undefined) {
      usage = { reason: 'guest-not-reporting', detail: `the guest reports ${s.available === undefined ? 'no available' : 'neither usable nor unused'}` };
    } else if (isSentinel(s.available) || isSentinel(free)) {
      usage = { reason: 'invalid-stats', detail: `available=${s.available} ${formula === 'available-usable' ? 'usable' : 'unused'}=${free}: libvirt's "no value"` };
    } else if (free > s.available) {
      usage = { reason: 'invalid-stats', detail: `${formula === 'available-usable' ? 'usable' : 'unused'} (${free} KiB) exceeds available (${s.available} KiB): usage would be negative` };
    } else {
      usage = { value: (s.available - free) / 1024, formula };
    }
  }

  // Host-side numbers (rss from /proc, actual from the balloon target) need a live QEMU, not the guest.
  const hostMissing = hostSideMissing(inp);
  const noBalloon: Missing | null =
    inp.balloon.model === 'none' || inp.balloon.model === null
      ? { reason: 'no-balloon-device', detail: 'without a balloon device libvirt reports no actual size' }
      : null;

  const swapBoth = s.swap_in !== undefined && s.swap_out !== undefined;
  // Ceilometer gives swap only when both directions are present (ceilometer-wire.md §1.1).
  const swapMissing: Missing | null =
    guestMissing ?? (swapBoth ? null : { reason: 'guest-not-reporting', detail: 'the guest does not report both swap_in and swap_out' });

  return {
    usage,
    resident: kibToMB('rss', s.rss, hostMissing),
    swapIn: kibToMB('swap_in', s.swap_in, swapMissing),
    swapOut: kibToMB('swap_out', s.swap_out, swapMissing),
    actual: kibToMB('actual', s.actual, hostMissing ?? noBalloon),
    available: kibToMB('available', s.available, guestMissing),
    lastUpdate: s.last_update !== undefined && s.last_update > 0 && !isSentinel(s.last_update) ? s.last_update : null,
  };
}
