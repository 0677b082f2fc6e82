// Keeps a LibvirtClient connected: dials, re-dials with capped exponential backoff and jitter after
// libvirtd dies or restarts, re-registers the event callbacks (their ids die with the connection),
// and tells the layers above through 'connected' / 'disconnected' so they can resync: events sent
// while we were away are lost for good.

import { EventEmitter } from 'node:events';

import { LibvirtClient, type ClientOptions } from './client.js';
import { ConnectionClosedError } from './errors.js';
import { EventId, type LifecycleEventMsg, type MetadataChangeEventMsg } from './protocol.js';

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** 0..1: the delay is scaled by a random factor in [1 - jitter, 1] */
  jitter: number;
}

export interface SupervisorOptions extends ClientOptions {
  backoff?: Partial<BackoffOptions>;
  /** event ids to register on every connection; default lifecycle and metadata change */
  events?: number[];
  /** for tests: a deterministic random source */
  random?: () => number;
}

export type SupervisorState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'stopped';

export interface SupervisorEvents {
  connected: [LibvirtClient];
  disconnected: [Error];
  /** a connection attempt failed; the next one comes after `delayMs` */
  retry: [err: Error, attempt: number, delayMs: number];
  lifecycle: [LifecycleEventMsg];
  metadataChange: [MetadataChangeEventMsg];
  eventError: [Error];
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 30_000, factor: 2, jitter: 0.2 };

/** Delay before reconnect attempt `attempt` (1-based): initial * factor^(attempt-1), capped, jittered. */
export function backoffDelay(attempt: number, b: BackoffOptions, random: () => number = Math.random): number {
  const raw = Math.min(b.maxMs, b.initialMs * b.factor ** Math.max(0, attempt - 1));
  return Math.round(raw * (1 - b.jitter * random()));
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  private current: LibvirtClient | null = null;
  private stateValue: SupervisorState = 'idle';
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly backoff: BackoffOptions;
  private readonly random: () => number;
  /** how many times a connection was made; 1 after the first */
  connects = 0;
  lastError: Error | null = null;

  constructor(private readonly opts: SupervisorOptions = {}) {
    super();
    this.backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.random = opts.random ?? Math.random;
  }

  private get stopped(): boolean {
    return this.stateValue === 'stopped';
  }

  get state(): SupervisorState {
    return this.stateValue;
  }

  /** The live client, or null while disconnected. */
  get client(): LibvirtClient | null {
    return this.current && !this.current.closed ? this.current : null;
  }

  /** The live client; throws ConnectionClosedError (with the last error) while disconnected. */
  requireClient(): LibvirtClient {
    const c = this.client;
    if (!c) throw new ConnectionClosedError(`not connected to libvirtd${this.lastError ? `: ${this.lastError.message}` : ''}`);
    return c;
  }

  start(): void {
    if (this.stateValue !== 'idle') return;
    void this.dial();
  }

  /** Resolves with the client once connected (at once if it is). */
  waitConnected(timeoutMs = 30_000): Promise<LibvirtClient> {
    const c = this.client;
    if (c) return Promise.resolve(c);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('connected', onConnected);
        reject(new ConnectionClosedError(`no connection to libvirtd within ${timeoutMs} ms${this.lastError ? `: ${this.lastError.message}` : ''}`));
      }, timeoutMs);
      const onConnected = (client: LibvirtClient): void => {
        clearTimeout(timer);
        resolve(client);
      };
      this.once('connected', onConnected);
    });
  }

  async stop(): Promise<void> {
    this.stateValue = 'stopped';
    if (this.timer) clearTimeout(this.timer);
    const c = this.current;
    this.current = null;
    if (c) await c.close();
  }

  private async dial(): Promise<void> {
    if (this.stateValue === 'stopped') return;
    this.stateValue = 'connecting';
    let client: LibvirtClient | null = null;
    try {
      client = await LibvirtClient.connect(this.opts);
      if (this.stopped) {
        await client.close();
        return;
      }
      client.on('lifecycle', (ev) => this.emit('lifecycle', ev));
      client.on('metadataChange', (ev) => this.emit('metadataChange', ev));
      client.on('eventError', (err) => this.emit('eventError', err));
      for (const id of this.opts.events ?? [EventId.LIFECYCLE, EventId.METADATA_CHANGE]) {
        await client.registerEvent(id);
      }
    } catch (err) {
      client?.conn.close('giving up this connection attempt');
      this.scheduleRetry(err as Error);
      return;
    }
    this.attempt = 0;
    this.connects++;
    this.lastError = null;
    this.current = client;
    this.stateValue = 'connected';
    client.once('close', (err) => this.onClose(client, err));
    // the socket may have died between the handshake and the 'close' listener
    if (client.closed) {
      this.onClose(client, new ConnectionClosedError('connection lost right after the handshake'));
      return;
    }
    this.emit('connected', client);
  }

  private onClose(client: LibvirtClient, err: Error | undefined): void {
    if (this.current !== client) return;
    this.current = null;
    if (this.stateValue === 'stopped') return;
    const why = err ?? new ConnectionClosedError('connection closed');
    this.lastError = why;
    this.emit('disconnected', why);
    this.scheduleRetry(why, true);
  }

  private scheduleRetry(err: Error, immediateFirst = false): void {
    if (this.stateValue === 'stopped') return;
    this.lastError = err;
    this.attempt++;
    // After a working connection drops, the first retry is quick: a restarting libvirtd is back in ~0.1 s.
    const delay = immediateFirst && this.attempt === 1 ? 0 : backoffDelay(this.attempt, this.backoff, this.random);
    this.stateValue = 'backoff';
    this.emit('retry', err, this.attempt, delay);
    this.timer = setTimeout(() => void this.dial(), delay);
  }
}
