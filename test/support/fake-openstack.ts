// An in-process Keystone v3 + Nova (compute API 2.1) that follows the real contracts closely enough for
// the flavor-id lookup, since neither can run on this machine. The one permitted fake, at the HTTP
// boundary.
//
// Keystone (identity API v3, "Password authentication with scoped authorization"):
//   POST /v3/auth/tokens   body {"auth":{"identity":{"methods":["password"],"password":{"user":…}},
//                          "scope":{"project":…}}}; user by id, or by name + domain {id|name}; project
//                          likewise. 201 with X-Subject-Token and {"token":{expires_at, issued_at,
//                          methods, user, project, roles, catalog:[{type,name,id,endpoints:[{id,
//                          interface,region,region_id,url}]}]}}; 400 for a malformed body; 401 for
//                          wrong credentials, both as {"error":{"code","title","message"}}.
// Nova (nova/api/openstack/compute/flavors.py + views/flavors.py), under each catalog endpoint
// /compute/<label>/v2.1:
//   GET /flavors[?is_public=…&limit=…&marker=…]   {"flavors":[{id,name,links}], "flavors_links"?}
//   GET /flavors/detail[?…]                       the same with the show fields
//   GET /flavors/{id}                             {"flavor":{…}} or 404 {"itemNotFound":{…}}
// Every Nova call needs a live X-Auth-Token (else 401 with WWW-Authenticate, as keystonemiddleware
// answers). Admin callers get is_public parsed as Nova does ("None" → all flavors); others get public,
// enabled flavors only. Pages hold at most `maxLimit` flavors, sorted by id, with a "next" link when full.

import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeFlavor {
  id: string;
  name: string;
  ram?: number;
  vcpus?: number;
  disk?: number;
  ephemeral?: number;
  swap?: number;
  isPublic?: boolean;
  disabled?: boolean;
}

export interface FakeComputeEndpoint {
  /** path segment: the endpoint's URL is <server>/compute/<label>/v2.1 */
  label: string;
  interface: 'public' | 'internal' | 'admin';
  region: string;
}

export interface FakeUser {
  id: string;
  name: string;
  password: string;
  domain: { id: string; name: string };
}

export interface FakeProject {
  id: string;
  name: string;
  domain: { id: string; name: string };
}

/** A canned misbehaviour for one service. */
export interface Fault {
  /** answer with this status instead of the real answer */
  status?: number;
  /** the body sent with `status`, or in place of a successful body when `status` is unset */
  body?: string;
  /** leave out X-Subject-Token (Keystone only) */
  omitSubjectToken?: boolean;
  /** wait this long before answering */
  delayMs?: number;
  /** drop the connection without answering */
  destroy?: boolean;
}

export interface FakeOpenStackOptions {
  user?: FakeUser;
  project?: FakeProject;
  /** does the user hold the admin role (Nova then honours is_public=None) */
  admin?: boolean;
  flavors?: FakeFlavor[];
  computeEndpoints?: FakeComputeEndpoint[];
  tokenTtlSeconds?: number;
  /** Nova [api] max_limit */
  maxLimit?: number;
  /** the fake's clock (token issue and expiry), ms */
  now?: () => number;
}

export interface RecordedRequest {
  method: string;
  /** path and query, as sent */
  url: string;
  path: string;
  query: URLSearchParams;
  service: 'keystone' | 'nova' | 'other';
  /** the compute endpoint label, for Nova requests */
  endpoint?: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** what the fake answered */
  status: number;
}

/** requests received per route, whether answered normally or by a fault; 'nova-401': stale tokens refused */
export type CounterName = 'auth' | 'flavor-list' | 'flavor-detail' | 'flavor-show' | 'nova-401';

export const DEFAULT_USER: FakeUser = {
  id: 'a1b2c3d4000040008000000000000c11',
  name: 'ceilometer',
  password: 's3cret-Pa55word',
  domain: { id: 'default', name: 'Default' },
};

export const DEFAULT_PROJECT: FakeProject = {
  id: 'a1b2c3d4000040008000000000000ac7',
  name: 'service',
  domain: { id: 'default', name: 'Default' },
};

export const DEFAULT_COMPUTE_ENDPOINTS: FakeComputeEndpoint[] = [
  { label: 'public-r1', interface: 'public', region: 'RegionOne' },
  { label: 'internal-r1', interface: 'internal', region: 'RegionOne' },
  { label: 'admin-r1', interface: 'admin', region: 'RegionOne' },
  { label: 'public-r2', interface: 'public', region: 'RegionTwo' },
  { label: 'internal-r2', interface: 'internal', region: 'RegionTwo' },
];

/** devstack's stock flavors (m1.*), ids as Nova gives them */
export const STOCK_FLAVORS: FakeFlavor[] = [
  { id: '1', name: 'm1.tiny', ram: 512, vcpus: 1, disk: 1 },
  { id: '2', name: 'm1.small', ram: 2048, vcpus: 1, disk: 20 },
  { id: '3', name: 'm1.medium', ram: 4096, vcpus: 2, disk: 40 },
  { id: '4', name: 'm1.large', ram: 8192, vcpus: 4, disk: 80 },
  { id: '5', name: 'm1.xlarge', ram: 16384, vcpus: 8, disk: 160 },
];

interface IssuedToken {
  expiresAt: number;
  revoked: boolean;
}

export class FakeOpenStack {
  readonly url: string;
  readonly requests: RecordedRequest[] = [];
  flavors: FakeFlavor[];
  admin: boolean;
  maxLimit: number;
  tokenTtlSeconds: number;
  readonly user: FakeUser;
  readonly project: FakeProject;
  readonly computeEndpoints: FakeComputeEndpoint[];
  /** tokens handed out, newest last */
  readonly issuedTokens: string[] = [];
  /** called with each request before it is answered (to change state between two requests) */
  onRequest: ((request: RecordedRequest) => void) | undefined;

  private readonly tokens = new Map<string, IssuedToken>();
  private readonly counters = new Map<CounterName, number>();
  private readonly faults: Record<'keystone' | 'nova', { fault: Fault; remaining: number } | undefined> = {
    keystone: undefined,
    nova: undefined,
  };
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly now: () => number;

  private constructor(
    private readonly server: Server,
    options: FakeOpenStackOptions,
  ) {
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    this.user = options.user ?? DEFAULT_USER;
    this.project = options.project ?? DEFAULT_PROJECT;
    this.admin = options.admin ?? true;
    this.flavors = options.flavors ?? [...STOCK_FLAVORS];
    this.computeEndpoints = options.computeEndpoints ?? DEFAULT_COMPUTE_ENDPOINTS;
    this.tokenTtlSeconds = options.tokenTtlSeconds ?? 3600;
    this.maxLimit = options.maxLimit ?? 1000;
    this.now = options.now ?? Date.now;
  }

  static async start(options: FakeOpenStackOptions = {}): Promise<FakeOpenStack> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const fake = new FakeOpenStack(server, options);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => fake.handle(req, res));
    return fake;
  }

  /** what goes in [service_credentials] auth_url */
  get authUrl(): string {
    return `${this.url}/v3`;
  }

  computeUrl(label: string): string {
    return `${this.url}/compute/${label}/v2.1`;
  }

  count(name: CounterName): number {
    return this.counters.get(name) ?? 0;
  }

  /** Nova requests, in order */
  novaRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.service === 'nova');
  }

  /** Make `service` misbehave for the next `times` requests (default: until cleared). */
  setFault(service: 'keystone' | 'nova', fault: Fault | undefined, times = Number.POSITIVE_INFINITY): void {
    this.faults[service] = fault === undefined ? undefined : { fault, remaining: times };
  }

  /** Every token issued so far stops working (as after a Keystone key rotation or revocation). */
  revokeAllTokens(): void {
    for (const t of this.tokens.values()) t.revoked = true;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // -- dispatch -----------------------------------------------------------------------------------------

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', this.url);
      const record: RecordedRequest = {
        method: req.method ?? '',
        url: req.url ?? '/',
        path: url.pathname,
        query: url.searchParams,
        service: 'other',
        headers: req.headers,
        body,
        status: 0,
      };
      this.requests.push(record);
      this.onRequest?.(record);
      const send = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
        record.status = status;
        const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
        res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
        res.end(text);
      };

      const compute = /^\/compute\/([^/]+)\/v2\.1(\/.*)$/.exec(url.pathname);
      if (url.pathname === '/v3/auth/tokens') {
        record.service = 'keystone';
        this.bump('auth');
        this.withFault('keystone', res, record, (fault) => this.keystoneTokens(req, body, fault, send));
      } else if (compute !== null) {
        record.service = 'nova';
        record.endpoint = compute[1];
        const route = compute[2] ?? '/';
        if (route === '/flavors') this.bump('flavor-list');
        else if (route === '/flavors/detail') this.bump('flavor-detail');
        else if (/^\/flavors\/[^/]+$/.test(route)) this.bump('flavor-show');
        this.withFault('nova', res, record, (fault) => this.nova(req, compute[2] ?? '/', url, fault, send));
      } else {
        send(404, { error: { code: 404, title: 'Not Found', message: `no route for ${url.pathname}` } });
      }
    });
  }

  private withFault(
    service: 'keystone' | 'nova',
    res: ServerResponse,
    record: RecordedRequest,
    answer: (fault: Fault | undefined) => void,
  ): void {
    const slot = this.faults[service];
    let fault: Fault | undefined;
    if (slot !== undefined && slot.remaining > 0) {
      slot.remaining -= 1;
      fault = slot.fault;
    }
    const go = (): void => {
      if (fault?.destroy === true) {
        record.status = -1;
        res.socket?.destroy();
        return;
      }
      if (fault?.status !== undefined) {
        record.status = fault.status;
        res.writeHead(fault.status, { 'Content-Type': 'application/json' });
        res.end(fault.body ?? JSON.stringify({ error: { code: fault.status, title: 'Fault', message: 'injected' } }));
        return;
      }
      answer(fault);
    };
    if (fault?.delayMs !== undefined) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (!res.destroyed) go();
      }, fault.delayMs);
      this.timers.add(t);
    } else {
      go();
    }
  }

  private bump(name: CounterName): void {
    this.counters.set(name, this.count(name) + 1);
  }

  // -- Keystone -----------------------------------------------------------------------------------------

  private keystoneTokens(
    req: IncomingMessage,
    body: string,
    fault: Fault | undefined,
    send: (status: number, payload: unknown, headers?: Record<string, string>) => void,
  ): void {
    const badRequest = (message: string): void =>
      send(400, { error: { code: 400, title: 'Bad Request', message } });
    if (req.method !== 'POST') {
      send(405, { error: { code: 405, title: 'Method Not Allowed', message: 'use POST' } });
      return;
    }
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
      badRequest('Content-Type must be application/json');
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      badRequest('Malformed JSON in request body.');
      return;
    }
    const auth = field(parsed, 'auth');
    const identity = field(auth, 'identity');
    const methods = field(identity, 'methods');
    if (!Array.isArray(methods) || !methods.includes('password')) {
      badRequest("Invalid input for field 'identity/methods': expected a list containing 'password'");
      return;
    }
    const user = field(field(identity, 'password'), 'user');
    const password = field(user, 'password');
    if (typeof password !== 'string') {
      badRequest("Invalid input for field 'identity/password/user/password'");
      return;
    }
    const userMatch = this.matchNamed(user, this.user, 'identity/password/user');
    if (typeof userMatch === 'string') {
      badRequest(userMatch);
      return;
    }
    const project = field(field(field(auth, 'scope'), 'project'), undefined);
    if (project === undefined) {
      badRequest("Invalid input for field 'scope': this fake only issues project-scoped tokens");
      return;
    }
    const projectMatch = this.matchNamed(project, this.project, 'scope/project');
    if (typeof projectMatch === 'string') {
      badRequest(projectMatch);
      return;
    }
    if (!userMatch || password !== this.user.password) {
      send(401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
      return;
    }
    if (!projectMatch) {
      send(401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
      return;
    }

    const issuedAt = this.now();
    const expiresAt = issuedAt + this.tokenTtlSeconds * 1000;
    const token = `gAAAAA${randomBytes(48).toString('base64url')}`;
    this.tokens.set(token, { expiresAt, revoked: false });
    this.issuedTokens.push(token);
    const roles = [{ id: randomUUID().replaceAll('-', ''), name: 'member' }];
    if (this.admin) roles.push({ id: randomUUID().replaceAll('-', ''), name: 'admin' });
    const answer = {
      token: {
        methods: ['password'],
        user: { domain: this.user.domain, id: this.user.id, name: this.user.name, password_expires_at: null },
        audit_ids: [randomBytes(16).toString('base64url')],
        expires_at: keystoneTime(expiresAt),
        issued_at: keystoneTime(issuedAt),
        project: { domain: this.project.domain, id: this.project.id, name: this.project.name },
        is_domain: false,
        roles,
        catalog: this.catalog(),
      },
    };
    const headers: Record<string, string> = fault?.omitSubjectToken === true ? {} : { 'X-Subject-Token': token };
    send(201, fault?.body ?? answer, headers);
  }

  /** true / false for a well-formed reference, or a 400 message for a malformed one */
  private matchNamed(
    ref: unknown,
    known: { id: string; name: string; domain: { id: string; name: string } },
    where: string,
  ): boolean | string {
    const id = field(ref, 'id');
    if (id !== undefined) return typeof id === 'string' ? id === known.id : `Invalid input for field '${where}/id'`;
    const name = field(ref, 'name');
    if (typeof name !== 'string') return `Invalid input for field '${where}': 'id' or 'name' is required`;
    const domain = field(ref, 'domain');
    const domainId = field(domain, 'id');
    const domainName = field(domain, 'name');
    if (typeof domainId !== 'string' && typeof domainName !== 'string') {
      return `Invalid input for field '${where}/domain': 'id' or 'name' is required`;
    }
    const domainOk = typeof domainId === 'string' ? domainId === known.domain.id : domainName === known.domain.name;
    return domainOk && name === known.name;
  }

  private catalog(): unknown[] {
    const region = (r: string): { region: string; region_id: string } => ({ region: r, region_id: r });
    return [
      {
        type: 'identity',
        name: 'keystone',
        id: 'b1d5c3b1e1e04b7c8a0e8f7d1d2c3b4a',
        endpoints: (['public', 'internal', 'admin'] as const).map((iface, i) => ({
          id: `ident${i}`,
          interface: iface,
          ...region('RegionOne'),
          url: `${this.url}/v3`,
        })),
      },
      {
        type: 'image',
        name: 'glance',
        id: 'c2e6d4c2f2f15c8d9b1f9a8e2e3d4c5b',
        endpoints: [{ id: 'img0', interface: 'public', ...region('RegionOne'), url: `${this.url}/image` }],
      },
      {
        type: 'compute',
        name: 'nova',
        id: 'd3f7e5d3a3a26d9e0c2a0b9f3f4e5d6c',
        endpoints: this.computeEndpoints.map((e) => ({
          id: `compute-${e.label}`,
          interface: e.interface,
          ...region(e.region),
          url: this.computeUrl(e.label),
        })),
      },
    ];
  }

  // -- Nova ---------------------------------------------------------------------------------------------

  private nova(
    req: IncomingMessage,
    path: string,
    url: URL,
    fault: Fault | undefined,
    send: (status: number, payload: unknown, headers?: Record<string, string>) => void,
  ): void {
    const token = req.headers['x-auth-token'];
    const known = typeof token === 'string' ? this.tokens.get(token) : undefined;
    if (known === undefined || known.revoked || known.expiresAt <= this.now()) {
      this.bump('nova-401');
      send(
        401,
        { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } },
        { 'WWW-Authenticate': `Keystone uri="${this.url}/v3"` },
      );
      return;
    }
    const version = req.headers['x-openstack-nova-api-version'];
    if (typeof version === 'string' && !/^2\.\d+$/.test(version) && version !== 'latest') {
      send(400, { badRequest: { code: 400, message: `Invalid format for API version: ${version}` } });
      return;
    }
    if (req.method !== 'GET') {
      send(405, { badRequest: { code: 405, message: 'this fake only answers GET' } });
      return;
    }
    const base = `${this.url}${url.pathname.slice(0, url.pathname.length - path.length)}`;

    if (path === '/flavors' || path === '/flavors/detail') {
      const detail = path === '/flavors/detail';
      const page = this.listFlavors(url.searchParams);
      if (typeof page === 'string') {
        send(400, { badRequest: { code: 400, message: page } });
        return;
      }
      const answer: Record<string, unknown> = {
        flavors: page.items.map((f) => (detail ? this.showView(f, base) : this.briefView(f, base))),
      };
      if (page.full && page.items.length > 0) {
        const next = new URLSearchParams(url.searchParams);
        next.set('marker', page.items.at(-1)?.id ?? '');
        answer.flavors_links = [{ rel: 'next', href: `${base}${path}?${next.toString()}` }];
      }
      send(200, fault?.body ?? answer);
      return;
    }
    const show = /^\/flavors\/([^/]+)$/.exec(path);
    if (show !== null) {
      const id = decodeURIComponent(show[1] ?? '');
      const flavor = this.flavors.find((f) => f.id === id);
      if (flavor === undefined) {
        send(404, { itemNotFound: { code: 404, message: `Flavor ${id} could not be found.` } });
        return;
      }
      send(200, fault?.body ?? { flavor: this.showView(flavor, base) });
      return;
    }
    send(404, { itemNotFound: { code: 404, message: 'The resource could not be found.' } });
  }

  /** FlavorsController._get_flavors: visibility, sort by flavorid, limit/marker */
  private listFlavors(params: URLSearchParams): { items: FakeFlavor[]; full: boolean } | string {
    let visible: FakeFlavor[];
    if (this.admin) {
      const raw = params.get('is_public');
      let isPublic: boolean | null;
      if (raw === null) isPublic = true;
      else if (raw.toLowerCase() === 'none') isPublic = null;
      else if (['true', '1', 'yes', 'on', 't', 'y'].includes(raw.toLowerCase())) isPublic = true;
      else if (['false', '0', 'no', 'off', 'f', 'n'].includes(raw.toLowerCase())) isPublic = false;
      else return `Invalid is_public filter [${raw}]`;
      visible = this.flavors.filter((f) => isPublic === null || (f.isPublic ?? true) === isPublic);
    } else {
      visible = this.flavors.filter((f) => (f.isPublic ?? true) && f.disabled !== true);
    }
    visible = [...visible].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const marker = params.get('marker');
    if (marker !== null) {
      const at = visible.findIndex((f) => f.id === marker);
      if (at < 0) return `marker [${marker}] not found`;
      visible = visible.slice(at + 1);
    }
    const asked = params.get('limit');
    const limit = Math.min(asked === null ? this.maxLimit : Number(asked), this.maxLimit);
    const items = visible.slice(0, limit);
    return { items, full: items.length === limit };
  }

  private links(f: FakeFlavor, base: string): unknown[] {
    const bookmark = base.replace(/\/v2\.1$/, '');
    return [
      { rel: 'self', href: `${base}/flavors/${f.id}` },
      { rel: 'bookmark', href: `${bookmark}/flavors/${f.id}` },
    ];
  }

  private briefView(f: FakeFlavor, base: string): unknown {
    return { id: f.id, name: f.name, links: this.links(f, base) };
  }

  /** the 2.1 show view: swap "" when 0 (before 2.75) */
  private showView(f: FakeFlavor, base: string): unknown {
    return {
      id: f.id,
      name: f.name,
      ram: f.ram ?? 512,
      disk: f.disk ?? 1,
      swap: f.swap === undefined || f.swap === 0 ? '' : f.swap,
      'OS-FLV-EXT-DATA:ephemeral': f.ephemeral ?? 0,
      'OS-FLV-DISABLED:disabled': f.disabled ?? false,
      vcpus: f.vcpus ?? 1,
      'os-flavor-access:is_public': f.isPublic ?? true,
      rxtx_factor: 1.0,
      links: this.links(f, base),
    };
  }
}

/** obj[key] for a plain object, else undefined; with key undefined, obj itself if it is an object */
function field(obj: unknown, key: string | undefined): unknown {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return undefined;
  if (key === undefined) return obj;
  return (obj as Record<string, unknown>)[key];
}

/** Keystone's expires_at form: 2015-11-06T15:32:17.893769Z (microseconds) */
function keystoneTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
