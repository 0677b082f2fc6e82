// The typed libvirt API over one Connection: the handshake, then one method per procedure.
// Methods return plain objects; errors are LibvirtError (the daemon said no), CallTimeoutError or
// ConnectionClosedError. One client = one socket lifetime; the Supervisor makes new ones.

import { EventEmitter } from 'node:events';

import { Connection, type ConnectionOptions } from './connection.js';
import { LibvirtError } from './errors.js';
import {
  AuthType,
  ConnectFlags,
  EventId,
  Feature,
  GetAllStatsFlags,
  MEMORY_STAT_NR,
  MetadataType,
  Proc,
  StatsGroup,
  decode,
  encode,
  type DomainRef,
  type DomainStateInfo,
  type DomainStatsRecord,
  type LifecycleEventMsg,
  type MemoryStats,
  type MetadataChangeEventMsg,
} from './protocol.js';
import { pickSocket, resolveLibvirtUri } from './uri.js';

export interface ClientOptions extends ConnectionOptions {
  /** libvirt_uri as in ceilometer.conf; default qemu:///system */
  uri?: string;
  /** open read-only (the -ro socket and VIR_CONNECT_RO); default true */
  readOnly?: boolean;
  /** opt in to the daemon's keepalive (CONNECT_SUPPORTS_FEATURE 10): it then PINGs us when we are quiet */
  serverKeepalive?: boolean;
  /** for tests: the directory holding libvirt's sockets (default /run/libvirt) */
  runDir?: string;
}

export interface ClientEvents {
  lifecycle: [LifecycleEventMsg];
  metadataChange: [MetadataChangeEventMsg];
  /** an event whose body could not be decoded; it is dropped, the connection stays */
  eventError: [Error];
  close: [Error | undefined];
}

export class LibvirtClient extends EventEmitter<ClientEvents> {
  /** callbackID -> event id, for the callbacks registered on this connection */
  private readonly callbacks = new Map<number, number>();

  private constructor(
    readonly conn: Connection,
    readonly uri: string,
    readonly readOnly: boolean,
  ) {
    super();
    conn.on('event', (proc, payload) => this.onEvent(proc, payload));
    conn.on('close', (err) => this.emit('close', err));
  }

  /**
   * Connects and runs the handshake: AUTH_LIST (always first: only auth procedures are allowed
   * before it, and for a root client under polkit it is what authenticates), AUTH_POLKIT when that
   * is the only way offered, the keepalive opt-in, then CONNECT_OPEN.
   */
  static async connect(opts: ClientOptions = {}): Promise<LibvirtClient> {
    const uri = opts.uri ?? 'qemu:///system';
    const readOnly = opts.readOnly ?? true;
    const resolved = resolveLibvirtUri(uri, { readOnly, runDir: opts.runDir });
    const conn = await Connection.open(pickSocket(resolved), opts);
    try {
      const auth = decode.authList(await conn.call(Proc.AUTH_LIST));
      if (auth.length > 0 && !auth.includes(AuthType.NONE)) {
        if (auth.includes(AuthType.POLKIT)) {
          await conn.call(Proc.AUTH_POLKIT);
        } else {
          throw new Error(`libvirtd at ${conn.path} offers only auth types [${auth.join(', ')}]; ceilopoll supports none (0) and polkit (2): run as root or set auth_unix_ro = "none"`);
        }
      }
      if (opts.serverKeepalive) {
        await conn.call(Proc.CONNECT_SUPPORTS_FEATURE, encode.supportsFeature(Feature.PROGRAM_KEEPALIVE));
      }
      await conn.call(Proc.CONNECT_OPEN, encode.connectOpen(resolved.name, readOnly ? ConnectFlags.READ_ONLY : 0));
    } catch (err) {
      conn.close('handshake failed');
      throw err;
    }
    return new LibvirtClient(conn, resolved.name, readOnly);
  }

  get closed(): boolean {
    return this.conn.closed;
  }

  async close(): Promise<void> {
    if (this.conn.closed) return;
    try {
      await this.conn.call(Proc.CONNECT_CLOSE, undefined, 5000);
    } catch {
      // closing anyway
    }
    this.conn.close();
  }

  async hostname(): Promise<string> {
    return decode.string(await this.conn.call(Proc.CONNECT_GET_HOSTNAME), 'CONNECT_GET_HOSTNAME reply');
  }

  /** libvirt's version as major * 1e6 + minor * 1e3 + micro. */
  async libVersion(): Promise<number> {
    return Number(decode.uhyper(await this.conn.call(Proc.CONNECT_GET_LIB_VERSION), 'CONNECT_GET_LIB_VERSION reply'));
  }

  async supportsFeature(feature: number): Promise<boolean> {
    const r = await this.conn.call(Proc.CONNECT_SUPPORTS_FEATURE, encode.supportsFeature(feature));
    return decode.int(r, 'CONNECT_SUPPORTS_FEATURE reply') !== 0;
  }

  /** flags: ListDomainsFlags (ACTIVE 1, INACTIVE 2, ...); 0 = all domains */
  async listAllDomains(flags = 0): Promise<DomainRef[]> {
    return decode.listAllDomains(await this.conn.call(Proc.CONNECT_LIST_ALL_DOMAINS, encode.listAllDomains(flags)));
  }

  async lookupByUuid(uuid: string): Promise<DomainRef> {
    return decode.domain(await this.conn.call(Proc.DOMAIN_LOOKUP_BY_UUID, encode.lookupByUuid(uuid)), 'DOMAIN_LOOKUP_BY_UUID reply');
  }

  /** flags: SECURE 1 is refused on a read-only connection; INACTIVE 2 gives the persistent config */
  async getXmlDesc(dom: DomainRef, flags = 0): Promise<string> {
    return decode.string(await this.conn.call(Proc.DOMAIN_GET_XML_DESC, encode.domainFlags(dom, flags)), 'DOMAIN_GET_XML_DESC reply');
  }

  /**
   * One metadata element by namespace URI, e.g. http://openstack.org/xmlns/libvirt/nova/1.1.
   * Returns null when the domain has no such element (libvirt's NO_DOMAIN_METADATA).
   */
  async getMetadata(dom: DomainRef, nsUri: string, flags = 0): Promise<string | null> {
    try {
      const r = await this.conn.call(Proc.DOMAIN_GET_METADATA, encode.getMetadata(dom, MetadataType.ELEMENT, nsUri, flags));
      return decode.string(r, 'DOMAIN_GET_METADATA reply');
    } catch (err) {
      if (err instanceof LibvirtError && err.code === 80) return null;
      throw err;
    }
  }

  async getState(dom: DomainRef): Promise<DomainStateInfo> {
    return decode.domainState(await this.conn.call(Proc.DOMAIN_GET_STATE, encode.domainFlags(dom, 0)));
  }

  async memoryStats(dom: DomainRef): Promise<MemoryStats> {
    return decode.memoryStats(await this.conn.call(Proc.DOMAIN_MEMORY_STATS, encode.memoryStats(dom, MEMORY_STAT_NR, 0)));
  }

  /**
   * CONNECT_GET_ALL_DOMAIN_STATS: one round trip for every domain (doms empty) or the given ones.
   * Defaults to the STATE and BALLOON groups with NOWAIT, so a domain stuck in a job gives what
   * needs no monitor query instead of stalling the whole call. `signal` abandons the call (see
   * Connection.call).
   */
  async getAllDomainStats(
    opts: { doms?: readonly DomainRef[]; stats?: number; flags?: number; signal?: AbortSignal } = {},
  ): Promise<DomainStatsRecord[]> {
    const stats = opts.stats ?? StatsGroup.STATE | StatsGroup.BALLOON;
    const flags = opts.flags ?? GetAllStatsFlags.NOWAIT;
    const r = await this.conn.call(Proc.CONNECT_GET_ALL_DOMAIN_STATS, encode.getAllDomainStats(opts.doms ?? [], stats, flags), undefined, opts.signal);
    return decode.allDomainStats(r);
  }

  /** Needs a read-write connection. flags: AffectFlags (LIVE 1, CONFIG 2). */
  async setMemoryStatsPeriod(dom: DomainRef, periodSeconds: number, flags = 1): Promise<void> {
    const r = await this.conn.call(Proc.DOMAIN_SET_MEMORY_STATS_PERIOD, encode.setMemoryStatsPeriod(dom, periodSeconds, flags));
    decode.empty(r, 'DOMAIN_SET_MEMORY_STATS_PERIOD reply');
  }

  /** Registers for an event on all domains; events then come as 'lifecycle' / 'metadataChange'. */
  async registerEvent(eventId: number): Promise<number> {
    const r = await this.conn.call(Proc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, encode.eventRegisterAny(eventId, null));
    const callbackId = decode.int(r, 'CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY reply');
    this.callbacks.set(callbackId, eventId);
    return callbackId;
  }

  async deregisterEvent(callbackId: number): Promise<void> {
    this.callbacks.delete(callbackId);
    const r = await this.conn.call(Proc.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, encode.eventDeregisterAny(callbackId));
    decode.empty(r, 'CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY reply');
  }

  /** The callbacks registered on this connection: callbackID -> event id. */
  get registeredEvents(): ReadonlyMap<number, number> {
    return this.callbacks;
  }

  private onEvent(proc: number, payload: Buffer): void {
    // An event we cannot decode is dropped with its reason, not fatal: events are hints and the
    // agent resyncs anyway. A bad frame (as opposed to a bad event body) does close the connection.
    try {
      if (proc === Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE) {
        const ev = decode.lifecycleEvent(payload);
        if (this.callbacks.get(ev.callbackId) === EventId.LIFECYCLE) this.emit('lifecycle', ev);
      } else if (proc === Proc.DOMAIN_EVENT_CALLBACK_METADATA_CHANGE) {
        const ev = decode.metadataChangeEvent(payload);
        if (this.callbacks.get(ev.callbackId) === EventId.METADATA_CHANGE) this.emit('metadataChange', ev);
      }
    } catch (err) {
      this.emit('eventError', new Error(`libvirt event (procedure ${proc}) dropped: ${(err as Error).message}`));
    }
  }
}
