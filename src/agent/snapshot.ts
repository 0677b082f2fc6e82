// What the agent knows about itself at one instant, as plain data: the input of /healthz
// (health.ts) and of the SIGUSR2 state report (state-report.ts). The agent builds it on demand;
// the readers are pure functions of it, so they are tested with literal snapshots.
//
// Times are epoch milliseconds. Nothing secret may be in it: `config` and `broker.target` hold
// already-redacted text, because both are shown to whoever can reach the status port or the log.

/** One scheduled polling task (scheduler.ts), as counted since the agent started. */
export interface TaskSnapshot {
  name: string;
  intervalSeconds: number;
  meters: string[];
  runs: number;
  /** ticks skipped because the previous run was still going */
  skipped: number;
  failures: number;
  running: boolean;
  lastStartedAt: number | null;
  lastFinishedAt: number | null;
  lastDurationMs: number | null;
  lastError: string | null;
  /** when the last run that succeeded finished; null before the first one */
  lastSuccessAt: number | null;
}

/** One instance as seen in the last cycle. */
export interface InstanceSnapshot {
  uuid: string;
  /** libvirt's name, e.g. instance-0000002a */
  domainName: string;
  /** Nova's display name */
  displayName: string;
  /** e.g. 'running' */
  state: string;
  /** meter -> volume in the last cycle */
  values: Record<string, number>;
  /** meter -> why it had no volume in the last cycle */
  missing: Record<string, { reason: string; detail: string }>;
}

export interface AgentSnapshot {
  now: number;
  startedAt: number;
  pid: number;
  version: string;
  hostname: string;
  /** already-redacted summary lines: key -> value */
  config: Record<string, string>;
  libvirt: {
    uri: string;
    connected: boolean;
    readOnly: boolean;
    /** when the current state (connected or not) began */
    since: number | null;
    lastError: string | null;
    reconnects: number;
  };
  broker: {
    /** the transport URL with its password redacted */
    target: string;
    connected: boolean;
    since: number | null;
    lastError: string | null;
  };
  inventory: {
    instances: InstanceSnapshot[];
    skipped: Array<{ uuid: string; name: string; reason: string }>;
  };
  tasks: TaskSnapshot[];
  lastCycle: {
    task: string;
    at: number;
    durationMs: number;
    instances: number;
    samples: number;
    /** MissingReason -> instances missing memory.usage for it */
    missingByReason: Record<string, number>;
  } | null;
  spool: { path: string; depth: number; bytes: number; dropped: number; oldestAgeMs: number | null };
  /** null before the broker side has started */
  delivery: { confirmed: number; inFlight: number; publishFailures: number } | null;
}
