import { mkdtemp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { ConfigErrors } from '../../src/config/errors.js';
import { ZED_METERS, meterMatches, parsePollingYaml, readPollingYaml } from '../../src/config/polling-yaml.js';
import { errorsOf } from '../support/config-errors.js';

const F = '/etc/ceilometer/polling.yaml';
const FIXTURES = join(import.meta.dirname, '../fixtures/config');


/** One source named s, interval 300, with these meters (YAML flow list items). */
const source = (meters: string, extra = ''): string => `sources:\n  - name: s\n    interval: 300\n    meters: [${meters}]\n${extra}`;

describe('polling.yaml: the errors Ceilometer would raise, with file, line, YAML path, value and what is allowed', () => {
  it('no sources', () => {
    expect(() => parsePollingYaml('source:\n  - name: s\n', F)).toThrow(
      '/etc/ceilometer/polling.yaml: sources required: the file must be a mapping with a "sources:" list of polling sources',
    );
    expect(() => parsePollingYaml('', F)).toThrow('/etc/ceilometer/polling.yaml: sources required');
    expect(() => parsePollingYaml('- a\n', F)).toThrow('/etc/ceilometer/polling.yaml: sources required');
  });

  it('sources is not a list', () => {
    expect(() => parsePollingYaml('sources: {a: 1}\n', F)).toThrow('/etc/ceilometer/polling.yaml:1: sources = {a: 1}: expected a list of sources');
  });

  it('interval 0', () => {
    const [e] = errorsOf(() => parsePollingYaml('sources:\n  - name: s\n    interval: 0\n    meters: [memory.usage]\n', F));
    expect(e!.message).toBe('/etc/ceilometer/polling.yaml:3: sources[0].interval = 0: expected an integer > 0 (seconds)');
    expect(e).toMatchObject({ file: F, line: 3, yamlPath: 'sources[0].interval', value: '0', allowed: 'an integer > 0 (seconds)' });
  });

  it('interval -5', () => {
    expect(() => parsePollingYaml('sources:\n  - name: s\n    interval: -5\n    meters: [memory.usage]\n', F)).toThrow(
      '/etc/ceilometer/polling.yaml:3: sources[0].interval = -5: expected an integer > 0 (seconds)',
    );
  });

  it('interval "5m", plain or quoted', () => {
    expect(() => parsePollingYaml('sources:\n  - name: s\n    interval: 5m\n    meters: [memory.usage]\n', F)).toThrow(
      '/etc/ceilometer/polling.yaml:3: sources[0].interval = 5m: expected an integer > 0 (seconds)',
    );
    expect(() => parsePollingYaml('sources:\n  - name: s\n    interval: "5m"\n    meters: [memory.usage]\n', F)).toThrow(
      '/etc/ceilometer/polling.yaml:3: sources[0].interval = "5m": expected an integer > 0 (seconds)',
    );
  });

  it('interval that Ceilometer would truncate or read as 1 (300.5, yes) is refused', () => {
    expect(() => parsePollingYaml('sources:\n  - name: s\n    interval: 300.5\n    meters: [memory.usage]\n', F)).toThrow(
      '/etc/ceilometer/polling.yaml:3: sources[0].interval = 300.5: expected an integer > 0 (seconds)',
    );
    expect(() => parsePollingYaml('sources:\n  - name: s\n    interval: yes\n    meters: [memory.usage]\n', F)).toThrow(
      '/etc/ceilometer/polling.yaml:3: sources[0].interval = yes: expected an integer > 0 (seconds)',
    );
  });

  it('interval missing or empty', () => {
    expect(() => parsePollingYaml('sources:\n  - name: s\n    meters: [memory.usage]\n', F)).toThrow(
      '/etc/ceilometer/polling.yaml:2: sources[0].interval: missing: expected an integer > 0 (seconds)',
    );
    expect(() => parsePollingYaml('sources:\n  - name: s\n    interval:\n    meters: [memory.usage]\n', F)).toThrow(
      '/etc/ceilometer/polling.yaml:3: sources[0].interval = null: expected an integer > 0 (seconds)',
    );
  });

  it('duplicate source name', () => {
    const text = 'sources:\n  - name: s\n    interval: 60\n    meters: [memory.usage]\n  - name: s\n    interval: 300\n    meters: [memory.resident]\n';
    expect(() => parsePollingYaml(text, F)).toThrow(
      '/etc/ceilometer/polling.yaml:5: sources[1].name = s: duplicate source name (also sources[0], line 2): source names must be unique',
    );
  });

  it('resources or discovery that are not lists of strings', () => {
    expect(() => parsePollingYaml(source('memory.usage', '    discovery: local_instances\n'), F)).toThrow(
      '/etc/ceilometer/polling.yaml:5: sources[0].discovery = local_instances: expected a list of strings',
    );
    expect(() => parsePollingYaml(source('memory.usage', '    resources: [1]\n'), F)).toThrow(
      '/etc/ceilometer/polling.yaml:5: sources[0].resources[0] = 1: expected a string',
    );
  });

  it('name missing', () => {
    expect(() => parsePollingYaml('sources:\n  - interval: 60\n    meters: [memory.usage]\n', F)).toThrow(
      '/etc/ceilometer/polling.yaml:2: sources[0].name: missing: every source needs a name',
    );
  });

  it('meters missing, empty, or not strings', () => {
    expect(() => parsePollingYaml('sources:\n  - name: s\n    interval: 60\n', F)).toThrow(
      '/etc/ceilometer/polling.yaml:2: sources[0].meters: missing: expected a non-empty list of meter names or globs',
    );
    expect(() => parsePollingYaml(source(''), F)).toThrow(
      '/etc/ceilometer/polling.yaml:4: sources[0].meters = []: expected a non-empty list of meter names or globs',
    );
    expect(() => parsePollingYaml(source('5'), F)).toThrow(
      '/etc/ceilometer/polling.yaml:4: sources[0].meters[0] = 5: expected a meter name or glob such as memory.usage or memory.*',
    );
  });

  it('unknown meter pattern (a typo), excluded or not', () => {
    const [e] = errorsOf(() => parsePollingYaml('sources:\n  - name: s\n    interval: 300\n    meters:\n      - memory.usage\n      - memory.usge\n', F));
    expect(e!.message).toBe(
      "/etc/ceilometer/polling.yaml:6: sources[0].meters[1] = memory.usge: matches no meter that Zed's Ceilometer or ceilopoll polls (a typo?); " +
        'ceilopoll polls memory.usage, memory.resident, memory.swap.in, memory.swap.out, memory, memory.available',
    );
    expect(e).toMatchObject({ line: 6, yamlPath: 'sources[0].meters[1]', value: 'memory.usge' });
    expect(() => parsePollingYaml(source('"!cpuu"'), F)).toThrow('/etc/ceilometer/polling.yaml:4: sources[0].meters[0] = "!cpuu": matches no meter');
  });

  it('mixed include and exclude', () => {
    expect(() => parsePollingYaml(source('memory.usage, "!cpu"'), F)).toThrow(
      '/etc/ceilometer/polling.yaml:4: sources[0].meters: mixes included and excluded meters (memory.usage and !cpu): list either the meters to poll, or only meters not to poll, each with "!"',
    );
  });

  it('"*" with an explicit include', () => {
    expect(() => parsePollingYaml(source('"*", memory.usage'), F)).toThrow(
      '/etc/ceilometer/polling.yaml:4: sources[0].meters: "*" comes with explicit meters (memory.usage): "*" already selects every meter; drop one or the other',
    );
  });

  it('bad YAML syntax: line, column and the parser\'s reason', () => {
    const [e] = errorsOf(() => parsePollingYaml('sources:\n  - name: s\n    interval: 300\n    meters: [memory.usage\n', F));
    expect(e!.message).toMatch(/^\/etc\/ceilometer\/polling\.yaml:\d+:\d+: invalid YAML: \S/);
    expect(() => parsePollingYaml('sources:\n\t- name: s\n', F)).toThrow('/etc/ceilometer/polling.yaml:2:1: invalid YAML: Tabs are not allowed as indentation');
  });

  it('reports the problems of every source', () => {
    const text = 'sources:\n  - name: a\n    interval: 0\n    meters: [memory.usage]\n  - name: b\n    interval: 60\n    meters: [nope]\n';
    expect(errorsOf(() => parsePollingYaml(text, F)).map((e) => e.yamlPath)).toEqual(['sources[0].interval', 'sources[1].meters[0]']);
  });
});

describe('polling.yaml: what is accepted the way Ceilometer accepts it', () => {
  it('an interval written as a string of digits (Python int())', () => {
    const p = parsePollingYaml('sources:\n  - name: s\n    interval: "600"\n    meters: [memory.usage]\n', F);
    expect(p.sources[0]!.intervalSeconds).toBe(600);
  });

  it('"*" with exclusions, and a pattern starting with "*" next to an exclusion (Ceilometer does not count it as an include)', () => {
    expect(parsePollingYaml(source('"*", "!memory.swap.*"'), F).sources[0]!.meters).toEqual(['memory.usage', 'memory.resident', 'memory', 'memory.available']);
    expect(parsePollingYaml(source('"*.usage", "!cpu"'), F).sources[0]!.meters).toEqual(['memory.usage']);
  });

  it('exclusions only: everything else', () => {
    expect(parsePollingYaml(source('"!memory.usage"'), F).sources[0]!.meters).toEqual(['memory.resident', 'memory.swap.in', 'memory.swap.out', 'memory', 'memory.available']);
  });

  it('YAML 1.1 as PyYAML reads it: anchors and merge keys, a repeated key keeps its last value (with a warning)', () => {
    const text = 'base: &b {interval: 60, meters: [memory.usage]}\nsources:\n  - <<: *b\n    name: s\n    interval: 30\n    interval: 120\n';
    const p = parsePollingYaml(text, F);
    expect(p.sources).toEqual([{ name: 's', intervalSeconds: 120, patterns: ['memory.usage'], meters: ['memory.usage'], line: 3 }]);
    expect(p.warnings).toContain('/etc/ceilometer/polling.yaml:6: sources[0].interval: repeated key: the last one counts (PyYAML keeps the last)');
  });

  it('meter names of dynamic pollsters are known when given', () => {
    expect(() => parsePollingYaml(source('dynamic.meter'), F)).toThrow(ConfigErrors);
    expect(parsePollingYaml(source('dynamic.meter'), F, { extraMeters: ['dynamic.meter'] }).notPolled).toEqual(['dynamic.meter']);
  });
});

describe('meterMatches: no exclusion matches, and an include matches or there are only exclusions', () => {
  it.each([
    [['memory.usage'], 'memory.usage', true],
    [['memory.usage'], 'memory.resident', false],
    [['memory.*'], 'memory.swap.in', true],
    [['*'], 'cpu', true],
    [['*', '!memory.*'], 'memory.usage', false],
    [['*', '!memory.*'], 'cpu', true],
    [['!cpu'], 'memory.usage', true],
    [['!cpu', '!memory.u*'], 'memory.usage', false],
    [['memory.[ur]*'], 'memory.resident', true],
  ])('%j selects %s: %s', (patterns, name, want) => {
    expect(meterMatches(patterns, name)).toBe(want);
  });
});

describe('polling.yaml: tasks, meters left to ceilometer-polling, discovery and resources', () => {
  it('one task per distinct interval, ascending, meters in MEMORY_METERS order, sources named', () => {
    const text = [
      'sources:',
      '  - name: slow',
      '    interval: 600',
      '    meters: [memory.swap.out, memory.usage]',
      '  - name: fast',
      '    interval: 60',
      '    meters: [memory.resident]',
      '  - name: also-slow',
      '    interval: 600',
      '    meters: [memory.swap.in, memory.usage]',
      '  - name: cpu-only',
      '    interval: 30',
      '    meters: [cpu, "disk.*"]',
      '',
    ].join('\n');
    const p = parsePollingYaml(text, F);
    expect(p.tasks).toEqual([
      { intervalSeconds: 60, meters: ['memory.resident'], sources: ['fast'] },
      { intervalSeconds: 600, meters: ['memory.usage', 'memory.swap.in', 'memory.swap.out'], sources: ['slow', 'also-slow'] },
    ]);
    expect(p.notPolled).toEqual(['cpu', 'disk.*']);
    expect(p.sources.map((s) => [s.name, s.line])).toEqual([['slow', 2], ['fast', 5], ['also-slow', 8], ['cpu-only', 11]]);
  });

  it('a discovery list without local_instances drops ceilopoll\'s meters from that source, with a warning', () => {
    const p = parsePollingYaml(source('memory.usage', '    discovery: [local_node]\n'), F);
    expect(p.tasks).toEqual([]);
    expect(p.sources[0]!.meters).toEqual([]);
    expect(p.warnings).toEqual([
      "/etc/ceilometer/polling.yaml:5: sources[0].discovery: has no local_instances: ceilopoll discovers only the instances on this host, so it polls none of source s's meters (memory.usage)",
    ]);
    expect(parsePollingYaml(source('memory.usage', '    discovery: [local_instances]\n'), F).tasks).toHaveLength(1);
  });

  it('static resources on a source with ceilopoll meters are ignored, with a warning; unknown keys too', () => {
    const p = parsePollingYaml(source('memory.usage', '    resources: ["instance://x"]\n    intervall: 5\n'), F);
    expect(p.tasks).toHaveLength(1);
    expect(p.warnings).toEqual([
      '/etc/ceilometer/polling.yaml:6: sources[0].intervall: unknown key in a polling source, ignored (Ceilometer reads name, interval, meters, resources, discovery)',
      '/etc/ceilometer/polling.yaml:5: sources[0].resources: static resources are ignored for compute meters (memory.usage): ceilopoll polls the instances it discovers on this host',
    ]);
  });

  it('the sample polling.yaml in test/fixtures/config', async () => {
    const p = await readPollingYaml(join(FIXTURES, 'polling.yaml'));
    expect(p.tasks).toEqual([
      { intervalSeconds: 60, meters: ['memory.usage'], sources: ['memory-fast'] },
      { intervalSeconds: 300, meters: ['memory.resident', 'memory.swap.in', 'memory.swap.out'], sources: ['memory-rest'] },
    ]);
    expect(p.notPolled).toEqual(['cpu', 'network.*']);
  });
});

describe("Debian's shipped /etc/ceilometer/polling.yaml", () => {
  it('is accepted: one 300 s task polling memory.usage, the rest left to ceilometer-polling', async () => {
    const file = '/etc/ceilometer/polling.yaml';
    const text = await readFile(file, 'utf8').catch(() => {
      throw new Error(`${file} is missing: install Debian's ceilometer-common with: bash test/e2e/notification-agent.sh install`);
    });
    const p = parsePollingYaml(text, file);
    expect(p.tasks).toEqual([{ intervalSeconds: 300, meters: ['memory.usage'], sources: ['some_pollsters'] }]);
    expect(p.notPolled).toEqual(expect.arrayContaining(['cpu', 'cpu_l3_cache', 'network.incoming.bytes', 'disk.device.read.bytes', 'hardware.cpu.util']));
    expect(p.notPolled).not.toContain('memory.usage');
    expect(p.warnings).toEqual([]);
  });

  it('every meter Zed knows is a plain name (the generated list is sane)', () => {
    expect(ZED_METERS).toContain('memory.usage');
    expect(ZED_METERS).toContain('hardware.ipmi.fan');
    expect(ZED_METERS.every((m) => /^[a-z0-9_.]+$/.test(m))).toBe(true);
  });
});

describe('readPollingYaml: an unreadable file names the file and the OS reason', () => {
  it('missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ceilopoll-polling-'));
    await expect(readPollingYaml(join(dir, 'polling.yaml'))).rejects.toThrow(`${dir}/polling.yaml: cannot read the file: no such file or directory (ENOENT)`);
  });

  it('a directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ceilopoll-polling-'));
    await mkdir(join(dir, 'polling.yaml'));
    await expect(readPollingYaml(join(dir, 'polling.yaml'))).rejects.toThrow(`${dir}/polling.yaml: cannot read the file: is a directory (EISDIR)`);
  });

  it('a path through a regular file (as root, chmod 000 would not stop a read)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ceilopoll-polling-'));
    await writeFile(join(dir, 'file'), '');
    await expect(readPollingYaml(join(dir, 'file', 'polling.yaml'))).rejects.toThrow(
      `${dir}/file/polling.yaml: cannot read the file: a component of the path is not a directory (ENOTDIR)`,
    );
  });
});
