// From the libvirt inputs recorded while the real Ceilometer 19 polled the lab (the domain XMLs and a
// per-second `virsh dommemstat` timeline), with the captured ids and timestamps, ceilopoll's samples
// must come out byte for byte as Ceilometer's did: parsing, inspection, meters, resource_metadata,
// flavor id and signature, all at once. The flavor-id capture had Nova answer id "1" for m1.tiny;
// here the same answer comes from the Keystone/Nova stand-in through the real resolver.

import { readFileSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseDomainXml } from '../../src/discovery/domain-xml.js';
import { FlavorIdResolver, serviceCredentialsSchema } from '../../src/discovery/flavor-lookup.js';
import { toInstance } from '../../src/discovery/inventory.js';
import type { Instance } from '../../src/discovery/instance.js';
import { inspectMemory, type MemoryInspection } from '../../src/inspect/memory.js';
import { DomainState, type MemoryStats } from '../../src/libvirt/protocol.js';
import { parsePyIsoformat } from '../../src/samples/clock.js';
import { meterByName } from '../../src/samples/meters.js';
import type { PyFloat} from '../../src/samples/pyjson.js';
import { pyJsonDumps, type PyDict, type PyValue } from '../../src/samples/pyjson.js';
import { DEFAULT_SAMPLE_OPTIONS, toWireSample } from '../../src/samples/sample.js';
import { FakeOpenStack, DEFAULT_USER } from '../support/fake-openstack.js';
import { GOLDEN, asDict, bodies, parsePythonJson } from '../support/golden.js';

interface TimelineRow {
  at: number;
  uuid: string;
  stats: MemoryStats;
}

function timeline(capture: string): TimelineRow[] {
  return readFileSync(`${GOLDEN}${capture}/libvirt/dommemstat-timeline.log`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [ts = '', , uuid = '', ...kv] = line.trim().split(/\s+/);
      const stats: Record<string, number> = {};
      for (const pair of kv) {
        const [k, v] = pair.split('=');
        stats[k!] = Number(v);
      }
      return { at: parsePyIsoformat(ts), uuid, stats };
    });
}

/** The stats virsh saw last before the polling timestamp: what libvirt held when Ceilometer read it. */
function statsAt(rows: TimelineRow[], uuid: string, atMicros: number): MemoryStats {
  const before = rows.filter((r) => r.uuid === uuid && r.at <= atMicros);
  const row = before.at(-1);
  if (!row) throw new Error(`no dommemstat for ${uuid} before ${atMicros}`);
  return row.stats;
}

let fake: FakeOpenStack;
let resolver: FlavorIdResolver;
beforeAll(async () => {
  fake = await FakeOpenStack.start({});
  resolver = new FlavorIdResolver({
    credentials: serviceCredentialsSchema.parse({
      auth_url: fake.authUrl, username: DEFAULT_USER.name, password: DEFAULT_USER.password, project_name: 'service',
      user_domain_name: 'Default', project_domain_name: 'Default', region_name: 'RegionOne',
    }),
    timeoutMs: 5000,
  });
});
afterAll(async () => {
  resolver?.close();
  await fake?.close();
});

async function instancesOf(capture: string, useNova: boolean): Promise<Map<string, Instance>> {
  const out = new Map<string, Instance>();
  for (const n of [1, 2, 3]) {
    const facts = parseDomainXml(readFileSync(`${GOLDEN}${capture}/libvirt/instance-0000000${n}.xml`, 'utf8'));
    if (!facts.ok) throw new Error(facts.reason);
    const nova = facts.value.nova;
    if (!nova?.ok) throw new Error(`no Nova metadata in instance-0000000${n}.xml`);
    const flavorId = useNova ? (await resolver.resolve(nova.value.flavor.name)).id : nova.value.flavor.name;
    out.set(facts.value.uuid, toInstance(facts.value.uuid, facts.value, nova.value, flavorId));
  }
  return out;
}

describe.each([
  ['zed-3guests', false],
  ['zed-3guests-flavorid', true],
] as const)('%s', (capture, useNova) => {
  const captured = bodies.filter((b) => b.name.startsWith(`${capture}/`));

  it('every captured sample is reproduced byte for byte', async () => {
    const instances = await instancesOf(capture, useNova);
    const rows = timeline(capture);
    let compared = 0;
    for (const body of captured) {
      const inner = asDict(parsePythonJson(asDict(parsePythonJson(body.raw), 'envelope')['oslo.message'] as string), 'message');
      const samples = (asDict(inner.payload as PyValue, 'payload').samples as PyValue[]).map((s) => asDict(s, 'sample'));
      for (const theirs of samples) {
        const inst = instances.get(theirs.resource_id as string)!;
        const at = parsePyIsoformat(theirs.timestamp as string);
        const inspection: MemoryInspection = inspectMemory({
          state: DomainState.RUNNING, balloon: inst.balloon, stats: statsAt(rows, inst.uuid, at), fromBulk: false, nowSeconds: at / 1e6,
        });
        const meter = meterByName(theirs.counter_name as string)!;
        const volume = meter.volume(inspection);
        expect(typeof volume, `${body.name} ${inst.domainName} ${meter.name}`).toBe('number');
        const ours: PyDict = toWireSample({
          name: meter.name, type: meter.type, unit: 'MB', volume: volume as number, instance: inst, state: DomainState.RUNNING,
          timestamp: theirs.timestamp as string, id: theirs.message_id as string, monotonicTime: (theirs.monotonic_time as PyFloat).value,
        }, { ...DEFAULT_SAMPLE_OPTIONS, host: 'compute-1' });
        expect(pyJsonDumps(ours), `${body.name} ${inst.domainName} ${meter.name}`).toBe(pyJsonDumps(theirs));
        compared++;
      }
    }
    expect(compared).toBe(captured.length * 3);
  });

  it(useNova ? 'flavor.id is Nova\'s "1" for m1.tiny' : 'flavor.id falls back to the flavor name', async () => {
    const [inst] = (await instancesOf(capture, useNova)).values();
    expect(inst!.flavor.id).toBe(useNova ? '1' : 'm1.tiny');
  });
});
