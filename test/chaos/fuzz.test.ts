// Fuzzing the two parsers that take bytes from outside: the libvirt RPC frame splitter with the reply
// and event decoders, and the Nova-metadata / domain-XML parsers. Seeded (the same cases every run),
// at least 100 000 cases each, random and mutated real inputs (fuzz-corpus.ts). Each target runs in
// its own process (fuzz-runner.ts), watched: no progress for WATCHDOG_MS is a hang and kills it.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import type { FuzzSummary, Plant } from './fuzz-runner.js';
import { scenario } from './report.js';
import { CHAOS } from './support.js';

const RUNNER = fileURLToPath(new URL('./fuzz-runner.ts', import.meta.url));
const SEED = Number(process.env.CEILOPOLL_FUZZ_SEED ?? 20261126);
/** No "progress" line (every 1000 cases) for this long: a case hangs. */
const WATCHDOG_MS = 20_000;
/** One case may take this long at most (a GC pause included). */
const CASE_BUDGET_MS = 1000;
/** Heap after the run (after a full GC) may exceed the heap before it by this much at most. */
const HEAP_GROWTH_MB = 32;
const RSS_MAX_MB = 512;

function runFuzzer(target: 'libvirt' | 'xml', cases: number, opts: { plant?: Plant; watchdogMs?: number } = {}): Promise<FuzzSummary> {
  const watchdogMs = opts.watchdogMs ?? WATCHDOG_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--max-old-space-size=1024', '--import', 'tsx', RUNNER, target, String(SEED), String(cases), opts.plant ?? 'none'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let last = 0;
    let hung = false;
    let timer = setTimeout(onHang, watchdogMs);
    function onHang(): void {
      hung = true;
      child.kill('SIGKILL');
    }
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /progress (\d+)\n(?![\s\S]*progress)/.exec(err);
      if (m && Number(m[1]) > last) {
        last = Number(m[1]);
        clearTimeout(timer);
        timer = setTimeout(onHang, watchdogMs);
      }
      if (err.length > 100_000) err = err.slice(-10_000);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (hung) return reject(new Error(`${target} fuzzer (seed ${SEED}) hung: no progress for ${watchdogMs} ms after case ${last}; rerun the seed to find the case`));
      if (code !== 0) return reject(new Error(`${target} fuzzer (seed ${SEED}) exited with ${code ?? signal}: ${err.replace(/progress \d+\n/g, '').slice(-2000)}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!) as FuzzSummary);
    });
  });
}

const summarize = (s: FuzzSummary): string =>
  `${s.cases} cases (${Object.entries(s.kinds).map(([k, n]) => `${n} ${k}`).join(', ')}) in ${s.seconds} s = ${s.casesPerSec} cases/s; ` +
  `outcomes ${Object.entries(s.outcomes).map(([k, n]) => `${k} ${n}`).join(', ')}; ${s.failures.length} failure(s)` +
  `${s.failures.length ? ` (first: case ${s.failures[0]!.case}, ${s.failures[0]!.kind}: ${s.failures[0]!.error})` : ''}; ` +
  `max case ${s.maxCaseMs} ms (case ${s.maxCase}); heap ${s.heapBeforeMB} -> ${s.heapAfterMB} MB after GC${s.gc ? '' : ' (no --expose-gc!)'}, max RSS ${s.maxRssMB} MB; seed ${s.seed}`;

function check(s: FuzzSummary, cases: number): void {
  expect(s.cases).toBe(cases);
  expect(s.failures).toEqual([]);
  expect(s.gc).toBe(true);
  expect(s.maxCaseMs).toBeLessThan(CASE_BUDGET_MS);
  expect(s.heapAfterMB - s.heapBeforeMB).toBeLessThan(HEAP_GROWTH_MB);
  expect(s.maxRssMB).toBeLessThan(RSS_MAX_MB);
}

describe.skipIf(!CHAOS)('fuzzing', () => {
  it('the RPC frame splitter and the reply/event decoders', { timeout: 300_000 }, async () => {
    const cases = 300_000;
    await scenario(
      'libvirt RPC input fuzzed: FrameSplitter (streams in random pieces) + every reply/event decoder + remote_error, random bytes and mutations of real frames',
      `${cases} cases: each returns or throws ProtocolError (splitter stays failed after one); no other exception, no case over ${CASE_BUDGET_MS} ms, no hang (watchdog ${WATCHDOG_MS / 1000} s), heap growth < ${HEAP_GROWTH_MB} MB, RSS < ${RSS_MAX_MB} MB`,
      async (obs) => {
        const s = await runFuzzer('libvirt', cases);
        obs.note(summarize(s));
        check(s, cases);
        // the mutations reach the decoders, not only the length check
        expect(s.outcomes.ok ?? 0).toBeGreaterThan(cases / 20);
        expect(s.outcomes.ProtocolError ?? 0).toBeGreaterThan(cases / 20);
      },
    );
  });

  it('the Nova-metadata and domain-XML parsers', { timeout: 300_000 }, async () => {
    const cases = 100_000;
    await scenario(
      'parseNovaMetadata, parseDomainXml, extractNovaFromDomainXml fuzzed: random text, XML snippets, mutations of the test/fixtures XML (incl. billion-laughs and external-entity DOCTYPEs)',
      `${cases} cases: each returns a Result (ok, or ok false with a reason); never throws, no case over ${CASE_BUDGET_MS} ms, no hang, heap growth < ${HEAP_GROWTH_MB} MB, RSS < ${RSS_MAX_MB} MB`,
      async (obs) => {
        const s = await runFuzzer('xml', cases);
        obs.note(summarize(s));
        check(s, cases);
        const okDomain = Object.entries(s.outcomes).filter(([k]) => k.split('/')[1] === 'ok').reduce((n, [, v]) => n + v, 0);
        expect(okDomain).toBeGreaterThan(cases / 50); // mutated inputs still parse often enough to reach the deep paths
      },
    );
  });

  // not a scenario of the report: the proof that the two checks above can fail
  it('the harness catches a planted exception and a planted hang', { timeout: 120_000 }, async () => {
    const s = await runFuzzer('libvirt', 20_000, { plant: 'throw' });
    expect(s.failures.length).toBeGreaterThan(0);
    expect(s.failures[0]!.error).toMatch(/TypeError: planted bug/);
    await expect(runFuzzer('libvirt', 20_000, { plant: 'hang', watchdogMs: 3000 })).rejects.toThrow(/hung: no progress for 3000 ms after case 1000/);
  });
});
