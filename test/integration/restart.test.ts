// libvirtd killed with SIGKILL and started again while a loop of calls runs: the Supervisor sees the
// connection go, reconnects with backoff, re-registers its callbacks, calls succeed again, events
// flow again, and nothing in the process crashes or leaks an unhandled rejection.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ConnectionClosedError } from '../../src/libvirt/errors.js';
import { LifecycleEvent, type LifecycleEventMsg } from '../../src/libvirt/protocol.js';
import { Supervisor } from '../../src/libvirt/supervisor.js';
import { guestOf, killLibvirtd, labGuests, sleep, startLibvirtd, until, virsh } from '../support/lab.js';

const unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => void unhandled.push(e);
let sup: Supervisor;

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  sup = new Supervisor({ uri: 'qemu:///system', backoff: { initialMs: 50, maxMs: 500 }, callTimeoutMs: 5000 });
  sup.start();
  await sup.waitConnected();
});
afterAll(async () => {
  await sup?.stop();
  process.off('unhandledRejection', onUnhandled);
  // leave a running daemon behind whatever happened
  try {
    await virsh(['version']);
  } catch {
    await startLibvirtd();
  }
});

describe('libvirtd killed and restarted during a loop of calls', () => {
  it('reconnects, calls succeed again, events work again', { timeout: 90_000 }, async () => {
    const transitions: string[] = [];
    sup.on('connected', () => transitions.push('connected'));
    sup.on('disconnected', () => transitions.push('disconnected'));
    const events: LifecycleEventMsg[] = [];
    sup.on('lifecycle', (e) => events.push(e));

    let ok = 0;
    let failed = 0;
    const otherErrors: unknown[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          const c = sup.requireClient();
          await Promise.all([c.listAllDomains(), c.getAllDomainStats(), c.hostname()]);
          ok++;
        } catch (err) {
          failed++;
          if (!(err instanceof ConnectionClosedError)) otherErrors.push(err);
        }
        await sleep(10);
      }
    })();

    await until('some successful calls', () => ok > 10);
    const okBefore = ok;
    await killLibvirtd();
    await until('the supervisor to notice', () => transitions.includes('disconnected'), 10_000, 10);
    await sleep(500); // calls fail meanwhile
    await startLibvirtd();
    await sup.waitConnected(30_000);
    const okAfterReconnect = ok;
    await until('calls to succeed again', () => ok > okAfterReconnect + 10);
    running = false;
    await loop;

    expect(okBefore).toBeGreaterThan(10);
    expect(failed).toBeGreaterThan(0);
    expect(otherErrors).toEqual([]);
    expect(transitions).toEqual(['disconnected', 'connected']);
    expect(sup.connects).toBe(2);
    // the guests survived the daemon's death and are seen again
    const names = (await sup.requireClient().listAllDomains()).map((d) => d.name);
    for (const g of labGuests()) expect(names).toContain(g.name);

    // callbacks were re-registered on the new connection: a lifecycle event arrives
    const g = guestOf('paused');
    await virsh(['resume', g.name]);
    await virsh(['suspend', g.name]);
    await until('events after the restart', () => events.filter((e) => e.domain.name === g.name).length >= 2);
    expect(events.filter((e) => e.domain.name === g.name).map((e) => e.event)).toEqual([LifecycleEvent.RESUMED, LifecycleEvent.SUSPENDED]);
    expect(unhandled).toEqual([]);
  });
});
