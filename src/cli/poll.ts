// `ceilopoll poll --once`: one polling cycle for this host, printed instead of published.
//   wire   each sample dict exactly as it goes on the bus (Python-compatible JSON), one a line
//   json   one JSON object per instance: values, the usage formula, and the reason for each gap
//   table  one line per instance, for people

import os from 'node:os';

import { meterOutcomes, pollCycle, type CycleResult } from '../agent/poll-cycle.js';
import { Inventory } from '../discovery/inventory.js';
import { flavorResolverFromEnv } from './credentials.js';
import { isMissing } from '../inspect/memory.js';
import { LibvirtClient } from '../libvirt/client.js';
import { domainStateName } from '../libvirt/protocol.js';
import { redactUri } from '../libvirt/uri.js';
import { randomIds, systemClock } from '../samples/clock.js';
import { MEMORY_METERS, type MemoryUnit } from '../samples/meters.js';
import { pyJsonDumps } from '../samples/pyjson.js';
import { DEFAULT_SAMPLE_OPTIONS, toWireSample, type SampleOptions } from '../samples/sample.js';
import { printable, renderTable } from './table.js';

export type PollFormat = 'wire' | 'json' | 'table';

export interface PollCommandOptions {
  uri: string;
  format: PollFormat;
  host: string;
  unit: MemoryUnit;
  nameKeys: boolean;
  /** meter names to produce; all memory meters when empty */
  meters: string[];
}

export const defaultPollOptions = (): PollCommandOptions => ({
  uri: 'qemu:///system',
  format: 'table',
  host: os.hostname(),
  unit: 'MB',
  nameKeys: false,
  meters: [],
});

export function renderCycle(result: CycleResult, format: PollFormat, sampleOpts: SampleOptions): string {
  if (format === 'wire') {
    return result.runs.flatMap((run) => run.samples.map((s) => pyJsonDumps(toWireSample(s, sampleOpts)))).join('\n');
  }
  const meters = result.runs.map((r) => r.meter);
  const perInstance = result.instances.map((ir) => ({ ir, ...meterOutcomes(ir.inspection, meters) }));
  if (format === 'json') {
    return perInstance
      .map(({ ir, values, missing }) => JSON.stringify({
        resource_id: ir.instance.uuid,
        name: ir.instance.domainName,
        display_name: ir.instance.displayName,
        state: domainStateName(ir.state),
        formula: isMissing(ir.inspection.usage) ? null : ir.inspection.usage.formula,
        last_update: ir.inspection.lastUpdate,
        unit: sampleOpts.unit,
        values,
        missing,
      }))
      .join('\n');
  }
  const meterNames = result.runs.map((r) => r.meter.name);
  const rows = perInstance
    .sort((a, b) => a.ir.instance.domainName.localeCompare(b.ir.instance.domainName))
    .map(({ ir, values, missing }) => {
      const usage = ir.inspection.usage;
      // memory.usage's reason when it is asked for and missing, else the first missing meter's
      const why = missing['memory.usage'] ?? Object.values(missing)[0];
      return [
        ir.instance.domainName,
        printable(ir.instance.displayName),
        domainStateName(ir.state),
        ...meterNames.map((m) => (values[m] === undefined ? '-' : values[m].toFixed(1))),
        isMissing(usage) || values['memory.usage'] === undefined ? '-' : usage.formula,
        why ? `${why.reason}: ${printable(why.detail)}` : '',
      ];
    });
  const out = [renderTable(['DOMAIN', 'DISPLAY NAME', 'STATE', ...meterNames.map((m) => `${m} (${sampleOpts.unit})`), 'FORMULA', 'REASON'], rows)];
  for (const s of result.skipped) out.push(`skipped ${s.name} (${s.uuid}): ${printable(s.reason)}`);
  return out.join('\n');
}

export async function pollCommand(o: PollCommandOptions): Promise<number> {
  const meters = o.meters.length === 0 ? MEMORY_METERS : MEMORY_METERS.filter((m) => o.meters.includes(m.name));
  const unknown = o.meters.filter((n) => !MEMORY_METERS.some((m) => m.name === n));
  if (unknown.length > 0) {
    process.stderr.write(`ceilopoll: unknown meter(s) ${unknown.join(', ')}; known: ${MEMORY_METERS.map((m) => m.name).join(', ')}\n`);
    return 2;
  }
  let flavorIds;
  try {
    flavorIds = flavorResolverFromEnv(process.env, (r) => process.stderr.write(`ceilopoll: flavor lookup: ${r.message}\n`)) ?? undefined;
  } catch (err) {
    process.stderr.write(`ceilopoll: ${(err as Error).message}\n`);
    return 2;
  }
  let client: LibvirtClient;
  try {
    client = await LibvirtClient.connect({ uri: o.uri, readOnly: true });
  } catch (err) {
    process.stderr.write(`ceilopoll: cannot open ${redactUri(o.uri)}: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const inventory = new Inventory({ flavorIds });
    const result = await pollCycle({ client, inventory, meters, unit: o.unit, clock: systemClock, ids: randomIds });
    const text = renderCycle(result, o.format, { ...DEFAULT_SAMPLE_OPTIONS, host: o.host, unit: o.unit, nameKeys: o.nameKeys });
    if (text) process.stdout.write(`${text}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`ceilopoll: polling failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    flavorIds?.close();
    await client.close();
  }
}
