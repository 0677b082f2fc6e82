// `ceilopoll memstats`: every domain's memory statistics as libvirt reports them, read through
// ceilopoll's own client. The raw view under `poll`.

import { parseArgs } from 'node:util';

import { readMemoryStats } from '../inspect/reader.js';
import { LibvirtClient } from '../libvirt/client.js';
import { domainStateName } from '../libvirt/protocol.js';
import { redactUri } from '../libvirt/uri.js';
import { renderTable } from './table.js';
import { CONFIG_HELP, CONFIG_OPTIONS, configSources, loadCliConfig } from './config-args.js';

const COLUMNS = ['actual', 'available', 'unused', 'usable', 'rss', 'last_update'] as const;

export async function memstatsCommand(uri: string, json: boolean): Promise<number> {
  let client: LibvirtClient;
  try {
    client = await LibvirtClient.connect({ uri, readOnly: true });
  } catch (err) {
    process.stderr.write(`ceilopoll: cannot open ${redactUri(uri)}: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const { readings } = await readMemoryStats(client);
    readings.sort((a, b) => a.domain.name.localeCompare(b.domain.name));
    const rows = readings.map((r) => {
      const s = r.stats ?? {};
      const free = s.usable ?? s.unused;
      const usageMB = s.available !== undefined && free !== undefined ? (s.available - free) / 1024 : null;
      return { name: r.domain.name, uuid: r.domain.uuid, state: domainStateName(r.state), stats: s, usageMB, error: r.error?.message };
    });
    if (json) {
      for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
    } else {
      const body = rows.map((r) => [
        r.name,
        r.state,
        ...COLUMNS.map((c) => (r.stats[c] === undefined ? '-' : String(r.stats[c]))),
        r.usageMB === null ? '-' : r.usageMB.toFixed(1),
      ]);
      process.stdout.write(`${renderTable(['DOMAIN', 'STATE', ...COLUMNS, 'usage MB'], body)}\n`);
    }
    return 0;
  } catch (err) {
    process.stderr.write(`ceilopoll: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await client.close();
  }
}

export const MEMSTATS_HELP = `usage: ceilopoll memstats [options]

Every domain's memory statistics (KiB) as libvirt reports them, from one bulk call: the raw view
under \`poll\` and \`doctor\`. Reads libvirt_uri from the configuration.

${CONFIG_HELP}

options:
  --uri URI          [DEFAULT] libvirt_uri
  --json             one JSON object per domain
  -h, --help         this text

exit status: 0 printed, 1 libvirt unreachable, 2 bad usage or configuration`;

export async function memstatsMain(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, tokens: true, options: { ...CONFIG_OPTIONS, uri: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    process.stderr.write(`ceilopoll memstats: ${(err as Error).message}\nTry 'ceilopoll memstats --help'.\n`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(`${MEMSTATS_HELP}\n`);
    return 0;
  }
  const cfg = await loadCliConfig(configSources(parsed.tokens), (w) => process.stderr.write(`ceilopoll: warning: ${w}\n`), { polling: false, overrides: { libvirtUri: parsed.values.uri } });
  if (typeof cfg === 'number') return cfg;
  return memstatsCommand(cfg.libvirtUri, parsed.values.json ?? false);
}
