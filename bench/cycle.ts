// Benchmark: the steady-state cost of one polling cycle inside the real Agent, where it goes, and
// what delivery costs after it. N test-driver domains with Nova metadata (test/lab/testdrv/gen-node.sh)
// through the lab's libvirtd, the machine's RabbitMQ, a spool in a temporary directory.
//
//   cycle       Agent.runCycle: stats read, inventory, inspection, samples, notifications to the spool
//   delivery    from the end of the cycle until the spool is empty (published and confirmed)
//   profile     a CPU profile (node:inspector) of K more cycles and their delivery: the functions with
//               the most self time, as a share of the CPU profiled
//
// `npx tsx bench/cycle.ts` (make bench). Env: BENCH_DOMAINS (1000), BENCH_CYCLES (10),
// BENCH_PROFILE=0 to skip the profile, BENCH_ALLOC=1 for an allocation profile, BENCH_HEAPSNAP=<file> for a heap snapshot after the measured cycles, BENCH_GAP_MS (idle ms before each measured cycle, 0), TRANSPORT_URL (rabbit://guest:guest@127.0.0.1:5672/),
// LAB_STATE (/var/lib/libvirt/lab). Needs root, `make lab-up` (libvirtd) and RabbitMQ.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';

import { Agent, type PollingTaskSpec } from '../src/agent/agent.js';
import { MEMORY_METERS } from '../src/samples/meters.js';
import { testAgentOptions } from '../test/support/agent.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.BENCH_DOMAINS ?? 1000);
const K = Number(process.env.BENCH_CYCLES ?? 10);
const PROFILE = process.env.BENCH_PROFILE !== '0';
/** BENCH_ALLOC=1: a sampled allocation profile of K more cycles (who makes the garbage) */
const ALLOC = process.env.BENCH_ALLOC === '1';
/** idle time before each measured cycle, as between an agent's cycles (0: back to back) */
const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 0);
const transportUrl = process.env.TRANSPORT_URL ?? 'rabbit://guest:guest@127.0.0.1:5672/';
const labState = process.env.LAB_STATE ?? '/var/lib/libvirt/lab';

interface Internals {
  tasks: Array<{ spec: PollingTaskSpec; task: { name: string } }>;
  runCycle(task: string, spec: PollingTaskSpec): Promise<void>;
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f1 = (x: number): string => x.toFixed(1);

async function until(what: string, cond: () => boolean, ms = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`bench/cycle: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }

function topSelf(profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }, n: number): string[] {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const parent = new Map<number, number>();
  for (const x of profile.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
  // a function without a script (native: SQLite's run, crypto's update, a socket's writeBuffer) is
  // named with its nearest caller that has one
  const label = (id: number): string => {
    let cur: number | undefined = id;
    while (cur !== undefined) {
      const f = byId.get(cur)!.callFrame;
      if (f.url) return `${f.functionName || '(anonymous)'} ${f.url.startsWith('file:') ? path.relative(path.resolve(here, '..'), fileURLToPath(f.url)) : f.url}`;
      cur = parent.get(cur);
    }
    return '';
  };
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id)!;
    const f = node.callFrame;
    if (f.functionName === '(idle)') return;
    const key = f.url ? label(id) : `${f.functionName || '(anonymous)'}${f.functionName.startsWith('(') ? '' : ` < ${label(id)}`}`;
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => `${(us / 1000 / K).toFixed(2).padStart(8)} ms/cycle ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
}

interface AllocNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: AllocNode[] }

function topAllocators(profile: { head: AllocNode }, n: number): string[] {
  const self = new Map<string, number>();
  let total = 0;
  const walk = (node: AllocNode, caller: string): void => {
    const f = node.callFrame;
    const site = f.url ? `${f.functionName || '(anonymous)'} ${f.url.startsWith('file:') ? path.relative(path.resolve(here, '..'), fileURLToPath(f.url)) : f.url}:${f.lineNumber + 1}` : '';
    const key = site || `${f.functionName || '(native)'} < ${caller}`;
    if (node.selfSize > 0) {
      self.set(key, (self.get(key) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const c of node.children) walk(c, site || caller);
  };
  walk(profile.head, '');
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, bytes]) => `${(bytes / 2 ** 20 / K).toFixed(2).padStart(7)} MiB/cycle ${((100 * bytes) / total).toFixed(1).padStart(5)}%  ${k}`);
}

async function main(): Promise<void> {
  const nodeFile = path.join(labState, `bench-cycle-node-${N}.xml`);
  writeFileSync(nodeFile, execFileSync(path.join(here, '../test/lab/testdrv/gen-node.sh'), [String(N)], { maxBuffer: 512 * 1024 * 1024 }));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-bench-cycle-'));
  const agent = new Agent(testAgentOptions({
    transportUrl,
    spoolPath: path.join(dir, 'spool.sqlite'),
    libvirtUri: `test+unix://${nodeFile}`,
    intervalSeconds: 3600, // only the start's cycle runs by itself; the measured ones are called below
    topics: ['bench-cycle'],
    // the test driver's balloon stats carry a fixed last_update from years ago (see bench/compare/compare.ts)
    stalenessFactor: 1e9,
    // bench-compare's meters: the four that Ceilometer Zed has
    meters: MEMORY_METERS.filter((m) => ['memory.usage', 'memory.resident', 'memory.swap.in', 'memory.swap.out'].includes(m.name)),
  }));
  let samples = 0;
  let perMeter = '';
  agent.on('cycle', (r) => {
    samples = r.runs.reduce((a, run) => a + run.samples.length, 0);
    perMeter = r.runs.map((run) => `${run.meter.name} ${run.samples.length}`).join(', ');
  });
  const internals = agent as unknown as Internals;
  const delivered = (): boolean => agent.spoolDepth === 0;
  try {
    agent.start();
    await until('the first cycle', () => samples > 0);
    await until('the first cycle delivered', delivered);
    const [{ spec, task }] = internals.tasks as [Internals['tasks'][number]];
    const faults = (): number => {
      const u = process.resourceUsage();
      return u.minorPageFault + u.majorPageFault;
    };
    const cycle = async (): Promise<{ wall: number; cpu: number; deliveryCpu: number; deliveryWall: number; faults: number }> => {
      const f0 = faults();
      const c0 = cpuMs();
      const t0 = performance.now();
      await internals.runCycle(task.name, spec);
      const c1 = cpuMs();
      const t1 = performance.now();
      await until('delivery', delivered);
      return { wall: t1 - t0, cpu: c1 - c0, deliveryCpu: cpuMs() - c1, deliveryWall: performance.now() - t1, faults: faults() - f0 };
    };
    await cycle(); // one more warm-up: the JIT has now seen the whole path
    const runs = [];
    /** the idle time an agent has between its cycles, when BENCH_GAP_MS asks for it */
    const idle = (): Promise<unknown> | undefined => (GAP_MS > 0 ? new Promise((r) => setTimeout(r, GAP_MS)) : undefined);
    for (let i = 0; i < K; i++) {
      await idle();
      runs.push(await cycle());
    }
    const mem = process.memoryUsage();
    console.log(`bench/cycle: ${N} test-driver domains, ${samples} samples/cycle (${perMeter}), ${K} cycles (medians), node ${process.version}`);
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(`  cycle     wall ${f1(median(runs.map((r) => r.wall)))} ms, CPU ${f1(median(runs.map((r) => r.cpu)))} ms (${f1((1000 * median(runs.map((r) => r.cpu))) / samples)} µs/sample); means ${f1(mean(runs.map((r) => r.wall)))} / ${f1(mean(runs.map((r) => r.cpu)))} ms; CPU each: ${runs.map((r) => r.cpu.toFixed(0)).join(' ')}`);
    console.log(`  delivery  wall ${f1(median(runs.map((r) => r.deliveryWall)))} ms, CPU ${f1(median(runs.map((r) => r.deliveryCpu)))} ms`);
    // page faults of cycle + delivery: memory given back to the kernel while idle is faulted in again
    console.log(`  faults    ${median(runs.map((r) => r.faults))} page faults per cycle + delivery (median); each: ${runs.map((r) => r.faults).join(' ')}`);
    const spaces = v8.getHeapSpaceStatistics().filter((sp) => sp.space_size > 2 ** 20).map((sp) => `${sp.space_name.replace(/_space$/, '')} ${f1(sp.space_used_size / 2 ** 20)}/${f1(sp.space_size / 2 ** 20)}`).join(', ');
    console.log(`  memory    RSS ${f1(mem.rss / 2 ** 20)} MiB, heap used ${f1(mem.heapUsed / 2 ** 20)} of ${f1(mem.heapTotal / 2 ** 20)} MiB (${spaces}), external ${f1(mem.external / 2 ** 20)} MiB (array buffers ${f1(mem.arrayBuffers / 2 ** 20)})`);
    if (process.env.BENCH_HEAPSNAP) console.log(`  heap      snapshot in ${v8.writeHeapSnapshot(process.env.BENCH_HEAPSNAP)}`);
    if (process.env.BENCH_SMAPS === '1') {
      // where the RSS is: the largest mappings (anonymous ones are V8's heap, malloc's arenas, ...)
      const maps: Array<{ name: string; rss: number }> = [];
      let cur: { name: string; rss: number } | null = null;
      for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
        const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
        if (head) maps.push((cur = { name: head[1] || '[anon]', rss: 0 }));
        else if (cur && line.startsWith('Rss:')) cur.rss += Number(line.split(/\s+/)[1]);
      }
      const byName = new Map<string, number>();
      for (const m of maps) byName.set(m.name, (byName.get(m.name) ?? 0) + m.rss);
      console.log(`  smaps     ${[...byName].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([n, kb]) => `${path.basename(n)} ${f1(kb / 1024)}`).join(', ')} (MiB)`);
    }
    if (ALLOC) {
      // which functions allocate what a cycle leaves to the garbage collector (sampled, 8 KiB apart)
      const session = new Session();
      session.connect();
      await session.post('HeapProfiler.enable');
      await session.post('HeapProfiler.startSampling', { samplingInterval: 8192, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      for (let i = 0; i < K; i++) await cycle();
      const { profile } = await session.post('HeapProfiler.stopSampling');
      session.disconnect();
      console.log(`  allocated per cycle (cycle + delivery, ${K} cycles, sampled), by function:`);
      for (const line of topAllocators(profile, 20)) console.log(`    ${line}`);
    }
    if (PROFILE) {
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 100 });
      await session.post('Profiler.start');
      for (let i = 0; i < K; i++) {
        await idle();
        await cycle();
      }
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      console.log(`  profile   self time per cycle (cycle + delivery, ${K} cycles, idle excluded):`);
      for (const line of topSelf(profile as never, 25)) console.log(`    ${line}`);
    }
  } finally {
    await agent.stop(10_000);
    rmSync(dir, { recursive: true, force: true });
    rmSync(nodeFile, { force: true });
  }
}

await main();
