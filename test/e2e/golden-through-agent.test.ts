// The end-to-end harness, proven with the golden bytes: the 24 AMQP bodies the real Ceilometer 19
// polling agent sent (test/fixtures/golden/*/amqp) are published again, byte for byte and with the
// captured properties, to the machine's RabbitMQ, where the real Debian 12 ceilometer-agent-notification
// (test/e2e/notification-agent.sh; with CEILOMETER_RELEASE=trixie Debian 13's, Ceilometer 24) takes
// them and writes what it accepts to a file:// publisher.
// Then: every sample is there as sent; for zed-3guests the output is byte for byte what the agent
// stored when the captures were made; and a resent _unique_id is dropped only while it is among the
// last 16 the agent saw (oslo.messaging's _MsgIdCache), which is what ceilopoll's replay can count on.
//
// Root, apt and the machine's broker on 127.0.0.1:5672: `make e2e` runs it (vitest.e2e.config.ts; the
// first run apt-installs the agent, ~2 min). CEILOPOLL_E2E_KEEP=1
// keeps the run directory (config, agent.log, accepted.jsonl), which is kept anyway when a test fails.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { notificationAgent as agent } from './harness.js';
import {
  ACCEPTED_KEYS_WITH_NAMES,
  ACCEPTED_KEYS_ZED,
  CEILOMETER_RELEASE,
  compareSent,
  describeComparison,
  readAccepted,
  readAcceptedLines,
  storedLine,
  type Comparison,
  type SentSample,
} from './accepted.js';


const GOLDEN = fileURLToPath(new URL('../fixtures/golden/', import.meta.url));
const AMQP_URL = process.env.CEILOPOLL_E2E_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const EXCHANGE = 'ceilometer';
const ROUTING_KEY = 'notifications.sample';
/** What the polling agent set on every message (golden README; amqp/NNNN.props.json). */
const PROPERTIES = { contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2, priority: 0, headers: {} };

interface WireSampleDict extends SentSample {
  message_id: string;
}
interface OsloMessage {
  _unique_id: string;
  message_id: string;
  event_type: string;
  payload: { samples: WireSampleDict[] };
}
interface Captured {
  name: string;
  body: Buffer;
  uniqueId: string;
  samples: WireSampleDict[];
}

function decode(name: string, body: Buffer): Captured {
  const outer = JSON.parse(body.toString('utf8')) as { 'oslo.version': string; 'oslo.message': string };
  const inner = JSON.parse(outer['oslo.message']) as OsloMessage;
  return { name, body, uniqueId: inner._unique_id, samples: inner.payload.samples };
}

const captured: Captured[] = ['zed-3guests', 'zed-3guests-flavorid'].flatMap((capture) => {
  const dir = path.join(GOLDEN, capture, 'amqp');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.body'))
    .sort()
    .map((f) => decode(`${capture}/amqp/${f}`, readFileSync(path.join(dir, f))));
});

/** A captured message made new: fresh _unique_id, oslo message_id and sample message_ids (JSON.stringify's bytes: the agent does not care). */
function freshCopy(c: Captured): Captured {
  const outer = JSON.parse(c.body.toString('utf8')) as Record<string, string>;
  const inner = JSON.parse(outer['oslo.message']!) as OsloMessage;
  inner._unique_id = randomUUID().replaceAll('-', '');
  inner.message_id = randomUUID();
  for (const s of inner.payload.samples) s.message_id = randomUUID();
  outer['oslo.message'] = JSON.stringify(inner);
  return decode(`fresh copy of ${c.name}`, Buffer.from(JSON.stringify(outer), 'utf8'));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('golden captures through the real ceilometer-agent-notification', () => {
  let dir = '';
  let conn: ChannelModel | undefined;
  let ch: ConfirmChannel | undefined;
  let failed = false;
  const returned: string[] = [];
  const acceptedFile = (): string => path.join(dir, 'accepted.jsonl');
  const logText = (): string => readFileSync(path.join(dir, 'agent.log'), 'utf8');
  const logTail = (): string => `\n--- last lines of ${dir}/agent.log ---\n${logText().split('\n').slice(-25).join('\n')}`;

  beforeAll(async () => {
    await agent('install');
    dir = process.env.CEILOPOLL_E2E_DIR ?? mkdtempSync(path.join(tmpdir(), 'ceilopoll-e2e-'));
    await agent('start', dir, { PURGE: '1' });
    conn = await connect(AMQP_URL);
    ch = await conn.createConfirmChannel();
    ch.on('return', (msg: { fields: { replyText: string; routingKey: string } }) => {
      returned.push(`${msg.fields.routingKey}: ${msg.fields.replyText}`);
    });
    // the agent declared it (topic, durable=false, auto_delete=false): check, do not redeclare
    await ch.checkExchange(EXCHANGE);
  }, 600_000);

  afterAll(async () => {
    await ch?.close().catch(() => undefined);
    await conn?.close().catch(() => undefined);
    if (dir !== '') {
      await agent('stop', dir);
      if (!failed && process.env.CEILOPOLL_E2E_KEEP !== '1' && process.env.CEILOPOLL_E2E_DIR === undefined) {
        rmSync(dir, { recursive: true, force: true });
      } else {
        console.log(`e2e run directory kept: ${dir}`);
      }
    }
  }, 60_000);

  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      failed = true;
    });
  });

  async function publish(messages: Captured[]): Promise<void> {
    for (const m of messages) ch!.publish(EXCHANGE, ROUTING_KEY, m.body, { ...PROPERTIES, mandatory: true });
    await ch!.waitForConfirms();
    // a basic.return comes before the ack: no queue bound means the agent never saw it
    expect(returned, 'unroutable messages').toEqual([]);
  }

  /** Polls the publisher output until `done` holds for the comparison (or the time is up). */
  async function waitFor(sent: SentSample[], done: (c: Comparison) => boolean, timeoutMs = 30_000): Promise<Comparison> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const c = compareSent(sent, readAccepted(acceptedFile()));
      if (done(c) || Date.now() > deadline) return c;
      await sleep(200);
    }
  }

  const allSent = captured.flatMap((c) => c.samples);

  it('has 24 distinct captured messages of 3 samples each', () => {
    expect(captured).toHaveLength(24);
    expect(allSent).toHaveLength(72);
    expect(new Set(captured.map((c) => c.uniqueId)).size).toBe(24);
    expect(new Set(allSent.map((s) => s.message_id)).size).toBe(72);
  });

  it('consumes alone from notifications.sample, which it declared with the oslo defaults', async () => {
    // Redeclaring with the same flags is a no-op; any difference (durable, auto_delete, arguments) is a
    // 406 PRECONDITION_FAILED that closes the channel and rejects here.
    const probe = await conn!.createChannel();
    probe.on('error', () => undefined);
    const q = await probe.assertQueue(ROUTING_KEY, { durable: false, autoDelete: false, exclusive: false });
    await probe.assertExchange(EXCHANGE, 'topic', { durable: false, autoDelete: false, internal: false });
    await probe.close();
    expect(q.consumerCount, 'one consumer: the agent (another one would take some of the messages)').toBe(1);
  });

  it('stores every one of the 72 samples as sent', async () => {
    await publish(captured);
    const c = await waitFor(allSent, (x) => x.missing.length === 0);
    expect(c.missing.length + c.mismatched.length, describeComparison(c) + logTail()).toBe(0);
    expect(c.matched).toBe(72);
    expect(c.duplicates).toEqual([]);
  }, 60_000);

  it(`writes, for zed-3guests, byte for byte what the agent stored when the captures were made${CEILOMETER_RELEASE === 'debian12' ? '' : ', with the keys of its release'}`, () => {
    const golden = readFileSync(path.join(GOLDEN, 'zed-3guests', 'notification-accepted.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => storedLine(l));
    const ids = new Set(captured.filter((c) => c.name.startsWith('zed-3guests/')).flatMap((c) => c.samples.map((s) => s.message_id)));
    const lines = readAcceptedLines(acceptedFile()).filter((l) => ids.has((JSON.parse(l) as { id: string }).id));
    expect(lines).toHaveLength(48);
    expect([...lines].sort()).toEqual([...golden].sort());
    // the file publisher's shape: Sample.as_dict() keys in order, monotonic_time not passed on
    for (const a of readAccepted(acceptedFile()).filter((x) => ids.has(x.id))) {
      expect(Object.keys(a)).toEqual(CEILOMETER_RELEASE === 'debian12' ? [...ACCEPTED_KEYS_ZED] : [...ACCEPTED_KEYS_WITH_NAMES]);
      expect(a.monotonic_time).toBeNull();
    }
  });

  it('drops a resent _unique_id while it is among the last 16 it consumed, and stores it again after that', async () => {
    const dupLines = (): number => logText().split('\n').filter((l) => l.includes('ignoring duplicate message')).length;
    const before = dupLines();

    // 1. the last message published: its _unique_id is in the window
    const recent = captured[captured.length - 1]!;
    const marker1 = freshCopy(captured[0]!);
    await publish([recent, marker1]);
    // the dedup happens on receipt, in order; the marker's samples show the resend was received too
    const m1 = await waitFor(marker1.samples, (x) => x.matched === 3);
    expect(m1.matched, describeComparison(m1) + logTail()).toBe(3);
    const deadline = Date.now() + 10_000;
    while (dupLines() === before && Date.now() < deadline) await sleep(200);
    expect(dupLines(), `no "ignoring duplicate message" in agent.log${logTail()}`).toBe(before + 1);
    await sleep(1_000); // were it processed after all, its samples would be written by now (thread pool)
    const r = compareSent(recent.samples, readAccepted(acceptedFile()));
    expect(r.matched).toBe(3);
    expect(r.duplicates, 'the resend within the window was stored again').toEqual([]);

    // 2. the first message published: 24 other _unique_ids came since, it fell out of the 16
    const old = captured[0]!;
    const marker2 = freshCopy(captured[1]!);
    await publish([old, marker2]);
    const m2 = await waitFor(marker2.samples, (x) => x.matched === 3);
    expect(m2.matched, describeComparison(m2) + logTail()).toBe(3);
    const o = await waitFor(old.samples, (x) => x.duplicates.length === 3, 10_000);
    expect(o.matched).toBe(3);
    expect(o.duplicates.map((d) => d.id).sort(), 'the resend outside the window is stored a second time').toEqual(
      old.samples.map((s) => s.message_id).sort(),
    );
    expect(dupLines()).toBe(before + 1);
  }, 60_000);
});
