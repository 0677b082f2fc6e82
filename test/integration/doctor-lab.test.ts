// `ceilopoll doctor` against the lab's real QEMU guests: each profile gives the row and the problem
// an operator would have to act on, the reasons are the agent's own, and --fix-period really sets
// the live stats period of the guest without one (then the lab is put back as it was).

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { pollCycle } from '../../src/agent/poll-cycle.js';
import { Inventory } from '../../src/discovery/inventory.js';
import { isMissing } from '../../src/inspect/memory.js';
import { LibvirtClient } from '../../src/libvirt/client.js';
import { randomIds, systemClock } from '../../src/samples/clock.js';
import { MEMORY_METERS } from '../../src/samples/meters.js';
import { diagnose, fixPeriod, formatDoctorReport, formatFixResults, type DoctorReport, type DoctorRow } from '../../src/doctor/index.js';
import { guestOf, labGuests, until, virsh, virshDommemstat, type LabGuest } from '../support/lab.js';

const URI = 'qemu:///system';
// Whole seconds, so that a row's age gives back the guest's last_update exactly.
const now = (): number => Math.floor(Date.now() / 1000);
let guests: LabGuest[];
let ro: LibvirtClient;
let rw: LibvirtClient;
let noLab: Error | undefined;

// Without the lab every test fails with the reason ("run `make lab-up` first"), none is skipped.
beforeAll(async () => {
  try {
    guests = labGuests();
    ro = await LibvirtClient.connect({ uri: URI });
    rw = await LibvirtClient.connect({ uri: URI, readOnly: false });
  } catch (err) {
    const msg = (err as Error).message;
    noLab = new Error(msg.includes('make lab-up') ? msg : `the lab is not up (${msg}): run \`make lab-up\``);
  }
});
beforeEach(() => {
  if (noLab) throw noLab;
});
afterAll(async () => {
  await ro?.close();
  await rw?.close();
});

const rowOf = (r: DoctorReport, name: string): DoctorRow => {
  const row = r.rows.find((x) => x.domain === name);
  if (!row) throw new Error(`no doctor row for ${name}; rows: ${r.rows.map((x) => x.domain).join(', ')}`);
  return row;
};
const problemIds = (row: DoctorRow): string[] => row.problems.map((p) => p.id);
const livePeriod = async (dom: string): Promise<string | undefined> => /<stats period='(\d+)'\/>/.exec(await virsh(['dumpxml', dom]))?.[1];

describe('doctor over the lab', () => {
  it('gives each profile its row', async () => {
    const r = await diagnose(ro, { uri: URI, now });
    expect(r.rows.map((x) => x.domain)).toEqual([...r.rows.map((x) => x.domain)].sort());
    for (const g of guests) {
      const row = rowOf(r, g.name);
      expect(row.uuid).toBe(g.uuid);
      expect(row.displayName).not.toBeNull();
      switch (g.profile) {
        case 'stats':
          expect(row).toMatchObject({ state: 'running', balloon: 'virtio', statsPeriod: 10, formula: 'available-usable', reason: null, problems: [] });
          expect(row.usageMb).toBeGreaterThan(0);
          expect(row.lastUpdateAgeSeconds).toBeLessThanOrEqual(30);
          break;
        case 'none':
          expect(row).toMatchObject({ state: 'running', balloon: 'none', statsPeriod: null, usageMb: null, reason: 'no-balloon-device' });
          expect(problemIds(row)).toEqual(['no-balloon-device']);
          break;
        case 'nostats':
          expect(row).toMatchObject({ state: 'running', balloon: 'virtio', statsPeriod: 0, usageMb: null, reason: 'stats-period-disabled' });
          expect(problemIds(row)).toEqual(['stats-period-disabled']);
          break;
        case 'noballoon':
          expect(row).toMatchObject({ state: 'running', balloon: 'virtio', statsPeriod: 10, lastUpdateAgeSeconds: null, usageMb: null, reason: 'guest-not-reporting' });
          expect(problemIds(row)).toEqual(['guest-not-reporting']);
          break;
        case 'paused': {
          // Its numbers froze when it was suspended: stale once older than 3 periods (up.sh may have paused it lately).
          expect(row).toMatchObject({ state: 'paused', balloon: 'virtio', statsPeriod: 10 });
          const age = row.lastUpdateAgeSeconds!;
          expect(Math.abs(age - (now() - (await virshDommemstat(g.name)).last_update!))).toBeLessThanOrEqual(2);
          if (age > 30) expect(row).toMatchObject({ reason: 'stale', usageMb: null, problems: [expect.objectContaining({ id: 'paused' })] });
          else expect(row).toMatchObject({ reason: null, formula: 'available-usable', problems: [] });
          break;
        }
        case 'shutoff':
          expect(row).toMatchObject({ state: 'shut off', lastUpdateAgeSeconds: null, usageMb: null, reason: 'not-running' });
          expect(row.problems).toEqual([expect.objectContaining({ id: 'not-running', severity: 'note', fixes: [] })]);
          break;
      }
    }
    expect(r.healthy + r.withProblems + r.notRunning).toBe(r.instances);
    expect(r.libvirtVersion).toBe(/Using library: libvirt (\S+)/.exec(await virsh(['version']))?.[1]);
  });

  it('reports memory.usage as virsh dommemstat gives it: (available - usable) / 1024', async () => {
    for (const g of guests.filter((x) => x.profile === 'stats')) {
      const t = now();
      const row = rowOf(await diagnose(ro, { now: () => t }), g.name);
      const v = await virshDommemstat(g.name);
      const oracle = (v.available! - v.usable!) / 1024;
      // The same report (last_update unchanged): exactly; a refresh in between: within what one refresh moves.
      if (t - row.lastUpdateAgeSeconds! === v.last_update) expect(row.usageMb).toBe(oracle);
      else expect(Math.abs(row.usageMb! - oracle)).toBeLessThan(4);
    }
  });

  it('gives the reasons the agent gives', async () => {
    const cycle = await pollCycle({ client: ro, inventory: new Inventory(), meters: MEMORY_METERS, unit: 'MB', clock: systemClock, ids: randomIds });
    const r = await diagnose(ro, { now });
    for (const ir of cycle.instances) {
      const row = rowOf(r, ir.instance.domainName);
      const paused = guestOf('paused').name === row.domain && Math.abs((row.lastUpdateAgeSeconds ?? 0) - 30) <= 2;
      if (paused) continue; // on the staleness edge between the two reads
      expect(row.reason, row.domain).toBe(isMissing(ir.inspection.usage) ? ir.inspection.usage.reason : null);
    }
  });

  it('prints a row per guest, the summary and each problem', async () => {
    const text = formatDoctorReport(await diagnose(ro, { uri: URI, now }));
    const lines = text.split('\n');
    for (const g of guests) expect(lines.some((l) => l.startsWith(`${g.name}  `)), g.name).toBe(true);
    expect(text).toMatch(/^\d+ instances?: \d+ healthy, \d+ with problems(, \d+ not running)?$/m);
    for (const id of ['no-balloon-device', 'stats-period-disabled', 'guest-not-reporting', 'not-running (note)']) expect(text).toMatch(new RegExp(`^${id.replace(/[()]/g, '\\$&')}: `, 'm'));
    expect(text).toContain(`virsh dommemstat ${guestOf('nostats').name} --period 10 --live`);
  });
});

describe('doctor --fix-period', () => {
  const restore = async (): Promise<void> => {
    const dom = guestOf('nostats').name;
    if ((await livePeriod(dom)) !== undefined) await virsh(['dommemstat', dom, '--period', '0', '--live']);
  };
  afterAll(async () => {
    if (!noLab) await restore(); // also when a test failed half-way
  });

  it('refuses a period outside 1..86400 and a read-only connection', async () => {
    for (const bad of [0, -10, 86_401, 1.5, Number.NaN]) await expect(fixPeriod(rw, bad)).rejects.toThrow(RangeError);
    await expect(fixPeriod(rw, 0)).rejects.toThrow(/whole number of seconds from 1 to 86400, not 0/);
    await expect(fixPeriod(ro, 10)).rejects.toThrow(/read-write/);
  });

  it('sets the period of the guest without one, skips the others with their reason, and the lab is put back', async () => {
    const nostats = guestOf('nostats').name;
    expect(await livePeriod(nostats)).toBeUndefined();
    try {
      const results = await fixPeriod(rw, 10, { domains: guests.map((g) => g.name) });
      const outcome = (name: string) => results.find((x) => x.domain === name);
      for (const g of guests) {
        const res = outcome(g.name);
        switch (g.profile) {
          case 'nostats': expect(res).toMatchObject({ outcome: 'set', detail: 'stats period set to 10s (live)' }); break;
          case 'stats': case 'noballoon': expect(res).toMatchObject({ outcome: 'skipped', detail: 'already has a period (10s)' }); break;
          case 'none': expect(res).toMatchObject({ outcome: 'skipped', detail: "no balloon device (<memballoon model='none'/>)" }); break;
          case 'shutoff': expect(res).toMatchObject({ outcome: 'skipped', detail: 'not running (shut off)' }); break;
          case 'paused': expect(res).toMatchObject({ outcome: 'skipped', detail: 'not running (paused)' }); break;
        }
      }
      expect(formatFixResults(results, 10)).toMatch(/^1 set, \d+ skipped, 0 failed\.$/m);
      expect(await livePeriod(nostats)).toBe('10');

      expect(await fixPeriod(rw, 10, { domains: [nostats] })).toEqual([
        { domain: nostats, uuid: guestOf('nostats').uuid, outcome: 'skipped', detail: 'already has a period (10s)' },
      ]);
      // libvirt asks the guest at once when the period is set: memory.usage is there right away
      const row = await until('the nostats guest to get memory.usage', async () => {
        const r = rowOf(await diagnose(ro, { now }), nostats);
        return r.reason === null ? r : null;
      }, 25_000, 500);
      expect(row).toMatchObject({ statsPeriod: 10, formula: 'available-usable', problems: [] });
    } finally {
      await restore();
    }
    expect(await livePeriod(nostats)).toBeUndefined();
    expect(rowOf(await diagnose(ro, { now }), nostats).reason).toBe('stats-period-disabled');
  });

  it('names a domain that does not exist, and goes on', async () => {
    const results = await fixPeriod(rw, 10, { domains: ['no-such-domain-doctor', guestOf('stats').name] });
    expect(results).toEqual([
      expect.objectContaining({ domain: guestOf('stats').name, outcome: 'skipped' }),
      { domain: 'no-such-domain-doctor', uuid: null, outcome: 'failed', detail: 'no such domain' },
    ]);
  });
});
