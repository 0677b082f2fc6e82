// A stalled bulk stats call (inspect/reader.ts) and the connection's abandoned calls under it
// (libvirt/connection.ts), against the in-process fake libvirtd: the re-issue after the stall
// budget, the first reply winning, both stalling, the per-domain fallback, and late replies for
// abandoned or timed-out calls dropped without harm.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { inspectMemory } from '../../src/inspect/memory.js';
import { BulkStallLog, readMemoryStats, stallBudgetFor, type BulkStall, type CycleReading, type StallLogInput } from '../../src/inspect/reader.js';
import { LibvirtClient } from '../../src/libvirt/client.js';
import { type CallOutcome } from '../../src/libvirt/connection.js';
import { CallAbandonedError, CallTimeoutError } from '../../src/libvirt/errors.js';
import { GetAllStatsFlags, Proc, StatsGroup, writeDomain, type DomainRef } from '../../src/libvirt/protocol.js';
import type { Header } from '../../src/libvirt/wire.js';
import { XdrWriter, writeTypedParam } from '../../src/libvirt/xdr.js';
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

/**
 * Every bulk call held, a read with this stall budget started on a new client, and waited for until
 * its re-issued call is in: `held[0]` answers the first call, `held[1]` the second. t0: when the
 * read started.
 */
async function stalledRead(stallBudgetMs: number): Promise<{ c: LibvirtClient; held: Array<(payload: Buffer) => void>; reading: Promise<CycleReading>; t0: number }> {
  const held = holdBulkCalls();
  const c = await connect();
  const t0 = Date.now();
  const reading = readMemoryStats(c, { stallBudgetMs });
  await until(() => held.length === 2);
  return { c, held, reading, t0 };
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
    held[0]!(); // the late reply
    await lateReplyDropped(c);
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
    held[0]!();
    await lateReplyDropped(c);
    expect(c.closed).toBe(false);
    expect(await c.libVersion()).toBe(9000000);
    await c.close();
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

describe('readMemoryStats: a stalled bulk call', () => {
  it('re-issues the call after the stall budget and uses the second reply: the stuck domain is busy', async () => {
    const { c, held, reading, t0 } = await stalledRead(100);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(95);
    held[1]!(skippedReply());
    const r = await reading;
    // the budget, then as long again for the first call (it might only have been slow)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(Date.now() - t0).toBeLessThan(1000);
    // the two bulk calls, then the busy domain asked once more (held too: it stays busy)
    expect(r.calls).toBe(3);
    expect(r.bulk).toBe(true);
    expect(r.stall).toEqual({ budgetMs: 100, answeredBy: 'second', busy: [stuck] } satisfies BulkStall);
    expect(r.readings.map((x) => x.domain.name)).toEqual([stuck.name, fine.name, off.name]);
    // both calls identical: STATE|BALLOON with NOWAIT, all domains
    const calls = daemon.callsOf(Proc.CONNECT_GET_ALL_DOMAIN_STATS);
    expect(calls).toHaveLength(3);
    const insp = inspectMemory({ ...r.readings[0]!, balloon: { model: 'virtio', statsPeriod: 10 }, nowSeconds: 1_764_158_401 });
    expect(insp.resident).toMatchObject({ reason: 'busy' });
    expect(insp.usage).toMatchObject({ reason: 'busy' });
    expect(c.conn.inFlight).toBe(0); // the first call was abandoned
    // the stuck call answers at last (the QEMU got SIGCONT): dropped quietly
    held[0]!(fullReply());
    await lateReplyDropped(c);
    expect(c.closed).toBe(false);
    await c.close();
  });

  it('sends both calls with the same arguments', async () => {
    const args: Buffer[] = [];
    const held: Array<() => void> = [];
    daemon.on(Proc.CONNECT_GET_ALL_DOMAIN_STATS, ({ header, socket, daemon: d, args: a }) => {
      args.push(a);
      held.push(() => d.reply(socket, header, skippedReply()));
      return held.length === 2 ? skippedReply() : 'no-reply';
    });
    const c = await connect();
    await readMemoryStats(c, { stallBudgetMs: 30 });
    // the two bulk calls alike; then the busy domain alone (no answer within the budget: it stays busy)
    expect(args).toHaveLength(3);
    expect(args[1]).toEqual(args[0]);
    const retry = new XdrWriter().uint(1);
    writeDomain(retry, stuck);
    expect(args[2]).toEqual(retry.int(StatsGroup.STATE | StatsGroup.BALLOON).uint(GetAllStatsFlags.NOWAIT).toBuffer());
    const w = new XdrWriter().uint(0).int(StatsGroup.STATE | StatsGroup.BALLOON).uint(GetAllStatsFlags.NOWAIT).toBuffer();
    expect(args[0]).toEqual(w);
    held[0]!();
    await lateReplyDropped(c);
    await c.close();
  });

  it('uses the first reply when it comes after the budget but before the second', async () => {
    const { c, held, reading } = await stalledRead(50);
    held[0]!(fullReply());
    const r = await reading;
    expect(r.calls).toBe(2);
    expect(r.stall).toEqual({ budgetMs: 50, answeredBy: 'first', busy: [] });
    expect(r.readings[0]!.stats).toMatchObject({ rss: 300000 });
    held[1]!(fullReply());
    await lateReplyDropped(c);
    expect(c.closed).toBe(false);
    await c.close();
  });

  it('waits for the first call when the second finds a domain busy, and uses it if it comes in time', async () => {
    // the two calls ran side by side: the second met the domain the first was still querying
    const { c, held, reading, t0 } = await stalledRead(100);
    held[1]!(skippedReply());
    await sleep(30);
    held[0]!(fullReply());
    const r = await reading;
    expect(Date.now() - t0).toBeLessThan(190); // did not sit out the whole grace
    expect(r.stall).toEqual({ budgetMs: 100, answeredBy: 'first', busy: [] });
    expect(r.readings[0]!.stats).toMatchObject({ rss: 300000 });
    // both replies came while their calls were pending: nothing late, nothing left in flight
    expect(c.conn.lateReplies).toBe(0);
    expect(c.conn.inFlight).toBe(0);
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

  it('when both calls stall, fails with the first call\'s timeout, as without the re-issue', async () => {
    holdBulkCalls();
    const c = await connect({ callTimeoutMs: 300 });
    const t0 = Date.now();
    const err = await readMemoryStats(c, { stallBudgetMs: 100 }).catch((e: unknown) => e);
    const took = Date.now() - t0;
    expect(err).toBeInstanceOf(CallTimeoutError);
    expect((err as Error).message).toMatch(/CONNECT_GET_ALL_DOMAIN_STATS: no reply from libvirtd within 300 ms/);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(390); // not the second call's timeout (at 400 ms)
    expect(daemon.callsOf(Proc.CONNECT_GET_ALL_DOMAIN_STATS)).toHaveLength(2);
    expect(c.conn.inFlight).toBe(0); // the second was abandoned, not left to time out
    await sleep(200);
    expect(c.closed).toBe(false);
    await c.close();
  });

  it('does not re-issue with a budget of 0, or one at or above the call timeout', async () => {
    const held = holdBulkCalls();
    const c = await connect({ callTimeoutMs: 200 });
    await expect(readMemoryStats(c, { stallBudgetMs: 0 })).rejects.toBeInstanceOf(CallTimeoutError);
    await expect(readMemoryStats(c, { stallBudgetMs: 200 })).rejects.toBeInstanceOf(CallTimeoutError);
    expect(held).toHaveLength(2);
    await c.close();
  });

  it('passes an error of the first call on, without a re-issue, when it comes within the budget', async () => {
    daemon.on(Proc.CONNECT_GET_ALL_DOMAIN_STATS, () => ({ error: { code: 1, domain: 10, message: 'internal error' } }));
    const c = await connect();
    await expect(readMemoryStats(c, { stallBudgetMs: 500 })).rejects.toThrow(/CONNECT_GET_ALL_DOMAIN_STATS: internal error/);
    expect(daemon.callsOf(Proc.CONNECT_GET_ALL_DOMAIN_STATS)).toHaveLength(1);
    await c.close();
  });

  it('keeps the per-domain path for a driver without the balloon group, the re-issue counted', async () => {
    const memCalls: Header[] = [];
    daemon.on(Proc.DOMAIN_MEMORY_STATS, ({ header }) => {
      memCalls.push(header);
      const w = new XdrWriter().uint(2).int(5).uhyper(1000000n).int(6).uhyper(1048576n);
      return w.toBuffer();
    });
    const { c, held, reading } = await stalledRead(50);
    held[1]!(statsReply([{ dom: stuck, state: 1, balloon: false }, { dom: fine, state: 1, balloon: false }, { dom: off, state: 5, balloon: false }]));
    const r = await reading;
    expect(r.bulk).toBe(false);
    expect(r.calls).toBe(4); // two bulk calls + DOMAIN_MEMORY_STATS for the two running domains
    expect(memCalls).toHaveLength(2);
    expect(r.stall).toEqual({ budgetMs: 50, answeredBy: 'second', busy: [] });
    expect(r.readings.map((x) => [x.domain.name, x.fromBulk, x.stats])).toEqual([
      [stuck.name, false, { available: 1000000, actual: 1048576 }],
      [fine.name, false, { available: 1000000, actual: 1048576 }],
      [off.name, false, null],
    ]);
    held[0]!(fullReply());
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
  const stall: BulkStall = { budgetMs: 1000, answeredBy: 'second', busy: [stuck] };

  it('logs a stall once per change, naming the busy domains', () => {
    const log = new BulkStallLog();
    const first = log.next(cycle(stall, true));
    expect(first).toBe(
      `the bulk CONNECT_GET_ALL_DOMAIN_STATS had no reply within its 1000 ms stall budget and was sent again (a QEMU that does not answer its monitor keeps the first call waiting inside libvirtd); the second call answered, busy (skipped by NOWAIT, no balloon statistics this cycle): ${stuck.name} (${stuck.uuid})`,
    );
    expect(log.next(cycle(undefined, true))).toBeNull(); // still busy, no stall
    expect(log.next(cycle(stall, true))).toBeNull(); // the same stall again while still busy: said already
    expect(log.next(cycle(undefined, false))).toBeNull(); // recovered
    expect(log.next(cycle(stall, true))).toBe(first); // stuck again: said again
    expect(log.next(cycle({ ...stall, busy: [stuck, fine] }, true))).toMatch(/busy \(skipped by NOWAIT, no balloon statistics this cycle\): instance-00000001 .*, instance-00000002 /);
    expect(log.next(cycle({ budgetMs: 1000, answeredBy: 'first', busy: [] }, false))).toMatch(/the first call answered after all \(libvirtd slow, no domain stuck\), busy: none$/);
  });
});
