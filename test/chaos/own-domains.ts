// The chaos scenarios' own guests: domains made from test/lab/mkdomain.sh's XML with the name and
// uuid changed (uuid prefix cafe0000-, name chaos-%08x), so that a fault never touches the lab's
// c0ffee00- guests. Removed by removeOwnDomains() whatever state they are in.

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { virsh } from '../support/lab.js';

const run = promisify(execFile);
const MKDOMAIN = fileURLToPath(new URL('../lab/mkdomain.sh', import.meta.url));
export const OWN_UUID_PREFIX = 'cafe0000-';

export interface OwnDomain {
  name: string;
  uuid: string;
}

export const ownDomain = (i: number): OwnDomain => ({
  name: `chaos-${i.toString(16).padStart(8, '0')}`,
  uuid: `cafe0000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
});

let workDir = '';

/** Defines own domain `i` (mkdomain.sh's `stats` profile, 128 MiB TCG) and starts it unless `start` is false. */
export async function createOwnDomain(i: number, start = true): Promise<OwnDomain> {
  workDir ||= mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-chaos-domains-'));
  const labIdx = 200 + i; // any index: only its name and uuid are replaced
  const { stdout } = await run('bash', [MKDOMAIN, String(labIdx), 'stats'], { env: { ...process.env, RUN_DIR: workDir } });
  const labName = `instance-${labIdx.toString(16).padStart(8, '0')}`;
  const labUuid = `c0ffee00-0000-4000-8000-${labIdx.toString(16).padStart(12, '0')}`;
  const d = ownDomain(i);
  const xml = stdout.split(labName).join(d.name).split(labUuid).join(d.uuid).replace(/lab-vm-\d+/, `chaos-vm-${i}`);
  if (!xml.includes(d.uuid) || xml.includes('c0ffee00-')) throw new Error(`mkdomain.sh output for own domain ${i}: could not change its uuid`);
  const file = path.join(workDir, `${d.name}.xml`);
  writeFileSync(file, xml);
  await virsh(['define', file]);
  if (start) await virsh(['start', d.name]);
  return d;
}

/** The pid of an own domain's QEMU, from libvirt's pid file. */
export function qemuPid(d: OwnDomain): number {
  const pid = Number(readFileSync(`/run/libvirt/qemu/${d.name}.pid`, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`/run/libvirt/qemu/${d.name}.pid holds no pid`);
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  if (!cmdline.includes(d.name)) throw new Error(`pid ${pid} is not ${d.name}'s QEMU`);
  return pid;
}

/** Destroys and undefines every domain whose uuid starts with cafe0000- (never anything else). */
export async function removeOwnDomains(): Promise<string[]> {
  const out = await virsh(['list', '--all', '--uuid']);
  const removed: string[] = [];
  for (const uuid of out.split('\n').map((l) => l.trim()).filter((u) => u.startsWith(OWN_UUID_PREFIX))) {
    // a SIGSTOPped QEMU would make destroy wait: let it run again first
    try {
      const name = (await virsh(['domname', uuid])).trim();
      const pid = Number(readFileSync(`/run/libvirt/qemu/${name}.pid`, 'utf8').trim());
      if (pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(name)) process.kill(pid, 'SIGCONT');
    } catch {
      // not running
    }
    await virsh(['destroy', uuid]).catch(() => undefined);
    await virsh(['undefine', uuid]).catch(() => undefined);
    removed.push(uuid);
  }
  if (workDir) {
    rmSync(workDir, { recursive: true, force: true });
    workDir = '';
  }
  return removed;
}
