// A test consumer of ceilopoll's notifications that outlives broker restarts: it (re)connects every
// second, declares the queue the way the agent does (same flags, so no 406), and records each
// notification's oslo `_unique_id` and samples in arrival order.

import amqp from 'amqplib';

export interface Received {
  uniqueId: string;
  meter: string;
  sampleIds: string[];
}

interface Inner {
  _unique_id: string;
  payload: { samples: Array<{ counter_name: string; message_id: string }> };
}

export function decodeNotification(body: Buffer): Received {
  const env = JSON.parse(body.toString('utf8')) as { 'oslo.message': string };
  const inner = JSON.parse(env['oslo.message']) as Inner;
  const samples = inner.payload.samples;
  return { uniqueId: inner._unique_id, meter: samples[0]?.counter_name ?? '', sampleIds: samples.map((s) => s.message_id) };
}

export class AmqpCollector {
  readonly received: Received[] = [];
  private stopped = false;
  private conn: amqp.ChannelModel | null = null;
  private loop: Promise<void>;
  connects = 0;

  constructor(
    private readonly url: string,
    private readonly opts: { exchange?: string; queue?: string; durable?: boolean } = {},
  ) {
    this.loop = this.run();
  }

  get uniqueIds(): string[] {
    return this.received.map((r) => r.uniqueId);
  }

  private async run(): Promise<void> {
    const exchange = this.opts.exchange ?? 'ceilometer';
    const queue = this.opts.queue ?? 'notifications.sample';
    const durable = this.opts.durable ?? false;
    while (!this.stopped) {
      try {
        const conn = await amqp.connect(this.url);
        this.conn = conn;
        const closed = new Promise<void>((resolve) => {
          conn.on('close', () => resolve());
          conn.on('error', () => undefined);
        });
        const ch = await conn.createChannel();
        await ch.assertExchange(exchange, 'topic', { durable, autoDelete: false });
        await ch.assertQueue(queue, { durable, autoDelete: false });
        await ch.bindQueue(queue, exchange, queue);
        await ch.consume(queue, (msg) => {
          if (!msg) return;
          this.received.push(decodeNotification(msg.content));
          ch.ack(msg);
        });
        this.connects++;
        await closed;
      } catch {
        // broker away: try again
      }
      this.conn = null;
      if (!this.stopped) await new Promise((r) => setTimeout(r, 1000));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.conn?.close().catch(() => undefined);
    await this.loop;
  }
}

/** The order in which unique ids first appear, duplicates (replays) removed. */
export function firstOccurrences(ids: readonly string[]): string[] {
  const seen = new Set<string>();
  return ids.filter((id) => (seen.has(id) ? false : (seen.add(id), true)));
}
