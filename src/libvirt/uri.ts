// `libvirt_uri` as operators write it for Ceilometer, split the way libvirt's own remote driver
// splits it: the `+transport` part and the transport's query parameters pick the socket; what is
// left (scheme without transport, path, other parameters) is the name sent in CONNECT_OPEN.
//   qemu:///system                              -> probe the local sockets, open "qemu:///system"
//   qemu+unix:///system?socket=/run/x.sock      -> /run/x.sock, open "qemu:///system"
//   test+unix:///abs/node.xml                   -> local socket, open "test:///abs/node.xml"

import { existsSync } from 'node:fs';
import path from 'node:path';

import { UnsupportedUriError } from './errors.js';

export interface ResolvedUri {
  /** the name for CONNECT_OPEN */
  name: string;
  /** socket paths to try, in order; the first that exists wins */
  socketCandidates: string[];
  /** true when the operator named the socket (no probing) */
  explicitSocket: boolean;
}

/** Query parameters that belong to the transport (libvirt's remote driver eats them). */
const TRANSPORT_PARAMS = new Set(['socket', 'mode', 'proxy', 'no_verify', 'no_tty', 'pkipath', 'keyfile', 'sshauth',
  'command', 'netcat', 'known_hosts', 'known_hosts_verify', 'tls_priority', 'name']);

const RUN_DIR = '/run/libvirt';

/** The URI with any user:password@ removed, fit for logs and error messages. */
export function redactUri(uri: string): string {
  return uri.replace(/^([a-z0-9+.-]+:\/\/)[^@/]*@/i, '$1***@');
}

export function resolveLibvirtUri(uri: string, opts: { readOnly?: boolean; runDir?: string; env?: NodeJS.ProcessEnv } = {}): ResolvedUri {
  const shown = redactUri(uri);
  const m = /^([a-z][a-z0-9.-]*)(?:\+([a-z0-9.-]+))?:\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/i.exec(uri.trim());
  if (!m) {
    throw new UnsupportedUriError(`libvirt_uri "${shown}" is not a libvirt URI (expected e.g. qemu:///system or qemu+unix:///system?socket=/run/libvirt/libvirt-sock)`);
  }
  const [, driver = '', transport, authority = '', uriPath = '', query = ''] = m;
  const isLocal = transport === undefined ? authority === '' : transport.toLowerCase() === 'unix';
  if (!isLocal) {
    const how = transport ?? (authority ? 'tls (a host without +transport means TLS)' : '');
    throw new UnsupportedUriError(`libvirt_uri "${shown}": transport ${how} is not supported; ceilopoll talks to the local libvirtd over its UNIX socket (use qemu:///system or qemu+unix:///system?socket=PATH)`);
  }
  if (authority !== '') {
    throw new UnsupportedUriError(`libvirt_uri "${shown}": a UNIX transport takes no host ("${authority.replace(/^[^@]*@/, '***@')}")`);
  }

  const params = new URLSearchParams(query);
  const kept = new URLSearchParams();
  for (const [k, v] of params) if (!TRANSPORT_PARAMS.has(k)) kept.append(k, v);
  const keptQuery = kept.toString();
  const name = params.get('name') ?? `${driver}://${uriPath}${keptQuery ? `?${keptQuery}` : ''}`;

  const socket = params.get('socket');
  if (socket !== null) {
    if (!path.isAbsolute(socket)) throw new UnsupportedUriError(`libvirt_uri "${shown}": socket=${socket} must be an absolute path`);
    return { name, socketCandidates: [socket], explicitSocket: true };
  }

  const ro = opts.readOnly ? '-ro' : '';
  const env = opts.env ?? process.env;
  if (uriPath === '/session') {
    const base = env.XDG_RUNTIME_DIR ?? path.join(env.HOME ?? '/root', '.cache');
    return { name, socketCandidates: [path.join(base, 'libvirt', `libvirt-sock${ro}`)], explicitSocket: false };
  }
  const runDir = opts.runDir ?? RUN_DIR;
  // libvirt's own client probes the modular QEMU daemon first, then the monolithic one.
  const candidates = driver.toLowerCase() === 'qemu'
    ? [path.join(runDir, `virtqemud-sock${ro}`), path.join(runDir, `libvirt-sock${ro}`)]
    : [path.join(runDir, `libvirt-sock${ro}`)];
  return { name, socketCandidates: candidates, explicitSocket: false };
}

/** The socket to dial: the first candidate that exists, else the last (its error names the path). */
export function pickSocket(r: ResolvedUri): string {
  if (r.explicitSocket) return r.socketCandidates[0]!;
  return r.socketCandidates.find((p) => existsSync(p)) ?? r.socketCandidates[r.socketCandidates.length - 1]!;
}
