// `ceilopoll run`: the agent, until SIGTERM or SIGINT. ceilometer.conf and polling.yaml as
// ceilometer-polling reads them, a few flags over them; SIGHUP re-reads polling.yaml, SIGUSR2
// writes a state report to stderr; /healthz and /metrics on [ceilopoll] http_listen.

import { parseArgs } from 'node:util';

import { Agent, type PollingTaskSpec } from '../agent/agent.js';
import { createLogger, type Logger, type LogLevel } from '../agent/log.js';
import { AgentMetrics } from '../agent/metrics.js';
import { agentSnapshot, feedMetrics, type SnapshotInfo } from '../agent/observe.js';
import { formatStateReport } from '../agent/state-report.js';
import { startStatusServer, type StatusServer } from '../agent/status-http.js';
import { ConfigError, ConfigErrors } from '../config/errors.js';
import { readPollingYaml, redactedSummary, type CeilopollConfig, type PollingConfig } from '../config/index.js';
import { FlavorIdResolver, type FlavorLookupReport } from '../discovery/flavor-lookup.js';
import { redactUri } from '../libvirt/uri.js';
import { parseTransportUrl, redactTransportUrl } from '../publish/transport-url.js';
import { randomIds, systemClock } from '../samples/clock.js';
import { MEMORY_METERS, meterByName, type MeterDef } from '../samples/meters.js';
import { DEFAULT_SAMPLE_OPTIONS } from '../samples/sample.js';
import { CONFIG_HELP, CONFIG_OPTIONS, configSources, loadCliConfig } from './config-args.js';
import { flavorResolverFromEnv } from './credentials.js';

export const RUN_HELP = `usage: ceilopoll run [options]

The agent: polls the memory meters that polling.yaml selects, one task per distinct interval,
and publishes them to the notification bus through a durable spool, until SIGTERM or SIGINT.

${CONFIG_HELP}

overrides (a flag wins over the configuration files):
  --uri URI          [DEFAULT] libvirt_uri, e.g. qemu:///system, qemu+unix:///system?socket=PATH
  --host NAME        [DEFAULT] host
  --transport-url U  the notification transport_url; prefer $CEILOPOLL_TRANSPORT_URL or the config
                     file for a URL with a password (the process list shows flags)
  --interval S       poll every meter every S seconds, instead of polling.yaml's intervals
  --meter NAME       only this meter (repeatable), within what polling.yaml selects
  --spool PATH       [ceilopoll] spool_path
  --http-listen A    [ceilopoll] http_listen (host:port, or off)
  --log-level L      DEBUG, INFO, WARNING or ERROR (default INFO; DEBUG with [DEFAULT] debug)
  --log-format F     [ceilopoll] log_format: oslo or json
  -h, --help         this text

environment: CEILOPOLL_TRANSPORT_URL (transport_url), CEILOPOLL_TELEMETRY_SECRET
([publisher] telemetry_secret); without [service_credentials] auth_url, the OS_* variables of an
openrc give the flavor-id lookup its credentials.

signals: SIGTERM, SIGINT stop within stop_timeout + 5 s (the cycle in progress finishes, unconfirmed notifications stay in
the spool), SIGHUP re-reads polling.yaml, SIGUSR2 writes a state report to stderr.

exit status: 0 stopped by a signal, 1 could not start (spool, libvirt URI), 2 bad usage or
configuration`;

const usage = (msg: string): number => {
  process.stderr.write(`ceilopoll run: ${msg}\nTry 'ceilopoll run --help'.\n`);
  return 2;
};

const LEVELS: readonly LogLevel[] = ['DEBUG', 'INFO', 'WARNING', 'ERROR'];

/** polling.yaml's tasks as the agent takes them, with --interval and --meter applied. */
export function pollingTasks(polling: PollingConfig, o: { intervalSeconds?: number; meters?: string[] }): PollingTaskSpec[] {
  const only = o.meters && o.meters.length > 0 ? new Set(o.meters) : null;
  const defs = (names: readonly string[]): MeterDef[] =>
    MEMORY_METERS.filter((m) => names.includes(m.name) && (only === null || only.has(m.name)));
  if (o.intervalSeconds !== undefined) {
    const names = new Set(polling.tasks.flatMap((t) => t.meters));
    const sources = [...new Set(polling.tasks.flatMap((t) => t.sources))];
    const meters = defs([...names]);
    return meters.length > 0 ? [{ intervalSeconds: o.intervalSeconds, meters, sources }] : [];
  }
  return polling.tasks
    .map((t) => ({ intervalSeconds: t.intervalSeconds, meters: defs(t.meters), sources: t.sources }))
    .filter((t) => t.meters.length > 0);
}

const describeTasks = (tasks: readonly PollingTaskSpec[]): string =>
  tasks.map((t) => `${t.meters.map((m) => m.name).join(', ')} every ${t.intervalSeconds}s`).join('; ');

function flavorResolver(cfg: CeilopollConfig, log: Logger): FlavorIdResolver | undefined {
  const onReport = (r: FlavorLookupReport): void => (r.level === 'warning' ? log.warning(`flavor lookup: ${r.message}`) : log.info(`flavor lookup: ${r.message}`));
  if (cfg.serviceCredentials) return new FlavorIdResolver({ credentials: cfg.serviceCredentials, onReport });
  return flavorResolverFromEnv(process.env, onReport) ?? undefined;
}

export async function runMain(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      tokens: true,
      options: {
        ...CONFIG_OPTIONS,
        uri: { type: 'string' },
        host: { type: 'string' },
        'transport-url': { type: 'string' },
        interval: { type: 'string' },
        meter: { type: 'string', multiple: true },
        spool: { type: 'string' },
        'http-listen': { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(`${RUN_HELP}\n`);
    return 0;
  }
  let intervalSeconds: number | undefined;
  if (v.interval !== undefined) {
    intervalSeconds = Number(v.interval);
    if (!Number.isInteger(intervalSeconds) || intervalSeconds <= 0) return usage(`--interval ${v.interval}: expected a whole number of seconds > 0`);
  }
  if (v['log-level'] !== undefined && !LEVELS.includes(v['log-level'] as LogLevel)) return usage(`--log-level ${v['log-level']}: expected DEBUG, INFO, WARNING or ERROR`);
  if (v['log-format'] !== undefined && v['log-format'] !== 'oslo' && v['log-format'] !== 'json') return usage(`--log-format ${v['log-format']}: expected oslo or json`);
  const unknownMeters = (v.meter ?? []).filter((m) => meterByName(m) === undefined);
  if (unknownMeters.length > 0) return usage(`--meter ${unknownMeters.join(', ')}: not a ceilopoll meter; known: ${MEMORY_METERS.map((m) => m.name).join(', ')}`);

  // Warnings from loading come before the logger's format is known: keep them and log them after.
  const early: string[] = [];
  const loaded = await loadCliConfig(configSources(parsed.tokens), (w) => early.push(w), {
    overrides: {
      libvirtUri: v.uri,
      host: v.host,
      transportUrl: v['transport-url'] ?? process.env.CEILOPOLL_TRANSPORT_URL,
      telemetrySecret: process.env.CEILOPOLL_TELEMETRY_SECRET,
      spoolPath: v.spool,
      httpListen: v['http-listen'],
      logFormat: v['log-format'],
    },
  });
  if (typeof loaded === 'number') return loaded;
  const cfg = loaded;
  const level: LogLevel = (v['log-level'] as LogLevel | undefined) ?? (cfg.debug ? 'DEBUG' : 'INFO');
  const log = createLogger('ceilopoll.agent', { level, format: cfg.ceilopoll.logFormat });
  for (const w of early) log.warning(w);

  const tasks = pollingTasks(cfg.polling, { intervalSeconds, meters: v.meter });
  if (tasks.length === 0) {
    process.stderr.write(`ceilopoll: ${cfg.pollingFile} selects none of ceilopoll's meters (${MEMORY_METERS.map((m) => m.name).join(', ')}); nothing to poll\n`);
    return 2;
  }
  if (cfg.polling.notPolled.length > 0) log.info(`${cfg.pollingFile}: left to ceilometer-polling, not polled by ceilopoll: ${cfg.polling.notPolled.join(', ')}`);

  const transport = parseTransportUrl(cfg.transportUrl, cfg.rabbit); // checked by loadConfig
  const metrics = new AgentMetrics();
  const flavorIds = flavorResolver(cfg, log);
  const agent = new Agent({
    libvirtUri: cfg.libvirtUri,
    tasks,
    sample: { ...DEFAULT_SAMPLE_OPTIONS, secret: cfg.telemetrySecret, host: cfg.host, unit: cfg.ceilopoll.unit, nameKeys: cfg.ceilopoll.nameKeys },
    batchSize: cfg.batchSize,
    transport,
    exchange: cfg.controlExchange,
    topics: cfg.topics,
    spoolPath: cfg.ceilopoll.spoolPath,
    spoolMaxBytes: cfg.ceilopoll.spoolMaxMb * 1024 * 1024,
    spoolMaxAgeMs: cfg.ceilopoll.spoolMaxAgeHours * 3_600_000,
    stalenessFactor: cfg.ceilopoll.stalenessFactor,
    resourceUpdateIntervalMs: cfg.compute.resourceUpdateInterval * 1000,
    flavorIds,
    log,
    clock: systemClock,
    ids: randomIds,
    onLibvirtCall: metrics.libvirtCallObserver(),
  });
  feedMetrics(agent, metrics);
  const info: SnapshotInfo = { libvirtUri: redactUri(cfg.libvirtUri), brokerTarget: redactTransportUrl(cfg.transportUrl), config: redactedSummary(cfg) };
  const snapshot = (): ReturnType<typeof agentSnapshot> => agentSnapshot(agent, info);

  try {
    agent.start();
  } catch (err) {
    log.error(`cannot start: ${(err as Error).message}`);
    flavorIds?.close();
    return 1;
  }
  log.info(`ceilopoll started: ${describeTasks(tasks)} from ${redactUri(cfg.libvirtUri)}; publishing to ${redactTransportUrl(cfg.transportUrl)} exchange ${cfg.controlExchange}, topics ${cfg.topics.join(', ')}; spool ${cfg.ceilopoll.spoolPath}; configuration ${cfg.files.length > 0 ? cfg.files.join(', ') : '(defaults)'} and ${cfg.pollingFile}`);

  let http: StatusServer | null = null;
  if (cfg.ceilopoll.httpListen) {
    try {
      http = await startStatusServer({ ...cfg.ceilopoll.httpListen, snapshot, metrics, log });
      const a = http.address();
      log.info(`/healthz and /metrics on http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}/`);
    } catch (err) {
      // Metering goes on without the status endpoint: losing samples would be worse.
      log.error(`${(err as Error).message}; running without /healthz and /metrics`);
    }
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    let reloading: Promise<void> = Promise.resolve();
    const reload = async (): Promise<void> => {
      try {
        const polling = await readPollingYaml(cfg.pollingFile, cfg.pollingOptions);
        const next = pollingTasks(polling, { intervalSeconds, meters: v.meter });
        for (const w of polling.warnings) log.warning(w);
        if (next.length === 0) {
          log.error(`SIGHUP: ${cfg.pollingFile} selects none of ceilopoll's meters; keeping the current polling tasks`);
          return;
        }
        if (stopping) return;
        await agent.replaceTasks(next);
        log.info(`SIGHUP: reloaded ${cfg.pollingFile}: ${describeTasks(next)}`);
      } catch (err) {
        const errors = err instanceof ConfigErrors ? err.errors : [err instanceof ConfigError ? err : new Error(String(err))];
        for (const e of errors) log.error(`SIGHUP: ${e.message}`);
        log.error(`SIGHUP: ${cfg.pollingFile} not reloaded; keeping the current polling tasks`);
      }
    };
    const onHup = (): void => {
      reloading = reloading.then(reload);
    };
    const onUsr2 = (): void => {
      process.stderr.write(`${formatStateReport(snapshot())}\n`);
    };
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      process.off('SIGHUP', onHup);
      process.off('SIGUSR2', onUsr2);
      log.info(`${signal}: stopping; unconfirmed notifications are kept in the spool`);
      // The bound: a cycle stuck in a libvirt call (30 s timeout) must not hold the exit. What is
      // spooled is on disk already, so exiting without the clean close loses nothing.
      const boundS = cfg.ceilopoll.stopTimeout + 5;
      setTimeout(() => {
        log.error(`${signal}: not stopped within ${boundS} s (a cycle or the broker is stuck); exiting now, unconfirmed notifications stay in the spool`);
        resolve(0);
      }, boundS * 1000).unref();
      void (async () => {
        try {
          await reloading;
          const left = await agent.stop(cfg.ceilopoll.stopTimeout * 1000);
          await http?.close();
          log.info(`stopped; ${left} notification(s) left in the spool for the next start`);
          resolve(0);
        } catch (err) {
          log.error(`error while stopping: ${String(err)}`);
          resolve(1);
        }
      })();
    };
    process.on('SIGHUP', onHup);
    process.on('SIGUSR2', onUsr2);
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
