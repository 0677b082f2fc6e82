// The state report the agent writes to stderr on SIGUSR2, in the manner of oslo.reports' Guru
// Meditation Report (which Ceilometer's own agents print on SIGUSR2): a banner, then one section
// per subject under a `====` header. A pure function of a snapshot; plain text with aligned
// columns, for a person reading a log or a bug report. Text from outside (display names, errors)
// goes through `printable`, so it cannot forge lines or move the cursor.

import { printable, renderTable } from '../cli/table.js';
import type { AgentSnapshot, InstanceSnapshot, TaskSnapshot } from './snapshot.js';

const WIDTH = 72;
const USAGE_METER = 'memory.usage';

export function formatStateReport(s: AgentSnapshot): string {
  const at = (t: number | null): string => timeAgo(s.now, t);
  const since = (t: number | null): string => (t === null ? '-' : at(t));
  const sections: Array<[string, string]> = [
    ['Package', keyValues([
      ['product', 'ceilopoll'],
      ['version', s.version],
      ['pid', String(s.pid)],
      ['hostname', s.hostname],
      ['started', at(s.startedAt)],
      ['uptime', duration(s.now - s.startedAt)],
      ['report time', new Date(s.now).toISOString()],
    ])],
    ['Configuration', Object.keys(s.config).length === 0 ? 'none' : keyValues(Object.entries(s.config))],
    ['Connections', [
      'libvirt',
      keyValues([
        ['uri', s.libvirt.uri],
        ['state', `${s.libvirt.connected ? 'connected' : 'not connected'}${s.libvirt.readOnly ? ' (read-only)' : ' (read-write)'}`],
        ['since', since(s.libvirt.since)],
        ['last error', s.libvirt.lastError ?? '-'],
        ['reconnects', String(s.libvirt.reconnects)],
      ], '  '),
      '',
      'broker',
      keyValues([
        ['target', s.broker.target],
        ['state', s.broker.connected ? 'connected' : 'not connected'],
        ['since', since(s.broker.since)],
        ['last error', s.broker.lastError ?? '-'],
      ], '  '),
    ].join('\n')],
    ['Tasks', s.tasks.length === 0 ? 'none' : s.tasks.map((t) => task(t, at)).join('\n\n')],
    ['Last cycle', s.lastCycle === null ? 'none yet' : keyValues([
      ['task', s.lastCycle.task],
      ['at', at(s.lastCycle.at)],
      ['duration', `${Math.round(s.lastCycle.durationMs)} ms`],
      ['instances', String(s.lastCycle.instances)],
      ['samples', String(s.lastCycle.samples)],
      ['missing usage', countsText(s.lastCycle.missingByReason)],
    ])],
    ['Inventory', inventory(s.inventory.instances)],
    ['Skipped domains', s.inventory.skipped.length === 0 ? 'none' : renderTable(
      ['DOMAIN', 'UUID', 'REASON'],
      s.inventory.skipped.map((d) => [d.name, d.uuid, d.reason].map(printable)),
    )],
    ['Spool', keyValues([
      ['path', s.spool.path],
      ['depth', `${s.spool.depth} notifications`],
      ['bytes', String(s.spool.bytes)],
      ['dropped', String(s.spool.dropped)],
      ['oldest age', s.spool.oldestAgeMs === null ? '-' : `${seconds(s.spool.oldestAgeMs)} s`],
    ])],
    ['Delivery', s.delivery === null ? 'not started' : keyValues([
      ['confirmed', String(s.delivery.confirmed)],
      ['in flight', String(s.delivery.inFlight)],
      ['publish failures', String(s.delivery.publishFailures)],
    ])],
  ];
  const rule = '='.repeat(WIDTH);
  const banner = [rule, header('ceilopoll state report'), rule, '|'.repeat(WIDTH)].join('\n');
  const body = sections.map(([title, text]) => [rule, header(title), rule, text].join('\n'));
  return `${[banner, ...body].join('\n\n')}\n`;
}

function task(t: TaskSnapshot, at: (t: number | null) => string): string {
  return [
    printable(t.name),
    keyValues([
      ['interval', `${t.intervalSeconds} s`],
      ['meters', t.meters.join(', ') || '-'],
      ['runs', `${t.runs} (skipped ${t.skipped}, failures ${t.failures})`],
      ['running', t.running ? 'yes' : 'no'],
      ['last start', at(t.lastStartedAt)],
      ['last finish', at(t.lastFinishedAt)],
      ['last duration', t.lastDurationMs === null ? '-' : `${Math.round(t.lastDurationMs)} ms`],
      ['last success', at(t.lastSuccessAt)],
      ['last error', t.lastError ?? '-'],
    ], '  '),
  ].join('\n');
}

/** The table, then one line per instance with missing meters giving each reason's detail. */
function inventory(instances: readonly InstanceSnapshot[]): string {
  if (instances.length === 0) return 'none';
  const table = renderTable(
    ['DOMAIN', 'DISPLAY NAME', 'UUID', 'STATE', USAGE_METER.toUpperCase(), 'MISSING'],
    instances.map((i) => [
      i.domainName,
      i.displayName,
      i.uuid,
      i.state,
      i.values[USAGE_METER] === undefined ? '-' : String(i.values[USAGE_METER]),
      [...new Set(Object.values(i.missing).map((m) => m.reason))].join(', ') || '-',
    ].map(printable)),
  );
  const details: string[] = [];
  for (const i of instances) {
    // meters sharing one reason and detail on one line: usually all of them at once
    const byWhy = new Map<string, string[]>();
    for (const [meter, m] of Object.entries(i.missing)) {
      const why = `${m.reason}: ${m.detail}`;
      byWhy.set(why, [...(byWhy.get(why) ?? []), meter]);
    }
    for (const [why, meters] of byWhy) details.push(printable(`${i.domainName} ${meters.join(', ')}: ${why}`));
  }
  return details.length === 0 ? table : `${table}\n\nmissing:\n${details.map((d) => `  ${d}`).join('\n')}`;
}

function header(title: string): string {
  const inner = WIDTH - 8;
  const left = Math.max(0, Math.floor((inner - title.length) / 2));
  return `====${' '.repeat(left)}${title}${' '.repeat(Math.max(0, inner - left - title.length))}====`;
}

/** `key = value` lines, keys padded to the longest. */
function keyValues(pairs: ReadonlyArray<readonly [string, string]>, indent = ''): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${indent}${printable(k).padEnd(width)} = ${printable(v)}`).join('\n');
}

function countsText(counts: Readonly<Record<string, number>>): string {
  const nonZero = Object.entries(counts).filter(([, n]) => n > 0);
  return nonZero.length === 0 ? 'none' : nonZero.map(([reason, n]) => `${reason} ${n}`).join(', ');
}

function timeAgo(now: number, t: number | null): string {
  if (t === null) return 'never';
  return `${new Date(t).toISOString()} (${seconds(Math.max(0, now - t))} s ago)`;
}

const seconds = (ms: number): number => Math.round(ms / 1000);

/** 93784000 -> "1 d 2 h 3 min 4 s" */
function duration(ms: number): string {
  let rest = seconds(Math.max(0, ms));
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['min', 60]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    }
  }
  if (rest > 0 || parts.length === 0) parts.push(`${rest} s`);
  return parts.join(' ');
}
