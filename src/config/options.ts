// The options ceilopoll reads from ceilometer.conf: one zod schema per section, each field an oslo.config
// type (ceilometer-wire.md §6.2), evaluated over every file read (oslo's precedence: environment
// OS_<GROUP>__<OPTION>, then the last file that sets the option or one of its deprecated names, then the
// default), with oslo's $-interpolation. Every problem becomes a ConfigError naming the file and line
// that set the value; secrets never appear in a message.
//
// Deprecated names (e.g. [DEFAULT] metering_secret for [publisher] telemetry_secret) are Zed's own, from
// zed-options.json: in the newest file that has any name of an option, the current name wins over a
// deprecated one, as in oslo; using one gives a warning.

import { isIP } from 'node:net';

import { z } from 'zod';

import { serviceCredentialsSchema, type ServiceCredentials } from '../discovery/flavor-lookup.js';
import { DEFAULT_RABBIT_OPTIONS, notificationTransportUrl, redactTransportUrl, type RabbitOptions } from '../publish/transport-url.js';
import type { MemoryUnit } from '../samples/meters.js';
import { DEFAULT_TELEMETRY_SECRET } from '../samples/signature.js';

import { ConfigError, DEFAULT_ORIGIN } from './errors.js';
import type { IniFile, IniValue } from './ini.js';
import type { PollingConfig, PollingYamlOptions } from './polling-yaml.js';
import zed from './zed-options.json' with { type: 'json' };

// ---------------------------------------------------------------------------------------------------
// The result
// ---------------------------------------------------------------------------------------------------

export type LibvirtType = 'kvm' | 'lxc' | 'qemu' | 'uml' | 'parallels';
export type InstanceDiscoveryMethod = 'libvirt_metadata' | 'workload_partitioning' | 'naive';

export interface CeilopollSettings {
  spoolPath: string;
  spoolMaxMb: number;
  spoolMaxAgeHours: number;
  unit: MemoryUnit;
  nameKeys: boolean;
  stalenessFactor: number;
  httpListen: { host: string; port: number } | null;
  logFormat: 'oslo' | 'json';
  /** seconds */
  stopTimeout: number;
}

/** Where an effective value came from: a file (and line), an environment variable, or the default. */
export interface OptionOrigin {
  /** a file path, `environment variable OS_<GROUP>__<OPTION>`, or "(default)" */
  origin: string;
  line?: number;
  /** the deprecated name the value was read under, e.g. "[DEFAULT] metering_secret" */
  via?: string;
}

/** One option as check-config shows it: the value already redacted when secret. */
export interface EffectiveOption extends OptionOrigin {
  section: string;
  key: string;
  value: string;
  /** derived rather than set, e.g. libvirt_uri from libvirt_type */
  note?: string;
}

/** An option Zed's Ceilometer knows but ceilopoll does not read. */
export interface IgnoredOption {
  file: string;
  line: number;
  section: string;
  key: string;
}

export interface CeilopollConfig {
  /** ceilometer.conf files read, in order */
  files: string[];
  /** resolved polling.yaml path ('' when polling.yaml was not asked for and could not be found) */
  pollingFile: string;
  /** [DEFAULT] host, default os.hostname() */
  host: string;
  libvirtType: LibvirtType;
  /** [DEFAULT] libvirt_uri, or derived from libvirt_type as Ceilometer does */
  libvirtUri: string;
  libvirtUriFromType: boolean;
  /** [oslo_messaging_notifications] transport_url, else [DEFAULT] transport_url, else rabbit:// */
  transportUrl: string;
  controlExchange: string;
  topics: string[];
  notificationRetry: number;
  /** messagingv2 or messaging */
  telemetryDriver: string;
  batchSize: number;
  /** [polling] cfg_file as written */
  pollingCfgFile: string;
  telemetrySecret: string;
  rabbit: RabbitOptions;
  compute: { instanceDiscoveryMethod: InstanceDiscoveryMethod; resourceUpdateInterval: number; resourceCacheExpiry: number };
  /** null when [service_credentials] auth_url is unset */
  serviceCredentials: ServiceCredentials | null;
  debug: boolean;
  ceilopoll: CeilopollSettings;
  /** [DEFAULT] pollsters_definitions_dirs (multi-valued): where dynamic pollsters' meter names come from */
  pollstersDefinitionsDirs: string[];
  polling: PollingConfig;
  /** what parsePollingYaml/readPollingYaml need to accept what loadConfig accepted (dynamic pollster meters) */
  pollingOptions: PollingYamlOptions;
  /** every option ceilopoll reads, in section order, with its origin; secrets redacted */
  effective: EffectiveOption[];
  /** options Zed's Ceilometer knows that ceilopoll does not read */
  ignored: IgnoredOption[];
  /** unknown options and sections, deprecated names, polling.yaml remarks: each once, each naming its file */
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------------
// Zed's option names and secrets
// ---------------------------------------------------------------------------------------------------

const ZED_GROUPS: ReadonlyMap<string, ReadonlySet<string>> = new Map(
  Object.entries(zed)
    .filter(([g]) => !g.startsWith('_'))
    .map(([g, names]) => [g, new Set(names as string[])]),
);
const ZED_DEPRECATED: Readonly<Record<string, string[]>> = zed._deprecated;
const ZED_SECRETS: ReadonlySet<string> = new Set(zed._secret);

/** Whether an option's value must never be shown: 'url' for a transport URL (its passwords), 'plain' for the whole value. */
export function secretKind(section: string, key: string): 'url' | 'plain' | null {
  const k = key.toLowerCase();
  if (k.includes('password') || k.includes('secret')) return 'plain';
  if (k.endsWith('transport_url') || k === 'messaging_urls') return 'url';
  return ZED_SECRETS.has(`${section}.${key}`) ? 'plain' : null;
}

/** The value as it may be shown in messages and check-config: URLs without passwords, other secrets as ***. */
export function redactOptionValue(section: string, key: string, value: string): string {
  const kind = secretKind(section, key);
  if (kind === 'url') return redactTransportUrl(value);
  if (kind === 'plain') return value === '' ? '' : '***';
  return value;
}

// ---------------------------------------------------------------------------------------------------
// oslo.config types as zod schemas over the raw ini strings
// ---------------------------------------------------------------------------------------------------

interface OptSpec<T> {
  /** oslo's default, as it would be written in the file */
  def: string;
  /** what the value may be, for "expected <allowed>" */
  allowed: string;
  schema: z.ZodType<T>;
}

/** A field: the raw string (or the default when the option is not set) converted; undefined from convert = invalid. */
function opt<T>(def: string, allowed: string, convert: (raw: string) => T | undefined): OptSpec<T> {
  const schema = z
    .string()
    .default(def)
    .transform((raw, ctx): T => {
      const v = convert(raw);
      if (v === undefined) {
        ctx.issues.push({ code: 'custom', message: allowed, input: raw });
        return z.NEVER;
      }
      return v;
    });
  return { def, allowed, schema };
}

const TRUE = ['true', '1', 'on', 'yes'];
const FALSE = ['false', '0', 'off', 'no'];

/** oslo types.Boolean: case-insensitive true/1/on/yes, false/0/off/no. */
function bool(def: boolean): OptSpec<boolean> {
  return opt(String(def), 'a boolean: true or false (also yes/no, on/off, 1/0)', (raw) => {
    const s = raw.toLowerCase();
    if (TRUE.includes(s)) return true;
    if (FALSE.includes(s)) return false;
    return undefined;
  });
}

function bounds(kind: string, o: { min?: number; gt?: number; max?: number }): string {
  const parts: string[] = [];
  if (o.gt !== undefined) parts.push(`> ${o.gt}`);
  if (o.min !== undefined) parts.push(`>= ${o.min}`);
  if (o.max !== undefined) parts.push(`<= ${o.max}`);
  return [kind, ...parts].join(' ').replace(/ (>=?) (\S+) (<=) /, ' $1 $2 and $3 ');
}

function inBounds(n: number, o: { min?: number; gt?: number; max?: number }): boolean {
  return (o.min === undefined || n >= o.min) && (o.gt === undefined || n > o.gt) && (o.max === undefined || n <= o.max);
}

/** oslo types.Integer: Python int() of the stripped string; an empty value is the default here (oslo: None). */
function int(def: number, o: { min?: number; max?: number; unit?: string } = {}): OptSpec<number> {
  const allowed = bounds('an integer', o) + (o.unit ? ` (${o.unit})` : '');
  return opt(String(def), allowed, (raw) => {
    const s = raw.trim();
    if (s === '') return def;
    if (!/^[+-]?\d+(_\d+)*$/.test(s)) return undefined;
    const n = Number(s.replace(/_/g, ''));
    return Number.isSafeInteger(n) && inBounds(n, o) ? n : undefined;
  });
}

/** oslo types.Float: Python float() of a decimal number; an empty value is the default here. */
function float(def: number, o: { min?: number; gt?: number; unit?: string } = {}): OptSpec<number> {
  const allowed = bounds('a number', o) + (o.unit ? ` (${o.unit})` : '');
  return opt(String(def), allowed, (raw) => {
    const s = raw.trim();
    if (s === '') return def;
    if (!/^[+-]?(\d+(_\d+)*(\.(\d+(_\d+)*)?)?|\.\d+(_\d+)*)([eE][+-]?\d+(_\d+)*)?$/.test(s)) return undefined;
    const n = Number(s.replace(/_/g, ''));
    return Number.isFinite(n) && inBounds(n, o) ? n : undefined;
  });
}

function str(def: string, o: { nonEmpty?: boolean; allowed?: string } = {}): OptSpec<string> {
  return opt(def, o.allowed ?? (o.nonEmpty ? 'a non-empty string' : 'a string'), (raw) => (o.nonEmpty && raw.trim() === '' ? undefined : raw));
}

/** oslo String with choices: case-sensitive, as oslo compares them. */
function choice<C extends string>(def: C, choices: readonly C[], note = ''): OptSpec<C> {
  return opt(def, `one of ${choices.join(', ')}${note}`, (raw) => (choices as readonly string[]).includes(raw) ? (raw as C) : undefined);
}

/** oslo types.List: comma-separated, each item trimmed, a trailing comma ignored. */
function list(def: string): OptSpec<string[]> {
  return opt(def, 'a comma-separated list', (raw) => {
    const s = raw.trim().replace(/,$/, '');
    return s === '' ? [] : s.split(',').map((x) => x.trim());
  });
}

const HOSTNAME_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/** oslo types.HostAddress: an IP address or an RFC 1123 host name whose last label is not all digits. */
export function isHostAddress(s: string): boolean {
  if (isIP(s) !== 0) return true;
  if (s.length === 0 || s.length > 253) return false;
  const labels = (s.endsWith('.') ? s.slice(0, -1) : s).split('.');
  return labels.every((l) => HOSTNAME_LABEL.test(l)) && /[a-z-]/i.test(labels[labels.length - 1]!);
}

function hostAddress(def: string): OptSpec<string> {
  return opt(def, 'a host name or IP address (letters, digits, "-" and "." only)', (raw) => (isHostAddress(raw) ? raw : undefined));
}

/** `host:port`, `[v6]:port`, or ''/off/none for no listener. */
export function parseListen(raw: string): { host: string; port: number } | null | undefined {
  const s = raw.trim();
  if (s === '' || /^(off|none)$/i.test(s)) return null;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const [, v6, host4, portText = ''] = m;
  const port = Number(portText);
  if (port > 65535) return undefined;
  if (v6 !== undefined) return isIP(v6) === 6 ? { host: v6, port } : undefined;
  return host4 !== undefined && isHostAddress(host4) ? { host: host4, port } : undefined;
}

type Specs = Record<string, OptSpec<unknown>>;
type Out<S extends Specs> = { [K in keyof S]: S[K] extends OptSpec<infer T> ? T : never };

function sectionSchema<S extends Specs>(specs: S): z.ZodType<Out<S>> {
  return z.object(Object.fromEntries(Object.entries(specs).map(([k, s]) => [k, s.schema]))) as unknown as z.ZodType<Out<S>>;
}

// ---------------------------------------------------------------------------------------------------
// The sections ceilopoll reads
// ---------------------------------------------------------------------------------------------------

const LIBVIRT_TYPES: readonly LibvirtType[] = ['kvm', 'lxc', 'qemu', 'uml', 'parallels'];
const RABBIT_INT = { min: 0 } as const;

function defaultSpecs(hostname: string) {
  return {
    DEFAULT: {
      host: hostAddress(hostname),
      // Zed's choices, and parallels, which 2023.1 added
      libvirt_type: choice<LibvirtType>('kvm', LIBVIRT_TYPES),
      libvirt_uri: str(''),
      transport_url: str(''),
      control_exchange: str('ceilometer', { nonEmpty: true }),
      debug: bool(false),
    },
    oslo_messaging_notifications: {
      transport_url: str(''),
      topics: list('notifications'),
      retry: int(-1),
    },
    publisher: {
      telemetry_secret: str(DEFAULT_TELEMETRY_SECRET),
    },
    publisher_notifier: {
      telemetry_driver: choice('messagingv2', ['messagingv2', 'messaging'], ' (ceilopoll publishes only over oslo.messaging)'),
    },
    polling: {
      batch_size: int(50, { min: 0 }),
      cfg_file: str('polling.yaml', { nonEmpty: true }),
    },
    compute: {
      instance_discovery_method: choice<InstanceDiscoveryMethod>('libvirt_metadata', ['naive', 'workload_partitioning', 'libvirt_metadata']),
      resource_update_interval: int(0, { min: 0, unit: 'seconds' }),
      resource_cache_expiry: int(3600, { min: 0, unit: 'seconds' }),
    },
    oslo_messaging_rabbit: {
      ssl: bool(DEFAULT_RABBIT_OPTIONS.ssl),
      ssl_version: str(DEFAULT_RABBIT_OPTIONS.ssl_version),
      ssl_key_file: str(DEFAULT_RABBIT_OPTIONS.ssl_key_file),
      ssl_cert_file: str(DEFAULT_RABBIT_OPTIONS.ssl_cert_file),
      ssl_ca_file: str(DEFAULT_RABBIT_OPTIONS.ssl_ca_file),
      amqp_durable_queues: bool(DEFAULT_RABBIT_OPTIONS.amqp_durable_queues),
      amqp_auto_delete: bool(DEFAULT_RABBIT_OPTIONS.amqp_auto_delete),
      rabbit_ha_queues: bool(DEFAULT_RABBIT_OPTIONS.rabbit_ha_queues),
      rabbit_quorum_queue: bool(DEFAULT_RABBIT_OPTIONS.rabbit_quorum_queue),
      rabbit_quorum_delivery_limit: int(DEFAULT_RABBIT_OPTIONS.rabbit_quorum_delivery_limit, RABBIT_INT),
      rabbit_quroum_max_memory_length: int(DEFAULT_RABBIT_OPTIONS.rabbit_quroum_max_memory_length, RABBIT_INT),
      rabbit_quroum_max_memory_bytes: int(DEFAULT_RABBIT_OPTIONS.rabbit_quroum_max_memory_bytes, RABBIT_INT),
      heartbeat_timeout_threshold: int(DEFAULT_RABBIT_OPTIONS.heartbeat_timeout_threshold, { min: 0, unit: 'seconds, 0 = no heartbeat' }),
      rabbit_login_method: choice<RabbitOptions['rabbit_login_method']>(DEFAULT_RABBIT_OPTIONS.rabbit_login_method, ['PLAIN', 'AMQPLAIN', 'EXTERNAL'], ' (oslo also has RABBIT-CR-DEMO, which ceilopoll does not support)'),
      rabbit_retry_interval: int(DEFAULT_RABBIT_OPTIONS.rabbit_retry_interval, { min: 0, unit: 'seconds' }),
      rabbit_retry_backoff: int(DEFAULT_RABBIT_OPTIONS.rabbit_retry_backoff, { min: 0, unit: 'seconds' }),
      rabbit_interval_max: int(DEFAULT_RABBIT_OPTIONS.rabbit_interval_max, { min: 0, unit: 'seconds' }),
    } satisfies Record<keyof RabbitOptions, OptSpec<unknown>>,
    ceilopoll: {
      spool_path: str('/var/lib/ceilopoll/spool.sqlite', { nonEmpty: true, allowed: 'a file path' }),
      spool_max_mb: float(256, { gt: 0, unit: 'MB' }),
      spool_max_age_hours: float(72, { gt: 0, unit: 'hours' }),
      unit: choice<MemoryUnit>('MB', ['MB', 'MiB']),
      name_keys: bool(false),
      staleness_factor: float(3, { min: 1 }),
      http_listen: opt<{ host: string; port: number } | null>('127.0.0.1:9317', 'host:port or [IPv6 address]:port with a port from 0 to 65535, or off', parseListen),
      log_format: choice<'oslo' | 'json'>('oslo', ['oslo', 'json']),
      stop_timeout: float(10, { gt: 0, unit: 'seconds' }),
    },
  };
}

type AllSpecs = ReturnType<typeof defaultSpecs>;

/** The [service_credentials] keys ceilopoll reads (flavor-lookup's schema). */
const SERVICE_CREDENTIAL_KEYS: readonly string[] = Object.keys(serviceCredentialsSchema.shape);

/** Multi-valued options ceilopoll reads, with oslo's defaults. */
const MULTI_OPTIONS: Record<string, Record<string, string[]>> = {
  DEFAULT: { pollsters_definitions_dirs: ['/etc/ceilometer/pollsters.d'] },
};

/** group -> option names ceilopoll reads there (for "unknown" and "ignored"). */
function readOptionNames(specs: AllSpecs): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const [group, s] of Object.entries(specs)) out.set(group, new Set(Object.keys(s)));
  out.set('service_credentials', new Set(SERVICE_CREDENTIAL_KEYS));
  for (const [group, opts] of Object.entries(MULTI_OPTIONS)) for (const name of Object.keys(opts)) out.get(group)?.add(name);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The merged view of the files, the environment and the defaults
// ---------------------------------------------------------------------------------------------------

interface Found {
  raw: string;
  origin: OptionOrigin;
  /** the section and key it was found under (a deprecated name's, if so) */
  section: string;
  key: string;
}

function envName(group: string, name: string): string {
  return `OS_${group.toUpperCase()}__${name.toUpperCase()}`;
}

function aliasesOf(group: string, name: string): Array<[string, string]> {
  return (ZED_DEPRECATED[`${group}.${name}`] ?? []).map((a) => {
    const dot = a.indexOf('.');
    return [a.slice(0, dot), a.slice(dot + 1)];
  });
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function suggest(key: string, names: Iterable<string>): string {
  let best: string | null = null;
  let bestD = 3;
  for (const n of names) {
    const d = editDistance(key, n);
    if (d < bestD) [best, bestD] = [n, d];
  }
  return best === null ? '' : ` (did you mean ${best}?)`;
}

/** A $-reference that cannot be resolved; becomes a ConfigError against the option that holds it. */
class InterpolationProblem extends Error {}

export interface BuildContext {
  env: NodeJS.ProcessEnv;
  hostname: string;
}

/** Everything of CeilopollConfig that comes from ceilometer.conf. */
export type ConfOptions = Omit<CeilopollConfig, 'pollingFile' | 'polling' | 'pollingOptions'>;

class Evaluator {
  readonly errors: ConfigError[] = [];
  readonly warnings: string[] = [];
  readonly effective: EffectiveOption[] = [];
  private readonly warned = new Set<string>();
  /** newest file first, like oslo's namespace */
  private readonly newestFirst: IniFile[];
  readonly specs: AllSpecs;
  readonly readNames: Map<string, Set<string>>;

  constructor(
    readonly files: readonly IniFile[],
    private readonly ctx: BuildContext,
  ) {
    this.newestFirst = [...files].reverse();
    this.specs = defaultSpecs(ctx.hostname);
    this.readNames = readOptionNames(this.specs);
  }

  warnOnce(id: string, text: string): void {
    if (this.warned.has(id)) return;
    this.warned.add(id);
    this.warnings.push(text);
  }

  private lastIn(file: IniFile, section: string, key: string): IniValue | undefined {
    let found: IniValue | undefined;
    for (const v of file.values) if (v.section === section && v.key === key) found = v;
    return found;
  }

  /** The value in effect for one option before interpolation: environment, newest file (current name first), or nothing. */
  find(group: string, name: string): Found | undefined {
    const env = envName(group, name);
    const fromEnv = this.ctx.env[env];
    if (fromEnv !== undefined) return { raw: fromEnv, origin: { origin: `environment variable ${env}` }, section: group, key: name };
    const names: Array<[string, string]> = [[group, name], ...aliasesOf(group, name)];
    for (const file of this.newestFirst) {
      for (const [section, key] of names) {
        const v = this.lastIn(file, section, key);
        if (!v) continue;
        const deprecated = section !== group || key !== name;
        if (deprecated) {
          this.warnOnce(`deprecated ${section}.${key}`, `${v.file}:${v.line}: [${section}] ${key}: deprecated name, use [${group}] ${name} (oslo still reads it)`);
        }
        return {
          raw: v.value,
          origin: { origin: v.file, line: v.line, ...(deprecated ? { via: `[${section}] ${key}` } : {}) },
          section,
          key,
        };
      }
    }
    return undefined;
  }

  private isRegistered(group: string, name: string): boolean {
    return (ZED_GROUPS.get(group)?.has(name) ?? false) || (this.readNames.get(group)?.has(name) ?? false)
      || this.files.some((f) => f.values.some((v) => v.section === group && v.key === name));
  }

  private defaultRaw(group: string, name: string): string | undefined {
    const spec = (this.specs as unknown as Record<string, Record<string, OptSpec<unknown>> | undefined>)[group]?.[name];
    return spec?.def;
  }

  /**
   * oslo's `$name` / `${name}` / `${group.name}` substitution (string.Template.safe_substitute with
   * oslo's id pattern, letters, digits, "_" and "."): a name is looked up in the option's own group, then
   * [DEFAULT]; `$$` and `\$` are a literal "$"; a "$" that starts no name stays as it is. Where oslo
   * only knows registered options, a name set in the files that neither Zed nor ceilopoll knows can be
   * referenced too (it gets its unknown-option warning). Throws InterpolationProblem.
   */
  interpolate(group: string, raw: string, stack: string[]): { value: string; secret: boolean } {
    let secret = false;
    const text = raw.replace(/\\\$/g, '$$$$');
    const value = text.replace(/\$(?:(\$)|\{([_a-z][._a-z0-9]*)\}|([_a-z][._a-z0-9]*))/gi, (whole, dollar: string | undefined, braced: string | undefined, bare: string | undefined) => {
      if (dollar !== undefined) return '$';
      const ref = (braced ?? bare)!;
      const r = this.resolveRef(group, ref, stack);
      secret ||= r.secret;
      return r.value;
    });
    return { value, secret };
  }

  private resolveRef(group: string, ref: string, stack: string[]): { value: string; secret: boolean } {
    let target: [string, string] | null = null;
    const dot = ref.indexOf('.');
    if (dot >= 0) {
      const g = ref.slice(0, dot);
      const n = ref.slice(dot + 1);
      if (this.isRegistered(g, n)) target = [g, n];
    } else if (this.isRegistered(group, ref)) {
      target = [group, ref];
    } else if (this.isRegistered('DEFAULT', ref)) {
      target = ['DEFAULT', ref];
    }
    if (target === null) {
      const where = dot >= 0 ? `[${ref.slice(0, dot)}] ${ref.slice(dot + 1)}` : group === 'DEFAULT' ? `[DEFAULT] ${ref}` : `[${group}] ${ref} or [DEFAULT] ${ref}`;
      const head = ref.slice(0, dot);
      const hint = dot >= 0 && (this.isRegistered(group, head) || this.isRegistered('DEFAULT', head))
        ? `; oslo reads "$${ref}" as option ${ref.slice(dot + 1)} of group ${head}: write \${${head}}${ref.slice(dot)}`
        : '; write $$ for a literal "$"';
      throw new InterpolationProblem(`refers to $${ref}, but there is no option ${where}${hint}`);
    }
    const [g, n] = target;
    const id = `${g}.${n}`;
    if (stack.includes(id)) throw new InterpolationProblem(`refers to itself through ${[...stack, id].map((s) => `$${s}`).join(' -> ')}`);
    const found = this.find(g, n);
    const secret = secretKind(g, n) !== null;
    if (found) {
      const inner = this.interpolate(g, found.raw, [...stack, id]);
      return { value: inner.value, secret: secret || inner.secret };
    }
    const def = this.defaultRaw(g, n) ?? this.multiDefault(g, n);
    if (def === undefined) {
      throw new InterpolationProblem(`refers to $${ref}: [${g}] ${n} is not set, and ceilopoll does not know its default (it does not read that option); set it`);
    }
    return { value: def, secret };
  }

  private multiDefault(group: string, name: string): string | undefined {
    return MULTI_OPTIONS[group]?.[name]?.join(',');
  }

  /** One option's effective raw string (interpolated) and its origin; undefined when unset or broken (error recorded). */
  value(group: string, name: string): { value: string; found: Found } | undefined {
    const found = this.find(group, name);
    if (!found) return undefined;
    try {
      return { value: this.interpolate(group, found.raw, [`${group}.${name}`]).value, found };
    } catch (err) {
      if (!(err instanceof InterpolationProblem)) throw err;
      this.errors.push(this.error(found, { value: found.raw, problem: err.message }));
      return undefined;
    }
  }

  error(found: Found, init: { value?: string; allowed?: string; problem?: string }): ConfigError {
    return new ConfigError({
      file: found.origin.origin,
      ...(found.origin.line !== undefined ? { line: found.origin.line } : {}),
      section: found.section,
      key: found.key,
      ...(init.value !== undefined ? { value: redactOptionValue(found.section, found.key, init.value) } : {}),
      ...(init.allowed !== undefined ? { allowed: init.allowed } : {}),
      ...(init.problem !== undefined ? { problem: init.problem } : {}),
    });
  }

  /**
   * One section through its zod schema. Failed fields are reported; the others are still returned
   * (`ok` false), so that what depends on them only (polling.yaml, transport_url) is checked too.
   */
  section<S extends Specs>(group: string, specs: S): { ok: boolean; data: Partial<Out<S>> } {
    const input: Record<string, string> = {};
    const found = new Map<string, { value: string; found: Found }>();
    for (const name of Object.keys(specs)) {
      const v = this.value(group, name);
      if (v === undefined) continue;
      input[name] = v.value;
      found.set(name, v);
    }
    const result = sectionSchema(specs).safeParse(input);
    let data: Partial<Out<S>>;
    if (result.success) {
      data = result.data;
    } else {
      const failed = new Set<string>();
      for (const issue of result.error.issues) {
        const name = String(issue.path[0]);
        failed.add(name);
        const f = found.get(name);
        if (!f) {
          // a default that does not validate: [DEFAULT] host from this machine's name
          this.errors.push(new ConfigError({
            file: DEFAULT_ORIGIN,
            section: group,
            key: name,
            value: specs[name]?.def ?? '',
            problem: `expected ${issue.message}; the default does not do here, set [${group}] ${name}`,
          }));
          continue;
        }
        const expanded = f.value !== f.found.raw && secretKind(f.found.section, f.found.key) === null && !this.touchesSecret(group, f.found.raw)
          ? `; "${f.found.raw}" expands to ${JSON.stringify(f.value)}` : '';
        this.errors.push(this.error(f.found, {
          value: f.found.raw,
          allowed: issue.message,
          ...(expanded !== '' ? { problem: `expected ${issue.message}${expanded}` } : {}),
        }));
      }
      const partial: Record<string, unknown> = {};
      for (const [name, spec] of Object.entries(specs)) {
        if (!failed.has(name)) partial[name] = spec.schema.parse(input[name]);
      }
      data = partial as Partial<Out<S>>;
    }
    for (const name of Object.keys(specs)) {
      if (!(name in data)) continue;
      const f = found.get(name);
      this.effective.push({
        section: group,
        key: name,
        value: redactOptionValue(group, name, display((data as Record<string, unknown>)[name])),
        ...(f ? f.found.origin : { origin: DEFAULT_ORIGIN }),
      });
    }
    return { ok: result.success, data };
  }

  private touchesSecret(group: string, raw: string): boolean {
    try {
      return this.interpolate(group, raw, []).secret;
    } catch {
      return true;
    }
  }

  /** A multi-valued option: every value of every file, oldest first (oslo), else the default. */
  multi(group: string, name: string, def: string[]): string[] {
    const out: string[] = [];
    let last: IniValue | undefined;
    for (const file of this.files) {
      for (const v of file.values) {
        if (v.section !== group || v.key !== name) continue;
        try {
          out.push(this.interpolate(group, v.value, [`${group}.${name}`]).value);
        } catch (err) {
          if (!(err instanceof InterpolationProblem)) throw err;
          this.errors.push(this.error({ raw: v.value, origin: { origin: v.file, line: v.line }, section: group, key: name }, { value: v.value, problem: err.message }));
        }
        last = v;
      }
    }
    const values = last ? out : def;
    this.effective.push({
      section: group,
      key: name,
      value: values.join(', '),
      ...(last ? { origin: last.file, line: last.line } : { origin: DEFAULT_ORIGIN }),
    });
    return values;
  }

  serviceCredentials(): ServiceCredentials | null {
    const group = 'service_credentials';
    const input: Record<string, string> = {};
    const found = new Map<string, Found>();
    for (const name of SERVICE_CREDENTIAL_KEYS) {
      const v = this.value(group, name);
      if (v === undefined) continue;
      input[name] = v.value;
      found.set(name, v.found);
    }
    const authUrl = found.get('auth_url');
    if (!authUrl || (input.auth_url ?? '').trim() === '') {
      const set = [...found.values()].find((f) => f.origin.origin !== DEFAULT_ORIGIN);
      if (set) {
        this.warnOnce('service_credentials without auth_url', `${set.origin.origin}${set.origin.line !== undefined ? `:${set.origin.line}` : ''}: [service_credentials] has no auth_url: ceilopoll does not ask Nova for flavor ids, flavor.id is the flavor name`);
      }
      if (this.find(group, 'auth_section')) {
        this.warnOnce('auth_section', `[service_credentials] auth_section is set: ceilopoll reads credentials from [service_credentials] only`);
      }
      return null;
    }
    const result = serviceCredentialsSchema.safeParse(input);
    if (!result.success) {
      for (const issue of result.error.issues) {
        const name = String(issue.path[0] ?? 'auth_url');
        const f = found.get(name);
        this.errors.push(f
          ? this.error(f, { value: input[name] ?? '', problem: issue.message })
          : this.error({ ...authUrl, key: name, section: group }, { problem: `${issue.message} (auth_url is set)` }));
      }
      return null;
    }
    for (const [name, f] of found) {
      this.effective.push({ section: group, key: name, value: redactOptionValue(group, name, input[name] ?? ''), ...f.origin });
    }
    return result.data;
  }

  /** Warnings for unknown sections and options; the list of options Zed knows and ceilopoll ignores. */
  unknownAndIgnored(): IgnoredOption[] {
    const ignored: IgnoredOption[] = [];
    const aliasReads = new Set<string>();
    for (const [group, names] of this.readNames) {
      for (const name of names) for (const [g, n] of aliasesOf(group, name)) aliasReads.add(`${g}.${n}`);
    }
    const seen = new Set<string>();
    for (const file of this.files) {
      for (const s of file.sections) {
        if (ZED_GROUPS.has(s.name) || this.readNames.has(s.name)) continue;
        const count = new Set(this.files.flatMap((f) => f.values.filter((v) => v.section === s.name).map((v) => v.key))).size;
        this.warnOnce(`section ${s.name}`, `${file.file}:${s.line}: [${s.name}]: unknown section, ignored: neither Zed's Ceilometer nor ceilopoll has options in it${count > 0 ? ` (${count} option${count === 1 ? '' : 's'} set there)` : ''}`);
      }
      for (const v of file.values) {
        const id = `${v.section}.${v.key}`;
        if (seen.has(id)) continue;
        seen.add(id);
        const zedNames = ZED_GROUPS.get(v.section);
        const ours = this.readNames.get(v.section);
        if (!zedNames && !ours) continue; // the unknown section's warning covers it
        const read = (ours?.has(v.key) ?? false) || aliasReads.has(id);
        if (read) continue;
        if (zedNames?.has(v.key) && v.section !== 'ceilopoll') {
          ignored.push({ file: v.file, line: v.line, section: v.section, key: v.key });
          continue;
        }
        const known = new Set([...(zedNames ?? []), ...(ours ?? [])]);
        const why = v.section === 'ceilopoll'
          ? `[ceilopoll] has ${[...(ours ?? [])].join(', ')}`
          : `neither Zed's Ceilometer nor ceilopoll has it in [${v.section}]`;
        this.warnOnce(`option ${id}`, `${v.file}:${v.line}: [${v.section}] ${v.key}: unknown option, ignored: ${why}${suggest(v.key, known)}`);
      }
    }
    return ignored;
  }
}

/** Effective values as check-config prints them. */
function display(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map(String).join(', ');
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  const { host, port } = v as { host: string; port: number };
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The libvirt URI Ceilometer uses for a libvirt_type when libvirt_uri is empty. */
export function libvirtUriForType(type: LibvirtType): string {
  switch (type) {
    case 'lxc':
      return 'lxc:///';
    case 'uml':
      return 'uml:///system';
    case 'parallels':
      return 'parallels:///system';
    default:
      return 'qemu:///system';
  }
}

export interface BuildResult {
  options: ConfOptions | null;
  errors: ConfigError[];
  warnings: string[];
  /** the notification transport URL, the [oslo_messaging_rabbit] options and where the URL was set (null: those options are bad) */
  transport: { url: string; rabbit: RabbitOptions; origin: { section: string; key: string; origin: OptionOrigin } | null } | null;
  /** [polling] cfg_file and where it was set, even when other sections failed (so polling.yaml is checked too) */
  pollingCfgFile: { name: string; origin: OptionOrigin } | null;
  /** [DEFAULT] pollsters_definitions_dirs */
  pollstersDefinitionsDirs: string[];
  /** the options that could be evaluated, with their origins */
  effective: EffectiveOption[];
}

/** Evaluates every option ceilopoll reads over the parsed files. Never throws for a bad value: it reports. */
export function buildOptions(files: readonly IniFile[], ctx: BuildContext): BuildResult {
  const e = new Evaluator(files, ctx);
  const s = e.specs;
  const defaults = e.section('DEFAULT', s.DEFAULT);
  const pollstersDirs = e.multi('DEFAULT', 'pollsters_definitions_dirs', MULTI_OPTIONS.DEFAULT!.pollsters_definitions_dirs!);
  const notifs = e.section('oslo_messaging_notifications', s.oslo_messaging_notifications);
  const publishers = e.section('publisher', s.publisher);
  const notifiers = e.section('publisher_notifier', s.publisher_notifier);
  const pollings = e.section('polling', s.polling);
  const computes = e.section('compute', s.compute);
  const rabbits = e.section('oslo_messaging_rabbit', s.oslo_messaging_rabbit);
  const ceilopolls = e.section('ceilopoll', s.ceilopoll);
  const serviceCredentials = e.serviceCredentials();
  const ignored = e.unknownAndIgnored();

  // what polling.yaml and the transport check need, even when another option is bad
  let transport: BuildResult['transport'] = null;
  const notifUrl = notifs.data.transport_url;
  const defaultUrl = defaults.data.transport_url;
  if (notifUrl !== undefined && defaultUrl !== undefined && rabbits.ok) {
    const urlFound = notifUrl ? e.find('oslo_messaging_notifications', 'transport_url') : defaultUrl ? e.find('DEFAULT', 'transport_url') : undefined;
    transport = {
      url: notificationTransportUrl({ notificationsTransportUrl: notifUrl, defaultTransportUrl: defaultUrl }),
      rabbit: rabbits.data as RabbitOptions,
      origin: urlFound ? { section: urlFound.section, key: urlFound.key, origin: urlFound.origin } : null,
    };
  }
  const cfgFileEntry = e.effective.find((o) => o.section === 'polling' && o.key === 'cfg_file');
  const pollingCfgFile = pollings.data.cfg_file !== undefined && cfgFileEntry
    ? { name: pollings.data.cfg_file, origin: { origin: cfgFileEntry.origin, ...(cfgFileEntry.line !== undefined ? { line: cfgFileEntry.line } : {}) } }
    : null;
  const partial = { errors: e.errors, warnings: e.warnings, transport, pollingCfgFile, pollstersDefinitionsDirs: pollstersDirs, effective: e.effective };

  const sections = [defaults, notifs, publishers, notifiers, pollings, computes, rabbits, ceilopolls];
  if (!sections.every((x) => x.ok) || transport === null) return { options: null, ...partial };
  const def = defaults.data as Out<AllSpecs['DEFAULT']>;
  const notif = notifs.data as Out<AllSpecs['oslo_messaging_notifications']>;
  const publisher = publishers.data as Out<AllSpecs['publisher']>;
  const notifier = notifiers.data as Out<AllSpecs['publisher_notifier']>;
  const polling = pollings.data as Out<AllSpecs['polling']>;
  const compute = computes.data as Out<AllSpecs['compute']>;
  const ceilopoll = ceilopolls.data as Out<AllSpecs['ceilopoll']>;

  const libvirtUriFromType = def.libvirt_uri === '';
  const libvirtUri = libvirtUriFromType ? libvirtUriForType(def.libvirt_type) : def.libvirt_uri;
  const uriEntry = e.effective.find((o) => o.section === 'DEFAULT' && o.key === 'libvirt_uri');
  if (uriEntry && libvirtUriFromType) uriEntry.note = `from libvirt_type ${def.libvirt_type}: ${libvirtUri}`;

  const urlEntry = e.effective.find((o) => o.section === (notif.transport_url ? 'oslo_messaging_notifications' : 'DEFAULT') && o.key === 'transport_url');
  if (urlEntry) urlEntry.note = notif.transport_url || def.transport_url ? 'the notification transport' : "unset: oslo's rabbit://, guest on localhost:5672";
  const secretEntry = e.effective.find((o) => o.section === 'publisher' && o.key === 'telemetry_secret');
  if (secretEntry && publisher.telemetry_secret === DEFAULT_TELEMETRY_SECRET) {
    secretEntry.note = "Ceilometer's well-known default; it must equal the notification agent's";
  }

  const options: ConfOptions = {
    files: files.map((f) => f.file),
    host: def.host,
    libvirtType: def.libvirt_type,
    libvirtUri,
    libvirtUriFromType,
    transportUrl: transport.url,
    controlExchange: def.control_exchange,
    topics: notif.topics,
    notificationRetry: notif.retry,
    telemetryDriver: notifier.telemetry_driver,
    batchSize: polling.batch_size,
    pollingCfgFile: polling.cfg_file,
    telemetrySecret: publisher.telemetry_secret,
    rabbit: transport.rabbit,
    compute: {
      instanceDiscoveryMethod: compute.instance_discovery_method,
      resourceUpdateInterval: compute.resource_update_interval,
      resourceCacheExpiry: compute.resource_cache_expiry,
    },
    serviceCredentials,
    debug: def.debug,
    ceilopoll: {
      spoolPath: ceilopoll.spool_path,
      spoolMaxMb: ceilopoll.spool_max_mb,
      spoolMaxAgeHours: ceilopoll.spool_max_age_hours,
      unit: ceilopoll.unit,
      nameKeys: ceilopoll.name_keys,
      stalenessFactor: ceilopoll.staleness_factor,
      httpListen: ceilopoll.http_listen,
      logFormat: ceilopoll.log_format,
      stopTimeout: ceilopoll.stop_timeout,
    },
    pollstersDefinitionsDirs: pollstersDirs,
    effective: e.effective,
    ignored,
    warnings: e.warnings,
  };
  return { options, ...partial };
}
