#!/usr/bin/env node
// ceilopoll's command line. For now one command: `memstats`, which reads every domain's memory
// statistics through the libvirt client (the demo of the foundation); the agent's commands come next.

import { parseArgs } from 'node:util';

import { LibvirtClient, LibvirtError, domainStateName, type DomainStatsRecord } from '../libvirt/index.js';
import { redactUri } from '../libvirt/uri.js';

const USAGE = `usage: ceilopoll <command> [options]

commands:
  memstats      print every domain's memory statistics as libvirt reports them
                (one CONNECT_GET_ALL_DOMAIN_STATS call; DOMAIN_MEMORY_STATS where the
                driver has no balloon group)

options:
  --uri URI     libvirt_uri (default qemu:///system); e.g. qemu+unix:///system?socket=PATH,
                test+unix:///abs/node.xml
  --json        one JSON object per domain instead of a table
  -h, --help    this text

exit status: 0 ok, 1 libvirt unreachable or failed, 2 bad usage`;

const COLUMNS = ['actual', 'available', 'unused', 'usable', 'rss', 'last_update'] as const;

interface Row {
  name: string;
  uuid: string;
  state: string;
  stats: Record<string, number>;
  usageMB: number | null;
  error?: string;
}

/** memory used inside the guest in MB: (available - usable) / 1024, else (available - unused) / 1024 */
function usageMB(s: Record<string, number>): number | null {
  const avail = s.available;
  const free = s.usable ?? s.unused;
  if (avail === undefined || free === undefined) return null;
  return (avail - free) / 1024;
}

async function rows(client: LibvirtClient): Promise<Row[]> {
  const records: DomainStatsRecord[] = await client.getAllDomainStats();
  return Promise.all(records.map(async (rec): Promise<Row> => {
    const state = domainStateName(rec.state?.state ?? 0);
    let stats: Record<string, number> = {};
    let error: string | undefined;
    if (rec.balloon) {
      const { current, ...rest } = rec.balloon;
      stats = { ...(current !== undefined ? { actual: current } : {}), ...rest };
    } else if (rec.state?.state === 1 || rec.state?.state === 3) {
      // libvirt's test driver has no balloon group in the bulk call: ask per domain
      try {
        stats = { ...(await client.memoryStats(rec.domain)) };
      } catch (err) {
        error = err instanceof LibvirtError ? err.message : String(err);
      }
    }
    return { name: rec.domain.name, uuid: rec.domain.uuid, state, stats, usageMB: usageMB(stats), error };
  }));
}

function table(list: Row[]): string {
  const head = ['DOMAIN', 'STATE', ...COLUMNS, 'usage MB'];
  const body = list.map((r) => [
    r.name,
    r.state,
    ...COLUMNS.map((c) => (r.stats[c] === undefined ? '-' : String(r.stats[c]))),
    r.usageMB === null ? '-' : r.usageMB.toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), ...body.map(line)].join('\n');
}

async function memstats(uri: string, json: boolean): Promise<number> {
  let client: LibvirtClient;
  try {
    client = await LibvirtClient.connect({ uri, readOnly: true });
  } catch (err) {
    process.stderr.write(`ceilopoll: cannot open ${redactUri(uri)}: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const list = (await rows(client)).sort((a, b) => a.name.localeCompare(b.name));
    if (json) for (const r of list) process.stdout.write(`${JSON.stringify(r)}\n`);
    else process.stdout.write(`${table(list)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`ceilopoll: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await client.close();
  }
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { uri: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    process.stderr.write(`ceilopoll: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const [command] = parsed.positionals;
  if (parsed.values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && !parsed.values.help ? 2 : 0;
  }
  if (command === 'memstats') return memstats(parsed.values.uri ?? 'qemu:///system', parsed.values.json ?? false);
  process.stderr.write(`ceilopoll: unknown command "${command}"\n${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`ceilopoll: ${String(err)}\n`);
    process.exit(1);
  },
);
