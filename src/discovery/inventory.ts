// The instance inventory: libvirt domains with Nova metadata, cached by uuid. A domain's XML is read
// once when it first shows up, and again only when an event says it changed (lifecycle, metadata
// change), after a reconnect (events were lost meanwhile) or when `resource_update_interval` says a
// full resync is due. A domain that is not a Nova instance, or whose metadata does not parse, is
// skipped and reported once with its reason, not once a cycle.

import { EventEmitter } from 'node:events';

import type { LibvirtClient } from '../libvirt/client.js';
import { LibvirtError } from '../libvirt/errors.js';
import type { DomainRef } from '../libvirt/protocol.js';
import type { Supervisor } from '../libvirt/supervisor.js';
import { parseDomainXml, type DomainFacts } from './domain-xml.js';
import type { FlavorIdResolver } from './flavor-lookup.js';
import type { Instance } from './instance.js';
import type { NovaInstanceMetadata } from './nova-metadata.js';

/**
 * A string of its own. The XML parser's values are V8 slices of the whole domain XML, so keeping one
 * (a name, an id) keeps that XML alive, a few KB per instance for as long as the instance lives: 6 MB
 * at 5000 domains. Concatenating makes a new flat string; the slice of it holds only that.
 */
const own = <T extends string | null>(s: T): T => (s === null || s.length < 13 ? s : (` ${s}`.slice(1) as T));

/** An instance from its domain XML facts and Nova metadata; flavorId already resolved. */
export function toInstance(uuid: string, facts: DomainFacts, m: NovaInstanceMetadata, flavorId: string): Instance {
  const f = m.flavor;
  return {
    uuid: own(uuid),
    domainName: own(facts.name),
    displayName: own(m.displayName),
    flavor: { id: own(flavorId), name: own(f.name), vcpus: f.vcpus, ram: f.ram, disk: f.disk, ephemeral: f.ephemeral, swap: f.swap },
    userId: own(m.userId),
    userName: own(m.userName),
    projectId: own(m.projectId),
    projectName: own(m.projectName),
    imageId: own(m.imageId),
    osType: own(facts.osType),
    arch: own(facts.arch),
    balloon: facts.balloon,
  };
}

export interface SkippedDomain {
  uuid: string;
  name: string;
  reason: string;
}

interface Entry {
  name: string;
  instance: Instance | null;
  skipReason: string | null;
  dirty: boolean;
}

export interface InventoryOptions {
  /** resolves flavor ids where Nova's metadata has no <flavor id>; without it the flavor name is used (Zed's fallback) */
  flavorIds?: FlavorIdResolver;
  /** full re-read of every domain's XML every this many ms (0 = only on events and reconnects) */
  resyncIntervalMs?: number;
  now?: () => number;
}

export interface InventoryEvents {
  /** a domain was skipped, or its reason changed; once per change */
  skipped: [SkippedDomain];
  added: [Instance];
  changed: [Instance];
  removed: [uuid: string, name: string];
}

export class Inventory extends EventEmitter<InventoryEvents> {
  private readonly entries = new Map<string, Entry>();
  private lastFullSync = 0;
  /** DOMAIN_GET_XML_DESC calls made so far (tests and metrics: an unchanged domain costs none) */
  xmlReads = 0;

  constructor(private readonly opts: InventoryOptions = {}) {
    super();
  }

  /** Follows a Supervisor's events: changed domains are re-read, a reconnect re-reads all. */
  attach(sup: Supervisor): this {
    sup.on('lifecycle', (ev) => this.markDirty(ev.domain.uuid));
    sup.on('metadataChange', (ev) => this.markDirty(ev.domain.uuid));
    sup.on('connected', () => this.markAllDirty());
    return this;
  }

  markDirty(uuid: string): void {
    const e = this.entries.get(uuid);
    if (e) e.dirty = true;
  }

  markAllDirty(): void {
    for (const e of this.entries.values()) e.dirty = true;
  }

  get(uuid: string): Instance | undefined {
    return this.entries.get(uuid)?.instance ?? undefined;
  }

  get instances(): Instance[] {
    return [...this.entries.values()].flatMap((e) => (e.instance ? [e.instance] : []));
  }

  get skipped(): SkippedDomain[] {
    return [...this.entries].flatMap(([uuid, e]) => (e.skipReason ? [{ uuid, name: e.name, reason: e.skipReason }] : []));
  }

  /**
   * Brings the cache in line with the domains libvirt listed this cycle: reads the XML of new and
   * changed ones (all in flight at once), forgets the ones that are gone.
   */
  async sync(client: LibvirtClient, domains: readonly DomainRef[]): Promise<void> {
    const now = (this.opts.now ?? Date.now)();
    const interval = this.opts.resyncIntervalMs ?? 0;
    if (interval > 0 && now - this.lastFullSync >= interval) {
      this.markAllDirty();
      this.lastFullSync = now;
    }
    const seen = new Set<string>();
    const toRead: DomainRef[] = [];
    for (const d of domains) {
      seen.add(d.uuid);
      const e = this.entries.get(d.uuid);
      if (!e || e.dirty) toRead.push(d);
    }
    for (const [uuid, e] of this.entries) {
      if (!seen.has(uuid)) {
        this.entries.delete(uuid);
        if (e.instance) this.emit('removed', uuid, e.name);
      }
    }
    await Promise.all(toRead.map((d) => this.load(client, d)));
  }

  private async load(client: LibvirtClient, d: DomainRef): Promise<void> {
    let xml: string;
    try {
      this.xmlReads++;
      xml = await client.getXmlDesc(d);
    } catch (err) {
      if (err instanceof LibvirtError && err.isNoDomain) {
        this.entries.delete(d.uuid); // undefined between the list and this call
        return;
      }
      // Keep what we knew; try again next cycle.
      const e = this.entries.get(d.uuid);
      if (e) e.dirty = true;
      else this.setSkipped(d, `cannot read its XML: ${(err as Error).message}`, true);
      return;
    }
    const facts = parseDomainXml(xml);
    if (!facts.ok) return this.setSkipped(d, facts.reason);
    const nova = facts.value.nova;
    if (nova === null) {
      const other = /xmlns(?::\w+)?=["'](http:\/\/openstack\.org\/xmlns\/libvirt\/nova\/[^"']*)["']/.exec(xml);
      return this.setSkipped(d, other
        ? `Nova metadata in namespace ${other[1]}, which ceilopoll does not know (it reads nova/1.1 and nova/1.0)`
        : 'no Nova metadata (not an OpenStack instance)');
    }
    if (!nova.ok) return this.setSkipped(d, nova.reason);
    const m = nova.value;
    const flavorId = m.flavor.id ?? (this.opts.flavorIds ? (await this.opts.flavorIds.resolve(m.flavor.name)).id : m.flavor.name);
    const instance = toInstance(d.uuid, facts.value, m, flavorId);
    const before = this.entries.get(d.uuid);
    this.entries.set(d.uuid, { name: d.name, instance, skipReason: null, dirty: false });
    if (!before?.instance) this.emit('added', instance);
    else if (JSON.stringify(before.instance) !== JSON.stringify(instance)) this.emit('changed', instance);
  }

  private setSkipped(d: DomainRef, reason: string, retry = false): void {
    const before = this.entries.get(d.uuid);
    this.entries.set(d.uuid, { name: d.name, instance: null, skipReason: reason, dirty: retry });
    if (before?.skipReason !== reason) this.emit('skipped', { uuid: d.uuid, name: d.name, reason });
    if (before?.instance) this.emit('removed', d.uuid, d.name);
  }
}
