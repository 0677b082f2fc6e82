// The agent as operators run it: the built `ceilopoll run --config-file ...` against the lab's
// guests and the machine's RabbitMQ, at a 10 s interval for CEILOPOLL_SOAK_SECONDS (default 600).
// Watched from outside only: its stderr, /healthz and /metrics every 10 s, its RSS from /proc, and
// the samples that reach the bus. Halfway through, polling.yaml is replaced by a broken one and
// SIGHUP'd (rejected, old tasks kept), then by a two-interval one (taken); SIGUSR2 asks for the
// state report; SIGTERM ends it. The figures are printed; the test checks behaviour, not speed.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AmqpCollector } from '../support/amqp-collector.js';
import { labGuests } from '../support/lab.js';
import { shebangNodeOptions } from '../support/shebang.js';

const SOAK_S = Number(process.env.CEILOPOLL_SOAK_SECONDS ?? 600);
const BROKER = 'amqp://guest:guest@127.0.0.1:5672';
const TOPIC = `ceilopoll-soak-${process.pid}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Probe {
  t: number;
  rssKiB: number;
  health: number;
  healthBody: string;
  metrics: string;
}

/** The value of one sample line of a Prometheus text exposition, or undefined. */
function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[4]);
  }
  return undefined;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

describe(`ceilopoll run for ${SOAK_S} s at a 10 s interval`, () => {
  let dir: string;
  let child: ChildProcess | null = null;
  const lines: string[] = [];
  let port: number;

  beforeAll(async () => {
    expect(labGuests().length, 'the lab (make lab-up)').toBeGreaterThan(0);
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' }); // the built agent, as installed
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-soak-'));
    port = await freePort();
  });

  afterAll(() => {
    child?.kill('SIGKILL');
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('polls without overlap, keeps its memory, answers /healthz and /metrics, and obeys SIGHUP, SIGUSR2 and SIGTERM', { timeout: (SOAK_S + 300) * 1000 }, async () => {
    const conf = path.join(dir, 'ceilometer.conf');
    const pollingYaml = path.join(dir, 'polling.yaml');
    fs.writeFileSync(conf, [
      '[DEFAULT]',
      'host = compute-soak',
      'debug = true',
      `transport_url = rabbit://guest:guest@127.0.0.1:5672/`,
      '[polling]',
      'cfg_file = polling.yaml', // found beside the config file, as oslo's find_file does
      '[oslo_messaging_notifications]',
      `topics = ${TOPIC}`,
      '[ceilopoll]',
      `spool_path = ${path.join(dir, 'spool.sqlite')}`,
      `http_listen = 127.0.0.1:${port}`,
      '',
    ].join('\n'));
    const oneTask = 'sources:\n  - name: memory\n    interval: 10\n    meters: [memory.usage, memory.resident]\n';
    fs.writeFileSync(pollingYaml, oneTask);

    const collector = new AmqpCollector(BROKER, { queue: `${TOPIC}.sample` });
    // started as the unit starts /usr/bin/ceilopoll: the file itself, through its `#!` line
    const main = 'dist/src/cli/main.js';
    fs.chmodSync(main, 0o755);
    const agent = spawn(path.resolve(main), ['run', '--config-file', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = agent;
    let buf = '';
    agent.stderr.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    const exited = new Promise<number | null>((r) => agent.once('exit', (code) => r(code)));
    const base = `http://127.0.0.1:${port}`;
    const probes: Probe[] = [];
    const probe = async (): Promise<Probe> => {
      const h = await fetch(`${base}/healthz`);
      const healthBody = await h.text();
      const m = await fetch(`${base}/metrics`);
      const p = { t: Date.now(), rssKiB: rssKiB(agent.pid!), health: h.status, healthBody, metrics: await m.text() };
      probes.push(p);
      return p;
    };

    try {
      const start = Date.now();
      // the HTTP listener is up once the configuration is read
      for (let i = 0; i < 100 && probes.length === 0; i++) await probe().catch(() => sleep(200));
      // node runs with the `#!` line's options (env -S split them off the one line)
      const argv = fs.readFileSync(`/proc/${agent.pid}/cmdline`, 'utf8').split('\0');
      const options = shebangNodeOptions(main);
      expect(options.length).toBeGreaterThan(0);
      expect(path.basename(argv[0] ?? '')).toBe('node');
      expect(argv.slice(1, 1 + options.length)).toEqual(options);
      expect(argv[1 + options.length]).toBe(path.resolve(main));
      const half = start + (SOAK_S * 1000) / 2;
      let reloaded = false;
      while (Date.now() - start < SOAK_S * 1000) {
        await sleep(10_000);
        const p = await probe();
        if (!reloaded && Date.now() > half) {
          reloaded = true;
          // a broken polling.yaml is refused and the running tasks carry on
          fs.writeFileSync(pollingYaml, 'sources:\n  - name: memory\n    interval: 0\n    meters: [memory.usage]\n');
          const mark = lines.length;
          agent.kill('SIGHUP');
          await until(() => lines.slice(mark).some((l) => /polling\.yaml.*interval/.test(l) && / ERROR /.test(l)));
          expect(lines.slice(mark).join('\n')).toMatch(/keeping the current polling tasks/);
          // a good one with two intervals is taken
          fs.writeFileSync(pollingYaml, `${oneTask}  - name: resident\n    interval: 20\n    meters: [memory.resident]\n`);
          agent.kill('SIGHUP');
          await until(() => lines.some((l) => /polling task poll-20s: memory\.resident every 20s/.test(l)));
          const mark2 = lines.length;
          agent.kill('SIGUSR2');
          await until(() => lines.slice(mark2).some((l) => /Spool/.test(l)));
        }
        expect(p.health, p.healthBody).toBe(200);
      }
      const last = probes[probes.length - 1]!;
      const stopAsked = Date.now();
      agent.kill('SIGTERM');
      const code = await exited;
      child = null;
      const stopMs = Date.now() - stopAsked;
      await sleep(1000);
      await collector.stop();

      // no overlap: every cycle start is followed by its finish before the next start
      const cycleLines = lines.filter((l) => /: cycle (started|finished|failed)\b/.test(l));
      let open = 0;
      for (const l of cycleLines) {
        open += /: cycle started/.test(l) ? 1 : -1;
        expect(open, `overlapping cycles at: ${l}`).toBeGreaterThanOrEqual(0);
        expect(open, `overlapping cycles at: ${l}`).toBeLessThanOrEqual(1);
      }
      const skipped = metric(last.metrics, 'ceilopoll_cycles_total', { task: 'poll-10s', outcome: 'skipped' }) ?? 0;
      const ok10 = metric(last.metrics, 'ceilopoll_cycles_total', { task: 'poll-10s', outcome: 'ok' }) ?? 0;
      const ok20 = metric(last.metrics, 'ceilopoll_cycles_total', { task: 'poll-20s', outcome: 'ok' }) ?? 0;
      expect(skipped).toBe(0);
      expect(lines.filter((l) => /skipped/.test(l) && /previous cycle/.test(l))).toEqual([]);
      expect(ok10).toBeGreaterThanOrEqual(Math.floor(SOAK_S / 10 / 2));
      expect(ok20).toBeGreaterThan(0);

      // the lab's eight cases, as /metrics counts them in the last cycle of poll-10s
      const missing = (reason: string): number | undefined => metric(last.metrics, 'ceilopoll_missing_stats', { reason });
      expect(missing('no-balloon-device')).toBe(1);
      expect(missing('stats-period-disabled')).toBe(1);
      expect(missing('guest-not-reporting')).toBe(1);
      expect(missing('not-running')).toBe(1);
      expect(metric(last.metrics, 'ceilopoll_connection_up', { peer: 'libvirt' })).toBe(1);
      expect(metric(last.metrics, 'ceilopoll_connection_up', { peer: 'broker' })).toBe(1);

      // memory.usage from the three healthy guests arrived on the bus, every cycle
      const usage = collector.received.filter((r) => r.meter === 'memory.usage').reduce((n, r) => n + r.sampleIds.length, 0);
      expect(usage).toBeGreaterThanOrEqual(3 * ok10 - 6);
      expect(code).toBe(0);
      expect(fs.existsSync(path.join(dir, 'spool.sqlite'))).toBe(true);
      expect(lines.join('\n')).toMatch(/0 notification\(s\) left in the spool/);

      // RSS: the first minute warms up; after it, report the range and the drift
      const steady = probes.filter((p) => p.t - start > 60_000);
      const rss = steady.map((p) => p.rssKiB);
      const firstMin = Math.min(...rss.slice(0, 6));
      const lastMax = Math.max(...rss.slice(-6));
      console.info(`soak ${SOAK_S}s: cycles poll-10s ok=${ok10} skipped=${skipped}, poll-20s ok=${ok20}; memory.usage samples on the bus ${usage}; ` +
        `RSS after the first minute ${Math.round(Math.min(...rss) / 1024)}-${Math.round(Math.max(...rss) / 1024)} MiB ` +
        `(first minute after warm-up ${Math.round(firstMin / 1024)} MiB, last minute ${Math.round(lastMax / 1024)} MiB); SIGTERM to exit ${stopMs} ms`);
      // stable: the last minute's peak within 32 MiB of the early minimum (a leak of a few KiB per
      // cycle over 60 cycles stays under this; a leak per sample or per notification does not)
      expect(lastMax - firstMin).toBeLessThan(32 * 1024);
    } finally {
      await collector.stop().catch(() => undefined);
    }
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function until(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(100);
  }
}
