import { describe, expect, it } from 'vitest';

import { ProtocolError } from '../../src/libvirt/errors.js';
import { FrameSplitter, MAX_PACKET, MessageType, REMOTE_PROGRAM, encodePacket, type Header } from '../../src/libvirt/wire.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const call = (proc: number, serial: number): Header => ({ prog: REMOTE_PROGRAM, vers: 1, proc, type: MessageType.CALL, serial, status: 0 });

describe('packet encoding', () => {
  it('produces the AUTH_LIST call bytes libvirtd 9.0.0 accepted (docs/libvirt-rpc.md §1.1)', () => {
    expect(encodePacket(call(66, 1))).toEqual(hex('0000001c 20008086 00000001 00000042 00000000 00000001 00000000'));
  });

  it('counts the length word itself in the length', () => {
    const p = encodePacket(call(1, 2), Buffer.alloc(12));
    expect(p.readUInt32BE(0)).toBe(p.length);
    expect(p.length).toBe(40);
  });
});

describe('FrameSplitter', () => {
  const a = encodePacket(call(66, 1));
  const b = encodePacket(call(1, 2), hex('00000001 0000000e 71656d75 3a2f2f2f 73797374 656d0000 00000000'));
  const c = encodePacket({ ...call(318, 1), type: MessageType.MESSAGE }, Buffer.alloc(100, 7));

  it('yields several packets from one read', () => {
    const out = new FrameSplitter().push(Buffer.concat([a, b, c]));
    expect(out.map((p) => p.header.proc)).toEqual([66, 1, 318]);
    expect(out[1]!.payload).toEqual(b.subarray(28));
    expect(out[2]!.payload).toEqual(Buffer.alloc(100, 7));
  });

  it('assembles packets fed one byte at a time', () => {
    const s = new FrameSplitter();
    const all = Buffer.concat([a, b, c]);
    const out = [];
    for (let i = 0; i < all.length; i++) out.push(...s.push(all.subarray(i, i + 1)));
    expect(out.map((p) => [p.header.proc, p.header.serial, p.payload.length])).toEqual([[66, 1, 0], [1, 2, 28], [318, 1, 100]]);
    expect(s.buffered).toBe(0);
  });

  it('handles any split point across two packets', () => {
    const all = Buffer.concat([b, c]);
    for (let cut = 0; cut <= all.length; cut++) {
      const s = new FrameSplitter();
      const out = [...s.push(all.subarray(0, cut)), ...s.push(all.subarray(cut))];
      expect(out.map((p) => p.header.proc)).toEqual([1, 318]);
    }
  });

  it('keeps a partial packet until the rest arrives', () => {
    const s = new FrameSplitter();
    expect(s.push(c.subarray(0, 50))).toEqual([]);
    expect(s.buffered).toBe(50);
    expect(s.push(c.subarray(50))).toHaveLength(1);
  });

  it('assembles a large packet from many reads', () => {
    const big = encodePacket(call(344, 9), Buffer.alloc(1_000_000, 1));
    const s = new FrameSplitter();
    const out = [];
    for (let i = 0; i < big.length; i += 65536) out.push(...s.push(big.subarray(i, i + 65536)));
    expect(out).toHaveLength(1);
    expect(out[0]!.payload.length).toBe(1_000_000);
  });

  it('rejects a length under 28 as a protocol error', () => {
    expect(() => new FrameSplitter().push(hex('0000001b 00000000 00000000 00000000 00000000 00000000 000000'))).toThrow(ProtocolError);
    expect(() => new FrameSplitter().push(hex('00000000'))).toThrow(/bad packet length 0/);
  });

  it('rejects a length over the 32 MiB limit as soon as the length word arrives', () => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(MAX_PACKET + 1);
    expect(() => new FrameSplitter().push(len)).toThrow(/bad packet length 33554437/);
    len.writeUInt32BE(MAX_PACKET);
    expect(new FrameSplitter().push(len)).toEqual([]); // legal, waits for the rest
  });

  it('rejects garbage (an HTTP request is not libvirt) and stays failed', () => {
    const s = new FrameSplitter();
    expect(() => s.push(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toThrow(ProtocolError);
    expect(() => s.push(a)).toThrow(ProtocolError);
  });

  it('never throws anything but ProtocolError on random input', () => {
    let seed = 42;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 2000; i++) {
      const s = new FrameSplitter();
      const n = Math.floor(rnd() * 64);
      const buf = Buffer.alloc(n);
      for (let j = 0; j < n; j++) buf[j] = Math.floor(rnd() * 256);
      // a plausible length half of the time, so the header path runs too
      if (n >= 4 && rnd() < 0.5) buf.writeUInt32BE(28 + Math.floor(rnd() * 40), 0);
      try {
        for (const p of s.push(buf)) expect(p.payload.length).toBeGreaterThanOrEqual(0);
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError);
      }
    }
  });
});
