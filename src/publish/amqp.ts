// Publishing notifications to RabbitMQ the way Zed's oslo.messaging rabbit driver does
// (ceilometer-wire.md §4.3; impl_rabbit.py::Connection.notify_send, _publish_and_creates_default_queue):
// a topic exchange named control_exchange, a default queue "<topic>.sample" bound with the same key and
// declared with the flags the notification agent uses, and one persistent JSON message per topic, sent
// with publisher confirms. Reconnecting is amqplib's opt-in recovery; its `setup` hook re-declares the
// topology on every new connection. What recovery does not cover is done here, in small pieces: failover
// across the URL's hosts, a channel that dies while its connection lives, and explaining broker errors.

import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import os from 'node:os';

import { connect, credentials as amqpCredentials } from 'amqplib';
import type { ChannelModel, ConfirmChannel, Options, RecoveringChannelModel, SocketOptions } from 'amqplib';

import { PRIORITY } from './envelope.js';
import type { RabbitOptions, TransportHost, TransportTarget } from './transport-url.js';

/** `[DEFAULT] control_exchange` as ceilometer sets it (messaging.setup: set_transport_defaults('ceilometer')) */
export const DEFAULT_EXCHANGE = 'ceilometer';
/** `[oslo_messaging_notifications] topics` */
export const DEFAULT_TOPICS: readonly string[] = ['notifications'];

/** `'%s.%s' % (topic, priority.lower())` in notify/messaging.py: the routing key and the default queue's name. */
export const routingKeyFor = (topic: string): string => `${topic}.${PRIORITY.toLowerCase()}`;

/**
 * kombu's Producer.publish for oslo's notification: content_type and content_encoding from the json
 * serializer, delivery_mode 2 (maybe_delivery_mode's PERSISTENT default), priority 0, empty headers table,
 * not mandatory. The golden capture's content header has exactly these five properties (flags 0xf800).
 */
const PUBLISH_OPTIONS: Readonly<Options.Publish> = Object.freeze({
  contentType: 'application/json',
  contentEncoding: 'utf-8',
  headers: Object.freeze({}),
  deliveryMode: 2,
  priority: 0,
  mandatory: false,
});

export type AmqpFailure =
  | 'NOT_CONNECTED'
  | 'ACCESS_REFUSED'
  | 'VHOST_REFUSED'
  | 'UNREACHABLE'
  | 'TLS'
  | 'PRECONDITION_FAILED'
  | 'NACK'
  | 'CONNECTION_LOST'
  | 'CONFIRM_TIMEOUT'
  | 'BLOCKED'
  | 'BUSY'
  | 'CLOSED'
  | 'BROKER';

/** Every failure the publisher reports or rejects with. Its message never holds a password. */
export class AmqpPublishError extends Error {
  override readonly name = 'AmqpPublishError';
  constructor(
    readonly kind: AmqpFailure,
    message: string,
    /** "host:port" it concerns, when one does */
    readonly host: string | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface Topology {
  exchange: { name: string; type: 'topic'; durable: boolean; autoDelete: boolean };
  queues: Array<{ name: string; routingKey: string; durable: boolean; autoDelete: boolean; arguments: Record<string, string | number> }>;
}

/**
 * What oslo declares for notifications (impl_rabbit.py: `Connection.durable`, `_get_queue_arguments` with
 * a queue TTL of 0). The notification agent declares the same queues as a consumer; any difference in
 * durable, auto_delete or x-queue-type makes RabbitMQ refuse the second declaration (406).
 */
export function notificationTopology(exchange: string, topics: readonly string[], o: RabbitOptions): Topology {
  const durable = o.amqp_durable_queues || o.rabbit_quorum_queue;
  const autoDelete = o.amqp_auto_delete;
  const args: Record<string, string | number> = {};
  if (o.rabbit_ha_queues) args['x-ha-policy'] = 'all';
  if (o.rabbit_quorum_queue) {
    args['x-queue-type'] = 'quorum';
    if (o.rabbit_quorum_delivery_limit) args['x-delivery-limit'] = o.rabbit_quorum_delivery_limit;
    if (o.rabbit_quroum_max_memory_length) args['x-max-in-memory-length'] = o.rabbit_quroum_max_memory_length;
    if (o.rabbit_quroum_max_memory_bytes) args['x-max-in-memory-bytes'] = o.rabbit_quroum_max_memory_bytes;
  }
  return {
    exchange: { name: exchange, type: 'topic', durable, autoDelete },
    queues: topics.map((t) => ({ name: routingKeyFor(t), routingKey: routingKeyFor(t), durable, autoDelete, arguments: { ...args } })),
  };
}

/**
 * oslo's reconnect pacing (kombu Connection._ensure_connection with oslo's rabbit_retry_interval,
 * rabbit_retry_backoff, rabbit_interval_max): the next host at once, and a pause only after a whole round
 * of hosts failed, growing by the backoff each round up to the maximum.
 */
export function osloReconnectDelayMs(attempt: number, hostCount: number, o: RabbitOptions): number {
  if (attempt % hostCount !== 0) return 0;
  const round = attempt / hostCount;
  return Math.min(o.rabbit_retry_interval + (round - 1) * o.rabbit_retry_backoff, o.rabbit_interval_max) * 1000;
}

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

export const hostLabel = (h: Pick<TransportHost, 'hostname' | 'port'>): string =>
  h.hostname.includes(':') ? `[${h.hostname}]:${h.port}` : `${h.hostname}:${h.port}`;

export interface ErrorContext {
  host: string;
  vhost: string;
  username: string;
  mechanism: string;
  passwords: readonly string[];
}

/** Which oslo option decides each queue/exchange property RabbitMQ may find inequivalent. */
const OPTION_FOR_ARG: Record<string, string> = {
  durable: 'amqp_durable_queues (durable is amqp_durable_queues or rabbit_quorum_queue)',
  auto_delete: 'amqp_auto_delete',
  'x-queue-type': 'rabbit_quorum_queue',
  'x-ha-policy': 'rabbit_ha_queues',
  'x-delivery-limit': 'rabbit_quorum_delivery_limit',
  'x-max-in-memory-length': 'rabbit_quroum_max_memory_length',
  'x-max-in-memory-bytes': 'rabbit_quroum_max_memory_bytes',
};

const UNREACHABLE_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused: nothing listens on that port',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  EPIPE: 'connection broken',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name could not be resolved (DNS temporarily failing)',
};

/**
 * Turns an amqplib or socket error into what an operator needs: which broker, what it means in
 * ceilometer.conf terms, what to do. Passwords are scrubbed from any text that came from outside.
 */
export function explainAmqpError(err: unknown, ctx: ErrorContext): AmqpPublishError {
  if (err instanceof AmqpPublishError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  let raw = e.message;
  for (const p of ctx.passwords) if (p.length >= 4) raw = raw.split(p).join('***');
  const { host } = ctx;
  const brokerText = /with message "(.*)"$/s.exec(raw)?.[1] ?? raw;

  if (typeof code === 'string' && code in UNREACHABLE_CODES) {
    return new AmqpPublishError('UNREACHABLE', `cannot reach RabbitMQ at ${host}: ${UNREACHABLE_CODES[code]} (${code}); check the host and port in transport_url and that the broker is up`, host, { cause: e });
  }
  if (raw === 'connect ETIMEDOUT') {
    return new AmqpPublishError('UNREACHABLE', `cannot reach RabbitMQ at ${host}: no AMQP handshake within the connection timeout; check the host and port in transport_url (and [oslo_messaging_rabbit] ssl for a TLS port)`, host, { cause: e });
  }
  if (raw.startsWith('Socket closed abruptly during opening handshake')) {
    return new AmqpPublishError('UNREACHABLE', `RabbitMQ at ${host} closed the connection during the AMQP handshake; is it an AMQP port, and does [oslo_messaging_rabbit] ssl match it (TLS or not)?`, host, { cause: e });
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') {
    return new AmqpPublishError('TLS', `RabbitMQ at ${host} does not speak TLS on that port, but [oslo_messaging_rabbit] ssl (or ?ssl= in transport_url) is on; use the broker's TLS port or turn ssl off`, host, { cause: e });
  }
  if ((typeof code === 'string' && /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED)/.test(code)) || /\bSSL\b|\bTLS\b|certificate/i.test(raw)) {
    // OpenSSL's messages run over several lines with source paths; the reason is what matters
    const reason = /:([^:\n]+):[^:\n]*\.c:\d+/.exec(raw)?.[1] ?? raw.split('\n')[0];
    return new AmqpPublishError('TLS', `TLS with RabbitMQ at ${host} failed: ${reason}${typeof code === 'string' ? ` (${code})` : ''}; check [oslo_messaging_rabbit] ssl_ca_file, ssl_cert_file, ssl_key_file and ssl_version`, host, { cause: e });
  }
  if (/^Handshake terminated by server: 403/.test(raw)) {
    return new AmqpPublishError('ACCESS_REFUSED', `ACCESS_REFUSED: RabbitMQ at ${host} refused the login of user "${ctx.username}" (${ctx.mechanism}); check transport_url user and password`, host, { cause: e });
  }
  if (/^SASL mechanism .* is not provided by the server/.test(raw)) {
    return new AmqpPublishError('ACCESS_REFUSED', `RabbitMQ at ${host} does not offer the ${ctx.mechanism} login method; check [oslo_messaging_rabbit] rabbit_login_method`, host, { cause: e });
  }
  if (raw.startsWith('Expected ConnectionOpenOk; got <ConnectionClose')) {
    // amqplib drops the close frame's text here, so "not found" (530) cannot be told from "no permission".
    return new AmqpPublishError('VHOST_REFUSED', `RabbitMQ at ${host} refused to open vhost "${ctx.vhost}" for user "${ctx.username}": vhost ${ctx.vhost} does not exist, or the user has no permissions on it; create it (rabbitmqctl add_vhost ${ctx.vhost}) and grant access (rabbitmqctl set_permissions -p ${ctx.vhost} ${ctx.username} ".*" ".*" ".*"), or fix the vhost in transport_url`, host, { cause: e });
  }
  if (code === 406 || brokerText.startsWith('PRECONDITION_FAILED')) {
    const m = /inequivalent arg '([^']+)' for (queue|exchange) '([^']*)' in vhost '([^']*)': received (.+) but current is (.+)$/s.exec(brokerText);
    if (m) {
      const [, arg = '', what = '', name = '', vhost = '', sent = '', current = ''] = m;
      const option = OPTION_FOR_ARG[arg];
      const fix = option
        ? `[oslo_messaging_rabbit] ${option} must match what ceilometer-agent-notification (and whoever declared it) uses, or the ${what} must be deleted so it is declared anew`
        : `the ${what} must be deleted so it is declared anew`;
      return new AmqpPublishError('PRECONDITION_FAILED', `406 PRECONDITION_FAILED: ${what} "${name}" in vhost "${vhost}" already exists with ${arg} = ${current}, but ceilopoll declares ${sent}; ${fix}`, host, { cause: e });
    }
    if (/invalid property 'auto-delete'/.test(brokerText)) {
      return new AmqpPublishError('PRECONDITION_FAILED', `406 PRECONDITION_FAILED: RabbitMQ at ${host} refuses an auto-delete quorum queue; with rabbit_quorum_queue = True set amqp_auto_delete = False (${brokerText})`, host, { cause: e });
    }
    return new AmqpPublishError('PRECONDITION_FAILED', `406 PRECONDITION_FAILED from RabbitMQ at ${host}: ${brokerText}`, host, { cause: e });
  }
  if (code === 403 || brokerText.startsWith('ACCESS_REFUSED')) {
    return new AmqpPublishError('ACCESS_REFUSED', `ACCESS_REFUSED: RabbitMQ at ${host} denies user "${ctx.username}" on vhost "${ctx.vhost}": ${brokerText}; grant configure/write permissions (rabbitmqctl set_permissions)`, host, { cause: e });
  }
  if (raw === 'Heartbeat timeout') {
    return new AmqpPublishError('CONNECTION_LOST', `RabbitMQ at ${host} missed its heartbeats ([oslo_messaging_rabbit] heartbeat_timeout_threshold); the connection is considered dead`, host, { cause: e });
  }
  if (raw === 'Unexpected close' || /^Connection closed/.test(raw)) {
    return new AmqpPublishError('CONNECTION_LOST', `connection to RabbitMQ at ${host} lost: ${brokerText}`, host, { cause: e });
  }
  return new AmqpPublishError('BROKER', `RabbitMQ at ${host}: ${brokerText}`, host, { cause: e });
}

export interface AmqpPublisherOptions {
  target: TransportTarget;
  /** `[DEFAULT] control_exchange`; default "ceilometer" */
  exchange?: string;
  /** `[oslo_messaging_notifications] topics`; default ["notifications"] */
  topics?: readonly string[];
  /** TCP connect plus AMQP handshake; default 5000 (kombu's connect_timeout) */
  connectionTimeoutMs?: number;
  /** how long publish() waits for the broker's confirms; default 30000 */
  confirmTimeoutMs?: number;
  /** how long close() waits for outstanding confirms; default 10000 */
  closeTimeoutMs?: number;
  /** publishes awaiting confirms beyond which publish() rejects at once; default 256 */
  maxInFlight?: number;
  /** shown by `rabbitmqctl list_connections name client_properties`; default "ceilopoll:<hostname>:<pid>" */
  connectionName?: string;
  /** ms to wait before reconnect attempt N (N counts from 1 after each success); default oslo's pacing */
  reconnectDelayMs?: (attempt: number) => number;
}

export interface AmqpPublisherEvents {
  /** channel open and topology declared: publish() works */
  connected: [info: { host: string; vhost: string }];
  /** the connection or its channel is gone; amqplib's recovery is reconnecting */
  disconnected: [reason: AmqpPublishError];
  /** a failed connection attempt or a broker-side problem; the publisher keeps retrying */
  error: [err: AmqpPublishError];
}

/** One connection's state, from the recovery `setup` hook until it is lost. */
interface Session {
  readonly model: ChannelModel;
  readonly host: string;
  channel: ConfirmChannel | null;
  lost: boolean;
  blocked: string | null;
  connectionError: Error | null;
  channelError: Error | null;
}

/**
 * Publishes notification bodies to RabbitMQ with publisher confirms. `start()` connects in the background
 * and keeps reconnecting (with failover across the target's hosts); `publish()` fails fast while not
 * connected, so the caller's spool keeps messages, and this class buffers nothing of its own.
 * Never throws from an event handler; 'error' is emitted only when someone listens (see `lastError`).
 */
export class AmqpPublisher extends EventEmitter<AmqpPublisherEvents> {
  readonly exchange: string;
  readonly routingKeys: readonly string[];
  readonly topology: Topology;
  private readonly target: TransportTarget;
  private readonly opts: AmqpPublisherOptions;
  private readonly url: Options.Connect;
  private readonly socketOptions: SocketOptions;
  private hostIndex = 0;
  private recovering: RecoveringChannelModel | null = null;
  private starting: Promise<void> | null = null;
  private session: Session | null = null;
  private lastSession: Session | null = null;
  private readonly pending = new Set<Promise<void>>();
  private closing = false;
  private closed: Promise<void> | null = null;
  private lastErr: AmqpPublishError | null = null;

  constructor(opts: AmqpPublisherOptions) {
    super();
    if (opts.target.hosts.length === 0) throw new RangeError('AmqpPublisher: the transport target has no hosts');
    const topics = opts.topics ?? DEFAULT_TOPICS;
    if (topics.length === 0) throw new RangeError('AmqpPublisher: [oslo_messaging_notifications] topics is empty');
    this.opts = opts;
    this.target = opts.target;
    this.exchange = opts.exchange ?? DEFAULT_EXCHANGE;
    this.routingKeys = topics.map(routingKeyFor);
    this.topology = notificationTopology(this.exchange, topics, opts.target.rabbit);

    // amqplib's recovery reconnects with the same URL object and socket options every time; failover
    // works by pointing this object (and the credentials below) at the next host before each retry.
    this.url = {
      protocol: opts.target.tls ? 'amqps' : 'amqp',
      // amqplib percent-decodes the vhost of a URL object (querystring.unescape)
      vhost: encodeURIComponent(opts.target.vhost),
      heartbeat: opts.target.rabbit.heartbeat_timeout_threshold,
    };
    this.pointAtHost();
    const mechanism = opts.target.rabbit.rabbit_login_method;
    this.socketOptions = {
      timeout: opts.connectionTimeoutMs ?? 5000,
      noDelay: true,
      clientProperties: { connection_name: opts.connectionName ?? `ceilopoll:${os.hostname()}:${process.pid}` },
      credentials: {
        mechanism,
        response: () => {
          const h = this.currentHost();
          if (mechanism === 'EXTERNAL') return amqpCredentials.external().response();
          const creds = mechanism === 'PLAIN' ? amqpCredentials.plain(h.username, h.password) : amqpCredentials.amqplain(h.username, h.password);
          return creds.response();
        },
      },
      ...tlsSocketOptions(opts.target),
    };
  }

  /** True while a channel is open with the topology declared and nothing has failed since. */
  get connected(): boolean {
    const s = this.session;
    return s !== null && !s.lost && s.channel !== null && !this.closing;
  }

  /** The last connection or broker failure (also when no 'error' listener saw it); null after a connect. */
  get lastError(): AmqpPublishError | null {
    return this.lastErr;
  }

  /** Starts connecting in the background; idempotent. Progress comes as events. */
  start(): void {
    if (this.starting || this.closing) return;
    const delay = this.opts.reconnectDelayMs ?? ((n: number) => osloReconnectDelayMs(n, this.target.hosts.length, this.target.rabbit));
    // amqplib gives up recovery for good when calculateDelay throws or returns a non-number: never let it.
    const safeDelay = (n: number): number => {
      try {
        const ms = delay(n);
        return Number.isFinite(ms) && ms >= 0 ? ms : 1000;
      } catch {
        return 1000;
      }
    };
    this.starting = connect(this.url, {
      ...this.socketOptions,
      recovery: {
        waitForConnect: false,
        maxRetries: Infinity,
        calculateDelay: safeDelay,
        setup: (model: ChannelModel) => this.setup(model),
      },
    }).then(
      (conn) => {
        this.recovering = conn;
        conn.on('connect', (model: ChannelModel) => this.onConnect(model));
        conn.on('connect-failed', (err: Error) => this.onAttemptFailed(err));
        conn.on('disconnect', (err: Error) => this.onDisconnect(err));
        conn.on('reconnect-failed', (err: Error) => this.report(new AmqpPublishError('CLOSED', `amqplib stopped reconnecting: ${err.message}`, null, { cause: err })));
        // Recovery re-emits connection errors here; an EventEmitter 'error' without a listener would throw.
        conn.on('error', () => undefined);
        conn.on('handler-error', (err: Error, event: string) => this.report(new AmqpPublishError('BROKER', `a listener of the "${event}" event threw: ${err.message}`, null, { cause: err })));
        if (this.closing) void conn.close();
      },
      (err: unknown) => this.report(explainAmqpError(err, this.errorContext())),
    );
  }

  /**
   * Publishes the body once per routing key (default: "<topic>.sample" for each topic) and resolves when
   * the broker has confirmed every one. Rejects with an AmqpPublishError on a nack, on a lost channel or
   * connection before the confirm, on a confirm timeout, or at once when not connected: the caller keeps
   * the message and retries (the notification agent drops an exact duplicate by its _unique_id).
   */
  publish(body: Buffer, routingKeys: readonly string[] = this.routingKeys): Promise<void> {
    const refuse = (kind: AmqpFailure, message: string): Promise<void> => Promise.reject(new AmqpPublishError(kind, message, this.session?.host ?? null));
    if (this.closing) return refuse('CLOSED', 'the AMQP publisher is closed');
    if (routingKeys.length === 0) return Promise.reject(new RangeError('publish: no routing keys'));
    const s = this.session;
    if (!s || s.lost || !s.channel) {
      const why = this.lastErr ? `: ${this.lastErr.message}` : this.starting ? ' yet' : ' (start() was not called)';
      return refuse('NOT_CONNECTED', `not connected to RabbitMQ${why}`);
    }
    if (s.blocked !== null) return refuse('BLOCKED', `RabbitMQ at ${s.host} has blocked publishing (${s.blocked}): a memory or disk alarm; publishing resumes when it clears`);
    if (this.pending.size >= (this.opts.maxInFlight ?? 256)) return refuse('BUSY', `${this.pending.size} publishes are already awaiting confirms from RabbitMQ at ${s.host}`);

    const p = this.publishOn(s, s.channel, body, routingKeys);
    this.pending.add(p);
    const forget = (): void => void this.pending.delete(p);
    p.then(forget, forget);
    return p;
  }

  /**
   * Waits for outstanding confirms, then closes the connection and stops recovery, all within
   * closeTimeoutMs: a broker that stops answering cannot hold a shutdown.
   */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      const deadline = Date.now() + (this.opts.closeTimeoutMs ?? 10_000);
      await withDeadline(Promise.allSettled([...this.pending]), deadline);
      await this.starting;
      const s = this.session;
      this.session = null;
      const closedInTime = await withDeadline(this.recovering?.close() ?? Promise.resolve(), deadline);
      if (!closedInTime && s) {
        // amqplib's close waits for the broker's close-ok without a timeout; drop the socket instead,
        // which also fails any confirm still awaited.
        const conn = s.model.connection as unknown as { stream?: { destroy(err?: Error): void } };
        conn.stream?.destroy(new Error('RabbitMQ did not answer connection.close in time'));
      }
      if (s && !s.lost) {
        s.lost = true;
        this.emitSafely('disconnected', new AmqpPublishError('CLOSED', 'the AMQP publisher was closed', s.host));
      }
    })();
    return this.closed;
  }

  private currentHost(): TransportHost {
    return this.target.hosts[this.hostIndex % this.target.hosts.length]!;
  }

  private pointAtHost(): void {
    const h = this.currentHost();
    this.url.hostname = h.hostname;
    this.url.port = h.port;
  }

  /** Round-robin to the next host (kombu's default failover strategy); a no-op with one host. */
  private nextHost(): void {
    this.hostIndex = (this.hostIndex + 1) % this.target.hosts.length;
    this.pointAtHost();
  }

  private errorContext(): ErrorContext {
    const h = this.currentHost();
    return {
      host: hostLabel(h),
      vhost: this.target.vhost,
      username: h.username,
      mechanism: this.target.rabbit.rabbit_login_method,
      passwords: this.target.hosts.map((x) => x.password),
    };
  }

  /** amqplib's recovery `setup` hook: runs on every new connection, before recovery reports it. */
  private async setup(model: ChannelModel): Promise<void> {
    const ctx = this.errorContext();
    const s: Session = { model, host: ctx.host, channel: null, lost: false, blocked: null, connectionError: null, channelError: null };
    model.on('error', (err: Error) => void (s.connectionError = err));
    model.on('blocked', (reason: string) => {
      s.blocked = reason || 'no reason given';
      this.report(new AmqpPublishError('BLOCKED', `RabbitMQ at ${s.host} blocked publishing: ${s.blocked} (a memory or disk alarm); publish() fails fast until it clears`, s.host));
    });
    model.on('unblocked', () => {
      s.blocked = null;
      if (this.lastErr?.kind === 'BLOCKED') this.lastErr = null;
    });
    try {
      const ch = await model.createConfirmChannel();
      ch.on('error', (err: Error) => void (s.channelError = err));
      ch.on('close', () => this.onChannelClose(s, ch));
      const { exchange, queues } = this.topology;
      await ch.assertExchange(exchange.name, exchange.type, { durable: exchange.durable, autoDelete: exchange.autoDelete, internal: false, arguments: {} });
      for (const q of queues) {
        await ch.assertQueue(q.name, { durable: q.durable, autoDelete: q.autoDelete, exclusive: false, arguments: q.arguments });
        await ch.bindQueue(q.name, exchange.name, q.routingKey, {});
      }
      s.channel = ch;
    } catch (err) {
      throw explainAmqpError(s.channelError ?? s.connectionError ?? err, ctx);
    }
    // close() ran meanwhile: recovery closes this connection when setup returns
    if (this.closing) return;
    this.session = s;
    this.lastSession = s;
  }

  private onConnect(model: ChannelModel): void {
    const s = this.session;
    if (!s || s.model !== model || this.closing) return;
    this.lastErr = null;
    this.emitSafely('connected', { host: s.host, vhost: this.target.vhost });
  }

  private onAttemptFailed(err: Error): void {
    if (this.closing) return;
    this.report(explainAmqpError(err, this.errorContext()));
    this.nextHost();
  }

  private onDisconnect(err: Error): void {
    const s = this.lastSession;
    if (s) this.markLost(s, s.connectionError ?? err);
    this.nextHost();
  }

  /**
   * The channel closed. If its connection is still up (a channel error such as a deleted exchange, 404),
   * recovery would never notice: close the connection so recovery reconnects and `setup` re-declares.
   */
  private onChannelClose(s: Session, ch: ConfirmChannel): void {
    if (s.channel !== ch) return; // closed during setup: setup's own failure reports it
    s.channel = null;
    if (this.closing) return;
    this.markLost(s, s.connectionError ?? s.channelError ?? new Error('channel closed'));
    s.model.close().catch(() => undefined);
  }

  private markLost(s: Session, reason: Error): void {
    if (this.session === s) this.session = null;
    if (s.lost || this.closing) return;
    s.lost = true;
    const err = explainAmqpError(reason, { ...this.errorContext(), host: s.host });
    const lost = err.kind === 'BROKER' ? new AmqpPublishError('CONNECTION_LOST', `connection to RabbitMQ at ${s.host} lost: ${err.message}`, s.host, { cause: err }) : err;
    this.lastErr = lost;
    this.emitSafely('disconnected', lost);
  }

  private async publishOn(s: Session, ch: ConfirmChannel, body: Buffer, routingKeys: readonly string[]): Promise<void> {
    const confirms = routingKeys.map(
      (rk) =>
        new Promise<void>((resolve, reject) => {
          try {
            ch.publish(this.exchange, rk, body, PUBLISH_OPTIONS, (err: unknown) => (err ? reject(asError(err)) : resolve()));
          } catch (err) {
            reject(asError(err));
          }
        }),
    );
    const timeoutMs = this.opts.confirmTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
      timer.unref();
    });
    const settled = await Promise.race([Promise.allSettled(confirms), timedOut]);
    clearTimeout(timer);
    if (settled === 'timeout') {
      throw new AmqpPublishError('CONFIRM_TIMEOUT', `RabbitMQ at ${s.host} did not confirm within ${timeoutMs} ms; the message may or may not have been delivered, keep it and retry`, s.host);
    }
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      const rk = routingKeys[i] ?? '';
      const reason: unknown = r.reason;
      if (reason instanceof Error && reason.message === 'message nacked') {
        throw new AmqpPublishError('NACK', `RabbitMQ at ${s.host} nacked the message for exchange "${this.exchange}" routing key "${rk}" (it could not take responsibility for it, e.g. a queue with overflow=reject-publish is full); keep it and retry`, s.host, { cause: reason });
      }
      const why = s.connectionError ?? s.channelError ?? (reason instanceof Error ? reason : new Error(String(reason)));
      const detail = explainAmqpError(why, { ...this.errorContext(), host: s.host });
      throw new AmqpPublishError('CONNECTION_LOST', `the channel to RabbitMQ at ${s.host} closed before the broker confirmed the message for routing key "${rk}" (${detail.message}); it may or may not have been delivered, keep it and retry`, s.host, { cause: detail });
    });
  }

  private report(err: AmqpPublishError): void {
    this.lastErr = err;
    this.emitSafely('error', err);
  }

  /** Emits without letting a listener's exception reach amqplib's internals (or an unhandled 'error'). */
  private emitSafely<K extends keyof AmqpPublisherEvents>(event: K, ...args: AmqpPublisherEvents[K]): void {
    if (event === 'error' && this.listenerCount('error') === 0) return;
    try {
      (this.emit as (e: K, ...a: AmqpPublisherEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      if (event !== 'error' && this.listenerCount('error') > 0) {
        const e = err instanceof Error ? err : new Error(String(err));
        this.emitSafely('error', new AmqpPublishError('BROKER', `a listener of the "${event}" event threw: ${e.message}`, null, { cause: e }));
      }
    }
  }
}

/** Resolves true when `p` settles before the deadline (epoch ms), false otherwise; never rejects. */
async function withDeadline(p: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))));
  const result = await Promise.race([p.then(() => true as const, () => true as const), late]);
  clearTimeout(timer);
  return result;
}

/** Node TLS options from oslo's ssl_* settings (see TlsSettings); the files are read once, here. */
function tlsSocketOptions(target: TransportTarget): SocketOptions {
  const t = target.tls;
  if (!t) return {};
  const read = (option: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new AmqpPublishError('TLS', `[oslo_messaging_rabbit] ${option} "${file}": cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, null, { cause: err });
    }
  };
  const out: SocketOptions = { rejectUnauthorized: t.verifyPeer };
  if (t.caFile) out.ca = read('ssl_ca_file', t.caFile);
  if (t.certFile) {
    out.cert = read('ssl_cert_file', t.certFile);
    out.key = t.keyFile ? read('ssl_key_file', t.keyFile) : out.cert;
  }
  if (t.minVersion) out.minVersion = t.minVersion;
  if (t.maxVersion) out.maxVersion = t.maxVersion;
  // py-amqp 5.1.1 passes no server_hostname, so Zed never matches the certificate against the host name.
  if (!t.verifyHostname) out.checkServerIdentity = () => undefined;
  return out;
}
