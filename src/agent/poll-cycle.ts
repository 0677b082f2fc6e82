// One polling cycle: read every domain's stats (one bulk call), bring the inventory up to date
// (XML only for new or changed domains), inspect each instance once, then run each meter over the
// inspections, the way Ceilometer's pollsters share one `inspect_instance` per instance and cycle.

import type { Inventory, SkippedDomain } from '../discovery/inventory.js';
import type { Instance } from '../discovery/instance.js';
import { inspectMemory, isMissing, type MemoryInspection, type Missing } from '../inspect/memory.js';
import { StatsReader, type BulkStall } from '../inspect/reader.js';
import type { LibvirtClient } from '../libvirt/client.js';
import { pyIsoformat, type Clock, type IdSource } from '../samples/clock.js';
import type { MeterDef, MemoryUnit } from '../samples/meters.js';
import type { Sample } from '../samples/sample.js';

export interface InstanceResult {
  instance: Instance;
  state: number;
  inspection: MemoryInspection;
  /** time.monotonic() after the inspection, shared by all meters of the instance */
  monotonicTime: number;
}

export interface MeterRun {
  meter: MeterDef;
  samples: Sample[];
  missing: Array<{ instance: Instance; missing: Missing }>;
}

export interface CycleResult {
  instances: InstanceResult[];
  skipped: SkippedDomain[];
  runs: MeterRun[];
  /** false when the driver lacked the bulk balloon group and per-domain calls were made */
  bulk: boolean;
  libvirtCalls: number;
  /** set when the bulk call stalled, or was not sent, and the domains were asked on their own (inspect/reader.ts) */
  stall?: BulkStall;
}

export interface CycleDeps {
  client: LibvirtClient;
  inventory: Inventory;
  meters: readonly MeterDef[];
  unit: MemoryUnit;
  clock: Clock;
  ids: IdSource;
  stalenessFactor?: number;
  /** the agent's reader: it remembers the domains, and their calls still waiting, from cycle to cycle (default: a new one) */
  reader?: StatsReader;
  /** the reader's stallBudgetMs */
  stallBudgetMs?: number;
}

export interface MeterOutcomes {
  /** meter name -> volume, for the meters that have one */
  values: Record<string, number>;
  /** meter name -> why there is no volume, for the others */
  missing: Record<string, Missing>;
}

/** Each meter's volume for one inspected instance, or the reason it has none, in meter order. */
export function meterOutcomes(inspection: MemoryInspection, meters: readonly MeterDef[]): MeterOutcomes {
  const out: MeterOutcomes = { values: {}, missing: {} };
  for (const m of meters) {
    const v = m.volume(inspection);
    if (isMissing(v)) out.missing[m.name] = v;
    else out.values[m.name] = v;
  }
  return out;
}

export async function pollCycle(deps: CycleDeps): Promise<CycleResult> {
  const { client, inventory, clock, ids } = deps;
  const reading = await (deps.reader ?? new StatsReader()).read(client, { stallBudgetMs: deps.stallBudgetMs });
  const xmlBefore = inventory.xmlReads;
  await inventory.sync(client, reading.readings.map((r) => r.domain));

  const nowSeconds = clock.nowMicros() / 1e6;
  const instances: InstanceResult[] = [];
  for (const r of reading.readings) {
    const instance = inventory.get(r.domain.uuid);
    if (!instance) continue; // not a Nova instance: reported once by the inventory
    const inspection = inspectMemory({
      state: r.state,
      balloon: instance.balloon,
      stats: r.stats,
      error: r.error,
      fromBulk: r.fromBulk,
      unanswered: r.unanswered,
      nowSeconds,
      stalenessFactor: deps.stalenessFactor,
    });
    instances.push({ instance, state: r.state, inspection, monotonicTime: clock.monotonicSeconds() });
  }

  const runs = deps.meters.map((meter): MeterRun => {
    // Ceilometer stamps every sample of one pollster run with one timestamp taken before the run.
    const timestamp = pyIsoformat(clock.nowMicros());
    const run: MeterRun = { meter, samples: [], missing: [] };
    for (const ir of instances) {
      const v = meter.volume(ir.inspection);
      if (isMissing(v)) {
        run.missing.push({ instance: ir.instance, missing: v });
        continue;
      }
      run.samples.push({
        name: meter.name,
        type: meter.type,
        unit: deps.unit,
        volume: v,
        instance: ir.instance,
        state: ir.state,
        timestamp,
        id: ids.sampleId(),
        monotonicTime: ir.monotonicTime,
      });
    }
    return run;
  });

  return {
    instances,
    skipped: inventory.skipped,
    runs,
    bulk: reading.bulk,
    libvirtCalls: reading.calls + (inventory.xmlReads - xmlBefore),
    ...(reading.stall ? { stall: reading.stall } : {}),
  };
}
