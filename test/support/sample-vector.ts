// The instance, memory.usage sample and options of the ceilometer-wire.md §5 signature vectors, for
// the tests of the sample dict and of the notification encoder.

import type { Instance } from '../../src/discovery/instance.js';
import { DomainState } from '../../src/libvirt/protocol.js';
import type { Sample, SampleOptions } from '../../src/samples/sample.js';

export const VECTOR_INSTANCE: Instance = {
  uuid: 'a75c2fa5-6c03-45a8-bbf7-b993cfcdec27',
  domainName: 'instance-00000001',
  displayName: 'test.dom.com',
  flavor: { id: '1', name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1, ephemeral: 0, swap: 0 },
  userId: 'a1f4684e58bd4c88aefd2ecb0783b497',
  userName: 'admin',
  projectId: 'd99c829753f64057bc0f2030da309943',
  projectName: 'demo',
  imageId: 'bdaf114a-35e9-4163-accd-226d5944bf11',
  osType: 'hvm',
  arch: 'x86_64',
  balloon: { model: 'virtio', statsPeriod: 10 },
};

export const VECTOR_OPTIONS: SampleOptions = { host: 'compute-1', source: 'openstack', secret: 'change this for valid signing', unit: 'MB', nameKeys: false };

/** The §5 sample of `instance`, with `over` replacing fields. */
export function vectorSample(instance: Instance, over: Partial<Sample> = {}): Sample {
  return {
    name: 'memory.usage',
    type: 'gauge',
    unit: 'MB',
    volume: (4046788 - 3421140) / 1024,
    instance,
    state: DomainState.RUNNING,
    timestamp: '2024-05-01T12:00:00.123456',
    id: '6c3a6c52-07d4-11ef-9f0a-525400123456',
    monotonicTime: 8812.345678912,
    ...over,
  };
}
