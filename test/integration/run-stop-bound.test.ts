// SIGTERM stops `ceilopoll run` within [ceilopoll] stop_timeout + 5 s even when a cycle is stuck in
// a libvirt call that never returns: a stand-in daemon (the real one will not hang on demand)
// answers the handshake and then never answers the bulk stats call.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Proc } from '../../src/libvirt/protocol.js';
import { FakeLibvirtd } from '../support/fake-libvirtd.js';
import { until } from '../support/lab.js';

let daemon: FakeLibvirtd;
let dir: string;

beforeAll(async () => {
  daemon = await FakeLibvirtd.start();
  daemon.on(Proc.CONNECT_GET_ALL_DOMAIN_STATS, () => 'no-reply');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-stop-bound-'));
});

afterAll(async () => {
  await daemon.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('ceilopoll run, SIGTERM during a stuck cycle', () => {
  it('exits 0 at the bound, saying why, and leaves the spool for the next start', { timeout: 60_000 }, async () => {
    fs.writeFileSync(path.join(dir, 'polling.yaml'), 'sources:\n  - name: m\n    interval: 60\n    meters: [memory.usage]\n');
    const conf = path.join(dir, 'ceilometer.conf');
    fs.writeFileSync(conf, [
      '[DEFAULT]',
      `libvirt_uri = qemu+unix:///system?socket=${daemon.socketPath}`,
      'transport_url = rabbit://guest:guest@127.0.0.1:5672/',
      '[oslo_messaging_notifications]',
      `topics = ceilopoll-stop-bound-${process.pid}`,
      '[ceilopoll]',
      `spool_path = ${path.join(dir, 'spool.sqlite')}`,
      'http_listen = off',
      'stop_timeout = 1',
      '',
    ].join('\n'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'run', '--config-file', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await until('the stuck bulk stats call', () => daemon.callsOf(Proc.CONNECT_GET_ALL_DOMAIN_STATS).length > 0, 30_000, 50);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(err).toMatch(/SIGTERM: not stopped within 6 s \(a cycle or the broker is stuck\); exiting now, unconfirmed notifications stay in the spool/);
    expect(err).not.toMatch(/ stopped; \d+ notification/); // the clean path did not finish first
    expect(fs.existsSync(path.join(dir, 'spool.sqlite'))).toBe(true);
  });
});
