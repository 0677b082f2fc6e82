// Domain events from the real libvirtd: lifecycle (suspend, resume, start, destroy) and metadata
// change, delivered through the Supervisor's callbacks. The lab's paused and shut-off guests are
// used and left as they were found.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { EventId, LifecycleEvent, type LifecycleEventMsg, type MetadataChangeEventMsg } from '../../src/libvirt/protocol.js';
import { Supervisor } from '../../src/libvirt/supervisor.js';
import { guestOf, until, virsh } from '../support/lab.js';

let sup: Supervisor;
const lifecycle: LifecycleEventMsg[] = [];
const metadata: MetadataChangeEventMsg[] = [];

beforeAll(async () => {
  sup = new Supervisor({ uri: 'qemu:///system' });
  sup.on('lifecycle', (e) => lifecycle.push(e));
  sup.on('metadataChange', (e) => metadata.push(e));
  sup.start();
  await sup.waitConnected();
});
afterAll(async () => {
  await sup?.stop();
});

const eventsFor = (name: string): number[] => lifecycle.filter((e) => e.domain.name === name).map((e) => e.event);

describe('lifecycle events', () => {
  it('registers on a read-only connection', () => {
    expect([...sup.requireClient().registeredEvents.values()]).toEqual([EventId.LIFECYCLE, EventId.METADATA_CHANGE]);
    expect(sup.requireClient().readOnly).toBe(true);
  });

  it('resume and suspend of a guest arrive as RESUMED then SUSPENDED', async () => {
    const g = guestOf('paused');
    await virsh(['resume', g.name]);
    await virsh(['suspend', g.name]);
    await until('resumed and suspended events', () => eventsFor(g.name).length >= 2);
    expect(eventsFor(g.name)).toEqual([LifecycleEvent.RESUMED, LifecycleEvent.SUSPENDED]);
    expect(lifecycle.find((e) => e.domain.name === g.name)!.domain.uuid).toBe(g.uuid);
  });

  it('start and destroy arrive as STARTED then STOPPED (detail DESTROYED)', async () => {
    const g = guestOf('shutoff');
    await virsh(['start', g.name]);
    await until('started event', () => eventsFor(g.name).includes(LifecycleEvent.STARTED));
    await virsh(['destroy', g.name]);
    await until('stopped event', () => eventsFor(g.name).includes(LifecycleEvent.STOPPED));
    // QEMU starts paused and is then resumed, so libvirt also sends RESUMED around STARTED; a
    // destroy may be preceded by SHUTDOWN. What matters: STARTED, and STOPPED after it, last.
    const seq = eventsFor(g.name);
    expect(seq).toContain(LifecycleEvent.STARTED);
    expect(seq.lastIndexOf(LifecycleEvent.STOPPED)).toBe(seq.length - 1);
    expect(seq.indexOf(LifecycleEvent.STARTED)).toBeLessThan(seq.length - 1);
    const stopped = lifecycle.filter((e) => e.domain.name === g.name).at(-1)!;
    expect(stopped.detail).toBe(1); // VIR_DOMAIN_EVENT_STOPPED_DESTROYED
    expect(stopped.domain.id).toBe(-1);
  });
});

describe('metadata-change events', () => {
  const ns = 'http://ceilopoll.test/xmlns/probe/1.0';
  it('arrive when a domain\'s metadata element is set and removed', async () => {
    const g = guestOf('stats');
    await virsh(['metadata', g.name, '--uri', ns, '--key', 'probe', '--set', '<probe n="1"/>', '--live']);
    await virsh(['metadata', g.name, '--uri', ns, '--remove', '--live']);
    await until('two metadata events', () => metadata.filter((e) => e.domain.name === g.name).length >= 2);
    const got = metadata.filter((e) => e.domain.name === g.name);
    expect(got.map((e) => [e.type, e.nsuri])).toEqual([[2, ns], [2, ns]]);
  });
});
