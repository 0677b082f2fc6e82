import http from 'node:http';

import { afterEach, describe, expect, it } from 'vitest';

import { evaluateHealth, type HealthReport } from '../../src/agent/health.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import type { AgentSnapshot, TaskSnapshot } from '../../src/agent/snapshot.js';
import { startStatusServer, type HealthzBody, type StatusServer } from '../../src/agent/status-http.js';

const NOW = Date.parse('2024-05-01T12:00:00.000Z');
const s = (n: number): number => n * 1000;

function task(over: Partial<TaskSnapshot> = {}): TaskSnapshot {
  return {
    name: 'memory-10s',
    intervalSeconds: 10,
    meters: ['memory.usage'],
    runs: 360,
    skipped: 0,
    failures: 0,
    running: false,
    lastStartedAt: NOW - s(4),
    lastFinishedAt: NOW - s(3),
    lastDurationMs: 1000,
    lastError: null,
    lastSuccessAt: NOW - s(3),
    ...over,
  };
}

/** A healthy agent, up for an hour. */
function healthy(): AgentSnapshot {
  return {
    now: NOW,
    startedAt: NOW - s(3600),
    pid: 4242,
    version: '0.1.0',
    hostname: 'compute-1',
    config: { transport_url: 'rabbit://ceilometer:***@rabbit1:5672/' },
    libvirt: { uri: 'qemu:///system', connected: true, readOnly: true, since: NOW - s(3600), lastError: null, reconnects: 0 },
    broker: { target: 'rabbit://ceilometer:***@rabbit1:5672/', connected: true, since: NOW - s(3590), lastError: null },
    inventory: { instances: [], skipped: [] },
    tasks: [task()],
    lastCycle: null,
    spool: { path: '/var/lib/ceilopoll/spool.db', depth: 42, bytes: 84_000, dropped: 0, oldestAgeMs: s(20) },
    delivery: { confirmed: 1000, inFlight: 2, publishFailures: 0 },
  };
}

const snapshotWith = (f: (snap: AgentSnapshot) => void): AgentSnapshot => {
  const snap = healthy();
  f(snap);
  return snap;
};

describe('evaluateHealth', () => {
  it('is ok when libvirt and the broker are connected and the task succeeded recently', () => {
    const h = evaluateHealth(healthy());
    expect(h).toEqual<HealthReport>({
      ok: true,
      reasons: [],
      checks: {
        libvirt: { ok: true, detail: 'libvirt qemu:///system connected for 3600 s' },
        broker: { ok: true, detail: 'broker rabbit://ceilometer:***@rabbit1:5672/ connected for 3590 s' },
        'task:memory-10s': { ok: true, detail: "task 'memory-10s' last succeeded 3 s ago (interval 10 s)" },
      },
    });
  });

  const failing: Array<[string, AgentSnapshot, string]> = [
    [
      'libvirt disconnected',
      snapshotWith((x) => {
        x.libvirt.connected = false;
        x.libvirt.lastError = 'cannot connect to libvirt socket /run/libvirt/libvirt-sock-ro: ENOENT';
      }),
      'libvirt qemu:///system not connected: cannot connect to libvirt socket /run/libvirt/libvirt-sock-ro: ENOENT',
    ],
    [
      'libvirt disconnected, no error recorded',
      snapshotWith((x) => {
        x.libvirt.connected = false;
      }),
      'libvirt qemu:///system not connected',
    ],
    [
      'broker disconnected (samples spooled)',
      snapshotWith((x) => {
        x.broker.connected = false;
        x.broker.lastError = 'connect ECONNREFUSED 10.0.0.5:5672';
      }),
      'broker rabbit://ceilometer:***@rabbit1:5672/ not connected: connect ECONNREFUSED 10.0.0.5:5672; samples are being spooled (depth 42)',
    ],
    [
      'task late',
      snapshotWith((x) => {
        x.tasks = [task({ lastSuccessAt: NOW - s(51) })];
      }),
      "task 'memory-10s' last succeeded 51 s ago (interval 10 s)",
    ],
    [
      'task late and failing',
      snapshotWith((x) => {
        x.tasks = [task({ lastSuccessAt: NOW - s(120), failures: 11, lastError: 'not connected to libvirtd' })];
      }),
      "task 'memory-10s' last succeeded 120 s ago (interval 10 s); last error: not connected to libvirtd",
    ],
    [
      'task never succeeded, agent long up',
      snapshotWith((x) => {
        x.tasks = [task({ lastSuccessAt: null, lastError: 'not connected to libvirtd' })];
      }),
      "task 'memory-10s' has not succeeded since the agent started 3600 s ago (interval 10 s); last error: not connected to libvirtd",
    ],
  ];

  for (const [what, snap, reason] of failing) {
    it(`fails on ${what} alone, with one reason`, () => {
      const h = evaluateHealth(snap);
      expect(h.ok).toBe(false);
      expect(h.reasons).toEqual([reason]);
      expect(Object.entries(h.checks).filter(([, c]) => !c.ok).map(([, c]) => c.detail)).toEqual([reason]);
    });
  }

  it('allows 2 intervals + grace (default 30 s) since the last success, and no more', () => {
    const at = (ago: number, graceMs?: number): boolean =>
      evaluateHealth(snapshotWith((x) => (x.tasks = [task({ lastSuccessAt: NOW - ago })])), { graceMs }).ok;
    expect(at(s(50))).toBe(true);
    expect(at(s(50) + 1)).toBe(false);
    expect(at(s(45), s(10))).toBe(false);
    expect(at(s(30), s(10))).toBe(true);
  });

  it('gives a starting agent the same allowance before the first cycle, and says it is starting', () => {
    const starting = (upMs: number): AgentSnapshot =>
      snapshotWith((x) => {
        x.startedAt = NOW - upMs;
        x.tasks = [task({ runs: 0, lastStartedAt: null, lastFinishedAt: null, lastDurationMs: null, lastSuccessAt: null })];
      });
    const early = evaluateHealth(starting(s(5)));
    expect(early.ok).toBe(true);
    expect(early.checks['task:memory-10s']!.detail).toBe("task 'memory-10s' starting: no cycle has finished yet, agent up 5 s (interval 10 s)");
    expect(evaluateHealth(starting(s(50))).reasons).toEqual(["task 'memory-10s' has not succeeded since the agent started 50 s ago (interval 10 s)"]);
  });

  it('lists every failing check, in order, when several fail', () => {
    const h = evaluateHealth(snapshotWith((x) => {
      x.libvirt.connected = false;
      x.broker.connected = false;
      x.tasks = [task({ name: 'a', lastSuccessAt: NOW - s(100) }), task({ name: 'b' })];
    }));
    expect(h.reasons).toEqual([
      'libvirt qemu:///system not connected',
      'broker rabbit://ceilometer:***@rabbit1:5672/ not connected; samples are being spooled (depth 42)',
      "task 'a' last succeeded 100 s ago (interval 10 s)",
    ]);
    expect(h.checks['task:b']!.ok).toBe(true);
  });
});

describe('the status server', () => {
  let server: StatusServer | null = null;
  let extra: StatusServer | null = null;
  afterEach(async () => {
    await server?.close();
    await extra?.close();
    server = extra = null;
  });

  const start = async (snapshot: () => AgentSnapshot = healthy, metrics = new AgentMetrics({ defaultMetrics: false })): Promise<string> => {
    server = await startStatusServer({ host: '127.0.0.1', port: 0, snapshot, metrics });
    const { host, port } = server.address();
    return `http://${host}:${port}`;
  };

  it('answers GET /healthz with 200 and the checks as JSON when healthy', async () => {
    const base = await start();
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const body = (await res.json()) as HealthzBody;
    expect(body).toEqual({ status: 'ok', reasons: [], checks: evaluateHealth(healthy()).checks });
  });

  it('answers 503 with the exact reasons when unhealthy', async () => {
    const base = await start(() => snapshotWith((x) => {
      x.broker.connected = false;
      x.broker.lastError = 'Socket closed abruptly during opening handshake';
    }));
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const body = (await res.json()) as HealthzBody;
    expect(body.status).toBe('unhealthy');
    expect(body.reasons).toEqual([
      'broker rabbit://ceilometer:***@rabbit1:5672/ not connected: Socket closed abruptly during opening handshake; samples are being spooled (depth 42)',
    ]);
    expect(body.checks.broker!.ok).toBe(false);
  });

  it('passes graceMs on to evaluateHealth', async () => {
    const snap = (): AgentSnapshot => snapshotWith((x) => (x.tasks = [task({ lastSuccessAt: NOW - s(45) })]));
    server = await startStatusServer({ host: '127.0.0.1', port: 0, snapshot: snap, metrics: new AgentMetrics({ defaultMetrics: false }), graceMs: s(10) });
    expect((await fetch(`http://127.0.0.1:${server.address().port}/healthz`)).status).toBe(503);
  });

  it('ignores a query string', async () => {
    const base = await start();
    expect((await fetch(`${base}/healthz?verbose=1`)).status).toBe(200);
  });

  it("answers GET /metrics with the registry's text and content type", async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    metrics.spool(42, 84_000);
    const base = await start(healthy, metrics);
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(metrics.contentType);
    const text = await res.text();
    expect(text).toContain('# TYPE ceilopoll_spool_depth gauge\nceilopoll_spool_depth 42\n');
  });

  it('answers HEAD with the headers of GET and no body, on both routes', async () => {
    const base = await start();
    for (const path of ['/healthz', '/metrics']) {
      const get = await fetch(`${base}${path}`);
      const getBody = await get.text();
      const head = await fetch(`${base}${path}`, { method: 'HEAD' });
      expect([path, head.status]).toEqual([path, 200]);
      expect(head.headers.get('content-type')).toBe(get.headers.get('content-type'));
      expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(getBody)));
      expect(await head.text()).toBe('');
    }
  });

  it('answers 404 for any other path', async () => {
    const base = await start();
    for (const path of ['/', '/health', '/metrics/x', '/healthz/']) {
      const res = await fetch(`${base}${path}`);
      expect([path, res.status]).toEqual([path, 404]);
      expect(await res.text()).toBe(`not found: ${path} (try /healthz or /metrics)\n`);
    }
  });

  it('answers 405 with an Allow header to other methods', async () => {
    const base = await start();
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await fetch(`${base}/healthz`, { method, body: method === 'DELETE' ? undefined : 'x' });
      expect([method, res.status]).toEqual([method, 405]);
      expect(res.headers.get('allow')).toBe('GET, HEAD');
      expect(await res.text()).toBe(`method ${method} not allowed on /healthz: use GET, HEAD\n`);
    }
  });

  it('answers 500 with the message when the snapshot throws, and keeps serving', async () => {
    let fail = true;
    const base = await start(() => {
      if (fail) throw new Error('inventory is being rebuilt');
      return healthy();
    });
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(500);
    expect(await res.text()).toBe('internal error: inventory is being rebuilt\n');
    fail = false;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('rejects with host:port and the reason when the port is taken', async () => {
    await start();
    const { port } = server!.address();
    const err = await startStatusServer({ host: '127.0.0.1', port, snapshot: healthy, metrics: new AgentMetrics({ defaultMetrics: false }) }).then(
      (started) => ((extra = started), null),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(
      `cannot listen on 127.0.0.1:${port} for the status endpoint (/healthz, /metrics): address already in use (EADDRINUSE): another process listens there; choose another port`,
    );
  });

  it('closes even with a keep-alive connection open', async () => {
    const base = await start();
    const agent = new http.Agent({ keepAlive: true });
    try {
      const status = await new Promise<number | undefined>((resolve, reject) => {
        http.get(`${base}/healthz`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        }).on('error', reject);
      });
      expect(status).toBe(200);
      expect(Object.values(agent.freeSockets).flat()).toHaveLength(1);
      await server!.close();
      server = null;
    } finally {
      agent.destroy();
    }
  });

  it('shows no secret: the broker target and config stay as redacted as the snapshot has them', async () => {
    const base = await start(() => snapshotWith((x) => (x.broker.connected = false)));
    const text = await (await fetch(`${base}/healthz`)).text();
    expect(text).toContain('rabbit://ceilometer:***@rabbit1:5672/');
    expect(text).not.toMatch(/:\/\/[^:/]+:(?!\*\*\*@)[^@/]+@/);
  });
});
