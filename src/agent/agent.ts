// The agent: libvirt supervisor and inventory in, polling on a schedule, notifications through the
// durable spool to RabbitMQ out. Polling never waits for the broker: a cycle only appends to the
// spool, and delivery drains it whenever the broker is there.

import { EventEmitter } from 'node:events';

import type { FlavorIdResolver } from '../discovery/flavor-lookup.js';
import { Inventory, type SkippedDomain } from '../discovery/inventory.js';
import { isMissing } from '../inspect/memory.js';
import { BulkStallLog, StatsReader, stallBudgetFor } from '../inspect/reader.js';
import { Supervisor } from '../libvirt/supervisor.js';
import { AmqpPublisher } from '../publish/amqp.js';
import { Delivery } from '../publish/delivery.js';
import { batchSamples } from '../publish/envelope.js';
import { NotificationEncoder } from '../publish/notification-encoder.js';
import { Spool } from '../publish/spool.js';
import type { TransportTarget } from '../publish/transport-url.js';
import type { Clock, IdSource } from '../samples/clock.js';
import type { MeterDef } from '../samples/meters.js';
import type { SampleOptions } from '../samples/sample.js';
import type { Logger } from './log.js';
import { meterOutcomes, pollCycle, type CycleResult, type InstanceResult } from './poll-cycle.js';
import { IntervalTask } from './scheduler.js';

/** One polling task: the meters polled every `intervalSeconds` (polling.yaml gives one per distinct interval). */
export interface PollingTaskSpec {
  intervalSeconds: number;
  meters: readonly MeterDef[];
  /** the polling.yaml sources that asked for it, for logs and reports */
  sources?: string[];
}

export interface AgentOptions {
  libvirtUri: string;
  /** the polling tasks; without it, one task of `meters` every `intervalSeconds` */
  tasks?: PollingTaskSpec[];
  intervalSeconds?: number;
  meters?: readonly MeterDef[];
  sample: SampleOptions;
  /** [polling] batch_size: samples per notification, 0 = one notification per sample */
  batchSize: number;
  transport: TransportTarget;
  exchange: string;
  topics: string[];
  spoolPath: string;
  spoolMaxBytes: number;
  spoolMaxAgeMs: number;
  stalenessFactor: number;
  resourceUpdateIntervalMs: number;
  flavorIds?: FlavorIdResolver;
  log: Logger;
  clock: Clock;
  ids: IdSource;
  /** already-redacted configuration lines for the state report */
  configSummary?: Record<string, string>;
  /** every libvirt RPC call, for the latency metric */
  onLibvirtCall?: (procedure: number, durationMs: number, outcome: 'ok' | 'error' | 'timeout') => void;
}

/** The task name for an interval, as logs, metrics and reports show it. */
export const taskName = (intervalSeconds: number): string => `poll-${intervalSeconds}s`;

export function taskSpecs(opts: Pick<AgentOptions, 'tasks' | 'intervalSeconds' | 'meters'>): PollingTaskSpec[] {
  if (opts.tasks) return opts.tasks;
  if (opts.intervalSeconds === undefined || opts.meters === undefined) throw new TypeError('AgentOptions: give tasks, or intervalSeconds and meters');
  return [{ intervalSeconds: opts.intervalSeconds, meters: opts.meters }];
}

export interface ProducedNotification {
  uniqueId: string;
  meter: string;
  sampleIds: string[];
}

/** What the agent keeps of its last cycle, for /healthz and the state report (observe.ts). */
export interface LastCycle {
  task: string;
  /** when it finished, epoch ms */
  at: number;
  durationMs: number;
  instances: readonly InstanceResult[];
  skipped: readonly SkippedDomain[];
  /** the task's meters that ran */
  meters: readonly MeterDef[];
  /** how many samples it built */
  samples: number;
  /** libvirt calls it made (CycleResult.libvirtCalls) */
  libvirtCalls: number;
}

export interface CycleDone {
  task: string;
  durationMs: number;
  outcome: 'ok' | 'failed';
  error: Error | null;
}

export interface AgentEvents {
  /** a notification was built and handed to the spool */
  produced: [ProducedNotification];
  /** a cycle's result, before `cycleDone` */
  cycle: [CycleResult, task: string];
  /** after every cycle of every task, failed or not */
  cycleDone: [CycleDone];
  /** a tick found the task's previous cycle still running */
  skipped: [task: string];
  /** RabbitMQ confirmed a notification */
  confirmed: [meter: string];
  /** a publish failed; the notification stays in the spool */
  publishFailed: [Error];
  /** the spool dropped notifications to stay within its bounds */
  spoolDropped: [count: number];
  /** libvirt or the broker came up or went down; `reconnect` when it came up again */
  connection: [peer: 'libvirt' | 'broker', up: boolean, reconnect: boolean];
}

interface TaskEntry {
  spec: PollingTaskSpec;
  task: IntervalTask;
}

interface ConnState {
  connected: boolean;
  since: number | null;
  lastError: string | null;
  reconnects: number;
}

export class Agent extends EventEmitter<AgentEvents> {
  readonly supervisor: Supervisor;
  readonly inventory: Inventory;
  private spool: Spool | null = null;
  private publisher: AmqpPublisher | null = null;
  private delivery: Delivery | null = null;
  private tasks: TaskEntry[] = [];
  /** cycles of all tasks run one at a time: they share the inventory and the connection */
  private cycleChain: Promise<void> = Promise.resolve();
  /** task + uuid -> the missing meters and reasons last logged, so they are logged once per change, not every cycle */
  private readonly lastReason = new Map<string, string>();
  /** says once per change that the bulk libvirt call stalled and the domains were asked on their own */
  private readonly bulkStallLog = new BulkStallLog();
  private readonly statsReader = new StatsReader();
  private lastCycle: LastCycle | null = null;
  private readonly libvirtState: ConnState = { connected: false, since: null, lastError: null, reconnects: 0 };
  private readonly brokerState: ConnState = { connected: false, since: null, lastError: null, reconnects: 0 };
  readonly startedAt = Date.now();
  private lastPublisherError = '';
  private stopping = false;
  private closed = false;
  private readonly log: Logger;
  private readonly encoder: NotificationEncoder;

  constructor(private readonly opts: AgentOptions) {
    super();
    this.log = opts.log;
    this.encoder = new NotificationEncoder(opts.sample, opts.ids, opts.clock);
    taskSpecs(opts); // fail early on options without tasks
    this.supervisor = new Supervisor({ uri: opts.libvirtUri, readOnly: true, keepaliveIntervalMs: 5000, keepaliveCount: 5, onCall: opts.onLibvirtCall });
    this.inventory = new Inventory({ flavorIds: opts.flavorIds, resyncIntervalMs: opts.resourceUpdateIntervalMs }).attach(this.supervisor);
  }

  get spoolDepth(): number {
    return this.spool?.depth ?? 0;
  }

  /** Spool figures for reports and metrics; zeros before start. */
  get spoolState(): { path: string; depth: number; bytes: number; dropped: number; oldestCreatedAt: number | null } {
    const s = this.spool;
    return {
      path: this.opts.spoolPath,
      depth: s?.depth ?? 0,
      bytes: s?.bytes ?? 0,
      dropped: s?.stats.dropped ?? 0,
      oldestCreatedAt: this.spool && !this.closed ? (this.spool.oldestCreatedAt ?? null) : null,
    };
  }

  get deliveryInFlight(): number {
    return this.delivery?.inFlightCount ?? 0;
  }

  get deliveryStats(): Delivery['stats'] | null {
    return this.delivery?.stats ?? null;
  }

  /** The first task's counters (the only task unless polling.yaml has several intervals). */
  get taskStats(): IntervalTask['stats'] | null {
    return this.tasks[0]?.task.stats ?? null;
  }

  get taskList(): ReadonlyArray<{ name: string; spec: PollingTaskSpec; stats: IntervalTask['stats']; running: boolean }> {
    return this.tasks.map((t) => ({ name: t.task.name, spec: t.spec, stats: t.task.stats, running: t.task.running }));
  }

  start(): void {
    const { log, opts } = this;
    const spool = Spool.open(opts.spoolPath, {
      maxBytes: opts.spoolMaxBytes,
      maxAgeMs: opts.spoolMaxAgeMs,
      onDrop: (d) => {
        this.emit('spoolDropped', d.count);
        log.warning(`spool ${opts.spoolPath}: dropped the ${d.count} oldest notification(s) (${d.bytes} bytes, ${d.reason === 'full' ? 'spool full' : d.reason === 'disk-full' ? 'the disk is full' : 'older than the maximum age'}); oldest from ${new Date(d.oldestCreatedAt).toISOString()}`);
      },
    });
    if (spool.recovery) {
      log.error(`spool ${opts.spoolPath} was unreadable (${spool.recovery.cause}); moved aside to ${spool.recovery.movedTo}${spool.recovery.lost ? `, ${spool.recovery.lost.count} notification(s) lost` : ''}; a new spool was started`);
    }
    if (spool.depth > 0) log.info(`spool ${opts.spoolPath}: ${spool.depth} notification(s) from an earlier run will be sent first, in order`);
    this.spool = spool;

    const publisher = new AmqpPublisher({ target: opts.transport, exchange: opts.exchange, topics: opts.topics });
    publisher.on('connected', (info) => {
      this.markUp('broker', this.brokerState);
      this.lastPublisherError = '';
      log.info(`connected to RabbitMQ at ${info.host}, vhost ${info.vhost}`);
    });
    publisher.on('disconnected', (err) => {
      this.markDown('broker', this.brokerState, err);
      if (!this.stopping) log.warning(`RabbitMQ connection lost: ${err.message}; notifications are kept in the spool`);
    });
    publisher.on('error', (err) => {
      if (err.message === this.lastPublisherError) return; // once per distinct problem
      this.lastPublisherError = err.message;
      this.brokerState.lastError = err.message;
      log.error(err.message);
    });
    this.publisher = publisher;

    const delivery = new Delivery(spool, publisher);
    delivery.on('spoolError', (err, meter, direct) =>
      log.error(`${meter}: notification could not be written to the spool: ${err.message}${direct ? '; sending it to RabbitMQ without the spool (not kept if that fails)' : ''}`));
    delivery.on('unspooled', (meter, err) => {
      if (err) log.error(`${meter}: notification sent without the spool was not confirmed and is lost: ${err.message}`);
      else this.emit('confirmed', meter);
    });
    delivery.on('publishFailed', (err) => {
      this.emit('publishFailed', err);
      log.debug(`publish failed, will retry from the spool: ${err.message}`);
    });
    delivery.on('confirmed', (_seq, meter) => this.emit('confirmed', meter));
    this.delivery = delivery;

    this.supervisor.on('connected', () => this.markUp('libvirt', this.libvirtState));
    this.supervisor.on('disconnected', (err) => this.markDown('libvirt', this.libvirtState, err));
    this.supervisor.on('retry', (err) => {
      this.libvirtState.lastError = err.message;
    });
    this.supervisor.on('connected', (c) => log.info(`connected to libvirt ${c.uri} (${c.readOnly ? 'read-only' : 'read-write'})`));
    this.supervisor.on('disconnected', (err) => log.warning(`libvirt connection lost: ${err.message}; reconnecting`));
    this.supervisor.on('retry', (err, attempt, delay) => {
      if (attempt === 1 || attempt % 10 === 0) log.warning(`libvirt: ${err.message} (attempt ${attempt}, next in ${delay} ms)`);
    });
    this.inventory.on('skipped', (s) => log.warning(`domain ${s.name} (${s.uuid}) skipped: ${s.reason}`));
    this.inventory.on('added', (i) => log.info(`instance ${i.domainName} (${i.uuid}, "${i.displayName}") discovered`));
    this.inventory.on('removed', (uuid, name) => log.info(`instance ${name} (${uuid}) is gone`));

    publisher.start();
    this.supervisor.start();
    this.startTasks(taskSpecs(opts));
  }

  private startTasks(specs: PollingTaskSpec[]): void {
    const { log } = this;
    this.tasks = specs.map((spec) => {
      const name = taskName(spec.intervalSeconds);
      const task = new IntervalTask(name, spec.intervalSeconds * 1000, () => this.serialisedCycle(name, spec), {
        onSkip: (t) => {
          log.warning(`polling task ${t.name}: the previous cycle is still running; this one is skipped (${t.stats.skipped} so far)`);
          this.emit('skipped', t.name);
        },
        onError: (t, err) => log.error(`polling task ${t.name}: cycle failed: ${err.message}`),
        onDone: (t, durationMs, error) => this.emit('cycleDone', { task: t.name, durationMs, outcome: error ? 'failed' : 'ok', error }),
      });
      return { spec, task };
    });
    for (const t of this.tasks) {
      log.info(`polling task ${t.task.name}: ${t.spec.meters.map((m) => m.name).join(', ')} every ${t.spec.intervalSeconds}s${t.spec.sources ? ` (sources: ${t.spec.sources.join(', ')})` : ''}`);
      t.task.start();
    }
  }

  /**
   * Replaces the polling tasks (SIGHUP with a new polling.yaml): the old tasks stop scheduling and
   * their cycle in progress finishes, then the new ones start, each with an immediate cycle.
   * Connections, inventory, spool and delivery carry on untouched.
   */
  async replaceTasks(specs: PollingTaskSpec[]): Promise<void> {
    const old = this.tasks;
    this.tasks = [];
    await Promise.all(old.map((t) => t.task.stop()));
    if (this.stopping) return;
    this.lastReason.clear();
    this.startTasks(specs);
  }

  private markUp(peer: 'libvirt' | 'broker', s: ConnState): void {
    const reconnect = s.since !== null || s.connected;
    if (reconnect) s.reconnects++;
    s.connected = true;
    s.since = Date.now();
    s.lastError = null;
    this.emit('connection', peer, true, reconnect);
  }

  private markDown(peer: 'libvirt' | 'broker', s: ConnState, err: Error): void {
    s.connected = false;
    s.since = Date.now();
    s.lastError = err.message;
    this.emit('connection', peer, false, false);
  }

  /** Connection states for health and metrics. */
  get connections(): { libvirt: Readonly<ConnState>; broker: Readonly<ConnState> } {
    return { libvirt: this.libvirtState, broker: this.brokerState };
  }

  /** The last cycle of any task, with when it finished and how long it took. */
  get lastCycleResult(): Readonly<LastCycle> | null {
    return this.lastCycle;
  }

  /**
   * Stops polling, lets the cycle in progress finish, gives delivery up to `timeoutMs` to get the
   * spool confirmed, then closes everything. What is not confirmed stays in the spool.
   */
  async stop(timeoutMs = 10_000): Promise<number> {
    this.stopping = true;
    await Promise.all(this.tasks.map((t) => t.task.stop()));
    const left = this.delivery ? await this.delivery.drain(timeoutMs) : 0;
    this.delivery?.close();
    await this.publisher?.close();
    await this.supervisor.stop();
    this.closed = true;
    this.spool?.close();
    this.opts.flavorIds?.close();
    return left;
  }

  /** Runs a task's cycle after any other task's cycle in progress. */
  private serialisedCycle(task: string, spec: PollingTaskSpec): Promise<void> {
    const run = this.cycleChain.then(() => this.runCycle(task, spec));
    this.cycleChain = run.catch(() => undefined);
    return run;
  }

  private async runCycle(task: string, spec: PollingTaskSpec): Promise<void> {
    const { opts } = this;
    if (this.stopping) return;
    const started = Date.now();
    this.log.debug(`polling task ${task}: cycle started`);
    this.spool?.expire();
    const client = this.supervisor.client ?? (await this.supervisor.waitConnected(Math.min(5000, spec.intervalSeconds * 1000)));
    const result = await pollCycle({
      client,
      inventory: this.inventory,
      meters: spec.meters,
      unit: opts.sample.unit,
      clock: opts.clock,
      ids: opts.ids,
      stalenessFactor: opts.stalenessFactor,
      reader: this.statsReader,
      stallBudgetMs: stallBudgetFor(spec.intervalSeconds),
    });
    const stallLine = this.bulkStallLog.next(result);
    if (stallLine) this.log.warning(`polling task ${task}: ${stallLine}`);
    this.logReasons(task, spec, result);
    for (const run of result.runs) {
      if (run.samples.length === 0) continue;
      // batch by batch, so that only one notification's wire samples and bytes are alive at a time
      for (const samples of batchSamples(run.samples, opts.batchSize)) {
        const n = this.encoder.encode(run.meter.name, samples);
        this.delivery!.submit(run.meter.name, n.body);
        const produced = { uniqueId: n.uniqueId, meter: run.meter.name, sampleIds: n.sampleIds };
        if (this.log.debugEnabled !== false) this.log.debug(`produced notification ${produced.uniqueId} ${produced.meter} ${produced.sampleIds.length} sample(s): ${produced.sampleIds.join(',')}`);
        this.emit('produced', produced);
      }
    }
    // not the samples themselves: they are in the spool now, and kept here they would double the
    // live heap's share of samples during the next cycle (17 000 at 5000 domains)
    this.lastCycle = {
      task,
      at: Date.now(),
      durationMs: Date.now() - started,
      instances: result.instances,
      skipped: result.skipped,
      meters: result.runs.map((r) => r.meter),
      samples: result.runs.reduce((n, r) => n + r.samples.length, 0),
      libvirtCalls: result.libvirtCalls,
    };
    this.log.debug(`polling task ${task}: cycle finished in ${this.lastCycle.durationMs} ms: ${result.instances.length} instance(s), ${this.lastCycle.samples} sample(s)`);
    this.emit('cycle', result, task);
  }

  /**
   * One line per instance when the set of its missing meters or their reasons changes (not every
   * cycle), and one when everything is back.
   */
  private logReasons(task: string, spec: PollingTaskSpec, result: CycleResult): void {
    const seen = new Set<string>();
    for (const ir of result.instances) {
      const uuid = ir.instance.uuid;
      const key0 = `${task} ${uuid}`;
      seen.add(key0);
      const before = this.lastReason.get(key0);
      // the common case, every meter has its value as before: nothing to build
      if (before === undefined && spec.meters.every((m) => !isMissing(m.volume(ir.inspection)))) continue;
      const byReason = new Map<string, { meters: string[]; detail: string }>();
      for (const [meter, v] of Object.entries(meterOutcomes(ir.inspection, spec.meters).missing)) {
        const g = byReason.get(v.reason) ?? { meters: [], detail: v.detail };
        g.meters.push(meter);
        byReason.set(v.reason, g);
      }
      const key = [...byReason].map(([reason, g]) => `${reason}:${g.meters.join(',')}`).join(';');
      if (key === (before ?? '')) continue;
      const who = `instance ${ir.instance.domainName} (${uuid})`;
      if (key === '') {
        this.lastReason.delete(key0);
        this.log.info(`${who}: all meters available again`);
      } else {
        this.lastReason.set(key0, key);
        const parts = [...byReason].map(([reason, g]) => `no ${g.meters.join(', ')}: ${reason}: ${g.detail}`);
        this.log.warning(`${who}: ${parts.join('; ')}`);
      }
    }
    for (const k of this.lastReason.keys()) if (k.startsWith(`${task} `) && !seen.has(k)) this.lastReason.delete(k);
  }
}
