// The inventory against libvirt's test driver through the real daemon, on a node of domains with good
// and bad Nova metadata: each domain is handled alone, the bad ones are skipped with their reason,
// reported once, and an unchanged domain's XML is read once.

import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { pollCycle } from '../../src/agent/poll-cycle.js';
import { Inventory, type SkippedDomain } from '../../src/discovery/inventory.js';
import { LibvirtClient } from '../../src/libvirt/client.js';
import { randomIds, systemClock } from '../../src/samples/clock.js';
import { MEMORY_METERS } from '../../src/samples/meters.js';
import { pyJsonDumps } from '../../src/samples/pyjson.js';
import { DEFAULT_SAMPLE_OPTIONS, toWireSample } from '../../src/samples/sample.js';

const NODE = fileURLToPath(new URL('../fixtures/testdrv/bad-metadata-node.xml', import.meta.url));
let client: LibvirtClient;
beforeAll(async () => {
  client = await LibvirtClient.connect({ uri: `test+unix://${NODE}` });
});
afterAll(async () => {
  await client?.close();
});

describe('inventory over good and bad Nova metadata', () => {
  it('keeps the good instances and skips each bad domain once, with its reason', async () => {
    const inv = new Inventory();
    const skipped: SkippedDomain[] = [];
    inv.on('skipped', (s) => skipped.push(s));
    const doms = await client.listAllDomains();
    for (let i = 0; i < 3; i++) await inv.sync(client, doms);

    expect(inv.instances.map((x) => x.domainName).sort()).toEqual(['bad-01', 'bad-03', 'bad-08', 'bad-10']);
    const reasons = Object.fromEntries(skipped.map((s) => [s.name, s.reason]));
    expect(skipped).toHaveLength(6); // once each, not once per sync
    expect(reasons).toEqual({
      'bad-02': 'no Nova metadata (not an OpenStack instance)',
      'bad-04': 'Nova metadata: missing name attribute on <flavor>',
      'bad-05': 'Nova metadata: <flavor><memory> is "1.5", not an integer',
      'bad-06': 'Nova metadata in namespace http://openstack.org/xmlns/libvirt/nova/9.9, which ceilopoll does not know (it reads nova/1.1 and nova/1.0)',
      'bad-07': 'Nova metadata: <flavor><disk> is "99999999999999999999", more than 2147483647',
      'bad-09': 'Nova metadata: missing <owner><project> element',
    });
  });

  it('reads each domain XML once, then only for domains marked changed, and all after a reconnect', async () => {
    const inv = new Inventory();
    const doms = await client.listAllDomains();
    await inv.sync(client, doms);
    expect(inv.xmlReads).toBe(10);
    await inv.sync(client, doms);
    expect(inv.xmlReads).toBe(10);
    inv.markDirty(doms[0]!.uuid);
    await inv.sync(client, doms);
    expect(inv.xmlReads).toBe(11);
    inv.markAllDirty();
    await inv.sync(client, doms);
    expect(inv.xmlReads).toBe(21);
  });

  it('re-reads everything when resource_update_interval is due', async () => {
    let now = 1_000_000;
    const inv = new Inventory({ resyncIntervalMs: 60_000, now: () => now });
    const doms = await client.listAllDomains();
    await inv.sync(client, doms);
    now += 30_000;
    await inv.sync(client, doms);
    expect(inv.xmlReads).toBe(10);
    now += 31_000;
    await inv.sync(client, doms);
    expect(inv.xmlReads).toBe(20);
  });

  it('forgets domains that are gone', async () => {
    const inv = new Inventory();
    const removed: string[] = [];
    inv.on('removed', (_u, name) => removed.push(name));
    const doms = await client.listAllDomains();
    await inv.sync(client, doms);
    await inv.sync(client, doms.filter((d) => d.name !== 'bad-01'));
    expect(inv.instances.map((x) => x.domainName)).not.toContain('bad-01');
    expect(removed).toEqual(['bad-01']);
  });

  it('reads Nova 1.0 metadata, boot-from-volume, and keeps a unicode display name verbatim', async () => {
    const inv = new Inventory();
    await inv.sync(client, await client.listAllDomains());
    const by = Object.fromEntries(inv.instances.map((x) => [x.domainName, x]));
    expect(by['bad-03']!.displayName).toBe('old-nova-1.0');
    expect(by['bad-10']!.imageId).toBeNull();
    expect(by['bad-08']!.displayName).toBe('caf\u00e9 \u{1F600} \u05e9\u05dc\u05d5\u05dd\ttab\u007fdel "quoted" back\\slash </script>');
    expect(by['bad-01']!.flavor).toEqual({ id: 'm1.tiny', name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1, ephemeral: 0, swap: 0 });
  });

  it('a cycle gives samples for the good instances only, with the display name escaped as Python would', async () => {
    const inv = new Inventory();
    const result = await pollCycle({ client, inventory: inv, meters: MEMORY_METERS, unit: 'MB', clock: systemClock, ids: randomIds });
    expect(result.bulk).toBe(false); // the test driver has no balloon group: per-domain calls
    const resident = result.runs.find((r) => r.meter.name === 'memory.resident')!;
    expect(resident.samples.map((s) => s.instance.domainName).sort()).toEqual(['bad-01', 'bad-03', 'bad-08', 'bad-10']);
    const wire = resident.samples.map((s) => pyJsonDumps(toWireSample(s, { ...DEFAULT_SAMPLE_OPTIONS, host: 'compute-1' })));
    expect(wire.join('\n')).toContain('"display_name": "caf\\u00e9 \\ud83d\\ude00 \\u05e9\\u05dc\\u05d5\\u05dd\\ttab\\u007fdel \\"quoted\\" back\\\\slash </script>"');
    // the test driver's last_update never moves (1989): memory.usage is stale, and says so
    const usage = result.runs.find((r) => r.meter.name === 'memory.usage')!;
    expect(usage.samples).toHaveLength(0);
    expect(new Set(usage.missing.map((m) => m.missing.reason))).toEqual(new Set(['stale']));
  });
});
