// What the chaos scenarios share: the gate that keeps them out of a plain `npx vitest run`,
// ceilopoll run as the operator runs it (a child process of the CLI) with its log parsed, and the
// real notification agent as the oracle of the broker scenarios (broker-outage, broker-kill): what it
// stored, counted against what ceilopoll produced.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Agent } from '../../src/agent/agent.js';
import { createLogger } from '../../src/agent/log.js';
import { readAccepted } from '../e2e/accepted.js';
import { notificationAgent } from '../e2e/harness.js';
import { testAgentOptions } from '../support/agent.js';
import { sleep } from '../support/lab.js';
import { PrivateRabbit } from '../support/private-rabbit.js';

/** Set by test/chaos/vitest.config.ts (`make chaos`); without it every scenario is skipped. */
export const CHAOS = process.env.CEILOPOLL_CHAOS === '1';

export interface ProducedLine {
  uniqueId: string;
  meter: string;
  sampleIds: string[];
}

/** Agent.runCycle at debug: "produced notification <unique id> <meter> <n> sample(s): <ids>". */
export function parseProducedLine(line: string): ProducedLine | undefined {
  const m = / produced notification ([0-9a-f]{32}) (\S+) \d+ sample\(s\): (\S+)/.exec(line);
  return m ? { uniqueId: m[1]!, meter: m[2]!, sampleIds: m[3]!.split(',') } : undefined;
}

/** `ceilopoll run` as a child process, its stderr parsed line by line. */
export class CeilopollProcess {
  readonly child: ChildProcess;
  readonly produced: ProducedLine[] = [];
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private buf = '';

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'run', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    this.child.stderr!.on('data', (d: Buffer) => this.onData(d.toString()));
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends a signal and waits for the exit. */
  async kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) this.child.kill(signal);
    return this.exited;
  }

  private onData(text: string): void {
    this.buf += text;
    let nl;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      this.lines.push(line);
      const produced = parseProducedLine(line);
      if (produced) this.produced.push(produced);
    }
  }
}

/**
 * The real Debian ceilometer-agent-notification consuming from a private RabbitMQ node
 * (test/e2e/notification-agent.sh in `dir`: ceilometer.conf, agent.log, accepted.jsonl). Its queue
 * notifications.sample is non-durable (oslo's default), as the script writes it.
 */
export class OracleAgent {
  private up = false;

  private constructor(
    readonly dir: string,
    private readonly rabbit: PrivateRabbit,
  ) {}

  /** Installs the agent if need be (apt) and starts it; resolves once it consumes. */
  static async start(rabbit: PrivateRabbit, dir: string): Promise<OracleAgent> {
    await notificationAgent('install');
    const oracle = new OracleAgent(dir, rabbit);
    await notificationAgent('start', dir, { TRANSPORT_URL: oracle.transportUrl, METERS: 'memory,memory.*', START_TIMEOUT_S: '120' });
    oracle.up = true;
    return oracle;
  }

  private get transportUrl(): string {
    return `rabbit://guest:guest@127.0.0.1:${this.rabbit.port}/`;
  }

  /** The sample ids it stored, in order, a sample stored twice twice. */
  accepted(): string[] {
    return readAccepted(path.join(this.dir, 'accepted.jsonl')).map((a) => a.id);
  }

  /**
   * The `_unique_id`s of the messages it dropped as duplicates, one per drop, in order. oslo logs each
   * drop as an ERROR "ignoring duplicate message ...: ...DuplicateMessageError: Found duplicate
   * message(<id>)" followed by the traceback, whose last line repeats the exception: only the first
   * line is counted.
   */
  duplicatesDropped(): string[] {
    const log = readFileSync(path.join(this.dir, 'agent.log'), 'utf8');
    return [...log.matchAll(/ignoring duplicate message .*?DuplicateMessageError: Found duplicate message\(([0-9a-f]+)\)/g)].map((m) => m[1]!);
  }

  /** Stops it (the broker is started again first if it is down: the script purges the queue). Never throws. */
  async stop(): Promise<void> {
    if (!this.up) return;
    this.up = false;
    if (!this.rabbit.isRunning()) await this.rabbit.startAgain().catch(() => undefined);
    await notificationAgent('stop', this.dir, { TRANSPORT_URL: this.transportUrl }).catch(() => undefined);
  }
}

/**
 * What each broker scenario runs on: a private RabbitMQ node (never the machine's), a temporary
 * directory, and the real notification agent consuming from that node (its files in `dir`/oracle).
 */
export class OracleBroker {
  private constructor(
    readonly rabbit: PrivateRabbit,
    readonly dir: string,
    readonly oracle: OracleAgent,
  ) {}

  /** `prefix` names the temporary directory (os.tmpdir()/<prefix>XXXXXX). */
  static async start(prefix: string): Promise<OracleBroker> {
    const rabbit = await PrivateRabbit.start();
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    try {
      return new OracleBroker(rabbit, dir, await OracleAgent.start(rabbit, path.join(dir, 'oracle')));
    } catch (e) {
      await rabbit.destroy();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** The transport_url of the private node (or of whatever listens on `port` in front of it), with short retry pauses. */
  transportUrl(port = this.rabbit.port): string {
    return `rabbit://guest:guest@127.0.0.1:${port}/?rabbit_retry_interval=1&rabbit_retry_backoff=1&rabbit_interval_max=2`;
  }

  /** Stops the agent, removes the node and the directory (kept when CEILOPOLL_CHAOS_KEEP=1, for a post-mortem). Never throws. */
  async close(): Promise<void> {
    await this.oracle.stop();
    await this.rabbit.destroy().catch(() => undefined);
    if (process.env.CEILOPOLL_CHAOS_KEEP === '1') console.error(`kept ${this.dir}`);
    else rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * ceilopoll in-process for a broker row (broker-kill, confirms-cut): an Agent on a broker row's
 * node with a DEBUG logger whose "produced notification" lines are parsed as the child process's
 * are, so that what is in flight at a fault can be read exactly; unhandled rejections are collected
 * until `release()`.
 */
export class InProcessAgent {
  readonly agent: Agent;
  readonly produced: ProducedLine[] = [];
  readonly unhandled: unknown[] = [];
  private readonly onUnhandled = (e: unknown): void => void this.unhandled.push(e);

  constructor(
    private readonly oracle: OracleAgent,
    private readonly opts: { transportUrl: string; spoolPath: string; intervalSeconds: number },
  ) {
    process.on('unhandledRejection', this.onUnhandled);
    this.agent = new Agent(testAgentOptions({
      ...opts,
      log: createLogger('chaos', {
        level: 'DEBUG',
        write: (l) => {
          const p = parseProducedLine(l);
          if (p) this.produced.push(p);
        },
      }),
    }));
  }

  /** every sample id produced so far, in order */
  producedIds(): string[] {
    return this.produced.flatMap((n) => n.sampleIds);
  }

  /** whether the notification agent has stored every sample produced so far */
  everythingStored(): boolean {
    return allStored(this.producedIds(), this.oracle.accepted());
  }

  /** Two more cycles, then a clean stop; resolves with what was left unconfirmed (Agent.stop). */
  async stopAfterTwoCycles(): Promise<number> {
    await sleep(2 * this.opts.intervalSeconds * 1000);
    return this.agent.stop(10_000);
  }

  /** Stops the agent if it still runs and stops collecting rejections. Never throws. */
  async release(): Promise<void> {
    await this.agent.stop(2000).catch(() => undefined);
    process.off('unhandledRejection', this.onUnhandled);
  }
}

/** Produced sample ids against those stored: every produced one once, nothing else. */
export function compareStored(produced: readonly string[], stored: readonly string[]): { missing: string[]; storedTwice: string[]; foreign: string[] } {
  const storedSet = new Set(stored);
  const producedSet = new Set(produced);
  const counts = new Map<string, number>();
  for (const id of stored) counts.set(id, (counts.get(id) ?? 0) + 1);
  return {
    missing: produced.filter((id) => !storedSet.has(id)),
    storedTwice: [...counts].filter(([, n]) => n > 1).map(([id]) => id),
    foreign: stored.filter((id) => !producedSet.has(id)),
  };
}

/** Whether every produced sample id has been stored. */
export function allStored(produced: readonly string[], stored: readonly string[]): boolean {
  const got = new Set(stored);
  return produced.every((id) => got.has(id));
}
