// The agent's Prometheus metrics, served as /metrics. The agent tells this class what happened
// (a cycle ended, a notification was confirmed, a connection came up); nothing here reads agent
// state. Each instance owns its own Registry, never prom-client's global one, so tests and several
// agents in one process do not collide. Metric names and labels are a contract with dashboards
// and alerts: rename nothing without saying so in the changelog.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

import { MISSING_REASONS } from '../inspect/memory.js';
import type { CallObserver, CallOutcome } from '../libvirt/connection.js';
import { procName } from '../libvirt/protocol.js';

/** how often the event-loop lag monitor of the default metrics samples (see the constructor) */
export const EVENT_LOOP_PRECISION_MS = 1000;

export type CycleOutcome = 'ok' | 'failed' | 'skipped';
export type SampleOutcome = 'produced' | 'missing';
export type Peer = 'libvirt' | 'broker';

/** Seconds, 1 ms to 60 s: a local libvirt call takes about a millisecond, a call timeout is 30 s. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const PEERS: readonly Peer[] = ['libvirt', 'broker'];

export interface AgentMetricsOptions {
  /** prom-client's process_* and nodejs_* metrics (RSS, CPU, event-loop lag, GC); default true */
  defaultMetrics?: boolean;
}

export class AgentMetrics {
  /** This agent's registry; nothing is registered in prom-client's global one. */
  readonly registry = new Registry();

  private readonly cycleDuration: Histogram<'task'>;
  private readonly cyclesTotal: Counter<'task' | 'outcome'>;
  private readonly lastCycle: Gauge<'task'>;
  private readonly samplesTotal: Counter<'meter' | 'outcome'>;
  private readonly missingStats: Gauge<'reason'>;
  private readonly instancesGauge: Gauge;
  private readonly skippedDomains: Gauge;
  private readonly spoolDepth: Gauge;
  private readonly spoolBytes: Gauge;
  private readonly spoolDroppedTotal: Counter;
  private readonly confirmedTotal: Counter;
  private readonly publishFailuresTotal: Counter;
  private readonly libvirtCallDuration: Histogram<'procedure' | 'outcome'>;
  private readonly connectionUp: Gauge<'peer'>;
  private readonly reconnectsTotal: Counter<'peer'>;
  private readonly stallsTotal: Counter<'cause' | 'answered_by'>;
  /** every reason ever set, so one that goes away is set back to 0 */
  private readonly reasonsSeen = new Set<string>(MISSING_REASONS);

  constructor(opts: AgentMetricsOptions = {}) {
    const registers = [this.registry];
    // The event-loop lag monitor wakes the process every `precision` ms, also while it has nothing
    // to do, and a wake-up is not cheap in a VM: an idle agent used about 2.5 ms of CPU a second
    // with prom-client's 10 ms, about 1 ms with 100 ms (0.8 ms of it the monitor: a bare Node
    // process with only that monitor, 2026-11-27 17:12). At 1000 ms it still samples the loop once a
    // second; a cycle's own length is ceilopoll_cycle_duration_seconds.
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS });

    this.cycleDuration = new Histogram({
      name: 'ceilopoll_cycle_duration_seconds',
      help: 'Duration of a polling cycle that ran (ok or failed), by task.',
      labelNames: ['task'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.cyclesTotal = new Counter({
      name: 'ceilopoll_cycles_total',
      help: 'Polling cycles by task and outcome: ok, failed, or skipped (the previous run was still going).',
      labelNames: ['task', 'outcome'],
      registers,
    });
    this.lastCycle = new Gauge({
      name: 'ceilopoll_last_cycle_timestamp_seconds',
      help: 'Unix time at which the last successful cycle of the task finished.',
      labelNames: ['task'],
      registers,
    });
    this.samplesTotal = new Counter({
      name: 'ceilopoll_samples_total',
      help: 'Per meter: samples produced, and instances for which the meter had no value (missing).',
      labelNames: ['meter', 'outcome'],
      registers,
    });
    this.missingStats = new Gauge({
      name: 'ceilopoll_missing_stats',
      help: 'Instances without memory.usage in the last cycle, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.instancesGauge = new Gauge({
      name: 'ceilopoll_instances',
      help: 'Nova instances inspected in the last cycle.',
      registers,
    });
    this.skippedDomains = new Gauge({
      name: 'ceilopoll_skipped_domains',
      help: 'libvirt domains left out of the last cycle (not Nova instances, unreadable metadata).',
      registers,
    });
    this.spoolDepth = new Gauge({
      name: 'ceilopoll_spool_depth',
      help: 'Notifications in the spool, waiting for the broker to confirm them.',
      registers,
    });
    this.spoolBytes = new Gauge({
      name: 'ceilopoll_spool_bytes',
      help: 'Sum of the body sizes of the notifications in the spool.',
      registers,
    });
    this.spoolDroppedTotal = new Counter({
      name: 'ceilopoll_spool_dropped_total',
      help: 'Notifications the spool dropped, never sent, to stay within its size and age bounds.',
      registers,
    });
    this.confirmedTotal = new Counter({
      name: 'ceilopoll_notifications_confirmed_total',
      help: 'Notifications confirmed by the broker.',
      registers,
    });
    this.publishFailuresTotal = new Counter({
      name: 'ceilopoll_publish_failures_total',
      help: 'Publish attempts that failed; the notification stays in the spool and is retried.',
      registers,
    });
    this.libvirtCallDuration = new Histogram({
      name: 'ceilopoll_libvirt_call_duration_seconds',
      help: 'Duration of libvirt RPC calls, by procedure and outcome (ok, error, timeout).',
      labelNames: ['procedure', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.connectionUp = new Gauge({
      name: 'ceilopoll_connection_up',
      help: '1 while the connection to the peer (libvirt, broker) is up, else 0.',
      labelNames: ['peer'],
      registers,
    });
    this.reconnectsTotal = new Counter({
      name: 'ceilopoll_reconnects_total',
      help: 'Connections to the peer (libvirt, broker) made again after one was lost.',
      labelNames: ['peer'],
      registers,
    });

    this.stallsTotal = new Counter({
      name: 'ceilopoll_libvirt_stalls_total',
      help:
        'Cycles whose bulk stats call had no reply within the stall budget (cause=stalled) or was not sent because earlier calls were still unanswered inside libvirtd (cause=pending), by whose answer was used (per_domain, bulk).',
      labelNames: ['cause', 'answered_by'],
      registers,
    });

    // Series that exist from the start, so alerts see 0 rather than nothing.
    this.stallsTotal.inc({ cause: 'stalled', answered_by: 'per_domain' }, 0);
    for (const peer of PEERS) {
      this.connectionUp.set({ peer }, 0);
      this.reconnectsTotal.inc({ peer }, 0);
    }
    this.missingByReason({});
  }

  /** The Content-Type header for `render()`'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in Prometheus text format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * A tick of a polling task: it ran (`ok`, `failed`: duration observed) or was `skipped` because
   * the previous run was still going (counted only). `finishedAt` (epoch ms) of an `ok` cycle sets
   * ceilopoll_last_cycle_timestamp_seconds.
   */
  cycle(task: string, durationMs: number, outcome: CycleOutcome, finishedAt: number = Date.now()): void {
    this.cyclesTotal.inc({ task, outcome });
    if (outcome === 'skipped') return;
    this.cycleDuration.observe({ task }, durationMs / 1000);
    if (outcome === 'ok') this.lastCycle.set({ task }, finishedAt / 1000);
  }

  /** `n` samples of `meter` produced, or `n` instances for which it had no value (`missing`). */
  samples(meter: string, outcome: SampleOutcome, n = 1): void {
    this.samplesTotal.inc({ meter, outcome }, n);
  }

  /**
   * Instances missing memory.usage in the last cycle, by reason (MissingReason). Every known
   * reason is set, absent ones to 0, so a reason that went away does not linger at its old value.
   */
  missingByReason(counts: Readonly<Record<string, number>>): void {
    for (const reason of Object.keys(counts)) this.reasonsSeen.add(reason);
    for (const reason of this.reasonsSeen) this.missingStats.set({ reason }, counts[reason] ?? 0);
  }

  /** Instances inspected and domains skipped in the last cycle. */
  instances(n: number, skipped: number): void {
    this.instancesGauge.set(n);
    this.skippedDomains.set(skipped);
  }

  /** The spool's current depth (notifications) and size (body bytes). */
  spool(depth: number, bytes: number): void {
    this.spoolDepth.set(depth);
    this.spoolBytes.set(bytes);
  }

  /** `n` notifications dropped by the spool (SpoolDrop.count). */
  spoolDropped(n: number): void {
    this.spoolDroppedTotal.inc(n);
  }

  /** `n` notifications confirmed by the broker. */
  confirmed(n = 1): void {
    this.confirmedTotal.inc(n);
  }

  /** A publish attempt failed (it is retried from the spool). */
  publishFailed(n = 1): void {
    this.publishFailuresTotal.inc(n);
  }

  /** One libvirt RPC call, by procedure name (e.g. CONNECT_GET_ALL_DOMAIN_STATS). */
  libvirtCall(procedure: string, durationMs: number, outcome: CallOutcome): void {
    this.libvirtCallDuration.observe({ procedure, outcome }, durationMs / 1000);
  }

  /** An observer for ConnectionOptions.onCall that feeds `libvirtCall`, naming procedures by number. */
  libvirtCallObserver(): CallObserver {
    return (proc, durationMs, outcome) => this.libvirtCall(procName(proc), durationMs, outcome);
  }

  /** A cycle's bulk stats call stalled, or was not sent, and the domains were asked on their own (BulkStall). */
  stall(cause: 'stalled' | 'pending', answeredBy: 'bulk' | 'per-domain'): void {
    this.stallsTotal.inc({ cause, answered_by: answeredBy === 'per-domain' ? 'per_domain' : 'bulk' });
  }

  /** The connection to `peer` went up or down. */
  connection(peer: Peer, up: boolean): void {
    this.connectionUp.set({ peer }, up ? 1 : 0);
  }

  /** A connection to `peer` was made again after one was lost. */
  reconnect(peer: Peer): void {
    this.reconnectsTotal.inc({ peer });
  }
}
