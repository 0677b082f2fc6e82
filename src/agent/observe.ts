// The agent seen from outside: its snapshot (for /healthz and the SIGUSR2 report) and the
// Prometheus metrics fed from its events. Kept apart from agent.ts so the agent itself knows
// nothing of HTTP or Prometheus.

import os from 'node:os';

import { isMissing, MISSING_REASONS } from '../inspect/memory.js';
import { domainStateName } from '../libvirt/protocol.js';
import { VERSION } from '../version.js';
import { meterOutcomes } from './poll-cycle.js';
import type { Agent } from './agent.js';
import type { AgentMetrics } from './metrics.js';
import type { AgentSnapshot, InstanceSnapshot } from './snapshot.js';

export interface SnapshotInfo {
  /** libvirt_uri, redacted */
  libvirtUri: string;
  /** transport URL, redacted */
  brokerTarget: string;
  /** redacted configuration summary */
  config: Record<string, string>;
}

/** memory.usage's missing reasons in a cycle, every known reason present (0 when none). */
function usageMissingByReason(agent: Agent): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(MISSING_REASONS.map((r) => [r, 0]));
  for (const ir of agent.lastCycleResult?.instances ?? []) {
    const u = ir.inspection.usage;
    if (isMissing(u)) counts[u.reason] = (counts[u.reason] ?? 0) + 1;
  }
  return counts;
}

export function agentSnapshot(agent: Agent, info: SnapshotInfo, now = Date.now()): AgentSnapshot {
  const { libvirt, broker } = agent.connections;
  const last = agent.lastCycleResult;
  const meters = last?.meters ?? [];
  const instances: InstanceSnapshot[] = (last?.instances ?? []).map((ir) => {
    const o = meterOutcomes(ir.inspection, meters);
    return {
      uuid: ir.instance.uuid,
      domainName: ir.instance.domainName,
      displayName: ir.instance.displayName,
      state: domainStateName(ir.state),
      values: o.values,
      missing: Object.fromEntries(Object.entries(o.missing).map(([m, v]) => [m, { reason: v.reason, detail: v.detail }])),
    };
  });
  const spool = agent.spoolState;
  const d = agent.deliveryStats;
  return {
    now,
    startedAt: agent.startedAt,
    pid: process.pid,
    version: VERSION,
    hostname: os.hostname(),
    config: info.config,
    libvirt: { uri: info.libvirtUri, connected: libvirt.connected, readOnly: true, since: libvirt.since, lastError: libvirt.lastError, reconnects: libvirt.reconnects },
    broker: { target: info.brokerTarget, connected: broker.connected, since: broker.since, lastError: broker.lastError },
    inventory: {
      instances: instances.sort((a, b) => a.domainName.localeCompare(b.domainName)),
      skipped: (last?.skipped ?? []).map((s) => ({ uuid: s.uuid, name: s.name, reason: s.reason })),
    },
    tasks: agent.taskList.map((t) => ({
      name: t.name,
      intervalSeconds: t.spec.intervalSeconds,
      meters: t.spec.meters.map((m) => m.name),
      runs: t.stats.runs,
      skipped: t.stats.skipped,
      failures: t.stats.failures,
      running: t.running,
      lastStartedAt: t.stats.lastStartedAt,
      lastFinishedAt: t.stats.lastFinishedAt,
      lastDurationMs: t.stats.lastDurationMs,
      lastError: t.stats.lastError?.message ?? null,
      lastSuccessAt: t.stats.lastSuccessAt,
    })),
    lastCycle: last
      ? {
          task: last.task,
          at: last.at,
          durationMs: last.durationMs,
          instances: last.instances.length,
          samples: last.samples,
          missingByReason: usageMissingByReason(agent),
        }
      : null,
    spool: { path: spool.path, depth: spool.depth, bytes: spool.bytes, dropped: spool.dropped, oldestAgeMs: spool.oldestCreatedAt === null ? null : now - spool.oldestCreatedAt },
    delivery: d ? { confirmed: d.confirmed, inFlight: agent.deliveryInFlight, publishFailures: d.failedAttempts } : null,
  };
}

/** Feeds `metrics` from the agent's events for as long as the agent runs. */
export function feedMetrics(agent: Agent, metrics: AgentMetrics): void {
  const spool = (): void => {
    const s = agent.spoolState;
    metrics.spool(s.depth, s.bytes);
  };
  agent.on('cycle', (result) => {
    for (const run of result.runs) {
      metrics.samples(run.meter.name, 'produced', run.samples.length);
      metrics.samples(run.meter.name, 'missing', run.missing.length);
    }
    metrics.missingByReason(usageMissingByReason(agent));
    metrics.instances(result.instances.length, result.skipped.length);
    if (result.stall) metrics.stall(result.stall.cause, result.stall.answeredBy);
    spool();
  });
  agent.on('cycleDone', (c) => metrics.cycle(c.task, c.durationMs, c.outcome));
  agent.on('skipped', (task) => metrics.cycle(task, 0, 'skipped'));
  agent.on('confirmed', () => {
    metrics.confirmed();
    spool();
  });
  agent.on('publishFailed', () => metrics.publishFailed());
  agent.on('spoolDropped', (n) => {
    metrics.spoolDropped(n);
    spool();
  });
  agent.on('connection', (peer, up, reconnect) => {
    metrics.connection(peer, up);
    if (up && reconnect) metrics.reconnect(peer);
  });
}
