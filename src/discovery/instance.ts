// An instance as discovery hands it on: what Nova wrote into the domain's metadata plus the few
// facts Ceilometer takes from the domain XML (ceilometer-wire.md §2.2). Everything a sample's
// resource_metadata needs, nothing per cycle (state and stats come with each poll).

import type { BalloonDevice } from '../inspect/memory.js';
import type { NovaFlavor } from './nova-metadata.js';

/** The flavor as samples carry it: Nova's metadata, with the id resolved. */
export type Flavor = Omit<NovaFlavor, 'id' | 'extraSpecs'> & {
  /** `<flavor id>` where Nova wrote one, else what the Nova API said, else the flavor name (Zed's fallback) */
  id: string;
};

export interface Instance {
  /** the libvirt domain uuid = the Nova instance uuid = the sample's resource_id */
  uuid: string;
  /** the libvirt domain name, e.g. instance-00000001 */
  domainName: string;
  /** the Nova display name (`<nova:name>`) */
  displayName: string;
  flavor: Flavor;
  userId: string;
  userName: string | null;
  projectId: string;
  projectName: string | null;
  /** `<root type="image" uuid>`; null for boot-from-volume */
  imageId: string | null;
  osType: string;
  arch: string;
  balloon: BalloonDevice;
}

/** Nova's vm_state for a libvirt power state (Ceilometer's LIBVIRT_POWER_STATE). */
export function vmState(state: number): string {
  return ['pending', 'running', 'running', 'paused', 'shutdown', 'shutdown', 'crashed', 'suspended'][state] ?? 'pending';
}

/** Nova's status for a libvirt power state (Ceilometer's LIBVIRT_STATUS). */
export function vmStatus(state: number): string {
  return ['building', 'active', 'active', 'paused', 'stopped', 'stopped', 'error', 'suspended'][state] ?? 'building';
}
