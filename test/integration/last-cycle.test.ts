// What the agent keeps of its last cycle: enough for /healthz and the state report (the instances,
// the skipped domains, the meters, the sample and libvirt call counts), not the samples, which are
// in the spool by then and would otherwise stay alive through the whole next cycle.
// The lab's guests; the broker is unreachable, so every notification stays in the spool.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { Agent } from '../../src/agent/agent.js';
import { agentSnapshot } from '../../src/agent/observe.js';
import type { CycleResult } from '../../src/agent/poll-cycle.js';
import { testAgentOptions } from '../support/agent.js';
import { until } from '../support/lab.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-last-cycle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the agent's last cycle", () => {
  it('is kept as a summary that agrees with the cycle, without its samples', { timeout: 60_000 }, async () => {
    const agent = new Agent(testAgentOptions({
      transportUrl: 'rabbit://guest:guest@127.0.0.1:1/',
      spoolPath: path.join(dir, 'spool.sqlite'),
      intervalSeconds: 1,
    }));
    const cycles: CycleResult[] = [];
    agent.on('cycle', (r) => cycles.push(r));
    agent.start();
    try {
      await until('2 cycles', () => cycles.length >= 2, 30_000, 50);
      const r = cycles[cycles.length - 1]!;
      const last = agent.lastCycleResult!;
      const samples = r.runs.reduce((n, run) => n + run.samples.length, 0);
      expect(samples).toBeGreaterThan(0);
      expect(last.samples).toBe(samples);
      expect(last.libvirtCalls).toBe(r.libvirtCalls);
      expect(last.instances).toBe(r.instances);
      expect(last.skipped).toEqual(r.skipped);
      expect(last.meters.map((m) => m.name)).toEqual(r.runs.map((run) => run.meter.name));
      // none of the cycle's samples can be reached from it
      const cycleSamples = new Set<object>(r.runs.flatMap((run) => run.samples));
      const seen = new Set<object>();
      const walk = (v: unknown): void => {
        if (v === null || typeof v !== 'object' || seen.has(v)) return;
        seen.add(v);
        for (const x of Object.values(v)) walk(x);
      };
      walk(last);
      expect([...seen].filter((o) => cycleSamples.has(o))).toEqual([]);
      expect(seen.size).toBeGreaterThan(r.instances.length); // the walk did go through the instances

      const snap = agentSnapshot(agent, { libvirtUri: 'qemu:///system', brokerTarget: 'rabbit://127.0.0.1:1/', config: {} });
      expect(snap.lastCycle).toMatchObject({ instances: r.instances.length, samples });
      expect(snap.inventory.instances.map((i) => i.uuid).sort()).toEqual(r.instances.map((ir) => ir.instance.uuid).sort());
      // each instance's values in the snapshot are the samples the cycle built for it
      for (const run of r.runs) {
        for (const s of run.samples) {
          expect(snap.inventory.instances.find((i) => i.uuid === s.instance.uuid)!.values[run.meter.name]).toBe(s.volume);
        }
      }
    } finally {
      await agent.stop(500);
    }
  });
});
