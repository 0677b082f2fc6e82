// The polling cycle's hot path: one meter's batch of samples straight to the AMQP body, the same bytes
// as toWireSample -> buildNotification -> encodeNotification (the reference path, which tests compare
// this with), at a fraction of the cost. Of a sample's ~1.2 KB of JSON and ~1.1 KB of signature
// pre-image, everything but the volume, the timestamp, the id and the monotonic time depends only on
// the meter and on the instance with its power state: those parts are built once, with the reference
// encoders, and kept as bytes, already escaped for the envelope's JSON-in-JSON. Body and pre-image
// are then copied together from those bytes into two reused buffers (ByteSink): a cycle makes no
// per-sample strings but the four short ones, and no text that has to be turned into bytes again.
//
// The envelope nests the inner message as a JSON string. The inner JSON is pure printable ASCII
// (ensure_ascii), so escaping it again only puts a backslash before `"` and `\`; the parts that vary
// per sample (digits, ".", "-", ":", "T", "e", hex) need no escaping at all.

import { createHash, hash } from 'node:crypto';

import type { Instance } from '../discovery/instance.js';
import { pyStrDatetime, type Clock, type IdSource } from '../samples/clock.js';
import { pyFloatRepr, pyJsonDumps } from '../samples/pyjson.js';
import { resourceMetadata, toWireSample, type Sample, type SampleOptions } from '../samples/sample.js';
import { preimageOf } from '../samples/signature.js';
import { buildNotification, encodeNotification, EVENT_TYPE, PRIORITY, PUBLISHER_ID } from './envelope.js';

export interface EncodedNotification {
  body: Buffer;
  /** the oslo _unique_id the notification agent de-duplicates on */
  uniqueId: string;
  /** each sample's message_id, in order */
  sampleIds: string[];
}

/** The JSON of an ASCII-printable string as it appears inside the envelope's string. */
const escapeForEnvelope = (innerJson: string): string => innerJson.replace(/["\\]/g, '\\$&');

/** A str the pre-image can carry as it is: Python would raise on a lone surrogate (the reference path does). */
const ANY_SURROGATE = /[\ud800-\udfff]/;

/**
 * A growable byte buffer written in place: a notification body, or an HMAC pre-image, put together
 * from cached byte parts and a few short strings per sample, without first building the text as a
 * string (which V8 would keep as a rope and then flatten into one more copy on the way to bytes).
 */
class ByteSink {
  buf: Buffer;
  /** bytes written */
  n = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(2 * this.buf.length, this.n + k));
    this.buf.copy(bigger, 0, 0, this.n);
    this.buf = bigger;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }

  /** each UTF-16 code unit as its low byte: what Buffer.from(s, 'latin1') writes */
  latin1(s: string): void {
    const len = s.length;
    this.room(len);
    const buf = this.buf;
    let n = this.n;
    for (let i = 0; i < len; i++) buf[n++] = s.charCodeAt(i);
    this.n = n;
  }

  /** UTF-8, as Buffer.from(s, 'utf8'); ASCII (the usual case) byte by byte */
  utf8(s: string): void {
    const len = s.length;
    this.room(len);
    const buf = this.buf;
    let n = this.n;
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        this.room(3 * len);
        this.n += this.buf.write(s, this.n, 'utf8');
        return;
      }
      buf[n++] = c;
    }
    this.n = n;
  }
}

/**
 * HMAC-SHA256 (RFC 2104) from two one-shot `crypto.hash` calls: the same digest as createHmac,
 * without its per-call object, which on the sample path costs more than the hashing. The caller
 * writes the message into `message` (its first 64 bytes are the inner key block), then calls `hex`.
 */
class Hmac256 {
  readonly message = new ByteSink(16 * 1024);
  private readonly outer = Buffer.alloc(64 + 32);

  constructor(secret: Buffer) {
    const key = secret.length > 64 ? createHash('sha256').update(secret).digest() : secret;
    const inner = Buffer.alloc(64);
    for (let i = 0; i < 64; i++) {
      const k = key[i] ?? 0;
      inner[i] = k ^ 0x36;
      this.outer[i] = k ^ 0x5c;
    }
    this.message.bytes(inner);
  }

  /** starts a new message after the inner key block */
  reset(): ByteSink {
    this.message.n = 64;
    return this.message;
  }

  /** the signature of the message written since `reset`, lowercase hex */
  hex(): string {
    const m = this.message;
    const inner = hash('sha256', m.buf.subarray(0, m.n), 'buffer') as unknown as Buffer;
    inner.copy(this.outer, 64);
    return hash('sha256', this.outer, 'hex');
  }
}

/**
 * Where the cached parts' bytes live: slabs of their own, 64 KiB each. Buffer.from would cut small
 * parts from Node's shared 8 KiB pool, where a part that lives as long as its instance keeps the
 * whole slab, with the cycle's short-lived buffers cut from it, from being freed; a buffer of its own
 * per part would make tens of thousands of ArrayBuffers for every garbage collection to walk.
 */
class PartSlabs {
  private slab = Buffer.allocUnsafeSlow(64 * 1024);
  private used = 0;

  bytesOf(s: string, encoding: 'latin1' | 'utf8'): Buffer {
    const n = Buffer.byteLength(s, encoding);
    if (n > this.slab.length / 4) return Buffer.from(s, encoding); // a large part: its own buffer (never pooled at this size)
    if (this.used + n > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(this.slab.length);
      this.used = 0;
    }
    const b = this.slab.subarray(this.used, this.used + n);
    b.write(s, 0, encoding);
    this.used += n;
    return b;
  }
}
const slabs = new PartSlabs();
const latin1 = (s: string): Buffer => slabs.bytesOf(s, 'latin1');
const utf8 = (s: string): Buffer => slabs.bytesOf(s, 'utf8');
const PRE_MESSAGE_ID = latin1('message_id');
const PRE_MONOTONIC = latin1('monotonic_time');
const SAMPLE_SEPARATOR = latin1(', ');
const MONOTONIC_KEY = latin1('\\", \\"monotonic_time\\": ');
const SIGNATURE_KEY = latin1(', \\"message_signature\\": \\"');
const SAMPLE_END = latin1('\\"}');

interface MeterParts {
  /** false when something of the meter cannot be signed the way Python would */
  fast: boolean;
  /** `{"source": ..., "counter_name": ..., ..., "counter_volume": ` escaped, as bytes */
  head: Buffer;
  /** "counter_name" + name + ... + "counter_volume", UTF-8 */
  pre: Buffer;
}

interface InstanceParts {
  state: number;
  /** false when something of the instance cannot be signed the way Python would (the reference path decides) */
  fast: boolean;
  /** `, "user_id": ..., "resource_id": ..., "timestamp": \"` escaped, as bytes */
  mid: Buffer;
  /** `\", "resource_metadata": {...}, "message_id": \"` escaped, as bytes */
  meta: Buffer;
  /** "project_id" + ... + "resource_metadata:..." + "source" + ... + "timestamp", UTF-8 */
  preMid: Buffer;
  /** "user_id" + ..., UTF-8 */
  preTail: Buffer;
}

export class NotificationEncoder {
  private readonly hmac: Hmac256 | null;
  /** the body being written; copied out at the end of each notification */
  private readonly body = new ByteSink(128 * 1024);
  private readonly meters = new Map<string, MeterParts>();
  private lastMeter: { name: string; type: string; unit: string; parts: MeterParts } | null = null;
  // Instance objects are never changed: discovery makes a new one when anything about the domain changes.
  private readonly instances = new WeakMap<Instance, InstanceParts>();

  constructor(
    private readonly opts: SampleOptions,
    private readonly ids: IdSource,
    private readonly clock: Clock,
  ) {
    this.hmac = opts.secret === '' || ANY_SURROGATE.test(opts.secret) ? null : new Hmac256(Buffer.from(opts.secret, 'utf8'));
  }

  /** One notification for one batch of one meter's samples (see buildNotification for the rules). */
  encode(meter: string, samples: readonly Sample[]): EncodedNotification {
    if (!this.canEncodeFast(meter, samples)) return this.encodeReference(meter, samples);
    const messageId = this.ids.messageId();
    const timestamp = pyStrDatetime(this.clock.nowMicros());
    const uniqueId = this.ids.uniqueId();
    const sampleIds: string[] = new Array<string>(samples.length);
    const body = this.body;
    body.n = 0;
    body.latin1(`{"oslo.version": "2.0", "oslo.message": "{\\"message_id\\": \\"${messageId}\\", \\"publisher_id\\": \\"${PUBLISHER_ID}\\", \\"event_type\\": \\"${EVENT_TYPE}\\", \\"priority\\": \\"${PRIORITY}\\", \\"payload\\": {\\"samples\\": [`);
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i] as Sample;
      const m = this.meterParts(s);
      const p = this.instanceParts(s.instance, s.state);
      const volume = pyFloatRepr(s.volume);
      const mono = s.monotonicTime === null ? null : pyFloatRepr(s.monotonicTime);
      let signature = '';
      if (this.hmac !== null) {
        const pre = this.hmac.reset();
        pre.bytes(m.pre);
        pre.latin1(volume);
        pre.bytes(PRE_MESSAGE_ID);
        pre.utf8(s.id);
        pre.bytes(PRE_MONOTONIC);
        pre.latin1(mono ?? 'None');
        pre.bytes(p.preMid);
        pre.utf8(s.timestamp);
        pre.bytes(p.preTail);
        signature = this.hmac.hex();
      }
      sampleIds[i] = s.id;
      if (i > 0) body.bytes(SAMPLE_SEPARATOR);
      body.bytes(m.head);
      body.latin1(volume);
      body.bytes(p.mid);
      body.latin1(s.timestamp);
      body.bytes(p.meta);
      body.latin1(s.id);
      body.bytes(MONOTONIC_KEY);
      body.latin1(mono ?? 'null');
      body.bytes(SIGNATURE_KEY);
      body.latin1(signature);
      body.bytes(SAMPLE_END);
    }
    body.latin1(`]}, \\"timestamp\\": \\"${timestamp}\\", \\"_unique_id\\": \\"${uniqueId}\\"}"}`);
    return { body: Buffer.from(body.buf.subarray(0, body.n)), uniqueId, sampleIds };
  }

  /** The reference path: for what the fast one does not cover, and for the tests that compare them. */
  encodeReference(meter: string, samples: readonly Sample[]): EncodedNotification {
    const batch = samples.map((s) => toWireSample(s, this.opts));
    const n = buildNotification(meter, batch, this.ids, this.clock);
    return { body: encodeNotification(n), uniqueId: n.uniqueId, sampleIds: batch.map((s) => s['message_id'] as string) };
  }

  private canEncodeFast(meter: string, samples: readonly Sample[]): boolean {
    if (samples.length === 0) return false; // the reference path says why not
    if (this.hmac === null && this.opts.secret !== '') return false;
    for (const s of samples) {
      // a non-finite float is written differently in JSON (NaN) and in the pre-image (nan)
      if (s.name !== meter || !Number.isFinite(s.volume) || (s.monotonicTime !== null && !Number.isFinite(s.monotonicTime))) return false;
      if (!this.instanceParts(s.instance, s.state).fast || !this.meterParts(s).fast) return false;
    }
    return true;
  }

  private meterParts(s: Sample): MeterParts {
    const last = this.lastMeter;
    // a batch is one meter: the same three strings sample after sample
    if (last !== null && last.name === s.name && last.type === s.type && last.unit === s.unit) return last.parts;
    const key = `${s.name}\n${s.type}\n${s.unit}`;
    let m = this.meters.get(key);
    if (m === undefined) {
      const { source } = this.opts;
      const head = `{"source": ${pyJsonDumps(source)}, "counter_name": ${pyJsonDumps(s.name)}, "counter_type": ${pyJsonDumps(s.type)}, "counter_unit": ${pyJsonDumps(s.unit)}, "counter_volume": `;
      const pre = `counter_name${s.name}counter_type${s.type}counter_unit${s.unit}counter_volume`;
      m = { fast: !ANY_SURROGATE.test(pre), head: latin1(escapeForEnvelope(head)), pre: utf8(pre) };
      this.meters.set(key, m);
    }
    this.lastMeter = { name: s.name, type: s.type, unit: s.unit, parts: m };
    return m;
  }

  private instanceParts(inst: Instance, state: number): InstanceParts {
    const cached = this.instances.get(inst);
    if (cached !== undefined && cached.state === state) return cached;
    const { nameKeys, source, host } = this.opts;
    const j = pyJsonDumps;
    const meta = resourceMetadata(inst, state, host);
    const mid = `, "user_id": ${j(inst.userId)}${nameKeys ? ', "user_name": null' : ''}, "project_id": ${j(inst.projectId)}${nameKeys ? ', "project_name": null' : ''}, "resource_id": ${j(inst.uuid)}, "timestamp": "`;
    const metaJson = `", "resource_metadata": ${j(meta)}, "message_id": "`;
    const preMid = `project_id${inst.projectId}${nameKeys ? 'project_nameNone' : ''}resource_id${inst.uuid}${preimageOf(meta, 'resource_metadata:')}source${source}timestamp`;
    const preTail = `user_id${inst.userId}${nameKeys ? 'user_nameNone' : ''}`;
    const parts: InstanceParts = {
      state,
      fast: !ANY_SURROGATE.test(preMid) && !ANY_SURROGATE.test(preTail),
      mid: latin1(escapeForEnvelope(mid)),
      meta: latin1(escapeForEnvelope(metaJson)),
      preMid: utf8(preMid),
      preTail: utf8(preTail),
    };
    this.instances.set(inst, parts);
    return parts;
  }
}
