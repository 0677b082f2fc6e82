// What the integration tests know of the lab `make lab-up` built (test/lab/up.sh): the guests and
// their profiles, the test-driver node, and `virsh` as the oracle. virsh runs through execFile with
// an argument list: no shell ever sees a domain's name or data.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const LAB_STATE = process.env.LAB_STATE ?? '/var/lib/libvirt/lab';
export const TESTDRV_NODE = fileURLToPath(new URL('../lab/testdrv/node.xml', import.meta.url));
/** How operators would write it: the daemon's socket, the test driver loading our node file. */
export const TESTDRV_URI = `test+unix://${TESTDRV_NODE}`;
export const NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1';

export type Profile = 'stats' | 'none' | 'nostats' | 'noballoon' | 'paused' | 'shutoff';

export interface LabGuest {
  name: string;
  uuid: string;
  profile: Profile;
}

/** The lab's guests, from the guests.tsv that up.sh writes. Fails loudly when the lab is not up. */
export function labGuests(): LabGuest[] {
  const file = path.join(LAB_STATE, 'guests.tsv');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`no lab at ${file}: run \`make lab-up\` first (the integration tests need the real libvirtd and guests)`);
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [name = '', uuid = '', profile = ''] = l.split('\t');
      return { name, uuid, profile: profile as Profile };
    });
}

export function guestOf(profile: Profile): LabGuest {
  const g = labGuests().find((x) => x.profile === profile);
  if (!g) throw new Error(`the lab has no "${profile}" guest: run \`make lab-up\` (LAB_GUESTS must include ${profile})`);
  return g;
}

export async function virsh(args: string[], uri = 'qemu:///system'): Promise<string> {
  const { stdout } = await run('virsh', ['-c', uri, ...args], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** `virsh dommemstat DOM`: "name value" lines, virsh's names (actual, last_update, ...). */
export async function virshDommemstat(dom: string, uri?: string): Promise<Record<string, number>> {
  const out = await virsh(['dommemstat', dom], uri);
  const r: Record<string, number> = {};
  for (const line of out.split('\n')) {
    const m = /^(\S+)\s+(\d+)$/.exec(line.trim());
    if (m) r[m[1]!] = Number(m[2]);
  }
  return r;
}

/** `virsh domstats --state --balloon DOM...`: per domain, "key=value" fields. */
export async function virshDomstats(doms: string[], uri?: string, groups = ['--state', '--balloon']): Promise<Map<string, Record<string, string>>> {
  const out = await virsh(['domstats', ...groups, ...doms], uri);
  const res = new Map<string, Record<string, string>>();
  let cur: Record<string, string> | null = null;
  for (const line of out.split('\n')) {
    const d = /^Domain: '(.*)'$/.exec(line);
    if (d) {
      cur = {};
      res.set(d[1]!, cur);
      continue;
    }
    const kv = /^\s+([^=]+)=(.*)$/.exec(line);
    if (kv && cur) cur[kv[1]!] = kv[2]!;
  }
  return res;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until<T>(what: string, fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms = 20_000, every = 100): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await sleep(every);
  }
}

const LIBVIRTD_PIDFILE = '/run/libvirt-lab/libvirtd.pid';

/** The pid of the lab's libvirtd (started by test/lab/up.sh with a pidfile). */
export function libvirtdPid(): number {
  const pid = Number(readFileSync(LIBVIRTD_PIDFILE, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${LIBVIRTD_PIDFILE} holds no pid`);
  return pid;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** SIGKILLs the lab's libvirtd and waits until it is gone (its QEMU guests keep running). */
export async function killLibvirtd(): Promise<void> {
  const pid = libvirtdPid();
  process.kill(pid, 'SIGKILL');
  await until(`libvirtd pid ${pid} to exit`, () => !alive(pid), 10_000, 20);
}

/** Starts libvirtd again the way up.sh does, and waits until it answers. */
export async function startLibvirtd(): Promise<void> {
  const args = ['-d', '--pid-file', LIBVIRTD_PIDFILE];
  if (process.env.LIBVIRTD_CONF) args.unshift('-f', process.env.LIBVIRTD_CONF);
  await run('libvirtd', args);
  await until('libvirtd to answer', async () => (await virsh(['version'])).includes('libvirt'), 30_000, 100);
}
