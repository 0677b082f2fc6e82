// Benchmark: the spool's append and replay rates for 10 000 real 3-sample notifications (the 4.3 KB
// body of test/fixtures/golden/zed-3guests/amqp/0001.body), with two references in the same run:
//
//   disk, NORMAL   the spool as the agent opens it (synchronous=NORMAL), in a folder on the disk
//   disk, FULL     the same with synchronous=FULL: an fsync per commit, what surviving power loss costs
//   tmpfs, NORMAL  the same as the first on /dev/shm (RAM): the cost of SQLite alone, no disk at all
//
// append   one `append` per notification, each its own transaction, as the agent does
// reopen   `Spool.open` on the 10 000 entries: mostly the integrity check
// replay   what the delivery loop does: peek a window of 8 after the last one sent, then `remove`
//          each seq as if the broker had confirmed it, until the spool is empty
//
// Best of 3 runs per row (the machine is shared; the best is the least disturbed).
//
//   npx tsx bench/spool.ts [entries]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Spool } from '../src/publish/spool.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = here.endsWith(path.join('dist', 'bench')) ? path.resolve(here, '../..') : path.resolve(here, '..');
const BODY = fs.readFileSync(path.join(repoRoot, 'test/fixtures/golden/zed-3guests/amqp/0001.body'));
const N = Number(process.argv[2] ?? 10_000);
const WINDOW = 8;
const RUNS = 3;

interface Setup {
  label: string;
  dir: string;
  synchronous: 'NORMAL' | 'FULL';
}

interface Result {
  appendMs: number;
  reopenMs: number;
  replayMs: number;
  fileBytes: number;
}

function msSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function once(setup: Setup): Result {
  const dir = fs.mkdtempSync(path.join(setup.dir, 'ceilopoll-spool-bench-'));
  const file = path.join(dir, 'spool.db');
  const opts = { maxBytes: 1024 * 1024 * 1024, maxAgeMs: 3600_000, synchronous: setup.synchronous };
  try {
    let spool = Spool.open(file, opts);
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) spool.append('memory.usage', BODY);
    const appendMs = msSince(t0);
    spool.close();
    const fileBytes = fs.statSync(file).size;

    t0 = process.hrtime.bigint();
    spool = Spool.open(file, opts);
    const reopenMs = msSince(t0);

    t0 = process.hrtime.bigint();
    let replayed = 0;
    let cursor = 0;
    for (;;) {
      const batch = spool.peek(WINDOW, cursor);
      if (batch.length === 0) break;
      for (const e of batch) {
        cursor = e.seq;
        replayed += e.body.length === BODY.length ? 1 : 0;
        spool.remove(e.seq);
      }
    }
    const replayMs = msSince(t0);
    if (replayed !== N || spool.depth !== 0) throw new Error(`replayed ${replayed} of ${N}, ${spool.depth} left`);
    spool.close();
    return { appendMs, reopenMs, replayMs, fileBytes };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function best(setup: Setup): Result {
  const runs = Array.from({ length: RUNS }, () => once(setup));
  return {
    appendMs: Math.min(...runs.map((r) => r.appendMs)),
    reopenMs: Math.min(...runs.map((r) => r.reopenMs)),
    replayMs: Math.min(...runs.map((r) => r.replayMs)),
    fileBytes: runs[0]!.fileBytes,
  };
}

const rate = (ms: number): string => `${Math.round(N / (ms / 1000)).toLocaleString('en-US').padStart(8)}/s`;
const mbps = (ms: number): string => `${((N * BODY.length) / 1e6 / (ms / 1000)).toFixed(1).padStart(6)} MB/s`;

const setups: Setup[] = [
  { label: 'disk, NORMAL', dir: os.tmpdir(), synchronous: 'NORMAL' },
  { label: 'disk, FULL', dir: os.tmpdir(), synchronous: 'FULL' },
  { label: 'tmpfs, NORMAL', dir: '/dev/shm', synchronous: 'NORMAL' },
];

console.log(`spool bench: ${N} entries of ${BODY.length} bytes (${((N * BODY.length) / 1e6).toFixed(1)} MB), replay window ${WINDOW}, best of ${RUNS}`);
console.log(`disk: ${os.tmpdir()}; node ${process.version}\n`);
const results = new Map<string, Result>();
for (const s of setups) {
  if (!fs.existsSync(s.dir)) {
    console.log(`${s.label.padEnd(14)}  skipped: no ${s.dir}`);
    continue;
  }
  const r = best(s);
  results.set(s.label, r);
  console.log(
    `${s.label.padEnd(14)}  append ${rate(r.appendMs)} ${mbps(r.appendMs)}   replay ${rate(r.replayMs)} ${mbps(r.replayMs)}   reopen ${r.reopenMs.toFixed(0).padStart(4)} ms   file ${(r.fileBytes / 1e6).toFixed(1)} MB`,
  );
}

const base = results.get('disk, NORMAL')!;
console.log('');
for (const [label, r] of results) {
  if (label === 'disk, NORMAL') continue;
  // > 1: disk, NORMAL is faster than the reference by that factor; < 1: slower.
  console.log(
    `rate of disk, NORMAL / rate of ${label}: append ${(r.appendMs / base.appendMs).toFixed(2)}, replay ${(r.replayMs / base.replayMs).toFixed(2)}, reopen ${(r.reopenMs / base.reopenMs).toFixed(2)}`,
  );
}
