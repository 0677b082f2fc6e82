// The spool's disk full: a 3 MB tmpfs (mounted here, unmounted in afterAll) holds the spool.
//  1. The Spool alone, filled with 16 KiB entries past the disk's size, then drained as delivery would.
//  2. The Spool with maxBytes below the disk's size: the bound drops the oldest before the disk fills.
//  3. The Agent (testAgentOptions) with its spool there (its default reserve, sized for this disk) and a
//     private RabbitMQ node that is up, then stopped while a ballast file takes the rest of the disk,
//     then started again: the spool drops the oldest, the agent keeps polling, the rest is delivered.
//  4. The same on a 128 MB tmpfs, where the default reserve (1/16 of the disk) is 8 MiB.
// withAgent (at the end) is the Agent scenarios' shared setup: private RabbitMQ, Agent, log, teardown.

import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, rmdirSync, statSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { Agent } from '../../src/agent/agent.js';
import { createLogger } from '../../src/agent/log.js';
import { Spool, type SpoolDrop } from '../../src/publish/spool.js';
import { testAgentOptions } from '../support/agent.js';
import { sleep, until } from '../support/lab.js';
import { PrivateRabbit } from '../support/private-rabbit.js';
import { scenario } from './report.js';
import { CHAOS } from './support.js';

const run = promisify(execFile);
const TMPFS_SIZE = '3m';
const ENTRY = 16 * 1024;

let mnt = '';
let mounted = false;

describe.skipIf(!CHAOS)(`the spool on a ${TMPFS_SIZE} tmpfs`, () => {
  beforeAll(async () => {
    mnt = mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-chaos-tmpfs-'));
    await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE},mode=0700`, 'tmpfs', mnt]);
    mounted = true;
  });
  // each scenario starts with the whole tmpfs free
  afterEach(() => {
    if (mounted) for (const f of readdirSync(mnt)) rmSync(path.join(mnt, f), { force: true });
  });
  afterAll(async () => {
    if (mounted) await run('umount', [mnt]);
    if (mnt) rmdirSync(mnt);
  });

  const freeMB = (): number => {
    const s = statfsSync(mnt);
    return Math.round(((s.bavail * s.bsize) / 1048576) * 100) / 100;
  };

  it('Spool: on a full disk the oldest are dropped for the newest, reported, and delivery frees room', async () => {
    await scenario(
      `Spool.append of ${ENTRY / 1024} KiB entries on a ${TMPFS_SIZE} tmpfs past the point where the disk is full (maxBytes 64 MiB, reserve 512 KiB), then entries taken out as delivery does`,
      "oldest dropped and counted, each drop reported with its cause (disk full); no append refused while there is something to drop; the newest kept, in order; after removals appends work without drops",
      (obs) => {
        const file = path.join(mnt, 'direct.sqlite');
        const drops: SpoolDrop[] = [];
        const spool = Spool.open(file, { maxBytes: 64 * 1024 * 1024, maxAgeMs: 3600_000, reserveBytes: 512 * 1024, onDrop: (d) => drops.push(d) });
        try {
          const seqs: number[] = [];
          for (let i = 0; i < 400; i++) seqs.push(spool.append('memory.usage', Buffer.alloc(ENTRY, i & 0xff)));
          const dropped = drops.reduce((n, d) => n + d.count, 0);
          obs.note(`400 appended, none refused; ${drops.length} drop(s) of ${dropped} oldest entries, reasons ${[...new Set(drops.map((d) => d.reason))].join(', ')}; ${spool.depth} kept (${freeMB()} MB left on the tmpfs)`);
          expect(drops.length).toBeGreaterThan(0);
          expect(drops.every((d) => d.reason === 'disk-full')).toBe(true);
          expect(spool.stats.dropped).toBe(dropped);
          const kept = spool.peek(1000).map((e) => e.seq);
          expect(kept).toEqual(seqs.slice(dropped)); // the newest, in order

          // delivery confirms the head: removals work on the full disk, then appends fit without a drop
          const head = spool.peek(20);
          for (const e of head) expect(spool.remove(e.seq)).toBe(true);
          const before = drops.length;
          spool.append('memory.usage', Buffer.alloc(ENTRY, 1));
          expect(drops.length).toBe(before);
          const rest = spool.peek(1000);
          expect(rest.map((e) => e.seq)).toEqual([...seqs.slice(dropped + 20), rest.at(-1)!.seq]);
          for (const e of rest) expect(e.body.length).toBe(ENTRY);
          obs.note(`after 20 removals an append fits without a drop; all ${rest.length} entries readable in seq order`);
        } finally {
          spool.close();
        }
      },
    );
  });

  it('Spool: maxBytes below the free space drops the oldest, counted, before the disk fills', async () => {
    await scenario(
      `Spool with maxBytes 1 MiB on the ${TMPFS_SIZE} tmpfs (spool_max_mb set below the free space), 200 appends of ${ENTRY / 1024} KiB`,
      'the oldest entries dropped to make room, each drop reported (onDrop, stats.dropped); no disk-full error; the newest entries kept',
      (obs) => {
        const file = path.join(mnt, 'bounded.sqlite');
        const drops: SpoolDrop[] = [];
        const spool = Spool.open(file, { maxBytes: 1024 * 1024, maxAgeMs: 3600_000, reserveBytes: 512 * 1024, onDrop: (d) => drops.push(d) });
        try {
          const seqs: number[] = [];
          for (let i = 0; i < 200; i++) seqs.push(spool.append('memory.usage', Buffer.alloc(ENTRY, i & 0xff)));
          const kept = spool.peek(1000).map((e) => e.seq);
          const droppedCount = drops.reduce((n, d) => n + d.count, 0);
          obs.note(`${droppedCount} dropped in ${drops.length} onDrop call(s) (reason ${[...new Set(drops.map((d) => d.reason))].join(',')}), stats.dropped ${spool.stats.dropped}; ${kept.length} kept = the newest (seq ${kept[0]}..${kept.at(-1)}); ${freeMB()} MB free`);
          expect(droppedCount).toBe(200 - kept.length);
          expect(spool.stats.dropped).toBe(droppedCount);
          expect(kept).toEqual(seqs.slice(200 - kept.length));
          expect(spool.bytes).toBeLessThanOrEqual(1024 * 1024);
        } finally {
          spool.close();
        }
      },
    );
  });

  it('Agent: spool on the tmpfs, broker up, stopped, started again', { timeout: 300_000 }, async () => {
    await scenario(
      `Agent (2 s interval, lab guests) with its spool on the ${TMPFS_SIZE} tmpfs (default reserve, sized for the disk) and a private RabbitMQ: 15 s broker up; broker stopped and the tmpfs filled by a ballast file to ~100 KB free; 20 s after the disk is full the broker is started again`,
      'a clear error naming the spool path and the cause (disk full); oldest dropped and counted; the agent keeps polling (cycles continue) and stays up; after the broker is back the spooled entries are delivered',
      async (obs) => {
        await withAgent(mnt, async (a) => {
          const { agent } = a;
          await sleep(15_000);
          const reserve = statSync(`${a.spoolPath}-reserve`, { throwIfNoEntry: false })?.size ?? 0;
          const up = { runs: agent.taskStats!.runs, produced: a.produced(), ...agent.deliveryStats! };
          obs.note(`broker up 15 s: ${up.runs} cycles, ${up.produced} notifications produced, ${up.submitted} spooled, ${up.confirmed} confirmed, ${up.spoolErrors} not spooled; reserve file ${Math.round(reserve / 1024)} KiB set aside`);
          await a.rabbit.stop();
          const runs0 = agent.taskStats!.runs;
          const full = await a.fillDisk(100 * 1024);
          await sleep(20_000);
          const down = { runs: agent.taskStats!.runs - runs0, depth: agent.spoolDepth, dropped: agent.spoolState.dropped, refused: agent.deliveryStats!.spoolErrors - up.spoolErrors };
          obs.note(`broker stopped: disk full after ${full.afterMs} ms (${full.depthAtFull} spooled); ${down.runs} cycles while the broker was down; 20 s later spool depth ${down.depth}, ${down.dropped} oldest dropped, ${down.refused} refused; ${Math.round(a.free() / 1024)} KB free`);
          await a.rabbit.startAgain();
          const back = Date.now();
          await until('the spool drained', () => agent.spoolDepth === 0, 60_000, 200);
          const drainedS = Math.round((Date.now() - back) / 1000);
          const before = agent.deliveryStats!.submitted;
          await until('new notifications spooled and confirmed again', () => agent.deliveryStats!.submitted > before + 6 && agent.spoolDepth === 0, 60_000, 200);
          // a clean stop: nothing left in flight, so every notification is counted once below
          const left = await agent.stop(10_000);
          const s = agent.deliveryStats!;
          const produced = a.produced();
          const dropped = agent.spoolState.dropped;
          const diskFullLogs = a.logs.filter((l) => l.includes(a.spoolPath) && /disk full|the disk is full/.test(l));
          obs.note(`broker back: spool drained in ${drainedS} s, then new notifications spooled and confirmed again; in all ${produced} produced, ${s.submitted} spooled, ${s.confirmed} confirmed from the spool, ${dropped} oldest dropped (counted), ${s.spoolErrors} not spooled (${s.unspooledConfirmed} sent without the spool and confirmed, ${s.unspooledLost} lost, counted); ${left} left at the stop; ${diskFullLogs.length} log lines like "${diskFullLogs[0]?.replace(/^.*? (ERROR|WARNING) chaos \[-\] /, '') ?? '(none)'}"`);

          // what must hold: a clear error, polling went on through it all, nothing crashed
          expect(diskFullLogs.length).toBeGreaterThan(0);
          expect(down.runs).toBeGreaterThanOrEqual(7);
          expect(agent.taskStats!.skipped).toBe(0);
          expect(left).toBe(0);
          // every notification is accounted for: confirmed from the spool, dropped by it, or not spooled (sent directly, or lost)
          expect(s.confirmed + dropped + s.spoolErrors).toBe(produced);
          expect(s.unspooledConfirmed + s.unspooledLost).toBe(s.spoolErrors);
          expect(s.submitted + s.spoolErrors).toBe(produced);
          if (s.confirmed + s.unspooledConfirmed === 0) {
            obs.gap('nothing was ever published, not even while the broker was up');
          }
          if (s.spoolErrors > 0) {
            obs.gap(`the spool refused ${s.spoolErrors} notification(s) (${s.unspooledConfirmed} sent without it and confirmed, ${s.unspooledLost} lost while the broker was away, each logged and counted)${reserve === 0 ? '; no reserve file was set aside' : ''}`);
          }
          if (dropped === 0) obs.gap('no oldest entry dropped for the full disk');
        });
      },
    );
  });

  it('Agent: the disk fills up during a broker outage (reserve in place), then the broker comes back', { timeout: 300_000 }, async () => {
    await scenario(
      'Agent (2 s interval) with its spool on a 128 MB tmpfs (default reserve: 1/16 of it, 8 MiB), private RabbitMQ stopped, the tmpfs then filled by a ballast file to ~200 KB free; 20 s later the broker is started again',
      'a clear error naming the spool path and the cause (disk full); oldest dropped and counted; the agent keeps polling and stays up; after the broker is back the spooled entries are delivered and spooling works again',
      async (obs) => {
        const big = mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-chaos-tmpfs128-'));
        await run('mount', ['-t', 'tmpfs', '-o', 'size=128m,mode=0700', 'tmpfs', big]);
        try {
          await withAgent(big, async (a) => {
            const { agent } = a;
            await until('notifications confirmed', () => agent.deliveryStats!.confirmed >= 6, 30_000, 200);
            const reserve = statSync(`${a.spoolPath}-reserve`, { throwIfNoEntry: false })?.size ?? 0;
            await a.rabbit.stop();
            const runs0 = agent.taskStats!.runs;
            const full = await a.fillDisk(200 * 1024);
            const fullAt = Date.now();
            await sleep(20_000);
            const s0 = { ...agent.deliveryStats! };
            const runsDown = agent.taskStats!.runs - runs0;
            obs.note(`reserve file ${Math.round(reserve / 1024)} KiB; broker down: ${runsDown} cycles; disk full after ${full.depthAtFull} spooled; in the next 20 s ${s0.spoolErrors} notification(s) refused, spool depth ${agent.spoolDepth}, ${agent.spoolState.dropped} oldest dropped; ${Math.round(a.free() / 1024)} KB free (the reserve was released)`);
            await a.rabbit.startAgain();
            await until('the spool drained', () => agent.spoolDepth === 0, 60_000, 200);
            const drainedS = Math.round((Date.now() - fullAt) / 1000);
            const before = agent.deliveryStats!.submitted;
            await until('new notifications spooled and confirmed again', () => agent.deliveryStats!.submitted > before + 6 && agent.spoolDepth === 0, 60_000, 200);
            const s = agent.deliveryStats!;
            const diskFull = a.logs.filter((l) => l.includes(a.spoolPath) && /disk full|the disk is full/.test(l));
            obs.note(`broker back: spool drained ${drainedS} s after the disk filled, then new notifications spooled and confirmed again; in all ${a.produced()} produced, ${s.submitted} spooled, ${s.confirmed} confirmed, ${s.spoolErrors} refused (counted in delivery stats.spoolErrors), ${agent.spoolState.dropped} oldest dropped (counted); ${diskFull.length} log lines like "${diskFull[0]?.replace(/^.*? (ERROR|WARNING) chaos \[-\] /, '') ?? '(none)'}"`);
            expect(reserve).toBe(8 * 1024 * 1024);
            expect(diskFull.length).toBeGreaterThan(0);
            expect(runsDown).toBeGreaterThanOrEqual(10);
            expect(agent.taskStats!.skipped).toBe(0);
            expect(s.confirmed).toBeGreaterThanOrEqual(s.submitted - agent.spoolState.dropped); // every spooled notification not dropped was delivered
            expect(s.submitted + s.spoolErrors).toBe(a.produced());
            if (agent.spoolState.dropped === 0) obs.gap(`no oldest entry dropped: the full disk refused the newest ${s.spoolErrors} notification(s) instead (each logged and counted)`);
          });
        } finally {
          await run('umount', [big]).catch(() => undefined);
          rmdirSync(big);
        }
      },
    );
  });
});

/** What an Agent scenario works with (see `withAgent`). */
interface AgentRun {
  agent: Agent;
  rabbit: PrivateRabbit;
  /** `<dir>/agent.sqlite` */
  spoolPath: string;
  /** the agent's log lines (WARNING and up) */
  logs: string[];
  /** notifications the agent has produced so far */
  produced: () => number;
  /** bytes free on the spool's filesystem */
  free: () => number;
  /**
   * Another program takes the disk: a ballast file leaving about `leaveBytes` free; resolves once the
   * spool meets the full disk (a drop for it, or a refused append).
   */
  fillDisk: (leaveBytes: number) => Promise<{ afterMs: number; depthAtFull: number }>;
}

/**
 * The Agent scenarios' setup: a private RabbitMQ node, an Agent (testAgentOptions: lab guests, 2 s
 * interval, quick broker retries, WARNING log kept) with its spool at `<dir>/agent.sqlite`, started;
 * `body` runs the scenario; no unhandled rejection may have come meanwhile. The agent is stopped
 * and the node destroyed afterwards, whatever happened.
 */
async function withAgent(dir: string, body: (a: AgentRun) => Promise<void>): Promise<void> {
  const rabbit = await PrivateRabbit.start();
  const logs: string[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  const spoolPath = path.join(dir, 'agent.sqlite');
  let agent: Agent | undefined;
  try {
    agent = new Agent(testAgentOptions({
      transportUrl: `rabbit://guest:guest@127.0.0.1:${rabbit.port}/?rabbit_retry_interval=1&rabbit_retry_backoff=1&rabbit_interval_max=2`,
      spoolPath,
      log: createLogger('chaos', { level: 'WARNING', write: (l) => logs.push(l) }),
    }));
    let produced = 0;
    agent.on('produced', () => produced++);
    agent.start();
    const a = agent;
    const free = (): number => {
      const st = statfsSync(dir);
      return st.bavail * st.bsize;
    };
    await body({
      agent: a,
      rabbit,
      spoolPath,
      logs,
      produced: () => produced,
      free,
      fillDisk: async (leaveBytes) => {
        const t0 = Date.now();
        await run('fallocate', ['-l', String(Math.max(0, free() - leaveBytes)), path.join(dir, 'ballast')]);
        await until('the full disk (a drop for it, or a refused append)', () => a.spoolState.dropped > 0 || a.deliveryStats!.spoolErrors > 0, 60_000, 200);
        return { afterMs: Date.now() - t0, depthAtFull: a.spoolDepth };
      },
    });
    expect(unhandled).toEqual([]);
  } finally {
    await agent?.stop(2000).catch(() => undefined);
    process.off('unhandledRejection', onUnhandled);
    await rabbit.destroy();
  }
}
