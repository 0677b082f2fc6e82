// The one way a replay makes duplicates: RabbitMQ has taken a cycle's notifications (the notification
// agent has even stored their samples), but the publisher confirms never reach ceilopoll, and then
// the connection is cut. ceilopoll cannot tell those notifications from lost ones, so they stay in
// the spool and go out again after the reconnect, with their original bytes and `_unique_id`; the
// real ceilometer-agent-notification must drop exactly those as duplicates and store nothing twice.
//
// A TCP relay (test/support/tcp-relay.ts) sits between ceilopoll (an in-process Agent, as in
// broker-kill.test.ts) and a private RabbitMQ node. When the first notification of a cycle is
// produced, the relay freezes the connection's broker side: what the broker sends is held back, the
// cycle's publishes still go through. Once the notification agent has stored every sample of the notifications in flight,
// the relay cuts the connection, and lets the reconnect through untouched.

import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { sleep, until } from '../support/lab.js';
import { TcpRelay } from '../support/tcp-relay.js';
import { scenario } from './report.js';
import { CHAOS, InProcessAgent, OracleBroker, allStored, compareStored } from './support.js';

const INTERVAL_S = 3;

let broker: OracleBroker | undefined;
let relay: TcpRelay | undefined;

describe.skipIf(!CHAOS)('publisher confirms lost, then the connection cut', () => {
  beforeAll(async () => {
    broker = await OracleBroker.start('ceilopoll-chaos-confirms-');
    relay = await TcpRelay.start(broker.rabbit.port);
  }, 300_000);

  afterAll(async () => {
    await relay?.close();
    await broker?.close();
  }, 120_000);

  it('sends the unconfirmed notifications again; the notification agent drops exactly those by _unique_id', { timeout: 300_000 }, async () => {
    await scenario(
      `a TCP relay between ceilopoll (Agent in-process, ${INTERVAL_S} s interval) and RabbitMQ (private node) holds back everything the broker sends from the moment a cycle's notifications go out, so their publisher confirms never arrive; once the notification agent has stored those notifications' samples, the relay cuts the connection`,
      'the unconfirmed notifications stay in the spool and are sent again after the reconnect; the notification agent drops exactly those duplicates by _unique_id: no sample lost, none stored twice; ceilopoll reconnects by itself',
      async (obs) => {
        const { oracle: o, dir } = broker!;
        const r = relay!;
        const ceilopoll = new InProcessAgent(o, { transportUrl: broker!.transportUrl(r.port), spoolPath: path.join(dir, 'spool.sqlite'), intervalSeconds: INTERVAL_S });
        const { agent, produced, unhandled } = ceilopoll;
        const producedIds = (): string[] => ceilopoll.producedIds();
        const everythingStored = (): boolean => ceilopoll.everythingStored();

        // The hold: armed at a quiet moment, started by the next cycle's first notification (the
        // cycle's publishes are written after it, the broker's confirms can only come later).
        let armed = false;
        let held: { firstOfCycle: number; inFlight: number; depth: number } | undefined;
        agent.on('produced', () => {
          if (!armed || held) return;
          armed = false;
          r.freeze();
          const firstOfCycle = produced.length - 1;
          held = { firstOfCycle, inFlight: -1, depth: -1 };
          setImmediate(() => {
            // the whole cycle has been submitted by now
            held!.inFlight = agent.deliveryInFlight;
            held!.depth = agent.spoolDepth;
          });
        });

        try {
          agent.start();
          await until('samples stored by the notification agent', () => o.accepted().length >= 12, 90_000, 500);
          await until('a quiet moment: everything produced so far stored and confirmed', () => everythingStored() && agent.spoolDepth === 0, 30_000, 50);
          const droppedBefore = o.duplicatesDropped().length;
          const confirmedBefore = agent.deliveryStats!.confirmed;
          const reconnects0 = agent.connections.broker.reconnects;
          armed = true;
          await until('the hold, with the cycle submitted', () => held && held.inFlight >= 0, 3 * INTERVAL_S * 1000 + 5000, 20);
          const h = held!;
          expect(h.inFlight).toBeGreaterThan(0);
          // what is in flight now: the spool's head, which was empty before this cycle
          const inFlightNotes = produced.slice(h.firstOfCycle, h.firstOfCycle + h.inFlight);
          const inFlightIds = inFlightNotes.flatMap((n) => n.sampleIds);
          const heldAt = Date.now();
          await until('the in-flight notifications stored by the notification agent', () => allStored(inFlightIds, o.accepted()), 20_000, 20);
          const storedAfterMs = Date.now() - heldAt;
          const stillInFlight = agent.deliveryInFlight;
          const confirmedWhileHeld = agent.deliveryStats!.confirmed - confirmedBefore;
          const cut = r.cut();
          obs.note(`${confirmedBefore} notifications confirmed before; the hold began with a cycle's first notification: ${h.inFlight} in flight (window 8), spool depth ${h.depth}; their ${inFlightIds.length} samples stored by the notification agent ${storedAfterMs} ms later, ${confirmedWhileHeld} confirmed meanwhile, ${stillInFlight} still in flight; ${cut} connection(s) cut, ${r.heldBytes} bytes from the broker held back`);
          expect(confirmedWhileHeld).toBe(0);
          expect(stillInFlight).toBe(h.inFlight);

          await until('ceilopoll reconnected by itself', () => agent.connections.broker.connected && agent.connections.broker.reconnects > reconnects0, 60_000, 50);
          const reconnectMs = Date.now() - heldAt - storedAfterMs;
          await until('the spool drained', () => agent.spoolDepth === 0, 60_000, 50);
          await until('every produced sample stored', everythingStored, 60_000, 200);
          await sleep(2000); // the duplicates, if any got through, are stored by now
          const dropped = o.duplicatesDropped().slice(droppedBefore);
          const resentIds = inFlightNotes.map((n) => n.uniqueId);
          const inFlightStored = compareStored(inFlightIds, o.accepted().filter((id) => inFlightIds.includes(id)));
          obs.note(`reconnected ${(reconnectMs / 1000).toFixed(1)} s after the cut (broker reconnects ${agent.connections.broker.reconnects - reconnects0}, relay connections ${r.accepted}); the spool drained; the notification agent dropped ${dropped.length} duplicate message(s) by _unique_id, ${dropped.filter((id) => resentIds.includes(id)).length} of them the ${h.inFlight} sent again; of the held notifications' ${inFlightIds.length} samples ${inFlightIds.length - inFlightStored.missing.length} stored, ${inFlightStored.storedTwice.length} twice`);
          expect([...dropped].sort()).toEqual([...resentIds].sort());
          expect(inFlightStored.missing).toEqual([]);
          expect(inFlightStored.storedTwice).toEqual([]);

          // a few more cycles, then a clean stop: nothing left unconfirmed
          expect(await ceilopoll.stopAfterTwoCycles()).toBe(0);
          await until('the last samples stored', everythingStored, 30_000, 200);
          await sleep(2000);

          const ids = producedIds();
          const stored = o.accepted();
          const { missing, storedTwice, foreign } = compareStored(ids, stored);
          const droppedAll = o.duplicatesDropped().slice(droppedBefore);
          obs.note(`${ids.length} samples produced in ${produced.length} notifications, ${stored.length} stored: ${missing.length} missing, ${storedTwice.length} stored twice, ${foreign.length} not produced by this run; duplicates dropped in all ${droppedAll.length}; no unhandled rejection: ${unhandled.length === 0}`);
          expect(missing).toEqual([]);
          expect(storedTwice).toEqual([]);
          expect(foreign).toEqual([]);
          expect(droppedAll.length).toBe(h.inFlight); // no other duplicate than the replayed ones
          expect(unhandled).toEqual([]);
        } finally {
          await ceilopoll.release();
        }
      },
    );
  });
});
