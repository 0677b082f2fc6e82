// polling.yaml's tasks as `ceilopoll run` hands them to the agent, with --interval and --meter over them.

import { describe, expect, it } from 'vitest';

import { taskName, taskSpecs } from '../../src/agent/agent.js';
import { pollingTasks } from '../../src/cli/run.js';
import { parsePollingYaml } from '../../src/config/index.js';
import { MEMORY_METERS } from '../../src/samples/meters.js';

const polling = parsePollingYaml(
  [
    'sources:',
    '  - name: usage',
    '    interval: 10',
    '    meters: [memory.usage]',
    '  - name: host-side',
    '    interval: 60',
    '    meters: ["!memory.usage"]', // only exclusions: every other meter
    '  - name: again',
    '    interval: 10',
    '    meters: [memory.resident, cpu]',
    '',
  ].join('\n'),
  'polling.yaml',
);

const names = (t: ReturnType<typeof pollingTasks>): Array<[number, string[], string[] | undefined]> =>
  t.map((x) => [x.intervalSeconds, x.meters.map((m) => m.name), x.sources]);

describe('pollingTasks', () => {
  it('is one task per distinct interval, the union of its sources\' meters in meter order', () => {
    expect(names(pollingTasks(polling, {}))).toEqual([
      [10, ['memory.usage', 'memory.resident'], ['usage', 'again']],
      [60, ['memory.resident', 'memory.swap.in', 'memory.swap.out', 'memory', 'memory.available'], ['host-side']],
    ]);
  });

  it('--interval folds everything into one task', () => {
    expect(names(pollingTasks(polling, { intervalSeconds: 5 }))).toEqual([
      [5, ['memory.usage', 'memory.resident', 'memory.swap.in', 'memory.swap.out', 'memory', 'memory.available'], ['usage', 'again', 'host-side']],
    ]);
  });

  it('--meter keeps only those meters, and drops a task left without any', () => {
    expect(names(pollingTasks(polling, { meters: ['memory.usage'] }))).toEqual([[10, ['memory.usage'], ['usage', 'again']]]);
    expect(names(pollingTasks(polling, { meters: ['memory'] }))).toEqual([[60, ['memory'], ['host-side']]]);
    const usageOnly = parsePollingYaml('sources:\n  - name: u\n    interval: 10\n    meters: [memory.usage]\n', 'polling.yaml');
    expect(pollingTasks(usageOnly, { meters: ['memory.resident'] })).toEqual([]);
  });
});

describe('taskSpecs', () => {
  it('takes tasks as given, or makes one of intervalSeconds and meters, and refuses neither', () => {
    expect(taskSpecs({ intervalSeconds: 30, meters: MEMORY_METERS })).toEqual([{ intervalSeconds: 30, meters: MEMORY_METERS }]);
    const tasks = [{ intervalSeconds: 10, meters: MEMORY_METERS.slice(0, 1) }];
    expect(taskSpecs({ tasks, intervalSeconds: 30, meters: MEMORY_METERS })).toBe(tasks);
    expect(() => taskSpecs({})).toThrow(/give tasks, or intervalSeconds and meters/);
    expect(taskName(300)).toBe('poll-300s');
  });
});
