// flavor.id for libvirt-discovered instances: the id Nova gives the flavor *name* found in the domain
// metadata, as Ceilometer Zed (19) did it (ceilometer-wire.md §2.2 item 6). Zed's
// `InstanceDiscovery.get_flavor_id` calls `nova.flavors.find(name=…, is_public=None).id` through a
// keystoneauth session built from [service_credentials]; novaclient (zed-eom) turns that into
//
//   POST {auth_url}/auth/tokens                          Keystone v3 password auth (keystoneauth)
//   GET  {compute endpoint}/flavors?is_public=None       brief list (find() with `name` → detailed=False)
//   GET  {compute endpoint}/flavors/{id}                 one show per exact-name match (findall())
//
// with `X-Auth-Token` and `X-OpenStack-Nova-API-Version: 2.1` (novaclient APIVersion('2.1')). No match
// → NotFound → Zed uses the name; any other error (Keystone down, 5xx, two flavors with one name →
// NoUniqueMatch) killed that whole discovery cycle in Zed. Here every failure falls back to the name,
// is reported once per kind, and never makes a caller wait longer than the timeout.
//
// The `<flavor id="…">` attribute newer Novas write is the caller's business: it never gets here.

import { readFile } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

import axios, { type AxiosInstance } from 'axios';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------------
// [service_credentials]
// ---------------------------------------------------------------------------------------------------

/** oslo.config BoolOpt spellings (case-insensitive), so raw ini strings can be parsed here. */
const OSLO_TRUE = new Set(['true', '1', 'on', 'yes', 'y', 't']);
const OSLO_FALSE = new Set(['false', '0', 'off', 'no', 'n', 'f']);

function osloBool(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  const s = v.trim().toLowerCase();
  if (OSLO_TRUE.has(s)) return true;
  if (OSLO_FALSE.has(s)) return false;
  return v;
}

/** oslo treats `key =` as an empty string; keystoneauth treats that as unset. */
function emptyToUndefined(v: unknown): unknown {
  return typeof v === 'string' && v.trim() === '' ? undefined : v;
}

const optionalString = z.preprocess(emptyToUndefined, z.string().optional()).optional();

/**
 * Ceilometer's `[service_credentials] interface` choices (keystone_client.py CLI_OPTS); keystoneauth
 * strips the legacy `URL` suffix. `auth` (use the auth_url itself) makes no sense for Nova and is
 * refused here rather than failing every lookup.
 */
const INTERFACES = ['public', 'internal', 'admin'] as const;
export type EndpointInterface = (typeof INTERFACES)[number];

const interfaceSchema = z
  .preprocess(
    (v) => (typeof v === 'string' ? v.trim().replace(/URL$/, '') : v),
    z.enum(INTERFACES, {
      error: 'interface must be one of public, internal, admin (or publicURL, internalURL, adminURL)',
    }),
  )
  .default('public');

/**
 * `[service_credentials]` as keystoneauth's password plugin reads it (`auth_type = password`, the
 * generic plugin, or `v3password`), plus the session options Ceilometer registers. Values may be the
 * raw ini strings: booleans and numbers are coerced the way oslo.config does.
 *
 * Defaults that differ from keystoneauth, on purpose:
 * - with no user/project domain and no default_domain_*, keystoneauth sends no domain and Keystone
 *   refuses the request; here the domain named `Default` (Keystone's stock domain) is used;
 * - keystoneauth's `timeout` defaults to none (wait forever); the resolver uses 10 s.
 */
export const serviceCredentialsSchema = z
  .object({
    auth_type: z
      .preprocess(emptyToUndefined, z.enum(['password', 'v3password'], {
        error: 'only auth_type = password (Keystone v3 password authentication) is supported',
      }))
      .default('password'),
    auth_url: z.preprocess(
      emptyToUndefined,
      z.url({ protocol: /^https?$/, error: 'auth_url must be an http(s) URL such as http://keystone:5000/v3' }),
    ),
    username: optionalString,
    user_id: optionalString,
    password: z.string({ error: 'password is required' }),
    user_domain_name: optionalString,
    user_domain_id: optionalString,
    project_name: optionalString,
    project_id: optionalString,
    project_domain_name: optionalString,
    project_domain_id: optionalString,
    default_domain_name: optionalString,
    default_domain_id: optionalString,
    region_name: optionalString,
    interface: interfaceSchema,
    cafile: optionalString,
    certfile: optionalString,
    keyfile: optionalString,
    insecure: z.preprocess(osloBool, z.boolean({ error: 'insecure must be true or false' })).default(false),
    /** seconds, per HTTP request (keystoneauth session option) */
    timeout: z
      .preprocess(
        (v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : emptyToUndefined(v)),
        z.number({ error: 'timeout must be a number of seconds' }).positive().optional(),
      )
      .optional(),
  })
  .check((ctx) => {
    const c = ctx.value;
    if (c.username === undefined && c.user_id === undefined) {
      ctx.issues.push({ code: 'custom', input: c, path: ['username'], message: 'username or user_id is required' });
    }
    if (c.project_name === undefined && c.project_id === undefined) {
      ctx.issues.push({
        code: 'custom',
        input: c,
        path: ['project_name'],
        message: 'project_name or project_id is required (Nova needs a project-scoped token)',
      });
    }
  });

export type ServiceCredentials = z.output<typeof serviceCredentialsSchema>;
export type ServiceCredentialsInput = z.input<typeof serviceCredentialsSchema>;

// ---------------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------------

/** Why flavor.id is the flavor name rather than a Nova id. */
export type FallbackReason =
  /** Nova has no flavor of that name (Zed behaves the same) */
  | 'not-found'
  /** two or more flavors share the name (Zed: NoUniqueMatch, discovery failed) */
  | 'duplicate-name'
  /** Keystone/Nova failed this time; reported through onReport */
  | 'lookup-failed'
  /** a recent failure: no request is made until `retryAfterFailureMs` has passed */
  | 'backoff'
  /** the lookup took longer than the timeout; it goes on and fills the cache if it succeeds */
  | 'deadline'
  /** no [service_credentials] */
  | 'not-configured'
  /** close() was called */
  | 'closed';

export type FlavorIdResult =
  | { id: string; source: 'nova' }
  | { id: string; source: 'fallback-name'; reason: FallbackReason };

export type FlavorLookupFailureKind =
  | 'keystone-unreachable'
  | 'keystone-timeout'
  /** 401/403: wrong [service_credentials] */
  | 'keystone-rejected'
  | 'keystone-http-error'
  | 'keystone-bad-response'
  /** the token's catalog has no endpoint for the service type / interface / region */
  | 'no-compute-endpoint'
  | 'nova-unreachable'
  | 'nova-timeout'
  /** 401 again after one re-authentication */
  | 'nova-unauthorized'
  | 'nova-http-error'
  | 'nova-bad-response'
  | 'duplicate-flavor-name'
  /** cafile/certfile/keyfile could not be read */
  | 'tls-config'
  | 'unexpected';

export interface FlavorLookupReport {
  level: 'warning' | 'info';
  /** 'recovered': lookups work again after failures were reported */
  kind: FlavorLookupFailureKind | 'recovered';
  /** for people; never holds the password or a token */
  message: string;
  /** the flavor name, for 'duplicate-flavor-name' */
  flavorName?: string;
}

export interface FlavorIdResolverOptions {
  /** undefined: every lookup falls back to the name ('not-configured') */
  credentials: ServiceCredentials | undefined;
  /** Ceilometer `[service_types] nova`; default 'compute' */
  serviceType?: string;
  /** per HTTP request, and the longest a resolve() waits; default credentials.timeout, else 10 s */
  timeoutMs?: number;
  /** LRU bound; default 4096 like Zed's cachetools.LRUCache */
  cacheMax?: number;
  /** how long an id found in Nova is kept; default forever (Zed) */
  foundTtlMs?: number;
  /** how long "no such flavor" / "duplicate name" is kept; default 10 min (Zed kept it forever) */
  notFoundTtlMs?: number;
  /** after a Keystone/Nova failure, uncached names fall back at once for this long; default 30 s */
  retryAfterFailureMs?: number;
  /** warnings (once per failure kind until a lookup succeeds again) and the recovery notice */
  onReport?: (report: FlavorLookupReport) => void;
  /** wall clock in ms (token expiry, cache TTLs, backoff); default Date.now */
  now?: () => number;
  /** User-Agent; default 'ceilopoll' */
  userAgent?: string;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_CACHE_MAX = 4096;
export const DEFAULT_NOT_FOUND_TTL_MS = 10 * 60_000;
export const DEFAULT_RETRY_AFTER_FAILURE_MS = 30_000;
/** keystoneauth BaseIdentityPlugin.MIN_TOKEN_LIFE_SECONDS: re-authenticate this long before expiry */
export const TOKEN_REFRESH_MARGIN_MS = 120_000;
/** novaclient sends APIVersion('2.1') as the legacy header (minor < 27) */
export const NOVA_API_VERSION = '2.1';
/** Nova pages flavor lists at [api] max_limit (1000); Zed read only the first page */
const MAX_FLAVOR_PAGES = 100;
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------------
// Wire shapes (Keystone v3 identity API, Nova compute API 2.1)
// ---------------------------------------------------------------------------------------------------

const catalogEndpointSchema = z.object({
  interface: z.string(),
  region: z.string().nullish(),
  region_id: z.string().nullish(),
  url: z.string(),
});

const tokenBodySchema = z.object({
  token: z.object({
    expires_at: z.string(),
    issued_at: z.string().optional(),
    catalog: z
      .array(z.object({ type: z.string(), name: z.string().optional(), endpoints: z.array(catalogEndpointSchema) }))
      .default([]),
  }),
});

type CatalogEntry = z.output<typeof tokenBodySchema>['token']['catalog'][number];

const flavorListSchema = z.object({
  flavors: z.array(z.object({ id: z.string(), name: z.string() })),
  flavors_links: z.array(z.object({ rel: z.string(), href: z.string() })).optional(),
});

const flavorShowSchema = z.object({ flavor: z.object({ id: z.string(), name: z.string() }) });

// ---------------------------------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------------------------------

class LookupFailure extends Error {
  constructor(
    readonly kind: FlavorLookupFailureKind,
    message: string,
  ) {
    super(message);
    this.name = 'LookupFailure';
  }
}

interface Token {
  value: string;
  /** local clock: re-authenticate from here on */
  refreshAt: number;
  /** undefined: the catalog has no matching endpoint; `endpointProblem` says why */
  computeUrl: string | undefined;
  endpointProblem: string;
}

interface HttpResult {
  status: number;
  text: string;
  header(name: string): string | undefined;
}

interface CacheEntry {
  result: FlavorIdResult;
  expiresAt: number;
}

type Outcome = { kind: 'found'; id: string } | { kind: 'not-found' } | { kind: 'duplicate'; ids: string[] };

type Service = 'keystone' | 'nova';

/** scheme://host:port/path, without userinfo or query, for messages */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<invalid URL>';
  }
}

/** `{auth_url}/auth/tokens`: keystoneauth would first GET auth_url for version discovery; we go by path. */
export function keystoneTokensUrl(authUrl: string): string {
  const u = new URL(authUrl);
  const path = u.pathname.replace(/\/+$/, '');
  u.pathname = /\/v3$/i.test(path) ? `${path}/auth/tokens` : `${path}/v3/auth/tokens`;
  u.search = '';
  u.hash = '';
  return u.toString();
}

/**
 * The catalog endpoint keystoneauth would choose (api-sig "Consuming Service Catalog"): entries of the
 * service type, endpoints of the interface, region matching `region` or `region_id` when one is
 * configured, first one wins.
 */
export function selectEndpoint(
  catalog: readonly CatalogEntry[],
  serviceType: string,
  iface: EndpointInterface,
  region: string | undefined,
): { url: string } | { problem: string } {
  const services = catalog.filter((s) => s.type === serviceType);
  if (services.length === 0) {
    const types = [...new Set(catalog.map((s) => s.type))].sort().join(', ') || 'none';
    return { problem: `the catalog has no service of type "${serviceType}" (types present: ${types})` };
  }
  const endpoints = services.flatMap((s) => s.endpoints);
  const byInterface = endpoints.filter((e) => e.interface === iface);
  if (byInterface.length === 0) {
    const found = [...new Set(endpoints.map((e) => e.interface))].sort().join(', ') || 'none';
    return { problem: `no "${serviceType}" endpoint has interface "${iface}" (interfaces present: ${found})` };
  }
  const chosen =
    region === undefined ? byInterface[0] : byInterface.find((e) => e.region_id === region || e.region === region);
  if (chosen === undefined) {
    const regions = [...new Set(byInterface.map((e) => e.region_id ?? e.region ?? '(none)'))].sort().join(', ');
    return {
      problem: `no "${serviceType}" ${iface} endpoint is in region "${region ?? ''}" (regions present: ${regions})`,
    };
  }
  return { url: chosen.url };
}

/** Keystone v3 password-method request body (identity API v3 "Password authentication with scoped authorization"). */
export function keystoneAuthBody(c: ServiceCredentials): unknown {
  const defaultDomain =
    c.default_domain_id !== undefined
      ? { id: c.default_domain_id }
      : { name: c.default_domain_name ?? 'Default' };
  const domain = (id: string | undefined, name: string | undefined): { id: string } | { name: string } =>
    id !== undefined ? { id } : name !== undefined ? { name } : defaultDomain;

  const user =
    c.user_id !== undefined
      ? { id: c.user_id, password: c.password }
      : { name: c.username, domain: domain(c.user_domain_id, c.user_domain_name), password: c.password };
  const project =
    c.project_id !== undefined
      ? { id: c.project_id }
      : { name: c.project_name, domain: domain(c.project_domain_id, c.project_domain_name) };
  return {
    auth: {
      identity: { methods: ['password'], password: { user } },
      scope: { project },
    },
  };
}

function markerFromHref(href: string): string | undefined {
  try {
    return new URL(href, 'http://placeholder/').searchParams.get('marker') ?? undefined;
  } catch {
    return undefined;
  }
}

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

const TIMEOUT_CODES = new Set(['ECONNABORTED', 'ETIMEDOUT']);

// ---------------------------------------------------------------------------------------------------
// The resolver
// ---------------------------------------------------------------------------------------------------

/**
 * Flavor name → Nova flavor id, with the name as the fallback. resolve() never rejects and never waits
 * longer than the timeout.
 */
export class FlavorIdResolver {
  private readonly creds: ServiceCredentials | undefined;
  private readonly serviceType: string;
  readonly timeoutMs: number;
  private readonly foundTtlMs: number;
  private readonly notFoundTtlMs: number;
  private readonly retryAfterFailureMs: number;
  private readonly onReport: (report: FlavorLookupReport) => void;
  private readonly now: () => number;
  private readonly userAgent: string;
  private readonly tokensUrl: string | undefined;

  private readonly cache: LRUCache<string, CacheEntry>;
  private readonly inflight = new Map<string, Promise<FlavorIdResult>>();
  private token: Token | undefined;
  private tokenInFlight: Promise<Token> | undefined;
  /** every token we were given, newest last, to scrub from messages */
  private readonly secrets: string[] = [];
  private backoffUntil = Number.NEGATIVE_INFINITY;
  /** report keys already emitted: a failure kind, or `duplicate-flavor-name\0<name>` */
  private readonly reported = new Set<string>();
  private httpPromise: Promise<AxiosInstance> | undefined;
  private agents: { http?: HttpAgent; https?: HttpsAgent } = {};
  private closed = false;

  constructor(options: FlavorIdResolverOptions) {
    this.creds = options.credentials;
    this.serviceType = options.serviceType ?? 'compute';
    const credTimeout = this.creds?.timeout;
    this.timeoutMs = options.timeoutMs ?? (credTimeout !== undefined ? credTimeout * 1000 : DEFAULT_TIMEOUT_MS);
    this.foundTtlMs = options.foundTtlMs ?? Number.POSITIVE_INFINITY;
    this.notFoundTtlMs = options.notFoundTtlMs ?? DEFAULT_NOT_FOUND_TTL_MS;
    this.retryAfterFailureMs = options.retryAfterFailureMs ?? DEFAULT_RETRY_AFTER_FAILURE_MS;
    this.onReport = options.onReport ?? (() => undefined);
    this.now = options.now ?? Date.now;
    this.userAgent = options.userAgent ?? 'ceilopoll';
    // TTLs are checked against the injected clock (lru-cache's own TTL clock is not meant to be swapped
    // in production); the LRU only bounds the size.
    this.cache = new LRUCache<string, CacheEntry>({ max: options.cacheMax ?? DEFAULT_CACHE_MAX });
    if (this.creds !== undefined) {
      this.secrets.push(this.creds.password);
      this.tokensUrl = keystoneTokensUrl(this.creds.auth_url);
    }
  }

  /** The Nova id of the flavor named `flavorName`, or the name itself with the reason. Never rejects. */
  async resolve(flavorName: string): Promise<FlavorIdResult> {
    if (this.creds === undefined) return fallback(flavorName, 'not-configured');
    const cached = this.cached(flavorName);
    if (cached !== undefined) return cached;
    if (this.closed) return fallback(flavorName, 'closed');

    let pending = this.inflight.get(flavorName);
    if (pending === undefined) {
      if (this.now() < this.backoffUntil) return fallback(flavorName, 'backoff');
      pending = this.lookup(flavorName).finally(() => this.inflight.delete(flavorName));
      this.inflight.set(flavorName, pending);
    }
    return this.withinDeadline(pending, flavorName);
  }

  /** Drops the cached ids and the token (e.g. on SIGHUP); in-flight lookups still complete. */
  clear(): void {
    this.cache.clear();
    this.token = undefined;
    this.backoffUntil = Number.NEGATIVE_INFINITY;
  }

  /** Frees the keep-alive sockets. Later resolve() calls answer from the cache or fall back. */
  close(): void {
    this.closed = true;
    this.agents.http?.destroy();
    this.agents.https?.destroy();
    this.agents = {};
  }

  // -- cache ------------------------------------------------------------------------------------------

  private cached(name: string): FlavorIdResult | undefined {
    const entry = this.cache.get(name);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.cache.delete(name);
      return undefined;
    }
    return entry.result;
  }

  private remember(name: string, result: FlavorIdResult, ttlMs: number): void {
    this.cache.set(name, { result, expiresAt: this.now() + ttlMs });
  }

  private withinDeadline(pending: Promise<FlavorIdResult>, name: string): Promise<FlavorIdResult> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(fallback(name, 'deadline')), this.timeoutMs);
      timer.unref();
      void pending.then((result) => {
        clearTimeout(timer);
        resolve(result);
      });
    });
  }

  // -- one lookup (never rejects) -----------------------------------------------------------------------

  private async lookup(name: string): Promise<FlavorIdResult> {
    let outcome: Outcome;
    try {
      outcome = await this.findFlavor(name);
    } catch (err) {
      const failure =
        err instanceof LookupFailure
          ? err
          : new LookupFailure('unexpected', `flavor lookup failed unexpectedly: ${String(err)}`);
      this.backoffUntil = this.now() + this.retryAfterFailureMs;
      this.reportOnce(failure.kind, {
        level: 'warning',
        kind: failure.kind,
        message:
          `${failure.message}; flavor.id falls back to the flavor name, next Nova lookup in ` +
          `${Math.round(this.retryAfterFailureMs / 1000)} s (reported once until lookups work again)`,
      });
      return fallback(name, 'lookup-failed');
    }

    this.succeeded();
    const dupKey = `duplicate-flavor-name\0${name}`;
    switch (outcome.kind) {
      case 'found': {
        this.reported.delete(dupKey);
        const result: FlavorIdResult = { id: outcome.id, source: 'nova' };
        this.remember(name, result, this.foundTtlMs);
        return result;
      }
      case 'not-found': {
        this.reported.delete(dupKey);
        const result = fallback(name, 'not-found');
        this.remember(name, result, this.notFoundTtlMs);
        return result;
      }
      case 'duplicate': {
        this.reportOnce(dupKey, {
          level: 'warning',
          kind: 'duplicate-flavor-name',
          flavorName: name,
          message:
            `${outcome.ids.length} Nova flavors are named ${JSON.stringify(name)} (ids ${outcome.ids.join(', ')}); ` +
            'flavor.id falls back to the flavor name (Ceilometer Zed failed the whole discovery here with ' +
            'NoUniqueMatch). Rename or delete the extra flavors to fix it',
        });
        const result = fallback(name, 'duplicate-name');
        this.remember(name, result, this.notFoundTtlMs);
        return result;
      }
    }
  }

  private succeeded(): void {
    this.backoffUntil = Number.NEGATIVE_INFINITY;
    const cleared = [...this.reported].filter((k) => !k.startsWith('duplicate-flavor-name\0'));
    if (cleared.length === 0) return;
    for (const k of cleared) this.reported.delete(k);
    this.onReport({
      level: 'info',
      kind: 'recovered',
      message: `Nova flavor lookups work again (after: ${cleared.join(', ')})`,
    });
  }

  private reportOnce(key: string, report: FlavorLookupReport): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.onReport({ ...report, message: this.redact(report.message) });
  }

  private redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) if (secret !== '') out = out.split(secret).join('***');
    return out;
  }

  // -- Nova ---------------------------------------------------------------------------------------------

  /** novaclient FlavorManager.findall(name=…, is_public=None): brief list, exact name, show per match. */
  private async findFlavor(name: string): Promise<Outcome> {
    const matches: string[] = [];
    let marker: string | undefined;
    for (let page = 0; page < MAX_FLAVOR_PAGES; page++) {
      // novaclient sorts the query parameters; Zed never sent a marker (it read one page only)
      const query = marker === undefined ? '?is_public=None' : `?is_public=None&marker=${encodeURIComponent(marker)}`;
      const res = await this.novaGet(`/flavors${query}`);
      if (res.status !== 200) throw this.httpFailure('nova', res, 'GET /flavors');
      const body = this.parse('nova', res, flavorListSchema, 'the flavor list');
      for (const f of body.flavors) if (f.name === name) matches.push(f.id);
      const next = body.flavors_links?.find((l) => l.rel === 'next');
      const last = body.flavors.at(-1);
      if (next === undefined || last === undefined) break;
      const nextMarker = markerFromHref(next.href) ?? last.id;
      if (nextMarker === marker) break;
      marker = nextMarker;
    }

    if (matches.length === 0) return { kind: 'not-found' };
    if (matches.length > 1) return { kind: 'duplicate', ids: matches };
    const id = matches[0] ?? '';
    const res = await this.novaGet(`/flavors/${encodeURIComponent(id)}`);
    // deleted between the list and the show: novaclient raises NotFound, Zed uses the name
    if (res.status === 404) return { kind: 'not-found' };
    if (res.status !== 200) throw this.httpFailure('nova', res, `GET /flavors/${id}`);
    return { kind: 'found', id: this.parse('nova', res, flavorShowSchema, 'the flavor').flavor.id };
  }

  /** keystoneauth Session semantics: on 401, invalidate the token, re-authenticate once, retry once. */
  private async novaGet(pathAndQuery: string): Promise<HttpResult> {
    let token = await this.getToken();
    let res = await this.sendNova(token, pathAndQuery);
    if (res.status !== 401) return res;
    if (this.token === token) this.token = undefined;
    token = await this.getToken();
    res = await this.sendNova(token, pathAndQuery);
    if (res.status === 401) {
      throw new LookupFailure(
        'nova-unauthorized',
        `Nova answered 401 to GET ${pathAndQuery} even with a fresh Keystone token${this.serverDetail(res)}`,
      );
    }
    return res;
  }

  private sendNova(token: Token, pathAndQuery: string): Promise<HttpResult> {
    if (token.computeUrl === undefined) {
      throw new LookupFailure('no-compute-endpoint', `cannot find Nova: ${token.endpointProblem}`);
    }
    return this.send('nova', 'GET', `${token.computeUrl.replace(/\/+$/, '')}${pathAndQuery}`, {
      'X-Auth-Token': token.value,
      'X-OpenStack-Nova-API-Version': NOVA_API_VERSION,
      Accept: 'application/json',
    });
  }

  // -- Keystone -----------------------------------------------------------------------------------------

  private async getToken(): Promise<Token> {
    const current = this.token;
    if (current !== undefined && this.now() < current.refreshAt) return current;
    this.tokenInFlight ??= this.authenticate().finally(() => {
      this.tokenInFlight = undefined;
    });
    return this.tokenInFlight;
  }

  private async authenticate(): Promise<Token> {
    const creds = this.creds;
    const url = this.tokensUrl;
    if (creds === undefined || url === undefined) throw new LookupFailure('unexpected', 'no [service_credentials]');
    const res = await this.send('keystone', 'POST', url, {
      'Content-Type': 'application/json',
      Accept: 'application/json',
    }, JSON.stringify(keystoneAuthBody(creds)));

    if (res.status === 401 || res.status === 403) {
      const who = creds.user_id ?? creds.username ?? '?';
      const project = creds.project_id ?? creds.project_name ?? '?';
      throw new LookupFailure(
        'keystone-rejected',
        `Keystone at ${describeUrl(url)} refused [service_credentials] user "${who}" for project "${project}" ` +
          `(HTTP ${res.status}${this.serverDetail(res)}); check username, password, domains and project`,
      );
    }
    if (res.status !== 201 && res.status !== 200) throw this.httpFailure('keystone', res, `POST ${describeUrl(url)}`);
    const value = res.header('x-subject-token');
    if (value === undefined || value === '') {
      throw new LookupFailure('keystone-bad-response', `Keystone at ${describeUrl(url)} answered without X-Subject-Token`);
    }
    this.secrets.push(value);
    if (this.secrets.length > 8) this.secrets.splice(1, 1); // keep the password, drop the oldest token
    const body = this.parse('keystone', res, tokenBodySchema, 'the token');

    const receivedAt = this.now();
    const expires = Date.parse(body.token.expires_at);
    if (Number.isNaN(expires)) {
      throw new LookupFailure(
        'keystone-bad-response',
        `Keystone at ${describeUrl(url)} gave an unreadable expires_at ${JSON.stringify(body.token.expires_at)}`,
      );
    }
    // Lifetime from Keystone's own issued_at when present, so clock skew between us and Keystone
    // neither throws the token away at once nor keeps it past its end.
    const issued = body.token.issued_at !== undefined ? Date.parse(body.token.issued_at) : Number.NaN;
    const lifetime = Number.isNaN(issued) ? expires - receivedAt : expires - issued;
    const margin = Math.min(TOKEN_REFRESH_MARGIN_MS, Math.max(0, lifetime / 2));

    const endpoint = selectEndpoint(body.token.catalog, this.serviceType, creds.interface, creds.region_name);
    const token: Token = {
      value,
      refreshAt: receivedAt + lifetime - margin,
      computeUrl: 'url' in endpoint ? endpoint.url : undefined,
      endpointProblem: 'problem' in endpoint ? endpoint.problem : '',
    };
    this.token = token;
    return token;
  }

  // -- HTTP ---------------------------------------------------------------------------------------------

  private async send(
    service: Service,
    method: 'GET' | 'POST',
    url: string,
    headers: Record<string, string>,
    data?: string,
  ): Promise<HttpResult> {
    const http = await this.http();
    try {
      const res = await http.request<string>({ method, url, headers, data });
      const text = typeof res.data === 'string' ? res.data : String(res.data);
      return {
        status: res.status,
        text,
        header: (name) => {
          const v: unknown = res.headers[name.toLowerCase()];
          return typeof v === 'string' ? v : undefined;
        },
      };
    } catch (err) {
      const code = errorCode(err);
      const what = `${service === 'keystone' ? 'Keystone' : 'Nova'} at ${describeUrl(url)}`;
      const detail = err instanceof Error ? err.message : String(err);
      if (code !== undefined && TIMEOUT_CODES.has(code)) {
        throw new LookupFailure(`${service}-timeout`, `${what} did not answer within ${this.timeoutMs} ms`);
      }
      if (code === 'ERR_FR_MAX_CONTENT_LENGTH' || code === 'ERR_BAD_RESPONSE') {
        throw new LookupFailure(`${service}-bad-response`, `${what} sent an unusable response (${detail})`);
      }
      throw new LookupFailure(`${service}-unreachable`, `${what} is unreachable (${code ?? 'error'}: ${detail})`);
    }
  }

  private http(): Promise<AxiosInstance> {
    this.httpPromise ??= this.makeHttp();
    return this.httpPromise;
  }

  private async makeHttp(): Promise<AxiosInstance> {
    const c = this.creds;
    const read = async (what: string, path: string | undefined): Promise<Buffer | undefined> => {
      if (path === undefined) return undefined;
      try {
        return await readFile(path);
      } catch (err) {
        this.httpPromise = undefined; // try again next time: the file may appear
        throw new LookupFailure('tls-config', `cannot read [service_credentials] ${what} ${path}: ${errorCode(err) ?? String(err)}`);
      }
    };
    const [ca, cert, key] = await Promise.all([
      read('cafile', c?.cafile),
      read('certfile', c?.certfile),
      read('keyfile', c?.keyfile),
    ]);
    this.agents = {
      http: new HttpAgent({ keepAlive: true, maxSockets: 4 }),
      https: new HttpsAgent({ keepAlive: true, maxSockets: 4, ca, cert, key, rejectUnauthorized: !(c?.insecure ?? false) }),
    };
    return axios.create({
      timeout: this.timeoutMs,
      httpAgent: this.agents.http,
      httpsAgent: this.agents.https,
      headers: { 'User-Agent': this.userAgent },
      // statuses are ours to judge; bodies are parsed here so bad JSON is told apart
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(d: unknown) => d],
      // a redirect would carry X-Auth-Token to wherever it points
      maxRedirects: 0,
      maxContentLength: MAX_RESPONSE_BYTES,
    });
  }

  private parse<T>(service: Service, res: HttpResult, schema: z.ZodType<T>, what: string): T {
    const who = service === 'keystone' ? 'Keystone' : 'Nova';
    let json: unknown;
    try {
      json = JSON.parse(res.text);
    } catch {
      throw new LookupFailure(`${service}-bad-response`, `${who} sent ${what} as something other than JSON`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue === undefined ? '' : ` at ${issue.path.join('.') || '(root)'}: ${issue.message}`;
      throw new LookupFailure(`${service}-bad-response`, `${who} sent ${what} in an unexpected shape${where}`);
    }
    return parsed.data;
  }

  private httpFailure(service: Service, res: HttpResult, request: string): LookupFailure {
    const who = service === 'keystone' ? 'Keystone' : 'Nova';
    return new LookupFailure(`${service}-http-error`, `${who} answered HTTP ${res.status} to ${request}${this.serverDetail(res)}`);
  }

  /** ": <server's error message>" from Keystone's {"error":{…}} or Nova's {"<fault>":{…}}, scrubbed. */
  private serverDetail(res: HttpResult): string {
    let text = res.text;
    try {
      const body: unknown = JSON.parse(res.text);
      if (typeof body === 'object' && body !== null) {
        const inner: unknown = Object.values(body)[0];
        if (typeof inner === 'object' && inner !== null && 'message' in inner && typeof inner.message === 'string') {
          text = inner.message;
        }
      }
    } catch {
      // not JSON: keep the text
    }
    // eslint-disable-next-line no-control-regex
    const clean = this.redact(text).replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
    if (clean === '') return '';
    return `: ${clean.length > 200 ? `${clean.slice(0, 200)}…` : clean}`;
  }
}

function fallback(name: string, reason: FallbackReason): FlavorIdResult {
  return { id: name, source: 'fallback-name', reason };
}
