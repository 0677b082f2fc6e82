// What the chaos scenarios share: the gate that keeps them out of a plain `npx vitest run`, and
// ceilopoll run as the operator runs it (a child process of the CLI) with its log parsed.

import { spawn, type ChildProcess } from 'node:child_process';

/** Set by test/chaos/vitest.config.ts (`make chaos`); without it every scenario is skipped. */
export const CHAOS = process.env.CEILOPOLL_CHAOS === '1';

export interface ProducedLine {
  uniqueId: string;
  meter: string;
  sampleIds: string[];
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
      // Agent.runCycle at debug: "produced notification <unique id> <meter> <n> sample(s): <ids>"
      const m = / produced notification ([0-9a-f]{32}) (\S+) \d+ sample\(s\): (\S+)/.exec(line);
      if (m) this.produced.push({ uniqueId: m[1]!, meter: m[2]!, sampleIds: m[3]!.split(',') });
    }
  }
}
