// What Ceilometer 24.0.0's own polling agent sends, against what ceilopoll sends with name_keys: the
// same sample dict, text for text. Debian 13's ceilometer-polling (the trixie root,
// test/lab/ceilometer-trixie.sh) polls the lab's guests and publishes to a topic of its own on the
// machine's RabbitMQ; `ceilopoll poll --once --format wire --name-keys` polls the same guests with the
// same ceilometer.conf (Keystone and Nova: test/support/fake-openstack.ts, no flavors, so both fall
// back to the flavor name). For every sample both built (meter and instance), the JSON text must be the
// same once what depends on the moment is masked: the volume, the timestamp, the ids, the monotonic time
// and the signature, each number keeping its form (float or int). So the keys and their order, the
// resource_metadata with its order, and the number forms are compared as Python wrote them.
//
// Runs in `make e2e-trixie` only (CEILOMETER_RELEASE=trixie): it needs the trixie root.

import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { connect } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';

import { FakeOpenStack } from '../support/fake-openstack.js';
import { labGuests } from '../support/lab.js';
import { MEMORY_METERS, writePollingConf } from '../support/polling-conf.js';
import { CEILOMETER_RELEASE } from './accepted.js';

const run = promisify(execFile);
const ROOT_SCRIPT = fileURLToPath(new URL('../lab/ceilometer-trixie.sh', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const AMQP_URL = process.env.CEILOPOLL_E2E_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const TOPIC = 'e2e-polling24'; // never `notifications`: the notification agents of other tests consume there
const QUEUE = `${TOPIC}.sample`;

/** One sample dict's text with what varies by the moment masked; numbers keep their form. */
function masked(text: string): string {
  const num = (n: string): string => (/[.eE]/.test(n) ? 'FLOAT' : n === 'null' ? 'null' : 'INT');
  return text
    .replace(/"counter_volume": (-?[\d.eE+-]+)/, (_m, n: string) => `"counter_volume": ${num(n)}`)
    .replace(/"monotonic_time": (null|-?[\d.eE+-]+)/, (_m, n: string) => `"monotonic_time": ${num(n)}`)
    .replace(/"timestamp": "[^"]*"/, '"timestamp": "T"')
    .replace(/"message_id": "[^"]*"/, '"message_id": "ID"')
    .replace(/"message_signature": "[^"]*"/, '"message_signature": "SIG"');
}

/** The sample dicts' texts of an inner oslo message (json.dumps of the whole message, as sent). */
function samplesOf(inner: string): string[] {
  const start = inner.indexOf('"samples": [');
  const end = inner.lastIndexOf(']}, "timestamp": "');
  if (start < 0 || end < start) throw new Error(`not a telemetry.polling message: ${inner.slice(0, 200)}`);
  // "source" is the first key of a sample dict and a key nowhere inside one
  return inner.slice(start + '"samples": ['.length, end).split(/, (?=\{"source": )/);
}

const keyOf = (text: string): string => {
  const s = JSON.parse(text) as { counter_name: string; resource_id: string };
  return `${s.counter_name} ${s.resource_id}`;
};

describe.skipIf(CEILOMETER_RELEASE !== 'trixie')("Ceilometer 24.0.0's polling agent and ceilopoll --name-keys", () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ceilopoll-e2e-polling24-'));
  let failed = true;
  afterAll(() => {
    if (!failed && process.env.CEILOPOLL_E2E_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
    else console.log(`e2e run directory kept: ${dir}`);
  });

  it('send the same sample dicts for the same guests', { timeout: 240_000 }, async () => {
    const fake = await FakeOpenStack.start({ flavors: [] });
    const conn = await connect(AMQP_URL);
    const ch = await conn.createChannel();
    const ours: string[] = [];
    const theirs: string[] = [];
    try {
      const conf = writePollingConf({
        dir,
        transportUrl: `${AMQP_URL.replace(/^amqp:/, 'rabbit:')}/`,
        libvirtUri: 'qemu:///system',
        host: 'e2e-polling24',
        topic: TOPIC,
        interval: 5,
        authUrl: fake.authUrl,
      });
      // as oslo declares it (durable false, auto_delete false), bound before the agent sends
      await ch.assertExchange('ceilometer', 'topic', { durable: false, autoDelete: false });
      await ch.assertQueue(QUEUE, { durable: false, autoDelete: false });
      await ch.bindQueue(QUEUE, 'ceilometer', QUEUE);
      await ch.purgeQueue(QUEUE);

      // ceilometer-polling in the trixie root until its first cycle has sent each stats guest's memory.usage
      const stats = labGuests().filter((g) => g.profile === 'stats');
      expect(stats.length, 'the lab has guests with balloon stats').toBeGreaterThan(0);
      const agent = spawn(ROOT_SCRIPT, ['exec', '--bind', dir, '--', '/usr/bin/ceilometer-polling', '--polling-namespaces', 'compute', '--config-file', conf, '--log-file', path.join(dir, 'polling.log')], {
        detached: true,
        stdio: 'ignore',
      });
      const exited = new Promise<void>((r) => agent.once('exit', () => r()));
      try {
        const deadline = Date.now() + 120_000;
        // its pollsters run in random order, one notification each: wait for all four of every stats guest
        const got = new Set<string>();
        const want = (): boolean => stats.every((g) => MEMORY_METERS.every((m) => got.has(`${m} ${g.uuid}`)));
        while (!want() && Date.now() < deadline && agent.exitCode === null) {
          const m = await ch.get(QUEUE, { noAck: true });
          if (m === false) {
            await new Promise((r) => setTimeout(r, 200));
            continue;
          }
          const outer = JSON.parse(m.content.toString('utf8')) as { 'oslo.message': string };
          for (const t of samplesOf(outer['oslo.message'])) {
            theirs.push(t);
            got.add(keyOf(t));
          }
        }
        expect(want(), `the four memory meters of every stats guest from ceilometer-polling within 120 s (log ${dir}/polling.log)`).toBe(true);
      } finally {
        try {
          process.kill(-agent.pid!, 'SIGTERM');
        } catch {
          /* gone */
        }
        await exited;
      }

      const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'poll', '--once', '--format', 'wire', '--name-keys', ...MEMORY_METERS.flatMap((m) => ['--meter', m]), '--config-file', conf], {
        cwd: REPO,
        maxBuffer: 16 * 1024 * 1024,
      });
      ours.push(...stdout.split('\n').filter((l) => l.startsWith('{')));
    } finally {
      await ch.deleteQueue(QUEUE).catch(() => undefined);
      await conn.close().catch(() => undefined);
      await fake.close();
    }

    const theirsBy = new Map(theirs.map((t) => [keyOf(t), masked(t)]));
    const oursBy = new Map(ours.map((t) => [keyOf(t), masked(t)]));
    const both = [...oursBy.keys()].filter((k) => theirsBy.has(k)).sort();
    // not vacuous: memory.usage and memory.resident of every stats guest are compared
    for (const g of labGuests().filter((x) => x.profile === 'stats')) {
      for (const m of ['memory.usage', 'memory.resident']) expect(both, `${m} of ${g.name} from both agents`).toContain(`${m} ${g.uuid}`);
    }
    for (const k of both) expect(oursBy.get(k), k).toBe(theirsBy.get(k));
    failed = false;
  });
});
