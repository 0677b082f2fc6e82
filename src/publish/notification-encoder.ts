// The polling cycle's hot path: one meter's batch of samples straight to the AMQP body, the same bytes
// as toWireSample -> buildNotification -> encodeNotification (the reference path, which tests compare
// this with), at a fraction of the cost. Of a sample's ~1.2 KB of JSON and ~1.1 KB of signature
// pre-image, everything but the volume, the timestamp, the id and the monotonic time depends only on
// the meter and on the instance with its power state: those parts are built once, with the reference
// encoders, and reused, already escaped for the envelope's JSON-in-JSON.
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
 */
class Hmac256 {
  private scratch = Buffer.alloc(16 * 1024);
  private readonly outer = Buffer.alloc(64 + 32);

  constructor(secret: Buffer) {
    const key = secret.length > 64 ? createHash('sha256').update(secret).digest() : secret;
    for (let i = 0; i < 64; i++) {
      const k = key[i] ?? 0;
      this.scratch[i] = k ^ 0x36;
      this.outer[i] = k ^ 0x5c;
    }
  }

  /** lowercase hex; `ascii`: the caller knows the text is all ASCII (its bytes are its code units) */
  sign(text: string, ascii: boolean): string {
    const most = ascii ? text.length : text.length * 3;
    if (64 + most > this.scratch.length) {
      const bigger = Buffer.alloc(2 * (64 + most));
      this.scratch.copy(bigger, 0, 0, 64);
      this.scratch = bigger;
    }
    const n = this.scratch.write(text, 64, ascii ? 'latin1' : 'utf8');
    const inner = hash('sha256', this.scratch.subarray(0, 64 + n), 'buffer') as unknown as Buffer;
    inner.copy(this.outer, 64);
    return hash('sha256', this.outer, 'hex');
  }
}

const NON_ASCII = /[\u0080-\uffff]/;

interface MeterParts {
  /** false when something of the meter cannot be signed the way Python would */
  fast: boolean;
  /** `{"source": ..., "counter_name": ..., ..., "counter_volume": ` escaped */
  head: string;
  /** "counter_name" + name + ... + "counter_volume" */
  pre: string;
  ascii: boolean;
}

interface InstanceParts {
  state: number;
  /** false when something of the instance cannot be signed the way Python would (the reference path decides) */
  fast: boolean;
  /** `, "user_id": ..., "resource_id": ..., "timestamp": \"` escaped */
  mid: string;
  /** `\", "resource_metadata": {...}, "message_id": \"` escaped */
  meta: string;
  /** "project_id" + ... + "resource_metadata:..." + "source" + ... + "timestamp" */
  preMid: string;
  /** "user_id" + ... */
  preTail: string;
  /** preMid and preTail are ASCII */
  ascii: boolean;
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

  /** One notification for one batch of one meter's samples (see buildNotification for the rules). */
  encode(meter: string, samples: readonly Sample[]): EncodedNotification {
    if (!this.canEncodeFast(meter, samples)) return this.encodeReference(meter, samples);
    const messageId = this.ids.messageId();
    const timestamp = pyStrDatetime(this.clock.nowMicros());
    const uniqueId = this.ids.uniqueId();
    const sampleIds: string[] = new Array<string>(samples.length);
    let body = `{"oslo.version": "2.0", "oslo.message": "{\\"message_id\\": \\"${messageId}\\", \\"publisher_id\\": \\"${PUBLISHER_ID}\\", \\"event_type\\": \\"${EVENT_TYPE}\\", \\"priority\\": \\"${PRIORITY}\\", \\"payload\\": {\\"samples\\": [`;
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i] as Sample;
      const m = this.meterParts(s);
      const p = this.instanceParts(s.instance, s.state);
      const volume = pyFloatRepr(s.volume);
      const mono = s.monotonicTime === null ? null : pyFloatRepr(s.monotonicTime);
      let signature = '';
      if (this.hmac !== null) {
        // the sample's id and timestamp come from the IdSource and the clock: ASCII unless a test says otherwise
        const pre = `${m.pre}${volume}message_id${s.id}monotonic_time${mono ?? 'None'}${p.preMid}${s.timestamp}${p.preTail}`;
        signature = this.hmac.sign(pre, m.ascii && p.ascii && !NON_ASCII.test(s.id) && !NON_ASCII.test(s.timestamp));
      }
      sampleIds[i] = s.id;
      body += `${i === 0 ? '' : ', '}${m.head}${volume}${p.mid}${s.timestamp}${p.meta}${s.id}\\", \\"monotonic_time\\": ${mono ?? 'null'}, \\"message_signature\\": \\"${signature}\\"}`;
    }
    body += `]}, \\"timestamp\\": \\"${timestamp}\\", \\"_unique_id\\": \\"${uniqueId}\\"}"}`;
    return { body: Buffer.from(body, 'latin1'), uniqueId, sampleIds };
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
      m = { fast: !ANY_SURROGATE.test(pre), head: escapeForEnvelope(head), pre, ascii: !NON_ASCII.test(pre) };
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
      ascii: !NON_ASCII.test(preMid) && !NON_ASCII.test(preTail),
      mid: escapeForEnvelope(mid),
      meta: escapeForEnvelope(metaJson),
      preMid,
      preTail,
    };
    this.instances.set(inst, parts);
    return parts;
  }
}
