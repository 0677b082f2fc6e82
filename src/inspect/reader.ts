// Reads every domain's state and memory statistics for one cycle: one CONNECT_GET_ALL_DOMAIN_STATS
// (STATE | BALLOON, NOWAIT) for all domains. Drivers without the balloon group (libvirt's test
// driver) get DOMAIN_MEMORY_STATS for every active domain instead, all in flight at once on the one
// connection. A per-domain failure stays with that domain.

import type { LibvirtClient } from '../libvirt/client.js';
import { LibvirtError } from '../libvirt/errors.js';
import { DomainState, GetAllStatsFlags, StatsGroup, type DomainRef, type MemoryStats } from '../libvirt/protocol.js';
import { balloonToMemoryStats } from './memory.js';

export interface DomainReading {
  domain: DomainRef;
  state: number;
  /** null when the domain is not active or the per-domain call failed */
  stats: MemoryStats | null;
  fromBulk: boolean;
  error?: Error;
}

export interface CycleReading {
  readings: DomainReading[];
  /** false when the driver has no balloon group and per-domain calls were made */
  bulk: boolean;
  /** libvirt calls made this cycle */
  calls: number;
}

const isActive = (state: number): boolean => state === DomainState.RUNNING || state === DomainState.PAUSED || state === DomainState.BLOCKED;

export async function readMemoryStats(client: LibvirtClient): Promise<CycleReading> {
  const records = await client.getAllDomainStats({ stats: StatsGroup.STATE | StatsGroup.BALLOON, flags: GetAllStatsFlags.NOWAIT });
  // The QEMU driver sends balloon.current and balloon.maximum for every domain, even shut off; a
  // reply without any balloon field comes from a driver that lacks the group.
  const bulk = records.length === 0 || records.some((r) => r.balloon !== undefined);
  if (bulk) {
    return {
      bulk: true,
      calls: 1,
      readings: records.map((r) => ({
        domain: r.domain,
        state: r.state?.state ?? DomainState.NOSTATE,
        stats: r.balloon ? balloonToMemoryStats(r.balloon) : {},
        fromBulk: true,
      })),
    };
  }
  let calls = 1;
  const readings = await Promise.all(records.map(async (r): Promise<DomainReading | null> => {
    const state = r.state?.state ?? DomainState.NOSTATE;
    if (!isActive(state)) return { domain: r.domain, state, stats: null, fromBulk: false };
    calls++;
    try {
      return { domain: r.domain, state, stats: await client.memoryStats(r.domain), fromBulk: false };
    } catch (err) {
      // The domain went away between the two calls: it is simply not there any more.
      if (err instanceof LibvirtError && err.isNoDomain) return null;
      return { domain: r.domain, state, stats: null, fromBulk: false, error: err as Error };
    }
  }));
  return { bulk: false, calls, readings: readings.filter((r): r is DomainReading => r !== null) };
}
