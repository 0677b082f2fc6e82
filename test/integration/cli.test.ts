// `ceilopoll poll --once` and `ceilopoll memstats` as an operator runs them, against the lab.

import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';

import { DEFAULT_USER, FakeOpenStack } from '../support/fake-openstack.js';
import { guestOf, labGuests } from '../support/lab.js';

const run = promisify(execFile);
const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

async function ceilopoll(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...CLI, ...args], { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('ceilopoll poll --once', () => {
  it('--format wire prints sample dicts that Python reads back and whose signatures Python verifies', async () => {
    const { code, stdout } = await ceilopoll(['poll', '--once', '--format', 'wire', '--host', 'compute-1']);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    const stats = labGuests().filter((g) => g.profile === 'stats');
    expect(lines.filter((l) => l.includes('"counter_name": "memory.usage"')).length).toBeGreaterThanOrEqual(stats.length);
    // Zed's own verify_signature logic, on what Python's json.loads makes of our bytes
    const verdict = execFileSync('python3', ['-c', `
import sys, json, hmac, hashlib
def pairs(d, prefix=''):
    for k in sorted(d):
        v = d[k]
        if isinstance(v, dict):
            yield from pairs(v, prefix + k + ':')
        else:
            yield prefix + k, v
bad = 0
n = 0
for line in sys.stdin:
    m = json.loads(line)
    h = hmac.new(b'change this for valid signing', digestmod=hashlib.sha256)
    for name, value in pairs(m):
        if name == 'message_signature': continue
        h.update(name.encode()); h.update(str(value).encode())
    n += 1
    bad += h.hexdigest() != m['message_signature']
    assert isinstance(m['counter_volume'], float)
print(n, bad)
`], { input: stdout }).toString();
    expect(verdict.trim()).toBe(`${lines.length} 0`);
  });

  it('--format json gives each instance its values, formula and reasons', async () => {
    const { code, stdout } = await ceilopoll(['poll', '--once', '--format', 'json']);
    expect(code).toBe(0);
    const rows = stdout.trim().split('\n').map((l) => JSON.parse(l) as { name: string; formula: string | null; values: Record<string, number>; missing: Record<string, { reason: string }> });
    const by = Object.fromEntries(rows.map((r) => [r.name, r]));
    expect(by[guestOf('stats').name]!.formula).toBe('available-usable');
    expect(by[guestOf('stats').name]!.values['memory.usage']).toBeGreaterThan(0);
    expect(by[guestOf('none').name]!.missing['memory.usage']!.reason).toBe('no-balloon-device');
    expect(by[guestOf('shutoff').name]!.missing['memory.resident']!.reason).toBe('not-running');
  });

  it('--format table names every lab guest and each reason; MiB on request', async () => {
    const { code, stdout } = await ceilopoll(['poll', '--once', '--unit', 'MiB', '--meter', 'memory.usage']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/memory\.usage \(MiB\)/);
    for (const g of labGuests()) expect(stdout).toContain(g.name);
    expect(stdout).toMatch(new RegExp(`${guestOf('nostats').name}.*stats-period-disabled`));
    expect(stdout).toMatch(new RegExp(`${guestOf('noballoon').name}.*guest-not-reporting.*BLNSVR`));
  });

  it('bad usage exits 2, an unreachable libvirt exits 1 naming the socket', async () => {
    expect((await ceilopoll(['poll'])).code).toBe(2);
    expect((await ceilopoll(['poll', '--once', '--format', 'xml'])).stderr).toMatch(/--format xml: expected wire, json or table/);
    const gone = await ceilopoll(['poll', '--once', '--uri', 'qemu+unix:///system?socket=/nonexistent/sock']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/cannot connect to libvirt socket \/nonexistent\/sock/);
    const remote = await ceilopoll(['poll', '--once', '--uri', 'qemu+ssh://admin:hunter2@host/system']);
    expect(remote.code).toBe(1);
    expect(remote.stderr).not.toContain('hunter2');
  });
});

describe('flavor.id from Nova, with credentials from the OpenStack environment (openrc)', () => {
  it('is Nova\'s id for the flavor name when OS_AUTH_URL and friends are set, the name otherwise', async () => {
    const fake = await FakeOpenStack.start({});
    try {
      const env = {
        OS_AUTH_URL: fake.authUrl, OS_USERNAME: DEFAULT_USER.name, OS_PASSWORD: DEFAULT_USER.password, OS_PROJECT_NAME: 'service',
        OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_DOMAIN_NAME: 'Default', OS_REGION_NAME: 'RegionOne',
      };
      const withNova = await ceilopoll(['poll', '--once', '--format', 'wire', '--meter', 'memory.resident'], env);
      expect(withNova.code).toBe(0);
      const flavorIds = withNova.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { resource_metadata: { flavor: { id: string } } }).resource_metadata.flavor.id);
      expect(new Set(flavorIds)).toEqual(new Set(['1'])); // m1.tiny is "1" in Nova
      const without = await ceilopoll(['poll', '--once', '--format', 'wire', '--meter', 'memory.resident'], { OS_AUTH_URL: '' });
      expect(without.stdout).toContain('"flavor": {"id": "m1.tiny"');
    } finally {
      await fake.close();
    }
  });

  it('incomplete credentials are refused naming the variable, without the password', async () => {
    const r = await ceilopoll(['poll', '--once'], { OS_AUTH_URL: 'http://127.0.0.1:1/v3', OS_PASSWORD: 'hunter2', OS_USERNAME: '', OS_PROJECT_NAME: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/OS_USERNAME: username or user_id is required/);
    expect(r.stderr).not.toContain('hunter2');
  });
});

describe('ceilopoll memstats', () => {
  it('prints a row per lab guest with usage computed from virsh-equal stats', async () => {
    const { code, stdout } = await ceilopoll(['memstats']);
    expect(code).toBe(0);
    for (const g of labGuests()) expect(stdout).toContain(g.name);
  });
});
