#!/usr/bin/env node
// ceilopoll's command line.

import { parseArgs } from 'node:util';

import { memstatsCommand } from './memstats.js';
import { defaultPollOptions, pollCommand, type PollFormat } from './poll.js';

const USAGE = `usage: ceilopoll <command> [options]

commands:
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
  -h, --help         this text

exit status: 0 ok, 1 libvirt unreachable or the cycle failed, 2 bad usage`;

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
  return usageError(`unknown command "${command}"`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`ceilopoll: ${String(err)}\n`);
    process.exit(1);
  },
);
