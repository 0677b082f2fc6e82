// RabbitMQ SIGKILLed while ceilopoll is publishing, kept down for 30 s (CEILOPOLL_CHAOS_KILL_DOWN_S),
// then started again on the same data dir: every sample ceilopoll produced is stored by the real
// ceilometer-agent-notification, counted by sample id as in broker-outage.test.ts (support.ts:
// OracleAgent, compareStored); nothing is stored twice; ceilopoll stays up and reconnects by itself.
//
// ceilopoll runs in-process here (an Agent with the CLI's debug log, whose "produced notification"
// lines are parsed as for the child process), so that what was in flight at the kill can be read
// exactly: the kill is fired from the first notification of a cycle, in a setImmediate, i.e. once the
// whole cycle has been submitted (spooled and handed to amqplib) and before any of its confirms can
// have been read. The node's beam.smp and its children get SIGKILL (PrivateRabbit.kill: no clean
// shutdown, no flush), and the notifications in flight then are the ones the spool must send again.
//
// The oracle's notifications.sample is non-durable (oslo's default), so whatever RabbitMQ had in it
// dies with the node. Nothing confirmed waits there at the kill: the notifications confirmed before
// it are those of earlier cycles, which the agent has consumed seconds before. What the agent had
// taken but not acknowledged it stores anyway; those sent again are then duplicates it drops by
// `_unique_id`.

import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { labGuests, sleep, until } from '../support/lab.js';
import { scenario } from './report.js';
import { CHAOS, InProcessAgent, OracleBroker, compareStored, type ProducedLine } from './support.js';

const DOWN_MS = Number(process.env.CEILOPOLL_CHAOS_KILL_DOWN_S ?? 30) * 1000;
const INTERVAL_S = 3;

let broker: OracleBroker | undefined;

describe.skipIf(!CHAOS)('RabbitMQ SIGKILLed while ceilopoll publishes', () => {
  beforeAll(async () => {
    broker = await OracleBroker.start('ceilopoll-chaos-kill-');
  }, 300_000);

  afterAll(async () => {
    await broker?.close();
  }, 120_000);

  it('loses no sample: produced = stored by the real notification agent; the in-flight ones sent again', { timeout: 600_000 }, async () => {
    await scenario(
      `RabbitMQ (private node) SIGKILLed (beam.smp and children, kill -9) while ceilopoll (Agent in-process, ${INTERVAL_S} s interval, debug log) has a cycle's notifications in flight; down ${DOWN_MS / 1000} s; started again on the same data dir`,
      'zero samples lost (every produced sample id stored by ceilometer-agent-notification), none stored twice; duplicates only from replay, dropped by _unique_id; ceilopoll stays up and reconnects by itself; the notifications in flight at the kill are sent again from the spool',
      async (obs) => {
        const { rabbit: r, oracle: o, dir } = broker!;
        const ceilopoll = new InProcessAgent(o, { transportUrl: broker!.transportUrl(), spoolPath: path.join(dir, 'spool.sqlite'), intervalSeconds: INTERVAL_S });
        const { agent, produced, unhandled } = ceilopoll;
        const producedIds = (): string[] => ceilopoll.producedIds();
        const everythingStored = (): boolean => ceilopoll.everythingStored();

        // The kill: armed at a quiet moment, fired once the next cycle has submitted everything.
        let armed = false;
        let kill: { at: number; inFlight: number; depth: number; cycle: ProducedLine[]; killed: Promise<void> } | undefined;
        agent.on('produced', () => {
          if (!armed || kill) return;
          armed = false;
          const firstOfCycle = produced.length - 1;
          setImmediate(() => {
            const inFlight = agent.deliveryInFlight;
            const depth = agent.spoolDepth;
            const killed = r.kill(); // the SIGKILLs go out before this returns
            kill = { at: Date.now(), inFlight, depth, cycle: produced.slice(firstOfCycle), killed };
          });
        });

        try {
          agent.start();
          await until('samples stored by the notification agent', () => o.accepted().length >= 12, 90_000, 500);
          await until('everything produced so far stored', everythingStored, 30_000, 50);
          const storedBefore = o.accepted().length;
          const confirmedBefore = agent.deliveryStats!.confirmed;
          const failedBefore = agent.deliveryStats!.failedAttempts;
          armed = true;
          await until('the kill', () => kill, 3 * INTERVAL_S * 1000 + 5000, 20);
          const k = kill!;
          await k.killed;
          obs.note(`${storedBefore} samples stored and ${confirmedBefore} notifications confirmed before; SIGKILL as a cycle's ${k.cycle.length} notification(s) were submitted: ${k.inFlight} in flight (published, not confirmed), spool depth ${k.depth}`);
          expect(k.inFlight).toBeGreaterThan(0);
          expect(r.isRunning()).toBe(false);

          // the outage: ceilopoll keeps polling and spooling, the spool keeps the in-flight ones
          await until('ceilopoll noticed the broker is gone', () => !agent.connections.broker.connected, 30_000, 50);
          const lostAfterMs = Date.now() - k.at;
          const depthAfterKill = agent.spoolDepth;
          const runs0 = agent.taskStats!.runs;
          const produced0 = produced.length;
          await sleep(Math.max(0, DOWN_MS - (Date.now() - k.at)));
          const during = { runs: agent.taskStats!.runs - runs0, produced: produced.length - produced0, depth: agent.spoolDepth };
          obs.note(`connection loss seen ${lostAfterMs} ms after the kill (${agent.deliveryStats!.failedAttempts - failedBefore} publish(es) failed: not confirmed, left in the spool), spool depth then ${depthAfterKill}; down ${Math.round((Date.now() - k.at) / 1000)} s: ${during.runs} cycles, ${during.produced} notifications produced, spool depth ${during.depth}`);
          expect(depthAfterKill).toBeGreaterThanOrEqual(k.inFlight); // not confirmed: still in the spool
          expect(during.runs).toBeGreaterThan(0);
          expect(during.produced).toBeGreaterThan(0);

          // the killed cycle's samples the agent had already stored: they reached it before the kill
          const cycleIds = k.cycle.flatMap((n) => n.sampleIds);
          const cycleSet = new Set(cycleIds);
          const cycleStoredInOutage = new Set(o.accepted().filter((id) => cycleSet.has(id))).size;
          const reconnects0 = agent.connections.broker.reconnects;
          const confirmed0 = agent.deliveryStats!.confirmed;
          const restart = Date.now();
          await r.startAgain();
          const back = Date.now();
          await until('ceilopoll reconnected by itself', () => agent.connections.broker.connected && agent.connections.broker.reconnects > reconnects0, 120_000, 100);
          const reconnectS = (Date.now() - back) / 1000;
          await until('the spool drained', () => agent.spoolDepth === 0, 120_000, 100);
          const resent = agent.deliveryStats!.confirmed - confirmed0;
          await until('every produced sample stored by the notification agent', everythingStored, 180_000, 500);
          const storedS = Math.round((Date.now() - back) / 1000);
          const cycleStored = compareStored(cycleIds, o.accepted().filter((id) => cycleSet.has(id)));
          obs.note(`broker started again (AMQP answering ${((back - restart) / 1000).toFixed(1)} s after the start): ceilopoll reconnected by itself ${reconnectS.toFixed(1)} s after that; the spool drained: ${resent} notification(s) confirmed after the restart (the ${depthAfterKill} left at the kill, the ${k.inFlight} in flight among them, and the outage's); all produced samples stored ${storedS} s after the restart; the killed cycle's ${cycleIds.length} samples: ${cycleStoredInOutage} had reached the notification agent before the kill, ${cycleIds.length - cycleStored.missing.length} stored in the end, ${cycleStored.storedTwice.length} twice`);
          expect(resent).toBeGreaterThanOrEqual(depthAfterKill); // each confirmed again after the restart (nothing dropped)
          expect(agent.spoolState.dropped).toBe(0);
          expect(cycleStored.missing).toEqual([]);

          // a few more cycles, then a clean stop: nothing left unconfirmed
          expect(await ceilopoll.stopAfterTwoCycles()).toBe(0);
          await until('the last samples stored', everythingStored, 30_000, 200);
          await sleep(2000);

          const ids = producedIds();
          const stored = o.accepted();
          const { missing, storedTwice, foreign } = compareStored(ids, stored);
          const dropped = o.duplicatesDropped();
          const producedUnique = new Set(produced.map((n) => n.uniqueId));
          const lab = labGuests().filter((g) => g.profile === 'stats').length;
          obs.note(`${ids.length} samples produced in ${produced.length} notifications (${lab} stats guests), ${stored.length} stored: ${missing.length} missing, ${storedTwice.length} stored twice, ${foreign.length} not produced by this run; the agent dropped ${dropped.length} duplicate message(s) by _unique_id; broker reconnects ${agent.connections.broker.reconnects}; no unhandled rejection: ${unhandled.length === 0}`);
          expect(missing).toEqual([]);
          expect(storedTwice).toEqual([]);
          expect(foreign).toEqual([]);
          expect(dropped.filter((id) => !producedUnique.has(id))).toEqual([]); // a duplicate is a replay of a produced notification
          expect(unhandled).toEqual([]);
        } finally {
          await ceilopoll.release();
        }
      },
    );
  });
});
