// `ceilopoll run`: the agent, until SIGTERM or SIGINT. Configuration comes from flags and the
// environment for now (ceilometer.conf and polling.yaml arrive with issue 5).

import os from 'node:os';

import { Agent } from '../agent/agent.js';
import { createLogger, type LogLevel } from '../agent/log.js';
import { parseTransportUrl, redactTransportUrl } from '../publish/transport-url.js';
import { randomIds, systemClock } from '../samples/clock.js';
import { flavorResolverFromEnv } from './credentials.js';
import { MEMORY_METERS, type MemoryUnit } from '../samples/meters.js';
import { DEFAULT_SAMPLE_OPTIONS } from '../samples/sample.js';

export interface RunCommandOptions {
  uri: string;
  host: string;
  intervalSeconds: number;
  transportUrl: string;
  exchange: string;
  topics: string[];
  batchSize: number;
  spoolPath: string;
  spoolMaxBytes: number;
  spoolMaxAgeMs: number;
  unit: MemoryUnit;
  nameKeys: boolean;
  meters: string[];
  logLevel: LogLevel;
  logFormat: 'oslo' | 'json';
  stopTimeoutMs: number;
}

export const defaultRunOptions = (env: NodeJS.ProcessEnv = process.env): RunCommandOptions => ({
  uri: 'qemu:///system',
  host: os.hostname(),
  intervalSeconds: 300,
  // oslo's default transport is rabbit:// = guest@localhost:5672; the environment keeps a
  // password out of the process list
  transportUrl: env.CEILOPOLL_TRANSPORT_URL ?? 'rabbit://guest:guest@127.0.0.1:5672/',
  exchange: 'ceilometer',
  topics: ['notifications'],
  batchSize: 50,
  spoolPath: '/var/lib/ceilopoll/spool.sqlite',
  spoolMaxBytes: 256 * 1024 * 1024,
  spoolMaxAgeMs: 72 * 3600 * 1000,
  unit: 'MB',
  nameKeys: false,
  meters: [],
  logLevel: 'INFO',
  logFormat: 'oslo',
  stopTimeoutMs: 10_000,
});

export async function runCommand(o: RunCommandOptions): Promise<number> {
  const log = createLogger('ceilopoll.agent', { level: o.logLevel, format: o.logFormat });
  let transport;
  try {
    transport = parseTransportUrl(o.transportUrl);
  } catch (err) {
    process.stderr.write(`ceilopoll: transport_url ${redactTransportUrl(o.transportUrl)}: ${(err as Error).message}\n`);
    return 2;
  }
  let flavorIds;
  try {
    flavorIds = flavorResolverFromEnv(process.env, (r) => (r.level === 'warning' ? log.warning(`flavor lookup: ${r.message}`) : log.info(`flavor lookup: ${r.message}`))) ?? undefined;
  } catch (err) {
    process.stderr.write(`ceilopoll: ${(err as Error).message}\n`);
    return 2;
  }
  const meters = o.meters.length === 0 ? MEMORY_METERS : MEMORY_METERS.filter((m) => o.meters.includes(m.name));
  const secret = process.env.CEILOPOLL_TELEMETRY_SECRET ?? DEFAULT_SAMPLE_OPTIONS.secret;
  const agent = new Agent({
    libvirtUri: o.uri,
    intervalSeconds: o.intervalSeconds,
    meters,
    sample: { ...DEFAULT_SAMPLE_OPTIONS, secret, host: o.host, unit: o.unit, nameKeys: o.nameKeys },
    batchSize: o.batchSize,
    transport,
    exchange: o.exchange,
    topics: o.topics,
    spoolPath: o.spoolPath,
    spoolMaxBytes: o.spoolMaxBytes,
    spoolMaxAgeMs: o.spoolMaxAgeMs,
    stalenessFactor: 3,
    resourceUpdateIntervalMs: 0,
    flavorIds,
    log,
    clock: systemClock,
    ids: randomIds,
  });
  try {
    agent.start();
  } catch (err) {
    log.error(`cannot start: ${(err as Error).message}`);
    return 1;
  }
  log.info(`polling ${meters.map((m) => m.name).join(', ')} every ${o.intervalSeconds}s from ${o.uri}; publishing to ${redactTransportUrl(o.transportUrl)} exchange ${o.exchange}; spool ${o.spoolPath}`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info(`${signal}: stopping; unconfirmed notifications are kept in the spool`);
      agent.stop(o.stopTimeoutMs).then(
        (left) => {
          log.info(`stopped; ${left} notification(s) left in the spool for the next start`);
          resolve(0);
        },
        (err: unknown) => {
          log.error(`error while stopping: ${String(err)}`);
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
