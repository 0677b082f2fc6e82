import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { AgentMetrics } from '../../src/agent/metrics.js';
import { LibvirtClient } from '../../src/libvirt/client.js';
import { Connection, type CallOutcome } from '../../src/libvirt/connection.js';
import { CallTimeoutError, ConnectionClosedError, LibvirtError } from '../../src/libvirt/errors.js';
import { Proc, procName, type DomainRef } from '../../src/libvirt/protocol.js';
import { Supervisor } from '../../src/libvirt/supervisor.js';
import { XdrWriter } from '../../src/libvirt/xdr.js';
import { FakeLibvirtd } from '../support/fake-libvirtd.js';

interface Report {
  proc: string;
  outcome: CallOutcome;
  durationMs: number;
}

const dom: DomainRef = { name: 'instance-00000001', uuid: 'c0ffee00-0000-4000-8000-000000000001', id: 1 };
const str = (s: string): Buffer => new XdrWriter().string(s).toBuffer();

let daemon: FakeLibvirtd;
let reports: Report[];
const onCall = (proc: number, durationMs: number, outcome: CallOutcome): void => void reports.push({ proc: procName(proc), outcome, durationMs });
/** the reports without durations, for toEqual */
const seen = (): Array<[string, CallOutcome]> => reports.map((r) => [r.proc, r.outcome]);

beforeEach(async () => {
  daemon = await FakeLibvirtd.start();
  daemon.on(Proc.CONNECT_GET_HOSTNAME, () => str('node1'));
  reports = [];
});
afterEach(async () => {
  await daemon.stop();
});

const connect = (extra: Parameters<typeof LibvirtClient.connect>[0] = {}): Promise<LibvirtClient> =>
  LibvirtClient.connect({ uri: `test+unix:///default?socket=${daemon.socketPath}`, onCall, ...extra });

describe('ConnectionOptions.onCall', () => {
  it('reports the handshake and a successful call once each, as ok, with a duration', async () => {
    const c = await connect();
    expect(await c.hostname()).toBe('node1');
    expect(seen()).toEqual([['AUTH_LIST', 'ok'], ['CONNECT_OPEN', 'ok'], ['CONNECT_GET_HOSTNAME', 'ok']]);
    for (const r of reports) expect(r.durationMs).toBeGreaterThanOrEqual(0);
    await c.close();
  });

  it('reports an error reply as error, once', async () => {
    daemon.on(Proc.DOMAIN_MEMORY_STATS, () => ({ error: { code: 55, domain: 20, message: 'domain is not running' } }));
    const c = await connect();
    reports = [];
    await expect(c.memoryStats(dom)).rejects.toBeInstanceOf(LibvirtError);
    expect(seen()).toEqual([['DOMAIN_MEMORY_STATS', 'error']]);
    await c.close();
  });

  it('reports a timeout as timeout, once, and not again when the late reply comes', async () => {
    const late: Array<() => void> = [];
    daemon.on(Proc.DOMAIN_GET_XML_DESC, ({ header, socket, daemon: d }) => {
      late.push(() => d.reply(socket, header, str('<domain/>')));
      return 'no-reply';
    });
    const c = await connect({ callTimeoutMs: 50 });
    reports = [];
    await expect(c.getXmlDesc(dom)).rejects.toBeInstanceOf(CallTimeoutError);
    for (const send of late) send();
    // the socket is ordered: this reply comes after the late one, which is dropped by then
    expect(await c.hostname()).toBe('node1');
    expect(seen()).toEqual([['DOMAIN_GET_XML_DESC', 'timeout'], ['CONNECT_GET_HOSTNAME', 'ok']]);
    await c.close();
  });

  it('reports calls failed by the connection closing, and calls made after, as error', async () => {
    daemon.on(Proc.DOMAIN_MEMORY_STATS, () => 'no-reply');
    const c = await connect();
    reports = [];
    const pending = c.memoryStats(dom).catch((e: unknown) => e);
    while (daemon.callsOf(Proc.DOMAIN_MEMORY_STATS).length === 0) await new Promise((r) => setTimeout(r, 5));
    await daemon.crash();
    expect(await pending).toBeInstanceOf(ConnectionClosedError);
    await expect(c.hostname()).rejects.toBeInstanceOf(ConnectionClosedError);
    expect(seen()).toEqual([['DOMAIN_MEMORY_STATS', 'error'], ['CONNECT_GET_HOSTNAME', 'error']]);
  });

  it('does not let a throwing observer change what the caller sees', async () => {
    const conn = await Connection.open(daemon.socketPath, {
      onCall: () => {
        throw new Error('observer bug');
      },
    });
    const reply = await conn.call(Proc.CONNECT_GET_HOSTNAME);
    expect(reply).toEqual(str('node1'));
    conn.close();
  });

  it('is optional: without it calls behave as before', async () => {
    const c = await LibvirtClient.connect({ uri: `test+unix:///default?socket=${daemon.socketPath}` });
    expect(await c.hostname()).toBe('node1');
    expect(reports).toEqual([]);
    await c.close();
  });
});

describe('onCall through the Supervisor', () => {
  it('reaches the connections the supervisor makes (SupervisorOptions extends ClientOptions)', async () => {
    const sup = new Supervisor({ uri: `qemu+unix:///system?socket=${daemon.socketPath}`, onCall, backoff: { initialMs: 20, jitter: 0 } });
    sup.start();
    try {
      const c = await sup.waitConnected();
      await c.hostname();
      expect(seen()).toEqual([
        ['AUTH_LIST', 'ok'],
        ['CONNECT_OPEN', 'ok'],
        ['CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY', 'ok'],
        ['CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY', 'ok'],
        ['CONNECT_GET_HOSTNAME', 'ok'],
      ]);
    } finally {
      await sup.stop();
    }
  });
});

describe('AgentMetrics.libvirtCallObserver', () => {
  it('feeds ceilopoll_libvirt_call_duration_seconds by procedure name and outcome', async () => {
    daemon.on(Proc.DOMAIN_MEMORY_STATS, () => ({ error: { code: 55, domain: 20, message: 'domain is not running' } }));
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const c = await connect({ onCall: metrics.libvirtCallObserver() });
    await c.hostname();
    await c.memoryStats(dom).catch(() => undefined);
    await c.close();
    const text = await metrics.render();
    const count = (procedure: string, outcome: string): string | undefined =>
      text.split('\n').find((l) => l.startsWith(`ceilopoll_libvirt_call_duration_seconds_count{procedure="${procedure}",outcome="${outcome}"}`))?.split(' ')[1];
    expect(count('CONNECT_GET_HOSTNAME', 'ok')).toBe('1');
    expect(count('DOMAIN_MEMORY_STATS', 'error')).toBe('1');
    expect(count('AUTH_LIST', 'ok')).toBe('1');
    expect(count('CONNECT_CLOSE', 'ok')).toBe('1');
  });
});
