// flavor.id lookup (ceilometer-wire.md §2.2 item 6) against a fake Keystone v3 + Nova at the HTTP
// boundary (test/support/fake-openstack.ts).

import { createServer } from 'node:net';

import { afterEach, describe, expect, it, vi } from 'vitest';

import {
  FlavorIdResolver,
  TOKEN_REFRESH_MARGIN_MS,
  keystoneAuthBody,
  keystoneTokensUrl,
  serviceCredentialsSchema,
  type FlavorIdResolverOptions,
  type FlavorLookupReport,
  type ServiceCredentialsInput,
} from '../../src/discovery/flavor-lookup.js';
import { DEFAULT_USER, FakeOpenStack, STOCK_FLAVORS, type FakeOpenStackOptions } from '../support/fake-openstack.js';

interface Rig {
  fake: FakeOpenStack;
  resolver: FlavorIdResolver;
  reports: FlavorLookupReport[];
  clock: { now: number };
}

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A fake OpenStack and a resolver pointed at it, sharing one clock. */
async function rig(
  options: {
    fake?: FakeOpenStackOptions;
    creds?: Partial<ServiceCredentialsInput>;
    resolver?: Partial<FlavorIdResolverOptions>;
  } = {},
): Promise<Rig> {
  const clock = { now: Date.parse('2026-11-26T14:00:00Z') };
  const now = (): number => clock.now;
  const fake = await FakeOpenStack.start({ now, ...options.fake });
  cleanups.push(() => fake.close());
  const reports: FlavorLookupReport[] = [];
  const credentials = serviceCredentialsSchema.parse({
    auth_url: fake.authUrl,
    username: DEFAULT_USER.name,
    password: DEFAULT_USER.password,
    project_name: 'service',
    user_domain_name: 'Default',
    project_domain_name: 'Default',
    region_name: 'RegionOne',
    ...options.creds,
  });
  const resolver = new FlavorIdResolver({
    credentials,
    timeoutMs: 2000,
    onReport: (r) => reports.push(r),
    now,
    ...options.resolver,
  });
  cleanups.push(() => resolver.close());
  return { fake, resolver, reports, clock };
}

/** A TCP port on 127.0.0.1 that nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function secretsIn(reports: FlavorLookupReport[], secrets: string[]): string[] {
  return reports.flatMap((r) => secrets.filter((s) => r.message.includes(s)));
}

describe('flavor found in Nova', () => {
  it('answers the Nova id, with the request sequence novaclient flavors.find(name, is_public=None) makes', async () => {
    const { fake, resolver, reports } = await rig();

    await expect(resolver.resolve('m1.tiny')).resolves.toEqual({ id: '1', source: 'nova' });

    expect(fake.requests.map((r) => `${r.method} ${r.url} ${r.status}`)).toEqual([
      'POST /v3/auth/tokens 201',
      'GET /compute/public-r1/v2.1/flavors?is_public=None 200',
      'GET /compute/public-r1/v2.1/flavors/1 200',
    ]);
    for (const r of fake.novaRequests()) {
      expect(r.headers['x-auth-token']).toBe(fake.issuedTokens[0]);
      expect(r.headers['x-openstack-nova-api-version']).toBe('2.1');
    }
    expect(reports).toEqual([]);
  });

  it('sends the Keystone v3 password body with user and project domains', async () => {
    const { fake, resolver } = await rig();
    await resolver.resolve('m1.small');
    const auth = fake.requests[0]!;
    expect(auth.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(auth.body)).toEqual({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'ceilometer', domain: { name: 'Default' }, password: DEFAULT_USER.password } },
        },
        scope: { project: { name: 'service', domain: { name: 'Default' } } },
      },
    });
  });

  it('authenticates by user_id / project_id and by domain ids too', async () => {
    const { fake, resolver } = await rig({
      creds: {
        username: undefined,
        user_id: DEFAULT_USER.id,
        project_name: undefined,
        project_id: 'a1b2c3d4000040008000000000000ac7',
      },
    });
    await expect(resolver.resolve('m1.tiny')).resolves.toEqual({ id: '1', source: 'nova' });
    expect(JSON.parse(fake.requests[0]!.body)).toEqual({
      auth: {
        identity: { methods: ['password'], password: { user: { id: DEFAULT_USER.id, password: DEFAULT_USER.password } } },
        scope: { project: { id: 'a1b2c3d4000040008000000000000ac7' } },
      },
    });

    const byDomainId = await rig({
      creds: { user_domain_name: undefined, user_domain_id: 'default', project_domain_name: undefined, project_domain_id: 'default' },
    });
    await expect(byDomainId.resolver.resolve('m1.tiny')).resolves.toEqual({ id: '1', source: 'nova' });
  });

  it('falls back to the domain named Default when no domain is configured', async () => {
    const { fake, resolver } = await rig({ creds: { user_domain_name: undefined, project_domain_name: undefined } });
    await expect(resolver.resolve('m1.tiny')).resolves.toEqual({ id: '1', source: 'nova' });
    const body = JSON.parse(fake.requests[0]!.body) as { auth: { scope: unknown } };
    expect(body.auth.scope).toEqual({ project: { name: 'service', domain: { name: 'Default' } } });
  });

  it('sees private flavors, as is_public=None does for an admin', async () => {
    const { resolver } = await rig({
      fake: { flavors: [...STOCK_FLAVORS, { id: 'c0ffee-private', name: 'tenant.big', isPublic: false }] },
    });
    await expect(resolver.resolve('tenant.big')).resolves.toEqual({ id: 'c0ffee-private', source: 'nova' });
  });

  it('follows Nova pagination (flavors_links next) past the first page', async () => {
    const flavors = Array.from({ length: 7 }, (_, i) => ({ id: `f${i}`, name: `flavor-${i}` }));
    const { fake, resolver } = await rig({ fake: { flavors, maxLimit: 3 } });

    await expect(resolver.resolve('flavor-6')).resolves.toEqual({ id: 'f6', source: 'nova' });
    expect(fake.novaRequests().map((r) => r.url.replace(/^\/compute\/public-r1\/v2\.1/, ''))).toEqual([
      '/flavors?is_public=None',
      '/flavors?is_public=None&marker=f2',
      '/flavors?is_public=None&marker=f5',
      '/flavors/f6',
    ]);
  });
});

describe('flavor not in Nova', () => {
  it('answers the flavor name, silently, like Zed', async () => {
    const { fake, resolver, reports } = await rig();
    await expect(resolver.resolve('m1.gone')).resolves.toEqual({
      id: 'm1.gone',
      source: 'fallback-name',
      reason: 'not-found',
    });
    expect(fake.count('flavor-show')).toBe(0);
    expect(reports).toEqual([]);
  });

  it('matches the name exactly (no case folding, no prefix)', async () => {
    const { resolver } = await rig();
    await expect(resolver.resolve('M1.TINY')).resolves.toMatchObject({ source: 'fallback-name', reason: 'not-found' });
    await expect(resolver.resolve('m1.tin')).resolves.toMatchObject({ source: 'fallback-name', reason: 'not-found' });
    await expect(resolver.resolve('m1.tiny ')).resolves.toMatchObject({ source: 'fallback-name', reason: 'not-found' });
  });

  it('treats a flavor deleted between the list and the show as not found', async () => {
    const { fake, resolver } = await rig();
    fake.onRequest = (r) => {
      if (r.path.endsWith('/flavors/1')) fake.flavors = fake.flavors.filter((f) => f.id !== '1');
    };
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ id: 'm1.tiny', reason: 'not-found' });
    expect(fake.requests.at(-1)).toMatchObject({ path: '/compute/public-r1/v2.1/flavors/1', status: 404 });
  });
});

describe('two flavors with the same name', () => {
  it('falls back to the name and says why, once', async () => {
    const { fake, resolver, reports, clock } = await rig({
      fake: { flavors: [...STOCK_FLAVORS, { id: '42', name: 'm1.tiny' }] },
      resolver: { notFoundTtlMs: 60_000 },
    });

    await expect(resolver.resolve('m1.tiny')).resolves.toEqual({
      id: 'm1.tiny',
      source: 'fallback-name',
      reason: 'duplicate-name',
    });
    expect(fake.count('flavor-show')).toBe(0);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ level: 'warning', kind: 'duplicate-flavor-name', flavorName: 'm1.tiny' });
    expect(reports[0]!.message).toContain('ids 1, 42');

    // cached like a miss, then asked again after the TTL: still duplicated, not reported again
    await resolver.resolve('m1.tiny');
    expect(fake.count('flavor-list')).toBe(1);
    clock.now += 61_000;
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ reason: 'duplicate-name' });
    expect(fake.count('flavor-list')).toBe(2);
    expect(reports).toHaveLength(1);

    // other names are unaffected
    await expect(resolver.resolve('m1.small')).resolves.toEqual({ id: '2', source: 'nova' });
  });
});

describe('Keystone token', () => {
  it('is reused for many lookups', async () => {
    const { fake, resolver } = await rig();
    for (const f of STOCK_FLAVORS) await resolver.resolve(f.name);
    await resolver.resolve('nope-1');
    await resolver.resolve('nope-2');
    expect(fake.count('auth')).toBe(1);
    expect(fake.count('flavor-list')).toBe(STOCK_FLAVORS.length + 2);
  });

  it('is renewed shortly before expires_at (keystoneauth: 120 s early)', async () => {
    const { fake, resolver, clock } = await rig({ fake: { tokenTtlSeconds: 3600 } });
    await resolver.resolve('m1.tiny');
    clock.now += 3600_000 - TOKEN_REFRESH_MARGIN_MS - 1000;
    await resolver.resolve('m1.small');
    expect(fake.count('auth')).toBe(1);

    clock.now += 2000; // inside the margin: renewed before Nova would refuse it
    await expect(resolver.resolve('m1.medium')).resolves.toEqual({ id: '3', source: 'nova' });
    expect(fake.count('auth')).toBe(2);
    expect(fake.count('nova-401')).toBe(0);
    expect(fake.novaRequests().at(-1)!.headers['x-auth-token']).toBe(fake.issuedTokens[1]);
  });

  it('is renewed once when Nova answers 401 (revoked token), and the lookup succeeds', async () => {
    const { fake, resolver, reports } = await rig();
    await resolver.resolve('m1.tiny');
    fake.revokeAllTokens();

    await expect(resolver.resolve('m1.small')).resolves.toEqual({ id: '2', source: 'nova' });
    expect(fake.count('auth')).toBe(2);
    expect(fake.count('nova-401')).toBe(1);
    expect(reports).toEqual([]);
  });

  it('is renewed only once when Nova keeps answering 401', async () => {
    const { fake, resolver, reports } = await rig();
    fake.setFault('nova', {
      status: 401,
      body: JSON.stringify({ error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } }),
    });

    await expect(resolver.resolve('m1.tiny')).resolves.toEqual({
      id: 'm1.tiny',
      source: 'fallback-name',
      reason: 'lookup-failed',
    });
    expect(fake.count('auth')).toBe(2);
    expect(fake.novaRequests()).toHaveLength(2);
    expect(reports.map((r) => r.kind)).toEqual(['nova-unauthorized']);
  });

  it('is fetched once for concurrent lookups of different flavors', async () => {
    const { fake, resolver } = await rig();
    const results = await Promise.all(STOCK_FLAVORS.map((f) => resolver.resolve(f.name)));
    expect(results.map((r) => r.id)).toEqual(['1', '2', '3', '4', '5']);
    expect(fake.count('auth')).toBe(1);
  });
});

describe('failures fall back to the name and are reported once per kind', () => {
  it('Keystone down (connection refused)', async () => {
    const port = await deadPort();
    const { fake, resolver, reports, clock } = await rig({
      creds: { auth_url: `http://127.0.0.1:${port}/v3` },
      resolver: { retryAfterFailureMs: 30_000 },
    });

    const results = await Promise.all(['m1.tiny', 'm1.small', 'm1.tiny', 'm1.medium'].map((n) => resolver.resolve(n)));
    expect(results).toEqual([
      { id: 'm1.tiny', source: 'fallback-name', reason: 'lookup-failed' },
      { id: 'm1.small', source: 'fallback-name', reason: 'lookup-failed' },
      { id: 'm1.tiny', source: 'fallback-name', reason: 'lookup-failed' },
      { id: 'm1.medium', source: 'fallback-name', reason: 'lookup-failed' },
    ]);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ level: 'warning', kind: 'keystone-unreachable' });
    expect(reports[0]!.message).toContain(`127.0.0.1:${port}/v3/auth/tokens`);
    expect(reports[0]!.message).toContain('ECONNREFUSED');

    // within the back-off: no attempt at all
    await expect(resolver.resolve('m1.large')).resolves.toMatchObject({ reason: 'backoff' });

    // next cycles: tried again, still down, not reported again
    clock.now += 31_000;
    await expect(resolver.resolve('m1.large')).resolves.toMatchObject({ reason: 'lookup-failed' });
    clock.now += 31_000;
    await expect(resolver.resolve('m1.large')).resolves.toMatchObject({ reason: 'lookup-failed' });
    expect(reports).toHaveLength(1);
    expect(fake.requests).toHaveLength(0);
  });

  it('Keystone rejects the credentials, and the password is not in the report', async () => {
    const { resolver, reports } = await rig({ creds: { password: 'Wr0ng-Pa55word' } });
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ reason: 'lookup-failed' });
    expect(reports.map((r) => r.kind)).toEqual(['keystone-rejected']);
    expect(reports[0]!.message).toContain('user "ceilometer" for project "service"');
    expect(reports[0]!.message).toContain('HTTP 401');
    expect(secretsIn(reports, ['Wr0ng-Pa55word', DEFAULT_USER.password])).toEqual([]);
  });

  it('Keystone 503, then recovery is reported', async () => {
    const { fake, resolver, reports, clock } = await rig();
    fake.setFault('keystone', { status: 503, body: '<html>Service Unavailable</html>' });
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ reason: 'lookup-failed' });
    expect(reports.map((r) => r.kind)).toEqual(['keystone-http-error']);
    expect(reports[0]!.message).toContain('HTTP 503');

    fake.setFault('keystone', undefined);
    clock.now += 31_000;
    await expect(resolver.resolve('m1.tiny')).resolves.toEqual({ id: '1', source: 'nova' });
    expect(reports.map((r) => [r.level, r.kind])).toEqual([
      ['warning', 'keystone-http-error'],
      ['info', 'recovered'],
    ]);
  });

  it('Keystone answers without X-Subject-Token or with a broken body', async () => {
    const { fake, resolver, reports, clock } = await rig();
    fake.setFault('keystone', { omitSubjectToken: true });
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ reason: 'lookup-failed' });
    fake.setFault('keystone', { body: '{"token": {"catalog": []}}' });
    clock.now += 31_000;
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ reason: 'lookup-failed' });
    expect(reports.map((r) => r.kind)).toEqual(['keystone-bad-response']);
    expect(reports[0]!.message).toContain('X-Subject-Token');
  });

  it('Nova 500', async () => {
    const { fake, resolver, reports } = await rig();
    fake.setFault('nova', {
      status: 500,
      body: JSON.stringify({ computeFault: { code: 500, message: 'Unexpected API Error. Please report this.' } }),
    });
    const results = await Promise.all(['m1.tiny', 'm1.small'].map((n) => resolver.resolve(n)));
    expect(results.map((r) => r.id)).toEqual(['m1.tiny', 'm1.small']);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ kind: 'nova-http-error' });
    expect(reports[0]!.message).toContain('HTTP 500');
    expect(reports[0]!.message).toContain('Unexpected API Error');
  });

  it('Nova sends something other than JSON, or JSON of the wrong shape', async () => {
    const { fake, resolver, reports, clock } = await rig();
    fake.setFault('nova', { body: '<html>502 Bad Gateway</html>' }, 1);
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ reason: 'lookup-failed' });
    clock.now += 31_000;
    fake.setFault('nova', { body: '{"flavors": "nope"}' }, 1);
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ reason: 'lookup-failed' });
    expect(reports.map((r) => r.kind)).toEqual(['nova-bad-response']);
    expect(reports[0]!.message).toContain('other than JSON');
  });

  it('Nova drops the connection', async () => {
    const { fake, resolver, reports } = await rig();
    fake.setFault('nova', { destroy: true });
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ reason: 'lookup-failed' });
    expect(reports.map((r) => r.kind)).toEqual(['nova-unreachable']);
  });

  it('an unresolvable host (DNS)', async () => {
    const { resolver } = await rig({ creds: { auth_url: 'http://keystone.invalid:5000/v3' }, resolver: { timeoutMs: 3000 } });
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ id: 'm1.tiny', source: 'fallback-name' });
  });

  it('an unreadable cafile', async () => {
    const { fake, resolver, reports } = await rig({ creds: { cafile: '/nonexistent/ceilopoll-ca.pem' } });
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ reason: 'lookup-failed' });
    expect(reports.map((r) => r.kind)).toEqual(['tls-config']);
    expect(reports[0]!.message).toContain('cafile /nonexistent/ceilopoll-ca.pem: ENOENT');
    expect(fake.requests).toHaveLength(0);
  });

  it('no token, password or injected secret leaks into any report', async () => {
    const { fake, resolver, reports, clock } = await rig();
    await resolver.resolve('m1.tiny');
    const token = fake.issuedTokens[0]!;
    // servers that echo what they were sent
    fake.setFault('nova', { status: 500, body: JSON.stringify({ computeFault: { code: 500, message: `bad token ${token}` } }) });
    await resolver.resolve('m1.small');
    fake.setFault('nova', undefined);
    fake.revokeAllTokens();
    fake.setFault('keystone', {
      status: 500,
      body: JSON.stringify({ error: { code: 500, message: `cannot check password ${DEFAULT_USER.password}` } }),
    });
    clock.now += 31_000;
    await resolver.resolve('m1.medium');

    expect(reports.map((r) => r.kind)).toEqual(['nova-http-error', 'keystone-http-error']);
    expect(reports[0]!.message).toContain('bad token ***');
    expect(secretsIn(reports, [DEFAULT_USER.password, token, ...fake.issuedTokens])).toEqual([]);
  });
});

describe('timeouts', () => {
  it('a slow Nova: resolve() answers the name within the timeout bound', async () => {
    const { fake, resolver, reports } = await rig({ resolver: { timeoutMs: 300 } });
    fake.setFault('nova', { delayMs: 5000 });

    const started = performance.now();
    const result = await resolver.resolve('m1.tiny');
    const elapsed = performance.now() - started;

    expect(result).toMatchObject({ id: 'm1.tiny', source: 'fallback-name' });
    expect(elapsed).toBeLessThan(3000);
    await vi.waitFor(() => expect(reports.map((r) => r.kind)).toEqual(['nova-timeout']), { timeout: 3000 });
  });

  it('a slow Keystone: every waiting caller is answered within the bound', async () => {
    const { fake, resolver, reports } = await rig({ resolver: { timeoutMs: 300 } });
    fake.setFault('keystone', { delayMs: 5000 });

    const started = performance.now();
    const results = await Promise.all(STOCK_FLAVORS.map((f) => resolver.resolve(f.name)));
    expect(performance.now() - started).toBeLessThan(3000);
    expect(results.map((r) => r.id)).toEqual(STOCK_FLAVORS.map((f) => f.name));
    await vi.waitFor(() => expect(reports.map((r) => r.kind)).toEqual(['keystone-timeout']), { timeout: 3000 });
    expect(fake.count('auth')).toBe(1);
  });

  it('a lookup that outlives the deadline still fills the cache', async () => {
    const { fake, resolver } = await rig({ resolver: { timeoutMs: 1000 } });
    fake.setFault('nova', { delayMs: 600 }); // each of list + show: 1.2 s in all, each under the timeout
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ reason: 'deadline' });
    await vi.waitFor(() => expect(fake.count('flavor-show')).toBe(1), { timeout: 3000 });
    await vi.waitFor(async () => expect(await resolver.resolve('m1.tiny')).toEqual({ id: '1', source: 'nova' }), {
      timeout: 3000,
    });
    expect(fake.count('flavor-list')).toBe(1);
  });
});

describe('timeout setting', () => {
  it('comes from [service_credentials] timeout (seconds) unless given', () => {
    const credentials = serviceCredentialsSchema.parse({
      auth_url: 'http://k/v3',
      username: 'u',
      password: 'p',
      project_name: 's',
      timeout: '2.5',
    });
    expect(new FlavorIdResolver({ credentials }).timeoutMs).toBe(2500);
    expect(new FlavorIdResolver({ credentials, timeoutMs: 700 }).timeoutMs).toBe(700);
    expect(new FlavorIdResolver({ credentials: { ...credentials, timeout: undefined } }).timeoutMs).toBe(10_000);
  });
});

describe('caching', () => {
  it('a found id is asked for once', async () => {
    const { fake, resolver, clock } = await rig();
    await resolver.resolve('m1.tiny');
    clock.now += 24 * 3600_000; // found ids do not expire by default (Zed)
    for (let i = 0; i < 10; i++) await expect(resolver.resolve('m1.tiny')).resolves.toEqual({ id: '1', source: 'nova' });
    expect(fake.count('flavor-list')).toBe(1);
    expect(fake.count('flavor-show')).toBe(1);
  });

  it('is bounded: the least recently used name is evicted', async () => {
    const { fake, resolver } = await rig({ resolver: { cacheMax: 2 } });
    await resolver.resolve('m1.tiny');
    await resolver.resolve('m1.small');
    await resolver.resolve('m1.tiny'); // m1.small is now the least recently used
    await resolver.resolve('m1.medium'); // evicts m1.small
    expect(fake.count('flavor-list')).toBe(3);
    await resolver.resolve('m1.tiny');
    expect(fake.count('flavor-list')).toBe(3);
    await resolver.resolve('m1.small');
    expect(fake.count('flavor-list')).toBe(4);
  });

  it('a missing flavor is cached for notFoundTtlMs, then asked again (and found once created)', async () => {
    const { fake, resolver, clock } = await rig({ resolver: { notFoundTtlMs: 600_000 } });
    await expect(resolver.resolve('m2.new')).resolves.toMatchObject({ reason: 'not-found' });
    clock.now += 599_000;
    await expect(resolver.resolve('m2.new')).resolves.toMatchObject({ reason: 'not-found' });
    expect(fake.count('flavor-list')).toBe(1);

    fake.flavors.push({ id: '77', name: 'm2.new' });
    clock.now += 2000;
    await expect(resolver.resolve('m2.new')).resolves.toEqual({ id: '77', source: 'nova' });
    expect(fake.count('flavor-list')).toBe(2);
  });

  it('foundTtlMs makes found ids expire', async () => {
    const { fake, resolver, clock } = await rig({ resolver: { foundTtlMs: 3600_000 } });
    await resolver.resolve('m1.tiny');
    clock.now += 3601_000;
    await resolver.resolve('m1.tiny');
    expect(fake.count('flavor-list')).toBe(2);
  });

  it('failures are not cached: the next attempt after the back-off asks again', async () => {
    const { fake, resolver, clock } = await rig({ resolver: { retryAfterFailureMs: 30_000 } });
    fake.setFault('nova', { status: 500 }, 1);
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ reason: 'lookup-failed' });
    clock.now += 30_001;
    await expect(resolver.resolve('m1.tiny')).resolves.toEqual({ id: '1', source: 'nova' });
  });

  it('clear() forgets ids and the token', async () => {
    const { fake, resolver } = await rig();
    await resolver.resolve('m1.tiny');
    resolver.clear();
    await resolver.resolve('m1.tiny');
    expect(fake.count('auth')).toBe(2);
    expect(fake.count('flavor-list')).toBe(2);
  });
});

describe('in-flight de-duplication', () => {
  it('100 instances of one flavor make one lookup', async () => {
    const { fake, resolver } = await rig();
    fake.setFault('nova', { delayMs: 50 });
    const results = await Promise.all(Array.from({ length: 100 }, () => resolver.resolve('m1.large')));
    expect(new Set(results.map((r) => JSON.stringify(r)))).toEqual(new Set([JSON.stringify({ id: '4', source: 'nova' })]));
    expect(fake.count('auth')).toBe(1);
    expect(fake.count('flavor-list')).toBe(1);
    expect(fake.count('flavor-show')).toBe(1);
  });

  it('100 instances of one flavor during an outage make one failed attempt and one report', async () => {
    const { fake, resolver, reports } = await rig();
    fake.setFault('nova', { status: 500 });
    await Promise.all(Array.from({ length: 100 }, () => resolver.resolve('m1.large')));
    expect(fake.count('flavor-list')).toBe(1);
    expect(reports).toHaveLength(1);
  });
});

describe('endpoint selection from the catalog', () => {
  it.each([
    [{ interface: 'public', region_name: 'RegionOne' }, 'public-r1'],
    [{ interface: 'internal', region_name: 'RegionOne' }, 'internal-r1'],
    [{ interface: 'admin', region_name: 'RegionOne' }, 'admin-r1'],
    [{ interface: 'internalURL', region_name: 'RegionTwo' }, 'internal-r2'],
    [{ interface: 'public', region_name: 'RegionTwo' }, 'public-r2'],
    [{ region_name: undefined }, 'public-r1'],
  ] as [Partial<ServiceCredentialsInput>, string][])('%o → %s', async (creds, label) => {
    const { fake, resolver } = await rig({ creds });
    await expect(resolver.resolve('m1.tiny')).resolves.toEqual({ id: '1', source: 'nova' });
    expect(new Set(fake.novaRequests().map((r) => r.endpoint))).toEqual(new Set([label]));
  });

  it('no endpoint for the region: name, with what the catalog offers', async () => {
    const { fake, resolver, reports } = await rig({ creds: { interface: 'admin', region_name: 'RegionTwo' } });
    await expect(resolver.resolve('m1.tiny')).resolves.toMatchObject({ reason: 'lookup-failed' });
    expect(fake.novaRequests()).toHaveLength(0);
    expect(reports.map((r) => r.kind)).toEqual(['no-compute-endpoint']);
    expect(reports[0]!.message).toContain('region "RegionTwo"');
    expect(reports[0]!.message).toContain('RegionOne');
  });

  it('a [service_types] nova that the catalog lacks', async () => {
    const { reports, resolver } = await rig({ resolver: { serviceType: 'compute_legacy' } });
    await resolver.resolve('m1.tiny');
    expect(reports[0]).toMatchObject({ kind: 'no-compute-endpoint' });
    expect(reports[0]!.message).toContain('types present: compute, identity, image');
  });
});

describe('without credentials', () => {
  it('every flavor.id is the name', async () => {
    const resolver = new FlavorIdResolver({ credentials: undefined });
    await expect(resolver.resolve('m1.tiny')).resolves.toEqual({
      id: 'm1.tiny',
      source: 'fallback-name',
      reason: 'not-configured',
    });
  });
});

describe('[service_credentials] parsing', () => {
  it('takes the ini strings and applies the defaults', () => {
    const c = serviceCredentialsSchema.parse({
      auth_type: 'password',
      auth_url: 'http://127.0.0.1:5000/v3',
      username: 'ceilometer',
      password: 'fake',
      project_name: 'service',
      user_domain_name: 'Default',
      project_domain_name: 'Default',
      interface: 'internalURL',
      region_name: '',
      insecure: 'True',
      timeout: '30',
    });
    expect(c).toMatchObject({ interface: 'internal', insecure: true, timeout: 30, auth_type: 'password' });
    expect(c.region_name).toBeUndefined();

    const d = serviceCredentialsSchema.parse({ auth_url: 'https://k/v3', username: 'u', password: 'p', project_id: 'x' });
    expect(d).toMatchObject({ interface: 'public', insecure: false, auth_type: 'password' });
    expect(d.timeout).toBeUndefined();
  });

  it('refuses what cannot work, saying why', () => {
    const base = { auth_url: 'http://k:5000/v3', username: 'u', password: 'p', project_name: 'service' };
    const message = (input: unknown): string => {
      const r = serviceCredentialsSchema.safeParse(input);
      return r.success ? '' : r.error.issues.map((i) => i.message).join('; ');
    };
    expect(message({ ...base, project_name: undefined })).toMatch(/project_name or project_id is required/);
    expect(message({ ...base, username: undefined })).toMatch(/username or user_id is required/);
    expect(message({ ...base, interface: 'auth' })).toMatch(/interface must be one of/);
    expect(message({ ...base, auth_type: 'token' })).toMatch(/only auth_type = password/);
    expect(message({ ...base, auth_url: 'keystone:5000' })).toMatch(/auth_url must be an http\(s\) URL/);
    expect(message({ ...base, insecure: 'maybe' })).toMatch(/insecure must be true or false/);
  });

  it('derives the token URL from auth_url like keystoneauth\'s path fallback', () => {
    expect(keystoneTokensUrl('http://127.0.0.1:5000/v3')).toBe('http://127.0.0.1:5000/v3/auth/tokens');
    expect(keystoneTokensUrl('http://127.0.0.1:5000/v3/')).toBe('http://127.0.0.1:5000/v3/auth/tokens');
    expect(keystoneTokensUrl('http://127.0.0.1:5000')).toBe('http://127.0.0.1:5000/v3/auth/tokens');
    expect(keystoneTokensUrl('https://cloud.example/identity')).toBe('https://cloud.example/identity/v3/auth/tokens');
  });

  it('prefers ids over names and default_domain_* over the stock domain', () => {
    const c = serviceCredentialsSchema.parse({
      auth_url: 'http://k/v3',
      username: 'u',
      password: 'p',
      project_name: 'proj',
      default_domain_id: 'd0',
      project_domain_name: 'Other',
    });
    expect(keystoneAuthBody(c)).toEqual({
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'u', domain: { id: 'd0' }, password: 'p' } } },
        scope: { project: { name: 'proj', domain: { name: 'Other' } } },
      },
    });
  });
});
