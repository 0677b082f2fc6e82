// oslo.messaging transport URLs, read the way Zed (oslo.messaging 14.0.3, kombu 5.2.4, py-amqp 5.1.1)
// reads them, so a ceilometer.conf that works for ceilometer-polling works for ceilopoll:
//   rabbit://user:pass@host:port[,userN:passN@hostN:portN]/virtual_host?option=value
// - `transport.py::TransportURL.parse`: hosts split on ",", credentials taken from the right-most "@"
//   (a user may contain one "@"), user and password split on the first ":", each percent-decoded, the
//   vhost is the percent-decoded path after "/".
// - `impl_rabbit.py::Connection._transform_transport_url`: port `host.port or 5672` whatever `ssl` says
//   (TLS does not move the default to 5671); vhost `url.virtual_host or ''`, which kombu turns into "/".
//   A missing user or password becomes kombu's default "guest".
// - `_drivers/common.py::ConfigOptsProxy`: every query parameter must name an [oslo_messaging_rabbit]
//   option and overrides the config file's value (so `?ssl=1` switches TLS on).
// - The scheme picks the driver (`setup.cfg` entry points): `rabbit` and its alias `kombu` are RabbitMQ;
//   `amqp` is NOT an alias, it is the AMQP 1.0 driver (impl_amqp1), so it is refused here.

import type { SecureVersion } from 'node:tls';

/** Thrown for a transport URL or [oslo_messaging_rabbit] value ceilopoll cannot use. Never holds a password. */
export class TransportUrlError extends Error {
  override readonly name = 'TransportUrlError';
}

/**
 * The [oslo_messaging_rabbit] options ceilopoll uses, under their oslo names (Zed spellings: Zed's quorum
 * memory options really are `rabbit_quroum_*`; oslo.messaging fixed the typo only in 2023.2).
 */
export interface RabbitOptions {
  ssl: boolean;
  ssl_version: string;
  ssl_key_file: string;
  ssl_cert_file: string;
  ssl_ca_file: string;
  amqp_durable_queues: boolean;
  amqp_auto_delete: boolean;
  rabbit_ha_queues: boolean;
  rabbit_quorum_queue: boolean;
  rabbit_quorum_delivery_limit: number;
  rabbit_quroum_max_memory_length: number;
  rabbit_quroum_max_memory_bytes: number;
  /** seconds; 0 disables heartbeats */
  heartbeat_timeout_threshold: number;
  rabbit_login_method: 'PLAIN' | 'AMQPLAIN' | 'EXTERNAL';
  /** seconds: first reconnect delay, its increment per retry, and its cap */
  rabbit_retry_interval: number;
  rabbit_retry_backoff: number;
  rabbit_interval_max: number;
}

export const DEFAULT_RABBIT_OPTIONS: Readonly<RabbitOptions> = {
  ssl: false,
  ssl_version: '',
  ssl_key_file: '',
  ssl_cert_file: '',
  ssl_ca_file: '',
  amqp_durable_queues: false,
  amqp_auto_delete: false,
  rabbit_ha_queues: false,
  rabbit_quorum_queue: false,
  rabbit_quorum_delivery_limit: 0,
  rabbit_quroum_max_memory_length: 0,
  rabbit_quroum_max_memory_bytes: 0,
  heartbeat_timeout_threshold: 60,
  rabbit_login_method: 'AMQPLAIN',
  rabbit_retry_interval: 1,
  rabbit_retry_backoff: 2,
  rabbit_interval_max: 30,
};

export interface TransportHost {
  hostname: string;
  port: number;
  username: string;
  password: string;
}

/**
 * TLS as py-amqp 5.1.1 sets it up from oslo's ssl_* options (`impl_rabbit.py::_fetch_ssl_params`,
 * `amqp/transport.py::_wrap_socket_sni`). Zed never checks the certificate's host name (it passes no
 * server_hostname); it verifies the chain against ssl_ca_file, or against the system store when no CA file
 * is given and ssl_version is unset, and not at all when ssl_version pins a protocol without a CA file.
 */
export interface TlsSettings {
  caFile: string | null;
  certFile: string | null;
  /** null with a certFile: the key is in the certificate file, as Python's load_cert_chain allows */
  keyFile: string | null;
  minVersion: SecureVersion | null;
  maxVersion: SecureVersion | null;
  verifyPeer: boolean;
  verifyHostname: boolean;
}

export interface TransportTarget {
  /** in the URL's order: the order ceilopoll fails over in */
  hosts: TransportHost[];
  vhost: string;
  tls: TlsSettings | null;
  /** the [oslo_messaging_rabbit] options in effect: the config file's, overridden by the URL's query */
  rabbit: RabbitOptions;
}

type OptionKind = 'bool' | 'int' | 'float' | 'str';

/**
 * Every option of the [oslo_messaging_rabbit] group in Zed (rabbit_opts, amqp_opts, base_opts), with its
 * oslo.config type. The ones RabbitOptions lacks are accepted in a query and have no effect here.
 */
const OSLO_RABBIT_GROUP: ReadonlyMap<string, OptionKind> = new Map<string, OptionKind>([
  ['ssl', 'bool'], ['ssl_version', 'str'], ['ssl_key_file', 'str'], ['ssl_cert_file', 'str'], ['ssl_ca_file', 'str'],
  ['ssl_enforce_fips_mode', 'bool'], ['heartbeat_in_pthread', 'bool'], ['kombu_reconnect_delay', 'float'],
  ['kombu_compression', 'str'], ['kombu_missing_consumer_retry_timeout', 'int'], ['kombu_failover_strategy', 'str'],
  ['rabbit_login_method', 'str'], ['rabbit_retry_interval', 'int'], ['rabbit_retry_backoff', 'int'],
  ['rabbit_interval_max', 'int'], ['rabbit_ha_queues', 'bool'], ['rabbit_quorum_queue', 'bool'],
  ['rabbit_quorum_delivery_limit', 'int'], ['rabbit_quroum_max_memory_length', 'int'],
  ['rabbit_quroum_max_memory_bytes', 'int'], ['rabbit_transient_queues_ttl', 'int'], ['rabbit_qos_prefetch_count', 'int'],
  ['heartbeat_timeout_threshold', 'int'], ['heartbeat_rate', 'int'], ['direct_mandatory_flag', 'bool'],
  ['enable_cancel_on_failover', 'bool'], ['amqp_durable_queues', 'bool'], ['amqp_auto_delete', 'bool'],
  ['rpc_conn_pool_size', 'int'], ['conn_pool_min_size', 'int'], ['conn_pool_ttl', 'int'],
]);

const USED_OPTIONS = new Set<string>(Object.keys(DEFAULT_RABBIT_OPTIONS));

const DEFAULT_PORT = 5672;

/**
 * The URL with every password replaced by "***", fit for logs and errors. Deliberately over-redacts when
 * the URL is malformed (an unencoded "@", "," or "/" in a password): it never under-redacts.
 */
export function redactTransportUrl(url: string): string {
  const m = /^([^:/?#]*:\/\/)(.*)$/s.exec(url);
  if (!m) return url.includes('@') ? '<transport_url with credentials, not shown>' : url;
  const [, head = '', rest = ''] = m;
  const lastAt = rest.lastIndexOf('@');
  if (lastAt < 0) return url;
  const segments = rest.slice(0, lastAt).split('@');
  const redacted = segments.map((seg, i) => {
    // Segment 0 is all credentials; a later one is "host[:port],user:pass" (the next host's credentials),
    // or, with no ",", the rest of a credential that held an "@": hide it whole.
    const comma = seg.indexOf(',');
    if (i > 0 && comma < 0) return '***';
    const creds = i === 0 ? seg : seg.slice(comma + 1);
    const keep = i === 0 ? '' : seg.slice(0, comma + 1);
    const colon = creds.indexOf(':');
    return keep + (colon < 0 ? creds : `${creds.slice(0, colon)}:***`);
  });
  return head + redacted.join('@') + rest.slice(lastAt);
}

/**
 * `[oslo_messaging_notifications] transport_url` when set, else `[DEFAULT] transport_url`, else oslo's
 * default "rabbit://" (`notify/notifier.py::get_notification_transport`, `transport.py::TransportURL.parse`:
 * an empty string falls through like an unset option).
 */
export function notificationTransportUrl(conf: { notificationsTransportUrl?: string | null; defaultTransportUrl?: string | null }): string {
  return conf.notificationsTransportUrl || conf.defaultTransportUrl || 'rabbit://';
}

/** Percent-decoding as Python's unquote, except that a malformed escape or non-UTF-8 bytes are an error, not kept or replaced. */
function unquote(s: string, what: string, shown: string, plus = false): string {
  const text = plus ? s.replace(/\+/g, ' ') : s;
  if (/%(?![0-9A-Fa-f]{2})/.test(text)) {
    throw new TransportUrlError(`transport_url "${shown}": the ${what} has a "%" that is not followed by two hex digits; write a literal "%" as %25`);
  }
  try {
    return decodeURIComponent(text);
  } catch {
    throw new TransportUrlError(`transport_url "${shown}": the ${what}'s percent-escapes are not UTF-8`);
  }
}

/** `parse.parse_qs(query)` as Python 3.11 does it: "&"-separated, blank values dropped, repeats joined by ",". */
function parseQuery(query: string, shown: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const field of query.split('&')) {
    const eq = field.indexOf('=');
    if (eq < 0 || eq === field.length - 1) continue;
    const name = unquote(field.slice(0, eq), 'query', shown, true);
    const value = unquote(field.slice(eq + 1), `query option ${name}`, shown, true);
    const prev = out.get(name);
    out.set(name, prev === undefined ? value : `${prev},${value}`);
  }
  return out;
}

const TRUE_VALUES = ['true', '1', 'on', 'yes'];
const FALSE_VALUES = ['false', '0', 'off', 'no'];

/** oslo.config's type conversion of a query value (types.Boolean, types.Integer, types.Float). */
function convert(name: string, kind: OptionKind, raw: string, shown: string): boolean | number | string {
  const bad = (expected: string): never => {
    throw new TransportUrlError(`transport_url "${shown}": query option ${name}=${JSON.stringify(raw)} is not ${expected}`);
  };
  switch (kind) {
    case 'bool': {
      const v = raw.toLowerCase();
      if (TRUE_VALUES.includes(v)) return true;
      if (FALSE_VALUES.includes(v)) return false;
      return bad(`a boolean (${[...TRUE_VALUES, ...FALSE_VALUES].join(', ')})`);
    }
    case 'int':
      return /^\s*[+-]?\d+\s*$/.test(raw) ? Number(raw) : bad('an integer');
    case 'float':
      return raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : bad('a number');
    case 'str':
      return raw;
  }
}

const SSL_VERSIONS: Record<string, { min: SecureVersion | null; max: SecureVersion | null; pinned: boolean }> = {
  // ssl.PROTOCOL_SSLv23 negotiates the highest both sides support
  sslv23: { min: null, max: null, pinned: true },
  tlsv1: { min: 'TLSv1', max: 'TLSv1', pinned: true },
  tlsv1_1: { min: 'TLSv1.1', max: 'TLSv1.1', pinned: true },
  tlsv1_2: { min: 'TLSv1.2', max: 'TLSv1.2', pinned: true },
};

function tlsSettings(o: RabbitOptions): TlsSettings | null {
  if (!o.ssl) return null;
  const version = o.ssl_version.trim().toLowerCase();
  let pin: { min: SecureVersion | null; max: SecureVersion | null; pinned: boolean } = { min: null, max: null, pinned: false };
  if (version !== '') {
    const known = SSL_VERSIONS[version];
    if (!known) {
      const why = version === 'sslv2' || version === 'sslv3' ? 'is insecure and not available in Node.js/OpenSSL 3' : 'is not one oslo knows';
      throw new TransportUrlError(`[oslo_messaging_rabbit] ssl_version "${o.ssl_version}" ${why}; use TLSv1_2, SSLv23 (negotiate), or leave it empty`);
    }
    pin = known;
  }
  const caFile = o.ssl_ca_file || null;
  return {
    caFile,
    certFile: o.ssl_cert_file || null,
    // Python only loads a key with a certificate (load_cert_chain(certfile, keyfile))
    keyFile: o.ssl_cert_file ? o.ssl_key_file || null : null,
    minVersion: pin.min,
    maxVersion: pin.max,
    // A CA file sets cert_reqs=CERT_REQUIRED; without one, PROTOCOL_TLS_CLIENT verifies against the system
    // store but an explicit protocol's SSLContext defaults to CERT_NONE.
    verifyPeer: caFile !== null || !pin.pinned,
    verifyHostname: false,
  };
}

function checkOptions(o: RabbitOptions): void {
  if (o.rabbit_quorum_queue && o.rabbit_ha_queues) {
    // impl_rabbit.py::_get_queue_arguments raises the same RuntimeError
    throw new TransportUrlError('[oslo_messaging_rabbit] rabbit_quorum_queue and rabbit_ha_queues are both enabled: the queue type is quorum or HA (mirrored), not both');
  }
  if (!['PLAIN', 'AMQPLAIN', 'EXTERNAL'].includes(o.rabbit_login_method)) {
    throw new TransportUrlError(`[oslo_messaging_rabbit] rabbit_login_method "${String(o.rabbit_login_method)}": ceilopoll supports PLAIN, AMQPLAIN (the default) and EXTERNAL`);
  }
  for (const k of ['heartbeat_timeout_threshold', 'rabbit_retry_interval', 'rabbit_retry_backoff', 'rabbit_interval_max',
    'rabbit_quorum_delivery_limit', 'rabbit_quroum_max_memory_length', 'rabbit_quroum_max_memory_bytes'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 0) {
      throw new TransportUrlError(`[oslo_messaging_rabbit] ${k} = ${o[k]}: must be an integer of 0 or more`);
    }
  }
}

/** One netloc entry, as `TransportURL.parse` splits it. */
function parseHost(entry: string, index: number, shown: string): TransportHost {
  const which = `host ${index + 1}`;
  let username: string | null = null;
  let password: string | null = null;
  let hostport = entry;
  const at = entry.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = entry.slice(0, at);
    hostport = entry.slice(at + 1);
    const colon = userinfo.indexOf(':');
    username = unquote(colon < 0 ? userinfo : userinfo.slice(0, colon), `${which} user name`, shown);
    if (colon >= 0) password = unquote(userinfo.slice(colon + 1), `${which} password`, shown);
  }

  let hostname: string;
  let portText: string | null = null;
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']');
    if (end < 0) throw new TransportUrlError(`transport_url "${shown}": ${which} has an IPv6 address without its closing "]"`);
    hostname = hostport.slice(1, end);
    const after = hostport.slice(end + 1);
    if (after !== '' && !after.startsWith(':')) throw new TransportUrlError(`transport_url "${shown}": ${which}: expected ":port" after "]"`);
    if (after.startsWith(':')) portText = after.slice(1);
  } else {
    const colon = hostport.indexOf(':');
    hostname = colon < 0 ? hostport : hostport.slice(0, colon);
    if (colon >= 0) portText = hostport.slice(colon + 1);
  }
  if (hostname === '') throw new TransportUrlError(`transport_url "${shown}": ${which} has no host name`);

  let port = DEFAULT_PORT;
  if (portText !== null && portText !== '') {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw new TransportUrlError(`transport_url "${shown}": ${which} port "${portText}" is not a port number (1-65535)`);
    }
    port = Number(portText);
  }
  // kombu fills an empty user id or password with its default, guest
  return { hostname, port, username: username || 'guest', password: password || 'guest' };
}

/**
 * Parses a transport URL against the [oslo_messaging_rabbit] options from the config file (missing ones take
 * oslo's defaults); the URL's query overrides them. Throws TransportUrlError, whose message shows the URL
 * with its passwords redacted.
 */
export function parseTransportUrl(url: string, rabbitOpts: Partial<RabbitOptions> = {}): TransportTarget {
  const shown = redactTransportUrl(url);
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(url.trim());
  if (!m) throw new TransportUrlError(`transport_url "${shown}" has no scheme; expected rabbit://user:password@host:5672/vhost`);
  const [, rawScheme = '', afterScheme = ''] = m;
  const scheme = rawScheme.toLowerCase();
  const driver = scheme.split('+')[0];
  if (driver === 'amqp') {
    throw new TransportUrlError(`transport_url "${shown}": in oslo.messaging "amqp://" selects the AMQP 1.0 driver, not RabbitMQ; ceilopoll speaks RabbitMQ's AMQP 0-9-1, written rabbit://`);
  }
  if (driver !== 'rabbit' && driver !== 'kombu') {
    throw new TransportUrlError(`transport_url "${shown}": scheme "${rawScheme}" is not RabbitMQ; ceilopoll only publishes with the rabbit:// driver (rabbit://user:password@host:5672/vhost)`);
  }
  if (!afterScheme.startsWith('//')) {
    throw new TransportUrlError(`transport_url "${shown}": expected "${rawScheme}://" followed by the hosts`);
  }

  // urllib.parse.urlsplit: netloc up to the first "/", "?" or "#"; then the path; then the query
  const rest = afterScheme.slice(2);
  const hash = rest.indexOf('#');
  const noFragment = hash < 0 ? rest : rest.slice(0, hash);
  const q = noFragment.indexOf('?');
  const beforeQuery = q < 0 ? noFragment : noFragment.slice(0, q);
  const query = q < 0 ? '' : noFragment.slice(q + 1);
  const slash = beforeQuery.indexOf('/');
  const netloc = slash < 0 ? beforeQuery : beforeQuery.slice(0, slash);
  const path = slash < 0 ? '' : beforeQuery.slice(slash);

  const entries = netloc.split(',').filter((e) => e !== '');
  // No hosts at all is oslo's default transport_url "rabbit://": localhost:5672 as guest/guest.
  const hosts = entries.length === 0
    ? [{ hostname: 'localhost', port: DEFAULT_PORT, username: 'guest', password: 'guest' }]
    : entries.map((e, i) => parseHost(e, i, shown));

  const vhost = path.startsWith('/') ? unquote(path.slice(1), 'vhost', shown) : '';

  const rabbit: RabbitOptions = { ...DEFAULT_RABBIT_OPTIONS, ...rabbitOpts };
  const overrides = rabbit as unknown as Record<string, boolean | number | string>;
  for (const [name, raw] of parseQuery(query, shown)) {
    const kind = OSLO_RABBIT_GROUP.get(name);
    if (kind === undefined) {
      throw new TransportUrlError(`transport_url "${shown}": query option "${name}" is not an [oslo_messaging_rabbit] option (oslo.messaging refuses the URL too)`);
    }
    const value = convert(name, kind, raw, shown);
    if (USED_OPTIONS.has(name)) overrides[name] = name === 'rabbit_login_method' ? String(value).toUpperCase() : value;
  }
  checkOptions(rabbit);

  return { hosts, vhost: vhost === '' ? '/' : vhost, tls: tlsSettings(rabbit), rabbit };
}
