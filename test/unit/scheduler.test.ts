import { afterEach, describe, expect, it, vi } from 'vitest';

import { IntervalTask } from '../../src/agent/scheduler.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('IntervalTask', () => {
  it('runs at once on start, then every interval', async () => {
    vi.useFakeTimers();
    let runs = 0;
    const t = new IntervalTask('t', 1000, () => {
      runs++;
      return Promise.resolve();
    });
    t.start();
    expect(runs).toBe(1);
    await vi.advanceTimersByTimeAsync(3000);
    expect(runs).toBe(4);
    await t.stop();
    await vi.advanceTimersByTimeAsync(3000);
    expect(runs).toBe(4);
  });

  it('never overlaps itself: a tick during a run is skipped and counted', async () => {
    vi.useFakeTimers();
    let release: () => void = () => undefined;
    let runs = 0;
    const skips: number[] = [];
    const t = new IntervalTask('slow', 1000, () => {
      runs++;
      return new Promise<void>((r) => (release = r));
    }, { onSkip: (task) => skips.push(task.stats.skipped) });
    t.start();
    await vi.advanceTimersByTimeAsync(2500);
    expect(runs).toBe(1);
    expect(t.stats.skipped).toBe(2);
    expect(skips).toEqual([1, 2]);
    release();
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toBe(2);
    release();
    await t.stop();
  });

  it('counts failures, keeps running, and stop() waits for the run in progress', async () => {
    vi.useFakeTimers();
    const errors: string[] = [];
    let n = 0;
    const t = new IntervalTask('flaky', 1000, () => (++n === 1 ? Promise.reject(new Error('boom')) : Promise.resolve()), {
      onError: (_t, e) => errors.push(e.message),
    });
    t.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(errors).toEqual(['boom']);
    expect(t.stats).toMatchObject({ runs: 2, failures: 1, lastError: null });
    await t.stop();
  });

  it('refuses a non-positive interval', () => {
    expect(() => new IntervalTask('x', 0, () => Promise.resolve())).toThrow(/interval must be > 0/);
  });
});
