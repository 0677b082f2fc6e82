// The memory meters, declared: name, type, and which inspected value is the volume. A new meter is
// one line here. Units: Ceilometer says "MB" up to 2025.2 and "MiB" from 2026.1 on; the value is
// the same KiB / 1024 either way (ceilometer-wire.md §1.1).

import { isMissing, type MemoryInspection, type Missing } from '../inspect/memory.js';

export type SampleType = 'gauge' | 'cumulative' | 'delta';
export type MemoryUnit = 'MB' | 'MiB';

export interface MeterDef {
  name: string;
  type: SampleType;
  /** the Ceilometer release that introduced the meter */
  since: string;
  volume(i: MemoryInspection): number | Missing;
}

export const MEMORY_METERS: readonly MeterDef[] = [
  { name: 'memory.usage', type: 'gauge', since: 'Havana', volume: (i) => (isMissing(i.usage) ? i.usage : i.usage.value) },
  { name: 'memory.resident', type: 'gauge', since: 'Liberty', volume: (i) => i.resident },
  { name: 'memory.swap.in', type: 'cumulative', since: 'Newton', volume: (i) => i.swapIn },
  { name: 'memory.swap.out', type: 'cumulative', since: 'Newton', volume: (i) => i.swapOut },
  { name: 'memory', type: 'gauge', since: '2025.2', volume: (i) => i.actual },
  { name: 'memory.available', type: 'gauge', since: '2025.2', volume: (i) => i.available },
];

export function meterByName(name: string): MeterDef | undefined {
  return MEMORY_METERS.find((m) => m.name === name);
}
