// AmqpPublisher against the real RabbitMQ on 127.0.0.1:5672 (ceilometer-wire.md §4.3, golden
// amqp-wire.decoded.txt): what goes on the wire, what a consumer receives, the topology oslo declares,
// confirms, and what happens when the broker says no. Everything this file declares is named
// ceilopoll-test-<run>-… (or, for the one test of the real names, removed only if it was absent before),
// and a small TCP proxy stands between publisher and broker where a test must see the frames or cut
// the connection. amqplib itself is the consumer.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';

import { connect, type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  AmqpPublishError,
  AmqpPublisher,
  type AmqpPublisherOptions,
} from '../../src/publish/amqp.js';
import { parseTransportUrl, type RabbitOptions, type TransportTarget } from '../../src/publish/transport-url.js';
import { bodies } from '../support/golden.js';
import { TcpRelay } from '../support/tcp-relay.js';

const BROKER_PORT = 5672;
const RUN = randomBytes(4).toString('hex');
const uniq = (what: string): string => `ceilopoll-test-${RUN}-${what}`;
const SECRET = `pw-${randomBytes(6).toString('hex')}`;

const execFileP = promisify(execFile);
async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await execFileP('rabbitmqctl', ['-q', ...args], { timeout: 60_000 });
  return stdout;
}
const rabbitJson = async <T>(...args: string[]): Promise<T[]> => JSON.parse(await rabbitmqctl(...args, '--formatter', 'json')) as T[];

interface QueueRow { name: string; durable: boolean; auto_delete: boolean; arguments: unknown[]; type: string }
interface ExchangeRow { name: string; type: string; durable: boolean; auto_delete: boolean; internal: boolean; arguments: unknown[] }
interface BindingRow { source_name: string; destination_name: string; routing_key: string }

async function declared(vhost = '/'): Promise<{ queues: QueueRow[]; exchanges: ExchangeRow[]; bindings: BindingRow[] }> {
  const [queues, exchanges, bindings] = await Promise.all([
    rabbitJson<QueueRow>('list_queues', '-p', vhost, 'name', 'durable', 'auto_delete', 'arguments', 'type'),
    rabbitJson<ExchangeRow>('list_exchanges', '-p', vhost, 'name', 'type', 'durable', 'auto_delete', 'internal', 'arguments'),
    rabbitJson<BindingRow>('list_bindings', '-p', vhost, 'source_name', 'destination_name', 'routing_key'),
  ]);
  return { queues, exchanges, bindings };
}

// ---- the consumer side: plain amqplib -------------------------------------------------------------

let admin: ChannelModel;

/** A throwaway channel: a 404/406 closes a channel, so each use gets its own. */
async function withChannel<T>(fn: (ch: Channel) => Promise<T>): Promise<T> {
  const ch = await admin.createChannel();
  ch.on('error', () => undefined);
  try {
    return await fn(ch);
  } finally {
    await ch.close().catch(() => undefined);
  }
}

async function getMessage(queue: string, timeoutMs = 5000): Promise<GetMessage> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const msg = await withChannel((ch) => ch.get(queue, { noAck: true }));
    if (msg) return msg;
    if (Date.now() > deadline) throw new Error(`no message in ${queue} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

const exists = (kind: 'queue' | 'exchange', name: string): Promise<boolean> =>
  withChannel(async (ch) => {
    await (kind === 'queue' ? ch.checkQueue(name) : ch.checkExchange(name));
    return true;
  }).catch(() => false);

// ---- helpers --------------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const cleanups: Array<() => Promise<unknown>> = [];
const later = (fn: () => Promise<unknown>): void => void cleanups.push(fn);

const target = (rabbit: Partial<RabbitOptions> = {}, url = `rabbit://guest:guest@127.0.0.1:${BROKER_PORT}/`): TransportTarget => parseTransportUrl(url, rabbit);

interface Recorded {
  publisher: AmqpPublisher;
  errors: AmqpPublishError[];
  disconnects: AmqpPublishError[];
  connects: Array<{ host: string; vhost: string }>;
}

/** A publisher with fast retries, its events recorded, closed after the test; not started. */
function publisher(opts: Partial<AmqpPublisherOptions> & { target: TransportTarget }): Recorded {
  const p = new AmqpPublisher({ reconnectDelayMs: () => 100, connectionTimeoutMs: 2000, confirmTimeoutMs: 5000, closeTimeoutMs: 2000, ...opts });
  const r: Recorded = { publisher: p, errors: [], disconnects: [], connects: [] };
  p.on('error', (e) => r.errors.push(e));
  p.on('disconnected', (e) => r.disconnects.push(e));
  p.on('connected', (i) => r.connects.push(i));
  later(() => p.close());
  return r;
}

/** A test exchange and topic; the publisher declares `<topic>.sample`, deleted after the test. */
function names(what: string): { exchange: string; topic: string; queue: string } {
  const exchange = uniq(`${what}-x`);
  const topic = uniq(what);
  const queue = `${topic}.sample`;
  later(() => withChannel(async (ch) => {
    await ch.deleteQueue(queue);
    await ch.deleteExchange(exchange);
  }));
  return { exchange, topic, queue };
}

async function until(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const connected = (r: Recorded, n = 1): Promise<void> => until(`connection #${n}`, () => r.connects.length >= n && r.publisher.connected);

/** publish() must refuse at once (the caller's spool keeps the message), with this kind of error. */
async function refusesFast(p: AmqpPublisher, kind: string): Promise<AmqpPublishError> {
  const t0 = performance.now();
  const err = await p.publish(Buffer.from('{}')).then(() => null, (e: unknown) => e);
  expect(performance.now() - t0).toBeLessThan(50);
  expect(err).toBeInstanceOf(AmqpPublishError);
  expect((err as AmqpPublishError).kind).toBe(kind);
  return err as AmqpPublishError;
}

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** A TcpRelay to the machine's broker, closed after the test. */
async function proxyToBroker(listenPort?: number): Promise<TcpRelay> {
  const relay = await TcpRelay.start(BROKER_PORT, { listenPort });
  later(() => relay.close());
  return relay;
}

/**
 * A TLS relay to the broker stands in for RabbitMQ's TLS listener, with a self-signed certificate for "CN=rabbit.invalid"
 * (the test must not reconfigure the shared broker).
 */
let selfSigned: Promise<{ key: Buffer; cert: Buffer; caFile: string }> | null = null;

async function tlsRelay(): Promise<{ port: number; caFile: string }> {
  selfSigned ??= (async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-tls-'));
    const key = path.join(dir, 'key.pem');
    const caFile = path.join(dir, 'cert.pem');
    await execFileP('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', caFile, '-days', '1', '-subj', '/CN=rabbit.invalid']);
    return { key: readFileSync(key), cert: readFileSync(caFile), caFile };
  })();
  const { key, cert, caFile } = await selfSigned;
  const server = tls.createServer({ key, cert }, (client) => {
    const upstream = net.connect(BROKER_PORT, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    const end = (): void => void (client.destroy(), upstream.destroy());
    client.on('error', end);
    upstream.on('error', end);
  });
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  later(() => new Promise((r) => server.close(r)));
  return { port: (server.address() as net.AddressInfo).port, caFile };
}

// ---- AMQP frames, to compare with the golden capture ----------------------------------------------

interface Frame { type: number; channel: number; payload: Buffer }

function parseFrames(stream: Buffer): Frame[] {
  expect(stream.subarray(0, 8).toString('latin1')).toBe('AMQP\x00\x00\x09\x01');
  const out: Frame[] = [];
  for (let i = 8; i + 7 <= stream.length;) {
    const size = stream.readUInt32BE(i + 3);
    out.push({ type: stream[i]!, channel: stream.readUInt16BE(i + 1), payload: stream.subarray(i + 7, i + 7 + size) });
    i += 8 + size;
  }
  return out;
}

const methodOf = (f: Frame): string => `${f.payload.readUInt16BE(0)}.${f.payload.readUInt16BE(2)}`;

/** Reads the fields of a method frame's payload after class and method ids. */
class Reader {
  private at = 4;
  constructor(private readonly b: Buffer) {}
  short(): number { const v = this.b.readUInt16BE(this.at); this.at += 2; return v; }
  long(): number { const v = this.b.readUInt32BE(this.at); this.at += 4; return v; }
  octet(): number { return this.b[this.at++]!; }
  shortstr(): string { const n = this.octet(); const s = this.b.toString('utf8', this.at, this.at + n); this.at += n; return s; }
  table(): Buffer { const n = this.long(); const t = this.b.subarray(this.at, this.at + n); this.at += n; return t; }
}

const shortstr = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s)]);

// ---- the tests --------------------------------------------------------------------------------------

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  admin = await connect(`amqp://guest:guest@127.0.0.1:${BROKER_PORT}`);
  admin.on('error', () => undefined);
});

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});

afterAll(async () => {
  await admin?.close();
  if (selfSigned) rmSync(path.dirname((await selfSigned).caFile), { recursive: true, force: true });
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

// A realistic body: the first golden notification, byte for byte.
const GOLDEN_BODY = Buffer.from(bodies[0]!.raw, 'utf8');

describe('on the wire, as Zed sends it', () => {
  it('AMQPLAIN login, connection name, tune, topology and basic.publish with oslo\'s five properties', async () => {
    const proxy = await proxyToBroker();
    const { exchange, topic, queue } = names('wire');
    const r = publisher({ target: target({}, `rabbit://guest:guest@127.0.0.1:${proxy.port}/`), exchange, topics: [topic], connectionName: uniq('wire-conn') });
    r.publisher.start();
    await connected(r);
    await r.publisher.publish(GOLDEN_BODY);
    await r.publisher.close();

    const frames = parseFrames(Buffer.concat(proxy.captures[0]!));
    const methods = frames.filter((f) => f.type === 1);
    const find = (m: string): Reader => {
      const f = methods.find((x) => methodOf(x) === m);
      expect(f, `method ${m}`).toBeDefined();
      return new Reader(f!.payload);
    };

    const startOk = find('10.11');
    const clientProperties = startOk.table().toString('latin1');
    expect(clientProperties).toContain(`connection_name\x53\x00\x00\x00${String.fromCharCode(uniq('wire-conn').length)}${uniq('wire-conn')}`);
    expect(clientProperties).toContain('authentication_failure_close');
    expect(startOk.shortstr()).toBe('AMQPLAIN');

    const tuneOk = find('10.31');
    expect([tuneOk.short(), tuneOk.long(), tuneOk.short()]).toEqual([2047, 131072, 60]);

    const open = find('10.40');
    expect(open.shortstr()).toBe('/');

    const xd = find('40.10');
    expect([xd.short(), xd.shortstr(), xd.shortstr(), xd.octet(), xd.table().length]).toEqual([0, exchange, 'topic', 0, 0]);
    const qd = find('50.10');
    expect([qd.short(), qd.shortstr(), qd.octet(), qd.table().length]).toEqual([0, queue, 0, 0]);
    const qb = find('50.20');
    expect([qb.short(), qb.shortstr(), qb.shortstr(), qb.shortstr(), qb.octet(), qb.table().length]).toEqual([0, queue, exchange, queue, 0, 0]);
    find('85.10'); // confirm.select

    const pub = find('60.40');
    expect([pub.short(), pub.shortstr(), pub.shortstr(), pub.octet()]).toEqual([0, exchange, queue, 0]); // mandatory=0, immediate=0

    const at = frames.findIndex((f) => f.type === 1 && methodOf(f) === '60.40');
    const header = frames[at + 1]!;
    expect(header.type).toBe(2);
    expect(header.payload.readUInt16BE(0)).toBe(60);
    expect(header.payload.readBigUInt64BE(4)).toBe(BigInt(GOLDEN_BODY.length));
    // property flags 0xf800: content_type, content_encoding, headers (an empty table), delivery_mode 2, priority 0
    expect(header.payload.subarray(12)).toEqual(
      Buffer.concat([Buffer.from([0xf8, 0x00]), shortstr('application/json'), shortstr('utf-8'), Buffer.alloc(4), Buffer.from([2, 0])]),
    );
    const body = Buffer.concat(frames.slice(at + 2).filter((f) => f.type === 3).map((f) => f.payload));
    expect(body.equals(GOLDEN_BODY)).toBe(true);
  });

  it('a consumer receives the very bytes, with content_type, content_encoding, delivery_mode 2, priority 0, headers {}', async () => {
    const { exchange, topic, queue } = names('consume');
    const r = publisher({ target: target(), exchange, topics: [topic] });
    r.publisher.start();
    await connected(r);
    await r.publisher.publish(GOLDEN_BODY);

    const msg = await getMessage(queue);
    expect(msg.content.equals(GOLDEN_BODY)).toBe(true);
    expect(msg.fields).toMatchObject({ exchange, routingKey: queue, redelivered: false });
    expect(msg.properties).toMatchObject({ contentType: 'application/json', contentEncoding: 'utf-8', deliveryMode: 2, priority: 0, headers: {} });
    for (const absent of ['messageId', 'timestamp', 'correlationId', 'expiration', 'replyTo', 'type', 'appId', 'userId']) {
      expect(msg.properties[absent as keyof typeof msg.properties], absent).toBeUndefined();
    }
  });

  it('shows operators its connection name, ceilopoll:<hostname>:<pid>', async () => {
    const { exchange, topic } = names('conn-name');
    const r = publisher({ target: target(), exchange, topics: [topic] });
    r.publisher.start();
    await connected(r);
    const rows = await rabbitJson<{ client_properties: unknown[] }>('list_connections', 'client_properties');
    const names_ = rows.flatMap((row) => row.client_properties.filter((p) => Array.isArray(p) && p[0] === 'connection_name').map((p) => (p as unknown[])[2]));
    expect(names_).toContain(`ceilopoll:${os.hostname()}:${process.pid}`);
  });
});

describe('topology, as oslo declares it', () => {
  it('the real names: topic exchange "ceilometer", queue "notifications.sample" bound by its name, durable=false auto_delete=false no arguments', async () => {
    const had = { exchange: await exists('exchange', 'ceilometer'), queue: await exists('queue', 'notifications.sample') };
    later(async () => {
      // Leave the broker as found, and never take these from a running notification agent.
      if (!had.queue) await withChannel((ch) => ch.deleteQueue('notifications.sample', { ifUnused: true, ifEmpty: true }));
      if (!had.exchange) await withChannel((ch) => ch.deleteExchange('ceilometer', { ifUnused: true }));
    });
    const r = publisher({ target: target() });
    expect(r.publisher.routingKeys).toEqual(['notifications.sample']);
    r.publisher.start();
    await connected(r);

    const { queues, exchanges, bindings } = await declared();
    expect(queues.find((q) => q.name === 'notifications.sample')).toEqual({ name: 'notifications.sample', durable: false, auto_delete: false, arguments: [], type: 'classic' });
    expect(exchanges.find((x) => x.name === 'ceilometer')).toEqual({ name: 'ceilometer', type: 'topic', durable: false, auto_delete: false, internal: false, arguments: [] });
    expect(bindings).toContainEqual({ source_name: 'ceilometer', destination_name: 'notifications.sample', routing_key: 'notifications.sample' });

    // Publishing through the real exchange, with a routing key nothing is bound to: confirmed, and nothing
    // lands in notifications.sample, where a notification agent may be consuming (so nothing to purge).
    await r.publisher.publish(Buffer.from('{"oslo.version": "2.0", "oslo.message": "{}"}'), [uniq('unrouted')]);
  });

  it('amqp_durable_queues, amqp_auto_delete, rabbit_ha_queues, rabbit_quorum_queue (+ its limits) and several topics', async () => {
    const variants: Array<{ what: string; rabbit: Partial<RabbitOptions>; exchange: Partial<ExchangeRow>; queue: Partial<QueueRow> }> = [
      { what: 'plain', rabbit: {}, exchange: { durable: false, auto_delete: false }, queue: { durable: false, auto_delete: false, arguments: [], type: 'classic' } },
      { what: 'durable', rabbit: { amqp_durable_queues: true }, exchange: { durable: true, auto_delete: false }, queue: { durable: true, auto_delete: false, arguments: [] } },
      { what: 'autodel', rabbit: { amqp_auto_delete: true }, exchange: { durable: false, auto_delete: true }, queue: { durable: false, auto_delete: true, arguments: [] } },
      { what: 'ha', rabbit: { rabbit_ha_queues: true }, exchange: { durable: false }, queue: { durable: false, arguments: [['x-ha-policy', 'longstr', 'all']] } },
      {
        what: 'quorum',
        rabbit: { rabbit_quorum_queue: true, rabbit_quorum_delivery_limit: 5, rabbit_quroum_max_memory_length: 100, rabbit_quroum_max_memory_bytes: 1_000_000 },
        // quorum implies durable, whatever amqp_durable_queues says
        exchange: { durable: true, auto_delete: false },
        queue: {
          durable: true, auto_delete: false, type: 'quorum',
          arguments: [['x-queue-type', 'longstr', 'quorum'], ['x-delivery-limit', 'byte', 5], ['x-max-in-memory-length', 'byte', 100], ['x-max-in-memory-bytes', 'signedint', 1_000_000]],
        },
      },
    ];
    const started = variants.map((v) => {
      const n = names(v.what);
      const r = publisher({ target: target(v.rabbit), exchange: n.exchange, topics: [n.topic] });
      r.publisher.start();
      return { v, n, r };
    });
    const two = { a: names('two-a'), b: names('two-b') };
    const multi = publisher({ target: target(), exchange: two.a.exchange, topics: [two.a.topic, two.b.topic] });
    multi.publisher.start();
    await Promise.all([...started.map((s) => connected(s.r)), connected(multi)]);

    const { queues, exchanges, bindings } = await declared();
    for (const { v, n } of started) {
      const q = queues.find((x) => x.name === n.queue);
      expect(q, v.what).toBeDefined();
      expect(q, v.what).toMatchObject(v.queue);
      // amqplib encodes small integers in the narrowest AMQP type; RabbitMQ compares them by value
      if (v.what === 'quorum') expect(q!.arguments.map((a) => (a as unknown[])[2])).toEqual(['quorum', 5, 100, 1_000_000]);
      expect(exchanges.find((x) => x.name === n.exchange), v.what).toMatchObject({ type: 'topic', internal: false, arguments: [], ...v.exchange });
      expect(bindings, v.what).toContainEqual({ source_name: n.exchange, destination_name: n.queue, routing_key: n.queue });
    }

    expect(multi.publisher.routingKeys).toEqual([two.a.queue, two.b.queue]);
    expect(bindings).toContainEqual({ source_name: two.a.exchange, destination_name: two.b.queue, routing_key: two.b.queue });
    await multi.publisher.publish(GOLDEN_BODY);
    for (const q of [two.a.queue, two.b.queue]) expect((await getMessage(q)).content.equals(GOLDEN_BODY), q).toBe(true);
  }, 60_000);
});

describe('confirms', () => {
  it('resolve for many concurrent publishes, and close() waits for the outstanding ones', async () => {
    const { exchange, topic, queue } = names('many');
    const r = publisher({ target: target(), exchange, topics: [topic] });
    r.publisher.start();
    await connected(r);
    const all = Array.from({ length: 200 }, (_, i) => r.publisher.publish(Buffer.from(`{"n": ${i}}`)));
    await r.publisher.close();
    await expect(Promise.all(all)).resolves.toHaveLength(200);
    expect((await withChannel((ch) => ch.checkQueue(queue))).messageCount).toBe(200);
    expect((await refusesFast(r.publisher, 'CLOSED')).message).toMatch(/closed/);
  });

  it('a nack rejects publish(): the caller keeps the message', async () => {
    const { exchange, topic, queue } = names('nack');
    const full = uniq('full');
    const r = publisher({ target: target(), exchange, topics: [topic] });
    r.publisher.start();
    await connected(r);
    // A queue that is always full and refuses publishes makes the broker nack.
    await withChannel(async (ch) => {
      await ch.assertQueue(full, { arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
      await ch.bindQueue(full, exchange, queue);
    });
    later(() => withChannel((ch) => ch.deleteQueue(full)));

    const err = await r.publisher.publish(GOLDEN_BODY).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AmqpPublishError);
    expect(err).toMatchObject({ kind: 'NACK', host: `127.0.0.1:${BROKER_PORT}` });
    expect((err as Error).message).toMatch(new RegExp(`nacked the message for exchange "${exchange}" routing key "${queue}".*keep it and retry`));
    expect(r.publisher.connected).toBe(true);

    await withChannel((ch) => ch.deleteQueue(full));
    await expect(r.publisher.publish(GOLDEN_BODY)).resolves.toBeUndefined();
  });

  it('before start(), publish() rejects at once', async () => {
    const r = publisher({ target: target() });
    expect((await refusesFast(r.publisher, 'NOT_CONNECTED')).message).toMatch(/start\(\) was not called/);
  });
});

describe('broker problems: a clear error, publish() fails fast, nothing crashes, and recovery once fixed', () => {
  it('wrong credentials: ACCESS_REFUSED without the password; works once the user exists', async () => {
    const user = uniq('user');
    later(() => rabbitmqctl('delete_user', user));
    const { exchange, topic } = names('creds');
    const r = publisher({ target: target({}, `rabbit://${user}:${SECRET}@127.0.0.1:${BROKER_PORT}/`), exchange, topics: [topic] });
    r.publisher.start();
    await until('two refused logins', () => r.errors.length >= 2);

    const err = r.errors[0]!;
    expect(err.kind).toBe('ACCESS_REFUSED');
    expect(err.message).toBe(`ACCESS_REFUSED: RabbitMQ at 127.0.0.1:${BROKER_PORT} refused the login of user "${user}" (AMQPLAIN); check transport_url user and password`);
    const refused = await refusesFast(r.publisher, 'NOT_CONNECTED');
    expect(refused.message).toContain('ACCESS_REFUSED');
    for (const e of [...r.errors, refused]) expect(`${e.message} ${String(e.cause)}`).not.toContain(SECRET);

    await rabbitmqctl('add_user', user, SECRET);
    await rabbitmqctl('set_permissions', '-p', '/', user, '.*', '.*', '.*');
    await connected(r);
    await expect(r.publisher.publish(GOLDEN_BODY)).resolves.toBeUndefined();
    expect(r.publisher.lastError).toBeNull();
  }, 60_000);

  it('unreachable host: names host:port; connects once something listens there', async () => {
    const port = await freePort();
    const { exchange, topic } = names('unreachable');
    const r = publisher({ target: target({}, `rabbit://guest:guest@127.0.0.1:${port}/`), exchange, topics: [topic] });
    r.publisher.start();
    await until('two failed attempts', () => r.errors.length >= 2);
    expect(r.errors[0]).toMatchObject({ kind: 'UNREACHABLE', host: `127.0.0.1:${port}` });
    expect(r.errors[0]!.message).toBe(`cannot reach RabbitMQ at 127.0.0.1:${port}: connection refused: nothing listens on that port (ECONNREFUSED); check the host and port in transport_url and that the broker is up`);
    await refusesFast(r.publisher, 'NOT_CONNECTED');

    await proxyToBroker(port);
    await connected(r);
    await expect(r.publisher.publish(GOLDEN_BODY)).resolves.toBeUndefined();
  });

  it('missing vhost: says so; works once the vhost exists and the user may use it', async () => {
    const vhost = uniq('vhost');
    later(() => rabbitmqctl('delete_vhost', vhost));
    const r = publisher({ target: target({}, `rabbit://guest:guest@127.0.0.1:${BROKER_PORT}/${encodeURIComponent(vhost)}`) });
    r.publisher.start();
    await until('two refusals', () => r.errors.length >= 2);
    expect(r.errors[0]!.kind).toBe('VHOST_REFUSED');
    expect(r.errors[0]!.message).toContain(`vhost ${vhost} does not exist`);
    await refusesFast(r.publisher, 'NOT_CONNECTED');

    await rabbitmqctl('add_vhost', vhost);
    await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
    await connected(r);
    expect(r.connects[0]).toEqual({ host: `127.0.0.1:${BROKER_PORT}`, vhost });
    await expect(r.publisher.publish(GOLDEN_BODY)).resolves.toBeUndefined();
    // the real names, inside the test's own vhost
    const { queues } = await declared(vhost);
    expect(queues).toEqual([{ name: 'notifications.sample', durable: false, auto_delete: false, arguments: [], type: 'classic' }]);
  }, 60_000);

  it.each([
    { what: 'a durable queue', kind: 'queue', declare: (ch: Channel, n: string) => ch.assertQueue(n, { durable: true }), says: /queue "[^"]+\.sample" in vhost "\/" already exists with durable = 'true', but ceilopoll declares 'false'; \[oslo_messaging_rabbit\] amqp_durable_queues/ },
    { what: 'a quorum queue', kind: 'queue', declare: (ch: Channel, n: string) => ch.assertQueue(n, { durable: true, arguments: { 'x-queue-type': 'quorum' } }), says: /already exists with (durable|x-queue-type) = .*\[oslo_messaging_rabbit\] .*rabbit_quorum_queue/ },
    { what: 'a durable exchange', kind: 'exchange', declare: (ch: Channel, x: string) => ch.assertExchange(x, 'topic', { durable: true }), says: /exchange "[^"]+" in vhost "\/" already exists with durable = 'true', but ceilopoll declares 'false'; \[oslo_messaging_rabbit\] amqp_durable_queues/ },
  ])('406 on $what declared with other flags: names the oslo option; works once it is deleted', async ({ kind, declare, says }) => {
    const { exchange, topic, queue } = names(`pre-${kind}-${randomBytes(2).toString('hex')}`);
    const clash = kind === 'queue' ? queue : exchange;
    await withChannel(async (ch) => void (await declare(ch, clash)));
    const r = publisher({ target: target(), exchange, topics: [topic] });
    r.publisher.start();
    await until('two refusals', () => r.errors.length >= 2);
    expect(r.errors[0]!.kind).toBe('PRECONDITION_FAILED');
    expect(r.errors[0]!.message).toMatch(/^406 PRECONDITION_FAILED: /);
    expect(r.errors[0]!.message).toMatch(says);
    await refusesFast(r.publisher, 'NOT_CONNECTED');

    await withChannel(async (ch) => void (kind === 'queue' ? await ch.deleteQueue(clash) : await ch.deleteExchange(clash)));
    await connected(r);
    await expect(r.publisher.publish(GOLDEN_BODY)).resolves.toBeUndefined();
  });
});

describe('failover and recovery', () => {
  it('fails over to the next host in the URL', async () => {
    const dead = await freePort();
    const { exchange, topic } = names('failover');
    const r = publisher({ target: target({}, `rabbit://guest:guest@127.0.0.1:${dead},guest:guest@127.0.0.1:${BROKER_PORT}/`), exchange, topics: [topic] });
    r.publisher.start();
    await connected(r);
    expect(r.errors.map((e) => [e.kind, e.host])).toEqual([['UNREACHABLE', `127.0.0.1:${dead}`]]);
    expect(r.connects).toEqual([{ host: `127.0.0.1:${BROKER_PORT}`, vhost: '/' }]);
  });

  it('a connection lost before the confirm rejects publish(); recovery reconnects and re-declares the topology', async () => {
    const proxy = await proxyToBroker();
    const { exchange, topic, queue } = names('lost');
    const r = publisher({ target: target({}, `rabbit://guest:guest@127.0.0.1:${proxy.port}/`), exchange, topics: [topic] });
    r.publisher.start();
    await connected(r);

    proxy.freeze(); // the broker's basic.ack never reaches the publisher
    const pending = r.publisher.publish(GOLDEN_BODY).catch((e: unknown) => e);
    await sleep(200);
    await withChannel((ch) => ch.deleteQueue(queue)); // so a re-declared queue shows recovery ran setup again
    proxy.cut();

    const err = await pending;
    expect(err).toBeInstanceOf(AmqpPublishError);
    expect((err as AmqpPublishError).kind).toBe('CONNECTION_LOST');
    expect((err as Error).message).toMatch(/closed before the broker confirmed the message .*keep it and retry/);
    await until('the disconnect', () => r.disconnects.length === 1);
    expect(r.disconnects[0]!.kind).toBe('CONNECTION_LOST');

    await connected(r, 2);
    expect(await exists('queue', queue)).toBe(true);
    await expect(r.publisher.publish(GOLDEN_BODY)).resolves.toBeUndefined();
  });

  it('missed heartbeats count as a lost connection, then it reconnects', async () => {
    const proxy = await proxyToBroker();
    const { exchange, topic } = names('heartbeat');
    const r = publisher({ target: target({ heartbeat_timeout_threshold: 1 }, `rabbit://guest:guest@127.0.0.1:${proxy.port}/`), exchange, topics: [topic] });
    r.publisher.start();
    await connected(r);
    proxy.freeze(true);
    await until('the heartbeat timeout', () => r.disconnects.length === 1, 10_000);
    expect(r.disconnects[0]!.message).toMatch(/missed its heartbeats/);
    expect(r.publisher.connected).toBe(false);
    await connected(r, 2);
    await expect(r.publisher.publish(GOLDEN_BODY)).resolves.toBeUndefined();
  });

  it('a channel error on a live connection (exchange deleted under it) also recovers', async () => {
    const { exchange, topic } = names('chan');
    const r = publisher({ target: target(), exchange, topics: [topic] });
    r.publisher.start();
    await connected(r);
    await withChannel((ch) => ch.deleteExchange(exchange));

    const err = await r.publisher.publish(GOLDEN_BODY).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'CONNECTION_LOST' });
    expect((err as Error).message).toMatch(/NOT_FOUND - no exchange/);
    await connected(r, 2);
    expect(await exists('exchange', exchange)).toBe(true);
    await expect(r.publisher.publish(GOLDEN_BODY)).resolves.toBeUndefined();
  });

  it('close() does not wait forever for confirms that never come', async () => {
    const proxy = await proxyToBroker();
    const { exchange, topic } = names('close');
    const r = publisher({ target: target({}, `rabbit://guest:guest@127.0.0.1:${proxy.port}/`), exchange, topics: [topic], closeTimeoutMs: 300 });
    r.publisher.start();
    await connected(r);
    proxy.freeze(true);
    const pending = r.publisher.publish(GOLDEN_BODY).catch((e: unknown) => e);
    const t0 = performance.now();
    await r.publisher.close();
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(await pending).toBeInstanceOf(AmqpPublishError);
  });
});

describe('TLS from [oslo_messaging_rabbit] ssl and ssl_ca_file', () => {
  it('ssl_ca_file: verifies the chain, not the host name (as py-amqp 5.1.1), and publishes', async () => {
    const relay = await tlsRelay();
    const { exchange, topic, queue } = names('tls');
    const r = publisher({ target: target({ ssl: true, ssl_ca_file: relay.caFile }, `rabbit://guest:guest@127.0.0.1:${relay.port}/`), exchange, topics: [topic] });
    r.publisher.start();
    await connected(r);
    await r.publisher.publish(GOLDEN_BODY);
    expect((await getMessage(queue)).content.equals(GOLDEN_BODY)).toBe(true);
  });

  it('without ssl_ca_file the system store is used, so a self-signed broker is refused with a TLS error', async () => {
    const relay = await tlsRelay();
    const r = publisher({ target: target({}, `rabbit://guest:guest@127.0.0.1:${relay.port}/?ssl=1`) });
    r.publisher.start();
    await until('a TLS failure', () => r.errors.length >= 1);
    expect(r.errors[0]!.kind).toBe('TLS');
    expect(r.errors[0]!.message).toMatch(new RegExp(`^TLS with RabbitMQ at 127\\.0\\.0\\.1:${relay.port} failed: self-signed certificate .*ssl_ca_file`));
    await refusesFast(r.publisher, 'NOT_CONNECTED');
  });

  it('ssl on against a plain AMQP port says so', async () => {
    const r = publisher({ target: target({ ssl: true }) });
    r.publisher.start();
    await until('a TLS failure', () => r.errors.length >= 1);
    expect(r.errors[0]!.message).toBe(`RabbitMQ at 127.0.0.1:${BROKER_PORT} does not speak TLS on that port, but [oslo_messaging_rabbit] ssl (or ?ssl= in transport_url) is on; use the broker's TLS port or turn ssl off`);
  });
});
