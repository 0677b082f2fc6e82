// One socket's lifetime: serials, pending calls, replies routed by serial, MESSAGEs routed by
// program and procedure (events carry serial 1, keepalives serial 0: never route those by serial),
// per-call timeouts, keepalive. When the socket goes, every pending call fails at once with a
// ConnectionClosedError and the object is finished: a reconnect makes a new Connection
// (go-libvirt's reuse of one object across reconnects raced; see docs/libvirt-rpc.md §4).

import { EventEmitter } from 'node:events';
import net from 'node:net';

import { CallAbandonedError, CallTimeoutError, ConnectionClosedError, LibvirtError, ProtocolError } from './errors.js';
import { decodeRemoteError, procName } from './protocol.js';
import {
  FrameSplitter,
  KEEPALIVE_PROGRAM,
  MessageStatus,
  MessageType,
  PROTOCOL_VERSION,
  REMOTE_PROGRAM,
  encodeHeader,
  type Packet,
} from './wire.js';

const KEEPALIVE_PING = 1;
const KEEPALIVE_PONG = 2;

export interface ConnectionOptions {
  /** Per-call timeout in ms (0 = none). A call may override it. */
  callTimeoutMs?: number;
  /**
   * Client-side liveness: when nothing has arrived for `keepaliveIntervalMs`, send a PING; when
   * nothing at all has arrived for `keepaliveIntervalMs * (keepaliveCount + 1)`, declare the peer
   * dead and close. Catches a hung daemon, which a closed-socket check never would. 0 = off.
   */
  keepaliveIntervalMs?: number;
  keepaliveCount?: number;
  /** connect() timeout in ms */
  connectTimeoutMs?: number;
  /**
   * Told once about every call when it settles: its procedure, how long it took and how it ended,
   * for latency metrics. Unset: nothing is called. If it throws, the error
   * is swallowed: an observer must not change what the caller sees.
   */
  onCall?: CallObserver;
}

/**
 * How a call ended: `ok` (a reply), `timeout` (we stopped waiting: CallTimeoutError, or
 * CallAbandonedError when the caller gave up on it), `error` (anything else: an error reply, a
 * protocol error, the connection closing, or a call made after it closed).
 */
export type CallOutcome = 'ok' | 'error' | 'timeout';
export type CallObserver = (procedure: number, durationMs: number, outcome: CallOutcome) => void;

interface Pending {
  proc: number;
  resolve: (payload: Buffer) => void;
  reject: (err: Error) => void;
  /** performance.now() when the call was made */
  started: number;
  /** the call's timeout in ms (0 = none) */
  timeoutMs: number;
  /** performance.now() after which the call times out; Infinity without a timeout */
  deadline: number;
  /** removes the abort listener, when the caller gave a signal */
  unlisten: (() => void) | undefined;
}

export interface ConnectionEvents {
  /** A remote-program MESSAGE (a domain event): procedure number and raw payload. */
  event: [proc: number, payload: Buffer];
  /** The connection ended; `err` says why (undefined for a close we asked for). */
  close: [err: Error | undefined];
}

export class Connection extends EventEmitter<ConnectionEvents> {
  private readonly splitter = new FrameSplitter();
  private readonly pending = new Map<number, Pending>();
  /** serials of calls we gave up on (timed out, abandoned) that libvirtd has not answered yet */
  private readonly gaveUpOn = new Set<number>();
  private nextSerial = 1;
  private closedWith: Error | null = null;
  private lastReceived = Date.now();
  private lastPingSent = 0;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  /** the default per-call timeout in ms (0 = none) */
  readonly callTimeoutMs: number;
  private readonly onCall: CallObserver | undefined;

  /** Packets of the keepalive program received and sent, for tests and diagnostics. */
  readonly keepaliveStats = { pingsReceived: 0, pongsSent: 0, pingsSent: 0, pongsReceived: 0 };
  private droppedReplies = 0;

  private constructor(
    private readonly socket: net.Socket,
    readonly path: string,
    opts: ConnectionOptions,
  ) {
    super();
    this.callTimeoutMs = opts.callTimeoutMs ?? 30_000;
    this.onCall = opts.onCall;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.finish(new ConnectionClosedError(`libvirt socket ${path}: ${err.message}`)));
    socket.on('close', () => this.finish(new ConnectionClosedError(`libvirt socket ${path} closed by the daemon`)));
    const interval = opts.keepaliveIntervalMs ?? 0;
    if (interval > 0) this.startKeepalive(interval, opts.keepaliveCount ?? 5);
  }

  /** Connects to a libvirt UNIX socket. Rejects with ConnectionClosedError naming the path. */
  static open(path: string, opts: ConnectionOptions = {}): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection({ path });
      const timeoutMs = opts.connectTimeoutMs ?? 10_000;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ConnectionClosedError(`cannot connect to libvirt socket ${path}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const hint =
          err.code === 'ENOENT'
            ? ' (is libvirtd running? the socket file does not exist)'
            : err.code === 'EACCES'
              ? ' (permission denied: run as root or use the read-only socket)'
              : err.code === 'ECONNREFUSED'
                ? ' (nothing listening: libvirtd is not running)'
                : '';
        reject(new ConnectionClosedError(`cannot connect to libvirt socket ${path}: ${err.message}${hint}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.setNoDelay(true);
        resolve(new Connection(socket, path, opts));
      });
    });
  }

  get closed(): boolean {
    return this.closedWith !== null;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Replies whose call was no longer pending (it had timed out or been abandoned): dropped without
   * harm to the connection. Counted for tests and diagnostics.
   */
  get lateReplies(): number {
    return this.droppedReplies;
  }

  /**
   * Calls we gave up on (timed out or abandoned) that libvirtd has not answered yet. libvirtd still
   * works on each, and each holds one of the few requests it serves a client at once
   * (`max_client_requests`, 5 by default): with all of them taken it reads nothing more from us.
   * Forgotten when the late reply comes or the connection closes.
   */
  get unanswered(): number {
    return this.gaveUpOn.size;
  }

  /** Milliseconds since the last packet from the daemon. */
  get idleMs(): number {
    return Date.now() - this.lastReceived;
  }

  /**
   * Sends one CALL of the remote program and resolves with the reply's payload. Rejects with
   * LibvirtError (the daemon's error reply), CallTimeoutError or ConnectionClosedError, or
   * CallAbandonedError once `signal` aborts while the call is pending: the call is then forgotten
   * here (libvirtd may still be working on it) and its reply, should it come, is dropped.
   */
  call(proc: number, args: Buffer = Buffer.alloc(0), timeoutMs = this.callTimeoutMs, signal?: AbortSignal): Promise<Buffer> {
    const started = performance.now();
    if (this.closedWith) {
      this.observe(proc, started, 'error');
      return Promise.reject(new ConnectionClosedError(`${procName(proc)}: ${this.closedWith.message}`));
    }
    if (signal?.aborted) {
      this.observe(proc, started, 'timeout');
      return Promise.reject(new CallAbandonedError(`${procName(proc)}: abandoned before it was sent`));
    }
    const serial = this.nextSerial;
    let header: Buffer;
    try {
      header = encodeHeader({ prog: REMOTE_PROGRAM, vers: PROTOCOL_VERSION, proc, type: MessageType.CALL, serial, status: MessageStatus.OK }, args.length);
    } catch (err) {
      this.observe(proc, started, 'error');
      return Promise.reject(err instanceof Error ? err : new Error(String(err))); // too large for libvirt: nothing was sent
    }
    this.nextSerial = this.nextSerial >= 0xffffffff ? 1 : this.nextSerial + 1;
    return new Promise<Buffer>((resolve, reject) => {
      const entry: Pending = {
        proc,
        resolve,
        reject,
        started,
        timeoutMs,
        deadline: timeoutMs > 0 ? started + timeoutMs : Number.POSITIVE_INFINITY,
        unlisten: undefined,
      };
      if (signal) {
        // Gives up on the call: its serial leaves `pending`, and a reply that still comes is
        // dropped in route() (counted in lateReplies), never taken for a protocol error.
        const onAbort = (): void =>
          this.giveUp(serial, entry, new CallAbandonedError(`${procName(proc)}: abandoned by the caller after ${Math.round(performance.now() - started)} ms; a late reply will be dropped`));
        signal.addEventListener('abort', onAbort, { once: true });
        entry.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      this.pending.set(serial, entry);
      if (entry.deadline < this.timerDue) this.armDeadline(entry.deadline);
      this.write(header, args);
    });
  }

  // Call timeouts: one timer for the connection, due at the earliest deadline of the pending calls,
  // not one per call. A cycle on a driver without the bulk balloon group makes a call per domain,
  // and 951 setTimeout/clearTimeout pairs took 1.4-8.5 ms of CPU after an idle interval here.
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** the deadline the timer is set for; Infinity when it is not set */
  private timerDue = Number.POSITIVE_INFINITY;

  private armDeadline(deadline: number): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.timerDue = deadline;
    // Node's timers never fire early by its own clock, but that clock can lag performance.now() by
    // a fraction of a ms: expire() sets the timer again for what is left.
    this.deadlineTimer = setTimeout(() => this.expire(), Math.max(1, Math.ceil(deadline - performance.now())));
  }

  private disarmDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.timerDue = Number.POSITIVE_INFINITY;
  }

  /** The timer is due: times out every call past its deadline, and sets the timer for the next one. */
  private expire(): void {
    this.deadlineTimer = undefined;
    this.timerDue = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [serial, entry] of this.pending) {
      if (entry.deadline <= now) {
        this.giveUp(serial, entry, new CallTimeoutError(`${procName(entry.proc)}: no reply from libvirtd within ${entry.timeoutMs} ms`));
      } else if (entry.deadline < next) {
        next = entry.deadline;
      }
    }
    if (next < this.timerDue) this.armDeadline(next);
  }

  /** Timed out or abandoned: forgotten here, and its late reply, should it come, dropped. */
  private giveUp(serial: number, entry: Pending, err: CallTimeoutError | CallAbandonedError): void {
    if (this.pending.get(serial) !== entry) return; // already settled
    this.gaveUpOn.add(serial);
    this.settle(serial, entry, 'timeout');
    entry.reject(err);
  }

  /** Takes a call out of `pending` and tells the observer; the caller then resolves or rejects it. */
  private settle(serial: number, entry: Pending, outcome: CallOutcome): void {
    this.pending.delete(serial);
    entry.unlisten?.();
    if (this.pending.size === 0 && this.deadlineTimer) this.disarmDeadline();
    this.observe(entry.proc, entry.started, outcome);
  }

  private observe(proc: number, started: number, outcome: CallOutcome): void {
    if (!this.onCall) return;
    try {
      this.onCall(proc, performance.now() - started, outcome);
    } catch {
      // see ConnectionOptions.onCall
    }
  }

  /** Sends a keepalive PING now (a cheap liveness probe; the daemon answers even without opt-in). */
  ping(): void {
    this.lastPingSent = Date.now();
    this.keepaliveStats.pingsSent++;
    this.sendKeepalive(KEEPALIVE_PING);
  }

  /** Closes the socket; pending calls fail with ConnectionClosedError. */
  close(reason = 'connection closed by the client'): void {
    this.finish(new ConnectionClosedError(reason), true);
    this.flush();
    this.socket.end();
    this.socket.destroy();
  }

  // Packets written in one go of the event loop (a cycle's hundreds of per-domain calls) leave in
  // one socket write at its end, not one write(2) each. Headers and payloads are queued as they
  // are and copied once, into that write.
  private outbox: Buffer[] = [];

  private write(header: Buffer, payload?: Buffer): void {
    if (this.socket.destroyed) return;
    if (this.outbox.push(header) === 1) queueMicrotask(() => this.flush());
    if (payload !== undefined && payload.length > 0) this.outbox.push(payload);
  }

  private flush(): void {
    const out = this.outbox;
    if (out.length === 0) return;
    this.outbox = [];
    if (!this.socket.destroyed) this.socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
  }

  private sendKeepalive(proc: number): void {
    this.write(encodeHeader({
      prog: KEEPALIVE_PROGRAM,
      vers: PROTOCOL_VERSION,
      proc,
      type: MessageType.MESSAGE,
      serial: 0,
      status: MessageStatus.OK,
    }, 0));
  }

  private onData(chunk: Buffer): void {
    this.lastReceived = Date.now();
    let packets: Packet[];
    try {
      packets = this.splitter.push(chunk);
    } catch (err) {
      // Framing is lost for good: there is no next packet boundary to find.
      this.finish(err as ProtocolError);
      this.socket.destroy();
      return;
    }
    for (const p of packets) {
      try {
        this.route(p);
      } catch (err) {
        this.finish(err instanceof ProtocolError ? err : new ProtocolError(String(err)));
        this.socket.destroy();
        return;
      }
    }
  }

  private route(p: Packet): void {
    const h = p.header;
    if (h.prog === KEEPALIVE_PROGRAM) {
      if (h.proc === KEEPALIVE_PING) {
        this.keepaliveStats.pingsReceived++;
        this.keepaliveStats.pongsSent++;
        this.sendKeepalive(KEEPALIVE_PONG);
      } else if (h.proc === KEEPALIVE_PONG) {
        this.keepaliveStats.pongsReceived++;
      }
      return;
    }
    if (h.prog !== REMOTE_PROGRAM) {
      throw new ProtocolError(`packet for unknown program 0x${h.prog.toString(16)} (procedure ${h.proc})`);
    }
    if (h.type === MessageType.MESSAGE) {
      this.emit('event', h.proc, p.payload);
      return;
    }
    if (h.type !== MessageType.REPLY) {
      throw new ProtocolError(`unexpected packet type ${h.type} for ${procName(h.proc)} (this client makes no streams)`);
    }
    const entry = this.pending.get(h.serial);
    if (!entry) {
      // the reply to a call that timed out or was abandoned: dropped, the connection is fine
      this.droppedReplies++;
      this.gaveUpOn.delete(h.serial);
      return;
    }
    if (h.proc !== entry.proc) {
      this.settle(h.serial, entry, 'error');
      entry.reject(new ProtocolError(`reply serial ${h.serial} is for ${procName(h.proc)}, but the call was ${procName(entry.proc)}`));
      return;
    }
    if (h.status === MessageStatus.OK) {
      this.settle(h.serial, entry, 'ok');
      entry.resolve(p.payload);
    } else if (h.status === MessageStatus.ERROR) {
      this.settle(h.serial, entry, 'error');
      try {
        entry.reject(new LibvirtError(decodeRemoteError(p.payload), procName(entry.proc)));
      } catch (err) {
        entry.reject(err as Error);
      }
    } else {
      this.settle(h.serial, entry, 'error');
      entry.reject(new ProtocolError(`${procName(entry.proc)}: unexpected reply status ${h.status}`));
    }
  }

  private startKeepalive(intervalMs: number, count: number): void {
    const deadMs = intervalMs * (count + 1);
    // Checked once per interval, as libvirt's own client does: a ping goes out after one to two
    // intervals of silence, and a dead peer is declared within an interval of `deadMs`. A check
    // every second instead woke an idle agent once a second for nothing (a wake-up costs about
    // 0.15 ms of CPU in a VM: a bare Node process with a 100 ms timer used 1.5 ms a second).
    const tick = Math.max(10, intervalMs);
    this.keepaliveTimer = setInterval(() => {
      const idle = this.idleMs;
      if (idle >= deadMs) {
        this.finish(new ConnectionClosedError(`libvirtd at ${this.path} sent nothing for ${idle} ms (keepalive lost): treating it as dead`));
        this.socket.destroy();
      } else if (idle >= intervalMs && Date.now() - this.lastPingSent >= intervalMs) {
        this.ping();
      }
    }, tick);
    this.keepaliveTimer.unref();
  }

  private finish(err: Error, requested = false): void {
    if (this.closedWith) return;
    this.closedWith = err;
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    const pending = [...this.pending];
    this.gaveUpOn.clear();
    for (const [serial, entry] of pending) {
      this.settle(serial, entry, 'error');
      entry.reject(new ConnectionClosedError(`${procName(entry.proc)}: ${err.message}`));
    }
    this.emit('close', requested ? undefined : err);
  }
}
