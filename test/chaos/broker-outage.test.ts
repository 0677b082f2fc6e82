// RabbitMQ stopped for 2 minutes while ceilopoll polls the lab, ceilopoll SIGKILLed during the outage
// and started again on the same spool, then the broker started: every sample produced (by either
// process, from its debug log) is stored by the real ceilometer-agent-notification, counted by
// sample id; a sample stored twice would be a duplicate the agent's `_unique_id` check let through.
//
// Everything runs on a private RabbitMQ node, never the machine's. The notification agent declares
// notifications.sample non-durable (oslo's default, what test/e2e/notification-agent.sh writes), so
// RabbitMQ itself throws away what sits in that queue when it stops: the broker is stopped at a
// quiet moment, once everything produced so far has been stored. ceilopoll declares the queue
// again as soon as it reconnects, so what it replays waits there for the agent.

import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { labGuests, sleep, until } from '../support/lab.js';
import { scenario } from './report.js';
import { CHAOS, CeilopollProcess, OracleBroker, allStored, compareStored } from './support.js';

const OUTAGE_MS = Number(process.env.CEILOPOLL_CHAOS_OUTAGE_S ?? 120) * 1000;
const INTERVAL_S = 3;

let broker: OracleBroker | undefined;
const procs: CeilopollProcess[] = [];

describe.skipIf(!CHAOS)('RabbitMQ stopped for 2 minutes, ceilopoll SIGKILLed during the outage', () => {
  beforeAll(async () => {
    broker = await OracleBroker.start('ceilopoll-chaos-outage-');
  }, 300_000);

  afterAll(async () => {
    for (const p of procs) await p.kill('SIGKILL');
    await broker?.close();
  }, 120_000);

  it('loses no sample: produced = stored by the real notification agent', { timeout: 600_000 }, async () => {
    await scenario(
      `RabbitMQ stopped for ${OUTAGE_MS / 1000} s; ceilopoll (child process, ${INTERVAL_S} s interval) SIGKILLed mid-outage and started again on the same spool; broker started`,
      'zero samples lost (every produced sample id stored by ceilometer-agent-notification), none stored twice; duplicates only from replay, dropped by _unique_id; ceilopoll keeps polling during the outage',
      async (obs) => {
        const { rabbit: r, oracle: o, dir } = broker!;
        const conf = path.join(dir, 'ceilometer.conf');
        writeFileSync(path.join(dir, 'polling.yaml'), 'sources:\n  - name: memory\n    interval: 300\n    meters: ["memory*"]\n');
        writeFileSync(conf, [
          '[DEFAULT]',
          'debug = true',
          'host = compute-1',
          `transport_url = ${broker!.transportUrl()}`,
          '[ceilopoll]',
          'http_listen = off',
          `spool_path = ${path.join(dir, 'spool.sqlite')}`,
          '',
        ].join('\n'));
        const start = (): CeilopollProcess => {
          const p = new CeilopollProcess(['--config-file', conf, '--interval', String(INTERVAL_S)]);
          procs.push(p);
          return p;
        };
        const accepted = (): string[] => o.accepted();
        const producedIds = (): string[] => procs.flatMap((p) => p.produced.flatMap((n) => n.sampleIds));
        const everythingStored = (): boolean => allStored(producedIds(), accepted());

        const first = start();
        await until('samples stored by the notification agent', () => accepted().length >= 12, 90_000, 500);
        // a quiet moment: everything produced so far has been stored (see the top of this file)
        await until('everything produced so far stored', everythingStored, 30_000, 50);
        const storedBefore = accepted().length;
        const producedAtStop = producedIds().length;
        await r.stop();
        const outageStart = Date.now();
        obs.note(`${storedBefore} samples stored before the stop`);

        await sleep(OUTAGE_MS / 2);
        const firstDuringOutage = first.produced.length;
        const killed = await first.kill('SIGKILL');
        expect(killed.signal).toBe('SIGKILL');
        const spooledByFirst = producedIds().length - producedAtStop;
        obs.note(`first process produced ${firstDuringOutage} notification(s) in total, ${spooledByFirst} sample(s) during the outage, then SIGKILLed at ${Math.round((Date.now() - outageStart) / 1000)} s`);

        const second = start();
        await sleep(Math.max(0, OUTAGE_MS - (Date.now() - outageStart)));
        expect(second.alive).toBe(true);
        const secondDuringOutage = second.produced.length;
        expect(secondDuringOutage).toBeGreaterThan(0); // it polled during the outage
        expect(second.lines.some((l) => /notification\(s\) from an earlier run will be sent first/.test(l))).toBe(true);
        await r.startAgain();
        const outageS = Math.round((Date.now() - outageStart) / 1000);
        obs.note(`broker down ${outageS} s; the second process produced ${secondDuringOutage} notification(s) during it and logged the earlier run's spooled notifications`);

        const back = Date.now();
        await until('every produced sample stored by the notification agent', everythingStored, 180_000, 500);
        obs.note(`all stored ${Math.round((Date.now() - back) / 1000)} s after the broker came back`);
        // a few more cycles after the catch-up, then a clean stop: nothing left unconfirmed
        await sleep(2 * INTERVAL_S * 1000);
        const stopped = await second.kill('SIGTERM');
        expect(stopped.code).toBe(0);
        await sleep(3000);

        const produced = producedIds();
        const stored = accepted();
        const { missing, storedTwice, foreign } = compareStored(produced, stored);
        const dropped = o.duplicatesDropped();
        const producedUnique = new Set(procs.flatMap((p) => p.produced.map((n) => n.uniqueId)));
        const lab = labGuests().filter((g) => g.profile === 'stats').length;
        obs.note(`${produced.length} samples produced by the two processes (${lab} stats guests), ${stored.length} stored: ${missing.length} missing, ${storedTwice.length} stored twice, ${foreign.length} not produced by this run; the agent dropped ${dropped.length} duplicate message(s) by _unique_id`);
        expect(missing).toEqual([]);
        expect(storedTwice).toEqual([]);
        expect(foreign).toEqual([]);
        expect(dropped.filter((id) => !producedUnique.has(id))).toEqual([]); // a duplicate is a replay of a produced notification
        // the samples from the outage are there: both processes' share
        expect(produced.length - producedAtStop).toBeGreaterThan(0);
      },
    );
  });
});
