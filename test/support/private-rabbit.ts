// A private RabbitMQ node for the tests that stop, kill or restart a broker, so that they never touch
// the machine's own broker (rabbit@localhost, AMQP 127.0.0.1:5672, distribution 25672, run as the
// rabbitmq user by `/usr/sbin/rabbitmq-server -detached`).
//
// What keeps the two apart:
//   - its own node name (ceilopoll-test-<random>@localhost), AMQP port and distribution port, both
//     picked free from 20000-31999 (below the kernel's ephemeral range 32768-60999, so no outgoing
//     connection can grab them in between, and away from rabbitmqctl's own 35672-35682), and only on
//     127.0.0.1;
//   - its own data, log, config, enabled-plugins (none: no management plugin), rabbitmq-env.conf and
//     pid file, all under one directory, so nothing under /etc/rabbitmq or /var/lib/rabbitmq is read
//     or written;
//   - its own HOME, holding its own random Erlang cookie. The machine's node keeps its cookie in
//     /var/lib/rabbitmq/.erlang.cookie (root reaches it only because /usr/sbin/rabbitmqctl su's to
//     the rabbitmq user); root has no ~/.erlang.cookie and we do not create one. With a private
//     cookie, even a mistaken `rabbitmqctl -n rabbit@localhost` from this helper is refused;
//   - the unwrapped scripts in /usr/lib/rabbitmq/bin (Debian's /usr/sbin wrappers would su to the
//     rabbitmq user, cd to /var/lib/rabbitmq and drop our HOME), run as the current user (root);
//   - signals only ever go to processes found by a marker on their command line
//     (`-ceilopoll_private_rabbit <node>`, an Erlang user flag the node ignores), owned by our uid
//     (the machine's node runs as rabbitmq), re-checked by start time just before the signal, and
//     their descendants, never to epmd.
// epmd is the one thing shared: the node registers its name with the machine's epmd on 4369 (which
// runs as rabbitmq, listening on 127.0.0.1). Registering a name is harmless and epmd drops it as soon
// as the node's connection to it closes, SIGKILL included. If no epmd were running, the node would
// start one (on 127.0.0.1, as ERL_EPMD_ADDRESS says) and it would outlive the node, as on any host.
//
// The node runs in the foreground under the rabbitmq-server script, spawned detached (own session)
// with its output appended to <dir>/log/stdout.log and unref'd: we see at once when it dies during
// boot (and why: early errors are printed before the log file exists), it outlives the process that
// started it (the CLI in private-rabbit-cli.ts relies on that), and `-detached` would have thrown the
// output away and left us polling a pid file. The process tree is
//   sh rabbitmq-server -> beam.smp -> erl_child_setup -> inet_gethost, sh (disk monitor)
// stop() sends SIGTERM to beam.smp, which OTP turns into init:stop(), RabbitMQ's clean shutdown
// (listeners closed, queues and message stores flushed, recovery terms written); kill() SIGKILLs
// beam.smp and its descendants, the script then exits by itself.
//
// RabbitMQ 3.10.8 on Erlang/OTP 25.2.3 (Debian 12), so the metadata store is Mnesia (Khepri only
// arrives in 3.13). After a SIGKILL the node recovers on the next start: durable queues come back
// with the persistent messages that were confirmed before the kill (classic queues confirm persistent
// messages once they are on disk), provided they were declared more than 2 s before it: Mnesia writes
// a declaration through OTP's disk_log, which flushes its write cache 2 s later, so a SIGKILL inside
// that window loses the queue (and with it the confirmed message).
//
// Timings on this machine (2 vCPUs, 24 GB; measured around the public methods over 6 runs, with other
// test suites and builds running alongside, load average 3-7):
//   start() of a fresh node, until AMQP accepts a connection    7.4-13.6 s
//   stop() (SIGTERM until the processes are gone, port closed)    1.1-1.4 s
//   kill() (SIGKILL until the processes are gone, port closed)    0.06-0.1 s
//   startAgain() after stop()                                     9.2-13 s
//   startAgain() after kill() (unclean: store recovery)           8.5-13 s
//   restart() (stop() + startAgain())                             10.2-15.5 s
//   destroy() of a running node (stop() + rm -rf)                1.2-1.4 s
//   rabbitmqctl(['list_queues']) (boots a hidden Erlang node)      1.3-2.8 s
// A boot is CPU-bound: beam.smp burns about 7.5 s of CPU (5.9 user, 1.5 sys) before AMQP answers.
// Roughly 5 s go by before the log file is opened (VM start, prelaunch, config), 3-4 s more between
// the banner and the first boot step (code loading); the boot steps themselves take about a second,
// and recovery after a SIGKILL of a near-empty node costs nothing measurable. Tests using this need
// timeouts of a minute or more per start.
//
// Left-overs: every node made by start() without a dir lives in <tmpdir>/ceilopoll-private-rabbit/
// <name>/ and records the process that started it; a process that exits, or gets SIGTERM, SIGINT or
// SIGHUP, SIGKILLs the nodes it did not destroy (the dirs stay, for the post-mortem; keepAfterExit
// turns this off), and each start() removes the dirs there that
// are older than an hour (mtime, touched at every start) whose starter is gone (keepAfterExit nodes
// record none: age alone), SIGKILLing their node first if it still runs. Dirs given by the caller
// (start({ dir }), the CLI) are never removed but by destroy().

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

import { connect } from 'amqplib';

const execFileP = promisify(execFile);

/** Where the unwrapped rabbitmq-server and rabbitmqctl scripts live (Debian's rabbitmq-server package). */
export const RABBITMQ_BIN_DIR = process.env.CEILOPOLL_RABBITMQ_BIN_DIR ?? '/usr/lib/rabbitmq/bin';
/** Where start() puts the nodes it names itself; the stale-dir cleanup only ever looks in here. */
export const PRIVATE_RABBIT_ROOT = path.join(os.tmpdir(), 'ceilopoll-private-rabbit');

const NAME_PREFIX = 'ceilopoll-test-';
const OWNED_NAME = /^ceilopoll-test-[A-Za-z0-9_-]+$/;
const VALID_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const MARKER_FLAG = '-ceilopoll_private_rabbit';
const STALE_AFTER_MS = 60 * 60 * 1000;
const PORT_MIN = 20_000;
const PORT_MAX = 31_999;
/** Never picked: epmd, AMQP, the machine node's distribution port and the usual plugin ports. */
const RESERVED_PORTS = new Set([4369, 5671, 5672, 15672, 25672, 1883, 8883, 61613, 61614, 15674, 15675, 15692]);
const STATE_FILE = 'state.json';
const DEFAULT_START_TIMEOUT_MS = 120_000;

export interface PrivateRabbitStartOptions {
  /** AMQP port on 127.0.0.1; a free one is picked when absent. */
  port?: number;
  /** The node name's local part (the host is always localhost); ceilopoll-test-<random> when absent. */
  name?: string;
  /** Where to keep everything; <tmpdir>/ceilopoll-private-rabbit/<name> when absent. Such a dir is
   *  never cleaned up automatically: destroy() it. */
  dir?: string;
  /** How long to wait for AMQP to accept connections, at this start and by default at later ones. */
  startTimeoutMs?: number;
  /** Leave the node running when this process exits (the CLI); by default it is SIGKILLed then. */
  keepAfterExit?: boolean;
}

interface State {
  version: 1;
  name: string;
  node: string;
  port: number;
  distPort: number;
  createdAt: string;
  /** The process that called start(), by pid and kernel start time (pids get reused). */
  owner?: { pid: number; startTime: string };
}

interface ProcRef {
  pid: number;
  startTime: string;
}

export class PrivateRabbit {
  /** The node name's local part. */
  readonly name: string;
  /** The full Erlang node name, e.g. ceilopoll-test-1a2b3c4d5e@localhost. */
  readonly node: string;
  readonly port: number;
  readonly distPort: number;
  /** amqp://guest:guest@127.0.0.1:PORT */
  readonly url: string;
  readonly dir: string;
  /** RabbitMQ's own log file. */
  readonly logFile: string;
  /** The node's stdout and stderr (the banner, early boot errors), appended to at each start. */
  readonly stdoutFile: string;

  private readonly homeDir: string;
  private readonly etcDir: string;
  private readonly pidFile: string;
  private readonly killOnExit: boolean;
  private readonly startTimeoutMs: number;
  /** Sizes of the log and stdout files when the last start began: failure() shows what came after. */
  private logOffset = 0;
  private stdoutOffset = 0;

  private constructor(dir: string, state: State, opts: { killOnExit: boolean; startTimeoutMs: number }) {
    this.dir = path.resolve(dir);
    this.name = state.name;
    this.node = state.node;
    this.port = state.port;
    this.distPort = state.distPort;
    this.url = `amqp://guest:guest@127.0.0.1:${state.port}`;
    this.homeDir = path.join(this.dir, 'home');
    this.etcDir = path.join(this.dir, 'etc');
    this.pidFile = path.join(this.dir, 'rabbit.pid');
    this.logFile = path.join(this.dir, 'log', `${state.node}.log`);
    this.stdoutFile = path.join(this.dir, 'log', 'stdout.log');
    this.killOnExit = opts.killOnExit;
    this.startTimeoutMs = opts.startTimeoutMs;
  }

  /**
   * Creates a node in a new directory and starts it; resolves once AMQP accepts a connection as
   * guest. Fails with the tails of the node's log and output if it dies or does not answer in time
   * (it is SIGKILLed then). Removes stale dirs of earlier crashed runs first.
   */
  static async start(opts: PrivateRabbitStartOptions = {}): Promise<PrivateRabbit> {
    await PrivateRabbit.reapStale().catch(() => undefined);
    if (opts.name !== undefined && !VALID_NAME.test(opts.name)) {
      throw new Error(`PrivateRabbit: bad node name ${JSON.stringify(opts.name)}: a letter, then letters, digits, '-' or '_' (no '@': the host is always localhost)`);
    }
    if (opts.port !== undefined && !(Number.isInteger(opts.port) && opts.port > 0 && opts.port < 65536)) {
      throw new Error(`PrivateRabbit: bad port ${opts.port}`);
    }
    for (const script of ['rabbitmq-server', 'rabbitmqctl']) {
      const file = path.join(RABBITMQ_BIN_DIR, script);
      if (!fs.existsSync(file)) throw new Error(`PrivateRabbit: ${file} not found: is Debian's rabbitmq-server package installed?`);
    }

    if (opts.port !== undefined && !(await canListen(opts.port))) {
      throw new Error(`PrivateRabbit: port ${opts.port} on 127.0.0.1 is in use`);
    }

    const { dir, name } = await makeNodeDir(opts);
    const startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const killOnExit = !opts.keepAfterExit;
    try {
      await writeNodeFiles(dir);
      // Ports picked here can be taken by someone else before the node binds them: try again with
      // new ones when the node says so (never when the caller chose the port).
      for (let attempt = 1; ; attempt++) {
        const port = opts.port ?? (await pickFreePort(new Set()));
        const distPort = await pickFreePort(new Set([port]));
        const state: State = {
          version: 1,
          name,
          node: `${name}@localhost`,
          port,
          distPort,
          createdAt: new Date().toISOString(),
          ...(killOnExit && !opts.dir ? { owner: { pid: process.pid, startTime: procStartTime(process.pid) ?? '' } } : {}),
        };
        await fsp.writeFile(path.join(dir, STATE_FILE), JSON.stringify(state, null, 2) + '\n');
        const rabbit = new PrivateRabbit(dir, state, { killOnExit, startTimeoutMs });
        try {
          await rabbit.startAgain(startTimeoutMs);
          return rabbit;
        } catch (err) {
          PrivateRabbit.exitList.delete(rabbit);
          // "could not bind to distribution port" (dist_port_already_used), or eaddrinuse from the AMQP listener
          const portClash = err instanceof Error && /eaddrinuse|dist_port_already_used|could not bind/i.test(err.message);
          if (!portClash || opts.port !== undefined || attempt >= 3) throw err;
        }
      }
    } catch (err) {
      // a node that never came up leaves nothing behind in the tmp root (a caller's dir keeps its logs)
      if (!opts.dir) await fsp.rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** A handle on a node made earlier by start({ dir }), possibly by another process (the CLI). */
  static async open(dir: string, opts: { startTimeoutMs?: number; killOnExit?: boolean } = {}): Promise<PrivateRabbit> {
    const state = await readState(dir);
    if (!state) throw new Error(`PrivateRabbit: no node in ${dir} (no readable ${STATE_FILE})`);
    const rabbit = new PrivateRabbit(dir, state, {
      killOnExit: opts.killOnExit ?? false,
      startTimeoutMs: opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    });
    if (rabbit.killOnExit && rabbit.isRunning()) PrivateRabbit.registerForExit(rabbit);
    return rabbit;
  }

  /**
   * Starts the node again on the same data (after stop() or kill()), same name and ports, so durable
   * queues and their persistent messages are back; resolves once AMQP accepts a connection.
   */
  async startAgain(timeoutMs = this.startTimeoutMs): Promise<void> {
    const running = this.nodeProcesses();
    if (running.length > 0) throw new Error(`PrivateRabbit ${this.node} is already running (pids ${running.map((p) => p.pid).join(' ')})`);
    if (await isPortOpen(this.port)) throw new Error(`PrivateRabbit ${this.node}: port ${this.port} on 127.0.0.1 is in use by someone else`);
    await fsp.rm(this.pidFile, { force: true });
    const now = new Date();
    await fsp.utimes(this.dir, now, now); // the stale-dir cleanup goes by this
    await fsp.mkdir(path.dirname(this.stdoutFile), { recursive: true });

    const out = fs.openSync(this.stdoutFile, 'a');
    let child: ChildProcess;
    try {
      fs.writeSync(out, `\n==== ${now.toISOString()} starting ${this.node} (AMQP ${this.port}, dist ${this.distPort}) from pid ${process.pid} ====\n`);
      this.stdoutOffset = fs.fstatSync(out).size;
      this.logOffset = fileSize(this.logFile);
      child = spawn(path.join(RABBITMQ_BIN_DIR, 'rabbitmq-server'), [], {
        cwd: this.dir,
        env: this.env(),
        detached: true,
        stdio: ['ignore', out, out],
      });
    } finally {
      fs.closeSync(out);
    }
    child.unref();
    let died: string | undefined;
    child.once('error', (err) => void (died ??= `could not be run: ${err.message}`));
    child.once('exit', (_code, sig) => void (died ??= sig ? `was killed (${sig})` : 'exited'));
    if (this.killOnExit) PrivateRabbit.registerForExit(this);

    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (died !== undefined) throw this.failure(`rabbitmq-server ${died} before accepting AMQP connections`);
      if (await amqpAnswers(this.url, 2_000)) return;
      await sleep(200);
    }
    await this.kill().catch(() => undefined);
    throw this.failure(`AMQP on 127.0.0.1:${this.port} did not accept a connection within ${timeoutMs} ms (the node was SIGKILLed)`);
  }

  /**
   * Clean stop: SIGTERM to the node (RabbitMQ's orderly shutdown), then waits until its processes
   * are gone and the AMQP port is closed. Does nothing if the node is not running. If it has not
   * stopped within timeoutMs it is SIGKILLed and this rejects.
   */
  async stop(timeoutMs = 30_000): Promise<void> {
    const procs = this.nodeProcesses();
    const beam = procs[0];
    if (beam) {
      signal(beam, 'SIGTERM');
      if (!(await waitFor(() => procs.every((p) => !isAlive(p)), timeoutMs))) {
        await this.kill().catch(() => undefined);
        throw this.failure(`did not stop within ${timeoutMs} ms of SIGTERM (it was SIGKILLed)`);
      }
    }
    await this.waitPortClosed(timeoutMs);
  }

  /**
   * SIGKILL, as a crash or an OOM kill would: the node's beam.smp and its descendants (erl_child_setup,
   * inet_gethost, the disk monitor's sh; never epmd), then waits until they are gone and the AMQP
   * port is closed. Does nothing if the node is not running.
   */
  async kill(timeoutMs = 10_000): Promise<void> {
    const procs = this.nodeProcesses();
    for (const p of procs) signal(p, 'SIGKILL');
    if (!(await waitFor(() => procs.every((p) => !isAlive(p)), timeoutMs))) {
      throw new Error(`PrivateRabbit ${this.node}: pids ${procs.filter(isAlive).map((p) => p.pid).join(' ')} still there ${timeoutMs} ms after SIGKILL`);
    }
    await this.waitPortClosed(timeoutMs);
  }

  /** stop() then startAgain(). */
  async restart(timeoutMs = this.startTimeoutMs): Promise<void> {
    await this.stop();
    await this.startAgain(timeoutMs);
  }

  /** `rabbitmqctl -n <node> ...args` with this node's HOME (cookie) and environment; resolves to stdout. */
  async rabbitmqctl(args: readonly string[], timeoutMs = 60_000): Promise<string> {
    try {
      const { stdout } = await execFileP(path.join(RABBITMQ_BIN_DIR, 'rabbitmqctl'), ['-n', this.node, ...args], {
        cwd: this.dir,
        env: this.env(),
        timeout: timeoutMs,
        maxBuffer: 16 * 1024 * 1024,
      });
      return stdout;
    } catch (err) {
      const e = err as Error & { stdout?: string };
      throw new Error(`PrivateRabbit: rabbitmqctl -n ${this.node} ${args.join(' ')} failed: ${e.message}${e.stdout ? `\n${e.stdout}` : ''}`);
    }
  }

  /** stop() (kill() if that fails) and remove the node's directory. Safe to call twice. */
  async destroy(): Promise<void> {
    PrivateRabbit.exitList.delete(this);
    try {
      await this.stop();
    } catch {
      await this.kill().catch(() => undefined);
    }
    await fsp.rm(this.dir, { recursive: true, force: true });
  }

  /** Whether the node's beam.smp process exists (it may still be booting or stopping). */
  isRunning(): boolean {
    return this.nodeProcesses().length > 0;
  }

  /** beam.smp's pid and its descendants' (pids only; for logs and assertions). */
  pids(): { beam: number | undefined; children: number[] } {
    const [beam, ...children] = this.nodeProcesses();
    return { beam: beam?.pid, children: children.map((c) => c.pid) };
  }

  /** The last lines of the node's log file. */
  logTail(lines = 40): string {
    return excerpt(this.logFile, 0, 0, lines);
  }

  /**
   * Removes the dirs in PRIVATE_RABBIT_ROOT that are older than an hour (by mtime, which every start
   * touches) and whose starter process is gone, SIGKILLing their node first if it still runs.
   * Resolves to the dirs removed.
   */
  static async reapStale(now = Date.now()): Promise<string[]> {
    let names: string[];
    try {
      names = await fsp.readdir(PRIVATE_RABBIT_ROOT);
    } catch {
      return [];
    }
    const removed: string[] = [];
    for (const name of names) {
      if (!OWNED_NAME.test(name)) continue;
      const dir = path.join(PRIVATE_RABBIT_ROOT, name);
      try {
        const st = await fsp.stat(dir);
        if (!st.isDirectory() || now - st.mtimeMs < STALE_AFTER_MS) continue;
        const state = await readState(dir);
        if (state?.owner && procStartTime(state.owner.pid) === state.owner.startTime) continue;
        const procs = findNodeProcesses(state?.node ?? `${name}@localhost`);
        for (const p of procs) signal(p, 'SIGKILL');
        await waitFor(() => procs.every((p) => !isAlive(p)), 5_000);
        await fsp.rm(dir, { recursive: true, force: true });
        removed.push(dir);
      } catch {
        // someone else reaping the same dir, or it went away: not ours to worry about
      }
    }
    return removed;
  }

  // Nodes to SIGKILL when this process exits or is told to (vitest stops its fork workers with
  // SIGTERM, which skips 'exit' handlers; the nodes sit in their own session, so a Ctrl-C does not
  // reach them). Only synchronous work is possible there. A signal is raised again once handled,
  // unless someone else listens for it too, so the process still dies of it as it would have.
  private static readonly exitList = new Set<PrivateRabbit>();
  private static exitHookInstalled = false;

  private static registerForExit(rabbit: PrivateRabbit): void {
    PrivateRabbit.exitList.add(rabbit);
    if (PrivateRabbit.exitHookInstalled) return;
    PrivateRabbit.exitHookInstalled = true;
    const killAll = (): void => {
      for (const r of PrivateRabbit.exitList) for (const p of r.nodeProcesses()) signal(p, 'SIGKILL');
    };
    process.once('exit', killAll);
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      process.once(sig, () => {
        killAll();
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
      });
    }
  }

  /** beam.smp first, then its descendants. */
  private nodeProcesses(): ProcRef[] {
    return findNodeProcesses(this.node);
  }

  private async waitPortClosed(timeoutMs: number): Promise<void> {
    if (!(await waitFor(async () => !(await isPortOpen(this.port)), timeoutMs))) {
      throw new Error(`PrivateRabbit ${this.node}: port ${this.port} still accepts connections ${timeoutMs} ms after the node went`);
    }
  }

  private env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    // nothing of the caller's RabbitMQ/Erlang settings, nor systemd's (the script would exec, not wait)
    for (const [k, v] of Object.entries(process.env)) {
      if (v === undefined || /^(RABBITMQ_|ERL_|ERLANG_)/.test(k) || ['HOME', 'NOTIFY_SOCKET', 'detached', 'CONF_ENV_FILE'].includes(k)) continue;
      env[k] = v;
    }
    const etc = this.etcDir;
    return {
      ...env,
      PATH: env.PATH ? `${env.PATH}:/usr/bin:/bin` : '/usr/bin:/bin',
      HOME: this.homeDir, // its .erlang.cookie, for the node and for rabbitmqctl alike
      RABBITMQ_NODENAME: this.node,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_MNESIA_BASE: path.join(this.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(this.dir, 'log'),
      RABBITMQ_PID_FILE: this.pidFile,
      RABBITMQ_CONFIG_FILE: path.join(etc, 'rabbitmq.conf'),
      RABBITMQ_CONFIG_FILES: path.join(etc, 'conf.d', '*.conf'),
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(etc, 'advanced.config'),
      RABBITMQ_CONF_ENV_FILE: path.join(etc, 'rabbitmq-env.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(etc, 'enabled_plugins'),
      RABBITMQ_ENABLED_PLUGINS: '', // 3.10 reads an empty value as "no plugins"
      RABBITMQ_MOTD_FILE: path.join(etc, 'motd'),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: `-kernel inet_dist_use_interface {127,0,0,1} ${MARKER_FLAG} ${this.node}`,
      ERL_EPMD_ADDRESS: '127.0.0.1',
      ERL_CRASH_DUMP: path.join(this.dir, 'log', 'erl_crash.dump'),
    };
  }

  /** An error with what the node wrote since its last start began: boot errors that come before
   *  the log file is opened (bad config, port clash) are only on its stdout. */
  private failure(what: string): Error {
    return new Error(
      `PrivateRabbit ${this.node} (${this.dir}): ${what}\n` +
        `--- ${this.logFile} since the start ---\n${excerpt(this.logFile, this.logOffset, 10, 30)}\n` +
        `--- ${this.stdoutFile} since the start ---\n${excerpt(this.stdoutFile, this.stdoutOffset, 15, 25)}`,
    );
  }
}

// --- the node's directory ------------------------------------------------------------------------

async function makeNodeDir(opts: PrivateRabbitStartOptions): Promise<{ dir: string; name: string }> {
  if (opts.dir) {
    const dir = path.resolve(opts.dir);
    if (fs.existsSync(path.join(dir, STATE_FILE))) {
      throw new Error(`PrivateRabbit: ${dir} already holds a node: PrivateRabbit.open() it, or destroy() it first`);
    }
    await fsp.mkdir(dir, { recursive: true });
    return { dir, name: opts.name ?? `${NAME_PREFIX}${randomBytes(5).toString('hex')}` };
  }
  await fsp.mkdir(PRIVATE_RABBIT_ROOT, { recursive: true, mode: 0o700 });
  for (let i = 0; ; i++) {
    const name = opts.name ?? `${NAME_PREFIX}${randomBytes(5).toString('hex')}`;
    const dir = path.join(PRIVATE_RABBIT_ROOT, name);
    try {
      await fsp.mkdir(dir, { mode: 0o700 });
      return { dir, name };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || opts.name !== undefined || i >= 5) {
        throw new Error(`PrivateRabbit: cannot create ${dir}: ${(err as Error).message}`);
      }
    }
  }
}

async function writeNodeFiles(dir: string): Promise<void> {
  const home = path.join(dir, 'home');
  const etc = path.join(dir, 'etc');
  for (const d of [home, etc, path.join(etc, 'conf.d'), path.join(dir, 'mnesia'), path.join(dir, 'log')]) {
    await fsp.mkdir(d, { recursive: true, mode: 0o700 });
  }
  // Erlang insists on a cookie file only its owner can read
  const cookie = path.join(home, '.erlang.cookie');
  await fsp.writeFile(cookie, randomBytes(20).toString('hex').toUpperCase(), { mode: 0o400 });
  await fsp.chmod(cookie, 0o400);
  await fsp.writeFile(path.join(etc, 'rabbitmq-env.conf'), '# empty: keeps /etc/rabbitmq/rabbitmq-env.conf out\n');
  await fsp.writeFile(path.join(etc, 'enabled_plugins'), '[].\n');
  await fsp.writeFile(
    path.join(etc, 'rabbitmq.conf'),
    [
      '# written by test/support/private-rabbit.ts; AMQP address, port and node name come from the environment',
      'log.console = false',
      'log.file.level = info',
      '',
    ].join('\n'),
  );
}

async function readState(dir: string): Promise<State | undefined> {
  try {
    const s = JSON.parse(await fsp.readFile(path.join(dir, STATE_FILE), 'utf8')) as Partial<State>;
    if (s.version !== 1 || typeof s.name !== 'string' || typeof s.node !== 'string' || typeof s.port !== 'number' || typeof s.distPort !== 'number') {
      return undefined;
    }
    return s as State;
  } catch {
    return undefined;
  }
}

// --- processes -----------------------------------------------------------------------------------

const MY_UID = process.getuid?.() ?? -1;

interface ProcStat {
  comm: string;
  state: string;
  ppid: number;
  startTime: string;
}

function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  // fields after "pid (comm) ": state is field 3, ppid 4, starttime 22
  const rest = text.slice(close + 2).split(' ');
  return { comm: text.slice(open + 1, close), state: rest[0] ?? '', ppid: Number(rest[1]), startTime: rest[19] ?? '' };
}

function procStartTime(pid: number): string | undefined {
  return procStat(pid)?.startTime;
}

function isAlive(p: ProcRef): boolean {
  const st = procStat(p.pid);
  return st !== undefined && st.startTime === p.startTime && st.state !== 'Z' && st.state !== 'X';
}

function allPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** The beam.smp carrying our marker for this node (ours by uid), then all its descendants but epmd. */
function findNodeProcesses(node: string): ProcRef[] {
  const stats = new Map<number, ProcStat>();
  for (const pid of allPids()) {
    const st = procStat(pid);
    if (st) stats.set(pid, st);
  }
  const beams: ProcRef[] = [];
  for (const [pid, st] of stats) {
    if (!st.comm.startsWith('beam') || st.state === 'Z') continue;
    let args: string[];
    try {
      if (fs.statSync(`/proc/${pid}`).uid !== MY_UID) continue;
      args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const i = args.indexOf(MARKER_FLAG);
    if (i >= 0 && args[i + 1] === node) beams.push({ pid, startTime: st.startTime });
  }
  const children = new Map<number, number[]>();
  for (const [pid, st] of stats) children.set(st.ppid, [...(children.get(st.ppid) ?? []), pid]);
  const result = [...beams];
  const queue = beams.map((b) => b.pid);
  while (queue.length > 0) {
    for (const kid of children.get(queue.shift()!) ?? []) {
      const st = stats.get(kid)!;
      if (st.comm === 'epmd' || st.state === 'Z') continue;
      result.push({ pid: kid, startTime: st.startTime });
      queue.push(kid);
    }
  }
  return result;
}

/** Signals p only if it is still the same process (pid and start time) and ours. */
function signal(p: ProcRef, sig: NodeJS.Signals): void {
  if (p.pid <= 1 || p.pid === process.pid || !isAlive(p)) return;
  try {
    if (fs.statSync(`/proc/${p.pid}`).uid !== MY_UID) return;
    process.kill(p.pid, sig);
  } catch {
    // gone in between
  }
}

// --- ports, AMQP, misc ---------------------------------------------------------------------------

function canListen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

async function pickFreePort(exclude: ReadonlySet<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN + 1));
    if (exclude.has(port) || RESERVED_PORTS.has(port)) continue;
    if (await canListen(port)) return port;
  }
  throw new Error(`PrivateRabbit: no free port found in ${PORT_MIN}-${PORT_MAX}`);
}

/** Whether something accepts TCP connections on host:port. */
export function isPortOpen(port: number, host = '127.0.0.1', timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (open: boolean): void => {
      sock.destroy();
      resolve(open);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Whether an AMQP connection to url opens (and it is closed again at once). */
export async function amqpAnswers(url: string, timeoutMs = 2_000): Promise<boolean> {
  try {
    const conn = await connect(url, { timeout: timeoutMs });
    conn.on('error', () => undefined);
    await conn.close().catch(() => undefined);
    return true;
  } catch {
    return false;
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** The text of file from byte offset on (its last MiB at most), as its first `head` and last `tail` lines. */
function excerpt(file: string, offset: number, head: number, tail: number): string {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const from = Math.max(Math.min(offset, size), size - 1024 * 1024);
      const buf = Buffer.alloc(size - from);
      fs.readSync(fd, buf, 0, buf.length, from);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    return `(${(err as Error).message})`;
  }
  const lines = text.trimEnd().split('\n');
  if (text.trim() === '') return '(nothing)';
  if (lines.length <= head + tail) return lines.join('\n');
  return [...lines.slice(0, head), `[... ${lines.length - head - tail} lines ...]`, ...lines.slice(-tail)].join('\n');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}
