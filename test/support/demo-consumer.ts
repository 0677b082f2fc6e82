// For `make demo`: listens on the ceilometer exchange (a private, exclusive queue bound to
// notifications.sample, so the real queue is left alone) and prints each sample ceilopoll
// publishes, for `seconds` seconds; with a third argument, only that meter's samples.

import amqp from 'amqplib';

import { decodeNotification } from './amqp-collector.js';

const url = process.argv[2] ?? 'amqp://guest:guest@127.0.0.1:5672';
const seconds = Number(process.argv[3] ?? 15);
const only = process.argv[4];

const conn = await amqp.connect(url);
const ch = await conn.createChannel();
await ch.assertExchange('ceilometer', 'topic', { durable: false, autoDelete: false });
const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
await ch.bindQueue(queue, 'ceilometer', 'notifications.sample');
let n = 0;
await ch.consume(queue, (msg) => {
  if (!msg) return;
  const env = JSON.parse(msg.content.toString('utf8')) as { 'oslo.message': string };
  const inner = JSON.parse(env['oslo.message']) as { payload: { samples: Array<{ counter_name: string; counter_volume: number; counter_unit: string; resource_metadata: { display_name: string; name: string } }> } };
  const { uniqueId } = decodeNotification(msg.content);
  for (const s of inner.payload.samples) {
    if (only !== undefined && s.counter_name !== only) continue;
    n++;
    console.log(`received  ${s.counter_name.padEnd(17)} ${s.resource_metadata.name} (${s.resource_metadata.display_name})  ${s.counter_volume} ${s.counter_unit}   [notification ${uniqueId.slice(0, 8)}]`);
  }
}, { noAck: true });
setTimeout(() => {
  console.log(`demo consumer: ${n} ${only ?? ''} samples received from exchange ceilometer, routing key notifications.sample`);
  void conn.close().then(() => process.exit(0));
}, seconds * 1000);
