// The stats shapes below are the ones the lab's real QEMU guests produce per balloon case
// (test/lab/README.md), so every reason is tied to a case an operator can meet.

import { describe, expect, it } from 'vitest';

import { balloonToMemoryStats, inspectMemory, isMissing, type InspectInput, type Missing } from '../../src/inspect/memory.js';
import { DomainState, U64_MAX_AS_NUMBER, type MemoryStats } from '../../src/libvirt/protocol.js';

const NOW = 1_795_706_520;
const full: MemoryStats = {
  actual: 131072, swap_in: 0, swap_out: 0, major_fault: 120, minor_fault: 34567, unused: 43036, available: 94800,
  usable: 48668, last_update: NOW - 3, disk_caches: 1000, hugetlb_pgalloc: 0, hugetlb_pgfail: 0, rss: 230644,
};
const virtio10 = { model: 'virtio', statsPeriod: 10 };
const input = (over: Partial<InspectInput>): InspectInput => ({
  state: DomainState.RUNNING, balloon: virtio10, stats: full, fromBulk: false, nowSeconds: NOW, ...over,
});
const reasonOf = (v: unknown): string => (isMissing(v) ? v.reason : 'value');

describe('memory.usage', () => {
  it('is (available - usable) / 1024 when usable is reported', () => {
    expect(inspectMemory(input({})).usage).toEqual({ value: (94800 - 48668) / 1024, formula: 'available-usable' });
  });

  it('falls back to (available - unused) / 1024 without usable (older guests)', () => {
    const { usable: _u, ...noUsable } = full;
    expect(inspectMemory(input({ stats: noUsable })).usage).toEqual({ value: (94800 - 43036) / 1024, formula: 'available-unused' });
  });

  it('is 0 when the guest uses nothing, never negative', () => {
    expect(inspectMemory(input({ stats: { ...full, usable: 94800 } })).usage).toEqual({ value: 0, formula: 'available-usable' });
    const neg = inspectMemory(input({ stats: { ...full, usable: 94801 } })).usage as Missing;
    expect(neg.reason).toBe('invalid-stats');
    expect(neg.detail).toMatch(/usable \(94801 KiB\) exceeds available \(94800 KiB\)/);
  });

  it('treats 2^64-1 and -1 as missing, not as numbers', () => {
    expect(reasonOf(inspectMemory(input({ stats: { ...full, available: U64_MAX_AS_NUMBER } })).usage)).toBe('invalid-stats');
    expect(reasonOf(inspectMemory(input({ stats: { ...full, usable: -1 } })).usage)).toBe('invalid-stats');
    expect(reasonOf(inspectMemory(input({ stats: { ...full, rss: U64_MAX_AS_NUMBER } })).resident)).toBe('invalid-stats');
  });
});

describe('one reason per missing value', () => {
  it.each([
    ['shut off', input({ state: DomainState.SHUTOFF, stats: null }), 'not-running', /shut off/],
    ['crashed', input({ state: DomainState.CRASHED, stats: null }), 'not-running', /crashed/],
    ['<memballoon model=none/> (rss only)', input({ balloon: { model: 'none', statsPeriod: 0 }, stats: { rss: 227728 } }), 'no-balloon-device', /model='none'/],
    ['no <memballoon> at all', input({ balloon: { model: null, statsPeriod: 0 }, stats: { rss: 1 } }), 'no-balloon-device', /no <memballoon>/],
    ['virtio without a stats period (boot-time snapshot)', input({ balloon: { model: 'virtio', statsPeriod: 0 }, stats: { ...full, last_update: NOW - 900 } }), 'stats-period-disabled', /no <stats period>/],
    ['guest without the balloon driver: actual, last_update 0, rss', input({ stats: { actual: 131072, last_update: 0, rss: 230520 } }), 'guest-not-reporting', /BLNSVR/],
    ['guest numbers older than 3 periods', input({ stats: { ...full, last_update: NOW - 31 } }), 'stale', /31s old, over 3 x the 10s stats period/],
    ['a paused domain, frozen numbers', input({ state: DomainState.PAUSED, stats: { ...full, last_update: NOW - 100 } }), 'stale', /\(the domain is paused\)/],
    ['numbers without last_update', input({ stats: { ...full, last_update: 0 } }), 'stale', /no last_update/],
    ['NOWAIT skipped a busy domain (current and maximum only)', input({ fromBulk: true, stats: balloonToMemoryStats({ current: 131072, maximum: 131072 }) }), 'busy', /busy with another job/],
    ['the per-domain call failed', input({ stats: null, error: new Error('DOMAIN_MEMORY_STATS: internal error (code 1, domain 10)') }), 'libvirt-error', /internal error/],
  ])('%s', (_case, inp, reason, detail) => {
    const usage = inspectMemory(inp).usage as Missing;
    expect(usage.reason).toBe(reason);
    expect(usage.detail).toMatch(detail);
  });

  it('is stale only past the configured factor', () => {
    expect(reasonOf(inspectMemory(input({ stats: { ...full, last_update: NOW - 30 } })).usage)).toBe('value');
    expect(reasonOf(inspectMemory(input({ stats: { ...full, last_update: NOW - 30 }, stalenessFactor: 2 })).usage)).toBe('stale');
  });
});

describe('the other memory meters', () => {
  it('reports rss, swap, actual and available in MB for a reporting guest', () => {
    const r = inspectMemory(input({}));
    expect([r.resident, r.swapIn, r.swapOut, r.actual, r.available, r.lastUpdate]).toEqual([230644 / 1024, 0, 0, 128, 94800 / 1024, NOW - 3]);
  });

  it('keeps host-side rss and actual when the guest does not report', () => {
    const r = inspectMemory(input({ stats: { actual: 131072, last_update: 0, rss: 230520 } }));
    expect(r.resident).toBe(230520 / 1024);
    expect(r.actual).toBe(128);
    expect(reasonOf(r.swapIn)).toBe('guest-not-reporting');
    expect(r.lastUpdate).toBeNull();
  });

  it('gives rss but no actual without a balloon device', () => {
    const r = inspectMemory(input({ balloon: { model: 'none', statsPeriod: 0 }, stats: { rss: 227728 } }));
    expect(r.resident).toBe(227728 / 1024);
    expect(reasonOf(r.actual)).toBe('no-balloon-device');
  });

  it('gives swap only when both directions are reported (as Ceilometer does)', () => {
    const { swap_out: _o, ...onlyIn } = full;
    const r = inspectMemory(input({ stats: onlyIn }));
    expect(reasonOf(r.swapIn)).toBe('guest-not-reporting');
    expect(reasonOf(r.swapOut)).toBe('guest-not-reporting');
  });

  it('marks everything busy when NOWAIT skipped the domain', () => {
    const r = inspectMemory(input({ fromBulk: true, stats: { actual: 131072 } }));
    expect([r.usage, r.resident, r.actual, r.available].map(reasonOf)).toEqual(['busy', 'busy', 'busy', 'busy']);
  });

  it('maps the bulk call\'s names to memory stats names', () => {
    expect(balloonToMemoryStats({ current: 1, maximum: 2, last_update: 3, rss: 4 })).toEqual({ actual: 1, last_update: 3, rss: 4 });
  });
});
