// The oslo.messaging notification that carries a batch of samples, exactly as Zed's polling agent writes
// it (ceilometer-wire.md §4.1, §4.2): `notifier.sample({}, 'telemetry.polling', {'samples': [...]})`
// through the messagingv2 driver, so the AMQP body is the 2.0 envelope whose "oslo.message" is the inner
// message already serialised to a JSON string (JSON inside JSON), both with Python's json.dumps defaults.

import { pyStrDatetime, type Clock, type IdSource } from '../samples/clock.js';
import { pyJsonDumps, type PyDict } from '../samples/pyjson.js';

/** `Notifier(publisher_id="ceilometer.polling")` in ceilometer/polling/manager.py */
export const PUBLISHER_ID = 'ceilometer.polling';
export const EVENT_TYPE = 'telemetry.polling';
/** Notifier.sample() passes the priority upper case; the routing key uses it lower-cased. */
export const PRIORITY = 'SAMPLE';
/** `[polling] batch_size` default */
export const DEFAULT_BATCH_SIZE = 50;

export interface Notification {
  /** str(uuid.uuid4()) */
  messageId: string;
  /** uuid.uuid4().hex: what the notification agent de-duplicates on (it remembers the last 16) */
  uniqueId: string;
  /** str(timeutils.utcnow()): "YYYY-MM-DD HH:MM:SS[.ffffff]" */
  timestamp: string;
  /** the one meter all samples belong to; not on the wire */
  meter: string;
  samples: PyDict[];
}

/**
 * A notification for one batch of one meter's signed samples. Throws on an empty batch (the notification
 * agent drops it silently, and Zed never sends one) and on a sample of another meter (Zed never mixes
 * meters in a notification: a batch is one pollster's output).
 */
export function buildNotification(meter: string, samples: readonly PyDict[], ids: IdSource, clock: Clock): Notification {
  if (samples.length === 0) throw new RangeError(`notification for ${meter}: no samples (an empty batch is never sent)`);
  samples.forEach((s, i) => {
    if (s['counter_name'] !== meter) {
      throw new RangeError(`notification for ${meter}: sample ${i} is ${JSON.stringify(s['counter_name'])}; a notification carries one meter`);
    }
  });
  // Notifier._notify builds message_id and timestamp, then AMQPDriverBase._send adds _unique_id.
  const messageId = ids.messageId();
  const timestamp = pyStrDatetime(clock.nowMicros());
  return { messageId, uniqueId: ids.uniqueId(), timestamp, meter, samples: [...samples] };
}

/** The inner oslo message dict, in the order Python builds it (§4.2); no `_context_*` keys, the context is {}. */
export function notificationMessage(n: Notification): PyDict {
  return {
    message_id: n.messageId,
    publisher_id: PUBLISHER_ID,
    event_type: EVENT_TYPE,
    priority: PRIORITY,
    payload: { samples: n.samples },
    timestamp: n.timestamp,
    _unique_id: n.uniqueId,
  };
}

/**
 * The AMQP body: the UTF-8 bytes of `{"oslo.version": "2.0", "oslo.message": "<inner JSON>"}`
 * (`_drivers/common.py::serialize_msg`, then kombu's json.dumps). ensure_ascii makes it pure ASCII.
 */
export function encodeNotification(n: Notification): Buffer {
  const envelope: PyDict = { 'oslo.version': '2.0', 'oslo.message': pyJsonDumps(notificationMessage(n)) };
  return Buffer.from(pyJsonDumps(envelope), 'utf8');
}

/**
 * Splits one pollster run's samples (one meter) into notifications the way PollingTask.poll_and_notify
 * does: full batches of `batchSize` in order, then the remainder; `0` sends each sample alone.
 */
export function batchSamples<T>(samples: readonly T[], batchSize: number = DEFAULT_BATCH_SIZE): T[][] {
  if (!Number.isInteger(batchSize) || batchSize < 0) {
    throw new RangeError(`[polling] batch_size ${batchSize}: must be an integer of 0 or more (0 = one sample per notification)`);
  }
  const size = batchSize === 0 ? 1 : batchSize;
  const out: T[][] = [];
  for (let i = 0; i < samples.length; i += size) out.push(samples.slice(i, i + size));
  return out;
}
