// End to end: ceilopoll polls the lab's real guests and publishes to the machine's RabbitMQ; the
// real Debian 12 ceilometer-agent-notification (Zed; with CEILOMETER_RELEASE=trixie Debian 13's
// Ceilometer 24, `make e2e-trixie`) takes the notifications and writes what it
// accepts to a file:// publisher. Every memory.usage sample ceilopoll sent must come out of the
// real agent with the same volume, resource_id and metadata (and so every other memory meter).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Agent } from '../../src/agent/agent.js';
import type { PyFloat} from '../../src/samples/pyjson.js';
import { type PyDict } from '../../src/samples/pyjson.js';
import { DEFAULT_SAMPLE_OPTIONS, toWireSample } from '../../src/samples/sample.js';
import { testAgentOptions } from '../support/agent.js';
import { labGuests, sleep, until } from '../support/lab.js';
import { compareSent, describeComparison, readAccepted, type SentSample } from './accepted.js';
import { notificationAgent } from './harness.js';

let dir = '';
beforeAll(async () => {
  await notificationAgent('install');
  dir = mkdtempSync(path.join(tmpdir(), 'ceilopoll-e2e-own-'));
  // memory.* does not match 2025.2's plain `memory` meter: list both in the pipeline source
  await notificationAgent('start', dir, { PURGE: '1', METERS: 'memory,memory.*' });
}, 600_000);
afterAll(async () => {
  if (dir !== '') {
    await notificationAgent('stop', dir);
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

describe('ceilopoll -> RabbitMQ -> ceilometer-agent-notification', () => {
  it('every sample ceilopoll sent is stored by the real agent as sent', { timeout: 180_000 }, async () => {
    const sent: SentSample[] = [];
    const agent = new Agent(testAgentOptions({
      transportUrl: 'rabbit://guest:guest@127.0.0.1:5672/',
      spoolPath: path.join(dir, 'spool.sqlite'),
      intervalSeconds: 3,
    }));
    agent.on('cycle', (r) => {
      for (const run of r.runs) {
        for (const s of run.samples) {
          const w: PyDict = toWireSample(s, { ...DEFAULT_SAMPLE_OPTIONS, host: 'compute-1' });
          sent.push({
            resource_id: w.resource_id as string,
            counter_name: w.counter_name as string,
            counter_volume: (w.counter_volume as PyFloat).value,
            counter_type: w.counter_type as string,
            counter_unit: w.counter_unit as string,
            user_id: w.user_id as string,
            project_id: w.project_id as string,
            resource_metadata: w.resource_metadata,
            message_id: w.message_id as string,
          });
        }
      }
    });
    agent.start();
    await until('three cycles', () => (agent.taskStats?.runs ?? 0) >= 3, 60_000, 200);
    expect(await agent.stop(20_000)).toBe(0); // everything confirmed by the broker
    const usage = sent.filter((s) => s.counter_name === 'memory.usage');
    // every stats guest; besides them only the paused one, whose stats stay fresh for three periods
    // after the lab (re)made it (later they are stale and it has none)
    const ids = new Set(usage.map((s) => s.resource_id));
    for (const g of labGuests().filter((x) => x.profile === 'stats')) expect(ids, g.name).toContain(g.uuid);
    const others = labGuests().filter((g) => ids.has(g.uuid) && g.profile !== 'stats');
    expect(others.map((g) => g.profile).filter((p) => p !== 'paused')).toEqual([]);

    let cmp = compareSent(sent, readAccepted(path.join(dir, 'accepted.jsonl')));
    for (let i = 0; i < 60 && cmp.missing.length > 0; i++) {
      await sleep(500);
      cmp = compareSent(sent, readAccepted(path.join(dir, 'accepted.jsonl')));
    }
    expect(cmp.missing, describeComparison(cmp)).toEqual([]);
    expect(cmp.mismatched, describeComparison(cmp)).toEqual([]);
    expect(cmp.duplicates).toEqual([]);
    expect(cmp.matched).toBe(sent.length);
  });
});
