// doctor's diagnosis of one domain, from the two things the agent reads: the domain XML (the lab
// guest's real dumpxml, its balloon swapped per case) and the bulk stats reply. The stats shapes are
// the ones the lab's QEMU guests produce per profile (test/lab/README.md, "Stats keys per profile").

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { parseDomainXml, type DomainFacts } from '../../src/discovery/domain-xml.js';
import { fail, ok, type Result } from '../../src/discovery/result.js';
import {
  ageText, checkPeriod, diagnoseDomain, fixPeriod, formatDoctorReport, formatFixResults, mergeFixes, summarize, type DoctorRow, type Problem,
} from '../../src/doctor/index.js';
import type { LibvirtClient } from '../../src/libvirt/client.js';
import { balloonToMemoryStats, type BalloonDevice } from '../../src/inspect/memory.js';
import type { DomainReading } from '../../src/inspect/reader.js';
import { DomainState, type MemoryStats } from '../../src/libvirt/protocol.js';
import { value } from '../support/result.js';

const NOW = 1_795_716_110;
const LAB = value(parseDomainXml(readFileSync(fileURLToPath(new URL('../fixtures/xml/zed-lab-1.domain.xml', import.meta.url)), 'utf8')));
const UUID = 'c0ffee00-0000-4000-8000-000000000001';

// balloon.* of `virsh domstats --balloon` for a stats guest, as the bulk call returns it
const FULL: MemoryStats = balloonToMemoryStats({
  current: 131072, maximum: 131072, swap_in: 0, swap_out: 0, major_fault: 0, minor_fault: 1256, unused: 43252,
  available: 94800, usable: 48868, last_update: NOW - 4, disk_caches: 26792, hugetlb_pgalloc: 0, hugetlb_pgfail: 0, rss: 230820,
});
const VIRTIO_10: BalloonDevice = { model: 'virtio', statsPeriod: 10 };

interface Case {
  state?: number;
  balloon?: BalloonDevice;
  stats?: MemoryStats | null;
  nova?: DomainFacts['nova'];
  facts?: Result<DomainFacts>;
}

function row(c: Case = {}): DoctorRow {
  const reading: DomainReading = { domain: { name: LAB.name, uuid: UUID, id: 1 }, state: c.state ?? DomainState.RUNNING, stats: c.stats === undefined ? FULL : c.stats, fromBulk: true };
  const facts = c.facts ?? ok({ ...LAB, balloon: c.balloon ?? VIRTIO_10, nova: c.nova === undefined ? LAB.nova : c.nova });
  return diagnoseDomain({ reading, facts, nowSeconds: NOW });
}

const only = (r: DoctorRow): Problem => {
  expect(r.problems).toHaveLength(1);
  return r.problems[0]!;
};

describe('a healthy instance', () => {
  it('has memory.usage = (available - usable) / 1024, its facts, and no problem', () => {
    expect(row()).toEqual({
      domain: 'instance-00000001', uuid: UUID, displayName: 'lab-vm-1', state: 'running', balloon: 'virtio', statsPeriod: 10,
      lastUpdateAgeSeconds: 4, formula: 'available-usable', usageMb: (94800 - 48868) / 1024, reason: null, problems: [],
    });
  });

  it('falls back to available - unused for a guest without usable', () => {
    const { usable: _u, ...older } = FULL;
    expect(row({ stats: older })).toMatchObject({ formula: 'available-unused', usageMb: (94800 - 43252) / 1024, reason: null });
  });
});

describe('one problem per cause, with the agent\'s reason', () => {
  it("no balloon (<memballoon model='none'/>): rss only; the fix goes through nova.conf and a hard reboot", () => {
    const r = row({ balloon: { model: 'none', statsPeriod: 0 }, stats: balloonToMemoryStats({ current: 131072, maximum: 131072, rss: 227728 }) });
    expect(r).toMatchObject({ balloon: 'none', statsPeriod: null, lastUpdateAgeSeconds: null, usageMb: null, reason: 'no-balloon-device' });
    const p = only(r);
    expect(p).toMatchObject({ id: 'no-balloon-device', severity: 'problem', detail: "<memballoon model='none'/>" });
    expect(p.fixes[0]).toMatch(/^Nova writes <memballoon model='none'\/> when mem_stats_period_seconds is 0 or less \(2025\.2, 31\.2\.0, 30\.2\.0, 29\.4\.0 and later\): .*mem_stats_period_seconds = 10 .*hard-reboot/);
    expect(p.fixes[1]).toBe('openstack server reboot --hard c0ffee00-0000-4000-8000-000000000001');
    expect(p.fixes[2]).toContain("<memballoon model='virtio'><stats period='10'/></memballoon>");
  });

  it('no <memballoon> at all: "absent", and the advice is to check how the domain was defined', () => {
    const r = row({ balloon: { model: null, statsPeriod: 0 }, stats: { rss: 227728 } });
    expect(r).toMatchObject({ balloon: 'absent', reason: 'no-balloon-device' });
    expect(only(r).fixes.slice(0, 2)).toEqual([
      'no <memballoon> at all, although Nova adds one for [libvirt] virt_type kvm/qemu and libvirt adds a virtio one to QEMU domains that lack it: check how the domain was defined:',
      'virsh dumpxml --inactive instance-00000001',
    ]);
  });

  it('virtio without a period (a frozen boot-time snapshot): the live and the lasting fix', () => {
    const r = row({ balloon: { model: 'virtio', statsPeriod: 0 }, stats: { ...FULL, last_update: NOW - 393 } });
    expect(r).toMatchObject({ statsPeriod: 0, lastUpdateAgeSeconds: 393, reason: 'stats-period-disabled', usageMb: null });
    expect(only(r).fixes).toEqual([
      'now: virsh dommemstat instance-00000001 --period 10 --live',
      'now, every such domain on this host at once: ceilopoll doctor --fix-period 10',
      'either lasts until Nova redefines the domain (hard reboot, resize, migration, rebuild) or the domain is restarted',
      "for good: nova.conf [libvirt] mem_stats_period_seconds = 10 on this compute node (Nova's default; 0 or less disables it), restart nova-compute, then hard-reboot so Nova writes the domain XML again:",
      'openstack server reboot --hard c0ffee00-0000-4000-8000-000000000001',
      'outside Nova, for good: virsh dommemstat instance-00000001 --period 10 --config (the persistent definition, from the next start)',
    ]);
  });

  it('a period but no guest driver (actual, last_update 0, rss): Linux module, Windows driver and BLNSVR', () => {
    const r = row({ stats: balloonToMemoryStats({ current: 131072, maximum: 131072, last_update: 0, rss: 230304 }) });
    expect(r).toMatchObject({ lastUpdateAgeSeconds: null, reason: 'guest-not-reporting' });
    const p = only(r);
    expect(p.detail).toBe('stats period 10s, no available/usable/unused from the guest, last_update 0');
    expect(p.fixes.join('\n')).toMatch(/modprobe virtio_balloon[\s\S]*CONFIG_VIRTIO_BALLOON[\s\S]*virtio-win balloon driver AND its service[\s\S]*blnsvr\.exe -i/);
  });

  it('numbers older than 3 periods: stale, with their age', () => {
    const r = row({ stats: { ...FULL, last_update: NOW - 45 } });
    expect(r).toMatchObject({ lastUpdateAgeSeconds: 45, reason: 'stale', usageMb: null });
    const p = only(r);
    expect(p).toMatchObject({ id: 'stale', detail: 'last_update is 45s old, over 3 x the 10s stats period' });
    expect(p.fixes.join('\n')).toMatch(/BLNSVR/);
  });

  it('a staleness factor of 5 keeps the same numbers fresh', () => {
    const r = diagnoseDomain({ reading: { domain: { name: LAB.name, uuid: UUID, id: 1 }, state: DomainState.RUNNING, stats: { ...FULL, last_update: NOW - 45 }, fromBulk: true }, facts: ok(LAB), nowSeconds: NOW, stalenessFactor: 5 });
    expect(r.reason).toBeNull();
  });

  it('NOWAIT skipped a busy domain (current and maximum only): busy, transient, domjobinfo', () => {
    const r = row({ stats: balloonToMemoryStats({ current: 131072, maximum: 131072 }) });
    expect(r.reason).toBe('busy');
    expect(only(r).fixes[0]).toMatch(/transient.*virsh domjobinfo instance-00000001/);
  });

  it('paused with numbers frozen past 3 periods: the agent says stale, doctor says why (paused) and how to resume', () => {
    const r = row({ state: DomainState.PAUSED, stats: { ...FULL, last_update: NOW - 381 } });
    expect(r).toMatchObject({ state: 'paused', reason: 'stale', lastUpdateAgeSeconds: 381 });
    const p = only(r);
    expect(p).toMatchObject({ id: 'paused', severity: 'problem', detail: 'last_update is 381s old, over 3 x the 10s stats period (the domain is paused)' });
    expect(p.fixes).toEqual(['if it should be running: openstack server unpause c0ffee00-0000-4000-8000-000000000001 (outside Nova: virsh resume instance-00000001)']);
  });

  it('paused only just now: the frozen numbers are still fresh, so memory.usage is given', () => {
    expect(row({ state: DomainState.PAUSED, stats: { ...FULL, last_update: NOW - 12 } })).toMatchObject({ state: 'paused', reason: null, problems: [] });
  });

  it('shut off (current and maximum only): a note, nothing to fix', () => {
    const r = row({ state: DomainState.SHUTOFF, stats: balloonToMemoryStats({ current: 131072, maximum: 131072 }) });
    expect(r).toMatchObject({ state: 'shut off', statsPeriod: 10, reason: 'not-running', usageMb: null });
    expect(only(r)).toMatchObject({ id: 'not-running', severity: 'note', detail: 'domain is shut off', fixes: [] });
  });

  it('the per-domain call failed: libvirt-error with libvirt\'s message', () => {
    const reading: DomainReading = { domain: { name: LAB.name, uuid: UUID, id: 1 }, state: DomainState.RUNNING, stats: null, fromBulk: false, error: new Error('internal error: unable to execute QEMU command') };
    const r = diagnoseDomain({ reading, facts: ok(LAB), nowSeconds: NOW });
    expect(r.reason).toBe('libvirt-error');
    expect(only(r).detail).toBe('internal error: unable to execute QEMU command');
  });
});

describe('domains the agent does not poll', () => {
  it('no Nova metadata: marked, a note, no memory.usage even though the guest reports', () => {
    const r = row({ nova: null });
    expect(r).toMatchObject({ displayName: null, balloon: 'virtio', statsPeriod: 10, lastUpdateAgeSeconds: 4, usageMb: null, formula: null, reason: 'not-a-nova-instance' });
    expect(only(r)).toMatchObject({ id: 'not-a-nova-instance', severity: 'note', fixes: [] });
  });

  it('Nova metadata that does not parse: a problem, with the parser\'s reason', () => {
    const r = row({ nova: fail('Nova metadata: missing <flavor> element') });
    expect(r.reason).toBe('bad-nova-metadata');
    expect(only(r)).toMatchObject({ severity: 'problem', detail: 'Nova metadata: missing <flavor> element' });
    expect(only(r).fixes[0]).toBe('virsh metadata instance-00000001 --uri http://openstack.org/xmlns/libvirt/nova/1.1 shows what Nova wrote');
  });

  it('an XML that could not be read: no facts, the reason', () => {
    const r = row({ facts: fail('cannot read its XML: Domain not found') });
    expect(r).toMatchObject({ balloon: '?', statsPeriod: null, displayName: null, reason: 'domain-xml-unreadable' });
    expect(only(r).detail).toBe('cannot read its XML: Domain not found');
  });
});

describe('the report', () => {
  const named = (r: DoctorRow, domain: string, uuid: string, displayName: string | null): DoctorRow => {
    const p = r.problems.map((x) => ({ ...x, fixes: x.fixes.map((f) => f.replaceAll('instance-00000001', domain).replaceAll(UUID, uuid)) }));
    return { ...r, domain, uuid, displayName, problems: p };
  };
  const report = summarize('qemu:///system', '9.0.0', [
    named(row({ balloon: { model: 'virtio', statsPeriod: 0 }, stats: { ...FULL, last_update: NOW - 393 } }), 'instance-0000000b', 'c0ffee00-0000-4000-8000-00000000000b', 'web\u0007b'),
    named(row({ state: DomainState.SHUTOFF, stats: { actual: 131072 } }), 'instance-0000000d', 'c0ffee00-0000-4000-8000-00000000000d', 'db'),
    row(),
    named(row({ nova: null }), 'scratch', '5c7a7c40-0000-4000-8000-000000000001', null),
    named(row({ balloon: { model: 'virtio', statsPeriod: 0 }, stats: { ...FULL, last_update: NOW - 500 } }), 'instance-0000000c', 'c0ffee00-0000-4000-8000-00000000000c', 'web-c'),
  ]);

  it('counts: instances are the Nova domains; healthy, with problems and not running add up to them', () => {
    expect(report).toMatchObject({ instances: 4, healthy: 1, withProblems: 2, notRunning: 1, notNova: 1 });
  });

  it('reads: a table sorted by domain, the summary, then each problem once with its domains and merged fixes', () => {
    expect(formatDoctorReport(report).split('\n')).toEqual([
      'ceilopoll doctor: qemu:///system, libvirt 9.0.0',
      '',
      'DOMAIN             DISPLAY NAME  STATE     BALLOON  PERIOD  LAST UPDATE  FORMULA           MEMORY.USAGE (MB)  REASON',
      'instance-00000001  lab-vm-1      running   virtio   10s     4s           available-usable  44.9               -',
      'instance-0000000b  web\\u0007b    running   virtio   off     6m33s        -                 -                  stats-period-disabled',
      'instance-0000000c  web-c         running   virtio   off     8m20s        -                 -                  stats-period-disabled',
      'instance-0000000d  db            shut off  virtio   10s     -            -                 -                  not-running',
      'scratch            -             running   virtio   10s     4s           -                 -                  not-a-nova-instance',
      '',
      '4 instances: 1 healthy, 2 with problems, 1 not running; 1 other domain without Nova metadata',
      '',
      "stats-period-disabled: the virtio balloon has no stats period: QEMU never asks the guest for fresh numbers, so they stay as they were at boot (or when a period was last turned off) (older Nova, before 2025.2 / 31.2.0 / 30.2.0 / 29.4.0, leaves this when mem_stats_period_seconds is 0 or less)",
      '  instance-0000000b (web\\u0007b): virtio balloon, no <stats period>',
      '  instance-0000000c (web-c): virtio balloon, no <stats period>',
      '  fix:',
      '    - now: virsh dommemstat instance-0000000b --period 10 --live',
      '    - now: virsh dommemstat instance-0000000c --period 10 --live',
      '    - now, every such domain on this host at once: ceilopoll doctor --fix-period 10',
      '    - either lasts until Nova redefines the domain (hard reboot, resize, migration, rebuild) or the domain is restarted',
      "    - for good: nova.conf [libvirt] mem_stats_period_seconds = 10 on this compute node (Nova's default; 0 or less disables it), restart nova-compute, then hard-reboot so Nova writes the domain XML again:",
      '    - openstack server reboot --hard c0ffee00-0000-4000-8000-00000000000b',
      '    - openstack server reboot --hard c0ffee00-0000-4000-8000-00000000000c',
      '    - outside Nova, for good: virsh dommemstat instance-0000000b --period 10 --config (the persistent definition, from the next start)',
      '    - outside Nova, for good: virsh dommemstat instance-0000000c --period 10 --config (the persistent definition, from the next start)',
      '',
      'not-running (note): libvirt has no memory statistics for a domain that is not running, so no memory.usage is expected (Ceilometer skips shut-off instances too); nothing to fix',
      '  instance-0000000d (db): domain is shut off',
      '',
      "not-a-nova-instance (note): no Nova metadata (nova/1.1 or nova/1.0): not an OpenStack instance, so the agent, like Ceilometer's libvirt_metadata discovery, does not poll it; nothing to fix unless it should be one",
      '  scratch: no Nova metadata in <metadata>',
    ]);
  });

  it('colours only the headings under the table, when asked', () => {
    const coloured = formatDoctorReport(report, { color: true }).split('\n');
    expect(coloured.slice(0, 11)).toEqual(formatDoctorReport(report).split('\n').slice(0, 11));
    expect(coloured).toContain("\u001b[1;31mstats-period-disabled\u001b[0m: the virtio balloon has no stats period: QEMU never asks the guest for fresh numbers, so they stay as they were at boot (or when a period was last turned off) (older Nova, before 2025.2 / 31.2.0 / 30.2.0 / 29.4.0, leaves this when mem_stats_period_seconds is 0 or less)");
  });

  it('shows ages in seconds against the period, and coarser when frozen for long', () => {
    expect([0, 4, 99, 100, 393, 3599, 3600, 11_100, 86_399, 1_168_396_542].map(ageText)).toEqual(['0s', '4s', '99s', '1m40s', '6m33s', '59m59s', '1h00m', '3h05m', '23h59m', '13523d']);
  });

  it('merges fixes by position: the n-th fix of each domain together, each text once', () => {
    const p = (fixes: string[]): Problem => ({ id: 'stale', severity: 'problem', summary: '', detail: '', fixes });
    expect(mergeFixes([p(['a1', 'g', 'z']), p(['a2', 'g']), p(['a1', 'g', 'z'])])).toEqual(['a1', 'a2', 'g', 'z']);
  });
});

describe('--fix-period', () => {
  it('takes a whole number of seconds from 1 to 86400, and says so otherwise', async () => {
    for (const ok1 of [1, 10, 86_400]) expect(() => checkPeriod(ok1)).not.toThrow();
    for (const bad of [0, -1, 86_401, 2.5, Number.NaN, Infinity]) expect(() => checkPeriod(bad)).toThrow(RangeError);
    expect(() => checkPeriod(0)).toThrow('the stats period must be a whole number of seconds from 1 to 86400, not 0');
    // before any libvirt call: the client is never touched
    await expect(fixPeriod({} as LibvirtClient, 86_401)).rejects.toThrow(RangeError);
  });

  it('prints one line a domain, the counts, and that the change is live only', () => {
    expect(formatFixResults([
      { domain: 'instance-00000001', uuid: UUID, outcome: 'skipped', detail: 'already has a period (10s)' },
      { domain: 'instance-00000005', uuid: 'c0ffee00-0000-4000-8000-000000000005', outcome: 'set', detail: 'stats period set to 10s (live)' },
      { domain: 'instance-00000009', uuid: 'c0ffee00-0000-4000-8000-000000000009', outcome: 'failed', detail: 'Requested operation is not valid: domain is not running' },
    ], 10).split('\n')).toEqual([
      'DOMAIN             RESULT   DETAIL',
      'instance-00000001  skipped  already has a period (10s)',
      'instance-00000005  set      stats period set to 10s (live)',
      'instance-00000009  failed   Requested operation is not valid: domain is not running',
      '',
      '1 set, 1 skipped, 1 failed.',
      'The change is live only: it lasts until Nova redefines the domain (hard reboot, resize, migration, rebuild) or the domain is restarted.',
      'For a permanent fix set nova.conf [libvirt] mem_stats_period_seconds = 10 on this compute node and restart nova-compute; an instance gets it when Nova next writes its XML (a hard reboot does).',
    ]);
  });
});
