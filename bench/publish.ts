// Benchmark: publishing notifications with publisher confirms, the way the agent does it (spool
// write-ahead, then Delivery with 8 in flight), for batch sizes 1, 50 and 500, against the
// machine's RabbitMQ; and the spool's replay rate (a spool filled while the broker was "away",
// then drained). Figures in samples per second; ratios against batch size 1 in the same run.
// A private exchange and queue are used and deleted afterwards.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import amqp from 'amqplib';

import { AmqpPublisher } from '../src/publish/amqp.js';
import { Delivery } from '../src/publish/delivery.js';
import { batchSamples, buildNotification, encodeNotification } from '../src/publish/envelope.js';
import { Spool } from '../src/publish/spool.js';
import { parseTransportUrl } from '../src/publish/transport-url.js';
import { randomIds, systemClock } from '../src/samples/clock.js';
import type { PyDict } from '../src/samples/pyjson.js';
import { asDict, parsePythonJson } from '../test/support/golden.js';

const URL = process.env.CEILOPOLL_BENCH_AMQP_URL ?? 'rabbit://guest:guest@127.0.0.1:5672/';
const SAMPLES = Number(process.env.CEILOPOLL_BENCH_SAMPLES ?? 20_000);
const here = path.dirname(fileURLToPath(import.meta.url));
const golden = readFileSync(path.join(here, '../test/fixtures/golden/zed-3guests/amqp/0001.body'), 'utf8');
const inner = asDict(parsePythonJson(asDict(parsePythonJson(golden), 'envelope')['oslo.message'] as string), 'message');
const template = (asDict(inner.payload as PyDict, 'payload').samples as PyDict[])[0]!;

const tag = randomUUID().slice(0, 8);
const exchange = `ceilopoll-bench-${tag}`;
const topic = `bench-${tag}`;

function notifications(batchSize: number): Buffer[] {
  const samples = Array.from({ length: SAMPLES }, () => ({ ...template, message_id: randomIds.sampleId() }));
  return batchSamples(samples, batchSize).map((b) => encodeNotification(buildNotification('memory.usage', b, randomIds, systemClock)));
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-bench-'));
  const publisher = new AmqpPublisher({ target: parseTransportUrl(URL), exchange, topics: [topic] });
  publisher.start();
  await new Promise<void>((resolve, reject) => {
    publisher.once('connected', () => resolve());
    setTimeout(() => reject(new Error(`no RabbitMQ at ${URL} within 10 s`)), 10_000).unref();
  });
  const rows: Array<{ what: string; notifications: number; seconds: number; bytes: number }> = [];
  try {
    for (const batch of [1, 50, 500]) {
      const bodies = notifications(batch);
      const spool = Spool.open(path.join(dir, `b${batch}.sqlite`), { maxBytes: 2 ** 31, maxAgeMs: 3600_000 });
      const delivery = new Delivery(spool, publisher);
      const seconds = await timed(async () => {
        for (const b of bodies) delivery.submit('memory.usage', b);
        await delivery.drain(600_000);
      });
      rows.push({ what: `publish, batch_size ${batch}`, notifications: bodies.length, seconds, bytes: bodies.reduce((n, b) => n + b.length, 0) });
      spool.close();
    }
    // replay: fill a spool with the broker "away" (no delivery), then drain it
    const bodies = notifications(50);
    const spool = Spool.open(path.join(dir, 'replay.sqlite'), { maxBytes: 2 ** 31, maxAgeMs: 3600_000 });
    for (const b of bodies) spool.append('memory.usage', b);
    const delivery = new Delivery(spool, publisher);
    const seconds = await timed(async () => {
      delivery.kick();
      await delivery.drain(600_000);
    });
    rows.push({ what: 'spool replay, batch_size 50', notifications: bodies.length, seconds, bytes: bodies.reduce((n, b) => n + b.length, 0) });
    spool.close();
  } finally {
    await publisher.close();
    const conn = await amqp.connect(URL.replace(/^rabbit:/, 'amqp:'));
    const ch = await conn.createChannel();
    await ch.deleteQueue(`${topic}.sample`);
    await ch.deleteExchange(exchange);
    await conn.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const ref = SAMPLES / rows[0]!.seconds;
  console.log(`\npublishing ${SAMPLES} memory.usage samples with publisher confirms (spool write-ahead, 8 in flight) to ${URL.replace(/\/\/[^@]*@/, '//')}\n`);
  console.log('| run | notifications | seconds | samples/s | notifications/s | MB/s | vs batch_size 1 |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const sps = SAMPLES / r.seconds;
    console.log(`| ${r.what} | ${r.notifications} | ${r.seconds.toFixed(2)} | ${Math.round(sps)} | ${Math.round(r.notifications / r.seconds)} | ${(r.bytes / r.seconds / 1e6).toFixed(1)} | ${(sps / ref).toFixed(1)}x |`);
  }
}

main().catch((err: unknown) => {
  console.error(`bench: ${String(err)}`);
  process.exit(1);
});
