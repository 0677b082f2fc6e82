#!/usr/bin/env node
// ceilopoll's command line.

import { parseArgs } from 'node:util';

import { memstatsCommand } from './memstats.js';
import { defaultPollOptions, pollCommand, type PollFormat } from './poll.js';
import { defaultRunOptions, runCommand } from './run.js';

const USAGE = `usage: ceilopoll <command> [options]

commands:
  run           the agent: poll every --interval seconds and publish to RabbitMQ until
                SIGTERM/SIGINT (unconfirmed notifications stay in the spool)
  poll --once   run one polling cycle for this host and print the samples instead of
                publishing them
  memstats      print every domain's memory statistics as libvirt reports them

options:
  --uri URI          libvirt_uri (default qemu:///system); e.g. qemu+unix:///system?socket=PATH,
                     test+unix:///abs/node.xml
  --format F         poll: wire (the sample dicts as sent, one a line), json (one object per
                     instance, with the reason for each missing value) or table (default)
  --host NAME        poll: [DEFAULT] host, hashed into resource_metadata.host (default: hostname)
  --unit MB|MiB      poll: counter_unit (MB up to Ceilometer 2025.2, MiB from 2026.1; default MB)
  --name-keys        poll: add user_name / project_name (null), as Ceilometer 2023.1+ does
  --meter NAME       poll: only this meter (repeatable); default all memory meters
  --json             memstats: one JSON object per domain
  --interval S       run: polling interval in seconds (default 300)
  --transport-url U  run: oslo transport URL (default $CEILOPOLL_TRANSPORT_URL, else
                     rabbit://guest:guest@127.0.0.1:5672/); prefer the environment variable
                     for a URL with a password (the process list shows flags)
  --exchange NAME    run: control_exchange (default ceilometer)
  --topic NAME       run: notification topic, repeatable (default notifications)
  --batch-size N     run: samples per notification (default 50; 0 = one per sample)
  --spool PATH       run: the durable spool (default /var/lib/ceilopoll/spool.sqlite)
  --spool-max-mb N   run: spool size bound; the oldest are dropped beyond it (default 256)
  --spool-max-age-h N  run: spool age bound in hours (default 72)
  --log-level L      run: DEBUG, INFO, WARNING or ERROR (default INFO)
  --log-format F     run: oslo (default) or json
  environment: CEILOPOLL_TRANSPORT_URL, CEILOPOLL_TELEMETRY_SECRET ([publisher] telemetry_secret);
  OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, OS_USER_DOMAIN_NAME,
  OS_PROJECT_DOMAIN_NAME, OS_REGION_NAME, OS_INTERFACE (an openrc): flavor.id from Nova for
  run and poll; without OS_AUTH_URL flavor.id is the flavor name, as Ceilometer does without Nova
  -h, --help         this text

exit status: 0 ok, 1 libvirt unreachable or the cycle failed, 2 bad usage`;

type RunLogLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';

const usageError = (msg: string): number => {
  process.stderr.write(`ceilopoll: ${msg}\n${USAGE}\n`);
  return 2;
};

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        uri: { type: 'string' },
        json: { type: 'boolean' },
        once: { type: 'boolean' },
        format: { type: 'string' },
        host: { type: 'string' },
        unit: { type: 'string' },
        'name-keys': { type: 'boolean' },
        meter: { type: 'string', multiple: true },
        interval: { type: 'string' },
        'transport-url': { type: 'string' },
        exchange: { type: 'string' },
        topic: { type: 'string', multiple: true },
        'batch-size': { type: 'string' },
        spool: { type: 'string' },
        'spool-max-mb': { type: 'string' },
        'spool-max-age-h': { type: 'string' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return usageError((err as Error).message);
  }
  const v = parsed.values;
  const [command] = parsed.positionals;
  if (v.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command === undefined) return usageError('no command given');
  if (command === 'memstats') return memstatsCommand(v.uri ?? 'qemu:///system', v.json ?? false);
  if (command === 'poll') {
    if (!v.once) return usageError('poll needs --once (the continuous agent is `ceilopoll run`, not built yet)');
    const o = defaultPollOptions();
    if (v.format !== undefined && !['wire', 'json', 'table'].includes(v.format)) return usageError(`--format ${v.format}: expected wire, json or table`);
    if (v.unit !== undefined && v.unit !== 'MB' && v.unit !== 'MiB') return usageError(`--unit ${v.unit}: expected MB or MiB`);
    return pollCommand({
      ...o,
      uri: v.uri ?? o.uri,
      format: (v.format as PollFormat | undefined) ?? o.format,
      host: v.host ?? o.host,
      unit: v.unit ?? o.unit,
      nameKeys: v['name-keys'] ?? false,
      meters: v.meter ?? [],
    });
  }
  if (command === 'run') {
    const o = defaultRunOptions();
    const num = (name: string, raw: string | undefined, min: number): number | string => {
      if (raw === undefined) return NaN;
      const n = Number(raw);
      return Number.isFinite(n) && n >= min ? n : `--${name} ${raw}: expected a number >= ${min}`;
    };
    const checks = {
      interval: num('interval', v.interval, 1),
      batch: num('batch-size', v['batch-size'], 0),
      mb: num('spool-max-mb', v['spool-max-mb'], 1),
      age: num('spool-max-age-h', v['spool-max-age-h'], 0.001),
    };
    for (const c of Object.values(checks)) if (typeof c === 'string') return usageError(c);
    const pick = (c: number | string, d: number): number => (typeof c === 'number' && !Number.isNaN(c) ? c : d);
    if (v['log-level'] !== undefined && !['DEBUG', 'INFO', 'WARNING', 'ERROR'].includes(v['log-level'])) return usageError(`--log-level ${v['log-level']}: expected DEBUG, INFO, WARNING or ERROR`);
    if (v['log-format'] !== undefined && v['log-format'] !== 'oslo' && v['log-format'] !== 'json') return usageError(`--log-format ${v['log-format']}: expected oslo or json`);
    if (v.unit !== undefined && v.unit !== 'MB' && v.unit !== 'MiB') return usageError(`--unit ${v.unit}: expected MB or MiB`);
    return runCommand({
      ...o,
      uri: v.uri ?? o.uri,
      host: v.host ?? o.host,
      intervalSeconds: pick(checks.interval, o.intervalSeconds),
      transportUrl: v['transport-url'] ?? o.transportUrl,
      exchange: v.exchange ?? o.exchange,
      topics: v.topic ?? o.topics,
      batchSize: pick(checks.batch, o.batchSize),
      spoolPath: v.spool ?? o.spoolPath,
      spoolMaxBytes: pick(checks.mb, o.spoolMaxBytes / 1048576) * 1048576,
      spoolMaxAgeMs: pick(checks.age, o.spoolMaxAgeMs / 3_600_000) * 3_600_000,
      unit: v.unit ?? o.unit,
      nameKeys: v['name-keys'] ?? false,
      meters: v.meter ?? [],
      logLevel: (v['log-level'] as RunLogLevel | undefined) ?? o.logLevel,
      logFormat: (v['log-format']) ?? o.logFormat,
    });
  }
  return usageError(`unknown command "${command}"`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`ceilopoll: ${String(err)}\n`);
    process.exit(1);
  },
);
