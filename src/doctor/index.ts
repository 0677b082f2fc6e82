// `ceilopoll doctor [--fix-period N]`: the diagnosis (read-only) or the live period repair
// (read-write), printed for people.

import { LibvirtClient } from '../libvirt/client.js';
import { redactUri } from '../libvirt/uri.js';
import { diagnose } from './diagnose.js';
import { checkPeriod, fixPeriod, formatFixResults } from './fix-period.js';
import { formatDoctorReport } from './report.js';

export * from './diagnose.js';
export * from './fix-period.js';
export * from './report.js';

export interface DoctorCommandOptions {
  uri: string;
  /** set this live stats period where a virtio balloon has none, instead of diagnosing */
  fixPeriod?: number;
  /** --fix-period: only these domains (names or uuids) */
  domains?: string[];
  stalenessFactor?: number;
}

/**
 * Exit status: 0 no instance has a problem (or --fix-period set every period it could), 1 libvirt
 * unreachable or a fix failed, 2 bad usage, 3 problems found (notes, such as a shut-off instance, are not).
 */
export async function doctorCommand(o: DoctorCommandOptions): Promise<number> {
  const readOnly = o.fixPeriod === undefined;
  if (o.fixPeriod !== undefined) {
    try {
      checkPeriod(o.fixPeriod);
    } catch (err) {
      process.stderr.write(`ceilopoll: --fix-period: ${(err as Error).message}\n`);
      return 2;
    }
  }
  let client: LibvirtClient;
  try {
    client = await LibvirtClient.connect({ uri: o.uri, readOnly });
  } catch (err) {
    const how = readOnly ? '' : ' read-write (--fix-period needs root or write access to libvirt-sock)';
    process.stderr.write(`ceilopoll: cannot open ${redactUri(o.uri)}${how}: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    if (o.fixPeriod !== undefined) {
      const results = await fixPeriod(client, o.fixPeriod, { domains: o.domains });
      process.stdout.write(`${formatFixResults(results, o.fixPeriod)}\n`);
      return results.some((r) => r.outcome === 'failed') ? 1 : 0;
    }
    const report = await diagnose(client, { uri: o.uri, stalenessFactor: o.stalenessFactor });
    const color = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
    process.stdout.write(`${formatDoctorReport(report, { color })}\n`);
    return report.withProblems > 0 ? 3 : 0;
  } catch (err) {
    process.stderr.write(`ceilopoll: doctor failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await client.close();
  }
}
