// Reads every domain's state and memory statistics for one cycle: one CONNECT_GET_ALL_DOMAIN_STATS
// (STATE | BALLOON, NOWAIT) for all domains. Drivers without the balloon group (libvirt's test
// driver) get DOMAIN_MEMORY_STATS for every active domain instead, all in flight at once on the one
// connection. A per-domain failure stays with that domain.
//
// A stalled bulk call. NOWAIT only skips a domain whose job someone else already holds. A QEMU that
// has stopped answering its monitor (SIGSTOPped, hung) with nobody holding its job stalls the bulk
// call itself: libvirtd takes that domain's job for us and waits on the monitor, for ever, so the
// call would only end at our per-call timeout (30 s) and the cycle would fail for every domain. So
// when the bulk reply has not come within a short stall budget, an identical call is sent next to
// the first: inside libvirtd the first call now holds the stuck domain's job, so NOWAIT makes the
// second skip that domain (it comes back "busy") and answer at once. Whichever reply comes first is
// used, the other call is abandoned (Connection drops its late reply). When the second stalls too
// (libvirtd itself is hung), the first call's timeout fails the cycle as before.

import type { LibvirtClient } from '../libvirt/client.js';
import { LibvirtError } from '../libvirt/errors.js';
import { DomainState, GetAllStatsFlags, StatsGroup, type DomainRef, type DomainStatsRecord, type MemoryStats } from '../libvirt/protocol.js';
import { balloonToMemoryStats, isMissing, type MemoryInspection } from './memory.js';

export interface DomainReading {
  domain: DomainRef;
  state: number;
  /** null when the domain is not active or the per-domain call failed */
  stats: MemoryStats | null;
  fromBulk: boolean;
  error?: Error;
}

/** The bulk call had no reply within the stall budget and was sent a second time. */
export interface BulkStall {
  /** the stall budget in ms */
  budgetMs: number;
  /** whose reply was used: the first call's (it came after all) or the re-issued one's */
  answeredBy: 'first' | 'second';
  /** active domains the reply used has without their balloon query (NOWAIT skipped them: busy) */
  busy: DomainRef[];
}

export interface CycleReading {
  readings: DomainReading[];
  /** false when the driver has no balloon group and per-domain calls were made */
  bulk: boolean;
  /** libvirt calls made this cycle, a re-issued bulk call included */
  calls: number;
  /** set when the bulk call stalled and was re-issued */
  stall?: BulkStall;
}

export interface ReadOptions {
  /**
   * How long (ms) the bulk call may go unanswered before an identical one is sent next to it (see
   * the top of this file). 0 = never re-issue. Default DEFAULT_STALL_BUDGET_MS. A budget at or above
   * the connection's call timeout does nothing: the call times out first.
   */
  stallBudgetMs?: number;
}

/**
 * The default stall budget. A healthy bulk call answers in milliseconds (about 10 ms for 8 guests on
 * the lab; libvirt queries the domains one after the other, so a few hundred ms for hundreds of
 * them); 2 s is well clear of that and far below the 30 s call timeout.
 */
export const DEFAULT_STALL_BUDGET_MS = 2000;

/**
 * The agent's stall budget for a polling interval: DEFAULT_STALL_BUDGET_MS, at most a quarter of
 * the interval (250 ms at 1 s, 500 ms at 2 s, 2 s from 8 s up). A stalled cycle takes at most twice
 * the budget (the budget, then as long again waiting for the first call when the second found
 * domains busy), so it still ends within half the interval.
 */
export const stallBudgetFor = (intervalSeconds: number): number => Math.min(DEFAULT_STALL_BUDGET_MS, Math.max(1, Math.round(intervalSeconds * 250)));

/** per-domain calls in flight at once on the fall-back path */
const PER_DOMAIN_IN_FLIGHT = 64;

const isActive = (state: number): boolean => state === DomainState.RUNNING || state === DomainState.PAUSED || state === DomainState.BLOCKED;

/** Active domains whose balloon group came without rss: NOWAIT skipped their monitor query. */
const busyIn = (records: readonly DomainStatsRecord[]): DomainRef[] =>
  records.filter((r) => isActive(r.state?.state ?? DomainState.NOSTATE) && r.balloon !== undefined && r.balloon.rss === undefined).map((r) => r.domain);

const noop = (): void => undefined;

/**
 * p's value when p settles within ms, else null; p is not stopped (the caller abandons it). A
 * rejection of p within ms rejects the result, as Promise.race does: a caller that wants a failure
 * taken like a timeout passes `p.catch(() => null)`. ms <= 0 (or NaN) is no limit: p itself. The
 * timer is cleared however it ends.
 */
async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  if (!(ms > 0)) return p;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** What every stats call of a cycle asks for: state and balloon, skipping a domain whose job is held. */
const STATS = { stats: StatsGroup.STATE | StatsGroup.BALLOON, flags: GetAllStatsFlags.NOWAIT };

async function bulkStats(client: LibvirtClient, budgetMs: number): Promise<{ records: DomainStatsRecord[]; calls: number; stall?: BulkStall }> {
  const timeoutMs = client.conn.callTimeoutMs;
  if (!(budgetMs > 0) || (timeoutMs > 0 && budgetMs >= timeoutMs)) {
    return { records: await client.getAllDomainStats(STATS), calls: 1 };
  }
  const firstCall = new AbortController();
  const first = client.getAllDomainStats({ ...STATS, signal: firstCall.signal });
  // A failure within the budget is the cycle's, as without the re-issue; null: stalled.
  const records = await within(first, budgetMs);
  if (records !== null) return { records, calls: 1 };
  const secondCall = new AbortController();
  const second = client.getAllDomainStats({ ...STATS, signal: secondCall.signal });
  const fromFirst = first.then((records) => ({ records, answeredBy: 'first' as const }));
  try {
    // The first to settle wins, a failure included: when both stall, that is the first call's
    // timeout, as without the re-issue.
    let won = await Promise.race([fromFirst, second.then((records) => ({ records, answeredBy: 'second' as const }))]);
    if (won.answeredBy === 'second' && busyIn(won.records).length > 0) {
      // The two calls ran side by side: a domain the first was querying at that moment (slow, not
      // stuck: a loaded host, a domain lock a destroy held) is busy for the second. Give the first
      // as long again; if it answers, nothing was stuck and its reply is the whole truth.
      // A failure of the first is taken like no answer: the second's reply stands.
      const late = await within(fromFirst.catch(() => null), budgetMs);
      if (late !== null) won = late;
    }
    return { records: won.records, calls: 2, stall: { budgetMs, answeredBy: won.answeredBy, busy: busyIn(won.records) } };
  } finally {
    // The other call is forgotten (a no-op for the one that settled); its CallAbandonedError is
    // nobody's business, and its reply, should it come, is dropped by the connection.
    first.catch(noop);
    fromFirst.catch(noop);
    second.catch(noop);
    firstCall.abort();
    secondCall.abort();
  }
}

/** pauses before asking busy domains again, and how many times */
const BUSY_RETRY_PAUSES_MS = [20, 80];

/**
 * Asks the domains NOWAIT skipped (busy) once or twice more, after a short pause, and takes what
 * comes back complete. A job held for a moment (another client's query, or one of our own bulk
 * calls that was abandoned after a stall and still walks the domains inside libvirtd) is gone by
 * then; a domain that is really stuck is skipped again at once and stays busy.
 */
async function retryBusy(client: LibvirtClient, records: DomainStatsRecord[], budgetMs: number): Promise<{ records: DomainStatsRecord[]; calls: number }> {
  let calls = 0;
  for (const pauseMs of BUSY_RETRY_PAUSES_MS) {
    const busy = busyIn(records);
    if (busy.length === 0) break;
    await new Promise((r) => setTimeout(r, pauseMs));
    const call = new AbortController();
    const again = client.getAllDomainStats({ ...STATS, doms: busy, signal: call.signal });
    calls++;
    // null: no answer within the budget (a budget of 0: no limit but the call's timeout), or a
    // failure (gone meanwhile, or anything else): keep what the bulk call said
    const fresh = await within(again.catch(() => null), budgetMs);
    again.catch(noop);
    call.abort();
    if (fresh === null) break;
    const byUuid = new Map(fresh.filter((r) => r.balloon?.rss !== undefined).map((r) => [r.domain.uuid, r]));
    if (byUuid.size === 0) continue;
    records = records.map((r) => byUuid.get(r.domain.uuid) ?? r);
  }
  return { records, calls };
}

export async function readMemoryStats(client: LibvirtClient, opts: ReadOptions = {}): Promise<CycleReading> {
  const budgetMs = opts.stallBudgetMs ?? DEFAULT_STALL_BUDGET_MS;
  const first = await bulkStats(client, budgetMs);
  const { stall } = first;
  let { records, calls: bulkCalls } = first;
  const withStall = <T extends object>(r: T): T & { stall?: BulkStall } => (stall ? { ...r, stall } : r);
  // The QEMU driver sends balloon.current and balloon.maximum for every domain, even shut off; a
  // reply without any balloon field comes from a driver that lacks the group.
  const bulk = records.length === 0 || records.some((r) => r.balloon !== undefined);
  if (bulk) {
    const retried = await retryBusy(client, records, budgetMs);
    records = retried.records;
    bulkCalls += retried.calls;
    return withStall({
      bulk: true,
      calls: bulkCalls,
      readings: records.map((r) => ({
        domain: r.domain,
        state: r.state?.state ?? DomainState.NOSTATE,
        stats: r.balloon ? balloonToMemoryStats(r.balloon) : {},
        fromBulk: true,
      })),
    });
  }
  let calls = bulkCalls;
  const readOne = async (r: DomainStatsRecord): Promise<DomainReading | null> => {
    const state = r.state?.state ?? DomainState.NOSTATE;
    if (!isActive(state)) return { domain: r.domain, state, stats: null, fromBulk: false };
    calls++;
    try {
      return { domain: r.domain, state, stats: await client.memoryStats(r.domain), fromBulk: false };
    } catch (err) {
      // The domain went away between the two calls: it is simply not there any more.
      if (err instanceof LibvirtError && err.isNoDomain) return null;
      return { domain: r.domain, state, stats: null, fromBulk: false, error: err as Error };
    }
  };
  // At most PER_DOMAIN_IN_FLIGHT calls at a time: libvirtd works on 5 of a client's calls at once
  // anyway (max_client_requests), and thousands of pending calls only cost memory.
  const readings: Array<DomainReading | null> = new Array<DomainReading | null>(records.length).fill(null);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < records.length) {
      const i = next++;
      readings[i] = await readOne(records[i] as DomainStatsRecord);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PER_DOMAIN_IN_FLIGHT, records.length) }, worker));
  return withStall({ bulk: false, calls, readings: readings.filter((r): r is DomainReading => r !== null) });
}

/** What the stall log needs of a cycle (poll-cycle's CycleResult has it). */
export interface StallLogInput {
  stall?: BulkStall;
  instances: ReadonlyArray<{ instance: { uuid: string }; inspection: MemoryInspection }>;
}

/**
 * Says once per change that the bulk call stalled and was re-issued: a line for a stall, none for
 * a later stall with the same outcome (the same domains busy, the same call answering) while one of
 * those domains is still reported busy; after a cycle without a stall in which none of them is
 * busy any more, the next stall is told again.
 */
export class BulkStallLog {
  private last: { key: string; busy: string[] } | null = null;

  /** The line to log for this cycle, or null. */
  next(cycle: StallLogInput): string | null {
    const { stall } = cycle;
    if (!stall) {
      if (this.last) {
        const busyNow = new Set(
          cycle.instances.filter((i) => isMissing(i.inspection.resident) && i.inspection.resident.reason === 'busy').map((i) => i.instance.uuid),
        );
        if (!this.last.busy.some((u) => busyNow.has(u))) this.last = null;
      }
      return null;
    }
    const busy = stall.busy.map((d) => d.uuid).sort();
    const key = `${stall.answeredBy} ${busy.join(',')}`;
    if (this.last?.key === key) return null;
    this.last = { key, busy };
    return describeStall(stall);
  }
}

export function describeStall(stall: BulkStall): string {
  const head = `the bulk CONNECT_GET_ALL_DOMAIN_STATS had no reply within its ${stall.budgetMs} ms stall budget and was sent again (a QEMU that does not answer its monitor keeps the first call waiting inside libvirtd)`;
  const busy = stall.busy.length > 0 ? stall.busy.map((d) => `${d.name} (${d.uuid})`).join(', ') : 'none';
  return stall.answeredBy === 'second'
    ? `${head}; the second call answered, busy (skipped by NOWAIT, no balloon statistics this cycle): ${busy}`
    : `${head}; the first call answered after all (libvirtd slow, no domain stuck), busy: ${busy}`;
}
