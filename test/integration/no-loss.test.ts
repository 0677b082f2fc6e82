// No sample lost: a private RabbitMQ node (never the machine's) is stopped for 60 s while the agent
// polls the lab's guests every 2 s; every notification produced during the outage arrives after
// the broker is back, in order. Then the agent is killed with SIGKILL during an outage and started
// again on the same spool: what it had spooled still arrives.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Agent, type ProducedNotification } from '../../src/agent/agent.js';
import { createLogger } from '../../src/agent/log.js';
import { testAgentOptions } from '../support/agent.js';
import { AmqpCollector, firstOccurrences } from '../support/amqp-collector.js';
import { until, sleep } from '../support/lab.js';
import { PrivateRabbit } from '../support/private-rabbit.js';

// Durable topology, so what the broker confirmed before a clean stop survives it; quick reconnects.
const QUERY = 'amqp_durable_queues=true&rabbit_retry_interval=1&rabbit_retry_backoff=1&rabbit_interval_max=2';

let rabbit: PrivateRabbit;
let dir: string;
beforeAll(async () => {
  rabbit = await PrivateRabbit.start();
  dir = mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-noloss-'));
}, 120_000);
afterAll(async () => {
  await rabbit?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const transportUrl = (): string => `rabbit://guest:guest@127.0.0.1:${rabbit.port}/?${QUERY}`;

describe('a 60 s broker outage while polling', () => {
  it('loses nothing and keeps the order', { timeout: 300_000 }, async () => {
    const logs: string[] = [];
    const agent = new Agent(testAgentOptions({
      transportUrl: transportUrl(),
      spoolPath: path.join(dir, 'outage.sqlite'),
      log: createLogger('test', { level: 'INFO', write: (l) => logs.push(l) }),
    }));
    const produced: ProducedNotification[] = [];
    agent.on('produced', (p) => produced.push(p));
    const collector = new AmqpCollector(rabbit.url, { durable: true });
    try {
      agent.start();
      await until('notifications flowing', () => collector.received.length >= 6, 60_000, 200);

      await rabbit.stop();
      const producedAtStop = produced.length;
      const cyclesAtStop = agent.taskStats!.runs;
      await sleep(60_000);
      const duringOutage = produced.length - producedAtStop;
      // polling went on: about 30 cycles at 2 s, none skipped for waiting on the broker
      expect(agent.taskStats!.runs - cyclesAtStop).toBeGreaterThanOrEqual(25);
      expect(agent.taskStats!.skipped).toBe(0);
      expect(duringOutage).toBeGreaterThan(25 * 3);
      expect(agent.spoolDepth).toBeGreaterThanOrEqual(duringOutage);

      await rabbit.startAgain();
      const want = () => produced.map((p) => p.uniqueId);
      await until('every produced notification to arrive', () => {
        const got = new Set(collector.uniqueIds);
        return want().every((id) => got.has(id));
      }, 120_000, 500);
      await agent.stop(10_000);

      const order = firstOccurrences(collector.uniqueIds);
      const producedIds = want();
      // every notification ever produced arrived, first time in production order; nothing else came
      expect(order.filter((id) => producedIds.includes(id))).toEqual(producedIds);
      expect(order.every((id) => producedIds.includes(id))).toBe(true);
      // duplicates come only from replaying the in-flight window (< 16) after the connection loss
      expect(collector.uniqueIds.length - order.length).toBeLessThan(16);
      const samples = collector.received.flatMap((r) => r.sampleIds);
      expect(new Set(samples).size).toBe(produced.reduce((n, p) => n + p.sampleIds.length, 0));
      expect(logs.join('\n')).toMatch(/RabbitMQ connection lost/);
    } finally {
      await agent.stop(1000).catch(() => undefined);
      await collector.stop();
    }
  });
});

describe('ceilopoll killed with SIGKILL during an outage', () => {
  const startAgent = (spool: string, produced: string[]): ChildProcess => {
    // its own polling.yaml (every memory meter), found beside its ceilometer.conf; the broker from
    // the environment, the rest from flags over the configuration
    writeFileSync(path.join(dir, 'polling.yaml'), 'sources:\n  - name: memory\n    interval: 300\n    meters: ["memory*"]\n');
    writeFileSync(path.join(dir, 'ceilometer.conf'), '[ceilopoll]\nhttp_listen = off\n');
    const conf = path.join(dir, 'ceilometer.conf');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'run', '--config-file', conf, '--interval', '2', '--spool', spool, '--log-level', 'DEBUG', '--host', 'compute-1'], {
      env: { ...process.env, CEILOPOLL_TRANSPORT_URL: transportUrl() },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let buf = '';
    child.stderr.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = / produced notification ([0-9a-f]{32}) /.exec(line);
        if (m) produced.push(m[1]!);
      }
    });
    return child;
  };

  it('sends what it had spooled after it is started again', { timeout: 300_000 }, async () => {
    const spool = path.join(dir, 'killed.sqlite');
    const produced: string[] = [];
    const collector = new AmqpCollector(rabbit.url, { durable: true });
    let second: ChildProcess | null = null;
    const first = startAgent(spool, produced);
    try {
      await until('the agent publishing', () => collector.received.length >= 6, 60_000, 200);
      await rabbit.stop();
      const atStop = produced.length;
      await until('notifications spooled during the outage', () => produced.length >= atStop + 12, 60_000, 200);
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      const spooledBeforeKill = produced.slice(atStop);

      second = startAgent(spool, produced);
      await sleep(4000);
      await rabbit.startAgain();
      await until('everything produced by both processes to arrive', () => {
        const got = new Set(collector.uniqueIds);
        return produced.every((id) => got.has(id));
      }, 120_000, 500);
      const order = firstOccurrences(collector.uniqueIds);
      // the killed process's spooled notifications arrive, in order, before the new process's
      const idx = spooledBeforeKill.map((id) => order.indexOf(id));
      expect(idx.every((i) => i >= 0)).toBe(true);
      expect([...idx].sort((a, b) => a - b)).toEqual(idx);
      expect(order.filter((id) => produced.includes(id))).toEqual(produced);
      // SIGTERM: a clean stop, exit status 0, and everything confirmed (the broker is up)
      const exited = new Promise<number | null>((r) => second!.once('exit', (code) => r(code)));
      second.kill('SIGTERM');
      expect(await exited).toBe(0);
      second = null;
    } finally {
      first.kill('SIGKILL');
      if (second) {
        second.kill('SIGKILL');
        await new Promise((r) => second!.once('exit', r));
      }
      await collector.stop();
    }
  });
});
