// `ceilopoll doctor`: for every domain on this host, whether it gets memory.usage, and if not, why
// and what to do about it. The reasons are inspectMemory's, computed from the same bulk read the
// agent makes, so doctor and the agent cannot disagree; this file only adds the facts around a
// reason (balloon, period, last_update age) and the fixes an operator can apply.
//
// Nova facts the fixes rely on (nova/virt/libvirt/driver.py `_guest_add_memory_balloon`, checked at
// openstack/nova 00a030403f, 2026-08):
// - Nova adds a balloon only for `[libvirt] virt_type` kvm or qemu;
// - `mem_stats_period_seconds` > 0 gives `<memballoon model='virtio'><stats period='N'/>`;
// - 0 or less gives `<memballoon model='none'/>` since the fix for bug 2069192 (commit 2180c205b4:
//   32.0.0 = 2025.2, backported to 31.2.0, 30.2.0 and 29.4.0); before it, 0 or less left <memballoon>
//   out, and libvirt then adds its own virtio balloon without a period: stats-period-disabled here;
// - the option defaults to 10; a hard reboot (`_hard_reboot`) writes the domain XML anew.

import { parseDomainXml, type DomainFacts } from '../discovery/domain-xml.js';
import { NOVA_NAMESPACES } from '../discovery/nova-metadata.js';
import { fail, type Result } from '../discovery/result.js';
import { inspectMemory, isMissing, type MissingReason, type UsageFormula } from '../inspect/memory.js';
import { readMemoryStats, type DomainReading } from '../inspect/reader.js';
import type { LibvirtClient } from '../libvirt/client.js';
import { LibvirtError } from '../libvirt/errors.js';
import { DomainState } from '../libvirt/protocol.js';

/** The period doctor proposes: Nova's default for `[libvirt] mem_stats_period_seconds`. */
export const SUGGESTED_PERIOD = 10;
/** inspectMemory's default: stats older than this many periods are stale. */
export const DEFAULT_STALENESS_FACTOR = 3;

export interface DoctorOptions {
  /** libvirt_uri, as shown in the report; default: the client's */
  uri: string;
  /** stats older than factor x period are stale (default 3, as the agent) */
  stalenessFactor?: number;
  /** epoch seconds; injected so the report is reproducible */
  now?: () => number;
}

/**
 * Why a domain has no memory.usage: inspectMemory's reason, or one of discovery's (the agent does not
 * poll the domain at all).
 */
export type DoctorReason = MissingReason | 'not-a-nova-instance' | 'bad-nova-metadata' | 'domain-xml-unreadable';

/** A reason, or 'paused': a paused domain's stale numbers have their own cause and fix. */
export type ProblemId = DoctorReason | 'paused';

export interface Problem {
  /** stable: scripts and docs may key on it */
  id: ProblemId;
  /** 'note': nothing is wrong (shut off, not an instance); 'problem': memory.usage is missing and can be fixed */
  severity: 'problem' | 'note';
  /** what the id means, the same for every domain of a report */
  summary: string;
  /** what was seen on this domain */
  detail: string;
  /** concrete commands and config lines for this domain, in the order to try them */
  fixes: string[];
}

export interface DoctorRow {
  domain: string;
  uuid: string;
  /** Nova's display name; null when the domain is not a Nova instance */
  displayName: string | null;
  /** virsh's words: running, paused, shut off, ... */
  state: string;
  /** 'virtio', 'none', 'absent' (no <memballoon>), another model, or '?' when the XML could not be read */
  balloon: string;
  /** <stats period> in seconds, 0 when absent; null without a balloon or an XML */
  statsPeriod: number | null;
  /** now - the guest's last_update, in whole seconds; null when the guest gave none */
  lastUpdateAgeSeconds: number | null;
  formula: UsageFormula | null;
  /** what the agent publishes as memory.usage (MB = MiB); null when it publishes none */
  usageMb: number | null;
  /** why usageMb is null; null when it is not */
  reason: DoctorReason | null;
  problems: Problem[];
}

export interface DoctorReport {
  uri: string;
  /** the daemon's libvirt version, e.g. 9.0.0 */
  libvirtVersion: string;
  /** sorted by domain name */
  rows: DoctorRow[];
  /** rows that are Nova instances (or meant to be: their metadata does not parse) */
  instances: number;
  /** instances that get memory.usage and have nothing to fix */
  healthy: number;
  /** rows with at least one problem (severity 'problem') */
  withProblems: number;
  /** instances that are not running (shut off, crashed, ...): nothing expected, nothing to fix */
  notRunning: number;
  /** domains without Nova metadata */
  notNova: number;
}

export interface DomainDiagnosisInput {
  /** the domain's part of readMemoryStats: state, stats, and the error if its call failed */
  reading: DomainReading;
  /** its domain XML facts (parseDomainXml), or why they could not be had */
  facts: Result<DomainFacts>;
  /** epoch seconds */
  nowSeconds: number;
  stalenessFactor?: number;
}

// virsh's words (virshDomainStateToString), so a row reads like `virsh list`.
const STATE_WORDS = ['no state', 'running', 'idle', 'paused', 'in shutdown', 'shut off', 'crashed', 'pmsuspended'];
export const stateWord = (s: number): string => STATE_WORDS[s] ?? `unknown (${s})`;

const balloonWord = (model: string | null): string => (model === null ? 'absent' : model === '' ? '?' : model);

const NOVA_NS = NOVA_NAMESPACES[0];

/** Per domain: the words that go into its problem texts. */
interface Subject {
  dom: string;
  uuid: string;
  period: number;
  factor: number;
}

/** The lasting fix for a Nova instance; the report lists each instance's hard reboot under it. */
const NOVA_CONF = `nova.conf [libvirt] mem_stats_period_seconds = ${SUGGESTED_PERIOD} on this compute node (Nova's default; 0 or less disables it), restart nova-compute, then hard-reboot so Nova writes the domain XML again:`;
const hardReboot = (s: Subject): string => `openstack server reboot --hard ${s.uuid}`;

// Each problem's fixes have the same shape for every domain (line n means the same thing), so the
// report can merge them by position: general lines once, per-domain commands next to each other.
const PROBLEMS: { [K in ProblemId]: { severity: Problem['severity']; summary: (s: Subject) => string; fixes: (s: Subject, model: string | null) => string[] } } = {
  'no-balloon-device': {
    severity: 'problem',
    summary: () => "the domain has no virtio balloon, and memory.usage is computed from the guest's balloon statistics",
    fixes: (s, model) =>
      model === 'none'
        ? [
            `Nova writes <memballoon model='none'/> when mem_stats_period_seconds is 0 or less (2025.2, 31.2.0, 30.2.0, 29.4.0 and later): set ${NOVA_CONF}`,
            hardReboot(s),
            `libvirt cannot hot-plug a balloon: outside Nova, define the domain with <memballoon model='virtio'><stats period='${SUGGESTED_PERIOD}'/></memballoon> and restart it`,
          ]
        : [
            'no <memballoon> at all, although Nova adds one for [libvirt] virt_type kvm/qemu and libvirt adds a virtio one to QEMU domains that lack it: check how the domain was defined:',
            `virsh dumpxml --inactive ${s.dom}`,
            `libvirt cannot hot-plug a balloon: outside Nova, define the domain with <memballoon model='virtio'><stats period='${SUGGESTED_PERIOD}'/></memballoon> and restart it`,
          ],
  },
  'stats-period-disabled': {
    severity: 'problem',
    summary: () =>
      "the virtio balloon has no stats period: QEMU never asks the guest for fresh numbers, so they stay as they were at boot (or when a period was last turned off) (older Nova, before 2025.2 / 31.2.0 / 30.2.0 / 29.4.0, leaves this when mem_stats_period_seconds is 0 or less)",
    fixes: (s) => [
      `now: virsh dommemstat ${s.dom} --period ${SUGGESTED_PERIOD} --live`,
      `now, every such domain on this host at once: ceilopoll doctor --fix-period ${SUGGESTED_PERIOD}`,
      'either lasts until Nova redefines the domain (hard reboot, resize, migration, rebuild) or the domain is restarted',
      `for good: ${NOVA_CONF}`,
      hardReboot(s),
      `outside Nova, for good: virsh dommemstat ${s.dom} --period ${SUGGESTED_PERIOD} --config (the persistent definition, from the next start)`,
    ],
  },
  'guest-not-reporting': {
    severity: 'problem',
    summary: () => 'the balloon has a stats period but the guest sends no statistics: it has no running virtio-balloon driver (or is still booting)',
    fixes: () => [
      'Linux guest: modprobe virtio_balloon, and have it loaded at boot (kernel option CONFIG_VIRTIO_BALLOON; distribution kernels have it)',
      "Windows guest: install the virtio-win balloon driver AND its service, both are needed: blnsvr.exe -i, from the Balloon folder of the virtio-win ISO (Balloon\\<Windows version>\\<arch>)",
      'the statistics appear as soon as the driver runs: no restart needed',
    ],
  },
  stale: {
    severity: 'problem',
    summary: (s) => `the guest's statistics stopped updating: last_update is older than ${s.factor} x the stats period`,
    fixes: (s) => [
      `the guest's balloon driver no longer answers: the guest may be hung or too short of memory to reply; check its console (virsh console ${s.dom}) or the guest's own monitoring`,
      'Windows guest: check that the BLNSVR service ("Balloon Service") is running',
      `check: virsh dommemstat ${s.dom} shows last_update moving every ${s.period}s once the guest answers again`,
    ],
  },
  paused: {
    severity: 'problem',
    summary: (s) =>
      `a paused guest cannot refresh its statistics: they stay as they were when it was paused; the agent publishes them for ${s.factor} x the stats period, then reports them stale`,
    fixes: (s) => [`if it should be running: openstack server unpause ${s.uuid} (outside Nova: virsh resume ${s.dom})`],
  },
  busy: {
    severity: 'problem',
    summary: () => 'libvirt skipped the balloon query because another job holds the domain (migration, snapshot, save, or a QEMU that does not answer); the agent skips it this cycle rather than wait',
    fixes: (s) => [`usually transient: run doctor again; if it persists, virsh domjobinfo ${s.dom} shows the job, and /var/log/libvirt/qemu/${s.dom}.log what QEMU said`],
  },
  'invalid-stats': {
    severity: 'problem',
    summary: () => "libvirt returned numbers memory.usage cannot be computed from (libvirt's \"no value\", or usable above available)",
    fixes: (s) => [`virsh dommemstat ${s.dom} shows the raw numbers; they come from the guest's balloon driver: update it (the Linux kernel, virtio-win)`],
  },
  'libvirt-error': {
    severity: 'problem',
    summary: () => "libvirt could not give the domain's statistics",
    fixes: (s) => [`virsh dommemstat ${s.dom} should fail the same way; libvirtd's log says more`],
  },
  'bad-nova-metadata': {
    severity: 'problem',
    summary: () => 'the Nova metadata does not parse, so the agent does not poll this domain',
    fixes: (s) => [`virsh metadata ${s.dom} --uri ${NOVA_NS} shows what Nova wrote`],
  },
  'domain-xml-unreadable': {
    severity: 'problem',
    summary: () => 'the domain XML could not be read or parsed, so the agent does not poll this domain',
    fixes: (s) => [`virsh dumpxml ${s.dom} shows what libvirt returns`],
  },
  'not-running': {
    severity: 'note',
    summary: () => 'libvirt has no memory statistics for a domain that is not running, so no memory.usage is expected (Ceilometer skips shut-off instances too); nothing to fix',
    fixes: () => [],
  },
  'not-a-nova-instance': {
    severity: 'note',
    summary: () =>
      "no Nova metadata (nova/1.1 or nova/1.0): not an OpenStack instance, so the agent, like Ceilometer's libvirt_metadata discovery, does not poll it; nothing to fix unless it should be one",
    fixes: () => [],
  },
};

/** The catalog order: problems first, then notes; the report lists them in this order. */
export const PROBLEM_ORDER = Object.keys(PROBLEMS) as ProblemId[];

function problem(id: ProblemId, s: Subject, detail: string, model: string | null = null): Problem {
  const p = PROBLEMS[id];
  return { id, severity: p.severity, summary: p.summary(s), detail, fixes: p.fixes(s, model) };
}

/** A domain's row from its reading and its XML facts. Pure. */
export function diagnoseDomain(input: DomainDiagnosisInput): DoctorRow {
  const { reading, facts, nowSeconds } = input;
  const factor = input.stalenessFactor ?? DEFAULT_STALENESS_FACTOR;
  const base = { domain: reading.domain.name, uuid: reading.domain.uuid, state: stateWord(reading.state) };
  const subject = (period: number): Subject => ({ dom: base.domain, uuid: base.uuid, period, factor });
  const blank = { lastUpdateAgeSeconds: null, formula: null, usageMb: null };

  if (!facts.ok) {
    return {
      ...base, ...blank, displayName: null, balloon: '?', statsPeriod: null, reason: 'domain-xml-unreadable',
      problems: [problem('domain-xml-unreadable', subject(0), facts.reason)],
    };
  }
  const { balloon, nova } = facts.value;
  const hasBalloon = balloon.model !== null && balloon.model !== 'none';
  const period = hasBalloon ? balloon.statsPeriod : null;
  const inspection = inspectMemory({
    state: reading.state,
    balloon,
    stats: reading.stats,
    error: reading.error,
    fromBulk: reading.fromBulk,
    unanswered: reading.unanswered,
    nowSeconds,
    stalenessFactor: factor,
  });
  const lastUpdateAgeSeconds = inspection.lastUpdate === null ? null : Math.round(nowSeconds - inspection.lastUpdate);
  const shown = { ...base, balloon: balloonWord(balloon.model), statsPeriod: period, lastUpdateAgeSeconds };
  const s = subject(balloon.statsPeriod);

  if (nova === null) {
    return {
      ...shown, displayName: null, formula: null, usageMb: null, reason: 'not-a-nova-instance',
      problems: [problem('not-a-nova-instance', s, 'no Nova metadata in <metadata>')],
    };
  }
  if (!nova.ok) {
    return { ...shown, displayName: null, formula: null, usageMb: null, reason: 'bad-nova-metadata', problems: [problem('bad-nova-metadata', s, nova.reason)] };
  }
  const displayName = nova.value.displayName;
  const usage = inspection.usage;
  if (!isMissing(usage)) {
    return { ...shown, displayName, formula: usage.formula, usageMb: usage.value, reason: null, problems: [] };
  }
  const id: ProblemId = usage.reason === 'stale' && reading.state === DomainState.PAUSED ? 'paused' : usage.reason;
  return { ...shown, displayName, formula: null, usageMb: null, reason: usage.reason, problems: [problem(id, s, conciseDetail(usage.reason, usage.detail, reading, balloon.statsPeriod), balloon.model)] };
}

/** inspectMemory's detail, except where it only repeats the problem's summary. */
function conciseDetail(reason: MissingReason, detail: string, reading: DomainReading, period: number): string {
  if (reason === 'stats-period-disabled') return 'virtio balloon, no <stats period>';
  if (reason === 'guest-not-reporting') {
    const lu = reading.stats?.last_update;
    return `stats period ${period}s, no available/usable/unused from the guest, last_update ${lu === undefined ? 'absent' : lu}`;
  }
  return detail;
}

/** libvirt's version number (major * 1e6 + minor * 1e3 + micro) as text. */
export const versionText = (v: number): string => `${Math.floor(v / 1e6)}.${Math.floor(v / 1e3) % 1000}.${v % 1000}`;

const byName = (a: DoctorRow, b: DoctorRow): number => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : a.uuid < b.uuid ? -1 : 1);

/** Counts the rows the way the summary line reads them. */
export function summarize(uri: string, libvirtVersion: string, unsorted: DoctorRow[]): DoctorReport {
  const rows = [...unsorted].sort(byName);
  const notNova = rows.filter((r) => r.reason === 'not-a-nova-instance').length;
  return {
    uri,
    libvirtVersion,
    rows,
    instances: rows.length - notNova,
    healthy: rows.filter((r) => r.problems.length === 0).length,
    withProblems: rows.filter((r) => r.problems.some((p) => p.severity === 'problem')).length,
    notRunning: rows.filter((r) => r.reason === 'not-running').length,
    notNova,
  };
}

/**
 * Diagnoses every domain: one bulk stats call (the agent's), then each domain's XML, all in flight
 * at once. Read-only.
 */
export async function diagnose(client: LibvirtClient, opts: Partial<DoctorOptions> = {}): Promise<DoctorReport> {
  const now = opts.now ?? ((): number => Date.now() / 1000);
  const reading = await readMemoryStats(client);
  const xmls = await Promise.all(reading.readings.map(async (r): Promise<Result<DomainFacts> | null> => {
    try {
      return parseDomainXml(await client.getXmlDesc(r.domain));
    } catch (err) {
      // Undefined between the two calls: the agent would not see it either.
      if (err instanceof LibvirtError && err.isNoDomain) return null;
      return fail(`cannot read its XML: ${(err as Error).message}`);
    }
  }));
  const version = versionText(await client.libVersion());
  const nowSeconds = now();
  const rows = reading.readings.flatMap((r, i) => {
    const facts = xmls[i];
    return facts === null || facts === undefined ? [] : [diagnoseDomain({ reading: r, facts, nowSeconds, stalenessFactor: opts.stalenessFactor })];
  });
  return summarize(opts.uri ?? client.uri, version, rows);
}
