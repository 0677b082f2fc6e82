// What an idle interval costs the next burst of work, with none of ceilopoll's code: the same
// synthetic work (objects, JSON text, HMAC-SHA256, a Buffer from a long string: what a cycle does a
// few thousand times) timed back to back and after an idle gap, and beside it a pure arithmetic
// loop of about the same length as the reference that touches no memory. Prints CPU and minor page
// faults per burst (medians) and the ratios after idle / back to back.
//
//   npx tsx bench/idle-cost.ts                  # 8 bursts each way, 10 s gaps (about 3 min)
//   BENCH_GAP_MS=5000 BENCH_BURSTS=12 npx tsx bench/idle-cost.ts
//   node --no-flush-bytecode --import tsx bench/idle-cost.ts   # with V8 or glibc settings to try

import { createHmac } from 'node:crypto';

import { median } from './stats.js';

const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 10_000);
const BURSTS = Number(process.env.BENCH_BURSTS ?? 8);

interface Burst {
  cpuMs: number;
  faults: number;
}

function measured(work: () => unknown): Burst {
  const f0 = process.resourceUsage().minorPageFault;
  const t0 = process.cpuUsage();
  work();
  const t = process.cpuUsage(t0);
  return { cpuMs: (t.user + t.system) / 1000, faults: process.resourceUsage().minorPageFault - f0 };
}

/** about what a 1000-domain cycle does per sample, 3400 times */
function cycleLike(): number {
  let acc = 0;
  const parts: string[] = [];
  for (let i = 0; i < 3400; i++) {
    const sample = { id: `sample-${i}`, volume: i * 1.5, resource_metadata: { name: `instance-${i}`, flavor: { vcpus: 1, ram: 512 }, ids: [i, i + 1] } };
    const text = JSON.stringify(sample);
    parts.push(text);
    acc += createHmac('sha256', 'secret').update(text.repeat(8)).digest('hex').length;
  }
  return acc + Buffer.from(parts.join(', ').repeat(4), 'latin1').length;
}

/** integer arithmetic only: no allocation, no memory beyond a few registers */
function arithmetic(): number {
  let x = 1;
  for (let i = 0; i < 1_000_000; i++) x = (x * 1103515245 + 12345) % 2147483647;
  return x;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function series(work: () => unknown, gapMs: number): Promise<Burst[]> {
  const out: Burst[] = [];
  for (let i = 0; i < BURSTS; i++) {
    if (gapMs > 0) await sleep(gapMs);
    out.push(measured(work));
  }
  return out;
}

for (let i = 0; i < 5; i++) {
  cycleLike(); // warm: compiled, heap grown
  arithmetic();
}
const rows: Array<[string, Burst[], Burst[]]> = [];
for (const [name, work] of [['cycle-like (objects, JSON, HMAC, Buffer)', cycleLike], ['arithmetic loop (reference)', arithmetic]] as const) {
  const warm = await series(work, 0);
  const idle = await series(work, GAP_MS);
  rows.push([name, warm, idle]);
}

console.log(`bench/idle-cost: ${BURSTS} bursts back to back, then ${BURSTS} each after ${GAP_MS / 1000} s idle; node ${process.version}, flags: ${process.execArgv.join(' ') || 'none'}`);
console.log('| work | CPU ms back to back | CPU ms after idle | ratio | page faults back to back | after idle |');
console.log('|---|---|---|---|---|---|');
for (const [name, warm, idle] of rows) {
  const w = median(warm.map((b) => b.cpuMs));
  const i = median(idle.map((b) => b.cpuMs));
  console.log(`| ${name} | ${w.toFixed(1)} | ${i.toFixed(1)} | ${(i / w).toFixed(2)}x | ${median(warm.map((b) => b.faults))} | ${median(idle.map((b) => b.faults))} |`);
}
