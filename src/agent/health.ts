// Is the agent doing its job? A pure function of a snapshot, served as /healthz. Healthy means
// samples are flowing end to end: libvirt connected, the broker connected, and every polling task
// succeeding on schedule. A broker outage is unhealthy even though nothing is lost yet (the spool
// holds the samples): the samples are late, and the spool is bounded.

import type { AgentSnapshot, TaskSnapshot } from './snapshot.js';

/** Allowance on top of two intervals before a task counts as late. */
export const DEFAULT_HEALTH_GRACE_MS = 30_000;

export interface HealthCheck {
  ok: boolean;
  /** one sentence: what was seen */
  detail: string;
}

export interface HealthReport {
  ok: boolean;
  /** the detail of each failing check, in check order */
  reasons: string[];
  /** 'libvirt', 'broker', then 'task:<name>' per task */
  checks: Record<string, HealthCheck>;
}

export function evaluateHealth(s: AgentSnapshot, opts: { graceMs?: number } = {}): HealthReport {
  const graceMs = opts.graceMs ?? DEFAULT_HEALTH_GRACE_MS;
  const checks: Record<string, HealthCheck> = {
    libvirt: libvirtCheck(s),
    broker: brokerCheck(s),
  };
  for (const t of s.tasks) checks[`task:${t.name}`] = taskCheck(s, t, graceMs);
  const reasons = Object.values(checks).filter((c) => !c.ok).map((c) => c.detail);
  return { ok: reasons.length === 0, reasons, checks };
}

function libvirtCheck(s: AgentSnapshot): HealthCheck {
  const { uri, connected, since, lastError } = s.libvirt;
  if (connected) return { ok: true, detail: `libvirt ${uri} connected${sinceText(s, since)}` };
  return { ok: false, detail: `libvirt ${uri} not connected${errorText(lastError)}` };
}

function brokerCheck(s: AgentSnapshot): HealthCheck {
  const { target, connected, since, lastError } = s.broker;
  if (connected) return { ok: true, detail: `broker ${target} connected${sinceText(s, since)}` };
  return {
    ok: false,
    detail: `broker ${target} not connected${errorText(lastError)}; samples are being spooled (depth ${s.spool.depth})`,
  };
}

function taskCheck(s: AgentSnapshot, t: TaskSnapshot, graceMs: number): HealthCheck {
  const windowMs = 2 * t.intervalSeconds * 1000 + graceMs;
  const interval = `(interval ${t.intervalSeconds} s)`;
  const lastError = t.lastError === null ? '' : `; last error: ${t.lastError}`;
  if (t.lastSuccessAt !== null) {
    const age = ageMs(s.now, t.lastSuccessAt);
    const detail = `task '${t.name}' last succeeded ${seconds(age)} s ago ${interval}`;
    return age <= windowMs ? { ok: true, detail } : { ok: false, detail: detail + lastError };
  }
  const up = ageMs(s.now, s.startedAt);
  if (up < windowMs) {
    const state = t.lastFinishedAt === null ? 'no cycle has finished yet' : 'no cycle has succeeded yet';
    return { ok: true, detail: `task '${t.name}' starting: ${state}, agent up ${seconds(up)} s ${interval}${lastError}` };
  }
  return {
    ok: false,
    detail: `task '${t.name}' has not succeeded since the agent started ${seconds(up)} s ago ${interval}${lastError}`,
  };
}

/** After the wall clock steps back, an age would be negative: count it as zero. */
const ageMs = (now: number, then: number): number => Math.max(0, now - then);
const seconds = (ms: number): number => Math.round(ms / 1000);
const sinceText = (s: AgentSnapshot, since: number | null): string =>
  since === null ? '' : ` for ${seconds(ageMs(s.now, since))} s`;
const errorText = (err: string | null): string => (err === null ? '' : `: ${err}`);
