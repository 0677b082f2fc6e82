// What the chaos scenarios share: the gate that keeps them out of a plain `npx vitest run`,
// ceilopoll run as the operator runs it (a child process of the CLI) with its log parsed, and the
// real notification agent as the oracle of the broker scenarios (broker-outage, broker-kill): what it
// stored, counted against what ceilopoll produced.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { readAccepted } from '../e2e/accepted.js';
import { notificationAgent } from '../e2e/harness.js';
import type { PrivateRabbit } from '../support/private-rabbit.js';

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

  /** Messages it dropped as duplicates by their `_unique_id` (oslo's DuplicateMessageError, logged). */
  duplicateDrops(): number {
    return (readFileSync(path.join(this.dir, 'agent.log'), 'utf8').match(/DuplicateMessageError: Found duplicate message/g) ?? []).length;
  }

  /** Stops it (the broker is started again first if it is down: the script purges the queue). Never throws. */
  async stop(): Promise<void> {
    if (!this.up) return;
    this.up = false;
    if (!this.rabbit.isRunning()) await this.rabbit.startAgain().catch(() => undefined);
    await notificationAgent('stop', this.dir, { TRANSPORT_URL: this.transportUrl }).catch(() => undefined);
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
