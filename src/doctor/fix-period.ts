// `ceilopoll doctor --fix-period N`: gives every running domain whose virtio balloon has no stats
// period one, live (DOMAIN_SET_MEMORY_STATS_PERIOD with VIR_DOMAIN_AFFECT_LIVE). Live only on purpose:
// the persistent definition belongs to Nova, which writes it anew on hard reboot, resize, migration
// and rebuild; the lasting fix is nova.conf. Needs a read-write connection.

import { parseDomainXml } from '../discovery/domain-xml.js';
import type { LibvirtClient } from '../libvirt/client.js';
import { AffectFlags, DomainState, StatsGroup, type DomainRef } from '../libvirt/protocol.js';
import { renderTable } from '../cli/table.js';
import { stateWord } from './diagnose.js';

export const MAX_FIX_PERIOD = 86_400;

export interface FixResult {
  domain: string;
  /** null when a requested domain does not exist */
  uuid: string | null;
  /** set: the period is now N (live); skipped: nothing to do, detail says why; failed: libvirt said no */
  outcome: 'set' | 'skipped' | 'failed';
  detail: string;
}

export interface FixOptions {
  /** only these domains (names or uuids); default every domain */
  domains?: string[];
}

/** Throws a RangeError unless `period` is a whole number of seconds from 1 to 86400. */
export function checkPeriod(period: number): void {
  if (!Number.isInteger(period) || period < 1 || period > MAX_FIX_PERIOD) {
    throw new RangeError(`the stats period must be a whole number of seconds from 1 to ${MAX_FIX_PERIOD}, not ${String(period)}`);
  }
}

/** What to do with one domain, or why nothing. */
async function fixOne(client: LibvirtClient, dom: DomainRef, state: number, period: number): Promise<FixResult> {
  const result = (outcome: FixResult['outcome'], detail: string): FixResult => ({ domain: dom.name, uuid: dom.uuid, outcome, detail });
  if (state !== DomainState.RUNNING) return result('skipped', `not running (${stateWord(state)})`);
  let xml: string;
  try {
    xml = await client.getXmlDesc(dom); // the live definition: what QEMU runs with now
  } catch (err) {
    return result('failed', `cannot read its XML: ${(err as Error).message}`);
  }
  const facts = parseDomainXml(xml);
  if (!facts.ok) return result('failed', facts.reason);
  const { model, statsPeriod } = facts.value.balloon;
  if (model === null) return result('skipped', 'no balloon device (no <memballoon>)');
  if (model === 'none') return result('skipped', "no balloon device (<memballoon model='none'/>)");
  // virtio, virtio-transitional, virtio-non-transitional: the models QEMU gives statistics for
  if (!model.startsWith('virtio')) return result('skipped', `balloon model '${model}' has no statistics`);
  if (statsPeriod > 0) return result('skipped', `already has a period (${statsPeriod}s)`);
  try {
    await client.setMemoryStatsPeriod(dom, period, AffectFlags.LIVE);
  } catch (err) {
    return result('failed', (err as Error).message);
  }
  return result('set', `stats period set to ${period}s (live)`);
}

/**
 * Sets the live stats period of every running domain (or of `opts.domains`) whose virtio balloon has
 * none. One domain's failure does not stop the others. Results are sorted by domain name.
 */
export async function fixPeriod(client: LibvirtClient, period: number, opts: FixOptions = {}): Promise<FixResult[]> {
  checkPeriod(period);
  if (client.readOnly) {
    throw new Error(`setting the stats period needs a read-write libvirt connection to ${client.uri} (LibvirtClient.connect({ uri, readOnly: false }): root, or a user allowed on libvirt-sock)`);
  }
  // The STATE group needs no QEMU query: one call for every domain and its state.
  const records = await client.getAllDomainStats({ stats: StatsGroup.STATE, flags: 0 });
  const wanted = opts.domains;
  const chosen = wanted === undefined ? records : records.filter((r) => wanted.includes(r.domain.name) || wanted.includes(r.domain.uuid));
  const results: FixResult[] = [];
  for (const r of chosen) results.push(await fixOne(client, r.domain, r.state?.state ?? DomainState.NOSTATE, period));
  for (const w of wanted ?? []) {
    if (!records.some((r) => r.domain.name === w || r.domain.uuid === w)) results.push({ domain: w, uuid: null, outcome: 'failed', detail: 'no such domain' });
  }
  return results.sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
}

export function formatFixResults(results: readonly FixResult[], period: number): string {
  const count = (o: FixResult['outcome']): number => results.filter((r) => r.outcome === o).length;
  return [
    renderTable(['DOMAIN', 'RESULT', 'DETAIL'], results.map((r) => [r.domain, r.outcome, r.detail])),
    '',
    `${count('set')} set, ${count('skipped')} skipped, ${count('failed')} failed.`,
    'The change is live only: it lasts until Nova redefines the domain (hard reboot, resize, migration, rebuild) or the domain is restarted.',
    `For a permanent fix set nova.conf [libvirt] mem_stats_period_seconds = ${period} on this compute node and restart nova-compute; an instance gets it when Nova next writes its XML (a hard reboot does).`,
  ].join('\n');
}
