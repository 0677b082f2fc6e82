// A copy of everything ceilopoll publishes on the test's topic: our own exclusive queue bound to the
// `ceilometer` exchange with the same routing key as the notification agent's queue, so the agent's
// consumption is untouched and the test knows every sample's timestamp, volume and metadata.

import amqp from 'amqplib';

import type { SentSample } from './measures.js';

interface WireSample {
  counter_name: string;
  counter_unit: string;
  counter_volume: number;
  resource_id: string;
  user_id: string;
  project_id: string;
  timestamp: string;
  message_id: string;
  resource_metadata: Record<string, unknown>;
}

export class BusCopy {
  readonly samples: SentSample[] = [];
  private conn: amqp.ChannelModel | null = null;

  static async open(url: string, routingKey: string, exchange = 'ceilometer'): Promise<BusCopy> {
    const copy = new BusCopy();
    const conn = await amqp.connect(url);
    copy.conn = conn;
    const ch = await conn.createChannel();
    // as oslo declares it (durable false): a different flag would be a 406 for everyone
    await ch.assertExchange(exchange, 'topic', { durable: false, autoDelete: false });
    const q = await ch.assertQueue('', { exclusive: true, autoDelete: true });
    await ch.bindQueue(q.queue, exchange, routingKey);
    await ch.consume(q.queue, (msg) => {
      if (msg) copy.add(msg.content);
    }, { noAck: true });
    return copy;
  }

  private add(body: Buffer): void {
    const env = JSON.parse(body.toString('utf8')) as { 'oslo.message': string };
    const inner = JSON.parse(env['oslo.message']) as { payload: { samples: WireSample[] } };
    for (const s of inner.payload.samples) {
      this.samples.push({
        messageId: s.message_id,
        resourceId: s.resource_id,
        userId: s.user_id,
        projectId: s.project_id,
        meter: s.counter_name,
        unit: s.counter_unit,
        volume: s.counter_volume,
        timestamp: s.timestamp,
        metadata: s.resource_metadata,
        receivedAt: Date.now(),
      });
    }
  }

  of(resourceId: string, meter = 'memory.usage'): SentSample[] {
    return this.samples.filter((s) => s.resourceId === resourceId && s.meter === meter);
  }

  async close(): Promise<void> {
    await this.conn?.close().catch(() => undefined);
    this.conn = null;
  }
}
