// A polling cycle against the lab's real QEMU guests: memory.usage equals what virsh dommemstat
// reports within one stats refresh, resource_metadata matches each domain's Nova metadata, every
// missing-stats case gives its reason, unchanged domains cost no XML read, and a display-name
// change made while running reaches the next cycle through the metadata-change event.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { pollCycle, type CycleResult } from '../../src/agent/poll-cycle.js';
import { Inventory } from '../../src/discovery/inventory.js';
import { isMissing, type Missing } from '../../src/inspect/memory.js';
import { Supervisor } from '../../src/libvirt/supervisor.js';
import { randomIds, systemClock } from '../../src/samples/clock.js';
import { MEMORY_METERS } from '../../src/samples/meters.js';
import { toWireSample, DEFAULT_SAMPLE_OPTIONS } from '../../src/samples/sample.js';
import { NOVA_NS, guestOf, labGuests, until, virsh, virshDommemstat } from '../support/lab.js';

let sup: Supervisor;
let inventory: Inventory;
const cycle = (): Promise<CycleResult> =>
  pollCycle({ client: sup.requireClient(), inventory, meters: MEMORY_METERS, unit: 'MB', clock: systemClock, ids: randomIds });

beforeAll(async () => {
  sup = new Supervisor({ uri: 'qemu:///system' });
  inventory = new Inventory().attach(sup);
  sup.start();
  await sup.waitConnected();
});
afterAll(async () => {
  await sup?.stop();
});

const resultFor = (r: CycleResult, name: string) => r.instances.find((i) => i.instance.domainName === name)!;

describe('a cycle over the lab', () => {
  it('reads each XML once, then costs one libvirt call a cycle', async () => {
    const first = await cycle();
    expect(first.bulk).toBe(true);
    const guests = labGuests();
    for (const g of guests) expect(first.instances.map((i) => i.instance.uuid)).toContain(g.uuid);
    const second = await cycle();
    expect(second.libvirtCalls).toBe(1);
  });

  it('memory.usage equals (available - usable) / 1024 from virsh dommemstat, for every stats guest', async () => {
    for (const g of labGuests().filter((x) => x.profile === 'stats')) {
      let checked = false;
      for (let i = 0; i < 10 && !checked; i++) {
        const r = resultFor(await cycle(), g.name);
        const v = await virshDommemstat(g.name);
        if (r.inspection.lastUpdate !== v.last_update) continue; // a refresh fell in between: read again
        expect(r.inspection.usage).toEqual({ value: (v.available! - v.usable!) / 1024, formula: 'available-usable' });
        checked = true;
      }
      expect(checked, `${g.name}: no stable reading in 10 tries`).toBe(true);
    }
  });

  it('resource_metadata carries each domain\'s Nova metadata as virsh shows it', async () => {
    const r = await cycle();
    for (const g of labGuests()) {
      const meta = await virsh(['metadata', g.name, '--uri', NOVA_NS]);
      const pick = (re: RegExp): string => re.exec(meta)![1]!;
      const ir = resultFor(r, g.name);
      const md = toWireSample({ name: 'memory.usage', type: 'gauge', unit: 'MB', volume: 1, instance: ir.instance, state: ir.state,
        timestamp: '2026-11-26T00:00:00', id: 'x', monotonicTime: 1 }, { ...DEFAULT_SAMPLE_OPTIONS, host: 'compute-1' }).resource_metadata as Record<string, unknown>;
      expect(md).toMatchObject({
        display_name: pick(/<name>([^<]*)<\/name>/),
        name: g.name,
        instance_id: g.uuid,
        instance_type: pick(/<flavor name="([^"]*)"/),
        memory_mb: Number(pick(/<memory>(\d+)<\/memory>/)),
        vcpus: Number(pick(/<vcpus>(\d+)<\/vcpus>/)),
        disk_gb: Number(pick(/<disk>(\d+)<\/disk>/)),
        image_ref: pick(/<root type="image" uuid="([^"]*)"/),
        os_type: 'hvm',
        architecture: 'x86_64',
      });
      expect(ir.instance.userId).toBe(pick(/<user uuid="([^"]*)"/));
      expect(ir.instance.projectId).toBe(pick(/<project uuid="([^"]*)"/));
    }
  });

  it('gives each missing-stats case of the lab its reason', async () => {
    const r = await cycle();
    const reasonOf = (profile: Parameters<typeof guestOf>[0]): Missing => resultFor(r, guestOf(profile).name).inspection.usage as Missing;
    expect(reasonOf('none').reason).toBe('no-balloon-device');
    expect(reasonOf('nostats').reason).toBe('stats-period-disabled');
    expect(reasonOf('noballoon').reason).toBe('guest-not-reporting');
    expect(reasonOf('shutoff').reason).toBe('not-running');
    // a paused guest's numbers freeze: stale once older than 3 periods (other tests may have resumed it lately)
    const paused = resultFor(r, guestOf('paused').name);
    const v = await virshDommemstat(guestOf('paused').name);
    const age = Date.now() / 1000 - v.last_update!;
    if (age > 31) expect((paused.inspection.usage as Missing).reason).toBe('stale');
    else if (age < 29) expect(isMissing(paused.inspection.usage)).toBe(false);
    // host-side rss is there for every running or paused guest, whatever the guest does
    for (const p of ['none', 'nostats', 'noballoon', 'paused'] as const) expect(typeof resultFor(r, guestOf(p).name).inspection.resident).toBe('number');
  });

  it('follows a display-name change made while running (metadata-change event)', async () => {
    const g = guestOf('stats');
    const original = (await virsh(['metadata', g.name, '--uri', NOVA_NS])).trimEnd();
    const renamed = original.replace(/<name>[^<]*<\/name>/, '<name>renamed \u00e9t\u00e9 vm</name>');
    await cycle();
    const readsBefore = inventory.xmlReads;
    try {
      await virsh(['metadata', g.name, '--uri', NOVA_NS, '--key', 'nova', '--set', renamed, '--live']);
      await until('the new display name in a cycle', async () => resultFor(await cycle(), g.name).instance.displayName === 'renamed \u00e9t\u00e9 vm', 10_000);
      expect(inventory.xmlReads - readsBefore).toBeGreaterThanOrEqual(1);
      expect(inventory.xmlReads - readsBefore).toBeLessThanOrEqual(2);
    } finally {
      await virsh(['metadata', g.name, '--uri', NOVA_NS, '--key', 'nova', '--set', original, '--live']);
    }
    await until('the original display name back', async () => resultFor(await cycle(), g.name).instance.displayName !== 'renamed \u00e9t\u00e9 vm', 10_000);
  });
});
