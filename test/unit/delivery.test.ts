// Delivery's ordering and retry logic over a real spool, with a publisher whose confirms the test
// scripts (the broker itself is exercised in test/integration/no-loss.test.ts).

import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { Delivery, type PublisherLike } from '../../src/publish/delivery.js';
import { Spool } from '../../src/publish/spool.js';

class ScriptedPublisher extends EventEmitter implements PublisherLike {
  connected = true;
  readonly sent: string[] = [];
  maxInFlight = 0;
  private inFlight = 0;
  /** bodies whose publish should fail once */
  failOnce = new Set<string>();
  pending: Array<{ body: string; resolve: () => void; reject: (e: Error) => void }> = [];
  auto = true;

  publish(body: Buffer): Promise<void> {
    if (!this.connected) return Promise.reject(new Error('not connected'));
    const b = body.toString();
    this.sent.push(b);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<void>((resolve, reject) => {
      const done = (): void => void this.inFlight--;
      const entry = { body: b, resolve: () => (done(), resolve()), reject: (e: Error) => (done(), reject(e)) };
      if (this.failOnce.delete(b)) setImmediate(() => entry.reject(new Error(`nack ${b}`)));
      else if (this.auto) setImmediate(() => entry.resolve());
      else this.pending.push(entry);
    });
  }

  drop(): void {
    this.connected = false;
    for (const p of this.pending.splice(0)) p.reject(new Error('connection lost'));
    this.emit('disconnected');
  }

  reconnect(): void {
    this.connected = true;
    this.emit('connected');
  }
}

let dir: string;
let spool: Spool;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'delivery-'));
  spool = Spool.open(path.join(dir, 'spool.sqlite'), { maxBytes: 10 * 1024 * 1024, maxAgeMs: 3600_000 });
});
afterEach(() => {
  spool.close();
  rmSync(dir, { recursive: true, force: true });
});

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
};

describe('Delivery', () => {
  it('sends in submission order and empties the spool as confirms arrive', async () => {
    const pub = new ScriptedPublisher();
    const d = new Delivery(spool, pub);
    for (let i = 0; i < 50; i++) d.submit('memory.usage', Buffer.from(`n${i}`));
    await until(() => spool.depth === 0);
    expect(pub.sent).toEqual(Array.from({ length: 50 }, (_, i) => `n${i}`));
    expect(d.stats).toMatchObject({ submitted: 50, confirmed: 50 });
  });

  it('keeps at most `window` publishes in flight (under the agent\'s 16-id duplicate memory)', async () => {
    const pub = new ScriptedPublisher();
    const d = new Delivery(spool, pub, { window: 4 });
    for (let i = 0; i < 40; i++) d.submit('m', Buffer.from(`n${i}`));
    await until(() => spool.depth === 0);
    expect(pub.maxInFlight).toBe(4);
    expect(() => new Delivery(spool, pub, { window: 16 })).toThrow(/must be 1..15/);
  });

  it('while disconnected only spools; on reconnect sends everything from the head, in order', async () => {
    const pub = new ScriptedPublisher();
    pub.connected = false;
    const d = new Delivery(spool, pub);
    for (let i = 0; i < 20; i++) d.submit('m', Buffer.from(`n${i}`));
    await new Promise((r) => setTimeout(r, 30));
    expect(pub.sent).toEqual([]);
    expect(spool.depth).toBe(20);
    pub.reconnect();
    await until(() => spool.depth === 0);
    expect(pub.sent).toEqual(Array.from({ length: 20 }, (_, i) => `n${i}`));
  });

  it('a connection lost mid-window: the unconfirmed are sent again, in order, before anything newer', async () => {
    const pub = new ScriptedPublisher();
    pub.auto = false;
    const d = new Delivery(spool, pub, { window: 3 });
    for (let i = 0; i < 6; i++) d.submit('m', Buffer.from(`n${i}`));
    await until(() => pub.pending.length === 3);
    pub.pending.shift()!.resolve(); // n0 confirmed
    await until(() => pub.pending.length === 3); // n3 sent
    pub.drop(); // n1, n2, n3 lost before their confirms
    await until(() => d.stats.failedAttempts === 3);
    d.submit('m', Buffer.from('n6'));
    pub.auto = true;
    pub.reconnect();
    await until(() => spool.depth === 0);
    expect(pub.sent).toEqual(['n0', 'n1', 'n2', 'n3', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6']);
  });

  it('a nack while connected is retried after a pause, and order is kept for the rest', async () => {
    const pub = new ScriptedPublisher();
    pub.failOnce.add('n2');
    const d = new Delivery(spool, pub, { window: 1 });
    for (let i = 0; i < 5; i++) d.submit('m', Buffer.from(`n${i}`));
    await until(() => spool.depth === 0);
    expect(pub.sent).toEqual(['n0', 'n1', 'n2', 'n2', 'n3', 'n4']);
    expect(d.stats.failedAttempts).toBe(1);
  });

  it('a spool that cannot take the notification reports it, sends it without the spool while the broker is there, and counts it lost when not', async () => {
    const pub = new ScriptedPublisher();
    const d = new Delivery(spool, pub);
    const errors: string[] = [];
    const unspooled: string[] = [];
    d.on('spoolError', (e, meter, direct) => errors.push(`${meter} direct=${direct}: ${e.message}`));
    d.on('unspooled', (meter, err) => unspooled.push(`${meter} ${err ? `lost: ${err.message}` : 'confirmed'}`));
    spool.close(); // any append now fails
    expect(() => d.submit('memory.usage', Buffer.from('x'))).not.toThrow();
    await until(() => unspooled.length === 1);
    expect(pub.sent).toEqual(['x']);
    expect(unspooled).toEqual(['memory.usage confirmed']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^memory\.usage direct=true: /);

    pub.failOnce.add('y'); // the direct send is not confirmed: nothing keeps it
    d.submit('memory.resident', Buffer.from('y'));
    await until(() => unspooled.length === 2);
    expect(unspooled[1]).toBe('memory.resident lost: nack y');

    pub.drop(); // no broker: lost at once
    d.submit('memory.usage', Buffer.from('z'));
    expect(errors[2]).toMatch(/^memory\.usage direct=false: /);
    expect(pub.sent).toEqual(['x', 'y']);
    expect(d.stats).toMatchObject({ spoolErrors: 3, unspooledConfirmed: 1, unspooledLost: 2, submitted: 0 });
    spool = Spool.open(path.join(dir, 'spool.sqlite'), { maxBytes: 1024, maxAgeMs: 1000 });
  });


  it('drain() waits for the spool to empty, and gives up at once when the broker is away', async () => {
    const pub = new ScriptedPublisher();
    const d = new Delivery(spool, pub);
    for (let i = 0; i < 10; i++) d.submit('m', Buffer.from(`n${i}`));
    expect(await d.drain(5000)).toBe(0);
    pub.connected = false;
    d.submit('m', Buffer.from('late'));
    expect(await d.drain(5000)).toBe(1);
  });
});
