import { access, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { findConfigFile, loadConfig, type LoadConfigOptions } from '../../src/config/load.js';
import type { CeilopollConfig } from '../../src/config/options.js';
import { renderEffectiveConfig } from '../../src/config/render.js';
import { asyncErrorsOf } from '../support/config-errors.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/config');
const NODE_CONF = join(FIXTURES, 'compute-node.conf');
const OVERRIDE_CONF = join(FIXTURES, 'override.conf');
const CONF_D = join(FIXTURES, 'conf.d');

const POLLING = (interval: number): string => `sources:\n  - name: memory\n    interval: ${interval}\n    meters: [memory.usage]\n`;

/** loadConfig with no environment, a fixed host name and no /etc fallback unless given. */
function load(opts: LoadConfigOptions): Promise<CeilopollConfig> {
  return loadConfig({ env: {}, hostname: () => 'compute-1', findDirs: [], defaultSearch: { files: [], dirs: [] }, ...opts });
}

const errorsOf = asyncErrorsOf;

async function scratch(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ceilopoll-load-'));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return dir;
}

describe('load: --config-file and --config-dir as oslo.config orders them, a later file wins', () => {
  it('two --config-file: the second wins, each value remembers its file and line', async () => {
    const cfg = await load({ configFiles: [NODE_CONF, OVERRIDE_CONF] });
    expect(cfg.files).toEqual([NODE_CONF, OVERRIDE_CONF]);
    expect(cfg.batchSize).toBe(10);
    expect(cfg.debug).toBe(true);
    expect(cfg.transportUrl).toBe('rabbit://notify:NotifyS3cret@notify-bus:5672/');
    expect(cfg.host).toBe('compute-7');
    expect(cfg.effective.find((o) => o.section === 'polling' && o.key === 'batch_size')).toMatchObject({ origin: OVERRIDE_CONF, line: 6, value: '10' });
    expect(cfg.effective.find((o) => o.section === 'DEFAULT' && o.key === 'host')).toMatchObject({ origin: NODE_CONF, line: 3 });
    expect((await load({ configFiles: [OVERRIDE_CONF, NODE_CONF] })).batchSize).toBe(100);
  });

  it('--config-dir: its *.conf files by name (hidden files and other names skipped), after the --config-files', async () => {
    const cfg = await load({ configFiles: [NODE_CONF, OVERRIDE_CONF], configDirs: [CONF_D] });
    expect(cfg.files).toEqual([NODE_CONF, OVERRIDE_CONF, join(CONF_D, '10-batch.conf'), join(CONF_D, '20-batch.conf')]);
    expect(cfg.batchSize).toBe(20);
    expect(cfg.ceilopoll.stopTimeout).toBe(5);
  });

  it('sources keep the command-line order when --config-file and --config-dir are interleaved', async () => {
    const cfg = await load({ sources: [{ kind: 'file', path: NODE_CONF }, { kind: 'dir', path: CONF_D }, { kind: 'file', path: OVERRIDE_CONF }] });
    expect(cfg.files).toEqual([NODE_CONF, join(CONF_D, '10-batch.conf'), join(CONF_D, '20-batch.conf'), OVERRIDE_CONF]);
    expect(cfg.batchSize).toBe(10);
  });

  it('a --config-dir that does not exist is an error; one without *.conf is fine', async () => {
    const dir = await scratch({ 'empty/readme.txt': 'x', 'ceilometer.conf': '', 'polling.yaml': POLLING(60) });
    const [e] = await errorsOf(load({ configDirs: [join(dir, 'missing.d')] }));
    expect(e!.message).toBe(`${dir}/missing.d: cannot read the config directory: no such file or directory (ENOENT)`);
    const cfg = await load({ configFiles: [join(dir, 'ceilometer.conf')], configDirs: [join(dir, 'empty')] });
    expect(cfg.files).toEqual([join(dir, 'ceilometer.conf')]);
  });

  it('a --config-file that does not exist is an error', async () => {
    const dir = await scratch({});
    await expect(load({ configFiles: [join(dir, 'nope.conf')] })).rejects.toThrow(`${dir}/nope.conf: cannot read the file: no such file or directory (ENOENT)`);
  });

  it('relative paths are taken from the working directory, "~" from HOME', async () => {
    const dir = await scratch({ 'c.conf': '[polling]\nbatch_size = 3\n', 'polling.yaml': POLLING(60) });
    expect((await load({ configFiles: ['~/c.conf'], env: { HOME: dir } })).files).toEqual([join(dir, 'c.conf')]);
  });
});

describe('load: with no --config-file and no --config-dir, oslo\'s default places', () => {
  it('the first existing default file and the first existing default dir', async () => {
    const dir = await scratch({ 'etc/ceilometer.conf': '[polling]\nbatch_size = 7\n', 'etc/ceilometer.conf.d/x.conf': '[DEFAULT]\ndebug = true\n', 'etc/polling.yaml': POLLING(60) });
    const cfg = await load({ defaultSearch: { files: [join(dir, 'none.conf'), join(dir, 'etc/ceilometer.conf')], dirs: [join(dir, 'etc/ceilometer.conf.d')] } });
    expect(cfg.files).toEqual([join(dir, 'etc/ceilometer.conf'), join(dir, 'etc/ceilometer.conf.d/x.conf')]);
    expect([cfg.batchSize, cfg.debug]).toEqual([7, true]);
  });

  it('none there: every value is a default', async () => {
    const dir = await scratch({ 'polling.yaml': POLLING(60) });
    const cfg = await load({ defaultSearch: { files: [join(dir, 'none.conf')], dirs: [join(dir, 'none.d')] }, findDirs: [dir] });
    expect(cfg.files).toEqual([]);
    expect(cfg.batchSize).toBe(50);
    expect(cfg.pollingFile).toBe(join(dir, 'polling.yaml'));
  });
});

describe('load: [polling] cfg_file found like oslo\'s find_file', () => {
  it('config dirs first, then the config files\' directories (last file first), then the standard dirs', async () => {
    const dir = await scratch({
      'a/x.conf': '', 'a/polling.yaml': POLLING(10),
      'b/y.conf': '', 'b/polling.yaml': POLLING(20),
      'c.d/z.conf': '', 'c.d/polling.yaml': POLLING(30),
      'etc/polling.yaml': POLLING(40),
    });
    const files = [join(dir, 'a/x.conf'), join(dir, 'b/y.conf')];
    const interval = async (opts: LoadConfigOptions): Promise<number | undefined> => (await load(opts)).polling.tasks[0]?.intervalSeconds;
    expect(await interval({ configFiles: files, configDirs: [join(dir, 'c.d')] })).toBe(30);
    expect(await interval({ configFiles: files })).toBe(20);
    expect(await interval({ configFiles: [...files].reverse() })).toBe(10);
    expect(await interval({ defaultSearch: { files: [], dirs: [] }, findDirs: [join(dir, 'etc')] })).toBe(40);
  });

  it('an absolute cfg_file is used as it is', async () => {
    const dir = await scratch({ 'p/mine.yaml': POLLING(90) });
    await writeFile(join(dir, 'c.conf'), `[polling]\ncfg_file = ${join(dir, 'p/mine.yaml')}\n`);
    const cfg = await load({ configFiles: [join(dir, 'c.conf')] });
    expect(cfg.pollingFile).toBe(join(dir, 'p/mine.yaml'));
    expect(cfg.polling.tasks[0]!.intervalSeconds).toBe(90);
  });

  it('not found: the error names the file and every place searched', async () => {
    const dir = await scratch({ 'c.conf': '[polling]\ncfg_file = pollng.yaml\n', 'conf.d/d.conf': '' });
    const [e] = await errorsOf(load({ configFiles: [join(dir, 'c.conf')], configDirs: [join(dir, 'conf.d')], findDirs: ['/nonexistent/etc'] }));
    expect(e!.message).toBe(
      `${dir}/c.conf:2: [polling] cfg_file = "pollng.yaml": not found; looked for ${dir}/conf.d/pollng.yaml, ${dir}/pollng.yaml, /nonexistent/etc/pollng.yaml`,
    );
    expect(await findConfigFile('pollng.yaml', [{ kind: 'file', path: join(dir, 'c.conf') }], [])).toEqual({ path: null, searched: [join(dir, 'pollng.yaml')] });
  });

  it('polling: false does not need polling.yaml', async () => {
    const dir = await scratch({ 'c.conf': '' });
    const cfg = await load({ configFiles: [join(dir, 'c.conf')], polling: false });
    expect(cfg.pollingFile).toBe('');
    expect(cfg.polling.tasks).toEqual([]);
  });

  it('meters of dynamic pollsters in pollsters_definitions_dirs are known', async () => {
    const dir = await scratch({
      'pollsters.d/dyn.yaml': '---\n- name: dynamic.instances\n  sample_type: gauge\n',
      'polling.yaml': 'sources:\n  - name: d\n    interval: 60\n    meters: [dynamic.instances, memory.usage]\n',
    });
    await writeFile(join(dir, 'c.conf'), `[DEFAULT]\npollsters_definitions_dirs = ${join(dir, 'pollsters.d')}\n`);
    const cfg = await load({ configFiles: [join(dir, 'c.conf')] });
    expect(cfg.pollstersDefinitionsDirs).toEqual([join(dir, 'pollsters.d')]);
    expect(cfg.polling.notPolled).toEqual(['dynamic.instances']);
    expect(cfg.pollingOptions).toEqual({ extraMeters: ['dynamic.instances'] });
  });
});

describe('load: every problem of a load at once', () => {
  it('an unreadable file, a bad value, a bad transport_url and a bad polling.yaml together', async () => {
    const dir = await scratch({
      'a.conf': '[polling]\nbatch_size = lots\n[DEFAULT]\ntransport_url = rabbit://u:Pw0rd@h:99999/\n',
      'polling.yaml': 'sources:\n  - name: m\n    interval: 0\n    meters: [memory.usage]\n',
    });
    const errors = await errorsOf(load({ configFiles: [join(dir, 'missing.conf'), join(dir, 'a.conf')] }));
    expect(errors.map((e) => e.message)).toEqual([
      `${dir}/missing.conf: cannot read the file: no such file or directory (ENOENT)`,
      `${dir}/a.conf:2: [polling] batch_size = "lots": expected an integer >= 0`,
      `${dir}/a.conf:4: [DEFAULT] transport_url = "rabbit://u:***@h:99999/": host 1 port "99999" is not a port number (1-65535)`,
      `${dir}/polling.yaml:3: sources[0].interval = 0: expected an integer > 0 (seconds)`,
    ]);
  });
});

describe('the sample compute-node configuration in test/fixtures/config', () => {
  it('loads with its interpolation, credentials, rabbit options, one warning and the ignored options', async () => {
    const cfg = await load({ configFiles: [NODE_CONF] });
    expect(cfg).toMatchObject({
      host: 'compute-7',
      transportUrl: 'rabbit://openstack:RabbitS3cret@controller-1:5672,openstack:RabbitS3cret@controller-2:5672/',
      telemetrySecret: 'TelemetryS3cret',
      batchSize: 100,
      compute: { resourceUpdateInterval: 600 },
      ceilopoll: { spoolPath: '/var/lib/ceilopoll-test/spool.sqlite', unit: 'MiB' },
      serviceCredentials: { auth_url: 'http://controller:5000/v3', username: 'ceilometer', interface: 'internal' },
      pollingFile: join(FIXTURES, 'polling.yaml'),
    });
    expect(cfg.rabbit).toMatchObject({ amqp_durable_queues: true, rabbit_quorum_queue: true });
    expect(cfg.warnings).toEqual([
      `${NODE_CONF}:5: [DEFAULT] state_path: unknown option, ignored: neither Zed's Ceilometer nor ceilopoll has it in [DEFAULT]`,
    ]);
    expect(cfg.ignored.map((i) => `[${i.section}] ${i.key}`)).toEqual(['[oslo_concurrency] lock_path']);
  });

  it('check-config shows where each value comes from, with secrets redacted', async () => {
    const text = renderEffectiveConfig(await load({ configFiles: [NODE_CONF, OVERRIDE_CONF] }));
    for (const secret of ['RabbitS3cret', 'NotifyS3cret', 'TelemetryS3cret', 'KeystoneS3cret']) expect(text).not.toContain(secret);
    expect(text).toContain(`# from ${OVERRIDE_CONF}:6\nbatch_size = 10`);
    expect(text).toMatch(/^batch_size = .*\ncfg_file = polling.yaml$/m); // a default: no comment line above it
    expect(text).toContain(`# from ${NODE_CONF}:4\ntransport_url = rabbit://openstack:***@controller-1:5672,openstack:***@controller-2:5672/`);
    expect(text).toContain(`# from ${OVERRIDE_CONF}:9; the notification transport\ntransport_url = rabbit://notify:***@notify-bus:5672/`);
    expect(text).toContain(`# from ${NODE_CONF}:19\ntelemetry_secret = ***`);
    expect(text).toContain('#   every 60 s: memory.usage (source memory-fast)');
    expect(text).toContain('#   every 300 s: memory.resident, memory.swap.in, memory.swap.out (source memory-rest)');
    expect(text).toContain('# polled by ceilometer-polling, not by ceilopoll: cpu, network.*');
    expect(text).toContain(`#   ${NODE_CONF}:9: [oslo_concurrency] lock_path`);
    expect(text).toContain('# warnings (1):');
  });
});

describe("Debian's shipped /etc/ceilometer/ceilometer.conf and polling.yaml (ceilometer-common 19.0.0)", () => {
  async function requireDebianFiles(): Promise<void> {
    for (const f of ['/etc/ceilometer/ceilometer.conf', '/etc/ceilometer/polling.yaml']) {
      await access(f).catch(() => {
        throw new Error(`${f} is missing: install Debian's Ceilometer with: bash test/e2e/notification-agent.sh install`);
      });
    }
  }

  it('load with no error, from the default place: one 300 s task of memory.usage, the other meters left to ceilometer-polling', async () => {
    await requireDebianFiles();
    const cfg = await loadConfig({ env: {}, hostname: () => 'compute-1' });
    expect(cfg.files).toEqual(['/etc/ceilometer/ceilometer.conf']);
    expect(cfg.pollingFile).toBe('/etc/ceilometer/polling.yaml');
    expect(cfg.polling.tasks).toEqual([{ intervalSeconds: 300, meters: ['memory.usage'], sources: ['some_pollsters'] }]);
    expect(cfg.polling.notPolled).toEqual(expect.arrayContaining(['cpu', 'cpu_l3_cache', 'network.incoming.bytes', 'disk.device.write.requests', 'hardware.cpu.util']));
    expect(cfg.warnings).toEqual([]);
    expect(cfg.ignored.map((i) => `[${i.section}] ${i.key}`)).toEqual(['[oslo_concurrency] lock_path']);
    expect(cfg.transportUrl).toBe('rabbit://');
    expect(cfg.libvirtUri).toBe('qemu:///system');
  });

  it('load as Debian\'s init script passes it (--config-file)', async () => {
    await requireDebianFiles();
    const cfg = await loadConfig({ configFiles: ['/etc/ceilometer/ceilometer.conf'], env: {}, hostname: () => 'compute-1' });
    expect(cfg.polling.tasks).toEqual([{ intervalSeconds: 300, meters: ['memory.usage'], sources: ['some_pollsters'] }]);
  });
});
