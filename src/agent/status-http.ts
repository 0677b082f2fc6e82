// The status port: GET /healthz (health.ts over a fresh snapshot) and GET /metrics (Prometheus
// text). Plain node:http: two read-only routes do not need a framework. A request can never take
// the agent down: whatever a handler throws becomes a 500 for that request alone.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { evaluateHealth } from './health.js';
import type { Logger } from './log.js';
import type { AgentMetrics } from './metrics.js';
import type { AgentSnapshot } from './snapshot.js';

export interface StatusServerOptions {
  host: string;
  /** 0: an ephemeral port (tests); `address()` tells which */
  port: number;
  snapshot: () => AgentSnapshot;
  metrics: AgentMetrics;
  /** passed to evaluateHealth */
  graceMs?: number;
  /** where a failing request (500) or a server error after the bind is reported */
  log?: Logger;
}

export interface StatusServer {
  address(): { host: string; port: number };
  /** Stops listening and drops open connections, keep-alive ones included. */
  close(): Promise<void>;
}

/** The body of /healthz, 200 or 503. */
export interface HealthzBody {
  status: 'ok' | 'unhealthy';
  reasons: string[];
  checks: Record<string, { ok: boolean; detail: string }>;
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const ALLOW = 'GET, HEAD';

/** Listens on host:port; rejects with an Error naming both and the reason when it cannot. */
export async function startStatusServer(opts: StatusServerOptions): Promise<StatusServer> {
  const server = http.createServer((req, res) => void respond(req, res, opts));
  await listen(server, opts.host, opts.port);
  server.on('error', (err) => opts.log?.error(`status server on ${hostPort(opts.host, opts.port)}: ${err.message}`));
  let closing: Promise<void> | null = null;
  return {
    address() {
      const a = server.address() as AddressInfo;
      return { host: a.address, port: a.port };
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** Never rejects: a failing handler is a 500, a failing write drops the connection. */
async function respond(req: http.IncomingMessage, res: http.ServerResponse, opts: StatusServerOptions): Promise<void> {
  let reply: Reply;
  try {
    reply = await route(req, opts);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    opts.log?.warning(`status request ${req.method ?? '?'} ${req.url ?? '?'} failed: ${message}`);
    reply = text(500, `internal error: ${message}\n`);
  }
  try {
    send(req, res, reply);
  } catch (err) {
    opts.log?.warning(`status reply to ${req.method ?? '?'} ${req.url ?? '?'} failed: ${err instanceof Error ? err.message : String(err)}`);
    res.destroy();
  }
}

async function route(req: http.IncomingMessage, opts: StatusServerOptions): Promise<Reply> {
  const path = new URL(req.url ?? '/', 'http://status.invalid').pathname;
  if (path !== '/healthz' && path !== '/metrics') return text(404, `not found: ${path} (try /healthz or /metrics)\n`);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const reply = text(405, `method ${req.method ?? '?'} not allowed on ${path}: use ${ALLOW}\n`);
    reply.headers.Allow = ALLOW;
    return reply;
  }
  if (path === '/metrics') {
    return { status: 200, headers: { 'Content-Type': opts.metrics.contentType }, body: await opts.metrics.render() };
  }
  const health = evaluateHealth(opts.snapshot(), { graceMs: opts.graceMs });
  const body: HealthzBody = { status: health.ok ? 'ok' : 'unhealthy', reasons: health.reasons, checks: health.checks };
  return {
    status: health.ok ? 200 : 503,
    headers: { 'Content-Type': 'application/json; charset=utf-8' },
    body: `${JSON.stringify(body, null, 2)}\n`,
  };
}

function text(status: number, body: string): Reply {
  return { status, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body };
}

function send(req: http.IncomingMessage, res: http.ServerResponse, reply: Reply): void {
  res.writeHead(reply.status, {
    ...reply.headers,
    'Content-Length': String(Buffer.byteLength(reply.body)),
    'Cache-Control': 'no-store',
  });
  // HEAD: the same headers, Content-Length included, and no body.
  res.end(req.method === 'HEAD' ? undefined : reply.body);
}

function listen(server: http.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'address already in use (EADDRINUSE): another process listens there; choose another port'
          : err.code === 'EACCES'
            ? 'permission denied (EACCES): ports below 1024 need root or CAP_NET_BIND_SERVICE'
            : err.code === 'EADDRNOTAVAIL'
              ? 'address not available (EADDRNOTAVAIL): no local interface has that address'
              : err.message;
      reject(new Error(`cannot listen on ${hostPort(host, port)} for the status endpoint (/healthz, /metrics): ${why}`));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
