// The polling cycle's hot path: one meter's batch of samples straight to the AMQP body, the same bytes
// as toWireSample -> buildNotification -> encodeNotification (the reference path, which tests compare
// this with), at a fraction of the cost. Of a sample's ~1.2 KB of JSON and ~1.1 KB of signature
// pre-image, everything but the volume, the timestamp, the id and the monotonic time depends only on
// the meter and on the instance with its power state: those parts are built once, with the reference
// encoders, and kept as bytes, already escaped for the envelope's JSON-in-JSON. A batch's body is
// written into one buffer of its exact size, and each pre-image into the signer's scratch buffer.
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

/** What JSON (ensure_ascii) writes otherwise than as it is: outside printable ASCII, `"` and `\`. */
const NEEDS_ESCAPE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;

/** A str the pre-image can carry as it is: Python would raise on a lone surrogate (the reference path does). */
const ANY_SURROGATE = /[\ud800-\udfff]/;

/**
 * HMAC-SHA256 (RFC 2104) from two one-shot `crypto.hash` calls over a reused buffer: the same digest
 * as createHmac, without its per-call object, which on the sample path costs more than the hashing.
 * The caller writes the message into `scratch` from offset 64 (`room` first) and calls `sign`.
 */
class Hmac256 {
  scratch = Buffer.alloc(16 * 1024);
  private readonly outer = Buffer.alloc(64 + 32);

  constructor(secret: Buffer) {
    const key = secret.length > 64 ? createHash('sha256').update(secret).digest() : secret;
    for (let i = 0; i < 64; i++) {
      const k = key[i] ?? 0;
      this.scratch[i] = k ^ 0x36;
      this.outer[i] = k ^ 0x5c;
    }
  }

  /** Makes `scratch` hold at least `bytes` of message after the key block (what it held is lost but the key block). */
  room(bytes: number): Buffer {
    if (64 + bytes > this.scratch.length) {
      const bigger = Buffer.alloc(2 * (64 + bytes));
      this.scratch.copy(bigger, 0, 0, 64);
      this.scratch = bigger;
    }
    return this.scratch;
  }

  /** the digest, lowercase hex, of the `length` message bytes in `scratch` after the key block */
  sign(length: number): string {
    const inner = hash('sha256', this.scratch.subarray(0, 64 + length), 'buffer') as unknown as Buffer;
    inner.copy(this.outer, 64);
    return hash('sha256', this.outer, 'hex');
  }
}

const EMPTY = Buffer.alloc(0);

/** Writes one part into buf at `at` (bytes as they are, a string as latin1); returns the offset after it. */
function put(buf: Buffer, at: number, part: Buffer | string): number {
  if (typeof part === 'string') return at + buf.write(part, at, 'latin1');
  buf.set(part, at);
  return at + part.length;
}

/** the fixed bytes of a sample's JSON after its id (its monotonic time and signature go between them) */
const SAMPLE_TAIL_FIXED = '\\", \\"monotonic_time\\": , \\"message_signature\\": \\"\\"}'.length;

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

  /**
   * One notification for one batch of one meter's samples (see buildNotification for the rules).
   * Only the short parts that vary are strings: until 2026-11-28 each pre-image (1.1 KB) and each
   * body (75 KB at 50 samples) was a string first, young garbage for V8 to collect (README,
   * *Benchmarks*, for what that changed and what it did not).
   */
  encode(meter: string, samples: readonly Sample[]): EncodedNotification {
    if (!this.canEncodeFast(meter, samples)) return this.encodeReference(meter, samples);
    const messageId = this.ids.messageId();
    const timestamp = pyStrDatetime(this.clock.nowMicros());
    const uniqueId = this.ids.uniqueId();
    const n = samples.length;
    const sampleIds: string[] = new Array<string>(n);
    const meters = new Array<MeterParts>(n);
    const insts = new Array<InstanceParts>(n);
    const volumes = new Array<string>(n);
    const monos = new Array<string | null>(n);
    const head = `{"oslo.version": "2.0", "oslo.message": "{\\"message_id\\": \\"${messageId}\\", \\"publisher_id\\": \\"${PUBLISHER_ID}\\", \\"event_type\\": \\"${EVENT_TYPE}\\", \\"priority\\": \\"${PRIORITY}\\", \\"payload\\": {\\"samples\\": [`;
    const tail = `]}, \\"timestamp\\": \\"${timestamp}\\", \\"_unique_id\\": \\"${uniqueId}\\"}"}`;
    const sigLength = this.hmac === null ? 0 : 64;
    // first the size: every part is ASCII here (the escaped JSON is, and canEncodeFast let through
    // only ids and timestamps that need no escaping), so a string's length is its byte count
    let size = head.length + tail.length;
    for (let i = 0; i < n; i++) {
      const s = samples[i] as Sample;
      const m = (meters[i] = this.meterParts(s));
      const p = (insts[i] = this.instanceParts(s.instance, s.state));
      const volume = (volumes[i] = pyFloatRepr(s.volume));
      const mono = (monos[i] = s.monotonicTime === null ? null : pyFloatRepr(s.monotonicTime));
      sampleIds[i] = s.id;
      size += (i === 0 ? 0 : 2) + m.head.length + volume.length + p.mid.length + s.timestamp.length + p.meta.length;
      size += s.id.length + SAMPLE_TAIL_FIXED + (mono ?? 'null').length + sigLength;
    }
    const body = Buffer.allocUnsafe(size);
    let at = put(body, 0, head);
    for (let i = 0; i < n; i++) {
      const s = samples[i] as Sample;
      const m = meters[i] as MeterParts;
      const p = insts[i] as InstanceParts;
      const volume = volumes[i] as string;
      const mono = monos[i] ?? null;
      let signature = '';
      if (this.hmac !== null) {
        // the pre-image: the sample's keys in sorted order, each followed by its value
        const middle = `${volume}message_id${s.id}monotonic_time${mono ?? 'None'}`;
        const buf = this.hmac.room(m.pre.length + middle.length + p.preMid.length + s.timestamp.length + p.preTail.length);
        let k = put(buf, 64, m.pre);
        k = put(buf, k, middle);
        k = put(buf, k, p.preMid);
        k = put(buf, k, s.timestamp);
        k = put(buf, k, p.preTail);
        signature = this.hmac.sign(k - 64);
      }
      if (i > 0) at = put(body, at, ', ');
      at = put(body, at, m.head);
      at = put(body, at, volume);
      at = put(body, at, p.mid);
      at = put(body, at, s.timestamp);
      at = put(body, at, p.meta);
      at = put(body, at, `${s.id}\\", \\"monotonic_time\\": ${mono ?? 'null'}, \\"message_signature\\": \\"${signature}\\"}`);
    }
    at = put(body, at, tail);
    if (at !== size) throw new Error(`NotificationEncoder: wrote ${at} bytes of a ${size}-byte body`); // a bug, never the input
    return { body, uniqueId, sampleIds };
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
      // written into the JSON as they are: only what needs no escaping (the IdSource's and the clock's always do)
      if (NEEDS_ESCAPE.test(s.id) || NEEDS_ESCAPE.test(s.timestamp)) return false;
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
      const fast = !ANY_SURROGATE.test(pre);
      m = { fast, head: Buffer.from(escapeForEnvelope(head), 'latin1'), pre: fast ? Buffer.from(pre, 'utf8') : EMPTY };
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
    const fast = !ANY_SURROGATE.test(preMid) && !ANY_SURROGATE.test(preTail);
    // bytes, not strings: what each sample copies, and off the JavaScript heap (2 KB an instance)
    const parts: InstanceParts = {
      state,
      fast,
      mid: Buffer.from(escapeForEnvelope(mid), 'latin1'),
      meta: Buffer.from(escapeForEnvelope(metaJson), 'latin1'),
      preMid: fast ? Buffer.from(preMid, 'utf8') : EMPTY,
      preTail: fast ? Buffer.from(preTail, 'utf8') : EMPTY,
    };
    this.instances.set(inst, parts);
    return parts;
  }
}
