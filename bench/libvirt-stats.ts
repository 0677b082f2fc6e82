// Benchmark: reading memory stats for N domains through ceilopoll's libvirt client versus spawning
// virsh, against the same libvirtd in the same run. Test-driver nodes of N = 100 and 1000 domains
// (test/lab/testdrv/gen-node.sh), plus the lab's real QEMU guests when they are up.
//
//   rpc bulk      one CONNECT_GET_ALL_DOMAIN_STATS (STATE | BALLOON, NOWAIT) on an open connection
//   rpc memstats  one DOMAIN_MEMORY_STATS per active domain, all pipelined on the one connection
//   virsh domstats   one `virsh domstats --state --balloon` process
//   virsh dommemstat one `virsh dommemstat DOM` process per active domain, one after another
//   virsh open       one `virsh version` process: a spawn plus the handshake and CONNECT_OPEN, the
//                    floor every virsh process pays (for test:///FILE it includes parsing the node file)
//
// Medians over repetitions. Where N processes would take minutes (each test-driver open of the
// 1000-domain node costs libvirtd ~0.75 s), `virsh dommemstat` runs on a sample and is scaled to N;
// the table says so.

import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { LibvirtClient } from '../src/libvirt/client.js';
import { ListDomainsFlags, type DomainRef } from '../src/libvirt/protocol.js';
import { median } from './stats.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = here.endsWith(path.join('dist', 'bench')) ? path.resolve(here, '../..') : path.resolve(here, '..');
const genNode = path.join(repoRoot, 'test/lab/testdrv/gen-node.sh');
const nodeDir = process.env.LAB_STATE ?? '/var/lib/libvirt/lab';

async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function medianOf(reps: number, fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < reps; i++) xs.push(await timeMs(fn));
  return median(xs);
}

const virsh = (uri: string, args: string[]): Promise<unknown> => run('virsh', ['-c', uri, ...args], { maxBuffer: 256 * 1024 * 1024 });

interface Row {
  workload: string;
  domains: number;
  rpcBulk: number;
  rpcMemstats: number;
  virshDomstats: number;
  virshDommemstat: number;
  virshDommemstatNote: string;
  virshOpen: number;
}

async function measure(workload: string, uri: string, opts: { sample: number; virshReps: number }): Promise<Row> {
  const client = await LibvirtClient.connect({ uri, readOnly: true });
  try {
    const active: DomainRef[] = await client.listAllDomains(ListDomainsFlags.ACTIVE);
    const rpcBulk = await medianOf(30, () => client.getAllDomainStats());
    const rpcMemstats = await medianOf(10, () => Promise.all(active.map((d) => client.memoryStats(d))));
    const virshDomstats = await medianOf(opts.virshReps, () => virsh(uri, ['domstats', '--state', '--balloon']));
    const virshOpen = await medianOf(opts.virshReps, () => virsh(uri, ['version']));
    const sample = active.slice(0, Math.min(opts.sample, active.length));
    const perProcess = await medianOf(1, async () => {
      for (const d of sample) await virsh(uri, ['dommemstat', d.name]);
    }) / sample.length;
    const scaled = sample.length < active.length;
    return {
      workload,
      domains: active.length,
      rpcBulk,
      rpcMemstats,
      virshDomstats,
      virshDommemstat: perProcess * active.length,
      virshDommemstatNote: scaled ? `(${sample.length} run, scaled to ${active.length})` : '',
      virshOpen,
    };
  } finally {
    await client.close();
  }
}

const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(2)} ms`);
const ratio = (a: number, b: number): string => `${(a / b).toFixed(0)}x`;

function print(rows: Row[]): void {
  const head = ['workload', 'active', 'rpc bulk', 'rpc memstats xN', 'virsh domstats', 'virsh dommemstat xN', 'virsh open', 'domstats/bulk', 'dommemstat xN / rpc xN'];
  const body = rows.map((r) => [
    r.workload,
    String(r.domains),
    fmt(r.rpcBulk),
    fmt(r.rpcMemstats),
    fmt(r.virshDomstats),
    `${fmt(r.virshDommemstat)} ${r.virshDommemstatNote}`.trim(),
    fmt(r.virshOpen),
    ratio(r.virshDomstats, r.rpcBulk),
    ratio(r.virshDommemstat, r.rpcMemstats),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (c: string[]): string => `| ${c.map((x, i) => x.padEnd(w[i]!)).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`);
  for (const b of body) console.log(line(b));
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  mkdirSync(nodeDir, { recursive: true });
  for (const n of [100, 1000]) {
    const { stdout } = await run(genNode, [String(n)], { maxBuffer: 64 * 1024 * 1024 });
    const file = path.join(nodeDir, `bench-node-${n}.xml`);
    writeFileSync(file, stdout);
    process.stderr.write(`bench: test driver, ${n} domains (${file})\n`);
    rows.push(await measure(`test driver N=${n}`, `test+unix://${file}`, { sample: n <= 100 ? n : 20, virshReps: n <= 100 ? 5 : 3 }));
  }
  try {
    await virsh('qemu:///system', ['version']);
    process.stderr.write('bench: lab QEMU guests (qemu:///system)\n');
    rows.push(await measure('QEMU guests', 'qemu:///system', { sample: 100, virshReps: 10 }));
  } catch {
    process.stderr.write('bench: qemu:///system not answering, QEMU row skipped (make lab-up)\n');
  }
  console.log(`\nlibvirt memory stats: ceilopoll RPC client vs virsh processes (medians; ${new Date().toISOString()})\n`);
  print(rows);
}

main().catch((err: unknown) => {
  console.error(`bench: ${String(err)}`);
  process.exit(1);
});
