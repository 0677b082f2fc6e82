// The client against the real libvirtd, through its socket, with libvirt's test driver loading the
// lab's node XML (5 domains with Nova metadata). virsh, talking to the same daemon, is the oracle.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LibvirtClient } from '../../src/libvirt/client.js';
import { ErrorCode, LibvirtError } from '../../src/libvirt/errors.js';
import { AffectFlags, DomainState, GetAllStatsFlags, StatsGroup, domainStateName, type DomainRef } from '../../src/libvirt/protocol.js';
import { NOVA_NS, TESTDRV_URI, until, virsh, virshDommemstat, virshDomstats } from '../support/lab.js';

let ro: LibvirtClient;
let doms: DomainRef[];
beforeAll(async () => {
  ro = await LibvirtClient.connect({ uri: TESTDRV_URI });
  doms = await ro.listAllDomains();
});
afterAll(async () => {
  await ro?.close();
});

describe('test driver through the daemon', () => {
  it('lists the same domains, uuids and ids as virsh', async () => {
    const out = await virsh(['list', '--all', '--uuid'], TESTDRV_URI);
    expect(doms.map((d) => d.uuid).sort()).toEqual(out.split('\n').filter(Boolean).sort());
    expect(doms).toHaveLength(5);
    for (const d of doms) {
      const id = (await virsh(['domid', d.name], TESTDRV_URI)).trim();
      expect(d.id).toBe(id === '-' ? -1 : Number(id));
    }
  });

  it('reports the connection facts virsh reports', async () => {
    expect(await ro.hostname()).toBe((await virsh(['hostname'], TESTDRV_URI)).trim());
    const m = /Using library: libvirt (\d+)\.(\d+)\.(\d+)/.exec(await virsh(['version'], TESTDRV_URI));
    expect(await ro.libVersion()).toBe(Number(m![1]) * 1e6 + Number(m![2]) * 1e3 + Number(m![3]));
    expect(ro.uri).toBe(TESTDRV_URI.replace('test+unix://', 'test://'));
  });

  it('reads each domain state as virsh domstate does', async () => {
    for (const d of doms) {
      const st = await ro.getState(d);
      const virshState = (await virsh(['domstate', d.name], TESTDRV_URI)).trim();
      expect({ shut: 'shutoff' }[virshState.split(' ')[0]!] ?? virshState).toBe(domainStateName(st.state));
    }
  });

  it('reads Nova metadata identical to virsh metadata', async () => {
    for (const d of doms) {
      const ours = await ro.getMetadata(d, NOVA_NS);
      const theirs = await virsh(['metadata', d.name, '--uri', NOVA_NS], TESTDRV_URI);
      expect(ours).not.toBeNull();
      // `virsh metadata` prints the API's string and then an empty line
      expect(`${ours}\n\n`).toBe(theirs);
      expect(ours).toMatch(/^<instance>/);
    }
  });

  it('returns null for a namespace the domain has no metadata for', async () => {
    expect(await ro.getMetadata(doms[0]!, 'http://example.org/none/1.0')).toBeNull();
  });

  it('reads the domain XML identical to virsh dumpxml', async () => {
    for (const d of doms) {
      // `virsh dumpxml` prints the API's string (which ends in a newline) and a newline
      expect(`${await ro.getXmlDesc(d)}\n`).toBe(await virsh(['dumpxml', d.name], TESTDRV_URI));
    }
  });

  it('decodes DOMAIN_MEMORY_STATS equal to virsh dommemstat, and fails for a shut-off domain', async () => {
    for (const d of doms) {
      const st = await ro.getState(d);
      if (st.state === DomainState.SHUTOFF) {
        const err = await ro.memoryStats(d).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(LibvirtError);
        expect((err as LibvirtError).code).toBe(ErrorCode.OPERATION_INVALID);
        continue;
      }
      expect(await ro.memoryStats(d)).toEqual(await virshDommemstat(d.name, TESTDRV_URI));
    }
  });

  it('decodes GET_ALL_DOMAIN_STATS equal to virsh domstats (the test driver has no balloon group)', async () => {
    const recs = await ro.getAllDomainStats({ stats: StatsGroup.STATE | StatsGroup.BALLOON, flags: GetAllStatsFlags.NOWAIT });
    const theirs = await virshDomstats([], TESTDRV_URI);
    expect(recs.map((r) => r.domain.name).sort()).toEqual([...theirs.keys()].sort());
    for (const r of recs) {
      const v = theirs.get(r.domain.name)!;
      expect(Object.fromEntries(Object.entries(r.params).map(([k, x]) => [k, String(x)]))).toEqual(v);
      expect(r.state).toEqual({ state: Number(v['state.state']), reason: Number(v['state.reason']) });
      expect(r.balloon).toBeUndefined();
    }
  });

  it('fails with ARGUMENT_UNSUPPORTED when ENFORCE_STATS asks for the missing balloon group', async () => {
    const err = await ro.getAllDomainStats({ stats: StatsGroup.BALLOON, flags: GetAllStatsFlags.ENFORCE_STATS }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).code).toBe(ErrorCode.ARGUMENT_UNSUPPORTED);
  });

  it('answers calls for chosen domains only', async () => {
    const pick = doms.slice(0, 2);
    const recs = await ro.getAllDomainStats({ doms: pick, stats: StatsGroup.STATE });
    expect(recs.map((r) => r.domain.uuid).sort()).toEqual(pick.map((d) => d.uuid).sort());
  });

  it('pipelines memory stats for every domain on one connection', async () => {
    const running = [];
    for (const d of doms) if ((await ro.getState(d)).state !== DomainState.SHUTOFF) running.push(d);
    const all = await Promise.all(running.map((d) => ro.memoryStats(d)));
    expect(all).toHaveLength(running.length);
  });

  it('says "no domain" (code 42) for a domain that does not exist', async () => {
    const err = await ro.getXmlDesc({ name: 'gone', uuid: '00000000-0000-4000-8000-000000000bad', id: -1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).isNoDomain).toBe(true);
  });
});

describe('write access', () => {
  it('is refused on a read-only connection (OPERATION_DENIED)', async () => {
    const running = doms.find((d) => d.id > 0)!;
    const err = await ro.setMemoryStatsPeriod(running, 7, AffectFlags.LIVE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).code).toBe(ErrorCode.OPERATION_DENIED);
  });

  it('sets the live stats period on a read-write connection', async () => {
    const rw = await LibvirtClient.connect({ uri: TESTDRV_URI, readOnly: false });
    try {
      const active = await rw.listAllDomains(1);
      const xmls = await Promise.all(active.map((d) => rw.getXmlDesc(d)));
      const withBalloon = active.find((_d, i) => xmls[i]!.includes("<memballoon model='virtio'"))!;
      const without = active.find((_d, i) => xmls[i]!.includes("<memballoon model='none'/>"))!;
      await rw.setMemoryStatsPeriod(withBalloon, 7, AffectFlags.LIVE);
      expect(await rw.getXmlDesc(withBalloon)).toMatch(/<memballoon model='virtio'>\s*<stats period='7'\/>/);
      // a domain without a balloon device cannot have a period: libvirt says so
      await expect(rw.setMemoryStatsPeriod(without, 7, AffectFlags.LIVE)).rejects.toThrow(/No memory balloon device configured/);
    } finally {
      await rw.close();
    }
  });
});

describe('keepalive with the real daemon', () => {
  it('after the opt-in, libvirtd pings a quiet client, the client answers and stays connected', { timeout: 20_000 }, async () => {
    const c = await LibvirtClient.connect({ uri: TESTDRV_URI, serverKeepalive: true });
    try {
      // libvirtd's keepalive_interval is 5 s: stay quiet a little longer than that
      await new Promise((r) => setTimeout(r, 6500));
      expect(c.conn.keepaliveStats.pingsReceived).toBeGreaterThanOrEqual(1);
      expect(c.conn.keepaliveStats.pongsSent).toBe(c.conn.keepaliveStats.pingsReceived);
      expect(c.closed).toBe(false);
      expect((await c.listAllDomains()).length).toBe(5);
    } finally {
      await c.close();
    }
  });

  it('a client PING is answered with a PONG even without the opt-in', async () => {
    const c = await LibvirtClient.connect({ uri: TESTDRV_URI });
    try {
      c.conn.ping();
      await until('a PONG', () => c.conn.keepaliveStats.pongsReceived > 0, 5000, 10);
    } finally {
      await c.close();
    }
  });
});
