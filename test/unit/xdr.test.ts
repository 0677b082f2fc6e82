import { describe, expect, it } from 'vitest';

import { ProtocolError } from '../../src/libvirt/errors.js';
import { XdrReader, XdrWriter, readTypedParam, writeTypedParam, type TypedParam } from '../../src/libvirt/xdr.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('XDR primitives', () => {
  it('encodes a string with its length and zero padding to 4 bytes', () => {
    // "qemu:///system" from docs/libvirt-rpc.md §1.1: length 14, two pad bytes
    expect(new XdrWriter().string('qemu:///system').toBuffer()).toEqual(hex('0000000e 71656d75 3a2f2f2f 73797374 656d0000'));
    expect(new XdrWriter().string('').toBuffer()).toEqual(hex('00000000'));
    expect(new XdrWriter().string('abcd').toBuffer()).toEqual(hex('00000004 61626364'));
  });

  it('round-trips UTF-8 strings byte-exactly', () => {
    const s = 'inst\u00e9-\u{1F600}';
    const b = new XdrWriter().string(s).toBuffer();
    expect(b.length % 4).toBe(0);
    expect(new XdrReader(b).string()).toBe(s);
  });

  it('encodes signed and unsigned words and hypers big-endian', () => {
    const b = new XdrWriter().int(-1).uint(0x20008086).hyper(-2n).uhyper(2n ** 64n - 1n).double(1.5).toBuffer();
    expect(b).toEqual(hex('ffffffff 20008086 fffffffffffffffe ffffffffffffffff 3ff8000000000000'));
    const r = new XdrReader(b);
    expect([r.int(), r.uint(), r.hyper(), r.uhyper(), r.double()]).toEqual([-1, 0x20008086, -2n, 2n ** 64n - 1n, 1.5]);
    r.end();
  });

  it('reads an unsigned hyper as the Number that Number(uhyper()) gives, rounding included', () => {
    const values = [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 32n + 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 53n + 3n, 2n ** 63n + 2n ** 11n - 1n, 2n ** 63n + 2n ** 11n, 2n ** 64n - 1n];
    // and some at random, across the whole range
    let x = 0x9e3779b97f4a7c15n;
    for (let i = 0; i < 200; i++) {
      x = (x * 6364136223846793005n + 1442695040888963407n) & (2n ** 64n - 1n);
      values.push(x >> BigInt(i % 40));
    }
    const w = new XdrWriter();
    for (const v of values) w.uhyper(v);
    const b = w.toBuffer();
    const asBig = new XdrReader(b);
    const asNumber = new XdrReader(b);
    for (const v of values) {
      const want = Number(asBig.uhyper());
      expect([v, asNumber.uhyperNumber()]).toEqual([v, want]);
    }
    asNumber.end();
    expect(() => new XdrReader(hex('00000000 000000')).uhyperNumber()).toThrow(ProtocolError);
  });

  it('reads any non-zero bool word as true, as glibc does', () => {
    const r = new XdrReader(hex('00000000 00000001 01000000'));
    expect([r.bool(), r.bool(), r.bool()]).toEqual([false, true, true]);
  });

  it('encodes optional values as a bool word then the value', () => {
    expect(new XdrWriter().optional(null, (w, v: string) => w.string(v)).toBuffer()).toEqual(hex('00000000'));
    expect(new XdrWriter().optional('ab', (w, v) => w.string(v)).toBuffer()).toEqual(hex('00000001 00000002 61620000'));
  });

  it('pads fixed opaque data', () => {
    expect(new XdrWriter().fixedOpaque(Buffer.from([1, 2, 3]), 3).toBuffer()).toEqual(hex('01020300'));
    expect(new XdrReader(hex('01020300')).fixedOpaque(3)).toEqual(Buffer.from([1, 2, 3]));
  });
});

describe('XDR bounds', () => {
  it('rejects truncated input with the item and offset', () => {
    expect(() => new XdrReader(hex('0000')).int()).toThrow(ProtocolError);
    expect(() => new XdrReader(hex('00000008 6162')).string()).toThrow(/truncated.*string body/);
    expect(() => new XdrReader(hex('00000001 0000')).hyper()).toThrow(/truncated/);
  });

  it('rejects strings longer than the maximum before reading them', () => {
    expect(() => new XdrReader(hex('00000010') ).string(8)).toThrow(/exceeds the maximum 8/);
    expect(() => new XdrReader(hex('ffffffff')).string()).toThrow(/exceeds the maximum 4194304/);
  });

  it('rejects arrays over their maximum, and counts larger than the bytes left, without allocating', () => {
    expect(() => new XdrReader(hex('00000015')).array(20, (r) => r.int())).toThrow(/21 elements exceeds the maximum 20/);
    expect(() => new XdrReader(hex('00004000 00000001')).array(16384, (r) => r.int())).toThrow(/claims 16384 elements/);
  });

  it('rejects trailing bytes after a complete struct', () => {
    const r = new XdrReader(hex('00000001 00000002'), 'test reply');
    r.int();
    expect(() => r.end()).toThrow(/test reply: 4 unexpected trailing bytes/);
  });

  it('refuses to write over-long strings and arrays', () => {
    expect(() => new XdrWriter().string('abcdefghi', 8)).toThrow(RangeError);
    expect(() => new XdrWriter().array([1, 2, 3], 2, (w, v) => w.int(v))).toThrow(RangeError);
  });
});

describe('typed parameters', () => {
  const all: TypedParam[] = [
    { field: 'state.state', value: { type: 'int', value: -3 } },
    { field: 'u', value: { type: 'uint', value: 4_000_000_000 } },
    { field: 'l', value: { type: 'llong', value: -(2n ** 62n) } },
    { field: 'balloon.available', value: { type: 'ullong', value: 2n ** 64n - 1n } },
    { field: 'd', value: { type: 'double', value: 0.1 } },
    { field: 'b', value: { type: 'boolean', value: true } },
    { field: 's', value: { type: 'string', value: 'hello' } },
  ];

  it('round-trips all seven types', () => {
    const w = new XdrWriter();
    for (const p of all) writeTypedParam(w, p);
    const r = new XdrReader(w.toBuffer());
    expect(all.map(() => readTypedParam(r))).toEqual(all);
    r.end();
  });

  it('matches the wire layout: field, discriminant, value', () => {
    const w = new XdrWriter();
    writeTypedParam(w, { field: 'state.state', value: { type: 'int', value: 1 } });
    expect(w.toBuffer()).toEqual(hex('0000000b 73746174 652e7374 61746500 00000001 00000001'));
    const w2 = new XdrWriter();
    writeTypedParam(w2, { field: 'x', value: { type: 'ullong', value: 131072n } });
    expect(w2.toBuffer()).toEqual(hex('00000001 78000000 00000004 0000000000020000'));
  });

  it('fails the whole reply on an unknown discriminant (its length is unknown)', () => {
    const b = hex('00000001 78000000 00000008 00000001');
    expect(() => readTypedParam(new XdrReader(b))).toThrow(/"x" has unknown type 8/);
  });
});
