// `ceilopoll memstats`: every domain's memory statistics as libvirt reports them, read through
// ceilopoll's own client. The raw view under `poll`.

import { readMemoryStats } from '../inspect/reader.js';
import { LibvirtClient } from '../libvirt/client.js';
import { domainStateName } from '../libvirt/protocol.js';
import { redactUri } from '../libvirt/uri.js';
import { renderTable } from './table.js';

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
