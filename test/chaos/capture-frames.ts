// Records what the lab's real libvirtd (9.0.0) sends to a read-only client, for the fuzzers' seeds:
// a UNIX-socket proxy in front of libvirt-sock-ro keeps every byte the daemon writes, while a
// LibvirtClient makes the calls ceilopoll makes (handshake, hostname, version, list, the bulk
// stats, XML, metadata, state, memory stats, a lookup that fails). Only reads; run by hand:
//   npx tsx test/chaos/capture-frames.ts [OUT]   (default test/chaos/fixtures/lab-libvirtd-9.0.0.replies.bin)

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { LibvirtClient } from '../../src/libvirt/client.js';
import { GetAllStatsFlags, StatsGroup } from '../../src/libvirt/protocol.js';

const REAL = '/run/libvirt/libvirt-sock-ro';
const out = process.argv[2] ?? fileURLToPath(new URL('./fixtures/lab-libvirtd-9.0.0.replies.bin', import.meta.url));

const dir = mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-capture-'));
const sock = path.join(dir, 'sock');
const received: Buffer[] = [];
const server = net.createServer((client) => {
  const upstream = net.connect(REAL);
  client.pipe(upstream);
  upstream.on('data', (d: Buffer) => {
    received.push(Buffer.from(d));
    client.write(d);
  });
  upstream.on('close', () => client.destroy());
  client.on('close', () => upstream.destroy());
});
await new Promise<void>((r) => server.listen(sock, r));
try {
  const c = await LibvirtClient.connect({ uri: `qemu+unix:///system?socket=${sock}&mode=direct`, readOnly: true });
  await c.hostname();
  await c.libVersion();
  const doms = await c.listAllDomains();
  const lab = doms.filter((d) => d.uuid.startsWith('c0ffee00-'));
  await c.getAllDomainStats({ stats: StatsGroup.STATE | StatsGroup.BALLOON, flags: GetAllStatsFlags.NOWAIT });
  for (const d of lab.slice(0, 2)) await c.getXmlDesc(d);
  await c.getMetadata(lab[0]!, 'http://openstack.org/xmlns/libvirt/nova/1.1').catch(() => undefined);
  await c.getState(lab[0]!);
  await c.memoryStats(lab[0]!).catch(() => undefined);
  await c.lookupByUuid('cafe0000-0000-4000-8000-0000000000ff').catch(() => undefined); // an error reply
  await c.close();
} finally {
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
const bytes = Buffer.concat(received);
writeFileSync(out, bytes);
process.stdout.write(`${bytes.length} bytes from ${REAL} written to ${out}\n`);
