// The agent: libvirt supervisor and inventory in, polling on a schedule, notifications through the
// durable spool to RabbitMQ out. Polling never waits for the broker: a cycle only appends to the
// spool, and delivery drains it whenever the broker is there.

import { EventEmitter } from 'node:events';

import type { FlavorIdResolver } from '../discovery/flavor-lookup.js';
import { Inventory } from '../discovery/inventory.js';
import { Supervisor } from '../libvirt/supervisor.js';
import { AmqpPublisher } from '../publish/amqp.js';
import { Delivery } from '../publish/delivery.js';
import { batchSamples, buildNotification, encodeNotification } from '../publish/envelope.js';
import { Spool } from '../publish/spool.js';
import type { TransportTarget } from '../publish/transport-url.js';
import type { Clock, IdSource } from '../samples/clock.js';
import type { MeterDef } from '../samples/meters.js';
import { toWireSample, type SampleOptions } from '../samples/sample.js';
import type { Logger } from './log.js';
import { meterOutcomes, pollCycle, type CycleResult } from './poll-cycle.js';
import { IntervalTask } from './scheduler.js';

export interface AgentOptions {
  libvirtUri: string;
  intervalSeconds: number;
  meters: readonly MeterDef[];
  sample: SampleOptions;
  /** [polling] batch_size: samples per notification, 0 = one notification per sample */
  batchSize: number;
  transport: TransportTarget;
  exchange: string;
  topics: string[];
  spoolPath: string;
  spoolMaxBytes: number;
  spoolMaxAgeMs: number;
  stalenessFactor: number;
  resourceUpdateIntervalMs: number;
  flavorIds?: FlavorIdResolver;
  log: Logger;
  clock: Clock;
  ids: IdSource;
}

export interface ProducedNotification {
  uniqueId: string;
  meter: string;
  sampleIds: string[];
}

export interface AgentEvents {
  /** a notification was built and handed to the spool */
  produced: [ProducedNotification];
  cycle: [CycleResult];
}

export class Agent extends EventEmitter<AgentEvents> {
  readonly supervisor: Supervisor;
  readonly inventory: Inventory;
  private spool: Spool | null = null;
  private publisher: AmqpPublisher | null = null;
  private delivery: Delivery | null = null;
  private task: IntervalTask | null = null;
  /** uuid -> the missing meters and reasons last logged, so they are logged once per change, not every cycle */
  private readonly lastReason = new Map<string, string>();
  private lastPublisherError = '';
  private stopping = false;
  private readonly log: Logger;

  constructor(private readonly opts: AgentOptions) {
    super();
    this.log = opts.log;
    this.supervisor = new Supervisor({ uri: opts.libvirtUri, readOnly: true, keepaliveIntervalMs: 5000, keepaliveCount: 5 });
    this.inventory = new Inventory({ flavorIds: opts.flavorIds, resyncIntervalMs: opts.resourceUpdateIntervalMs }).attach(this.supervisor);
  }

  get spoolDepth(): number {
    return this.spool?.depth ?? 0;
  }

  get deliveryStats(): Delivery['stats'] | null {
    return this.delivery?.stats ?? null;
  }

  get taskStats(): IntervalTask['stats'] | null {
    return this.task?.stats ?? null;
  }

  start(): void {
    const { log, opts } = this;
    const spool = Spool.open(opts.spoolPath, {
      maxBytes: opts.spoolMaxBytes,
      maxAgeMs: opts.spoolMaxAgeMs,
      onDrop: (d) =>
        log.warning(`spool ${opts.spoolPath}: dropped the ${d.count} oldest notification(s) (${d.bytes} bytes, ${d.reason === 'full' ? 'spool full' : 'older than the maximum age'}); oldest from ${new Date(d.oldestCreatedAt).toISOString()}`),
    });
    if (spool.recovery) {
      log.error(`spool ${opts.spoolPath} was unreadable (${spool.recovery.cause}); moved aside to ${spool.recovery.movedTo}${spool.recovery.lost ? `, ${spool.recovery.lost.count} notification(s) lost` : ''}; a new spool was started`);
    }
    if (spool.depth > 0) log.info(`spool ${opts.spoolPath}: ${spool.depth} notification(s) from an earlier run will be sent first, in order`);
    this.spool = spool;

    const publisher = new AmqpPublisher({ target: opts.transport, exchange: opts.exchange, topics: opts.topics });
    publisher.on('connected', (info) => {
      this.lastPublisherError = '';
      log.info(`connected to RabbitMQ at ${info.host}, vhost ${info.vhost}`);
    });
    publisher.on('disconnected', (err) => {
      if (!this.stopping) log.warning(`RabbitMQ connection lost: ${err.message}; notifications are kept in the spool`);
    });
    publisher.on('error', (err) => {
      if (err.message === this.lastPublisherError) return; // once per distinct problem
      this.lastPublisherError = err.message;
      log.error(err.message);
    });
    this.publisher = publisher;

    const delivery = new Delivery(spool, publisher);
    delivery.on('spoolError', (err, meter) => log.error(`${meter}: notification could not be written to the spool: ${err.message}`));
    delivery.on('publishFailed', (err) => log.debug(`publish failed, will retry from the spool: ${err.message}`));
    this.delivery = delivery;

    this.supervisor.on('connected', (c) => log.info(`connected to libvirt ${c.uri} (${c.readOnly ? 'read-only' : 'read-write'})`));
    this.supervisor.on('disconnected', (err) => log.warning(`libvirt connection lost: ${err.message}; reconnecting`));
    this.supervisor.on('retry', (err, attempt, delay) => {
      if (attempt === 1 || attempt % 10 === 0) log.warning(`libvirt: ${err.message} (attempt ${attempt}, next in ${delay} ms)`);
    });
    this.inventory.on('skipped', (s) => log.warning(`domain ${s.name} (${s.uuid}) skipped: ${s.reason}`));
    this.inventory.on('added', (i) => log.info(`instance ${i.domainName} (${i.uuid}, "${i.displayName}") discovered`));
    this.inventory.on('removed', (uuid, name) => log.info(`instance ${name} (${uuid}) is gone`));

    publisher.start();
    this.supervisor.start();
    this.task = new IntervalTask('memory', opts.intervalSeconds * 1000, () => this.runCycle(), {
      onSkip: (t) => log.warning(`polling task ${t.name}: the previous cycle is still running; this one is skipped (${t.stats.skipped} so far)`),
      onError: (_t, err) => log.error(`polling cycle failed: ${err.message}`),
    });
    this.task.start();
  }

  /**
   * Stops polling, lets the cycle in progress finish, gives delivery up to `timeoutMs` to get the
   * spool confirmed, then closes everything. What is not confirmed stays in the spool.
   */
  async stop(timeoutMs = 10_000): Promise<number> {
    await this.task?.stop();
    this.stopping = true;
    const left = this.delivery ? await this.delivery.drain(timeoutMs) : 0;
    this.delivery?.close();
    await this.publisher?.close();
    await this.supervisor.stop();
    this.spool?.close();
    this.opts.flavorIds?.close();
    return left;
  }

  private async runCycle(): Promise<void> {
    const { opts } = this;
    this.spool?.expire();
    const client = this.supervisor.client ?? (await this.supervisor.waitConnected(Math.min(5000, opts.intervalSeconds * 1000)));
    const result = await pollCycle({
      client,
      inventory: this.inventory,
      meters: opts.meters,
      unit: opts.sample.unit,
      clock: opts.clock,
      ids: opts.ids,
      stalenessFactor: opts.stalenessFactor,
    });
    this.logReasons(result);
    for (const run of result.runs) {
      if (run.samples.length === 0) continue;
      const wire = run.samples.map((s) => toWireSample(s, opts.sample));
      for (const batch of batchSamples(wire, opts.batchSize)) {
        const n = buildNotification(run.meter.name, batch, opts.ids, opts.clock);
        this.delivery!.submit(run.meter.name, encodeNotification(n));
        const produced = { uniqueId: n.uniqueId, meter: run.meter.name, sampleIds: batch.map((s) => s.message_id as string) };
        this.log.debug(`produced notification ${produced.uniqueId} ${produced.meter} ${produced.sampleIds.length} sample(s): ${produced.sampleIds.join(',')}`);
        this.emit('produced', produced);
      }
    }
    this.emit('cycle', result);
  }

  /**
   * One line per instance when the set of its missing meters or their reasons changes (not every
   * cycle), and one when everything is back.
   */
  private logReasons(result: CycleResult): void {
    const seen = new Set<string>();
    for (const ir of result.instances) {
      const uuid = ir.instance.uuid;
      seen.add(uuid);
      const byReason = new Map<string, { meters: string[]; detail: string }>();
      for (const [meter, v] of Object.entries(meterOutcomes(ir.inspection, this.opts.meters).missing)) {
        const g = byReason.get(v.reason) ?? { meters: [], detail: v.detail };
        g.meters.push(meter);
        byReason.set(v.reason, g);
      }
      const key = [...byReason].map(([reason, g]) => `${reason}:${g.meters.join(',')}`).join(';');
      const before = this.lastReason.get(uuid);
      if (key === (before ?? '')) continue;
      const who = `instance ${ir.instance.domainName} (${uuid})`;
      if (key === '') {
        this.lastReason.delete(uuid);
        this.log.info(`${who}: all meters available again`);
      } else {
        this.lastReason.set(uuid, key);
        const parts = [...byReason].map(([reason, g]) => `no ${g.meters.join(', ')}: ${reason}: ${g.detail}`);
        this.log.warning(`${who}: ${parts.join('; ')}`);
      }
    }
    for (const uuid of this.lastReason.keys()) if (!seen.has(uuid)) this.lastReason.delete(uuid);
  }
}
