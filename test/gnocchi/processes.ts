// The moving parts the test starts: the Gnocchi stack (stack.sh), ceilopoll as a child process, and
// one extra Nova-looking domain of its own (never a lab guest: its uuid starts 9a0cce00-).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');

export async function stack(command: 'up' | 'down' | 'status', dir: string, env: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout, stderr } = await run('bash', [path.join(HERE, 'stack.sh'), command, dir], {
      env: { ...process.env, ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout + stderr;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`stack.sh ${command} ${dir} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

export interface CeilopollRun {
  child: ChildProcess;
  exited: Promise<number | null>;
  logFile: string;
}

/** ceilopoll run with its own ceilometer.conf (topic, unit, host), DEBUG logging to DIR/ceilopoll-NAME.log */
export function startCeilopoll(dir: string, name: string, opts: { topic: string; unit: 'MB' | 'MiB'; host: string; intervalS: number; transportUrl: string }): CeilopollRun {
  const conf = path.join(dir, `ceilopoll-${name}`);
  mkdirSync(conf, { recursive: true });
  writeFileSync(path.join(conf, 'polling.yaml'), `---
sources:
  - name: memory
    interval: ${opts.intervalS}
    meters:
      - memory.usage
      - memory.resident
`);
  writeFileSync(path.join(conf, 'ceilometer.conf'), `# make e2e-gnocchi (test/gnocchi/processes.ts)
[DEFAULT]
host = ${opts.host}
transport_url = ${opts.transportUrl}
debug = true

[oslo_messaging_notifications]
topics = ${opts.topic}

[polling]
cfg_file = ${path.join(conf, 'polling.yaml')}

[ceilopoll]
spool_path = ${path.join(conf, 'spool.sqlite')}
unit = ${opts.unit}
http_listen = off
`);
  const logFile = path.join(dir, `ceilopoll-${name}.log`);
  const log = createWriteStream(logFile);
  // no OS_* credentials: flavor.id is then Nova's <flavor id> or the flavor name, as Zed does
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OS_')));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'run', '--config-file', path.join(conf, 'ceilometer.conf')], {
    cwd: REPO,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, logFile };
}

export async function stopCeilopoll(r: CeilopollRun, timeoutMs = 20_000): Promise<number | null> {
  if (r.child.exitCode !== null) return r.child.exitCode;
  r.child.kill('SIGTERM');
  const t = setTimeout(() => r.child.kill('SIGKILL'), timeoutMs);
  const code = await r.exited;
  clearTimeout(t);
  return code;
}

export async function virsh(...args: string[]): Promise<string> {
  const { stdout } = await run('virsh', ['-c', 'qemu:///system', ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

export const NOVA_NS = 'http://openstack.org/xmlns/libvirt/nova/1.1';

/** What Gnocchi's instance attributes must be, from the domain's Nova metadata (as Zed maps it). */
export interface NovaFacts {
  uuid: string;
  displayName: string;
  flavorName: string;
  /** Nova >= 2025.2 writes <flavor id>; without it (and without Keystone) Zed uses the name */
  flavorId: string;
  imageRef: string | null;
}

export async function novaFacts(dom: string): Promise<NovaFacts> {
  const xml = await virsh('metadata', dom, '--uri', NOVA_NS);
  const uuid = (await virsh('domuuid', dom)).trim();
  const pick = (re: RegExp): string | null => re.exec(xml)?.[1] ?? null;
  const displayName = pick(/<name>([^<]*)<\/name>/);
  const flavorName = pick(/<flavor[^>]*\bname="([^"]*)"/);
  if (displayName === null || flavorName === null) throw new Error(`${dom}: no Nova name/flavor in its metadata:\n${xml}`);
  return {
    uuid,
    displayName,
    flavorName,
    flavorId: pick(/<flavor[^>]*\bid="([^"]*)"/) ?? flavorName,
    imageRef: pick(/<root type="image" uuid="([^"]*)"/),
  };
}

/** The test's own domain: test/lab/mkdomain.sh's XML for INDEX with a 9a0cce00- uuid and a wave in
 * the guest's memory use, so that successive samples differ. */
export async function defineOwnDomain(index: number, displayName: string, consoleDir: string): Promise<{ name: string; uuid: string }> {
  const { stdout } = await run('bash', [path.join(REPO, 'test/lab/mkdomain.sh'), String(index), 'stats'], {
    env: { ...process.env, WAVE_MIB: '16', RUN_DIR: consoleDir },
  });
  const xml = stdout.replaceAll('c0ffee00-0000-4000-8000-', '9a0cce00-0000-4000-8000-').replace(/<nova:name>[^<]*<\/nova:name>/, `<nova:name>${displayName}</nova:name>`);
  const name = /<name>([^<]+)<\/name>/.exec(xml)![1]!;
  const uuid = /<uuid>([^<]+)<\/uuid>/.exec(xml)![1]!;
  if (!uuid.startsWith('9a0cce00-')) throw new Error(`not the test's own uuid: ${uuid}`);
  await removeOwnDomain(name, uuid);
  const file = path.join(consoleDir, `${name}.xml`);
  writeFileSync(file, xml);
  await virsh('define', file);
  return { name, uuid };
}

/** destroy + undefine, only if the domain of that name has the test's uuid */
export async function removeOwnDomain(name: string, uuid: string): Promise<void> {
  let actual: string;
  try {
    actual = (await virsh('domuuid', name)).trim();
  } catch {
    return; // not defined
  }
  if (actual !== uuid) throw new Error(`domain ${name} exists with uuid ${actual}, not the test's ${uuid}: not touching it`);
  await virsh('destroy', name).catch(() => undefined);
  await virsh('undefine', name);
}

/** Sets the Nova display name (live and persistent), as `nova rename` makes Nova rewrite the metadata. */
export async function renameOwnDomain(name: string, displayName: string): Promise<void> {
  const xml = await virsh('metadata', name, '--uri', NOVA_NS);
  const next = xml.replace(/<name>[^<]*<\/name>/, `<name>${displayName}</name>`);
  await virsh('metadata', name, '--uri', NOVA_NS, '--key', 'nova', '--set', next.trim(), '--live', '--config');
}

/** What README's upgrade note tells operators: relabel the memory metrics created with unit MB (values
 * are the same numbers: Ceilometer's MB always meant MiB). Run as the postgres user (local socket), in our database. */
export async function relabelMemoryMetrics(db = process.env.GNOCCHI_DB ?? 'ceilopoll_gnocchi_e2e'): Promise<string> {
  const sql = "UPDATE metric SET unit = 'MiB' WHERE unit = 'MB' AND (name = 'memory' OR name LIKE 'memory.%')";
  const { stdout } = await run('runuser', ['-u', 'postgres', '--', 'psql', '-X', '-d', db, '-c', sql]);
  return `${sql}: ${stdout.trim()}`;
}
