// Runs a task every `intervalMs`, at once on start, never overlapping itself: when a run is still
// going at the next tick, that tick is skipped and counted (Ceilometer's futurist periodics behave
// the same way, silently; we count and report it).

export interface TaskStats {
  runs: number;
  skipped: number;
  failures: number;
  lastStartedAt: number | null;
  lastDurationMs: number | null;
  lastError: Error | null;
}

export class IntervalTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private stopped = false;
  readonly stats: TaskStats = { runs: 0, skipped: 0, failures: 0, lastStartedAt: null, lastDurationMs: null, lastError: null };

  constructor(
    readonly name: string,
    readonly intervalMs: number,
    private readonly task: () => Promise<void>,
    private readonly hooks: { onSkip?: (task: IntervalTask) => void; onError?: (task: IntervalTask, err: Error) => void; now?: () => number } = {},
  ) {
    if (!(intervalMs > 0)) throw new RangeError(`task ${name}: interval must be > 0 ms, got ${intervalMs}`);
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
    await this.running;
  }

  private tick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.stats.skipped++;
      this.hooks.onSkip?.(this);
      return;
    }
    const now = this.hooks.now ?? Date.now;
    const started = now();
    this.stats.lastStartedAt = started;
    this.running = this.task()
      .then(
        () => {
          this.stats.lastError = null;
        },
        (err: unknown) => {
          const e = err instanceof Error ? err : new Error(String(err));
          this.stats.failures++;
          this.stats.lastError = e;
          this.hooks.onError?.(this, e);
        },
      )
      .finally(() => {
        this.stats.runs++;
        this.stats.lastDurationMs = now() - started;
        this.running = null;
      });
  }
}
