import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { ConfigErrors, type ConfigError } from '../../src/config/errors.js';
import { loadConfig, type LoadConfigOptions } from '../../src/config/load.js';
import { isHostAddress, parseListen, redactOptionValue, secretKind, type CeilopollConfig } from '../../src/config/options.js';
import { redactedSummary, renderEffectiveConfig } from '../../src/config/render.js';
import { DEFAULT_RABBIT_OPTIONS } from '../../src/publish/transport-url.js';
import { DEFAULT_TELEMETRY_SECRET } from '../../src/samples/signature.js';

const POLLING = 'sources:\n  - name: memory\n    interval: 60\n    meters: [memory.usage]\n';

/** Writes ceilometer.conf (and polling.yaml beside it) in a fresh directory. */
async function confFile(text: string): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ceilopoll-options-'));
  await writeFile(join(dir, 'polling.yaml'), POLLING);
  await writeFile(join(dir, 'ceilometer.conf'), text);
  return { dir, file: join(dir, 'ceilometer.conf') };
}

async function load(text: string, opts: Partial<LoadConfigOptions> = {}): Promise<CeilopollConfig & { file: string }> {
  const { file } = await confFile(text);
  const cfg = await loadConfig({ configFiles: [file], env: {}, hostname: () => 'compute-1', findDirs: [], ...opts });
  return { ...cfg, file };
}

/** The ConfigErrors of loading this text, and the file's path. */
async function fail(text: string, opts: Partial<LoadConfigOptions> = {}): Promise<{ errors: ConfigError[]; file: string; message: string }> {
  const { file } = await confFile(text);
  try {
    await loadConfig({ configFiles: [file], env: {}, hostname: () => 'compute-1', findDirs: [], ...opts });
  } catch (err) {
    if (err instanceof ConfigErrors) return { errors: [...err.errors], file, message: err.message };
    throw err;
  }
  throw new Error('expected ConfigErrors');
}

describe('options: defaults (Zed\'s, and ceilopoll\'s own)', () => {
  it('an empty file gives every default', async () => {
    const cfg = await load('');
    expect(cfg).toMatchObject({
      files: [cfg.file],
      pollingFile: join(cfg.file, '..', 'polling.yaml'),
      host: 'compute-1',
      libvirtType: 'kvm',
      libvirtUri: 'qemu:///system',
      libvirtUriFromType: true,
      transportUrl: 'rabbit://',
      controlExchange: 'ceilometer',
      topics: ['notifications'],
      notificationRetry: -1,
      telemetryDriver: 'messagingv2',
      batchSize: 50,
      pollingCfgFile: 'polling.yaml',
      telemetrySecret: DEFAULT_TELEMETRY_SECRET,
      rabbit: DEFAULT_RABBIT_OPTIONS,
      compute: { instanceDiscoveryMethod: 'libvirt_metadata', resourceUpdateInterval: 0, resourceCacheExpiry: 3600 },
      serviceCredentials: null,
      debug: false,
      ceilopoll: {
        spoolPath: '/var/lib/ceilopoll/spool.sqlite',
        spoolMaxMb: 256,
        spoolMaxAgeHours: 72,
        unit: 'MB',
        nameKeys: false,
        stalenessFactor: 3,
        httpListen: { host: '127.0.0.1', port: 9317 },
        logFormat: 'oslo',
        stopTimeout: 10,
      },
      pollstersDefinitionsDirs: ['/etc/ceilometer/pollsters.d'],
      ignored: [],
      warnings: [],
    });
    expect(cfg.effective.every((o) => o.origin === '(default)')).toBe(true);
  });

  it('libvirt_uri from libvirt_type as Ceilometer derives it; libvirt_uri wins when set', async () => {
    const uri = async (text: string): Promise<[string, boolean]> => {
      const c = await load(text);
      return [c.libvirtUri, c.libvirtUriFromType];
    };
    expect(await uri('[DEFAULT]\nlibvirt_type = qemu\n')).toEqual(['qemu:///system', true]);
    expect(await uri('[DEFAULT]\nlibvirt_type = lxc\n')).toEqual(['lxc:///', true]);
    expect(await uri('[DEFAULT]\nlibvirt_type = uml\n')).toEqual(['uml:///system', true]);
    expect(await uri('[DEFAULT]\nlibvirt_type = parallels\n')).toEqual(['parallels:///system', true]);
    expect(await uri('[DEFAULT]\nlibvirt_type = lxc\nlibvirt_uri = qemu+tcp://h/system\n')).toEqual(['qemu+tcp://h/system', false]);
  });

  it('transport_url: [oslo_messaging_notifications] first, then [DEFAULT], then rabbit://', async () => {
    expect((await load('[DEFAULT]\ntransport_url = rabbit://a:pa@d:5672/\n')).transportUrl).toBe('rabbit://a:pa@d:5672/');
    expect((await load('[DEFAULT]\ntransport_url = rabbit://a:pa@d:5672/\n[oslo_messaging_notifications]\ntransport_url = rabbit://b:pb@n:5672/\n')).transportUrl)
      .toBe('rabbit://b:pb@n:5672/');
    expect((await load('[oslo_messaging_notifications]\ntransport_url =\n')).transportUrl).toBe('rabbit://');
  });

  it('oslo types: booleans in any case and spelling, lists trimmed, integers with a sign or "_"', async () => {
    const cfg = await load([
      '[DEFAULT]', 'debug = YES',
      '[oslo_messaging_notifications]', 'topics = notifications , other,', 'retry = +3',
      '[polling]', 'batch_size = 1_000',
      '[oslo_messaging_rabbit]', 'ssl = On', 'rabbit_login_method = PLAIN', 'heartbeat_timeout_threshold = 0',
      '[ceilopoll]', 'name_keys = 1', 'spool_max_mb = 0.5', 'http_listen = off', 'log_format = json',
      '',
    ].join('\n'));
    expect(cfg.debug).toBe(true);
    expect(cfg.topics).toEqual(['notifications', 'other']);
    expect(cfg.notificationRetry).toBe(3);
    expect(cfg.batchSize).toBe(1000);
    expect(cfg.rabbit).toMatchObject({ ssl: true, rabbit_login_method: 'PLAIN', heartbeat_timeout_threshold: 0 });
    expect(cfg.ceilopoll).toMatchObject({ nameKeys: true, spoolMaxMb: 0.5, httpListen: null, logFormat: 'json' });
  });

  it('an empty number is the default', async () => {
    expect((await load('[polling]\nbatch_size =\n')).batchSize).toBe(50);
  });
});

describe('options: bad values name the file, line, section, key, value and what is allowed', () => {
  it('bad boolean', async () => {
    const { errors, file } = await fail('[DEFAULT]\nhost = compute-1\ndebug = maybe\n');
    expect(errors.map((e) => e.message)).toEqual([`${file}:3: [DEFAULT] debug = "maybe": expected a boolean: true or false (also yes/no, on/off, 1/0)`]);
    expect(errors[0]).toMatchObject({ file, line: 3, section: 'DEFAULT', key: 'debug', value: 'maybe', allowed: 'a boolean: true or false (also yes/no, on/off, 1/0)' });
  });

  it('bad integer', async () => {
    const { errors, file } = await fail('[polling]\nbatch_size = abc\n');
    expect(errors.map((e) => e.message)).toEqual([`${file}:2: [polling] batch_size = "abc": expected an integer >= 0`]);
    expect((await fail('[polling]\nbatch_size = -1\n')).errors[0]!.allowed).toBe('an integer >= 0');
    expect((await fail('[polling]\nbatch_size = 2.5\n')).errors[0]!.value).toBe('2.5');
  });

  it('unknown choice: libvirt_type = xen', async () => {
    const { errors, file } = await fail('[DEFAULT]\nlibvirt_type = xen\n');
    expect(errors.map((e) => e.message)).toEqual([`${file}:2: [DEFAULT] libvirt_type = "xen": expected one of kvm, lxc, qemu, uml, parallels`]);
    expect(errors[0]).toMatchObject({ section: 'DEFAULT', key: 'libvirt_type', value: 'xen', allowed: 'one of kvm, lxc, qemu, uml, parallels' });
  });

  it('a telemetry_driver other than messaging', async () => {
    const { message, file } = await fail('[publisher_notifier]\ntelemetry_driver = log\n');
    expect(message).toBe(`${file}:2: [publisher_notifier] telemetry_driver = "log": expected one of messagingv2, messaging (ceilopoll publishes only over oslo.messaging)`);
  });

  it('[ceilopoll] and [compute] bounds', async () => {
    const { errors, file } = await fail([
      '[compute]', 'resource_update_interval = -1',
      '[ceilopoll]', 'spool_max_mb = 0', 'staleness_factor = 0.5', 'http_listen = 1.2.3.4:70000', 'unit = mb', 'stop_timeout = soon',
      '',
    ].join('\n'));
    expect(errors.map((e) => e.message)).toEqual([
      `${file}:2: [compute] resource_update_interval = "-1": expected an integer >= 0 (seconds)`,
      `${file}:4: [ceilopoll] spool_max_mb = "0": expected a number > 0 (MB)`,
      `${file}:5: [ceilopoll] staleness_factor = "0.5": expected a number >= 1`,
      `${file}:6: [ceilopoll] http_listen = "1.2.3.4:70000": expected host:port or [IPv6 address]:port with a port from 0 to 65535, or off`,
      `${file}:7: [ceilopoll] unit = "mb": expected one of MB, MiB`,
      `${file}:8: [ceilopoll] stop_timeout = "soon": expected a number > 0 (seconds)`,
    ]);
  });

  it('a host name oslo would refuse', async () => {
    const { message, file } = await fail('[DEFAULT]\nhost = my_host\n');
    expect(message).toBe(`${file}:2: [DEFAULT] host = "my_host": expected a host name or IP address (letters, digits, "-" and "." only)`);
  });

  it('every bad value of the load, in file order', async () => {
    const { errors } = await fail('[polling]\nbatch_size = x\n[DEFAULT]\ndebug = x\n[oslo_messaging_notifications]\nretry = x\n');
    expect(errors.map((e) => e.line)).toEqual([2, 4, 6]);
  });
});

describe('options: transport_url is checked as oslo.messaging reads it, never showing its password', () => {
  it('bad port', async () => {
    const { message, file, errors } = await fail('[DEFAULT]\ntransport_url = rabbit://openstack:S3cr3tPw@controller:99999/\n');
    expect(message).toBe(`${file}:2: [DEFAULT] transport_url = "rabbit://openstack:***@controller:99999/": host 1 port "99999" is not a port number (1-65535)`);
    expect(errors[0]).toMatchObject({ section: 'DEFAULT', key: 'transport_url', value: 'rabbit://openstack:***@controller:99999/' });
    expect(message).not.toContain('S3cr3tPw');
  });

  it('amqp:// (the AMQP 1.0 driver) in [oslo_messaging_notifications]', async () => {
    const { message, file } = await fail('[oslo_messaging_notifications]\ntransport_url = amqp://openstack:S3cr3tPw@controller/\n');
    expect(message).toBe(
      `${file}:2: [oslo_messaging_notifications] transport_url = "amqp://openstack:***@controller/": in oslo.messaging "amqp://" selects the AMQP 1.0 driver, not RabbitMQ; ceilopoll speaks RabbitMQ's AMQP 0-9-1, written rabbit://`,
    );
  });

  it('[oslo_messaging_rabbit] values that oslo.messaging refuses together', async () => {
    const { message, file } = await fail('[oslo_messaging_rabbit]\nrabbit_ha_queues = true\nrabbit_quorum_queue = yes\n');
    expect(message).toBe(
      `${file}:3: [oslo_messaging_rabbit] rabbit_quorum_queue: rabbit_quorum_queue and rabbit_ha_queues are both enabled: the queue type is quorum or HA (mirrored), not both`,
    );
  });
});

describe('options: unknown options are warned about once; Zed options ceilopoll ignores are listed', () => {
  it('a typo in a known section, with a suggestion, once however often it appears', async () => {
    const { dir, file } = await confFile('[polling]\nbach_size = 10\nbach_size = 11\n');
    await writeFile(join(dir, 'second.conf'), '[polling]\nbach_size = 12\n');
    const cfg = await loadConfig({ configFiles: [file, join(dir, 'second.conf')], env: {}, hostname: () => 'h', findDirs: [] });
    expect(cfg.warnings).toEqual([
      `${file}:2: [polling] bach_size: unknown option, ignored: neither Zed's Ceilometer nor ceilopoll has it in [polling] (did you mean batch_size?)`,
    ]);
    expect(cfg.batchSize).toBe(50);
  });

  it('an unknown section: one warning for the whole section', async () => {
    const cfg = await load('[keystone_authtoken]\nauth_url = http://k\npassword = x\n');
    expect(cfg.warnings).toEqual([`${cfg.file}:1: [keystone_authtoken]: unknown section, ignored: neither Zed's Ceilometer nor ceilopoll has options in it (2 options set there)`]);
  });

  it('[ceilopoll] is strict', async () => {
    const cfg = await load('[ceilopoll]\nspool_pth = /x\n');
    expect(cfg.warnings).toEqual([
      `${cfg.file}:2: [ceilopoll] spool_pth: unknown option, ignored: [ceilopoll] has spool_path, spool_max_mb, spool_max_age_hours, unit, name_keys, staleness_factor, http_listen, log_format, stop_timeout (did you mean spool_path?)`,
    ]);
  });

  it('an option Zed knows and ceilopoll does not read: no warning, listed as ignored', async () => {
    const cfg = await load('[oslo_concurrency]\nlock_path = /var/lock/ceilometer\n[DEFAULT]\nbatch_size = 5\nlog_dir = /var/log/ceilometer\n[notification]\nworkers = 4\n');
    expect(cfg.warnings).toEqual([]);
    expect(cfg.ignored.map((i) => `[${i.section}] ${i.key}:${i.line}`)).toEqual(['[oslo_concurrency] lock_path:2', '[DEFAULT] batch_size:4', '[DEFAULT] log_dir:5', '[notification] workers:7']);
    // Zed reads batch_size from [polling] only
    expect(cfg.batchSize).toBe(50);
  });
});

describe('options: deprecated names and the environment, as oslo reads them', () => {
  it('a deprecated name is read, with a warning; the current name wins in the same file', async () => {
    const cfg = await load('[DEFAULT]\nmetering_secret = OldS3cret\nnotification_topics = a, b\n[publisher_notifier]\nmetering_driver = messaging\n');
    expect(cfg.telemetrySecret).toBe('OldS3cret');
    expect(cfg.topics).toEqual(['a', 'b']);
    expect(cfg.telemetryDriver).toBe('messaging');
    expect(cfg.warnings).toContain(`${cfg.file}:2: [DEFAULT] metering_secret: deprecated name, use [publisher] telemetry_secret (oslo still reads it)`);
    expect(cfg.warnings.join('\n')).not.toContain('OldS3cret');
    expect((await load('[DEFAULT]\nmetering_secret = Old\n[publisher]\ntelemetry_secret = New\n')).telemetrySecret).toBe('New');
  });

  it('OS_<GROUP>__<OPTION> overrides the files', async () => {
    const cfg = await load('[polling]\nbatch_size = 10\n', { env: { OS_POLLING__BATCH_SIZE: '20', OS_CEILOPOLL__UNIT: 'MiB' } });
    expect(cfg.batchSize).toBe(20);
    expect(cfg.ceilopoll.unit).toBe('MiB');
    expect(cfg.effective.find((o) => o.key === 'batch_size')).toMatchObject({ origin: 'environment variable OS_POLLING__BATCH_SIZE', value: '20' });
    const { message } = await fail('', { env: { OS_POLLING__BATCH_SIZE: 'x' } });
    expect(message).toBe('environment variable OS_POLLING__BATCH_SIZE: [polling] batch_size = "x": expected an integer >= 0');
  });
});

describe('options: $-interpolation as oslo does it', () => {
  it('$name from the same section, then [DEFAULT]; ${name} and ${section.name}; $$ and \\$ are "$"', async () => {
    const cfg = await load([
      '[DEFAULT]', 'state_path = /var/lib/ceilo', 'host = node-$region', 'region = 7',
      '[ceilopoll]', 'spool_path = $state_path/spool-${unit}.sqlite', 'unit = MiB',
      '[polling]', 'cfg_file = ${DEFAULT.state_path}/polling.yaml',
      '[publisher]', 'telemetry_secret = pa$$word\\$x',
      '',
    ].join('\n'), { polling: false });
    expect(cfg.ceilopoll.spoolPath).toBe('/var/lib/ceilo/spool-MiB.sqlite');
    expect(cfg.host).toBe('node-7');
    expect(cfg.pollingCfgFile).toBe('/var/lib/ceilo/polling.yaml');
    expect(cfg.telemetrySecret).toBe('pa$word$x');
  });

  it('a reference to a default value', async () => {
    expect((await load('[ceilopoll]\nspool_path = /srv/${control_exchange}.sqlite\n')).ceilopoll.spoolPath).toBe('/srv/ceilometer.sqlite');
  });

  it('"$name." reads as ${group.option}, as in oslo, with a hint', async () => {
    const { message, file } = await fail('[ceilopoll]\nspool_path = /srv/$control_exchange.sqlite\n');
    expect(message).toBe(
      `${file}:2: [ceilopoll] spool_path = "/srv/$control_exchange.sqlite": refers to $control_exchange.sqlite, but there is no option [control_exchange] sqlite; ` +
        'oslo reads "$control_exchange.sqlite" as option sqlite of group control_exchange: write ${control_exchange}.sqlite',
    );
  });

  it('a later file\'s value counts', async () => {
    const { dir, file } = await confFile('[DEFAULT]\nstate_path = /one\n[ceilopoll]\nspool_path = $state_path/s.sqlite\n');
    await writeFile(join(dir, 'later.conf'), '[DEFAULT]\nstate_path = /two\n');
    const cfg = await loadConfig({ configFiles: [file, join(dir, 'later.conf')], env: {}, hostname: () => 'h', findDirs: [] });
    expect(cfg.ceilopoll.spoolPath).toBe('/two/s.sqlite');
  });

  it('an unknown reference is an error naming it', async () => {
    const { message, file } = await fail('[ceilopoll]\nspool_path = $stat_path/spool.sqlite\n');
    expect(message).toBe(`${file}:2: [ceilopoll] spool_path = "$stat_path/spool.sqlite": refers to $stat_path, but there is no option [ceilopoll] stat_path or [DEFAULT] stat_path; write $$ for a literal "$"`);
  });

  it('a reference to itself', async () => {
    const { message, file } = await fail('[DEFAULT]\nhost = $host\n');
    expect(message).toBe(`${file}:2: [DEFAULT] host = "$host": refers to itself through $DEFAULT.host -> $DEFAULT.host`);
  });

  it('a bad value after expansion shows both forms', async () => {
    const { message, file } = await fail('[DEFAULT]\nsize = big\n[polling]\nbatch_size = $size\n');
    expect(message).toBe(`${file}:4: [polling] batch_size = "$size": expected an integer >= 0; "$size" expands to "big"`);
  });
});

describe('options: [service_credentials] through flavor-lookup\'s schema', () => {
  it('parsed when auth_url is set ("-" and "_" alike)', async () => {
    const cfg = await load('[service_credentials]\nauth-url = http://k:5000/v3\nusername = ceilometer\npassword = KsS3cret\nproject_name = service\ninterface = internalURL\n');
    expect(cfg.serviceCredentials).toMatchObject({ auth_url: 'http://k:5000/v3', username: 'ceilometer', password: 'KsS3cret', project_name: 'service', interface: 'internal', auth_type: 'password' });
  });

  it('null without auth_url, with a warning when other credentials are set', async () => {
    expect((await load('')).serviceCredentials).toBeNull();
    const cfg = await load('[service_credentials]\nusername = ceilometer\n');
    expect(cfg.serviceCredentials).toBeNull();
    expect(cfg.warnings).toEqual([`${cfg.file}:2: [service_credentials] has no auth_url: ceilopoll does not ask Nova for flavor ids, flavor.id is the flavor name`]);
  });

  it('a missing password, reported against auth_url\'s line', async () => {
    const { message, file } = await fail('[service_credentials]\nauth_url = http://k:5000/v3\nusername = ceilometer\nproject_name = p\n');
    expect(message).toBe(`${file}:2: [service_credentials] password: password is required (auth_url is set)`);
  });
});

describe('secrets never appear in errors, renderings or summaries', () => {
  const SECRETS = ['RabbitS3cret', 'NotifyS3cret', 'TelemetryS3cret', 'KeystoneS3cret', 'UrlS3cret'];

  it('errors: a bad secret value, a bad reference inside a secret, a bad URL built from a reference', async () => {
    const { errors, file } = await fail([
      '[DEFAULT]', 'rabbit_pw = UrlS3cret', 'transport_url = rabbit://u:$rabbit_pw@h:0/',
      '[publisher]', 'telemetry_secret = TelemetryS3cret$nope',
      '[service_credentials]', 'auth_url = http://k:5000/v3', 'username = u', 'password = KeystoneS3cret', 'interface = publick',
      '',
    ].join('\n'));
    expect(errors.map((e) => e.message)).toEqual([
      `${file}:3: [DEFAULT] transport_url = "rabbit://u:***@h:0/": host 1 port "0" is not a port number (1-65535)`,
      `${file}:5: [publisher] telemetry_secret = "***": refers to $nope, but there is no option [publisher] nope or [DEFAULT] nope; write $$ for a literal "$"`,
      `${file}:10: [service_credentials] interface = "publick": interface must be one of public, internal, admin (or publicURL, internalURL, adminURL)`,
    ]);
    for (const e of errors) for (const s of SECRETS) expect(JSON.stringify({ ...e, message: e.message })).not.toContain(s);
  });

  it('check-config rendering and the state-report summary', async () => {
    const cfg = await load([
      '[DEFAULT]', 'transport_url = rabbit://openstack:RabbitS3cret@controller:5672/',
      '[oslo_messaging_notifications]', 'transport_url = rabbit://notify:NotifyS3cret@bus:5672/',
      '[publisher]', 'telemetry_secret = TelemetryS3cret',
      '[service_credentials]', 'auth_url = http://k:5000/v3', 'username = ceilometer', 'password = KeystoneS3cret', 'project_name = service',
      '',
    ].join('\n'));
    const text = renderEffectiveConfig(cfg);
    const summary = JSON.stringify(redactedSummary(cfg));
    for (const s of SECRETS) {
      expect(text).not.toContain(s);
      expect(summary).not.toContain(s);
    }
    expect(text).toContain('transport_url = rabbit://openstack:***@controller:5672/');
    expect(text).toContain('transport_url = rabbit://notify:***@bus:5672/');
    expect(text).toContain('telemetry_secret = ***');
    expect(text).toContain('password = ***');
    expect(text).toContain(`# from ${cfg.file}:6`);
    expect(summary).toContain('rabbit://notify:***@bus:5672/');
    expect(redactedSummary(cfg).telemetry_secret).toBe('set');
  });

  it('which keys are secret', () => {
    expect(secretKind('publisher', 'telemetry_secret')).toBe('plain');
    expect(secretKind('DEFAULT', 'metering_secret')).toBe('plain');
    expect(secretKind('service_credentials', 'password')).toBe('plain');
    expect(secretKind('oslo_messaging_amqp', 'ssl_key_password')).toBe('plain');
    expect(secretKind('rgw_admin_credentials', 'access_key')).toBe('plain');
    expect(secretKind('DEFAULT', 'transport_url')).toBe('url');
    expect(secretKind('DEFAULT', 'notification_transport_url')).toBe('url');
    expect(secretKind('DEFAULT', 'host')).toBeNull();
    expect(redactOptionValue('DEFAULT', 'transport_url', 'rabbit://u:p@h/')).toBe('rabbit://u:***@h/');
    expect(redactOptionValue('publisher', 'telemetry_secret', 'x')).toBe('***');
  });
});

describe('option value parsers', () => {
  it.each([
    ['127.0.0.1:9317', { host: '127.0.0.1', port: 9317 }],
    ['[::1]:9000', { host: '::1', port: 9000 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
    ['', null],
    ['off', null],
    ['None', null],
    ['::1:9000', undefined],
    ['[nothost]:1', undefined],
    ['host:65536', undefined],
    ['host', undefined],
    [':80', undefined],
  ])('http_listen %j', (raw, want) => {
    expect(parseListen(raw)).toEqual(want);
  });

  it.each([
    ['compute-1', true],
    ['compute-1.example.org.', true],
    ['10.0.0.1', true],
    ['fe80::1', true],
    ['my_host', false],
    ['-lead', false],
    ['1.2.3', false],
    ['', false],
  ])('host %j: %s', (host, want) => {
    expect(isHostAddress(host)).toBe(want);
  });
});
