// A stalled bulk stats call (inspect/reader.ts) and the connection's abandoned calls under it
// (libvirt/connection.ts), against the in-process fake libvirtd: each domain asked on its own after
// the stall budget, a domain whose own call does not answer either (its lock held), the next cycle
// with calls still unanswered, the bulk reply coming after all, the slots libvirtd has for a client,
// and late replies for abandoned or timed-out calls dropped without harm.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { inspectMemory } from '../../src/inspect/memory.js';
import { BulkStallLog, StatsReader, readMemoryStats, stallBudgetFor, type BulkStall, type StallLogInput } from '../../src/inspect/reader.js';
import { LibvirtClient } from '../../src/libvirt/client.js';
import { type CallOutcome } from '../../src/libvirt/connection.js';
import { CallAbandonedError, CallTimeoutError } from '../../src/libvirt/errors.js';
import { GetAllStatsFlags, Proc, StatsGroup, readDomain, writeDomain, type DomainRef } from '../../src/libvirt/protocol.js';
import type { Header } from '../../src/libvirt/wire.js';
import { XdrReader, XdrWriter, writeTypedParam } from '../../src/libvirt/xdr.js';
import { FakeLibvirtd } from '../support/fake-libvirtd.js';

const stuck: DomainRef = { name: 'instance-00000001', uuid: 'c0ffee00-0000-4000-8000-000000000001', id: 1 };
const fine: DomainRef = { name: 'instance-00000002', uuid: 'c0ffee00-0000-4000-8000-000000000002', id: 2 };
const off: DomainRef = { name: 'instance-00000003', uuid: 'c0ffee00-0000-4000-8000-000000000003', id: -1 };

type Param = Parameters<typeof writeTypedParam>[1];
const int = (field: string, value: number): Param => ({ field, value: { type: 'int', value } });
const ull = (field: string, value: bigint): Param => ({ field, value: { type: 'ullong', value } });

/** A bulk stats reply; `balloon` false: the test driver's shape (no balloon group). */
function statsReply(recs: Array<{ dom: DomainRef; state: number; rss?: boolean; balloon?: boolean }>): Buffer {
  const w = new XdrWriter().uint(recs.length);
  for (const r of recs) {
    writeDomain(w, r.dom);
    const params: Param[] = [int('state.state', r.state), int('state.reason', 1)];
    if (r.balloon !== false) {
      params.push(ull('balloon.current', 1048576n), ull('balloon.maximum', 1048576n));
      if (r.rss) params.push(ull('balloon.rss', 300000n), ull('balloon.available', 1000000n), ull('balloon.usable', 600000n), ull('balloon.last-update', 1_764_158_400n));
    }
    w.array(params, 1000, writeTypedParam);
  }
  return w.toBuffer();
}

/** What libvirtd answers once the stuck domain's job is held by another call: NOWAIT skipped it. */
const skippedReply = (): Buffer =>
  statsReply([{ dom: stuck, state: 1, rss: false }, { dom: fine, state: 1, rss: true }, { dom: off, state: 5 }]);
const fullReply = (): Buffer =>
  statsReply([{ dom: stuck, state: 1, rss: true }, { dom: fine, state: 1, rss: true }, { dom: off, state: 5 }]);

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let daemon: FakeLibvirtd;
let unhandled: unknown[];
const onUnhandled = (e: unknown): void => void unhandled.push(e);
beforeEach(async () => {
  daemon = await FakeLibvirtd.start();
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(async () => {
  await daemon.stop();
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

const connect = (extra: Parameters<typeof LibvirtClient.connect>[0] = {}): Promise<LibvirtClient> =>
  LibvirtClient.connect({ uri: `qemu+unix:///system?socket=${daemon.socketPath}`, ...extra });

/** Holds every bulk call's reply until the test sends it: `held[i]()` answers call i with `payload`. */
function holdBulkCalls(): Array<(payload: Buffer) => void> {
  const held: Array<(payload: Buffer) => void> = [];
  daemon.on(Proc.CONNECT_GET_ALL_DOMAIN_STATS, ({ header, socket, daemon: d }) => {
    held.push((payload) => d.reply(socket, header, payload));
    return 'no-reply';
  });
  return held;
}

/** What one CONNECT_GET_ALL_DOMAIN_STATS asked: its domains (none: all), stats groups and flags. */
function argsOf(args: Buffer): { doms: DomainRef[]; stats: number; flags: number } {
  const r = new XdrReader(args);
  const doms = Array.from({ length: r.uint() }, () => readDomain(r));
  return { doms, stats: r.int(), flags: r.uint() };
}

interface Daemon {
  /** replies held back, by who asked: 'bulk', 'list' (the state group alone), or a domain's name */
  held: Map<string, Array<() => void>>;
  /** the domains of each one-domain call, in order */
  asked: string[];
  /** what each one-domain call asked, in order */
  askedArgs: Array<ReturnType<typeof argsOf>>;
  /** the most one-domain calls waiting at once */
  maxWaiting: number;
  /** answers everything held for `who` */
  release(who: string): void;
}

/**
 * A libvirtd whose answers the test decides: `reply(who)` gives the records for a call ('bulk', 'list'
 * or a domain's name) or 'hold' to keep the reply back until `release(who)`.
 */
function scriptedDaemon(reply: (who: string) => Buffer | 'hold'): Daemon {
  const held = new Map<string, Array<() => void>>();
  const st: Daemon = {
    held,
    asked: [],
    askedArgs: [],
    maxWaiting: 0,
    release: (who) => {
      for (const f of held.get(who) ?? []) f();
      held.delete(who);
    },
  };
  let waiting = 0;
  daemon.on(Proc.CONNECT_GET_ALL_DOMAIN_STATS, ({ header, socket, daemon: d, args }) => {
    const a = argsOf(args);
    const who = a.doms.length === 1 ? a.doms[0]!.name : a.doms.length > 1 ? 'retry' : a.stats === StatsGroup.STATE ? 'list' : 'bulk';
    const one = a.doms.length === 1;
    if (one) {
      st.asked.push(who);
      st.askedArgs.push(a);
    }
    const answer = reply(who);
    if (answer !== 'hold') return answer;
    if (one) st.maxWaiting = Math.max(st.maxWaiting, ++waiting);
    const list = held.get(who) ?? [];
    list.push(() => {
      if (one) waiting--;
      d.reply(socket, header, reply(`${who}:late`) as Buffer);
    });
    held.set(who, list);
    return 'no-reply';
  });
  return st;
}

const rec = (dom: DomainRef, busy = false): Buffer => statsReply([{ dom, state: dom === off ? 5 : 1, rss: dom !== off && !busy }]);
const domByName = (name: string): DomainRef | undefined => [stuck, fine, off].find((d) => d.name === name);

/** A reader that has seen all three domains once (a cycle that answered at once). */
async function readerWithKnown(c: LibvirtClient, budgetMs: number): Promise<StatsReader> {
  const reader = new StatsReader();
  const r = await reader.read(c, { stallBudgetMs: budgetMs });
  expect(r.stall).toBeUndefined();
  expect(r.readings).toHaveLength(3);
  return reader;
}

/** Waits until the connection has dropped a reply that came after its call was abandoned or timed out. */
const lateReplyDropped = (c: LibvirtClient): Promise<void> => until(() => c.conn.lateReplies === 1);

describe('Connection: abandoned calls and late replies', () => {
  it('drops a reply that comes after its call was abandoned; the connection keeps working', async () => {
    const calls: Array<[number, CallOutcome]> = [];
    const held: Array<() => void> = [];
    daemon.on(Proc.CONNECT_GET_HOSTNAME, ({ header, socket, daemon: d }) => {
      held.push(() => d.reply(socket, header, new XdrWriter().string(`late-${header.serial}`).toBuffer()));
      return 'no-reply';
    });
    daemon.on(Proc.CONNECT_GET_LIB_VERSION, () => new XdrWriter().uhyper(9000000n).toBuffer());
    const c = await connect({ onCall: (proc, _ms, outcome) => void calls.push([proc, outcome]) });
    const ac = new AbortController();
    const p = c.conn.call(Proc.CONNECT_GET_HOSTNAME, undefined, undefined, ac.signal);
    await until(() => held.length === 1);
    expect(c.conn.inFlight).toBe(1);
    ac.abort();
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CallAbandonedError);
    expect((err as Error).message).toMatch(/^CONNECT_GET_HOSTNAME: abandoned by the caller after \d+ ms; a late reply will be dropped$/);
    expect(c.conn.inFlight).toBe(0);
    expect(c.conn.unanswered).toBe(1); // libvirtd still works on it
    held[0]!(); // the late reply
    await lateReplyDropped(c);
    expect(c.conn.unanswered).toBe(0);
    expect(c.closed).toBe(false);
    expect(await c.libVersion()).toBe(9000000);
    expect(calls).toContainEqual([Proc.CONNECT_GET_HOSTNAME, 'timeout']);
    expect(calls).toContainEqual([Proc.CONNECT_GET_LIB_VERSION, 'ok']);
    await c.close();
  });

  it('drops a reply that comes after its call timed out; the connection keeps working', async () => {
    const held: Array<() => void> = [];
    daemon.on(Proc.CONNECT_GET_HOSTNAME, ({ header, socket, daemon: d }) => {
      held.push(() => d.reply(socket, header, new XdrWriter().string('late').toBuffer()));
      return 'no-reply';
    });
    daemon.on(Proc.CONNECT_GET_LIB_VERSION, () => new XdrWriter().uhyper(9000000n).toBuffer());
    const c = await connect({ callTimeoutMs: 50 });
    await expect(c.hostname()).rejects.toBeInstanceOf(CallTimeoutError);
    expect(c.conn.inFlight).toBe(0);
    expect(c.conn.unanswered).toBe(1);
    await expect(c.hostname()).rejects.toBeInstanceOf(CallTimeoutError);
    expect(c.conn.unanswered).toBe(2);
    held[0]!();
    await lateReplyDropped(c);
    expect(c.conn.unanswered).toBe(1);
    expect(c.closed).toBe(false);
    expect(await c.libVersion()).toBe(9000000);
    // the connection's end forgets what libvirtd still owed
    await c.close();
    expect(c.conn.unanswered).toBe(0);
  });

  it('aborting a settled call changes nothing; a call with an aborted signal is not sent', async () => {
    daemon.on(Proc.CONNECT_GET_LIB_VERSION, () => new XdrWriter().uhyper(9000000n).toBuffer());
    const c = await connect();
    const ac = new AbortController();
    expect(decodeVersion(await c.conn.call(Proc.CONNECT_GET_LIB_VERSION, undefined, undefined, ac.signal))).toBe(9000000n);
    ac.abort();
    const sent = daemon.calls.length;
    await expect(c.conn.call(Proc.CONNECT_GET_LIB_VERSION, undefined, undefined, ac.signal)).rejects.toBeInstanceOf(CallAbandonedError);
    expect(daemon.calls.length).toBe(sent);
    expect(c.conn.inFlight).toBe(0);
    expect(c.conn.lateReplies).toBe(0);
    await c.close();
  });
});

const decodeVersion = (b: Buffer): bigint => b.readBigUInt64BE(0);

/**
 * A reader that has seen all three domains once (the bulk call answering), then a cycle whose bulk
 * call libvirtd holds; `reply(who)` answers every other call ('hold' keeps it back). `holdBulk(false)`
 * lets the next bulk calls answer again.
 */
async function stalledCycle(reply: (who: string) => Buffer | 'hold', budgetMs = 100) {
  let bulkHeld = false;
  const st = scriptedDaemon((who) => (who === 'bulk' ? (bulkHeld ? 'hold' : fullReply()) : reply(who)));
  const c = await connect();
  const reader = await readerWithKnown(c, budgetMs);
  bulkHeld = true;
  const t0 = Date.now();
  const r = await reader.read(c, { stallBudgetMs: budgetMs });
  return { st, c, reader, r, took: Date.now() - t0, holdBulk: (on: boolean) => void (bulkHeld = on) };
}

describe('StatsReader: a stalled bulk call', () => {
  it('asks each domain on its own after the stall budget: a stopped QEMU (its job held by the stalled call) answers busy, the others in full', async () => {
    const { st, c, r, took } = await stalledCycle((who) => {
      if (who === 'bulk:late') return fullReply();
      if (who === stuck.name || who === 'retry') return rec(stuck, true);
      return rec(domByName(who)!);
    });
    expect(took).toBeGreaterThanOrEqual(95);
    // the budget, the three domains' own calls, and the two pauses (20 + 80 ms) before the busy one is asked again
    expect(took).toBeLessThan(1000);
    expect(r.stall).toEqual({ budgetMs: 100, cause: 'stalled', answeredBy: 'per-domain', busy: [stuck], unanswered: [], pendingCalls: 0 } satisfies BulkStall);
    expect(r.calls).toBe(1 + 3 + 2);
    // each domain, then the busy one twice more (after 20 and 80 ms)
    expect(st.asked).toEqual([stuck.name, fine.name, off.name, stuck.name, stuck.name]);
    expect(r.bulk).toBe(true);
    expect(r.readings.map((x) => [x.domain.name, x.state, x.stats?.rss ?? null])).toEqual([
      [stuck.name, 1, null],
      [fine.name, 1, 300000],
      [off.name, 5, null],
    ]);
    const insp = inspectMemory({ ...r.readings[0]!, balloon: { model: 'virtio', statsPeriod: 10 }, nowSeconds: 1_764_158_401 });
    expect(insp.resident).toMatchObject({ reason: 'busy' });
    expect(insp.usage).toMatchObject({ reason: 'busy' });
    // every one-domain call alike but for its domain: STATE|BALLOON with NOWAIT
    expect(st.askedArgs[1]).toEqual({ doms: [fine], stats: StatsGroup.STATE | StatsGroup.BALLOON, flags: GetAllStatsFlags.NOWAIT });
    // the bulk call was abandoned: libvirtd still owes its answer, which is dropped when it comes
    expect(c.conn.inFlight).toBe(0);
    expect(c.conn.unanswered).toBe(1);
    st.release('bulk');
    await lateReplyDropped(c);
    expect(c.conn.unanswered).toBe(0);
    expect(c.closed).toBe(false);
    await c.close();
  });

  it("a domain whose own call does not answer either (libvirtd holds its lock) is reported unanswered, busy; the others answer within twice the budget", async () => {
    const { st, c, reader, r, took, holdBulk } = await stalledCycle((who) => {
      if (who === stuck.name) return 'hold';
      if (who.endsWith(':late')) return statsReply([]); // destroyed meanwhile: transient, gone
      return rec(domByName(who)!);
    });
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(600);
    expect(r.stall).toEqual({ budgetMs: 100, cause: 'stalled', answeredBy: 'per-domain', busy: [], unanswered: [stuck], pendingCalls: 0 } satisfies BulkStall);
    expect(r.readings.map((x) => [x.domain.name, x.unanswered ?? false])).toEqual([
      [fine.name, false],
      [off.name, false],
      [stuck.name, true],
    ]);
    const unanswered = r.readings[2]!;
    expect(unanswered).toMatchObject({ state: 1, stats: null });
    const insp = inspectMemory({ ...unanswered, balloon: { model: 'virtio', statsPeriod: 10 }, nowSeconds: 1_764_158_401 });
    expect(insp.resident).toEqual({ reason: 'busy', detail: expect.stringMatching(/^libvirtd gave no answer for the domain within the stall budget/) });
    expect(insp.usage).toMatchObject({ reason: 'busy' });
    // the abandoned bulk call and the domain's own call (still waiting, not abandoned) hold two of libvirtd's slots
    expect(c.conn.unanswered).toBe(1);
    expect(c.conn.inFlight).toBe(1);

    // The next cycle, those two still unanswered: no bulk call, the waiting domain not asked again.
    const bulkBefore = st.held.get('bulk')!.length;
    const r2 = await reader.read(c, { stallBudgetMs: 100 });
    expect(st.held.get('bulk')!.length).toBe(bulkBefore);
    expect(st.asked).toEqual([stuck.name, fine.name, off.name, fine.name, off.name]);
    expect(r2.stall).toEqual({ budgetMs: 100, cause: 'pending', answeredBy: 'per-domain', busy: [], unanswered: [stuck], pendingCalls: 2 } satisfies BulkStall);
    expect(r2.calls).toBe(2);
    expect(r2.readings.find((x) => x.domain.name === stuck.name)).toMatchObject({ unanswered: true, state: 1 });

    // The lock is let go: both answer (the domain is gone by then), and the cycle after is one bulk call again.
    st.release('bulk');
    st.release(stuck.name);
    await until(() => c.conn.unanswered === 0 && c.conn.inFlight === 0);
    holdBulk(false);
    const r3 = await reader.read(c, { stallBudgetMs: 100 });
    expect(r3.stall).toBeUndefined();
    expect(r3.calls).toBe(1);
    expect(c.closed).toBe(false);
    await c.close();
  });

  it('uses the bulk reply when it comes while the domains are being asked', async () => {
    let bulkHeld = false;
    const st = scriptedDaemon((who) => (who === 'bulk' ? (bulkHeld ? 'hold' : fullReply()) : who.endsWith(':late') ? fullReply() : 'hold'));
    const c = await connect();
    const reader = await readerWithKnown(c, 100);
    bulkHeld = true;
    const reading = reader.read(c, { stallBudgetMs: 100 });
    await until(() => st.asked.length > 0);
    st.release('bulk');
    const r = await reading;
    expect(r.stall).toMatchObject({ cause: 'stalled', answeredBy: 'bulk', busy: [], unanswered: [] });
    expect(r.readings.map((x) => x.stats?.rss ?? null)).toEqual([300000, 300000, null]);
    expect(r.readings.every((x) => !x.unanswered)).toBe(true);
    for (const who of [stuck.name, fine.name, off.name]) st.release(who);
    await until(() => c.conn.inFlight === 0);
    await c.close();
  });

  it('never has more one-domain calls waiting than libvirtd has free slots, less one', async () => {
    const many: DomainRef[] = Array.from({ length: 8 }, (_, i) => ({ name: `instance-0000010${i}`, uuid: `c0ffee00-0000-4000-8000-00000000010${i}`, id: 10 + i }));
    let bulkHeld = false;
    const st = scriptedDaemon((who) => (who === 'bulk' ? (bulkHeld ? 'hold' : statsReply(many.map((dom) => ({ dom, state: 1, rss: true })))) : who.endsWith(':late') ? statsReply([]) : 'hold'));
    const c = await connect();
    const reader = new StatsReader();
    expect((await reader.read(c, { stallBudgetMs: 100 })).readings).toHaveLength(8);
    bulkHeld = true;
    const r = await reader.read(c, { stallBudgetMs: 100 });
    // 5 slots: the abandoned bulk call holds one, one stays free: three domains asked, none answered
    expect(st.asked).toHaveLength(3);
    expect(st.maxWaiting).toBe(3);
    expect(r.stall).toMatchObject({ cause: 'stalled', answeredBy: 'per-domain', unanswered: many });
    expect(r.readings.every((x) => x.unanswered)).toBe(true);
    // the next cycle: 4 calls unanswered, no slot to spare: nothing is sent, every domain unanswered
    const r2 = await reader.read(c, { stallBudgetMs: 100 });
    expect(st.asked).toHaveLength(3);
    expect(r2.calls).toBe(0);
    expect(r2.stall).toMatchObject({ cause: 'pending', pendingCalls: 4, unanswered: many });
    for (const who of ['bulk', ...many.map((d) => d.name)]) st.release(who);
    await until(() => c.conn.inFlight === 0 && c.conn.unanswered === 0);
    await c.close();
  });

  it('with no domains known yet, lists them (the state group alone, no job needed) and asks each', async () => {
    const st = scriptedDaemon((who) => {
      if (who === 'bulk') return 'hold';
      if (who === 'list') return statsReply([{ dom: stuck, state: 1, balloon: false }, { dom: fine, state: 1, balloon: false }]);
      if (who === 'bulk:late') return fullReply();
      return who === stuck.name || who === 'retry' ? rec(stuck, true) : rec(domByName(who)!);
    });
    const c = await connect();
    const r = await readMemoryStats(c, { stallBudgetMs: 50 });
    expect(st.asked).toEqual([stuck.name, fine.name, stuck.name, stuck.name]);
    expect(r.stall).toMatchObject({ cause: 'stalled', answeredBy: 'per-domain', busy: [stuck], unanswered: [] });
    expect(r.readings.map((x) => x.domain.name)).toEqual([stuck.name, fine.name]);
    st.release('bulk');
    await lateReplyDropped(c);
    await c.close();
  });

  it('with no domains known and none listed, fails with the bulk call\'s timeout, as without the fall-back', async () => {
    holdBulkCalls();
    const c = await connect({ callTimeoutMs: 300 });
    const t0 = Date.now();
    const err = await readMemoryStats(c, { stallBudgetMs: 100 }).catch((e: unknown) => e);
    const took = Date.now() - t0;
    expect(err).toBeInstanceOf(CallTimeoutError);
    expect((err as Error).message).toMatch(/CONNECT_GET_ALL_DOMAIN_STATS: no reply from libvirtd within 300 ms/);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(390);
    // the bulk call and the listing
    expect(daemon.callsOf(Proc.CONNECT_GET_ALL_DOMAIN_STATS)).toHaveLength(2);
    expect(c.conn.inFlight).toBe(0);
    expect(c.conn.unanswered).toBe(2);
    await sleep(100);
    expect(c.closed).toBe(false);
    await c.close();
  });

  it('asks a busy domain again after a pause and takes its complete answer (a job held for a moment)', async () => {
    let n = 0;
    daemon.on(Proc.CONNECT_GET_ALL_DOMAIN_STATS, () => (++n === 1 ? skippedReply() : fullReply()));
    const c = await connect();
    const r = await readMemoryStats(c, { stallBudgetMs: 1000 });
    expect(r.calls).toBe(2);
    expect(r.stall).toBeUndefined();
    expect(r.readings[0]!.domain.name).toBe(stuck.name);
    expect(r.readings[0]!.stats).toMatchObject({ rss: 300000 });
    await c.close();
  });

  it('makes one call when the reply comes within the budget', async () => {
    daemon.on(Proc.CONNECT_GET_ALL_DOMAIN_STATS, () => fullReply());
    const c = await connect();
    const r = await readMemoryStats(c, { stallBudgetMs: 500 });
    expect(r.calls).toBe(1);
    expect(r.stall).toBeUndefined();
    expect(daemon.callsOf(Proc.CONNECT_GET_ALL_DOMAIN_STATS)).toHaveLength(1);
    await c.close();
  });

  it('does not fall back with a budget of 0, or one at or above the call timeout', async () => {
    const held = holdBulkCalls();
    const c = await connect({ callTimeoutMs: 200 });
    await expect(readMemoryStats(c, { stallBudgetMs: 0 })).rejects.toBeInstanceOf(CallTimeoutError);
    await expect(readMemoryStats(c, { stallBudgetMs: 200 })).rejects.toBeInstanceOf(CallTimeoutError);
    expect(held).toHaveLength(2);
    await c.close();
  });

  it('passes an error of the bulk call on, without a fall-back, when it comes within the budget', async () => {
    daemon.on(Proc.CONNECT_GET_ALL_DOMAIN_STATS, () => ({ error: { code: 1, domain: 10, message: 'internal error' } }));
    const c = await connect();
    await expect(readMemoryStats(c, { stallBudgetMs: 500 })).rejects.toThrow(/CONNECT_GET_ALL_DOMAIN_STATS: internal error/);
    expect(daemon.callsOf(Proc.CONNECT_GET_ALL_DOMAIN_STATS)).toHaveLength(1);
    await c.close();
  });

  it('keeps the DOMAIN_MEMORY_STATS path for a driver without the balloon group, the fall-back counted', async () => {
    const memCalls: Header[] = [];
    daemon.on(Proc.DOMAIN_MEMORY_STATS, ({ header }) => {
      memCalls.push(header);
      const w = new XdrWriter().uint(2).int(5).uhyper(1000000n).int(6).uhyper(1048576n);
      return w.toBuffer();
    });
    const noBalloon = (dom: DomainRef): Buffer => statsReply([{ dom, state: dom === off ? 5 : 1, balloon: false }]);
    let bulkHeld = false;
    const st = scriptedDaemon((who) =>
      who === 'bulk' ? (bulkHeld ? 'hold' : statsReply([stuck, fine, off].map((dom) => ({ dom, state: dom === off ? 5 : 1, balloon: false })))) : who === 'bulk:late' ? fullReply() : noBalloon(domByName(who)!),
    );
    const c = await connect();
    const reader = new StatsReader();
    await reader.read(c, { stallBudgetMs: 50 });
    memCalls.length = 0;
    bulkHeld = true;
    const r = await reader.read(c, { stallBudgetMs: 50 });
    expect(r.bulk).toBe(false);
    expect(r.calls).toBe(1 + 3 + 2); // the bulk call, three one-domain calls, DOMAIN_MEMORY_STATS for the two running domains
    expect(memCalls).toHaveLength(2);
    expect(r.stall).toEqual({ budgetMs: 50, cause: 'stalled', answeredBy: 'per-domain', busy: [], unanswered: [], pendingCalls: 0 } satisfies BulkStall);
    expect(r.readings.map((x) => [x.domain.name, x.fromBulk, x.stats])).toEqual([
      [stuck.name, false, { available: 1000000, actual: 1048576 }],
      [fine.name, false, { available: 1000000, actual: 1048576 }],
      [off.name, false, null],
    ]);
    st.release('bulk');
    await lateReplyDropped(c);
    await c.close();
  });
});

describe('stall budget and log', () => {
  it('stallBudgetFor: 2 s, at most a quarter of the interval', () => {
    expect(stallBudgetFor(1)).toBe(250);
    expect(stallBudgetFor(2)).toBe(500);
    expect(stallBudgetFor(4)).toBe(1000);
    expect(stallBudgetFor(8)).toBe(2000);
    expect(stallBudgetFor(600)).toBe(2000);
    expect(stallBudgetFor(0.001)).toBe(1);
  });

  const busyInspection = inspectMemory({ state: 1, balloon: { model: 'virtio', statsPeriod: 10 }, stats: { actual: 1 }, fromBulk: true, nowSeconds: 0 });
  const fineInspection = inspectMemory({
    state: 1, balloon: { model: 'virtio', statsPeriod: 10 }, stats: { actual: 1, rss: 1, available: 10, usable: 5, last_update: 100 }, fromBulk: true, nowSeconds: 100,
  });
  const cycle = (stall: BulkStall | undefined, stuckBusy: boolean): StallLogInput => ({
    ...(stall ? { stall } : {}),
    instances: [
      { instance: { uuid: stuck.uuid }, inspection: stuckBusy ? busyInspection : fineInspection },
      { instance: { uuid: fine.uuid }, inspection: fineInspection },
    ],
  });
  const stall: BulkStall = { budgetMs: 1000, cause: 'stalled', answeredBy: 'per-domain', busy: [stuck], unanswered: [], pendingCalls: 0 };

  it('logs a stall once per change, naming the busy and unanswered domains', () => {
    const log = new BulkStallLog();
    const first = log.next(cycle(stall, true));
    expect(first).toBe(
      'the bulk CONNECT_GET_ALL_DOMAIN_STATS had no reply within its 1000 ms stall budget; each domain was asked on its own. ' +
        `Busy (skipped by NOWAIT: another job holds it, or its QEMU does not answer its monitor): ${stuck.name} (${stuck.uuid}). ` +
        'No answer within 1000 ms (libvirtd holds the domain: being destroyed, or cleaned up after its QEMU exited): none',
    );
    expect(log.next(cycle(undefined, true))).toBeNull(); // still busy, no stall
    expect(log.next(cycle(stall, true))).toBeNull(); // the same stall again while still busy: said already
    expect(log.next(cycle(undefined, false))).toBeNull(); // recovered
    expect(log.next(cycle(stall, true))).toBe(first); // stuck again: said again
    expect(log.next(cycle({ ...stall, busy: [stuck, fine] }, true))).toMatch(/Busy .*: instance-00000001 .*, instance-00000002 /);
    // a locked domain: the stall and the cycles after it (no bulk call sent) are one line
    const locked: BulkStall = { ...stall, busy: [], unanswered: [fine] };
    expect(log.next(cycle(locked, true))).toMatch(/No answer within 1000 ms \(libvirtd holds the domain: .*\): instance-00000002 \(c0ffee00-0000-4000-8000-000000000002\)$/);
    expect(log.next(cycle({ ...locked, cause: 'pending', pendingCalls: 2 }, true))).toBeNull();
    expect(log.next(cycle({ budgetMs: 1000, cause: 'stalled', answeredBy: 'bulk', busy: [], unanswered: [], pendingCalls: 0 }, false))).toMatch(
      /; it answered after all while the domains were being asked on their own \(libvirtd slow, or a domain's lock let go\), busy: none$/,
    );
  });

  it('says why no bulk call was sent', () => {
    const line = new BulkStallLog().next(cycle({ ...stall, cause: 'pending', pendingCalls: 3, busy: [], unanswered: [stuck] }, true));
    expect(line).toMatch(/^no bulk CONNECT_GET_ALL_DOMAIN_STATS was sent: 3 earlier calls of ours were still unanswered inside libvirtd; each domain was asked on its own\./);
  });
});
