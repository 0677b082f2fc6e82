// polling.yaml, checked the way Zed's Ceilometer checks it (ceilometer-wire.md §6.1; polling/manager.py
// PollingManager/PollingSource, agent.py Source), then reduced to what ceilopoll polls:
// - the file is YAML 1.1 as PyYAML's safe_load reads it (`yes` is a boolean, `5:00` is 300, a repeated
//   key keeps its last value, `<<` merges);
// - the top level is a mapping with a `sources` list ("sources required" otherwise);
// - a source has a unique `name`, an `interval` that Python's int() turns into a number > 0, a non-empty
//   `meters` list, and optional `resources` and `discovery` lists;
// - meters are fnmatch globs, "!" excludes; includes and excludes may not be mixed (Ceilometer does not
//   count a pattern starting with "*" as an include there, so `['*', '!cpu']` is fine), and "*" may not
//   come with explicit includes; a list of exclusions only means "all the others".
// Stricter than Ceilometer, on purpose: an interval that is a float (Ceilometer truncates 300.5 to 300)
// or a boolean (`yes` is 1) is refused, and a pattern that matches no meter Ceilometer or ceilopoll
// knows is an error (almost always a typo, which Ceilometer silently polls nothing for).

import { readFile } from 'node:fs/promises';

import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';

import { MEMORY_METERS } from '../samples/meters.js';
import { ConfigError, ConfigErrors, unreadable } from './errors.js';
import { fnmatch } from './fnmatch.js';
import zed from './zed-options.json' with { type: 'json' };

export interface PollingSource {
  name: string;
  intervalSeconds: number;
  /** the meter patterns as written */
  patterns: string[];
  /** ceilopoll meter names selected, in MEMORY_METERS order (empty when discovery excludes this host's instances) */
  meters: string[];
  line?: number;
}

export interface PollingTask {
  intervalSeconds: number;
  /** union of the sources' ceilopoll meters, in MEMORY_METERS order */
  meters: string[];
  /** names of the sources that contribute meters */
  sources: string[];
}

export interface PollingConfig {
  file: string;
  sources: PollingSource[];
  /** one per distinct interval, ascending; intervals that select no ceilopoll meter have no task */
  tasks: PollingTask[];
  /** included patterns that select Ceilometer meters but none of ceilopoll's (ceilometer-polling polls them) */
  notPolled: string[];
  warnings: string[];
}

export interface PollingYamlOptions {
  /** meter names defined elsewhere (dynamic pollsters in pollsters_definitions_dirs) that patterns may name */
  extraMeters?: readonly string[];
}

const CEILOPOLL_METERS: readonly string[] = MEMORY_METERS.map((m) => m.name);

/** Every meter name Zed's polling agent has a pollster for, plus those Debian's polling.yaml lists (see scripts/gen-zed-options.sh). */
export const ZED_METERS: readonly string[] = zed._meters;

const SOURCE_KEYS = ['name', 'interval', 'meters', 'resources', 'discovery'];
const INTERVAL_ALLOWED = 'an integer > 0 (seconds)';
const LOCAL_INSTANCES = 'local_instances';

/**
 * Whether a meter is selected by a source's patterns: no "!" pattern matches it, and an included
 * pattern matches it or the list has exclusions only.
 */
export function meterMatches(patterns: readonly string[], name: string): boolean {
  const excludes = patterns.filter((p) => p.startsWith('!'));
  if (excludes.some((p) => fnmatch(name, p.slice(1)))) return false;
  const includes = patterns.filter((p) => !p.startsWith('!'));
  return includes.length === 0 || includes.some((p) => fnmatch(name, p));
}

type Entry = { key: string; keyNode: Node | null; value: Node | null };

class Reader {
  readonly errors: ConfigError[] = [];
  readonly warnings: string[] = [];

  constructor(
    readonly text: string,
    readonly file: string,
    readonly doc: Document.Parsed,
    readonly lines: LineCounter,
  ) {}

  line(node: Node | null | undefined): number | undefined {
    const start = node?.range?.[0];
    return start === undefined ? undefined : this.lines.linePos(start).line;
  }

  source(node: Node): string {
    const [start, end] = node.range ?? [0, 0];
    return this.text.slice(start, end).trim() || 'null';
  }

  deref(node: unknown): Node | null {
    if (isAlias(node)) return (node.resolve(this.doc) as Node | undefined) ?? null;
    return (node as Node | null | undefined) ?? null;
  }

  error(yamlPath: string, node: Node | null | undefined, init: { value?: boolean; allowed?: string; problem?: string }): void {
    const line = this.line(node);
    this.errors.push(new ConfigError({
      file: this.file,
      yamlPath,
      ...(line !== undefined ? { line } : {}),
      ...(init.value && node ? { value: this.source(node), valueStyle: 'yaml' as const } : {}),
      ...(init.allowed !== undefined ? { allowed: init.allowed } : {}),
      ...(init.problem !== undefined ? { problem: init.problem } : {}),
    }));
  }

  warn(yamlPath: string, node: Node | null | undefined, text: string): void {
    const line = this.line(node);
    this.warnings.push(`${this.file}${line !== undefined ? `:${line}` : ''}: ${yamlPath}: ${text}`);
  }

  /** A mapping's entries as PyYAML builds the dict: `<<` merges first, then own keys, the last repeat wins. */
  entries(map: Node, path: string): Map<string, Entry> {
    const out = new Map<string, Entry>();
    if (!isMap(map)) return out;
    const own = new Map<string, Entry>();
    for (const pair of map.items) {
      const keyNode = this.deref(pair.key);
      const value = this.deref(pair.value);
      const keyValue: unknown = isScalar(keyNode) ? keyNode.value : undefined;
      if (typeof keyValue === 'symbol') {
        const merged = isSeq(value) ? value.items.map((n) => this.deref(n)) : [value];
        for (const m of merged) if (m) for (const [k, e] of this.entries(m, path)) out.set(k, e);
        continue;
      }
      const key = typeof keyValue === 'string' || typeof keyValue === 'number' || typeof keyValue === 'boolean'
        ? String(keyValue)
        : keyNode ? this.source(keyNode) : '';
      if (own.has(key)) this.warn(`${path}${path === '' ? '' : '.'}${key}`, keyNode, 'repeated key: the last one counts (PyYAML keeps the last)');
      own.set(key, { key, keyNode, value });
    }
    for (const [k, e] of own) out.set(k, e);
    return out;
  }
}

function intervalOf(r: Reader, path: string, entry: Entry | undefined, at: Node): number | null {
  if (!entry) {
    r.error(path, at, { problem: `missing: expected ${INTERVAL_ALLOWED}` });
    return null;
  }
  const node = entry.value;
  const v: unknown = isScalar(node) ? node.value : undefined;
  let n: number | null = null;
  if (typeof v === 'number' && Number.isSafeInteger(v)) n = v;
  // Python's int() of a string: surrounding blanks, a sign and "_" between digits are fine
  else if (typeof v === 'string' && /^\s*[+-]?\d+(_\d+)*\s*$/.test(v)) n = Number(v.replace(/_/g, ''));
  if (n === null || n <= 0 || !Number.isSafeInteger(n)) {
    r.error(path, node ?? entry.keyNode, { value: node !== null, allowed: INTERVAL_ALLOWED });
    return null;
  }
  return n;
}

function listOf(r: Reader, path: string, entry: Entry | undefined): Node[] | null {
  const node = entry?.value ?? null;
  if (!entry || node === null || (isScalar(node) && node.value === null)) return null;
  if (!isSeq(node)) {
    r.error(path, node, { value: true, allowed: 'a list of strings' });
    return null;
  }
  const items: Node[] = [];
  node.items.forEach((item, i) => {
    const n = r.deref(item);
    if (isScalar(n) && typeof n.value === 'string') items.push(n);
    else r.error(`${path}[${i}]`, n ?? node, { value: n !== null, allowed: 'a string' });
  });
  return items;
}

/** The patterns as strings, or null after reporting the source's errors. */
function patternsOf(r: Reader, path: string, entry: Entry | undefined, at: Node, known: readonly string[]): string[] | null {
  if (!entry) {
    r.error(`${path}.meters`, at, { problem: 'missing: expected a non-empty list of meter names or globs' });
    return null;
  }
  const node = entry.value;
  if (!isSeq(node) || node.items.length === 0) {
    r.error(`${path}.meters`, node ?? entry.keyNode, { ...(node ? { value: true } : {}), allowed: 'a non-empty list of meter names or globs' });
    return null;
  }
  const before = r.errors.length;
  const patterns: string[] = [];
  node.items.forEach((item, i) => {
    const n = r.deref(item);
    const v: unknown = isScalar(n) ? n.value : undefined;
    const itemPath = `${path}.meters[${i}]`;
    if (typeof v !== 'string' || v === '') {
      r.error(itemPath, n, { value: n !== null, allowed: 'a meter name or glob such as memory.usage or memory.*' });
      return;
    }
    const glob = v.startsWith('!') ? v.slice(1) : v;
    if (!known.some((m) => fnmatch(m, glob))) {
      r.error(itemPath, n, {
        value: true,
        problem: `matches no meter that Zed's Ceilometer or ceilopoll polls (a typo?); ceilopoll polls ${CEILOPOLL_METERS.join(', ')}`,
      });
    }
    patterns.push(v);
  });
  if (r.errors.length > before) return null;

  // agent.py Source.check_source_filtering: only a pattern whose first character is neither "!" nor "*" is an include
  const includes = patterns.filter((p) => p[0] !== '!' && p[0] !== '*');
  const excludes = patterns.filter((p) => p.startsWith('!'));
  if (includes.length > 0 && excludes.length > 0) {
    r.error(`${path}.meters`, node, {
      problem: `mixes included and excluded meters (${includes[0]} and ${excludes[0]}): list either the meters to poll, or only meters not to poll, each with "!"`,
    });
    return null;
  }
  if (patterns.includes('*') && includes.length > 0) {
    r.error(`${path}.meters`, node, {
      problem: `"*" comes with explicit meters (${includes.join(', ')}): "*" already selects every meter; drop one or the other`,
    });
    return null;
  }
  return patterns;
}

function buildTasks(sources: readonly PollingSource[]): PollingTask[] {
  const byInterval = new Map<number, { meters: Set<string>; sources: string[] }>();
  for (const s of sources) {
    if (s.meters.length === 0) continue;
    const t = byInterval.get(s.intervalSeconds) ?? { meters: new Set<string>(), sources: [] };
    for (const m of s.meters) t.meters.add(m);
    t.sources.push(s.name);
    byInterval.set(s.intervalSeconds, t);
  }
  return [...byInterval.entries()]
    .sort(([a], [b]) => a - b)
    .map(([intervalSeconds, t]) => ({
      intervalSeconds,
      meters: CEILOPOLL_METERS.filter((m) => t.meters.has(m)),
      sources: t.sources,
    }));
}

/** Parses and checks polling.yaml's text. Throws ConfigErrors with every problem found. */
export function parsePollingYaml(text: string, file: string, opts: PollingYamlOptions = {}): PollingConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, version: '1.1', uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigErrors(doc.errors.map((e) => {
      const { line, col } = lines.linePos(e.pos[0]);
      return new ConfigError({ file, line, column: col, problem: `invalid YAML: ${e.message.split('\n')[0]!.replace(/\.$/, '')}` });
    }));
  }
  const r = new Reader(text, file, doc, lines);
  const known = [...new Set([...ZED_METERS, ...CEILOPOLL_METERS, ...(opts.extraMeters ?? [])])];

  const root = r.deref(doc.contents);
  const top = root && isMap(root) ? r.entries(root, '') : null;
  const sourcesEntry = top?.get('sources');
  if (!top || !sourcesEntry) {
    throw new ConfigErrors([new ConfigError({
      file,
      problem: 'sources required: the file must be a mapping with a "sources:" list of polling sources',
    })]);
  }
  for (const [key, e] of top) {
    if (key !== 'sources') r.warn(key, e.keyNode, 'unknown top-level key, ignored (Ceilometer reads only "sources")');
  }
  const sourcesNode = sourcesEntry.value;
  if (!isSeq(sourcesNode)) {
    r.error('sources', sourcesNode ?? sourcesEntry.keyNode, { ...(sourcesNode ? { value: true } : {}), allowed: 'a list of sources' });
    throw new ConfigErrors(r.errors);
  }

  const sources: PollingSource[] = [];
  const seen = new Map<string, { path: string; line: number | undefined }>();
  const notPolled: string[] = [];
  sourcesNode.items.forEach((item, i) => {
    const path = `sources[${i}]`;
    const node = r.deref(item);
    if (!node || !isMap(node)) {
      r.error(path, node, { ...(node ? { value: true } : {}), allowed: 'a mapping with name, interval and meters' });
      return;
    }
    const e = r.entries(node, path);
    for (const [key, entry] of e) {
      if (!SOURCE_KEYS.includes(key)) r.warn(`${path}.${key}`, entry.keyNode, `unknown key in a polling source, ignored (Ceilometer reads ${SOURCE_KEYS.join(', ')})`);
    }

    let name: string | null = null;
    const nameEntry = e.get('name');
    const nameValue: unknown = isScalar(nameEntry?.value) ? nameEntry.value.value : undefined;
    if (!nameEntry) {
      r.error(`${path}.name`, node, { problem: 'missing: every source needs a name' });
    } else if ((typeof nameValue !== 'string' && typeof nameValue !== 'number') || String(nameValue) === '') {
      r.error(`${path}.name`, nameEntry.value ?? nameEntry.keyNode, { value: nameEntry.value !== null, allowed: 'a non-empty string' });
    } else {
      name = String(nameValue);
      const first = seen.get(name);
      if (first) {
        r.error(`${path}.name`, nameEntry.value, {
          value: true,
          problem: `duplicate source name (also ${first.path}${first.line !== undefined ? `, line ${first.line}` : ''}): source names must be unique`,
        });
        name = null;
      } else {
        seen.set(name, { path, line: r.line(node) });
      }
    }

    const interval = intervalOf(r, `${path}.interval`, e.get('interval'), node);
    const patterns = patternsOf(r, path, e.get('meters'), node, known);
    const resources = listOf(r, `${path}.resources`, e.get('resources'));
    const discoveryNodes = listOf(r, `${path}.discovery`, e.get('discovery'));
    if (name === null || interval === null || patterns === null) return;

    let meters = CEILOPOLL_METERS.filter((m) => meterMatches(patterns, m));
    for (const p of patterns) {
      if (p.startsWith('!') || notPolled.includes(p)) continue;
      if (!CEILOPOLL_METERS.some((m) => fnmatch(m, p))) notPolled.push(p);
    }
    if (meters.length > 0 && discoveryNodes !== null) {
      const discovery = discoveryNodes.map((n) => (isScalar(n) ? String(n.value) : ''));
      if (!discovery.includes(LOCAL_INSTANCES)) {
        r.warn(`${path}.discovery`, e.get('discovery')?.keyNode,
          `has no ${LOCAL_INSTANCES}: ceilopoll discovers only the instances on this host, so it polls none of source ${name}'s meters (${meters.join(', ')})`);
        meters = [];
      }
    }
    if (meters.length > 0 && resources !== null && resources.length > 0) {
      r.warn(`${path}.resources`, e.get('resources')?.keyNode,
        `static resources are ignored for compute meters (${meters.join(', ')}): ceilopoll polls the instances it discovers on this host`);
    }
    const line = r.line(node);
    sources.push({ name, intervalSeconds: interval, patterns, meters, ...(line !== undefined ? { line } : {}) });
  });

  if (r.errors.length > 0) throw new ConfigErrors(r.errors);
  if (sourcesNode.items.length === 0) r.warn('sources', sourcesNode, 'the list is empty: nothing is polled');
  return { file, sources, tasks: buildTasks(sources), notPolled, warnings: r.warnings };
}

/** Reads and parses polling.yaml. An unreadable file is a ConfigError naming it and the OS's reason. */
export async function readPollingYaml(file: string, opts: PollingYamlOptions = {}): Promise<PollingConfig> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(await readFile(file));
  } catch (err) {
    if (err instanceof TypeError) throw new ConfigErrors([new ConfigError({ file, problem: 'cannot read the file: it is not UTF-8 text' })]);
    throw new ConfigErrors([unreadable(file, err)]);
  }
  return parsePollingYaml(text, file, opts);
}
