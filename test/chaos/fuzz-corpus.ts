// The fuzzers' seeds: real inputs. Frames recorded from the lab's libvirtd 9.0.0 (capture-frames.ts),
// and frames built with the protocol's own encoders in the shapes that libvirtd sends (test/lab/README.md, "Stats keys per profile"): the handshake
// replies, a CONNECT_GET_ALL_DOMAIN_STATS reply for the 8 lab guests, the two events, a memory-stats
// reply, an error reply, keepalives. XML seeds are the captured files in test/fixtures.

import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { extractNovaFromDomainXml } from '../../src/discovery/domain-xml.js';
import { encodeRemoteError } from '../support/fake-libvirtd.js';
import { decode, LifecycleEvent, Proc, writeDomain, type DomainRef } from '../../src/libvirt/protocol.js';
import { FrameSplitter, KEEPALIVE_PROGRAM, MessageStatus, MessageType, REMOTE_PROGRAM, encodePacket } from '../../src/libvirt/wire.js';
import { XdrWriter, writeTypedParam, type TypedParam } from '../../src/libvirt/xdr.js';

export interface SeedFrame {
  what: string;
  proc: number;
  /** the payload alone, for the decoders */
  payload: Buffer;
  /** the whole packet, for the splitter */
  packet: Buffer;
}

const dom = (i: number, running = true): DomainRef => ({
  name: `instance-${i.toString(16).padStart(8, '0')}`,
  uuid: `c0ffee00-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
  id: running ? i : -1,
});

const ull = (field: string, v: number): TypedParam => ({ field, value: { type: 'ullong', value: BigInt(v) } });
const int = (field: string, v: number): TypedParam => ({ field, value: { type: 'int', value: v } });

function statsParams(profile: string): TypedParam[] {
  const state = profile === 'paused' ? 3 : profile === 'shutoff' ? 5 : 1;
  const p: TypedParam[] = [int('state.state', state), int('state.reason', profile === 'shutoff' ? 0 : 1)];
  p.push(ull('balloon.current', 131072), ull('balloon.maximum', 131072));
  if (profile === 'shutoff') return p;
  if (profile === 'none') return [...p, ull('balloon.rss', 231000)];
  if (profile === 'noballoon') return [...p, ull('balloon.last-update', 0), ull('balloon.rss', 230000)];
  return [
    ...p,
    ull('balloon.swap_in', 0),
    ull('balloon.swap_out', 0),
    ull('balloon.major_fault', 312),
    ull('balloon.minor_fault', 51234),
    ull('balloon.unused', 44120),
    ull('balloon.available', 110428),
    ull('balloon.usable', 62208),
    ull('balloon.last-update', 1795000000),
    ull('balloon.disk_caches', 9812),
    ull('balloon.hugetlb_pgalloc', 0),
    ull('balloon.hugetlb_pgfail', 0),
    ull('balloon.rss', 235000),
  ];
}

const LAB_PROFILES = ['stats', 'stats', 'stats', 'none', 'nostats', 'noballoon', 'paused', 'shutoff'];

function reply(what: string, proc: number, payload: Buffer, status: number = MessageStatus.OK, serial = 7): SeedFrame {
  return { what, proc, payload, packet: encodePacket({ prog: REMOTE_PROGRAM, vers: 1, proc, type: MessageType.REPLY, serial, status }, payload) };
}

function event(what: string, proc: number, payload: Buffer): SeedFrame {
  return { what, proc, payload, packet: encodePacket({ prog: REMOTE_PROGRAM, vers: 1, proc, type: MessageType.MESSAGE, serial: 1, status: 0 }, payload) };
}

/**
 * What the lab's libvirtd 9.0.0 really sent to a read-only client (capture-frames.ts): the handshake,
 * hostname, version, the domain list, the bulk STATE|BALLOON stats of the 8 lab guests, two domain
 * XMLs, a metadata error, the state, memory stats and a no-domain error, as one byte stream.
 */
export function recordedFrames(): SeedFrame[] {
  const stream = readFileSync(fileURLToPath(new URL('./fixtures/lab-libvirtd-9.0.0.replies.bin', import.meta.url)));
  return new FrameSplitter().push(stream).map((p) => ({
    what: `recorded ${p.header.status === MessageStatus.ERROR ? 'error reply' : 'reply'} to procedure ${p.header.proc}`,
    proc: p.header.proc,
    payload: p.payload,
    packet: encodePacket(p.header, p.payload),
  }));
}

/** The recorded frames and the built ones. */
export function seedFrames(): SeedFrame[] {
  return [...recordedFrames(), ...builtFrames()];
}

function builtFrames(): SeedFrame[] {
  const allStats = new XdrWriter();
  allStats.array(LAB_PROFILES.map((p, i) => ({ p, d: dom(i + 1, p !== 'shutoff') })), 16384, (w, { p, d }) => {
    writeDomain(w, d);
    w.array(statsParams(p), 262144, writeTypedParam);
  });
  const list = new XdrWriter().array(LAB_PROFILES.map((_, i) => dom(i + 1)), 16384, writeDomain).uint(LAB_PROFILES.length);
  const memStats = new XdrWriter().array(
    [[0, 0], [1, 0], [2, 312], [3, 51234], [4, 44120], [5, 110428], [6, 131072], [7, 235000], [8, 62208], [9, 1795000000], [10, 9812], [11, 0], [12, 0]],
    1024,
    (w, [tag, val]) => w.int(tag!).uhyper(BigInt(val!)),
  );
  const lifecycle = new XdrWriter().int(0);
  writeDomain(lifecycle, dom(7));
  lifecycle.int(LifecycleEvent.SUSPENDED).int(0);
  const metadata = new XdrWriter().int(1);
  writeDomain(metadata, dom(2));
  metadata.int(2).optional('http://openstack.org/xmlns/libvirt/nova/1.1', (w, v) => w.string(v));
  const one = new XdrWriter();
  writeDomain(one, dom(3));
  return [
    reply('AUTH_LIST reply', Proc.AUTH_LIST, new XdrWriter().array([0], 20, (w, v) => w.int(v)).toBuffer()),
    reply('CONNECT_OPEN reply', Proc.CONNECT_OPEN, Buffer.alloc(0)),
    reply('CONNECT_SUPPORTS_FEATURE reply', Proc.CONNECT_SUPPORTS_FEATURE, new XdrWriter().int(1).toBuffer()),
    reply('CONNECT_GET_HOSTNAME reply', Proc.CONNECT_GET_HOSTNAME, new XdrWriter().string('compute-1').toBuffer()),
    reply('CONNECT_GET_LIB_VERSION reply', Proc.CONNECT_GET_LIB_VERSION, new XdrWriter().uhyper(9000000n).toBuffer()),
    reply('CONNECT_LIST_ALL_DOMAINS reply', Proc.CONNECT_LIST_ALL_DOMAINS, list.toBuffer()),
    reply('CONNECT_GET_ALL_DOMAIN_STATS reply (8 lab guests)', Proc.CONNECT_GET_ALL_DOMAIN_STATS, allStats.toBuffer()),
    reply('DOMAIN_MEMORY_STATS reply', Proc.DOMAIN_MEMORY_STATS, memStats.toBuffer()),
    reply('DOMAIN_GET_STATE reply', Proc.DOMAIN_GET_STATE, new XdrWriter().int(1).int(1).toBuffer()),
    reply('DOMAIN_LOOKUP_BY_UUID reply', Proc.DOMAIN_LOOKUP_BY_UUID, one.toBuffer()),
    reply('DOMAIN_GET_XML_DESC reply', Proc.DOMAIN_GET_XML_DESC, new XdrWriter().string(readFixture('zed-lab-1.domain.xml')).toBuffer()),
    reply('error reply (no domain)', Proc.DOMAIN_GET_XML_DESC, encodeRemoteError({ code: 42, domain: 10, message: "Domain not found: no domain with matching uuid 'c0ffee00-0000-4000-8000-000000000009'", str1: 'x' }), MessageStatus.ERROR),
    event('lifecycle event', Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, lifecycle.toBuffer()),
    event('metadata-change event', Proc.DOMAIN_EVENT_CALLBACK_METADATA_CHANGE, metadata.toBuffer()),
    { what: 'keepalive PING', proc: 1, payload: Buffer.alloc(0), packet: encodePacket({ prog: KEEPALIVE_PROGRAM, vers: 1, proc: 1, type: MessageType.MESSAGE, serial: 0, status: 0 }) },
  ];
}

const XML_DIR = fileURLToPath(new URL('../fixtures/xml/', import.meta.url));
const readFixture = (name: string): string => readFileSync(XML_DIR + name, 'utf8');

/** Every captured XML input: the fixtures, the golden capture's domains, the test-driver nodes' domains. */
export function seedXml(): Array<{ what: string; xml: string }> {
  const out: Array<{ what: string; xml: string }> = [];
  for (const f of readdirSync(XML_DIR).filter((n) => n.endsWith('.xml')).sort()) out.push({ what: `fixtures/xml/${f}`, xml: readFixture(f) });
  for (const g of ['zed-3guests', 'zed-3guests-flavorid']) {
    const d = fileURLToPath(new URL(`../fixtures/golden/${g}/libvirt/`, import.meta.url));
    for (const f of readdirSync(d).filter((n) => n.endsWith('.xml')).sort()) out.push({ what: `golden/${g}/${f}`, xml: readFileSync(d + f, 'utf8') });
  }
  // the lab guests' XML as libvirtd 9.0.0 sent it (DOMAIN_GET_XML_DESC replies of the recording)
  for (const f of recordedFrames().filter((x) => x.proc === Proc.DOMAIN_GET_XML_DESC && !x.what.includes('error'))) {
    out.push({ what: 'recorded DOMAIN_GET_XML_DESC', xml: decode.string(f.payload, 'DOMAIN_GET_XML_DESC reply') });
  }
  for (const node of ['../lab/testdrv/node.xml', '../fixtures/testdrv/bad-metadata-node.xml']) {
    const text = readFileSync(fileURLToPath(new URL(node, import.meta.url)), 'utf8');
    const doms = text.match(/<domain[\s>][\s\S]*?<\/domain>/g) ?? [];
    doms.forEach((x, i) => out.push({ what: `${node.replace('../', '')} domain ${i + 1}`, xml: x }));
  }
  // and each domain's Nova element as a metadata document of its own (what parseNovaMetadata takes)
  for (const { what, xml } of [...out]) {
    const nova = extractNovaFromDomainXml(xml);
    if (nova.ok && nova.value !== null) out.push({ what: `${what}: Nova element`, xml: nova.value });
  }
  return out;
}
