// Runs a task every `intervalMs`, at once on start, never overlapping itself: when a run is still
// going at the next tick, that tick is skipped and counted (Ceilometer's futurist periodics behave
// the same way, silently; we count and report it).

export interface TaskStats {
  runs: number;
  skipped: number;
  failures: number;
  /** epoch ms (from `now`) */
  lastStartedAt: number | null;
  lastFinishedAt: number | null;
  /** when the last run that did not throw finished */
  lastSuccessAt: number | null;
  lastDurationMs: number | null;
  lastError: Error | null;
}

export interface TaskHooks {
  onSkip?: (task: IntervalTask) => void;
  onError?: (task: IntervalTask, err: Error) => void;
  /** after every run, failed or not */
  onDone?: (task: IntervalTask, durationMs: number, err: Error | null) => void;
  now?: () => number;
}

export class IntervalTask {
  private timer: NodeJS.Timeout | undefined;
  private runningRun: Promise<void> | null = null;
  private stopped = false;
  readonly stats: TaskStats = {
    runs: 0,
    skipped: 0,
    failures: 0,
    lastStartedAt: null,
    lastFinishedAt: null,
    lastSuccessAt: null,
    lastDurationMs: null,
    lastError: null,
  };

  constructor(
    readonly name: string,
    readonly intervalMs: number,
    private readonly task: () => Promise<void>,
    private readonly hooks: TaskHooks = {},
  ) {
    if (!(intervalMs > 0)) throw new RangeError(`task ${name}: interval must be > 0 ms, got ${intervalMs}`);
  }

  get running(): boolean {
    return this.runningRun !== null;
  }

  start(): void {
    this.stopped = false;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
  }

  /** Stops scheduling; resolves when the run in progress (if any) has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.runningRun;
  }

  private tick(): void {
    if (this.stopped) return;
    if (this.runningRun) {
      this.stats.skipped++;
      this.hooks.onSkip?.(this);
      return;
    }
    const now = this.hooks.now ?? Date.now;
    const started = now();
    this.stats.lastStartedAt = started;
    let failure: Error | null = null;
    this.runningRun = this.task()
      .then(
        () => {
          this.stats.lastError = null;
        },
        (err: unknown) => {
          failure = err instanceof Error ? err : new Error(String(err));
          this.stats.failures++;
          this.stats.lastError = failure;
          this.hooks.onError?.(this, failure);
        },
      )
      .finally(() => {
        const finished = now();
        this.stats.runs++;
        this.stats.lastFinishedAt = finished;
        this.stats.lastDurationMs = finished - started;
        if (failure === null) this.stats.lastSuccessAt = finished;
        this.runningRun = null;
        this.hooks.onDone?.(this, finished - started, failure);
      });
  }
}
