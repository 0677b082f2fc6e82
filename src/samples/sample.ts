// Samples in Ceilometer's wire form: the dict `meter_message_from_counter` builds, keys in its
// insertion order, resource_metadata laid out as `_get_metadata_from_object` does for a
// libvirt_metadata instance, signed with `compute_signature` (ceilometer-wire.md §2.3, §3.2, §5).

import { createHash } from 'node:crypto';

import { vmState, vmStatus, type Instance } from '../discovery/instance.js';
import { pyFloat, type PyDict } from './pyjson.js';
import { computeSignature } from './signature.js';
import type { MemoryUnit, SampleType } from './meters.js';

export interface SampleOptions {
  /** [DEFAULT] host: instance_host, and the salt of the hashed `host` */
  host: string;
  /** [DEFAULT] sample_source */
  source: string;
  /** [publisher] telemetry_secret; '' signs nothing */
  secret: string;
  unit: MemoryUnit;
  /** add user_name / project_name (null) as Ceilometer 2023.1+ does; notification agents from 2023.2 need them */
  nameKeys: boolean;
}

export const DEFAULT_SAMPLE_OPTIONS: Omit<SampleOptions, 'host'> = {
  source: 'openstack',
  secret: 'change this for valid signing',
  unit: 'MB',
  nameKeys: false,
};

/** One sample before it is put in wire form. */
export interface Sample {
  name: string;
  type: SampleType;
  unit: string;
  /** MB as a float: serialised as Python's float repr (1024.0, not 1024) */
  volume: number;
  instance: Instance;
  /** libvirt power state at polling time */
  state: number;
  /** Python isoformat, shared by every sample of one pollster run */
  timestamp: string;
  /** uuid1 */
  id: string;
  monotonicTime: number | null;
}

/** Nova's hostId: sha224(project_id + host), 56 lower-case hex digits. */
export function hostId(projectId: string, host: string): string {
  return createHash('sha224').update(projectId + host, 'utf8').digest('hex');
}

export function resourceMetadata(inst: Instance, state: number, host: string): PyDict {
  const f = inst.flavor;
  const image = inst.imageId === null ? null : { id: inst.imageId };
  return {
    display_name: inst.displayName,
    name: inst.domainName,
    instance_id: inst.uuid,
    instance_type: f.name,
    host: hostId(inst.projectId, host),
    instance_host: host,
    flavor: { id: f.id, name: f.name, vcpus: f.vcpus, ram: f.ram, disk: f.disk, ephemeral: f.ephemeral, swap: f.swap },
    status: vmStatus(state),
    state: vmState(state),
    task_state: '',
    image,
    image_ref: inst.imageId,
    image_ref_url: null,
    architecture: inst.arch,
    os_type: inst.osType,
    vcpus: f.vcpus,
    memory_mb: f.ram,
    disk_gb: f.disk,
    ephemeral_gb: f.ephemeral,
    root_gb: f.disk - f.ephemeral,
  };
}

/** The signed sample dict, in Ceilometer's key order. */
export function toWireSample(s: Sample, opts: SampleOptions): PyDict {
  const inst = s.instance;
  const msg: Record<string, PyDict[string]> = {
    source: opts.source,
    counter_name: s.name,
    counter_type: s.type,
    counter_unit: s.unit,
    counter_volume: pyFloat(s.volume),
    user_id: inst.userId,
  };
  // 2023.1+: None unless Keystone name discovery is on (ceilometer-wire.md §3.2)
  if (opts.nameKeys) msg.user_name = null;
  msg.project_id = inst.projectId;
  if (opts.nameKeys) msg.project_name = null;
  msg.resource_id = inst.uuid;
  msg.timestamp = s.timestamp;
  msg.resource_metadata = resourceMetadata(inst, s.state, opts.host);
  msg.message_id = s.id;
  msg.monotonic_time = s.monotonicTime === null ? null : pyFloat(s.monotonicTime);
  msg.message_signature = opts.secret === '' ? '' : computeSignature(msg, opts.secret);
  return msg;
}
