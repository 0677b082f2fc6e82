// `ceilopoll poll --once`: one polling cycle for this host, printed instead of published.
//   wire   each sample dict exactly as it goes on the bus (Python-compatible JSON), one a line
//   json   one JSON object per instance: values, the usage formula, and the reason for each gap
//   table  one line per instance, for people

import os from 'node:os';
import { parseArgs } from 'node:util';

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
import { CONFIG_HELP, CONFIG_OPTIONS, configSources, loadCliConfig } from './config-args.js';
import { FlavorIdResolver } from '../discovery/flavor-lookup.js';

export type PollFormat = 'wire' | 'json' | 'table';

export interface PollCommandOptions {
  uri: string;
  format: PollFormat;
  host: string;
  unit: MemoryUnit;
  nameKeys: boolean;
  /** meter names to produce; all memory meters when empty */
  meters: string[];
  /** [publisher] telemetry_secret */
  secret?: string;
  stalenessFactor?: number;
  /** flavor.id from Nova; without it, from the OS_* environment (or the flavor name) */
  flavorIds?: FlavorIdResolver;
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
  let flavorIds = o.flavorIds;
  try {
    flavorIds ??= flavorResolverFromEnv(process.env, (r) => process.stderr.write(`ceilopoll: flavor lookup: ${r.message}\n`)) ?? undefined;
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
    const result = await pollCycle({ client, inventory, meters, unit: o.unit, clock: systemClock, ids: randomIds, stalenessFactor: o.stalenessFactor });
    const text = renderCycle(result, o.format, { ...DEFAULT_SAMPLE_OPTIONS, secret: o.secret ?? DEFAULT_SAMPLE_OPTIONS.secret, host: o.host, unit: o.unit, nameKeys: o.nameKeys });
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

export const POLL_HELP = `usage: ceilopoll poll --once [options]

One polling cycle on this host: every instance's memory meters, printed instead of published,
and for each missing value the reason. Reads libvirt_uri, host, [publisher] telemetry_secret,
[service_credentials] and [ceilopoll] unit, name_keys and staleness_factor from the configuration;
polling.yaml is not needed.

${CONFIG_HELP}

options:
  --once             required (the continuous agent is \`ceilopoll run\`)
  --format F         table (default), wire (the sample dicts exactly as sent, one a line) or json
                     (one object per instance, with the reason for each missing value)
  --meter NAME       only this meter (repeatable); default every memory meter
  --uri URI          [DEFAULT] libvirt_uri
  --host NAME        [DEFAULT] host, hashed into resource_metadata.host
  --unit MB|MiB      [ceilopoll] unit (MB up to Ceilometer 2025.2, MiB from 2026.1)
  --name-keys        [ceilopoll] name_keys = true: user_name and project_name, as 2023.1+
  -h, --help         this text

exit status: 0 printed, 1 libvirt unreachable or the cycle failed, 2 bad usage or configuration`;

export async function pollMain(argv: string[]): Promise<number> {
  const usage = (msg: string): number => {
    process.stderr.write(`ceilopoll poll: ${msg}\nTry 'ceilopoll poll --help'.\n`);
    return 2;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      tokens: true,
      options: {
        ...CONFIG_OPTIONS,
        once: { type: 'boolean' },
        format: { type: 'string' },
        meter: { type: 'string', multiple: true },
        uri: { type: 'string' },
        host: { type: 'string' },
        unit: { type: 'string' },
        'name-keys': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(`${POLL_HELP}\n`);
    return 0;
  }
  if (!v.once) return usage('poll needs --once (the continuous agent is `ceilopoll run`)');
  if (v.format !== undefined && !['wire', 'json', 'table'].includes(v.format)) return usage(`--format ${v.format}: expected wire, json or table`);
  if (v.unit !== undefined && v.unit !== 'MB' && v.unit !== 'MiB') return usage(`--unit ${v.unit}: expected MB or MiB`);
  const cfg = await loadCliConfig(configSources(parsed.tokens), (w) => process.stderr.write(`ceilopoll: warning: ${w}\n`), {
    polling: false,
    overrides: { libvirtUri: v.uri, host: v.host },
  });
  if (typeof cfg === 'number') return cfg;
  const flavorIds = cfg.serviceCredentials
    ? new FlavorIdResolver({ credentials: cfg.serviceCredentials, onReport: (r) => process.stderr.write(`ceilopoll: flavor lookup: ${r.message}\n`) })
    : undefined;
  return pollCommand({
    uri: cfg.libvirtUri,
    format: (v.format as PollFormat | undefined) ?? 'table',
    host: cfg.host,
    unit: (v.unit) ?? cfg.ceilopoll.unit,
    nameKeys: v['name-keys'] ?? cfg.ceilopoll.nameKeys,
    meters: v.meter ?? [],
    secret: cfg.telemetrySecret,
    stalenessFactor: cfg.ceilopoll.stalenessFactor,
    flavorIds,
  });
}
