// XDR (RFC 4506) as libvirt's rpcgen output uses it: every item is padded to 4 bytes, `char` and
// `short` travel as full words, an optional value ("pointer") is a bool word followed by the value,
// and variable arrays and strings carry a u32 count that is checked against the protocol's maximum
// *before* anything is allocated. See docs/libvirt-rpc.md §1.2.

import { ProtocolError } from './errors.js';

/** libvirt's REMOTE_STRING_MAX: the longest string any procedure may carry. */
export const REMOTE_STRING_MAX = 4_194_304;

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

export class XdrReader {
  private offset = 0;

  constructor(private readonly buf: Buffer, private readonly what = 'XDR payload') {}

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private need(n: number, item: string): void {
    if (n > this.remaining) {
      throw new ProtocolError(
        `truncated ${this.what}: ${item} needs ${n} bytes at offset ${this.offset}, only ${this.remaining} left`,
      );
    }
  }

  int(): number {
    this.need(4, 'int');
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  uint(): number {
    this.need(4, 'unsigned int');
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  /** glibc's xdr_bool takes any non-zero word as true; so do we. */
  bool(): boolean {
    return this.int() !== 0;
  }

  hyper(): bigint {
    this.need(8, 'hyper');
    const v = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  uhyper(): bigint {
    this.need(8, 'unsigned hyper');
    const v = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  /**
   * An unsigned hyper as a Number: the same value as Number(uhyper()), exact up to 2^53 and
   * rounded to the nearest double above (hi * 2^32 is exact, so the sum is rounded once), without
   * allocating a BigInt.
   */
  uhyperNumber(): number {
    this.need(8, 'unsigned hyper');
    const v = this.buf.readUInt32BE(this.offset) * 4294967296 + this.buf.readUInt32BE(this.offset + 4);
    this.offset += 8;
    return v;
  }

  double(): number {
    this.need(8, 'double');
    const v = this.buf.readDoubleBE(this.offset);
    this.offset += 8;
    return v;
  }

  /** A length-prefixed UTF-8 string of at most `max` bytes. */
  string(max = REMOTE_STRING_MAX): string {
    const len = this.uint();
    if (len > max) throw new ProtocolError(`${this.what}: string of ${len} bytes exceeds the maximum ${max}`);
    this.need(len + pad4(len), 'string body');
    const s = this.buf.toString('utf8', this.offset, this.offset + len);
    this.offset += len + pad4(len);
    return s;
  }

  /** Fixed-length opaque data (e.g. remote_uuid, 16 bytes). */
  fixedOpaque(n: number): Buffer {
    this.need(n + pad4(n), 'opaque');
    const b = Buffer.from(this.buf.subarray(this.offset, this.offset + n));
    this.offset += n + pad4(n);
    return b;
  }

  optional<T>(read: (r: XdrReader) => T): T | null {
    return this.bool() ? read(this) : null;
  }

  /** A variable-length array; the count is checked against `max` before reading any element. */
  array<T>(max: number, read: (r: XdrReader) => T, item = 'array'): T[] {
    const count = this.uint();
    if (count > max) throw new ProtocolError(`${this.what}: ${item} of ${count} elements exceeds the maximum ${max}`);
    // Every XDR element takes at least 4 bytes: a count larger than the bytes left is a lie.
    if (count * 4 > this.remaining) {
      throw new ProtocolError(`truncated ${this.what}: ${item} claims ${count} elements, only ${this.remaining} bytes left`);
    }
    const out: T[] = new Array<T>(count);
    for (let i = 0; i < count; i++) out[i] = read(this);
    return out;
  }

  /** Decoding a reply must consume it exactly: trailing bytes mean we decoded the wrong struct. */
  end(): void {
    if (this.remaining !== 0) {
      throw new ProtocolError(`${this.what}: ${this.remaining} unexpected trailing bytes`);
    }
  }
}

/** Writes into one growing buffer: a call's arguments are a few words, not a buffer per item. */
export class XdrWriter {
  private buf = Buffer.allocUnsafe(64);
  private at = 0;

  /** makes room for n more bytes */
  private room(n: number): Buffer {
    if (this.at + n > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.at + n));
      this.buf.copy(bigger, 0, 0, this.at);
      this.buf = bigger;
    }
    return this.buf;
  }

  /** zero bytes up to the next multiple of 4 */
  private pad(n: number): void {
    const p = pad4(n);
    if (p > 0) {
      this.room(p).fill(0, this.at, this.at + p);
      this.at += p;
    }
  }

  int(v: number): this {
    this.at = this.room(4).writeInt32BE(v, this.at);
    return this;
  }

  uint(v: number): this {
    this.at = this.room(4).writeUInt32BE(v >>> 0, this.at);
    return this;
  }

  bool(v: boolean): this {
    return this.int(v ? 1 : 0);
  }

  hyper(v: bigint): this {
    this.at = this.room(8).writeBigInt64BE(v, this.at);
    return this;
  }

  uhyper(v: bigint): this {
    this.at = this.room(8).writeBigUInt64BE(v, this.at);
    return this;
  }

  double(v: number): this {
    this.at = this.room(8).writeDoubleBE(v, this.at);
    return this;
  }

  string(s: string, max = REMOTE_STRING_MAX): this {
    const len = Buffer.byteLength(s, 'utf8');
    if (len > max) throw new RangeError(`string of ${len} bytes exceeds the XDR maximum ${max}`);
    this.uint(len);
    this.at += this.room(len).write(s, this.at, 'utf8');
    this.pad(len);
    return this;
  }

  fixedOpaque(b: Buffer, n: number): this {
    if (b.length !== n) throw new RangeError(`fixed opaque needs exactly ${n} bytes, got ${b.length}`);
    this.room(n).set(b, this.at);
    this.at += n;
    this.pad(n);
    return this;
  }

  optional<T>(v: T | null | undefined, write: (w: XdrWriter, v: T) => void): this {
    if (v === null || v === undefined) return this.bool(false);
    this.bool(true);
    write(this, v);
    return this;
  }

  array<T>(items: readonly T[], max: number, write: (w: XdrWriter, v: T) => void): this {
    if (items.length > max) throw new RangeError(`array of ${items.length} elements exceeds the XDR maximum ${max}`);
    this.uint(items.length);
    for (const it of items) write(this, it);
    return this;
  }

  /** What was written: a view of the writer's buffer, which later writes do not change. */
  toBuffer(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

// ---- typed parameters (virTypedParameter on the wire) ---------------------------------------------

/** The discriminant of remote_typed_param_value (VIR_TYPED_PARAM_*). */
export const TypedParamType = {
  Int: 1,
  UInt: 2,
  LLong: 3,
  ULLong: 4,
  Double: 5,
  Boolean: 6,
  String: 7,
} as const;

/**
 * One typed parameter. 64-bit integers stay `bigint` so nothing is rounded (cpu.time in ns passes
 * 2^53); callers that know a field is small (KiB of memory) convert it.
 */
export type TypedParamValue =
  | { type: 'int'; value: number }
  | { type: 'uint'; value: number }
  | { type: 'llong'; value: bigint }
  | { type: 'ullong'; value: bigint }
  | { type: 'double'; value: number }
  | { type: 'boolean'; value: boolean }
  | { type: 'string'; value: string };

export interface TypedParam {
  field: string;
  value: TypedParamValue;
}

/** VIR_TYPED_PARAM_FIELD_LENGTH is 80, but the remote protocol only bounds the field by REMOTE_STRING_MAX. */
export function readTypedParam(r: XdrReader): TypedParam {
  const field = r.string();
  const disc = r.int();
  switch (disc) {
    case TypedParamType.Int:
      return { field, value: { type: 'int', value: r.int() } };
    case TypedParamType.UInt:
      return { field, value: { type: 'uint', value: r.uint() } };
    case TypedParamType.LLong:
      return { field, value: { type: 'llong', value: r.hyper() } };
    case TypedParamType.ULLong:
      return { field, value: { type: 'ullong', value: r.uhyper() } };
    case TypedParamType.Double:
      return { field, value: { type: 'double', value: r.double() } };
    case TypedParamType.Boolean:
      return { field, value: { type: 'boolean', value: r.int() !== 0 } };
    case TypedParamType.String:
      return { field, value: { type: 'string', value: r.string() } };
    default:
      // The arm's length is unknown, so nothing after it can be decoded: fail the whole reply.
      throw new ProtocolError(`typed parameter "${field}" has unknown type ${disc}; cannot decode the rest of the reply`);
  }
}

export function writeTypedParam(w: XdrWriter, p: TypedParam): void {
  w.string(p.field);
  const v = p.value;
  switch (v.type) {
    case 'int':
      w.int(TypedParamType.Int).int(v.value);
      break;
    case 'uint':
      w.int(TypedParamType.UInt).uint(v.value);
      break;
    case 'llong':
      w.int(TypedParamType.LLong).hyper(v.value);
      break;
    case 'ullong':
      w.int(TypedParamType.ULLong).uhyper(v.value);
      break;
    case 'double':
      w.int(TypedParamType.Double).double(v.value);
      break;
    case 'boolean':
      w.int(TypedParamType.Boolean).int(v.value ? 1 : 0);
      break;
    case 'string':
      w.int(TypedParamType.String).string(v.value);
      break;
  }
}
