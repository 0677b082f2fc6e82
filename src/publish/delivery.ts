// Delivery: between "notification built" and "notification confirmed by the broker". Every
// notification is written to the durable spool first (write-ahead), then published from the
// spool's head in order, a few at a time, and removed only when the broker has confirmed it. A
// broker outage, a reconnect or a crash (even SIGKILL) therefore loses nothing: what is in the
// spool is sent again, in order, with its original bytes and so its original oslo `_unique_id`,
// which the notification agent uses to drop the duplicates a replay can make.
//
// The in-flight window is kept under 16 because the notification agent remembers only the last 16
// `_unique_id`s it saw (ceilometer-wire.md §4.3): a replay after a connection loss resends at most
// the window, so its duplicates stay within what the agent can recognise.

import { EventEmitter } from 'node:events';

export interface SpoolLike {
  append(meter: string, body: Buffer): number;
  peek(limit: number, afterSeq?: number): Array<{ seq: number; meter: string; body: Buffer; createdAt: number }>;
  remove(seq: number): boolean;
  /** several at once, in one transaction (optional: remove() one by one otherwise) */
  removeMany?(seqs: readonly number[]): number;
  readonly depth: number;
}

export interface PublisherLike extends EventEmitter {
  readonly connected: boolean;
  publish(body: Buffer): Promise<void>;
}

export interface DeliveryStats {
  submitted: number;
  confirmed: number;
  /** publish attempts that failed (each is retried) */
  failedAttempts: number;
  /** notifications that could not even be written to the spool (disk full, ...) */
  spoolErrors: number;
  /** of those, sent straight to the broker (it was connected) and confirmed */
  unspooledConfirmed: number;
  /** of those, lost: the broker was away, or did not confirm the direct send */
  unspooledLost: number;
}

export interface DeliveryEvents {
  confirmed: [seq: number, meter: string];
  /**
   * A notification could not be spooled; this says why. `direct`: it is being sent without the
   * spool (see `unspooled`); otherwise it is lost. Also when a confirmed entry cannot be removed
   * (then `direct` is false and nothing is lost: it is sent again and deduplicated).
   */
  spoolError: [err: Error, meter: string, direct: boolean];
  /** how a notification sent without the spool ended: null when confirmed, else the error (lost) */
  unspooled: [meter: string, err: Error | null];
  /** a publish failed; the notification stays in the spool and is retried */
  publishFailed: [err: Error];
  /** the spool became empty */
  drained: [];
}

export class Delivery extends EventEmitter<DeliveryEvents> {
  private inFlight = new Map<number, Promise<void>>();
  /** highest seq handed to the publisher in the current pass; the next pass starts after it */
  private cursor = 0;
  private pumping = false;
  /** wakes a pass that waits for confirms when there is new work or room */
  private wake: (() => void) | null = null;
  private closed = false;
  /** confirmed entries waiting to be taken out of the spool, all together at the end of the event-loop turn */
  private confirmedQueue: Array<{ seq: number; meter: string }> = [];
  readonly stats: DeliveryStats = { submitted: 0, confirmed: 0, failedAttempts: 0, spoolErrors: 0, unspooledConfirmed: 0, unspooledLost: 0 };

  constructor(
    private readonly spool: SpoolLike,
    private readonly publisher: PublisherLike,
    private readonly opts: { window?: number } = {},
  ) {
    super();
    const w = opts.window ?? 8;
    if (w < 1 || w > 15) throw new RangeError(`delivery window ${w}: must be 1..15 (the notification agent remembers 16 unique ids)`);
    publisher.on('connected', () => this.kick());
  }

  /** notifications sent and not yet confirmed */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * Spools a notification and starts sending it. Never throws: a spool failure is reported, and
   * the notification is then sent without the spool if the broker is there (not kept if that send
   * fails: `unspooled` says which), rather than lost outright.
   */
  submit(meter: string, body: Buffer): void {
    try {
      this.spool.append(meter, body);
      this.stats.submitted++;
    } catch (err) {
      this.stats.spoolErrors++;
      const direct = !this.closed && this.publisher.connected;
      this.emit('spoolError', err as Error, meter, direct);
      if (!direct) {
        this.stats.unspooledLost++;
        return;
      }
      this.publisher.publish(body).then(
        () => {
          this.stats.unspooledConfirmed++;
          this.emit('unspooled', meter, null);
        },
        (e: unknown) => {
          this.stats.unspooledLost++;
          this.emit('unspooled', meter, e instanceof Error ? e : new Error(String(e)));
        },
      );
      return;
    }
    this.kick();
  }

  /** Starts (or continues) sending from the spool's head; a no-op while disconnected. */
  kick(): void {
    if (this.pumping) {
      this.wake?.(); // a pass is waiting for confirms: let it take the new entry now
      return;
    }
    if (this.closed || !this.publisher.connected) return;
    this.pumping = true;
    void this.pump().then((failed) => {
      this.pumping = false;
      if (this.closed || !this.publisher.connected) return; // the next 'connected' starts a new pass
      if (failed) {
        // Still connected after a failure (a nack, a channel error): retry after a pause, not in a spin.
        setTimeout(() => this.kick(), 1000).unref();
      } else if (this.spool.peek(1, this.cursor).length > 0) {
        this.kick(); // submitted while the pass was finishing
      }
    });
  }

  /**
   * Waits until the spool is empty, or `timeoutMs` passes, or the broker is unreachable. Whatever
   * is left stays in the spool for the next start. Resolves with the number left.
   */
  async drain(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.spool.depth > 0 && Date.now() < deadline && this.publisher.connected) {
      this.kick();
      await new Promise((r) => setTimeout(r, 20));
    }
    await Promise.allSettled([...this.inFlight.values()]);
    this.removeConfirmed();
    return this.spool.depth;
  }

  close(): void {
    this.removeConfirmed();
    this.closed = true;
  }

  /** Takes the confirmed entries out of the spool, then says so ('confirmed'). */
  private removeConfirmed(): void {
    const done = this.confirmedQueue;
    if (done.length === 0) return;
    this.confirmedQueue = [];
    try {
      // entries dropped (bounds) meanwhile are simply not there: harmless
      if (this.spool.removeMany) this.spool.removeMany(done.map((d) => d.seq));
      else for (const d of done) this.spool.remove(d.seq);
    } catch (err) {
      // Confirmed but still in the spool (disk full, I/O): they will be sent again, and the
      // notification agent drops the duplicates by their _unique_id.
      for (const d of done) this.emit('spoolError', err as Error, d.meter, false);
    }
    for (const d of done) this.emit('confirmed', d.seq, d.meter);
  }

  /** One pass from the spool's head; resolves true when a publish failed. */
  private async pump(): Promise<boolean> {
    const window = this.opts.window ?? 8;
    // Each pass starts at the head: anything not confirmed in an earlier pass is sent again, in order.
    this.cursor = 0;
    const state = { failed: false };
    while (!this.closed && !state.failed && this.publisher.connected) {
      const room = window - this.inFlight.size;
      const batch = room > 0 ? this.spool.peek(room, this.cursor) : [];
      if (batch.length === 0) {
        if (this.inFlight.size === 0) break;
        await Promise.race([...this.inFlight.values(), new Promise<void>((r) => (this.wake = r))]);
        this.wake = null;
        continue;
      }
      for (const entry of batch) {
        this.cursor = entry.seq;
        const p = this.publisher
          .publish(entry.body)
          .then(
            () => {
              this.stats.confirmed++;
              // amqplib settles a burst of confirms in one turn: their removals share one transaction
              if (this.confirmedQueue.push({ seq: entry.seq, meter: entry.meter }) === 1) setImmediate(() => this.removeConfirmed());
            },
            (err: unknown) => {
              this.stats.failedAttempts++;
              state.failed = true;
              this.emit('publishFailed', err instanceof Error ? err : new Error(String(err)));
            },
          )
          .finally(() => this.inFlight.delete(entry.seq));
        this.inFlight.set(entry.seq, p);
      }
    }
    // Let the publishes still in flight settle before the next pass resends from the head.
    await Promise.allSettled([...this.inFlight.values()]);
    this.removeConfirmed();
    if (!state.failed && this.spool.depth === 0) this.emit('drained');
    return state.failed;
  }
}
