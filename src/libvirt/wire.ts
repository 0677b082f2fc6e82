// libvirt RPC packet framing: [len u32][header 6 x u32][XDR payload], where len counts itself.
// See docs/libvirt-rpc.md §1.1. The splitter is a pure streaming state machine: feed it whatever
// the socket delivers (several packets at once, or a packet in pieces) and it yields whole packets.

import { ProtocolError } from './errors.js';

export const REMOTE_PROGRAM = 0x20008086;
export const KEEPALIVE_PROGRAM = 0x6b656570; // "keep"
export const PROTOCOL_VERSION = 1;

/** VIR_NET_MESSAGE_MAX in libvirt 9.0.0 and later: the largest payload + header the daemon accepts. */
export const MESSAGE_MAX = 33_554_432;
export const LEN_SIZE = 4;
export const HEADER_SIZE = 24;
/** The smallest legal packet: a length word and a header with an empty payload. */
export const MIN_PACKET = LEN_SIZE + HEADER_SIZE;
export const MAX_PACKET = LEN_SIZE + MESSAGE_MAX;

export const MessageType = {
  CALL: 0,
  REPLY: 1,
  MESSAGE: 2,
  STREAM: 3,
  CALL_WITH_FDS: 4,
  REPLY_WITH_FDS: 5,
  STREAM_HOLE: 6,
} as const;

export const MessageStatus = { OK: 0, ERROR: 1, CONTINUE: 2 } as const;

export interface Header {
  prog: number;
  vers: number;
  proc: number;
  type: number;
  serial: number;
  status: number;
}

export interface Packet {
  header: Header;
  payload: Buffer;
}

export function encodePacket(header: Header, payload: Buffer = Buffer.alloc(0)): Buffer {
  const b = encodeHeader(header, payload.length);
  return payload.length === 0 ? b : Buffer.concat([b, payload], b.length + payload.length);
}

/** The length word and header of a packet whose payload is `payloadLength` bytes (the payload goes right after). */
export function encodeHeader(header: Header, payloadLength: number): Buffer {
  const len = MIN_PACKET + payloadLength;
  if (len > MAX_PACKET) throw new RangeError(`packet of ${len} bytes exceeds libvirt's limit of ${MAX_PACKET}`);
  const b = Buffer.allocUnsafe(MIN_PACKET);
  b.writeUInt32BE(len, 0);
  b.writeUInt32BE(header.prog >>> 0, 4);
  b.writeUInt32BE(header.vers >>> 0, 8);
  b.writeInt32BE(header.proc, 12);
  b.writeInt32BE(header.type, 16);
  b.writeUInt32BE(header.serial >>> 0, 20);
  b.writeInt32BE(header.status, 24);
  return b;
}

function decodeHeader(b: Buffer, at: number): Header {
  return {
    prog: b.readUInt32BE(at),
    vers: b.readUInt32BE(at + 4),
    proc: b.readInt32BE(at + 8),
    type: b.readInt32BE(at + 12),
    serial: b.readUInt32BE(at + 16),
    status: b.readInt32BE(at + 20),
  };
}

/**
 * Splits a byte stream into packets. After a ProtocolError the stream is unusable (there is no way
 * to find the next packet boundary), so the splitter stays failed and the caller must drop the
 * connection.
 */
export class FrameSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Length of the packet being assembled, once its length word has arrived; 0 before. */
  private expected = 0;
  private failed: ProtocolError | null = null;

  /** Bytes received but not yet part of a whole packet. */
  get buffered(): number {
    return this.pendingBytes;
  }

  push(chunk: Buffer): Packet[] {
    if (this.failed) throw this.failed;
    if (chunk.length === 0) return [];
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // A large reply arrives in many reads: wait for all of it instead of re-joining on every read.
    if (this.expected > 0 && this.pendingBytes < this.expected) return [];

    const buf = this.pending.length === 1 ? chunk : Buffer.concat(this.pending, this.pendingBytes);
    const out: Packet[] = [];
    let at = 0;
    this.expected = 0;
    while (buf.length - at >= LEN_SIZE) {
      const len = buf.readUInt32BE(at);
      if (len < MIN_PACKET || len > MAX_PACKET) {
        this.failed = new ProtocolError(
          `bad packet length ${len}: libvirt packets are ${MIN_PACKET} to ${MAX_PACKET} bytes (stream out of sync or not libvirt)`,
        );
        this.pending = [];
        this.pendingBytes = 0;
        throw this.failed;
      }
      if (buf.length - at < len) {
        this.expected = len;
        break;
      }
      out.push({
        header: decodeHeader(buf, at + LEN_SIZE),
        // copy: the packet outlives this read, and a view would pin the whole read buffer
        payload: Buffer.from(buf.subarray(at + MIN_PACKET, at + len)),
      });
      at += len;
    }
    const rest = at === 0 ? buf : buf.subarray(at);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return out;
  }
}
