// The client against real QEMU (TCG) guests, one per balloon case the lab builds. Every decoded value
// must equal what virsh prints for the same domain at the same moment. Guest-side values change only
// when QEMU refreshes them (every stats period), so a reading counts when our value of last_update
// is the same before and after virsh's; rss is read from the host on every call and may move by a
// few pages between two readings.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LibvirtClient } from '../../src/libvirt/client.js';
import { ErrorCode, LibvirtError } from '../../src/libvirt/errors.js';
import { DomainState, type BalloonStats, type DomainRef, type MemoryStats } from '../../src/libvirt/protocol.js';
import { NOVA_NS, guestOf, labGuests, until, virsh, virshDommemstat, virshDomstats, type Profile } from '../support/lab.js';

let client: LibvirtClient;
let byName: Map<string, DomainRef>;
beforeAll(async () => {
  client = await LibvirtClient.connect({ uri: 'qemu:///system' });
  byName = new Map((await client.listAllDomains()).map((d) => [d.name, d]));
});
afterAll(async () => {
  await client?.close();
});

const domOf = (profile: Profile): DomainRef => {
  const g = guestOf(profile);
  const d = byName.get(g.name);
  if (!d) throw new Error(`lab guest ${g.name} (${profile}) is not defined in libvirtd`);
  return d;
};

/** rss: a host-side number read afresh by each call; allow 2 % drift between two readings. */
function expectRssClose(ours: number | undefined, theirs: number | undefined): void {
  expect(ours).toBeTypeOf('number');
  expect(theirs).toBeTypeOf('number');
  expect(Math.abs(ours! - theirs!)).toBeLessThanOrEqual(Math.max(1024, theirs! * 0.02));
}

const withoutRss = <T extends { rss?: number }>(s: T): Omit<T, 'rss'> => {
  const { rss: _rss, ...rest } = s;
  return rest;
};

/** Our memory stats and virsh's, read in a window where the guest's snapshot did not change. */
async function sameMomentMemstats(d: DomainRef): Promise<{ ours: MemoryStats; theirs: Record<string, number> }> {
  for (let i = 0; i < 10; i++) {
    const before = await client.memoryStats(d);
    const theirs = await virshDommemstat(d.name);
    const after = await client.memoryStats(d);
    if (before.last_update === after.last_update) return { ours: after, theirs };
  }
  throw new Error(`${d.name}: stats kept changing during 10 readings`);
}

async function sameMomentBulk(d: DomainRef): Promise<{ ours: BalloonStats; state: number; theirs: Record<string, string> }> {
  for (let i = 0; i < 10; i++) {
    const [before] = await client.getAllDomainStats({ doms: [d] });
    const theirs = (await virshDomstats([d.name])).get(d.name)!;
    const [after] = await client.getAllDomainStats({ doms: [d] });
    if (before!.balloon?.last_update === after!.balloon?.last_update) return { ours: after!.balloon ?? {}, state: after!.state!.state, theirs };
  }
  throw new Error(`${d.name}: stats kept changing during 10 readings`);
}

/** virsh domstats names -> ours: `balloon.last-update` is last_update, `balloon.current` is current. */
function fromVirshDomstats(v: Record<string, string>): BalloonStats {
  const out: Record<string, number> = {};
  for (const [k, val] of Object.entries(v)) {
    if (!k.startsWith('balloon.')) continue;
    out[k.slice('balloon.'.length).replace('last-update', 'last_update')] = Number(val);
  }
  return out;
}

describe('memory stats on real QEMU guests equal virsh dommemstat', () => {
  const guestKeys = ['unused', 'available', 'usable', 'disk_caches', 'swap_in', 'swap_out', 'major_fault', 'minor_fault'];

  it.each(['stats', 'paused', 'nostats'] as const)('%s: the full set of 13 stats', async (profile) => {
    const { ours, theirs } = await sameMomentMemstats(domOf(profile));
    expect(withoutRss(ours)).toEqual(withoutRss(theirs));
    expectRssClose(ours.rss, theirs.rss);
    for (const k of [...guestKeys, 'actual', 'last_update', 'hugetlb_pgalloc', 'hugetlb_pgfail']) expect(ours).toHaveProperty(k);
    expect(ours.available! - ours.usable!).toBeGreaterThan(0);
  });

  it('stats: the guest refreshes its numbers every period (last_update is recent)', async () => {
    const { ours } = await sameMomentMemstats(domOf('stats'));
    expect(Date.now() / 1000 - ours.last_update!).toBeLessThan(3 * 10 + 5);
  });

  it('nostats: a boot-time snapshot that never refreshes while a stats guest refreshes', { timeout: 30_000 }, async () => {
    const stale0 = (await client.memoryStats(domOf('nostats'))).last_update;
    const fresh0 = (await client.memoryStats(domOf('stats'))).last_update;
    await until('the stats guest to refresh', async () => (await client.memoryStats(domOf('stats'))).last_update !== fresh0, 25_000, 250);
    expect((await client.memoryStats(domOf('nostats'))).last_update).toBe(stale0);
  });

  it('noballoon: the guest has no balloon driver: actual, last_update 0 and rss only', async () => {
    const { ours, theirs } = await sameMomentMemstats(domOf('noballoon'));
    expect(Object.keys(ours).sort()).toEqual(['actual', 'last_update', 'rss']);
    expect(ours.last_update).toBe(0);
    expect(withoutRss(ours)).toEqual(withoutRss(theirs));
    expectRssClose(ours.rss, theirs.rss);
  });

  it('none: <memballoon model=none/> gives rss only', async () => {
    const { ours, theirs } = await sameMomentMemstats(domOf('none'));
    expect(Object.keys(ours)).toEqual(['rss']);
    expect(Object.keys(theirs)).toEqual(['rss']);
    expectRssClose(ours.rss, theirs.rss);
  });

  it('shutoff: DOMAIN_MEMORY_STATS fails with OPERATION_INVALID, as virsh does', async () => {
    const d = domOf('shutoff');
    const err = await client.memoryStats(d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).code).toBe(ErrorCode.OPERATION_INVALID);
    await expect(virshDommemstat(d.name)).rejects.toThrow(/not running/);
  });
});

describe('bulk stats (STATE | BALLOON, NOWAIT) equal virsh domstats --state --balloon', () => {
  it.each(['stats', 'paused', 'nostats', 'noballoon', 'none', 'shutoff'] as const)('%s', async (profile) => {
    const { ours, state, theirs } = await sameMomentBulk(domOf(profile));
    expect(state).toBe(Number(theirs['state.state']));
    const v = fromVirshDomstats(theirs);
    expect(withoutRss(ours)).toEqual(withoutRss(v));
    if (v.rss !== undefined) expectRssClose(ours.rss, v.rss);
    else expect(ours.rss).toBeUndefined();
    expect(ours.current).toBe(131072);
    expect(ours.maximum).toBe(131072);
    const expectedState = { paused: DomainState.PAUSED, shutoff: DomainState.SHUTOFF }[profile as string] ?? DomainState.RUNNING;
    expect(state).toBe(expectedState);
  });

  it('one call returns a record for every lab guest', async () => {
    const recs = await client.getAllDomainStats();
    const names = new Set(recs.map((r) => r.domain.name));
    for (const g of labGuests()) expect(names.has(g.name)).toBe(true);
    const stats = recs.find((r) => r.domain.name === guestOf('stats').name)!;
    expect(stats.balloon).toMatchObject({ available: expect.any(Number), usable: expect.any(Number), unused: expect.any(Number) });
  });
});

describe('metadata and XML of real guests', () => {
  it('reads the Nova metadata virsh reads, for every lab guest', async () => {
    for (const g of labGuests()) {
      const ours = await client.getMetadata(byName.get(g.name)!, NOVA_NS);
      expect(`${ours}\n\n`).toBe(await virsh(['metadata', g.name, '--uri', NOVA_NS]));
      expect(ours).toContain(`<name>lab-vm-`);
    }
  });

  it('reads the balloon device of each case from the XML', async () => {
    expect(await client.getXmlDesc(domOf('none'))).toMatch(/<memballoon model='none'\/>/);
    expect(await client.getXmlDesc(domOf('stats'))).toMatch(/<stats period='10'\/>/);
    expect(await client.getXmlDesc(domOf('nostats'))).not.toMatch(/<stats period/);
  });
});
