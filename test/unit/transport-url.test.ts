// transport_url as oslo.messaging 14.0.3 (Zed) reads it: transport.py::TransportURL.parse, then
// impl_rabbit.py::Connection._transform_transport_url and kombu's defaults; the URL's query overrides
// [oslo_messaging_rabbit] options (ConfigOptsProxy).

import { describe, expect, it } from 'vitest';

import {
  DEFAULT_RABBIT_OPTIONS,
  TransportUrlError,
  notificationTransportUrl,
  parseTransportUrl,
  redactTransportUrl,
} from '../../src/publish/transport-url.js';

const SECRET = 'S3cr3t-pw';

function parseError(url: string, opts = {}): TransportUrlError {
  try {
    parseTransportUrl(url, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(TransportUrlError);
    return err as TransportUrlError;
  }
  throw new Error(`parseTransportUrl accepted ${url}`);
}

describe('hosts, ports and credentials', () => {
  it('reads the golden config\'s URL', () => {
    expect(parseTransportUrl('rabbit://guest:guest@127.0.0.1:5672/')).toEqual({
      hosts: [{ hostname: '127.0.0.1', port: 5672, username: 'guest', password: 'guest' }],
      vhost: '/',
      tls: null,
      rabbit: DEFAULT_RABBIT_OPTIONS,
    });
  });

  it('defaults the port to 5672', () => {
    expect(parseTransportUrl('rabbit://u:p@rabbit.example/').hosts[0]!.port).toBe(5672);
    expect(parseTransportUrl('rabbit://u:p@rabbit.example:/').hosts[0]!.port).toBe(5672);
  });

  it('keeps 5672 with ssl on, as oslo does (it never switches to 5671)', () => {
    const t = parseTransportUrl('rabbit://u:p@rabbit.example/', { ssl: true });
    expect(t.hosts[0]!.port).toBe(5672);
    expect(t.tls).not.toBeNull();
  });

  it('keeps several hosts in the URL\'s order, each with its own credentials', () => {
    expect(parseTransportUrl('rabbit://u:p@h1:5672,u2:p2@h2:5673/nova').hosts).toEqual([
      { hostname: 'h1', port: 5672, username: 'u', password: 'p' },
      { hostname: 'h2', port: 5673, username: 'u2', password: 'p2' },
    ]);
  });

  it('skips empty host entries like oslo', () => {
    expect(parseTransportUrl('rabbit://u:p@h1,,u:p@h2/').hosts.map((h) => h.hostname)).toEqual(['h1', 'h2']);
  });

  it('falls back to kombu\'s guest for a missing user or password', () => {
    expect(parseTransportUrl('rabbit://h1/').hosts[0]).toMatchObject({ username: 'guest', password: 'guest' });
    expect(parseTransportUrl('rabbit://nova@h1/').hosts[0]).toMatchObject({ username: 'nova', password: 'guest' });
  });

  it('takes the credentials from the right-most "@" and the password after the first ":"', () => {
    expect(parseTransportUrl('rabbit://us@er:pa:ss@h/').hosts[0]).toMatchObject({ username: 'us@er', password: 'pa:ss', hostname: 'h' });
  });

  it('reads bracketed IPv6 addresses', () => {
    expect(parseTransportUrl('rabbit://u:p@[::1]:5673,[fe80::2]/').hosts).toEqual([
      { hostname: '::1', port: 5673, username: 'u', password: 'p' },
      { hostname: 'fe80::2', port: 5672, username: 'guest', password: 'guest' },
    ]);
  });

  it('"rabbit://" (oslo\'s default transport_url) is localhost:5672 as guest', () => {
    expect(parseTransportUrl('rabbit://').hosts).toEqual([{ hostname: 'localhost', port: 5672, username: 'guest', password: 'guest' }]);
  });

  it('accepts kombu:// (an oslo alias of the rabbit driver) and an upper-case scheme', () => {
    expect(parseTransportUrl('kombu://u:p@h/').hosts[0]!.hostname).toBe('h');
    expect(parseTransportUrl('RABBIT://u:p@h/').hosts[0]!.hostname).toBe('h');
  });
});

describe('percent-encoding and the vhost', () => {
  it('decodes user, password and vhost', () => {
    const t = parseTransportUrl('rabbit://us%40er:p%3Aa%2Fs%40s%25@h/my%20vhost');
    expect(t.hosts[0]).toMatchObject({ username: 'us@er', password: 'p:a/s@s%' });
    expect(t.vhost).toBe('my vhost');
  });

  it('decodes UTF-8 escapes', () => {
    expect(parseTransportUrl('rabbit://u:p%C3%A9@h/').hosts[0]!.password).toBe('pé');
  });

  it.each([
    ['rabbit://u:p@h:5672/', '/'],
    ['rabbit://u:p@h:5672', '/'],
    ['rabbit://u:p@h:5672//', '/'],
    ['rabbit://u:p@h:5672/%2F', '/'],
    ['rabbit://u:p@h:5672/nova', 'nova'],
    ['rabbit://u:p@h:5672/a%2Fb', 'a/b'],
    ['rabbit://u:p@h:5672/nova?ssl=0', 'nova'],
  ])('%s has vhost %j', (url, vhost) => {
    expect(parseTransportUrl(url).vhost).toBe(vhost);
  });
});

describe('bad URLs give a clear error without the password', () => {
  it.each([
    ['amqp://u:S3cr3t-pw@h/', /AMQP 1\.0 driver/],
    ['http://u:S3cr3t-pw@h/', /scheme "http" is not RabbitMQ/],
    ['//u:S3cr3t-pw@h:5672/', /no scheme/],
    ['u:S3cr3t-pw@h:5672/', /scheme "u" is not RabbitMQ/],
    ['rabbit:u:S3cr3t-pw@h/', /expected "rabbit:\/\/"/],
    ['rabbit://u:S3cr3t-pw@:5672/', /host 1 has no host name/],
    ['rabbit://u:p@h1,u:S3cr3t-pw@/', /host 2 has no host name/],
    ['rabbit://u:S3cr3t-pw@h:abc/', /port "abc" is not a port number/],
    ['rabbit://u:S3cr3t-pw@h:70000/', /port "70000"/],
    ['rabbit://u:S3cr3t-pw@h:0/', /port "0"/],
    ['rabbit://u:S3cr3t-pw@[::1:5672/', /IPv6 address without its closing/],
    ['rabbit://u:S3cr3t-pw%zz@h/', /password has a "%" that is not followed by two hex digits/],
    ['rabbit://u%:S3cr3t-pw@h/', /user name has a "%"/],
    ['rabbit://u:S3cr3t-pw%FF@h/', /password's percent-escapes are not UTF-8/],
    ['rabbit://u:S3cr3t-pw@h/v%FFx', /vhost's percent-escapes are not UTF-8/],
    ['rabbit://u:S3cr3t-pw@h/?no_such_option=1', /"no_such_option" is not an \[oslo_messaging_rabbit\] option/],
    ['rabbit://u:S3cr3t-pw@h/?ssl=maybe', /ssl="maybe" is not a boolean/],
    ['rabbit://u:S3cr3t-pw@h/?heartbeat_timeout_threshold=1.5', /not an integer/],
    ['rabbit://u:S3cr3t-pw@h/?rabbit_login_method=CRAM-MD5', /rabbit_login_method "CRAM-MD5"/],
    ['rabbit://u:S3cr3t-pw@h/?rabbit_ha_queues=1&rabbit_quorum_queue=1', /quorum or HA \(mirrored\), not both/],
    ['rabbit://u:S3cr3t-pw@h/?ssl=1&ssl_version=SSLv3', /ssl_version "SSLv3" is insecure/],
  ])('%s', (url, message) => {
    const err = parseError(url);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain(SECRET);
  });

  it('never shows any host\'s password, even with several', () => {
    const err = parseError(`rabbit://a:${SECRET}@h1,b:${SECRET}2@h2:x/`);
    expect(err.message).toContain('rabbit://a:***@h1,b:***@h2:x/');
    expect(err.message).not.toContain(SECRET);
  });
});

describe('redactTransportUrl', () => {
  it.each([
    ['rabbit://u:pw@h:5672/v', 'rabbit://u:***@h:5672/v'],
    ['rabbit://u:pw@h1,u2:pw2@h2/v?ssl=1', 'rabbit://u:***@h1,u2:***@h2/v?ssl=1'],
    ['rabbit://h1,h2/', 'rabbit://h1,h2/'],
    ['rabbit://u@h/', 'rabbit://u@h/'],
    // a password with unencoded "@", "/" or ",": over-redacted, never leaked
    ['rabbit://u:p@ss@h/', 'rabbit://u:***@***@h/'],
    ['rabbit://u:pa/ss@h/', 'rabbit://u:***@h/'],
    ['rabbit://u:pa,ss@h/', 'rabbit://u:***@h/'],
    ['u:pw@h', '<transport_url with credentials, not shown>'],
  ])('%s -> %s', (url, shown) => {
    expect(redactTransportUrl(url)).toBe(shown);
  });
});

describe('query options override [oslo_messaging_rabbit]', () => {
  it('?ssl=1 turns TLS on', () => {
    expect(parseTransportUrl('rabbit://u:p@h/?ssl=1').tls).not.toBeNull();
    expect(parseTransportUrl('rabbit://u:p@h/?ssl=false', { ssl: true }).tls).toBeNull();
  });

  it('overrides queue flags and heartbeat, with oslo.config\'s type conversion', () => {
    const t = parseTransportUrl('rabbit://u:p@h/?amqp_durable_queues=Yes&rabbit_quorum_queue=on&rabbit_quorum_delivery_limit=5&heartbeat_timeout_threshold=30');
    expect(t.rabbit).toMatchObject({ amqp_durable_queues: true, rabbit_quorum_queue: true, rabbit_quorum_delivery_limit: 5, heartbeat_timeout_threshold: 30 });
  });

  it('ignores blank values and the options ceilopoll has no use for, like parse_qs and oslo', () => {
    const t = parseTransportUrl('rabbit://u:p@h/?ssl=&rabbit_qos_prefetch_count=10&kombu_failover_strategy=shuffle', { ssl: true });
    expect(t.tls).not.toBeNull();
    expect(t.rabbit).toEqual({ ...DEFAULT_RABBIT_OPTIONS, ssl: true });
  });

  it('the config file\'s values apply when the query does not set them', () => {
    expect(parseTransportUrl('rabbit://u:p@h/', { amqp_auto_delete: true }).rabbit.amqp_auto_delete).toBe(true);
  });
});

describe('TLS from ssl, ssl_ca_file, ssl_cert_file, ssl_key_file, ssl_version', () => {
  const tls = (opts: object) => parseTransportUrl('rabbit://u:p@h/', { ssl: true, ...opts }).tls;

  it('verifies the chain against the system store by default, never the host name (py-amqp 5.1.1)', () => {
    expect(tls({})).toEqual({ caFile: null, certFile: null, keyFile: null, minVersion: null, maxVersion: null, verifyPeer: true, verifyHostname: false });
  });

  it('uses the CA, certificate and key files', () => {
    expect(tls({ ssl_ca_file: '/etc/ca.pem', ssl_cert_file: '/etc/c.pem', ssl_key_file: '/etc/k.pem' })).toMatchObject({
      caFile: '/etc/ca.pem', certFile: '/etc/c.pem', keyFile: '/etc/k.pem', verifyPeer: true,
    });
  });

  it('ignores a key file without a certificate (load_cert_chain needs the certificate)', () => {
    expect(tls({ ssl_key_file: '/etc/k.pem' })).toMatchObject({ certFile: null, keyFile: null });
  });

  it.each([
    ['TLSv1_2', 'TLSv1.2', 'TLSv1.2'],
    ['tlsv1_1', 'TLSv1.1', 'TLSv1.1'],
    ['TLSv1', 'TLSv1', 'TLSv1'],
    ['SSLv23', null, null],
  ])('ssl_version %s pins %s..%s', (version, min, max) => {
    expect(tls({ ssl_version: version })).toMatchObject({ minVersion: min, maxVersion: max });
  });

  it('a pinned ssl_version without a CA file does not verify, as Zed (SSLContext(PROTOCOL_TLSv1_2) is CERT_NONE)', () => {
    expect(tls({ ssl_version: 'TLSv1_2' })!.verifyPeer).toBe(false);
    expect(tls({ ssl_version: 'TLSv1_2', ssl_ca_file: '/etc/ca.pem' })!.verifyPeer).toBe(true);
  });

  it('ssl_version is only checked with ssl on, like oslo', () => {
    expect(parseTransportUrl('rabbit://u:p@h/', { ssl_version: 'bogus' }).tls).toBeNull();
    expect(parseError('rabbit://u:p@h/', { ssl: true, ssl_version: 'bogus' }).message).toMatch(/ssl_version "bogus" is not one oslo knows/);
  });
});

describe('notificationTransportUrl', () => {
  it('[oslo_messaging_notifications] transport_url wins over [DEFAULT] transport_url', () => {
    expect(notificationTransportUrl({ notificationsTransportUrl: 'rabbit://n@h/', defaultTransportUrl: 'rabbit://d@h/' })).toBe('rabbit://n@h/');
  });

  it('an unset or empty notifications URL falls back to [DEFAULT], then to "rabbit://"', () => {
    expect(notificationTransportUrl({ notificationsTransportUrl: '', defaultTransportUrl: 'rabbit://d@h/' })).toBe('rabbit://d@h/');
    expect(notificationTransportUrl({ notificationsTransportUrl: null })).toBe('rabbit://');
    expect(notificationTransportUrl({})).toBe('rabbit://');
  });
});
