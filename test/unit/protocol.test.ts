import { describe, expect, it } from 'vitest';

import {
  GetAllStatsFlags,
  Proc,
  StatsGroup,
  U64_MAX_AS_NUMBER,
  decode,
  decodeRemoteError,
  encode,
  uuidFromBytes,
  uuidToBytes,
  writeDomain,
  type DomainRef,
} from '../../src/libvirt/protocol.js';
import { XdrWriter, writeTypedParam } from '../../src/libvirt/xdr.js';
import { encodePacket, MessageType, REMOTE_PROGRAM } from '../../src/libvirt/wire.js';
import { encodeRemoteError } from '../support/fake-libvirtd.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const dom: DomainRef = { name: 'instance-00000001', uuid: 'c0ffee00-0000-4000-8000-000000000001', id: 3 };

describe('procedure arguments', () => {
  it('CONNECT_OPEN matches the bytes libvirtd 9.0.0 accepted', () => {
    const pkt = encodePacket({ prog: REMOTE_PROGRAM, vers: 1, proc: Proc.CONNECT_OPEN, type: MessageType.CALL, serial: 2, status: 0 },
      encode.connectOpen('qemu:///system', 0));
    expect(pkt).toEqual(hex(`00000038 20008086 00000001 00000001 00000000 00000002 00000000
      00000001 0000000e 71656d75 3a2f2f2f 73797374 656d0000 00000000`));
  });

  it('GET_ALL_DOMAIN_STATS(doms=[], STATE|BALLOON, NOWAIT) matches the documented bytes', () => {
    const pkt = encodePacket({ prog: REMOTE_PROGRAM, vers: 1, proc: Proc.CONNECT_GET_ALL_DOMAIN_STATS, type: 0, serial: 3, status: 0 },
      encode.getAllDomainStats([], StatsGroup.STATE | StatsGroup.BALLOON, GetAllStatsFlags.NOWAIT));
    expect(pkt).toEqual(hex('00000028 20008086 00000001 00000158 00000000 00000003 00000000 00000000 00000005 20000000'));
  });

  it('sends a domain back as name, 16 raw uuid bytes and id', () => {
    const b = encode.memoryStats(dom, 13, 0);
    expect(b).toEqual(hex(`00000011 696e7374 616e6365 2d303030 30303030 31000000
      c0ffee00 00004000 80000000 00000001 00000003 0000000d 00000000`));
  });

  it('encodes GET_METADATA with the namespace as an optional string', () => {
    const b = encode.getMetadata(dom, 2, 'ns', 0);
    // after the 44-byte domain (4 + 20 name, 16 uuid, 4 id): type ELEMENT, present, length 2, "ns" + padding, flags 0
    expect(b.subarray(44)).toEqual(hex('00000002 00000001 00000002 6e730000 00000000'));
  });

  it('encodes ENFORCE_STATS as the top bit, unsigned', () => {
    const b = encode.getAllDomainStats([], 4, GetAllStatsFlags.ENFORCE_STATS);
    expect(b).toEqual(hex('00000000 00000004 80000000'));
  });

  it('converts uuids both ways and rejects malformed ones', () => {
    expect(uuidFromBytes(uuidToBytes(dom.uuid))).toBe(dom.uuid);
    expect(() => uuidToBytes('not-a-uuid')).toThrow(/not a uuid/);
  });

  it('reads a uuid as 32 hex digits in any case, dashes anywhere, and nothing else', () => {
    const bytes = '00112233445566778899aabbccddeeff';
    for (const ok of ['00112233-4455-6677-8899-aabbccddeeff', '00112233445566778899AABBCCDDEEFF', '-0011-2233445566778899aAbBcCdDeEfF--']) {
      expect(uuidToBytes(ok).toString('hex')).toBe(bytes);
    }
    for (const bad of ['', '-'.repeat(36), '00112233-4455-6677-8899-aabbccddeef', '00112233-4455-6677-8899-aabbccddeeff0', '00112233-4455-6677-8899-aabbccddeefg', '00112233 4455-6677-8899-aabbccddeeff', '00112233-4455-6677-8899-aabbccddee\u00ff']) {
      expect(() => uuidToBytes(bad), bad).toThrow(/not a uuid/);
    }
  });
});

describe('replies', () => {
  it('decodes the remote_error seen live for an unknown domain', () => {
    const e = decodeRemoteError(encodeRemoteError({
      code: 42, domain: 10, message: 'Domain not found: no domain with matching uuid', str1: 'Domain not found: %s', str2: 'no domain', int1: -1, int2: -1,
    }));
    expect(e).toMatchObject({ code: 42, domain: 10, level: 2, message: 'Domain not found: no domain with matching uuid', str1: 'Domain not found: %s', str3: null });
  });

  it('decodes memory stats by name in any tag order and ignores unknown tags', () => {
    const w = new XdrWriter().uint(5);
    for (const [tag, val] of [[6, 131072n], [99, 1n], [5, 120000n], [9, 1_764_158_400n], [7, 2n ** 64n - 1n]] as const) w.int(tag).uhyper(val);
    expect(decode.memoryStats(w.toBuffer())).toEqual({ actual: 131072, available: 120000, last_update: 1_764_158_400, rss: U64_MAX_AS_NUMBER });
  });

  it('rejects a memory stats reply over its 1024-entry maximum', () => {
    expect(() => decode.memoryStats(hex('00000401'))).toThrow(/1025 entries exceeds the maximum 1024/);
  });

  it('decodes a bulk stats record into state, balloon (last-update with its hyphen) and raw params', () => {
    const w = new XdrWriter().uint(1);
    writeDomain(w, dom);
    const params = [
      { field: 'state.state', value: { type: 'int' as const, value: 1 } },
      { field: 'state.reason', value: { type: 'int' as const, value: 5 } },
      { field: 'balloon.current', value: { type: 'ullong' as const, value: 131072n } },
      { field: 'balloon.last-update', value: { type: 'ullong' as const, value: 1700000000n } },
      { field: 'balloon.usable', value: { type: 'ullong' as const, value: 90000n } },
      { field: 'vcpu.0.time', value: { type: 'ullong' as const, value: 2n ** 60n } },
    ];
    w.array(params, 1000, writeTypedParam);
    const [rec] = decode.allDomainStats(w.toBuffer());
    expect(rec!.domain).toEqual(dom);
    expect(rec!.state).toEqual({ state: 1, reason: 5 });
    expect(rec!.balloon).toEqual({ current: 131072, last_update: 1700000000, usable: 90000 });
    expect(rec!.params['vcpu.0.time']).toBe(2n ** 60n);
  });

  it('leaves balloon undefined when the driver sent no balloon group', () => {
    const w = new XdrWriter().uint(1);
    writeDomain(w, dom);
    w.array([{ field: 'state.state', value: { type: 'int' as const, value: 5 } }], 10, writeTypedParam);
    const [rec] = decode.allDomainStats(w.toBuffer());
    expect(rec!.balloon).toBeUndefined();
    expect(rec!.state).toEqual({ state: 5, reason: 0 });
  });

  it('decodes LIST_ALL_DOMAINS and rejects trailing garbage', () => {
    const w = new XdrWriter().uint(1);
    writeDomain(w, dom);
    w.uint(1);
    expect(decode.listAllDomains(w.toBuffer())).toEqual([dom]);
    expect(() => decode.listAllDomains(Buffer.concat([w.toBuffer(), hex('00000000')]))).toThrow(/trailing/);
  });

  it('decodes lifecycle and metadata-change events', () => {
    const w = new XdrWriter().int(7);
    writeDomain(w, dom);
    w.int(3).int(0);
    expect(decode.lifecycleEvent(w.toBuffer())).toEqual({ callbackId: 7, domain: dom, event: 3, detail: 0 });
    const m = new XdrWriter().int(8);
    writeDomain(m, dom);
    m.int(2).optional('http://openstack.org/xmlns/libvirt/nova/1.1', (x, v) => x.string(v));
    expect(decode.metadataChangeEvent(m.toBuffer())).toEqual({ callbackId: 8, domain: dom, type: 2, nsuri: 'http://openstack.org/xmlns/libvirt/nova/1.1' });
  });
});
