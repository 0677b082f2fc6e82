import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { LibvirtClient } from '../../src/libvirt/client.js';
import { ConnectionClosedError } from '../../src/libvirt/errors.js';
import { Proc, writeDomain } from '../../src/libvirt/protocol.js';
import { Supervisor, backoffDelay } from '../../src/libvirt/supervisor.js';
import { XdrWriter } from '../../src/libvirt/xdr.js';
import { FakeLibvirtd } from '../support/fake-libvirtd.js';

let daemon: FakeLibvirtd;
let sup: Supervisor | null = null;
beforeEach(async () => {
  daemon = await FakeLibvirtd.start();
});
afterEach(async () => {
  await sup?.stop();
  sup = null;
  await daemon.stop();
});

describe('backoffDelay', () => {
  const b = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
  it('grows exponentially and is capped', () => {
    expect([1, 2, 3, 4, 5, 10].map((n) => backoffDelay(n, b, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
  it('applies jitter downwards only', () => {
    expect(backoffDelay(3, b, () => 1)).toBe(200);
    expect(backoffDelay(3, b, () => 0.5)).toBe(300);
  });
});

describe('Supervisor', () => {
  const make = (): Supervisor =>
    new Supervisor({ uri: `qemu+unix:///system?socket=${daemon.socketPath}`, backoff: { initialMs: 20, maxMs: 80, jitter: 0 } });

  it('connects and registers lifecycle and metadata-change callbacks', async () => {
    sup = make();
    sup.start();
    const c = await sup.waitConnected();
    expect(sup.state).toBe('connected');
    expect([...c.registeredEvents.values()]).toEqual([0, 23]);
    expect(daemon.callsOf(Proc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY)).toHaveLength(2);
  });

  it('keeps retrying with backoff while the daemon is away, then connects', async () => {
    await daemon.crash();
    sup = make();
    const delays: number[] = [];
    sup.on('retry', (_e, _n, d) => delays.push(d));
    sup.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(sup.client).toBeNull();
    expect(() => sup!.requireClient()).toThrow(ConnectionClosedError);
    expect(delays.slice(0, 4)).toEqual([20, 40, 80, 80]);
    await daemon.listen();
    await sup.waitConnected(2000);
    expect(sup.connects).toBe(1);
  });

  it('reconnects after the daemon restarts, re-registers callbacks and delivers events again', async () => {
    sup = make();
    const seen: string[] = [];
    sup.on('connected', () => seen.push('connected'));
    sup.on('disconnected', (e) => seen.push(`disconnected: ${e.name}`));
    const events: number[] = [];
    sup.on('lifecycle', (e) => events.push(e.event));
    sup.start();
    await sup.waitConnected();

    await daemon.crash();
    await new Promise((r) => setTimeout(r, 100));
    await daemon.listen();
    const c2: LibvirtClient = await new Promise((r) => sup!.once('connected', r));
    expect(seen).toEqual(['connected', 'disconnected: ConnectionClosedError', 'connected']);
    expect(daemon.callsOf(Proc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY)).toHaveLength(4);

    const lifecycleId = [...c2.registeredEvents].find(([, ev]) => ev === 0)![0];
    const w = new XdrWriter().int(lifecycleId);
    writeDomain(w, { name: 'd', uuid: 'c0ffee00-0000-4000-8000-000000000001', id: 1 });
    daemon.sendEvent(Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, w.int(2).int(0).toBuffer());
    await new Promise((r) => setTimeout(r, 50));
    expect(events).toEqual([2]);
  });

  it('treats a failed handshake as a failed attempt and retries', async () => {
    let opens = 0;
    daemon.on(Proc.CONNECT_OPEN, () => (++opens < 3 ? { error: { code: 1, domain: 0, message: 'busy starting' } } : Buffer.alloc(0)));
    sup = make();
    const errors: string[] = [];
    sup.on('retry', (e) => errors.push(e.message));
    sup.start();
    await sup.waitConnected(2000);
    expect(errors).toEqual([expect.stringMatching(/busy starting/), expect.stringMatching(/busy starting/)]);
  });

  it('stops retrying once stopped', async () => {
    await daemon.crash();
    sup = make();
    let retries = 0;
    sup.on('retry', () => retries++);
    sup.start();
    await new Promise((r) => setTimeout(r, 60));
    await sup.stop();
    const n = retries;
    await daemon.listen();
    await new Promise((r) => setTimeout(r, 200));
    expect(retries).toBe(n);
    expect(sup.client).toBeNull();
    expect(sup.state).toBe('stopped');
  });
});
