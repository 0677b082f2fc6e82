// An in-process libvirtd stand-in on a temporary UNIX socket, for the error paths a real daemon will
// not produce on demand (out-of-order replies, garbage frames, silence, a close mid-call) and for the
// BALLOON stats records the test driver lacks. It speaks the same framing as src/libvirt/wire.ts
// but answers only what a test tells it to.

import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import type { RemoteErrorFields } from '../../src/libvirt/errors.js';
import { Proc } from '../../src/libvirt/protocol.js';
import {
  FrameSplitter,
  KEEPALIVE_PROGRAM,
  MessageStatus,
  MessageType,
  REMOTE_PROGRAM,
  encodePacket,
  type Header,
  type Packet,
} from '../../src/libvirt/wire.js';
import { XdrWriter } from '../../src/libvirt/xdr.js';

export interface CallContext {
  header: Header;
  args: Buffer;
  socket: net.Socket;
  daemon: FakeLibvirtd;
}

/** What a handler returns: a reply payload, an error reply, or nothing (the test answers later, or never). */
export type HandlerResult = Buffer | { error: Partial<RemoteErrorFields> } | 'no-reply';
export type Handler = (ctx: CallContext) => HandlerResult | Promise<HandlerResult>;

export function encodeRemoteError(e: Partial<RemoteErrorFields>): Buffer {
  const w = new XdrWriter()
    .int(e.code ?? 1)
    .int(e.domain ?? 0)
    .optional(e.message ?? null, (x, v) => x.string(v))
    .int(e.level ?? 2)
    .bool(false) // dom
    .optional(e.str1 ?? null, (x, v) => x.string(v))
    .optional(e.str2 ?? null, (x, v) => x.string(v))
    .optional(e.str3 ?? null, (x, v) => x.string(v))
    .int(e.int1 ?? -1)
    .int(e.int2 ?? -1)
    .bool(false); // net
  return w.toBuffer();
}

export class FakeLibvirtd {
  readonly dir: string;
  readonly socketPath: string;
  readonly calls: Header[] = [];
  readonly keepalives: Header[] = [];
  readonly sockets = new Set<net.Socket>();
  private readonly handlers = new Map<number, Handler>();
  private server: net.Server | null = null;
  private nextCallbackId = 0;

  private constructor() {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'fake-libvirtd-'));
    this.socketPath = path.join(this.dir, 'libvirt-sock');
    // What any libvirtd says to the handshake of a root client with auth none.
    this.on(Proc.AUTH_LIST, () => new XdrWriter().array([0], 20, (w, v) => w.int(v)).toBuffer());
    this.on(Proc.CONNECT_OPEN, () => Buffer.alloc(0));
    this.on(Proc.CONNECT_CLOSE, () => Buffer.alloc(0));
    this.on(Proc.CONNECT_SUPPORTS_FEATURE, () => new XdrWriter().int(1).toBuffer());
    this.on(Proc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, () => new XdrWriter().int(this.nextCallbackId++).toBuffer());
    this.on(Proc.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, () => Buffer.alloc(0));
  }

  static async start(): Promise<FakeLibvirtd> {
    const d = new FakeLibvirtd();
    await d.listen();
    return d;
  }

  /** Sets the answer for a procedure. */
  on(proc: number, h: Handler): this {
    this.handlers.set(proc, h);
    return this;
  }

  callsOf(proc: number): Header[] {
    return this.calls.filter((h) => h.proc === proc);
  }

  async listen(): Promise<void> {
    rmSync(this.socketPath, { force: true });
    this.server = net.createServer((s) => this.accept(s));
    await new Promise<void>((resolve) => this.server!.listen(this.socketPath, resolve));
  }

  /** Stops listening and drops every client, as a dying libvirtd does. */
  async crash(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const srv = this.server;
    this.server = null;
    if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }

  async stop(): Promise<void> {
    await this.crash();
    rmSync(this.dir, { recursive: true, force: true });
  }

  reply(socket: net.Socket, h: Header, payload: Buffer, status: number = MessageStatus.OK): void {
    socket.write(encodePacket({ ...h, type: MessageType.REPLY, status }, payload));
  }

  /** Sends a remote-program event the way libvirtd does: type MESSAGE, serial 1. */
  sendEvent(proc: number, payload: Buffer, serial = 1): void {
    const pkt = encodePacket({ prog: REMOTE_PROGRAM, vers: 1, proc, type: MessageType.MESSAGE, serial, status: 0 }, payload);
    for (const s of this.sockets) s.write(pkt);
  }

  sendKeepalive(proc: 1 | 2): void {
    const pkt = encodePacket({ prog: KEEPALIVE_PROGRAM, vers: 1, proc, type: MessageType.MESSAGE, serial: 0, status: 0 });
    for (const s of this.sockets) s.write(pkt);
  }

  /** Writes raw bytes to every client (garbage, truncated frames). */
  sendRaw(bytes: Buffer): void {
    for (const s of this.sockets) s.write(bytes);
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    const splitter = new FrameSplitter();
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      let packets: Packet[];
      try {
        packets = splitter.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const p of packets) void this.dispatch(socket, p);
    });
  }

  private async dispatch(socket: net.Socket, p: Packet): Promise<void> {
    if (p.header.prog === KEEPALIVE_PROGRAM) {
      this.keepalives.push(p.header);
      if (p.header.proc === 1) {
        socket.write(encodePacket({ ...p.header, proc: 2 }));
      }
      return;
    }
    this.calls.push(p.header);
    const h = this.handlers.get(p.header.proc);
    const result: HandlerResult = h
      ? await h({ header: p.header, args: p.payload, socket, daemon: this })
      : { error: { code: 39, domain: 7, message: `unknown procedure: ${p.header.proc}` } };
    if (result === 'no-reply' || socket.destroyed) return;
    if (Buffer.isBuffer(result)) this.reply(socket, p.header, result);
    else this.reply(socket, p.header, encodeRemoteError(result.error), MessageStatus.ERROR);
  }
}
