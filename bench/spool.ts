// Benchmark: the spool's append and replay rates, with references in the same run. First 10 000 real
// 3-sample notifications (the 4.3 KB body of test/fixtures/golden/zed-3guests/amqp/0001.body):
//
//   disk, NORMAL   the spool as the agent opens it (synchronous=NORMAL), in a folder on the disk
//   disk, FULL     the same with synchronous=FULL: an fsync per commit, what surviving power loss costs
//   tmpfs, NORMAL  the same as the first on /dev/shm (RAM): the cost of SQLite alone, no disk at all
//   disk, 8 MiB    the same as the first with an 8 MiB reserve, so the WAL checkpointed every 4 MiB
//                  (the largest reserve until 2026-11-27; now 32 MiB, checkpoint every 16 MiB)
//
// then 1000 bodies of 75 KB, the size of a 50-sample notification (the agent's batches at 1000
// domains), as the agent keeps them and with the 8 MiB reserve. The 75 KB body is the golden one
// repeated: SQLite does not look inside.
//
// Last, the pattern of the agent's cycles at 1000 domains: 30 times 68 appends of the 75 KB body, then
// their replay (peek 8, removeMany, as delivery does), with the spool's own reserve and with 8 MiB:
// the median CPU of a cycle. Here removals free pages that the next cycle's appends take again,
// which a larger WAL (checkpointed less often) copies into the file once rather than every 4 MiB.
//
// append   one `append` per notification, each its own transaction, as the agent does
// reopen   `Spool.open` on the entries: mostly the integrity check
// replay   what the delivery loop does: peek a window of 8 after the last one sent, then `remove`
//          each seq as if the broker had confirmed it, until the spool is empty
// CPU      user + system time of append and replay together, the part of a cycle's CPU the spool costs
//
// Best of 3 runs per row (the machine is shared; the best is the least disturbed).
//
//   npx tsx bench/spool.ts [entries]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Spool, reserveSizeFor } from '../src/publish/spool.js';
import { median } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = here.endsWith(path.join('dist', 'bench')) ? path.resolve(here, '../..') : path.resolve(here, '..');
const BODY = fs.readFileSync(path.join(repoRoot, 'test/fixtures/golden/zed-3guests/amqp/0001.body'));
const BIG_BODY = Buffer.concat(Array.from({ length: Math.ceil(75_000 / BODY.length) }, () => BODY)).subarray(0, 75_000);
const N = Number(process.argv[2] ?? 10_000);
const N_BIG = Math.max(1, Math.round(N / 10));
const WINDOW = 8;
const RUNS = 3;

interface Setup {
  label: string;
  dir: string;
  synchronous: 'NORMAL' | 'FULL';
  body: Buffer;
  entries: number;
  /** the spool's reserveBytes (default: the spool's own choice for the disk) */
  reserveBytes?: number;
}

interface Result {
  appendMs: number;
  reopenMs: number;
  replayMs: number;
  /** user + system, append and replay */
  cpuMs: number;
  fileBytes: number;
}

function msSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function once(setup: Setup): Result {
  const dir = fs.mkdtempSync(path.join(setup.dir, 'ceilopoll-spool-bench-'));
  const file = path.join(dir, 'spool.db');
  const opts = { maxBytes: 1024 * 1024 * 1024, maxAgeMs: 3600_000, synchronous: setup.synchronous, reserveBytes: setup.reserveBytes };
  const { body, entries } = setup;
  try {
    let spool = Spool.open(file, opts);
    let cpu = process.cpuUsage();
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < entries; i++) spool.append('memory.usage', body);
    const appendMs = msSince(t0);
    const appendCpu = process.cpuUsage(cpu);
    spool.close();
    const fileBytes = fs.statSync(file).size;

    t0 = process.hrtime.bigint();
    spool = Spool.open(file, opts);
    const reopenMs = msSince(t0);

    cpu = process.cpuUsage();
    t0 = process.hrtime.bigint();
    let replayed = 0;
    let cursor = 0;
    for (;;) {
      const batch = spool.peek(WINDOW, cursor);
      if (batch.length === 0) break;
      for (const e of batch) {
        cursor = e.seq;
        replayed += e.body.length === body.length ? 1 : 0;
        spool.remove(e.seq);
      }
    }
    const replayMs = msSince(t0);
    const replayCpu = process.cpuUsage(cpu);
    if (replayed !== entries || spool.depth !== 0) throw new Error(`replayed ${replayed} of ${entries}, ${spool.depth} left`);
    spool.close();
    const cpuMs = (appendCpu.user + appendCpu.system + replayCpu.user + replayCpu.system) / 1000;
    return { appendMs, reopenMs, replayMs, cpuMs, fileBytes };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const CYCLES = 30;
const PER_CYCLE = 68;

/** CPU ms of each of CYCLES cycles (appends, then their replay), sorted */
function cyclePattern(reserveBytes: number | undefined): number[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-spool-bench-'));
  const spool = Spool.open(path.join(dir, 'spool.db'), { maxBytes: 1024 * 1024 * 1024, maxAgeMs: 3600_000, reserveBytes });
  try {
    const cpu: number[] = [];
    for (let c = 0; c < CYCLES; c++) {
      const u = process.cpuUsage();
      for (let i = 0; i < PER_CYCLE; i++) spool.append('memory.usage', BIG_BODY);
      let cursor = 0;
      for (;;) {
        const batch = spool.peek(WINDOW, cursor);
        if (batch.length === 0) break;
        cursor = batch[batch.length - 1]!.seq;
        spool.removeMany(batch.map((e) => e.seq));
      }
      const d = process.cpuUsage(u);
      cpu.push((d.user + d.system) / 1000);
    }
    if (spool.depth !== 0) throw new Error(`${spool.depth} left after the cycles`);
    return cpu.sort((x, y) => x - y);
  } finally {
    spool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function best(setup: Setup): Result {
  const runs = Array.from({ length: RUNS }, () => once(setup));
  return {
    appendMs: Math.min(...runs.map((r) => r.appendMs)),
    reopenMs: Math.min(...runs.map((r) => r.reopenMs)),
    replayMs: Math.min(...runs.map((r) => r.replayMs)),
    cpuMs: Math.min(...runs.map((r) => r.cpuMs)),
    fileBytes: runs[0]!.fileBytes,
  };
}

const rate = (ms: number, n: number): string => `${Math.round(n / (ms / 1000)).toLocaleString('en-US').padStart(8)}/s`;
const mbps = (ms: number, s: Setup): string => `${((s.entries * s.body.length) / 1e6 / (ms / 1000)).toFixed(1).padStart(6)} MB/s`;

const disk = os.tmpdir();
/** the reserve the spool chooses for itself on `disk`, MiB */
const ownReserveMiB = ((): number => {
  const st = fs.statfsSync(disk);
  return reserveSizeFor(st.blocks * st.bsize) / 1024 / 1024;
})();
const setups: Setup[] = [
  { label: 'disk, NORMAL', dir: disk, synchronous: 'NORMAL', body: BODY, entries: N },
  { label: 'disk, FULL', dir: disk, synchronous: 'FULL', body: BODY, entries: N },
  { label: 'tmpfs, NORMAL', dir: '/dev/shm', synchronous: 'NORMAL', body: BODY, entries: N },
  { label: 'disk, 8 MiB', dir: disk, synchronous: 'NORMAL', body: BODY, entries: N, reserveBytes: 8 * 1024 * 1024 },
  { label: '75 KB, NORMAL', dir: disk, synchronous: 'NORMAL', body: BIG_BODY, entries: N_BIG },
  { label: '75 KB, 8 MiB', dir: disk, synchronous: 'NORMAL', body: BIG_BODY, entries: N_BIG, reserveBytes: 8 * 1024 * 1024 },
];
/** each row's reference: the agent's own spool for the same bodies */
const referenceOf = (s: Setup): string => (s.body === BODY ? 'disk, NORMAL' : '75 KB, NORMAL');

console.log(`spool bench: ${N} entries of ${BODY.length} bytes (${((N * BODY.length) / 1e6).toFixed(1)} MB) and ${N_BIG} of ${BIG_BODY.length} bytes (${((N_BIG * BIG_BODY.length) / 1e6).toFixed(1)} MB), replay window ${WINDOW}, best of ${RUNS}`);
console.log(`disk: ${disk} (the spool's own reserve there: ${ownReserveMiB} MiB); node ${process.version}\n`);
const results = new Map<string, Result>();
for (const s of setups) {
  if (!fs.existsSync(s.dir)) {
    console.log(`${s.label.padEnd(14)}  skipped: no ${s.dir}`);
    continue;
  }
  const r = best(s);
  results.set(s.label, r);
  console.log(
    `${s.label.padEnd(14)}  append ${rate(r.appendMs, s.entries)} ${mbps(r.appendMs, s)}   replay ${rate(r.replayMs, s.entries)} ${mbps(r.replayMs, s)}   CPU ${(r.cpuMs / s.entries).toFixed(3)} ms/entry   reopen ${r.reopenMs.toFixed(0).padStart(4)} ms   file ${(r.fileBytes / 1e6).toFixed(1)} MB`,
  );
}

console.log('');
for (const s of setups) {
  const r = results.get(s.label);
  const base = results.get(referenceOf(s));
  if (!r || !base || s.label === referenceOf(s)) continue;
  // > 1: the agent's spool is faster than this row by that factor; < 1: slower.
  console.log(
    `${referenceOf(s)} against ${s.label}: time ratio append ${(r.appendMs / base.appendMs).toFixed(2)}, replay ${(r.replayMs / base.replayMs).toFixed(2)}, reopen ${(r.reopenMs / base.reopenMs).toFixed(2)}, CPU ${(r.cpuMs / base.cpuMs).toFixed(2)}`,
  );
}

console.log(`\ncycles: ${CYCLES} x (${PER_CYCLE} appends of ${BIG_BODY.length} bytes, then their replay), CPU per cycle`);
const pct = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const medians: number[] = [];
const means: number[] = [];
for (const [label, reserve] of [[`own reserve (${ownReserveMiB} MiB)`, undefined], ['8 MiB reserve', 8 * 1024 * 1024]] as const) {
  const cpu = cyclePattern(reserve);
  const mean = cpu.reduce((a, b) => a + b, 0) / cpu.length;
  medians.push(median(cpu));
  means.push(mean);
  console.log(`${label.padEnd(22)}  median ${median(cpu).toFixed(1)} ms   mean ${mean.toFixed(1)}   p10 ${pct(cpu, 0.1).toFixed(1)}   p90 ${pct(cpu, 0.9).toFixed(1)}`);
}
console.log(`8 MiB reserve / own reserve, CPU per cycle: median ${(medians[1]! / medians[0]!).toFixed(2)}, mean ${(means[1]! / means[0]!).toFixed(2)}`);
