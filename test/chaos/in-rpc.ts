// Faults fired inside an RPC: while the agent's bulk CONNECT_GET_ALL_DOMAIN_STATS of a cycle is out
// and not yet answered (guest-faults.test.ts, libvirtd-kill.test.ts).

import type { Agent } from '../../src/agent/agent.js';
import { LibvirtClient } from '../../src/libvirt/client.js';
import { StatsGroup } from '../../src/libvirt/protocol.js';

/** When a fault was sent inside the cycle's bulk call, and how each call ended, in ms from the bulk call's send. */
export interface InBulk {
  /** the bulk call's round trip */
  bulkMs: number;
  faultSentMs: number;
  faultDoneMs: number;
  /** the fault's call failed: why */
  faultError?: string;
  /** the bulk reply was in before the fault's moment came: nothing was fired (try again, earlier) */
  missed?: true;
  /** the bulk call failed: why (a connection closed under it, say) */
  bulkError?: string;
}

type BulkCall = LibvirtClient['getAllDomainStats'];

/**
 * Fires `fire` once, `delayMs` after the agent's next bulk CONNECT_GET_ALL_DOMAIN_STATS (balloon
 * group, every domain) was handed to its connection: a one-shot wrapper on the agent's client. With
 * `delayMs` 0 the fault's call is queued in the same turn, so it leaves right behind the bulk call
 * and reaches libvirtd while that call is being answered. If the bulk reply is already in when the
 * moment comes, nothing is fired (`missed`). Resolves once both calls have ended.
 */
export function atBulkCall(agent: Agent, delayMs: number, fire: () => Promise<unknown>): Promise<InBulk> {
  const client = agent.supervisor.client;
  if (!client) throw new Error('the agent has no libvirt connection');
  const original = LibvirtClient.prototype.getAllDomainStats;
  const own = client as unknown as { getAllDomainStats?: BulkCall };
  return new Promise((resolve) => {
    own.getAllDomainStats = function (this: LibvirtClient, opts = {}) {
      const reply = original.call(this, opts);
      const isBulk = !opts.doms?.length && ((opts.stats ?? StatsGroup.BALLOON) & StatsGroup.BALLOON) !== 0;
      if (!isBulk) return reply;
      delete own.getAllDomainStats; // one shot: the prototype's method again
      const t0 = performance.now();
      const since = (): number => Math.round((performance.now() - t0) * 10) / 10;
      let bulkMs = -1;
      let bulkError: string | undefined;
      const bulkEnded = reply.then(
        () => void (bulkMs = since()),
        (err: unknown) => {
          bulkMs = since();
          bulkError = err instanceof Error ? err.message : String(err);
        },
      );
      const go = (): void => {
        const faultSentMs = since();
        if (bulkMs >= 0) {
          resolve({ bulkMs, faultSentMs, faultDoneMs: faultSentMs, missed: true });
          return;
        }
        void fire().then(
          () => ({ faultDoneMs: since() }),
          (err: unknown) => ({ faultDoneMs: since(), faultError: err instanceof Error ? err.message : String(err) }),
        ).then(async (f) => {
          await bulkEnded;
          resolve({ bulkMs, faultSentMs, ...f, ...(bulkError === undefined ? {} : { bulkError }) });
        });
      };
      if (delayMs === 0) go();
      else setTimeout(go, delayMs);
      return reply;
    };
  });
}

/**
 * Half the shortest round trip of the agent's next three bulk calls (nothing fired), at least 1 ms:
 * the moment that lands a fault inside a bulk call. Also the three round trips, for the report.
 */
export async function halfBulkRoundTrip(agent: Agent): Promise<{ delayMs: number; roundTrips: number[] }> {
  const roundTrips: number[] = [];
  for (let i = 0; i < 3; i++) roundTrips.push((await atBulkCall(agent, 0, () => Promise.resolve())).bulkMs);
  return { delayMs: Math.max(1, Math.floor(Math.min(...roundTrips) / 2)), roundTrips };
}
