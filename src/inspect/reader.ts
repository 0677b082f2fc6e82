// Reads every domain's state and memory statistics for one cycle: one CONNECT_GET_ALL_DOMAIN_STATS
// (STATE | BALLOON, NOWAIT) for all domains. Drivers without the balloon group (libvirt's test
// driver) get DOMAIN_MEMORY_STATS for every active domain instead, all in flight at once on the one
// connection. A per-domain failure stays with that domain.
//
// A stalled bulk call. NOWAIT only skips a domain whose job someone else already holds. Two things
// stall the bulk call itself: a QEMU that has stopped answering its monitor (SIGSTOPped, hung) with
// nobody holding its job (libvirtd takes the job for us and waits on the monitor, for ever), and a
// domain whose lock libvirtd holds (`virsh destroy` while QEMU dies, the clean-up after a QEMU
// exited: seconds, or as long as a process in D state takes to die). Either way the call would only
// end at our per-call timeout (30 s) and the cycle would fail for every domain. So when the bulk
// reply has not come within a short stall budget, each domain of the last answer is asked on its own
// (a one-domain CONNECT_GET_ALL_DOMAIN_STATS, NOWAIT), a few at a time, within a budget as long
// again. The stopped QEMU's job is now held by the first call, so NOWAIT makes its own call answer
// "busy" at once; a locked domain's own call waits, and the domain is reported without an answer
// (busy); every other domain answers. The bulk call is abandoned (Connection drops its late reply);
// should it answer while the domains are being asked, its reply is used.
//
// libvirtd serves only a few of a client's calls at once (max_client_requests, 5 by default) and
// stops reading from the client when they are taken. Calls we stopped waiting for keep their slot
// until libvirtd answers them, so a cycle that starts with two or more of them still unanswered sends
// no bulk call (it would stall the same way) and asks the domains on its own, none whose own call is
// still waiting, and never more at once than the free slots less one.

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
  /** set when libvirtd gave no answer for this domain within the stall budget (see BulkStall.unanswered); state is then the last known one */
  unanswered?: true;
}

/** The bulk call had no reply within the stall budget, or was not sent (earlier calls still unanswered). */
export interface BulkStall {
  /** the stall budget in ms */
  budgetMs: number;
  /**
   * `stalled`: the bulk call had no reply within the budget; `pending`: calls of ours that libvirtd
   * had not answered (`pendingCalls`) kept the cycle from sending one
   */
  cause: 'stalled' | 'pending';
  /** whose answer was used: the bulk call's (it came after all) or each domain's own */
  answeredBy: 'bulk' | 'per-domain';
  /** active domains without their balloon query (NOWAIT skipped them: busy) */
  busy: DomainRef[];
  /**
   * domains that had no answer within the budget: their own call waits inside libvirtd (the
   * domain's lock held), an earlier one of theirs still did, or no slot was left to ask them
   */
  unanswered: DomainRef[];
  /** our calls libvirtd had not answered when the cycle started (given up on, or a domain's own call still waiting) */
  pendingCalls: number;
}

export interface CycleReading {
  readings: DomainReading[];
  /** false when the driver has no balloon group and per-domain calls were made */
  bulk: boolean;
  /** libvirt calls made this cycle, the one-domain calls after a stall included */
  calls: number;
  /** set when the bulk call stalled, or was not sent, and the domains were asked on their own */
  stall?: BulkStall;
}

export interface ReadOptions {
  /**
   * How long (ms) the bulk call may go unanswered before the domains are asked on their own, and
   * how long they then get (see the top of this file). 0 = wait for the bulk call. Default
   * DEFAULT_STALL_BUDGET_MS. A budget at or above the connection's call timeout does nothing: the
   * call times out first.
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
 * the interval (250 ms at 1 s, 500 ms at 2 s, 2 s from 8 s up). A stalled cycle takes at most about
 * twice the budget (the budget, then as long again for the domains' own calls) and the 100 ms of
 * pauses before busy domains are asked again, so it still ends within the interval.
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

/** libvirtd's default max_client_requests: how many of a client's calls it works on at once */
const LIBVIRTD_CLIENT_REQUESTS = 5;

/**
 * With this many of our calls unanswered when a cycle starts, no bulk call is sent. One is the
 * usual aftermath of a stopped QEMU: the abandoned bulk call holds its job, and the next bulk call
 * skips it (NOWAIT). Two or more: something still holds a domain's lock.
 */
const PENDING_SKIPS_BULK = 2;

/** A domain as the last answer had it: whom to ask on its own when the bulk call stalls. */
interface Known {
  domain: DomainRef;
  state: number;
}

/** What asking each domain on its own brought. */
interface PerDomainAnswer {
  records: DomainStatsRecord[];
  /** the domain's call failed (other than "no such domain": gone, left out) */
  failed: Array<{ known: Known; error: Error }>;
  unanswered: Known[];
  calls: number;
}

/** pauses before asking busy domains again, and how many times */
const BUSY_RETRY_PAUSES_MS = [20, 80];

/**
 * Asks the domains NOWAIT skipped (busy) once or twice more, after a short pause, and takes what
 * comes back complete. A job held for a moment (another client's query, or one of our own calls
 * that was abandoned after a stall and still walks the domains inside libvirtd) is gone by then; a
 * domain that is really stuck is skipped again at once and stays busy.
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

/**
 * Reads every domain's state and memory statistics, a cycle at a time. It remembers the domains of
 * the last answer, and which of their own calls still wait inside libvirtd, so that a stalled bulk
 * call costs one cycle its budget and not every domain its samples (see the top of this file). One
 * reader per agent; `readMemoryStats` is a reader of its own for one read.
 */
export class StatsReader {
  private known: Known[] = [];
  /** per-domain calls libvirtd has not answered yet, by uuid (they are not abandoned: each ends by its reply, its timeout or the connection's end) */
  private readonly waiting = new Map<string, Promise<unknown>>();

  async read(client: LibvirtClient, opts: ReadOptions = {}): Promise<CycleReading> {
    const budgetMs = opts.stallBudgetMs ?? DEFAULT_STALL_BUDGET_MS;
    const got = await this.collect(client, budgetMs);
    let { records, calls } = got;
    const { stall, extra } = got;
    // The QEMU driver sends balloon.current and balloon.maximum for every domain, even shut off; a
    // reply without any balloon field comes from a driver that lacks the group.
    const bulk = (records.length === 0 && extra.length === 0) || records.some((r) => r.balloon !== undefined);
    let readings: DomainReading[];
    if (bulk) {
      const retried = await retryBusy(client, records, budgetMs);
      records = retried.records;
      calls += retried.calls;
      readings = records.map((r) => ({
        domain: r.domain,
        state: r.state?.state ?? DomainState.NOSTATE,
        stats: r.balloon ? balloonToMemoryStats(r.balloon) : {},
        fromBulk: true,
      }));
    } else {
      const perDomain = await memoryStatsEach(client, records);
      calls += perDomain.calls;
      readings = perDomain.readings;
    }
    readings.push(...extra);
    this.known = readings; // a reading has the domain and its state: no copy
    // the busy ones are known only now, after the retries of the domains NOWAIT skipped
    return { bulk, calls, readings, ...(stall ? { stall: { ...stall, busy: bulk ? busyIn(records) : [] } } : {}) };
  }

  /**
   * The cycle's stats records: from the bulk call, or, when it stalls or is not sent, from each
   * domain's own call; `extra` has the readings of domains that failed or had no answer.
   */
  private async collect(client: LibvirtClient, budgetMs: number): Promise<{ records: DomainStatsRecord[]; calls: number; stall?: BulkStall; extra: DomainReading[] }> {
    const timeoutMs = client.conn.callTimeoutMs;
    if (!(budgetMs > 0) || (timeoutMs > 0 && budgetMs >= timeoutMs)) {
      return { records: await client.getAllDomainStats(STATS), calls: 1, extra: [] };
    }
    // Our calls libvirtd still owes: given up on, or a domain's own call still waiting. (Not every
    // call in flight: an event's XML read in flight at this moment is no sign of a stall.)
    const pendingCalls = client.conn.unanswered + this.waiting.size;
    const stallOf = (cause: BulkStall['cause'], answeredBy: BulkStall['answeredBy'], unanswered: Known[]): BulkStall => ({
      budgetMs,
      cause,
      answeredBy,
      busy: [], // read() puts in the busy ones, after the retries of the domains NOWAIT skipped
      unanswered: unanswered.map((k) => k.domain),
      pendingCalls,
    });
    if (pendingCalls >= PENDING_SKIPS_BULK && this.known.length > 0) {
      const a = await this.askEach(client, this.known, budgetMs, pendingCalls, () => false);
      return { records: a.records, calls: a.calls, stall: stallOf('pending', 'per-domain', a.unanswered), extra: extraReadings(a) };
    }
    const bulkCall = new AbortController();
    const first = client.getAllDomainStats({ ...STATS, signal: bulkCall.signal });
    // A failure within the budget is the cycle's, as without the fall-back; null: stalled.
    const records = await within(first, budgetMs);
    if (records !== null) return { records, calls: 1, extra: [] };
    try {
      const known = this.known.length > 0 ? this.known : await this.listed(client, budgetMs);
      if (known.length === 0) {
        // Nobody to ask (the first cycle, and libvirtd would not even list the domains): the bulk
        // call's own answer, or its timeout, as without the fall-back.
        return { records: await first, calls: 2, stall: stallOf('stalled', 'bulk', []), extra: [] };
      }
      let bulkAnswered = false;
      // the bulk call, still in flight, holds a slot too
      const each = this.askEach(client, known, budgetMs, client.conn.unanswered + this.waiting.size + 1, () => bulkAnswered);
      // The bulk call may still answer while the domains are asked (the lock was let go): its reply
      // is the whole truth. Its failure now is taken as no answer.
      const won = await Promise.race([
        first.then(
          (records) => ({ bulk: records }),
          () => new Promise<never>(noop),
        ),
        each,
      ]);
      if ('bulk' in won) {
        bulkAnswered = true;
        const asked = await each.then((a) => a.calls, () => 0);
        return { records: won.bulk, calls: 1 + asked, stall: stallOf('stalled', 'bulk', []), extra: [] };
      }
      return { records: won.records, calls: 1 + won.calls, stall: stallOf('stalled', 'per-domain', won.unanswered), extra: extraReadings(won) };
    } finally {
      // Forgotten if it has not answered: its CallAbandonedError is nobody's business, and its
      // reply, should it come, is dropped by the connection.
      first.catch(noop);
      bulkCall.abort();
    }
  }

  /**
   * The domains and their states, from a bulk call for the state group alone (no QEMU query, so no
   * job: it answers while a stopped QEMU's job is held), when it answers within the budget.
   */
  private async listed(client: LibvirtClient, budgetMs: number): Promise<Known[]> {
    const call = new AbortController();
    const list = client.getAllDomainStats({ stats: StatsGroup.STATE, flags: GetAllStatsFlags.NOWAIT, signal: call.signal });
    const recs = await within(list.catch(() => null), budgetMs);
    list.catch(noop);
    call.abort();
    return (recs ?? []).map((r) => ({ domain: r.domain, state: r.state?.state ?? DomainState.NOSTATE }));
  }

  /**
   * Asks each domain on its own (one-domain CONNECT_GET_ALL_DOMAIN_STATS, NOWAIT), within the budget,
   * never more at once than libvirtd's free request slots less one. A domain whose call does not
   * answer in time is unanswered, and its call keeps its slot: the worker that sent it stops. A
   * domain whose earlier call still waits is not asked again.
   */
  private async askEach(client: LibvirtClient, known: readonly Known[], budgetMs: number, slotsTaken: number, stop: () => boolean): Promise<PerDomainAnswer> {
    const deadline = Date.now() + budgetMs;
    const out: PerDomainAnswer = { records: [], failed: [], unanswered: [], calls: 0 };
    const answers = new Map<string, DomainStatsRecord | Error | 'gone'>();
    const todo = known.filter((k) => !this.waiting.has(k.domain.uuid));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length && !stop()) {
        const left = deadline - Date.now();
        if (left <= 0) return;
        const k = todo[next++] as Known;
        const uuid = k.domain.uuid;
        const call = client.getAllDomainStats({ ...STATS, doms: [k.domain] });
        out.calls++;
        this.waiting.set(uuid, call);
        const settled = (): void => {
          if (this.waiting.get(uuid) === call) this.waiting.delete(uuid);
        };
        call.then(settled, settled);
        const answer = await within(
          call.then(
            (recs) => recs.find((r) => r.domain.uuid === uuid) ?? ('gone' as const),
            (err: unknown) => (err instanceof LibvirtError && err.isNoDomain ? ('gone' as const) : (err as Error)),
          ),
          left,
        );
        if (answer === null) return; // its call keeps a slot inside libvirtd: this worker is done
        answers.set(uuid, answer);
      }
    };
    const workers = Math.max(0, LIBVIRTD_CLIENT_REQUESTS - 1 - slotsTaken);
    await Promise.all(Array.from({ length: Math.min(workers, todo.length) }, worker));
    for (const k of known) {
      const a = answers.get(k.domain.uuid);
      if (a === undefined) out.unanswered.push(k);
      else if (a instanceof Error) out.failed.push({ known: k, error: a });
      else if (a !== 'gone') out.records.push(a);
    }
    return out;
  }
}

/** The readings of domains asked on their own that failed or had no answer. */
function extraReadings(a: PerDomainAnswer): DomainReading[] {
  return [
    ...a.failed.map(({ known, error }) => ({ domain: known.domain, state: known.state, stats: null, fromBulk: false, error })),
    ...a.unanswered.map(({ domain, state }) => ({ domain, state, stats: null, fromBulk: false, unanswered: true as const })),
  ];
}

/** DOMAIN_MEMORY_STATS for every active domain of the records: the path for drivers without the balloon group. */
async function memoryStatsEach(client: LibvirtClient, records: readonly DomainStatsRecord[]): Promise<{ readings: DomainReading[]; calls: number }> {
  let calls = 0;
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
  return { readings: readings.filter((r): r is DomainReading => r !== null), calls };
}

/** One read with a reader of its own (no memory of earlier cycles: a stalled bulk call first lists the domains). */
export async function readMemoryStats(client: LibvirtClient, opts: ReadOptions = {}): Promise<CycleReading> {
  return new StatsReader().read(client, opts);
}

/** What the stall log needs of a cycle (poll-cycle's CycleResult has it). */
export interface StallLogInput {
  stall?: BulkStall;
  instances: ReadonlyArray<{ instance: { uuid: string }; inspection: MemoryInspection }>;
}

/**
 * Says once per change that the bulk call stalled (or was not sent) and the domains were asked on
 * their own: a line for a stall, none for a later one with the same outcome (the same answer used,
 * the same domains busy and unanswered) while one of those domains is still reported busy; after a
 * cycle without a stall in which none of them is busy any more, the next stall is told again.
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
    const unanswered = stall.unanswered.map((d) => d.uuid).sort();
    const key = `${stall.answeredBy} ${busy.join(',')} ${unanswered.join(',')}`;
    if (this.last?.key === key) return null;
    this.last = { key, busy: [...busy, ...unanswered] };
    return describeStall(stall);
  }
}

const domainList = (doms: readonly DomainRef[]): string => (doms.length > 0 ? doms.map((d) => `${d.name} (${d.uuid})`).join(', ') : 'none');

export function describeStall(stall: BulkStall): string {
  const head =
    stall.cause === 'stalled'
      ? `the bulk CONNECT_GET_ALL_DOMAIN_STATS had no reply within its ${stall.budgetMs} ms stall budget`
      : `no bulk CONNECT_GET_ALL_DOMAIN_STATS was sent: ${stall.pendingCalls} earlier calls of ours were still unanswered inside libvirtd`;
  if (stall.answeredBy === 'bulk') {
    return `${head}; it answered after all while the domains were being asked on their own (libvirtd slow, or a domain's lock let go), busy: ${domainList(stall.busy)}`;
  }
  return (
    `${head}; each domain was asked on its own. Busy (skipped by NOWAIT: another job holds it, or its QEMU does not answer its monitor): ${domainList(stall.busy)}. ` +
    `No answer within ${stall.budgetMs} ms (libvirtd holds the domain: being destroyed, or cleaned up after its QEMU exited): ${domainList(stall.unanswered)}`
  );
}
