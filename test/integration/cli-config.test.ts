// The commands as an operator runs them with configuration files: check-config on Debian's shipped
// files and on ours, every problem of a bad configuration printed with exit status 2 (run refuses
// to start on it too), secrets never printed, --help and exit status for each command, doctor's
// exit status on the lab, and the systemd unit as systemd reads it.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { labGuests } from '../support/lab.js';

const exec = promisify(execFile);
const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

async function ceilopoll(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [...CLI, ...args], { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-cli-config-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const write = (name: string, text: string): string => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
};

describe('ceilopoll check-config', () => {
  it("accepts Debian's shipped ceilometer.conf and polling.yaml (installed by make ceilometer-install)", async () => {
    expect(fs.existsSync('/etc/ceilometer/polling.yaml'), 'Debian ceilometer-common is installed: run make ceilometer-install').toBe(true);
    const r = await ceilopoll(['check-config', '--config-file', '/etc/ceilometer/ceilometer.conf']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\[DEFAULT\]$/m);
    expect(r.stdout).toMatch(/telemetry_secret = \*\*\*/);
    expect(r.stdout).toMatch(/300/);
    expect(r.stdout).toMatch(/memory\.usage/);
    expect(r.stdout).toMatch(/cpu/); // named as left to ceilometer-polling
  });

  it('accepts the samples in config/ with no warning', async () => {
    // config/ceilometer.conf finds config/polling.yaml beside it
    const r = await ceilopoll(['check-config', '--config-file', 'config/ceilometer.conf']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(path.resolve('config/polling.yaml'));
    expect(r.stdout).not.toMatch(/unknown option/);
    expect(r.stdout).not.toContain('RABBIT_PASS');
    expect(r.stdout).toContain('rabbit://openstack:***@controller:5672/');
  });

  it('prints every problem of a bad configuration, file and place first, and exits 2; run refuses to start on it', async () => {
    write('bad-polling.yaml', 'sources:\n  - name: memory\n    interval: 0\n    meters: [memory.usage, "!cpu"]\n');
    const conf = write('bad.conf', [
      '[DEFAULT]',
      'transport_url = rabbit://openstack:s3cret@controller:notaport/',
      '[polling]',
      'batch_size = many',
      `cfg_file = ${path.join(dir, 'bad-polling.yaml')}`,
      '[publisher]',
      'telemetry_secret = hush-hush',
      '',
    ].join('\n'));
    const r = await ceilopoll(['check-config', '--config-file', conf]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines.some((l) => l.startsWith(`ceilopoll: ${conf}:4: [polling] batch_size = "many"`))).toBe(true);
    expect(lines.some((l) => l.startsWith(`ceilopoll: ${conf}:2: [DEFAULT] transport_url`) && l.includes('***'))).toBe(true);
    expect(r.stderr).not.toContain('s3cret');
    expect(r.stderr).not.toContain('hush-hush');

    const run = await ceilopoll(['run', '--config-file', conf]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('[polling] batch_size = "many"');
    expect(run.stderr).not.toContain('s3cret');
  });

  it('reports polling.yaml errors with the YAML path and line', async () => {
    const yaml = write('mixed.yaml', 'sources:\n  - name: memory\n    interval: 0\n    meters: [memory.usage, "!cpu"]\n');
    const conf = write('mixed.conf', `[polling]\ncfg_file = ${yaml}\n`);
    const r = await ceilopoll(['check-config', '--config-file', conf]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${yaml}:3: sources[0].interval = 0: expected an integer > 0`);
    expect(r.stderr).toMatch(new RegExp(`${yaml.replace(/[.]/g, '\\.')}:4: sources\\[0\\]\\.meters`));
  });

  it('run exits 2 when polling.yaml selects none of its meters, saying so', async () => {
    const yaml = write('cpu-only.yaml', 'sources:\n  - name: cpu\n    interval: 60\n    meters: [cpu]\n');
    const conf = write('cpu-only.conf', `[polling]\ncfg_file = ${yaml}\n[ceilopoll]\nhttp_listen = off\n`);
    const r = await ceilopoll(['run', '--config-file', conf]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${yaml} selects none of ceilopoll's meters`);
  });

  it('a later --config-file wins, and --config-dir takes its place in the order given', async () => {
    const a = write('a.conf', '[DEFAULT]\nhost = from-a\n[polling]\nbatch_size = 7\n');
    fs.mkdirSync(path.join(dir, 'conf.d'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'conf.d', '10-host.conf'), '[DEFAULT]\nhost = from-dir\n');
    const b = write('b.conf', '[DEFAULT]\nhost = from-b\n');
    write('polling.yaml', 'sources:\n  - name: m\n    interval: 60\n    meters: [memory.usage]\n');
    const dirLast = await ceilopoll(['check-config', '--config-file', a, '--config-file', b, '--config-dir', path.join(dir, 'conf.d')]);
    expect(dirLast.code).toBe(0);
    expect(dirLast.stdout).toMatch(/^host = from-dir/m);
    expect(dirLast.stdout).toMatch(/^batch_size = 7/m);
    const fileLast = await ceilopoll(['check-config', '--config-dir', path.join(dir, 'conf.d'), '--config-file', a, '--config-file', b]);
    expect(fileLast.stdout).toMatch(/^host = from-b/m);
  });
});

describe('--help and exit status', () => {
  it.each(['run', 'poll', 'check-config', 'doctor', 'memstats'])('ceilopoll %s --help', async (cmd) => {
    const r = await ceilopoll([cmd, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^usage: ceilopoll ${cmd}`));
    expect(r.stdout).toMatch(/exit status: 0/);
    expect(r.stdout).toContain('--config-file');
  });

  it('ceilopoll with no command or an unknown one exits 2, --help 0', async () => {
    expect((await ceilopoll([])).code).toBe(2);
    expect((await ceilopoll(['frobnicate'])).stderr).toMatch(/unknown command "frobnicate"/);
    const h = await ceilopoll(['--help']);
    expect(h.code).toBe(0);
    for (const c of ['run', 'poll', 'check-config', 'doctor', 'memstats']) expect(h.stdout).toContain(`  ${c} `);
  });

  it('bad flags exit 2 naming the flag', async () => {
    expect((await ceilopoll(['doctor', '--fix-period', '0'])).stderr).toMatch(/--fix-period 0: expected a whole number of seconds from 1 to 86400/);
    expect((await ceilopoll(['run', '--interval=-5'])).stderr).toMatch(/--interval -5: expected a whole number of seconds > 0/);
    expect((await ceilopoll(['run', '--meter', 'cpu'])).stderr).toMatch(/--meter cpu: not a ceilopoll meter/);
    expect((await ceilopoll(['run', '--bogus'])).code).toBe(2);
  });
});

describe('ceilopoll doctor on the lab', () => {
  it('exits 3 (problems found) and names each case', async () => {
    expect(labGuests().length, 'the lab (make lab-up)').toBeGreaterThan(0);
    const conf = write('doctor.conf', '[DEFAULT]\nlibvirt_uri = qemu:///system\n');
    const r = await ceilopoll(['doctor', '--config-file', conf]);
    expect(r.code).toBe(3);
    for (const reason of ['no-balloon-device', 'stats-period-disabled', 'guest-not-reporting', 'not-running']) expect(r.stdout).toContain(reason);
    expect(r.stdout).toMatch(/^DOMAIN +DISPLAY NAME +STATE +BALLOON +PERIOD/m);
  });
});

describe('config/ceilopoll.service', () => {
  it('is a unit systemd reads without a complaint', async () => {
    // systemd-analyze checks that ExecStart's binary exists: point it at one that does
    const unit = fs.readFileSync('config/ceilopoll.service', 'utf8').replace('/usr/bin/ceilopoll', '/usr/bin/true');
    const copy = write('ceilopoll.service', unit);
    const { stdout, stderr } = await exec('systemd-analyze', ['verify', copy]);
    expect(`${stdout}${stderr}`.split('\n').filter((l) => l.includes('ceilopoll.service'))).toEqual([]);
    for (const d of ['After=network-online.target libvirtd.service', 'Restart=on-failure', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ExecReload=/bin/kill -HUP $MAINPID']) {
      expect(unit).toContain(d);
    }
  });
});
