// The doctor report for people: one table row per domain, a summary line, then each problem once,
// with the domains it affects and what to do. Deterministic: everything comes from the report,
// whose clock was injected.

import { printable, renderTable } from '../cli/table.js';
import { redactUri } from '../libvirt/uri.js';
import { PROBLEM_ORDER, type DoctorReport, type DoctorRow, type Problem } from './diagnose.js';

export interface FormatOptions {
  /** ANSI colour for the headings under the table (never inside it: it would break the padding) */
  color?: boolean;
}

const dash = (v: string | null): string => (v === null ? '-' : v);
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

function periodCell(p: number | null): string {
  if (p === null) return '-';
  return p === 0 ? 'off' : `${p}s`;
}

/** 4s, 6m33s, 3h05m, 13523d: seconds are what matter against a 10 s period, days when frozen for long. */
export function ageText(seconds: number): string {
  if (seconds < 100) return `${seconds}s`;
  const two = (n: number): string => String(n).padStart(2, '0');
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${two(seconds % 60)}s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${two(Math.floor(seconds / 60) % 60)}m`;
  return `${Math.floor(seconds / 86_400)}d`;
}

function nameCell(name: string | null): string {
  if (name === null) return '-';
  return name === '' ? '""' : printable(name);
}

const HEAD = ['DOMAIN', 'DISPLAY NAME', 'STATE', 'BALLOON', 'PERIOD', 'LAST UPDATE', 'FORMULA', 'MEMORY.USAGE (MB)', 'REASON'];

const cells = (r: DoctorRow): string[] => [
  r.domain,
  nameCell(r.displayName),
  r.state,
  r.balloon,
  periodCell(r.statsPeriod),
  r.lastUpdateAgeSeconds === null ? '-' : ageText(r.lastUpdateAgeSeconds),
  dash(r.formula),
  r.usageMb === null ? '-' : r.usageMb.toFixed(1),
  dash(r.reason),
];

export function summaryLine(r: DoctorReport): string {
  let line = `${plural(r.instances, 'instance')}: ${r.healthy} healthy, ${r.withProblems} with problems`;
  if (r.notRunning > 0) line += `, ${r.notRunning} not running`;
  if (r.notNova > 0) line += `; ${plural(r.notNova, 'other domain')} without Nova metadata`;
  return line;
}

/**
 * One problem's fixes over all the domains it affects: the n-th fix of every domain together, each
 * distinct text once, so "virsh ... A", "virsh ... B" stand next to each other and a general line
 * is not repeated.
 */
export function mergeFixes(problems: readonly Problem[]): string[] {
  const out: string[] = [];
  const longest = Math.max(0, ...problems.map((p) => p.fixes.length));
  for (let i = 0; i < longest; i++) {
    for (const p of problems) {
      const f = p.fixes[i];
      if (f !== undefined && !out.includes(f)) out.push(f);
    }
  }
  return out;
}

export function formatDoctorReport(r: DoctorReport, opts: FormatOptions = {}): string {
  const paint = (code: string, s: string): string => (opts.color ? `\u001b[${code}m${s}\u001b[0m` : s);
  const out = [`ceilopoll doctor: ${redactUri(r.uri)}, libvirt ${r.libvirtVersion}`, '', renderTable(HEAD, r.rows.map(cells)), '', summaryLine(r)];

  for (const id of PROBLEM_ORDER) {
    const hits = r.rows.flatMap((row) => row.problems.filter((p) => p.id === id).map((p) => ({ row, p })));
    const first = hits[0];
    if (first === undefined) continue;
    const note = first.p.severity === 'note';
    out.push('', `${paint(note ? '2' : '1;31', id)}${note ? ' (note)' : ''}: ${first.p.summary}`);
    for (const { row, p } of hits) {
      const name = row.displayName === null ? '' : ` (${nameCell(row.displayName)})`;
      out.push(`  ${row.domain}${name}: ${printable(p.detail)}`);
    }
    const fixes = mergeFixes(hits.map((h) => h.p));
    if (fixes.length > 0) out.push('  fix:', ...fixes.map((f) => `    - ${f}`));
  }
  return out.join('\n');
}
