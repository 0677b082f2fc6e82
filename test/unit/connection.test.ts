import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { LibvirtClient } from '../../src/libvirt/client.js';
import { Connection } from '../../src/libvirt/connection.js';
import { CallTimeoutError, ConnectionClosedError, LibvirtError, ProtocolError } from '../../src/libvirt/errors.js';
import { EventId, Proc, writeDomain, type DomainRef, type LifecycleEventMsg } from '../../src/libvirt/protocol.js';
import { XdrWriter } from '../../src/libvirt/xdr.js';
import { FakeLibvirtd } from '../support/fake-libvirtd.js';

const dom: DomainRef = { name: 'instance-00000001', uuid: 'c0ffee00-0000-4000-8000-000000000001', id: 1 };
const str = (s: string): Buffer => new XdrWriter().string(s).toBuffer();
const lifecycle = (callbackId: number, event: number): Buffer => {
  const w = new XdrWriter().int(callbackId);
  writeDomain(w, dom);
  return w.int(event).int(0).toBuffer();
};
const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

let daemon: FakeLibvirtd;
beforeEach(async () => {
  daemon = await FakeLibvirtd.start();
});
afterEach(async () => {
  await daemon.stop();
});

const connect = (extra: Parameters<typeof LibvirtClient.connect>[0] = {}): Promise<LibvirtClient> =>
  LibvirtClient.connect({ uri: `test+unix:///default?socket=${daemon.socketPath}`, ...extra });

describe('handshake', () => {
  it('calls AUTH_LIST first, then CONNECT_OPEN with the URI minus its transport, read-only', async () => {
    let openArgs: Buffer | null = null;
    daemon.on(Proc.CONNECT_OPEN, ({ args }) => ((openArgs = args), Buffer.alloc(0)));
    const c = await connect();
    expect(daemon.calls.map((h) => h.proc)).toEqual([Proc.AUTH_LIST, Proc.CONNECT_OPEN]);
    expect(openArgs).toEqual(Buffer.concat([new XdrWriter().int(1).toBuffer(), str('test:///default'), new XdrWriter().uint(1).toBuffer()]));
    expect(c.uri).toBe('test:///default');
    await c.close();
    expect(daemon.calls.at(-1)!.proc).toBe(Proc.CONNECT_CLOSE);
  });

  it('opts in to server keepalive when asked, before CONNECT_OPEN', async () => {
    const c = await connect({ serverKeepalive: true, readOnly: false });
    expect(daemon.calls.map((h) => h.proc)).toEqual([Proc.AUTH_LIST, Proc.CONNECT_SUPPORTS_FEATURE, Proc.CONNECT_OPEN]);
    await c.close();
  });

  it('runs AUTH_POLKIT when polkit is the only auth offered', async () => {
    daemon.on(Proc.AUTH_LIST, () => new XdrWriter().array([2], 20, (w, v) => w.int(v)).toBuffer());
    daemon.on(Proc.AUTH_POLKIT, () => new XdrWriter().int(1).toBuffer());
    const c = await connect();
    expect(daemon.calls.map((h) => h.proc)).toEqual([Proc.AUTH_LIST, Proc.AUTH_POLKIT, Proc.CONNECT_OPEN]);
    await c.close();
  });

  it('refuses SASL-only daemons with a message saying what to do', async () => {
    daemon.on(Proc.AUTH_LIST, () => new XdrWriter().array([1], 20, (w, v) => w.int(v)).toBuffer());
    await expect(connect()).rejects.toThrow(/only auth types \[1\].*run as root or set auth_unix_ro/);
  });

  it('turns an open error into a LibvirtError with code and domain', async () => {
    daemon.on(Proc.CONNECT_OPEN, () => ({ error: { code: 38, domain: 12, message: 'no such file' } }));
    const err = await connect().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect(err).toMatchObject({ code: 38, domain: 12, procedure: 'CONNECT_OPEN' });
  });

  it('names the socket path when the daemon is not there', async () => {
    await daemon.crash();
    await expect(connect()).rejects.toThrow(new RegExp(`cannot connect to libvirt socket ${daemon.socketPath}.*does not exist`));
  });
});

describe('calls in flight', () => {
  it('routes out-of-order replies by serial', async () => {
    const held: Array<() => void> = [];
    daemon.on(Proc.DOMAIN_GET_XML_DESC, ({ header, socket, daemon: d }) => {
      held.push(() => d.reply(socket, header, str(`xml-${header.serial}`)));
      if (held.length === 3) for (const send of held.reverse()) send();
      return 'no-reply';
    });
    const c = await connect();
    const results = await Promise.all([c.getXmlDesc(dom), c.getXmlDesc(dom), c.getXmlDesc(dom)]);
    expect(results).toEqual(['xml-3', 'xml-4', 'xml-5']);
    await c.close();
  });

  it('pipelines 500 calls on one connection', async () => {
    daemon.on(Proc.CONNECT_GET_HOSTNAME, ({ header }) => str(`h${header.serial}`));
    const c = await connect();
    const names = await Promise.all(Array.from({ length: 500 }, () => c.hostname()));
    expect(new Set(names).size).toBe(500);
    await c.close();
  });

  it('does not mistake an event with serial 1 for the reply to call 1', async () => {
    // Call #1 is AUTH_LIST; make the event arrive while call #1 of a fresh Connection is pending.
    daemon.on(Proc.AUTH_LIST, ({ header, socket, daemon: d }) => {
      d.sendEvent(Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, lifecycle(0, 3), 1);
      setTimeout(() => d.reply(socket, header, new XdrWriter().array([0], 20, (w, v) => w.int(v)).toBuffer()), 20);
      return 'no-reply';
    });
    const conn = await Connection.open(daemon.socketPath);
    const events: number[] = [];
    conn.on('event', (proc) => events.push(proc));
    const reply = await conn.call(Proc.AUTH_LIST);
    expect(reply.readUInt32BE(0)).toBe(1);
    expect(events).toEqual([Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE]);
    conn.close();
  });

  it('rejects with a typed LibvirtError and keeps the connection usable', async () => {
    daemon.on(Proc.DOMAIN_MEMORY_STATS, () => ({ error: { code: 55, domain: 20, message: 'Requested operation is not valid: domain is not running' } }));
    daemon.on(Proc.CONNECT_GET_HOSTNAME, () => str('node1'));
    const c = await connect();
    const err = await c.memoryStats(dom).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).message).toBe('DOMAIN_MEMORY_STATS: Requested operation is not valid: domain is not running (code 55, domain 20)');
    expect(await c.hostname()).toBe('node1');
    await c.close();
  });

  it('returns null for absent metadata (code 80) and the element when present', async () => {
    let n = 0;
    daemon.on(Proc.DOMAIN_GET_METADATA, () => (n++ === 0 ? { error: { code: 80, domain: 20, message: 'metadata not found' } } : str('<instance/>')));
    const c = await connect();
    expect(await c.getMetadata(dom, 'http://openstack.org/xmlns/libvirt/nova/1.1')).toBeNull();
    expect(await c.getMetadata(dom, 'http://openstack.org/xmlns/libvirt/nova/1.1')).toBe('<instance/>');
    await c.close();
  });

  it('times out one call without disturbing the others', async () => {
    daemon.on(Proc.DOMAIN_GET_XML_DESC, () => 'no-reply');
    daemon.on(Proc.CONNECT_GET_HOSTNAME, () => str('node1'));
    const c = await connect({ callTimeoutMs: 100 });
    const slow = c.getXmlDesc(dom).catch((e: unknown) => e);
    expect(await c.hostname()).toBe('node1');
    const err = await slow;
    expect(err).toBeInstanceOf(CallTimeoutError);
    expect((err as Error).message).toMatch(/DOMAIN_GET_XML_DESC: no reply from libvirtd within 100 ms/);
    expect(c.closed).toBe(false);
    await c.close();
  });

  it('times out each call at its own timeout, a shorter one made after a longer one first', async () => {
    const held: Array<() => void> = [];
    daemon.on(Proc.CONNECT_GET_HOSTNAME, ({ socket, header, daemon: d }) => {
      held.push(() => d.reply(socket, header, str('node1')));
      return 'no-reply';
    });
    const conn = await Connection.open(daemon.socketPath);
    const t0 = performance.now();
    const ended = (p: Promise<Buffer>): Promise<{ ms: number; err: unknown }> =>
      p.then(
        () => ({ ms: performance.now() - t0, err: null }),
        (err: unknown) => ({ ms: performance.now() - t0, err }),
      );
    const long = ended(conn.call(Proc.CONNECT_GET_HOSTNAME, Buffer.alloc(0), 400));
    const short = ended(conn.call(Proc.CONNECT_GET_HOSTNAME, Buffer.alloc(0), 60));
    const none = ended(conn.call(Proc.CONNECT_GET_HOSTNAME, Buffer.alloc(0), 0));
    const s = await short;
    expect(s.err).toBeInstanceOf(CallTimeoutError);
    expect((s.err as Error).message).toMatch(/within 60 ms/);
    expect(s.ms).toBeGreaterThanOrEqual(59);
    const l = await long;
    expect(l.err).toBeInstanceOf(CallTimeoutError);
    expect((l.err as Error).message).toMatch(/within 400 ms/);
    expect(l.ms).toBeGreaterThanOrEqual(399);
    expect(conn.inFlight).toBe(1); // the call without a timeout still waits
    await until(() => held.length === 3);
    held[2]!(); // its reply
    expect((await none).err).toBeNull();
    // the two late replies are dropped, the connection is fine
    held[0]!();
    held[1]!();
    await until(() => conn.lateReplies === 2);
    expect(conn.closed).toBe(false);
    conn.close();
  });

  it('leaves no timer behind once its calls have settled', async () => {
    daemon.on(Proc.CONNECT_GET_HOSTNAME, () => str('node1'));
    const conn = await Connection.open(daemon.socketPath);
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const calls = Array.from({ length: 50 }, () => conn.call(Proc.CONNECT_GET_HOSTNAME, Buffer.alloc(0), 30_000));
    expect(timers()).toBe(before + 1); // one for all of them
    await Promise.all(calls);
    expect(timers()).toBe(before);
    conn.close();
  });

  it('fails every pending call at once when the daemon goes, with no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    daemon.on(Proc.DOMAIN_MEMORY_STATS, () => 'no-reply');
    const c = await connect();
    const closed = new Promise<Error | undefined>((r) => c.once('close', r));
    const calls = Array.from({ length: 20 }, () => c.memoryStats(dom));
    await until(() => daemon.callsOf(Proc.DOMAIN_MEMORY_STATS).length === 20);
    await daemon.crash();
    const results = await Promise.allSettled(calls);
    expect(results.every((r) => r.status === 'rejected' && r.reason instanceof ConnectionClosedError)).toBe(true);
    expect(await closed).toBeInstanceOf(ConnectionClosedError);
    await expect(c.hostname()).rejects.toBeInstanceOf(ConnectionClosedError);
    await new Promise((r) => setTimeout(r, 50));
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
  });
});

describe('bad frames from the daemon', () => {
  it('closes with a ProtocolError on an impossible length, failing pending calls', async () => {
    daemon.on(Proc.CONNECT_GET_HOSTNAME, () => 'no-reply');
    const c = await connect();
    const closed = new Promise<Error | undefined>((r) => c.once('close', r));
    const pending = c.hostname().catch((e: unknown) => e);
    await until(() => daemon.callsOf(Proc.CONNECT_GET_HOSTNAME).length === 1);
    daemon.sendRaw(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'));
    expect(await closed).toBeInstanceOf(ProtocolError);
    expect(await pending).toBeInstanceOf(ConnectionClosedError);
    expect(String(await pending)).toMatch(/bad packet length/);
  });

  it('fails only the call whose reply body is truncated', async () => {
    daemon.on(Proc.CONNECT_GET_HOSTNAME, () => Buffer.from([0, 0, 0, 9, 1, 2]));
    daemon.on(Proc.CONNECT_GET_LIB_VERSION, () => new XdrWriter().uhyper(9000000n).toBuffer());
    const c = await connect();
    await expect(c.hostname()).rejects.toThrow(/truncated CONNECT_GET_HOSTNAME reply/);
    expect(await c.libVersion()).toBe(9000000);
    await c.close();
  });

  it('closes on a reply for an unknown program instead of hanging', async () => {
    const c = await connect();
    const closed = new Promise<Error | undefined>((r) => c.once('close', r));
    const w = Buffer.alloc(28);
    w.writeUInt32BE(28, 0);
    w.writeUInt32BE(0x12345678, 4);
    daemon.sendRaw(w);
    expect(String(await closed)).toMatch(/unknown program 0x12345678/);
  });

  it('closes when a truncated frame is followed by the daemon hanging up', async () => {
    daemon.on(Proc.CONNECT_GET_HOSTNAME, ({ socket }) => {
      socket.end(Buffer.from([0, 0, 0, 100, 0x20, 0, 0x80]));
      return 'no-reply';
    });
    const c = await connect();
    await expect(c.hostname()).rejects.toBeInstanceOf(ConnectionClosedError);
  });
});

describe('keepalive', () => {
  it('answers a daemon PING with a PONG', async () => {
    const c = await connect();
    daemon.sendKeepalive(1);
    await until(() => daemon.keepalives.some((h) => h.proc === 2));
    expect(c.conn.keepaliveStats).toMatchObject({ pingsReceived: 1, pongsSent: 1 });
    await c.close();
  });

  it('pings when idle and declares a silent daemon dead', async () => {
    const c = await connect({ keepaliveIntervalMs: 50, keepaliveCount: 2 });
    // the fake answers PINGs: the connection stays up well past interval * (count + 1)
    await new Promise((r) => setTimeout(r, 400));
    expect(c.closed).toBe(false);
    expect(c.conn.keepaliveStats.pingsSent).toBeGreaterThan(1);
    expect(c.conn.keepaliveStats.pongsReceived).toBeGreaterThan(0);
    // now a hung daemon: the socket stays open but nothing comes back
    for (const s of daemon.sockets) s.pause();
    const err = await new Promise<Error | undefined>((r) => c.once('close', r));
    expect(String(err)).toMatch(/sent nothing for \d+ ms \(keepalive lost\)/);
  });
});

describe('events', () => {
  it('delivers lifecycle events for registered callbacks only, and stops after deregistering', async () => {
    const c = await connect();
    const got: LifecycleEventMsg[] = [];
    c.on('lifecycle', (e) => got.push(e));
    const id = await c.registerEvent(EventId.LIFECYCLE);
    daemon.sendEvent(Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, lifecycle(id, 3));
    daemon.sendEvent(Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, lifecycle(id + 100, 4)); // not ours
    await until(() => got.length === 1);
    expect(got[0]).toEqual({ callbackId: id, domain: dom, event: 3, detail: 0 });
    await c.deregisterEvent(id);
    daemon.sendEvent(Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, lifecycle(id, 4));
    await c.hostname().catch(() => undefined); // a round trip, so the event has arrived if it was coming
    expect(got).toHaveLength(1);
    await c.close();
  });

  it('drops an undecodable event with a reason and keeps the connection', async () => {
    daemon.on(Proc.CONNECT_GET_HOSTNAME, () => str('node1'));
    const c = await connect();
    await c.registerEvent(EventId.LIFECYCLE);
    const errors: Error[] = [];
    c.on('eventError', (e) => errors.push(e));
    daemon.sendEvent(Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE, Buffer.from([0, 0, 0, 0, 0, 0]));
    expect(await c.hostname()).toBe('node1');
    expect(errors.map(String)).toEqual([expect.stringMatching(/libvirt event \(procedure 318\) dropped: truncated lifecycle event/)]);
    await c.close();
  });
});
