import { describe, expect, it } from 'vitest';

import type { AgentSnapshot } from '../../src/agent/snapshot.js';
import { formatStateReport } from '../../src/agent/state-report.js';

const NOW = Date.parse('2024-05-01T12:00:00.000Z');
const REDACTED_URL = 'rabbit://ceilometer:***@rabbit1:5672/';

function snapshot(): AgentSnapshot {
  return {
    now: NOW,
    startedAt: NOW - 93_784_000,
    pid: 4242,
    version: '0.1.0',
    hostname: 'compute-1',
    config: { transport_url: REDACTED_URL, libvirt_uri: 'qemu:///system', 'polling.interval': '10' },
    libvirt: { uri: 'qemu:///system', connected: true, readOnly: true, since: NOW - 3_600_000, lastError: null, reconnects: 2 },
    broker: { target: REDACTED_URL, connected: false, since: NOW - 120_000, lastError: 'connect ECONNREFUSED 10.0.0.5:5672' },
    inventory: {
      instances: [
        {
          uuid: 'c0ffee00-0000-4000-8000-000000000001',
          domainName: 'instance-00000001',
          displayName: 'web-1',
          state: 'running',
          values: { 'memory.usage': 1843, 'memory.resident': 2100 },
          missing: {},
        },
        {
          uuid: 'c0ffee00-0000-4000-8000-000000000002',
          domainName: 'instance-00000002',
          displayName: 'db-1',
          state: 'running',
          values: {},
          missing: {
            'memory.usage': { reason: 'stats-period-disabled', detail: 'memory stats period is 0' },
            'memory.resident': { reason: 'stats-period-disabled', detail: 'memory stats period is 0' },
          },
        },
      ],
      skipped: [{ uuid: 'c0ffee00-0000-4000-8000-0000000000ff', name: 'build-vm', reason: 'no Nova metadata' }],
    },
    tasks: [
      {
        name: 'memory-10s',
        intervalSeconds: 10,
        meters: ['memory.usage', 'memory.resident'],
        runs: 100,
        skipped: 1,
        failures: 2,
        running: false,
        lastStartedAt: NOW - 4000,
        lastFinishedAt: NOW - 3000,
        lastDurationMs: 987.4,
        lastError: 'not connected to libvirtd',
        lastSuccessAt: NOW - 13_000,
      },
    ],
    lastCycle: { task: 'memory-10s', at: NOW - 3000, durationMs: 987, instances: 2, samples: 3, missingByReason: { 'stats-period-disabled': 1, stale: 0 } },
    spool: { path: '/var/lib/ceilopoll/spool.db', depth: 42, bytes: 84_000, dropped: 5, oldestAgeMs: 118_000 },
    delivery: { confirmed: 1000, inFlight: 3, publishFailures: 7 },
  };
}

/** The lines of one section: between its `==== Title ====` header block and the next rule. */
function section(report: string, title: string): string[] {
  const lines = report.split('\n');
  const at = lines.findIndex((l) => /^====\s+(.*?)\s+====$/.exec(l)?.[1] === title);
  if (at < 0) throw new Error(`no section ${title} in:\n${report}`);
  const rest = lines.slice(at + 2);
  const end = rest.findIndex((l) => l.startsWith('===='));
  return rest.slice(0, end < 0 ? undefined : end).filter((l) => l !== '');
}

describe('formatStateReport', () => {
  const report = formatStateReport(snapshot());

  it('has a banner, then the sections in order, each under a ==== header', () => {
    const titles = [...report.matchAll(/^====\s+(.*?)\s+====$/gm)].map((m) => m[1]);
    expect(titles).toEqual([
      'ceilopoll state report',
      'Package',
      'Configuration',
      'Connections',
      'Tasks',
      'Last cycle',
      'Inventory',
      'Skipped domains',
      'Spool',
      'Delivery',
    ]);
    for (const line of report.split('\n').filter((l) => l.startsWith('===='))) expect(line).toHaveLength(72);
    expect(report.endsWith('\n')).toBe(true);
  });

  it('gives the package: version, pid, hostname, start and uptime', () => {
    expect(section(report, 'Package')).toEqual([
      'product     = ceilopoll',
      'version     = 0.1.0',
      'pid         = 4242',
      'hostname    = compute-1',
      'started     = 2024-04-30T09:56:56.000Z (93784 s ago)',
      'uptime      = 1 d 2 h 3 min 4 s',
      'report time = 2024-05-01T12:00:00.000Z',
    ]);
  });

  it('gives the configuration as the snapshot has it, keys aligned', () => {
    expect(section(report, 'Configuration')).toEqual([
      `transport_url    = ${REDACTED_URL}`,
      'libvirt_uri      = qemu:///system',
      'polling.interval = 10',
    ]);
  });

  it('gives both connections with state, since, last error and reconnects', () => {
    expect(section(report, 'Connections')).toEqual([
      'libvirt',
      '  uri        = qemu:///system',
      '  state      = connected (read-only)',
      '  since      = 2024-05-01T11:00:00.000Z (3600 s ago)',
      '  last error = -',
      '  reconnects = 2',
      'broker',
      `  target     = ${REDACTED_URL}`,
      '  state      = not connected',
      '  since      = 2024-05-01T11:58:00.000Z (120 s ago)',
      '  last error = connect ECONNREFUSED 10.0.0.5:5672',
    ]);
  });

  it('gives each task its interval, meters, counts, times and last error', () => {
    expect(section(report, 'Tasks')).toEqual([
      'memory-10s',
      '  interval      = 10 s',
      '  meters        = memory.usage, memory.resident',
      '  runs          = 100 (skipped 1, failures 2)',
      '  running       = no',
      '  last start    = 2024-05-01T11:59:56.000Z (4 s ago)',
      '  last finish   = 2024-05-01T11:59:57.000Z (3 s ago)',
      '  last duration = 987 ms',
      '  last success  = 2024-05-01T11:59:47.000Z (13 s ago)',
      '  last error    = not connected to libvirtd',
    ]);
  });

  it('gives the last cycle with the non-zero missing reasons', () => {
    expect(section(report, 'Last cycle')).toEqual([
      'task          = memory-10s',
      'at            = 2024-05-01T11:59:57.000Z (3 s ago)',
      'duration      = 987 ms',
      'instances     = 2',
      'samples       = 3',
      'missing usage = stats-period-disabled 1',
    ]);
  });

  it('gives the inventory as a table, then the detail of each missing reason', () => {
    expect(section(report, 'Inventory')).toEqual([
      'DOMAIN             DISPLAY NAME  UUID                                  STATE    MEMORY.USAGE  MISSING',
      'instance-00000001  web-1         c0ffee00-0000-4000-8000-000000000001  running  1843          -',
      'instance-00000002  db-1          c0ffee00-0000-4000-8000-000000000002  running  -             stats-period-disabled',
      'missing:',
      '  instance-00000002 memory.usage, memory.resident: stats-period-disabled: memory stats period is 0',
    ]);
  });

  it('gives the skipped domains, the spool and delivery', () => {
    expect(section(report, 'Skipped domains')).toEqual([
      'DOMAIN    UUID                                  REASON',
      'build-vm  c0ffee00-0000-4000-8000-0000000000ff  no Nova metadata',
    ]);
    expect(section(report, 'Spool')).toEqual([
      'path       = /var/lib/ceilopoll/spool.db',
      'depth      = 42 notifications',
      'bytes      = 84000',
      'dropped    = 5',
      'oldest age = 118 s',
    ]);
    expect(section(report, 'Delivery')).toEqual(['confirmed        = 1000', 'in flight        = 3', 'publish failures = 7']);
  });

  it('says so when there is nothing yet: no cycle, no instances, no delivery, never succeeded', () => {
    const s = snapshot();
    s.lastCycle = null;
    s.inventory = { instances: [], skipped: [] };
    s.delivery = null;
    s.libvirt.since = null;
    s.tasks[0]!.lastSuccessAt = null;
    s.spool.oldestAgeMs = null;
    const r = formatStateReport(s);
    expect(section(r, 'Last cycle')).toEqual(['none yet']);
    expect(section(r, 'Inventory')).toEqual(['none']);
    expect(section(r, 'Skipped domains')).toEqual(['none']);
    expect(section(r, 'Delivery')).toEqual(['not started']);
    expect(section(r, 'Connections')).toContain('  since      = -');
    expect(section(r, 'Tasks')).toContain('  last success  = never');
    expect(section(r, 'Spool')).toContain('oldest age = -');
  });

  it('escapes control characters from outside, so a display name or error cannot forge report lines', () => {
    const s = snapshot();
    s.inventory.instances[0]!.displayName = 'evil\n==== Delivery ====';
    s.broker.lastError = 'bad\r\nthing';
    const r = formatStateReport(s);
    expect(r).toContain('evil\\u000a==== Delivery ====');
    expect(r).toContain('last error = bad\\u000d\\u000athing');
    expect(r.split('\n').filter((l) => l.startsWith('==== '))).toHaveLength(10);
  });

  it('shows no secret: config and broker target appear exactly as redacted in the snapshot', () => {
    expect(report).toContain(REDACTED_URL);
    expect(report).not.toMatch(/:\/\/[^:/\s]+:(?!\*\*\*@)[^@/\s]+@/);
  });
});
