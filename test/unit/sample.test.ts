// The sample dict against ceilometer-wire.md §5: the same inputs must give the same signature, which
// covers every key, value, type (float vs int) and the resource_metadata layout of §2.3.

import { describe, expect, it } from 'vitest';

import { DomainState } from '../../src/libvirt/protocol.js';
import { pyJsonDumps } from '../../src/samples/pyjson.js';
import { hostId, toWireSample } from '../../src/samples/sample.js';
import { verifySignature } from '../../src/samples/signature.js';
import { VECTOR_INSTANCE, VECTOR_OPTIONS, vectorSample } from '../support/sample-vector.js';

const instance = VECTOR_INSTANCE;
const sample = vectorSample(instance);
const opts = VECTOR_OPTIONS;

describe('the sample dict (ceilometer-wire.md §5 vectors)', () => {
  it('Zed 13-key dict: signature 942b4446…', () => {
    const w = toWireSample(sample, opts);
    expect(Object.keys(w)).toEqual(['source', 'counter_name', 'counter_type', 'counter_unit', 'counter_volume', 'user_id', 'project_id',
      'resource_id', 'timestamp', 'resource_metadata', 'message_id', 'monotonic_time', 'message_signature']);
    expect(w.message_signature).toBe('942b44468de96574ccc99ffe4df6b24510f8408ec1129ebab7d1487062f93a91');
    expect(verifySignature(w, opts.secret)).toBe(true);
  });

  it('2023.1+ with user_name and project_name null: signature 443b4ba1…', () => {
    const w = toWireSample(sample, { ...opts, nameKeys: true });
    expect(Object.keys(w).slice(5, 9)).toEqual(['user_id', 'user_name', 'project_id', 'project_name']);
    expect(w.message_signature).toBe('443b4ba1117a247140a6ec14ae8b93a5122a5821e15dd74bbb962e5ba7382942');
  });

  it('lays out resource_metadata as §2.3 does, with the hashed host', () => {
    const md = pyJsonDumps(toWireSample(sample, opts).resource_metadata!);
    expect(md).toBe('{"display_name": "test.dom.com", "name": "instance-00000001", "instance_id": "a75c2fa5-6c03-45a8-bbf7-b993cfcdec27", '
      + '"instance_type": "m1.tiny", "host": "63f527eaf5180fb63d1b73fe039a92508a05b475b31397b91ed3c574", "instance_host": "compute-1", '
      + '"flavor": {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0, "swap": 0}, "status": "active", '
      + '"state": "running", "task_state": "", "image": {"id": "bdaf114a-35e9-4163-accd-226d5944bf11"}, '
      + '"image_ref": "bdaf114a-35e9-4163-accd-226d5944bf11", "image_ref_url": null, "architecture": "x86_64", "os_type": "hvm", '
      + '"vcpus": 1, "memory_mb": 512, "disk_gb": 1, "ephemeral_gb": 0, "root_gb": 1}');
    expect(hostId(instance.projectId, 'compute-1')).toBe('63f527eaf5180fb63d1b73fe039a92508a05b475b31397b91ed3c574');
  });

  it('writes volumes as Python floats: 0.0 and 1024.0, never 0 or 1024', () => {
    expect(pyJsonDumps(toWireSample({ ...sample, volume: 0 }, opts))).toContain('"counter_volume": 0.0,');
    expect(pyJsonDumps(toWireSample({ ...sample, volume: 1024 }, opts))).toContain('"counter_volume": 1024.0,');
  });

  it('boot-from-volume: image, image_ref and image_ref_url are null', () => {
    const md = toWireSample({ ...sample, instance: { ...instance, imageId: null } }, opts).resource_metadata as Record<string, unknown>;
    expect([md.image, md.image_ref, md.image_ref_url]).toEqual([null, null, null]);
  });

  it('power states map to Nova status and vm_state words', () => {
    const md = (state: number): unknown[] => {
      const m = toWireSample({ ...sample, state }, opts).resource_metadata as Record<string, unknown>;
      return [m.status, m.state];
    };
    expect(md(DomainState.PAUSED)).toEqual(['paused', 'paused']);
    expect(md(DomainState.SHUTOFF)).toEqual(['stopped', 'shutdown']);
    expect(md(DomainState.CRASHED)).toEqual(['error', 'crashed']);
  });

  it('an empty secret gives an empty signature', () => {
    expect(toWireSample(sample, { ...opts, secret: '' }).message_signature).toBe('');
  });
});
