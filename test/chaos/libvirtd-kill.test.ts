// libvirtd killed with SIGKILL and started again during cycles, 5 times, while an Agent polls the lab
// every 2 s: the agent stays up, reconnects, the next cycle is complete (every lab guest in it), and
// events work again: one of our own domains (cafe0000-) defined and started after the last restart
// is announced by a lifecycle event and polled. Kills 1, 3 and 5 fire as a cycle starts; kills 2 and
// 4 inside the cycle's bulk stats call, half its round trip after it was sent (in-rpc.ts).
//
// Run it only when nobody else uses the lab's libvirtd: it kills the daemon (the guests keep running).

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Agent, type CycleDone } from '../../src/agent/agent.js';
import type { CycleResult } from '../../src/agent/poll-cycle.js';
import { createLogger } from '../../src/agent/log.js';
import { lifecycleEventName, type LifecycleEventMsg } from '../../src/libvirt/protocol.js';
import { testAgentOptions } from '../support/agent.js';
import { killLibvirtd, labGuests, sleep, startLibvirtd, until, virsh } from '../support/lab.js';
import { atBulkCall, halfBulkRoundTrip, type InBulk } from './in-rpc.js';
import { createOwnDomain, removeOwnDomains } from './own-domains.js';
import { scenario } from './report.js';
import { CHAOS } from './support.js';

const KILLS = 5;

describe.skipIf(!CHAOS)('libvirtd SIGKILLed during cycles, 5 times', () => {
  beforeAll(async () => {
    await removeOwnDomains();
  });
  afterAll(async () => {
    // leave a running daemon behind whatever happened, and none of our domains
    try {
      await virsh(['version']);
    } catch {
      await startLibvirtd();
    }
    await removeOwnDomains();
  }, 120_000);

  it('the agent stays up, reconnects, the next cycle is complete, events work again', { timeout: 300_000 }, async () => {
    await scenario(
      `libvirtd SIGKILLed ${KILLS} times (Agent in-process, 2 s interval), and started again: kills 1, 3, 5 just as a cycle starts, kills 2 and 4 inside the cycle's bulk stats call, half its round trip after it was sent`,
      'the agent stays up (no crash, no unhandled rejection), reconnects each time, the first cycle after each reconnect is complete (all 8 lab guests); the kills inside the bulk call are sent before its reply; after the last restart a new domain is announced by a lifecycle event and polled',
      async (obs) => {
        const lab = labGuests();
        const dir = mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-chaos-libvirtd-'));
        const unhandled: unknown[] = [];
        const onUnhandled = (e: unknown): void => void unhandled.push(e);
        process.on('unhandledRejection', onUnhandled);
        // the kill is fired from the "cycle started" debug line, so it lands inside a cycle
        let killAtNextCycle: (() => void) | null = null;
        const agent = new Agent(testAgentOptions({
          // no broker (nothing listens on port 1): the samples stay in a throw-away spool, off the machine's bus
          transportUrl: 'rabbit://guest:guest@127.0.0.1:1/',
          spoolPath: path.join(dir, 'spool.sqlite'),
          log: createLogger('chaos', {
            level: 'DEBUG',
            write: (l) => {
              if (killAtNextCycle && / cycle started$/.test(l)) {
                const k = killAtNextCycle;
                killAtNextCycle = null;
                k();
              }
            },
          }),
        }));
        const cycles: Array<{ at: number; result: CycleResult }> = [];
        const done: Array<CycleDone & { at: number }> = [];
        const events: LifecycleEventMsg[] = [];
        agent.on('cycle', (result) => cycles.push({ at: Date.now(), result }));
        agent.on('cycleDone', (d) => done.push({ ...d, at: Date.now() }));
        agent.supervisor.on('lifecycle', (e) => events.push(e));
        const ups: number[] = [];
        agent.on('connection', (peer, up) => {
          if (peer === 'libvirt' && up) ups.push(Date.now());
        });
        const complete = (r: CycleResult): boolean => {
          const seen = new Set(r.instances.map((i) => i.instance.uuid));
          return lab.every((g) => seen.has(g.uuid));
        };
        try {
          agent.start();
          await until('a complete first cycle', () => cycles.some((c) => complete(c.result)), 30_000, 100);
          const recover: number[] = [];
          const inRpc: string[] = [];
          /** SIGKILLs libvirtd as the next cycle starts; resolves once it is gone, with the time */
          const killAtCycleStart = (): Promise<number> =>
            new Promise<number>((resolve) => {
              killAtNextCycle = () => void killLibvirtd().then(() => resolve(Date.now()));
            });
          for (let k = 1; k <= KILLS; k++) {
            let at: number;
            if (k % 2 === 0) {
              // Inside the bulk call: half its shortest round trip of three cycles after it was sent. A
              // reply that beats that moment fires nothing, and the next cycle tries at half the delay.
              const { delayMs, roundTrips: rt } = await halfBulkRoundTrip(agent);
              const tried = [delayMs];
              let t: InBulk = await atBulkCall(agent, tried[0]!, killLibvirtd);
              while (t.missed && tried.length < 6) {
                tried.push(Math.max(1, Math.floor(tried.at(-1)! / 2)));
                t = await atBulkCall(agent, tried.at(-1)!, killLibvirtd);
              }
              if (t.missed) {
                obs.gap(`kill ${k}: the bulk reply beat the kill at ${tried.join(', ')} ms (round trips ${rt.join('/')} ms); not fired inside the call`);
                at = await killAtCycleStart();
              } else {
                at = Date.now();
                const how = t.bulkError ? `failed (${t.bulkError.slice(0, 110)})` : 'answered (its reply had left libvirtd)';
                inRpc.push(`kill ${k}: sent ${t.faultSentMs} ms after the bulk call (round trips ${rt.join('/')} ms${tried.length > 1 ? `, tried at ${tried.join(', ')} ms` : ''}), libvirtd gone at ${t.faultDoneMs} ms; the bulk call ${how} at ${t.bulkMs} ms`);
                expect(t.faultError).toBeUndefined();
                expect(t.faultSentMs).toBeLessThan(t.bulkMs);
              }
            } else {
              at = await killAtCycleStart();
            }
            await sleep(300 + k * 200); // a few cycles may fail meanwhile
            await startLibvirtd();
            const upAt = await until(`the agent reconnected after restart ${k}`, () => ups.find((t) => t > at), 30_000, 20);
            // the next cycle to finish after the reconnect: it must have succeeded, with every lab guest
            const next = await until(`a cycle after reconnect ${k}`, () => done.find((x) => x.at >= upAt), 30_000, 20);
            expect(next.outcome, next.error?.message).toBe('ok');
            const firstAfter = cycles.find((c) => c.at >= upAt)!;
            expect(complete(firstAfter.result)).toBe(true);
            recover.push(firstAfter.at - at);
          }
          const failed = done.filter((d) => d.outcome === 'failed');
          for (const line of inRpc) obs.note(line);
          obs.note(`${KILLS} kills; first cycle after each restart complete (${lab.length} lab guests), ${recover.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s after the kill; libvirt reconnects ${agent.connections.libvirt.reconnects}; ${failed.length} cycle(s) failed while the daemon was down (${[...new Set(failed.map((f) => f.error?.message.slice(0, 80)))].join(' | ')}); ${agent.taskStats!.skipped} skipped`);
          expect(agent.connections.libvirt.reconnects).toBe(KILLS);
          expect(agent.connections.libvirt.connected).toBe(true);

          // events after the last restart: a new domain is announced and polled
          const mark = events.length;
          const d = await createOwnDomain(1);
          const started = Date.now();
          const ev = await until('a lifecycle event for the new domain', () => events.slice(mark).find((e) => e.domain.uuid === d.uuid), 20_000, 20);
          const evAfter = Date.now() - started;
          const polled = await until('the new domain in a cycle', () => cycles.find((c) => c.at > started && c.result.instances.some((i) => i.instance.uuid === d.uuid)), 20_000, 50);
          obs.note(`after the last restart ${d.name} (${d.uuid}) defined and started: lifecycle event ${lifecycleEventName(ev.event)} seen within ${(evAfter / 1000).toFixed(1)} s of the start; polled in the cycle ${((polled.at - started) / 1000).toFixed(1)} s after it`);
          expect(unhandled).toEqual([]);
          expect(agent.taskStats!.runs).toBeGreaterThan(KILLS);
        } finally {
          await agent.stop(2000).catch(() => undefined);
          process.off('unhandledRejection', onUnhandled);
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  });
});
