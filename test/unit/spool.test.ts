import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { MAX_RESERVE_BYTES, MIN_RESERVE_BYTES, Spool, SpoolError, reserveSizeFor, type SpoolDrop, type SpoolOptions } from '../../src/publish/spool.js';
import { WRITER_BODY, writerBody } from '../support/spool-writer.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** A real 3-sample notification (4325 bytes). */
const BODY = WRITER_BODY;
const MB = 1024 * 1024;

let dir: string;
let file: string;
const opened: Spool[] = [];

function open(opts: Partial<SpoolOptions> = {}, at = file): Spool {
  const spool = Spool.open(at, { maxBytes: 100 * MB, maxAgeMs: 3600_000, reserveBytes: 64 * 1024, ...opts });
  opened.push(spool);
  return spool;
}

function reopen(spool: Spool, opts: Partial<SpoolOptions> = {}): Spool {
  spool.close();
  return open(opts, spool.path);
}

const body = (i: number, size = 100): Buffer => Buffer.concat([Buffer.from(`${i}:`), Buffer.alloc(size, i % 256)]);

function errorOf(f: () => unknown): SpoolError {
  try {
    f();
  } catch (err) {
    if (err instanceof SpoolError) return err;
    throw err;
  }
  throw new Error('expected a SpoolError, nothing was thrown');
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-spool-'));
  file = path.join(dir, 'sub', 'spool.db');
});
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('order and seq', () => {
  it('creates its folders and starts empty', () => {
    const s = open();
    expect(fs.existsSync(file)).toBe(true);
    expect([s.depth, s.bytes, s.oldestCreatedAt]).toEqual([0, 0, undefined]);
    expect(s.peek(10)).toEqual([]);
    expect(s.recovery).toBeUndefined();
  });

  it('gives back the entries in order with their original bytes, meter and meta, also after a reopen', () => {
    let t = 1_000;
    let s = open({ now: () => t++ });
    const seqs = [0, 1, 2, 3, 4].map((i) => s.append(`meter.${i}`, i === 2 ? BODY : body(i), JSON.stringify({ i })));
    s = reopen(s);
    const got = s.peek(10);
    expect(got.map((e) => e.seq)).toEqual(seqs);
    expect(got.map((e) => e.meter)).toEqual(['meter.0', 'meter.1', 'meter.2', 'meter.3', 'meter.4']);
    expect(got.map((e) => e.meta)).toEqual([0, 1, 2, 3, 4].map((i) => JSON.stringify({ i })));
    expect(got.map((e) => e.createdAt)).toEqual([1000, 1001, 1002, 1003, 1004]);
    expect(got[2]!.body.equals(BODY)).toBe(true);
    expect(got[4]!.body.equals(body(4))).toBe(true);
    expect([s.depth, s.bytes, s.oldestCreatedAt]).toEqual([5, 4 * body(0).length + BODY.length, 1000]);
  });

  it('meta defaults to an empty JSON object', () => {
    const s = open();
    s.append('m', body(0));
    expect(s.peek(1)[0]!.meta).toBe('{}');
  });

  it('never reuses a seq, even once the spool was emptied and reopened', () => {
    let s = open();
    const first = [s.append('m', body(0)), s.append('m', body(1)), s.append('m', body(2))];
    expect(first[1]).toBeGreaterThan(first[0]!);
    expect(first[2]).toBeGreaterThan(first[1]!);
    s.removeUpTo(first[2]!);
    expect(s.depth).toBe(0);
    const afterEmpty = s.append('m', body(3));
    expect(afterEmpty).toBeGreaterThan(first[2]!);
    s.remove(afterEmpty);
    s = reopen(s);
    expect(s.depth).toBe(0);
    expect(s.append('m', body(4))).toBeGreaterThan(afterEmpty);
  });
});

describe('peek and remove', () => {
  let s: Spool;
  let seqs: number[];
  beforeEach(() => {
    s = open();
    seqs = Array.from({ length: 10 }, (_, i) => s.append('m', body(i)));
  });

  it('peek reads without taking: the same head until it is removed', () => {
    expect(s.peek(3).map((e) => e.seq)).toEqual(seqs.slice(0, 3));
    expect(s.peek(3).map((e) => e.seq)).toEqual(seqs.slice(0, 3));
    expect(s.depth).toBe(10);
  });

  it('peek after a seq continues past the entries in flight', () => {
    expect(s.peek(4, seqs[2]).map((e) => e.seq)).toEqual(seqs.slice(3, 7));
    expect(s.peek(100, seqs[8]).map((e) => e.seq)).toEqual([seqs[9]]);
    expect(s.peek(5, seqs[9])).toEqual([]);
  });

  it('remove takes one entry, in any order, and says whether it was there', () => {
    expect(s.remove(seqs[1]!)).toBe(true);
    expect(s.remove(seqs[0]!)).toBe(true);
    expect(s.remove(seqs[0]!)).toBe(false);
    expect(s.remove(123456)).toBe(false);
    expect(s.peek(2).map((e) => e.seq)).toEqual(seqs.slice(2, 4));
    expect([s.depth, s.bytes]).toEqual([8, 8 * body(0).length]);
  });

  it('removeUpTo takes every entry up to and including a seq', () => {
    s.remove(seqs[5]!);
    expect(s.removeUpTo(seqs[6]!)).toBe(6);
    expect(s.peek(10).map((e) => e.seq)).toEqual(seqs.slice(7));
    expect(s.removeUpTo(seqs[6]!)).toBe(0);
    expect(s.depth).toBe(3);
  });

  it('removeMany takes out the listed entries in one go and skips those already gone', () => {
    s.remove(seqs[2]!);
    expect(s.removeMany([seqs[1]!, seqs[2]!, seqs[4]!, 999_999])).toBe(2);
    expect(s.peek(10).map((e) => e.seq)).toEqual([seqs[0], seqs[3], ...seqs.slice(5)]);
    expect([s.depth, s.bytes]).toEqual([7, 7 * body(0).length]);
    expect(s.removeMany([])).toBe(0);
    s = reopen(s);
    expect(s.depth).toBe(7);
  });

  it('counts appended and removed entries and bytes since open', () => {
    s.remove(seqs[0]!);
    s.removeUpTo(seqs[3]!);
    const n = body(0).length;
    expect(s.stats).toEqual({ appended: 10, appendedBytes: 10 * n, removed: 4, removedBytes: 4 * n, dropped: 0, droppedBytes: 0 });
    expect(reopen(s).stats.appended).toBe(0);
  });

  it('rejects a limit that is not a positive integer', () => {
    expect(() => s.peek(0)).toThrow(RangeError);
    expect(() => s.peek(1.5)).toThrow(RangeError);
  });

  it('refuses every call once closed, and closing twice is harmless', () => {
    s.close();
    s.close();
    expect(errorOf(() => s.append('m', body(0))).kind).toBe('closed');
    expect(errorOf(() => s.peek(1)).message).toContain(file);
  });
});

describe('size bound', () => {
  it('drops the oldest entries to make room, reports them, and keeps within maxBytes', () => {
    const drops: SpoolDrop[] = [];
    let t = 0;
    const size = body(0).length; // 102
    const s = open({ maxBytes: 10 * size, now: () => (t += 10), onDrop: (d) => drops.push(d) });
    const seqs = Array.from({ length: 10 }, (_, i) => s.append('m', body(i)));
    expect(drops).toEqual([]);
    const big = Buffer.alloc(3 * size - 5); // needs 3 entries' room
    const bigSeq = s.append('big', big);
    expect(drops).toEqual([{ count: 3, bytes: 3 * size, reason: 'full', oldestCreatedAt: 10 }]);
    expect(s.peek(100).map((e) => e.seq)).toEqual([...seqs.slice(3), bigSeq]);
    expect(s.bytes).toBe(7 * size + big.length);
    expect(s.bytes).toBeLessThanOrEqual(10 * size);
    s.append('m', body(10));
    expect(drops[1]).toEqual({ count: 1, bytes: size, reason: 'full', oldestCreatedAt: 40 });
    expect(s.stats).toMatchObject({ dropped: 4, droppedBytes: 4 * size });
    expect(s.depth).toBe(8);
  });

  it('applies a lowered maxBytes at the next append after a reopen', () => {
    const drops: SpoolDrop[] = [];
    let s = open();
    for (let i = 0; i < 10; i++) s.append('m', body(i));
    s = reopen(s, { maxBytes: 2 * body(0).length + body(10).length, onDrop: (d) => drops.push(d) });
    s.append('m', body(10));
    expect(drops).toMatchObject([{ count: 8, reason: 'full' }]);
    expect(s.peek(10).map((e) => e.body.toString().split(':')[0])).toEqual(['8', '9', '10']);
  });

  it('rejects an entry larger than the whole spool, naming it, and keeps what it has', () => {
    const s = open({ maxBytes: 1000 });
    s.append('m', body(0));
    const err = errorOf(() => s.append('memory.usage', Buffer.alloc(1001)));
    expect(err.kind).toBe('too-large');
    expect(err.message).toContain(file);
    expect(err.message).toContain('memory.usage entry of 1001 bytes');
    expect(err.message).toContain('maxBytes 1000');
    expect(s.depth).toBe(1);
    expect(s.append('m', Buffer.alloc(1000))).toBeGreaterThan(0); // exactly maxBytes fits, after dropping the rest
    expect(s.depth).toBe(1);
  });
});

describe('age bound', () => {
  it('expire() drops the entries older than maxAgeMs, reports them, and nothing else', () => {
    let t = 1_000_000;
    const drops: SpoolDrop[] = [];
    const s = open({ maxAgeMs: 60_000, now: () => t, onDrop: (d) => drops.push(d) });
    for (let i = 0; i < 5; i++) {
      s.append('m', body(i));
      t += 20_000;
    } // created at +0, +20, +40, +60, +80 s; now +100 s
    expect(s.expire()).toEqual({ count: 2, bytes: 2 * body(0).length, reason: 'expired', oldestCreatedAt: 1_000_000 });
    expect(drops).toHaveLength(1);
    expect(s.peek(10).map((e) => e.createdAt)).toEqual([1_040_000, 1_060_000, 1_080_000]);
    expect(s.oldestCreatedAt).toBe(1_040_000);
    expect(s.expire()).toBeUndefined();
    expect(drops).toHaveLength(1);
    t += 1_000_000;
    expect(s.expire()).toMatchObject({ count: 3 });
    expect([s.depth, s.bytes, s.oldestCreatedAt]).toEqual([0, 0, undefined]);
    expect(s.stats).toMatchObject({ dropped: 5, removed: 0 });
  });

  it('goes by creation time, even when the clock stepped back between appends', () => {
    let t = 500_000;
    const s = open({ maxAgeMs: 60_000, now: () => t });
    s.append('m', body(0)); // 500 s
    t = 400_000;
    s.append('m', body(1)); // 400 s: the clock stepped back
    t = 520_000;
    expect(s.oldestCreatedAt).toBe(400_000);
    expect(s.expire()).toMatchObject({ count: 1, oldestCreatedAt: 400_000 });
    expect(s.peek(10).map((e) => e.createdAt)).toEqual([500_000]);
  });
});

describe('a corrupt or unreadable file', () => {
  it('moves a file that is not a database aside, starts a fresh spool, and says so', () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const garbage = Buffer.alloc(8192, 0x42);
    fs.writeFileSync(file, garbage);
    const s = open({ now: () => Date.UTC(2026, 10, 26, 12, 0, 0) });
    expect(s.recovery).toEqual({ movedTo: `${file}.corrupt-2026-11-26T12-00-00.000Z`, cause: expect.stringContaining('SQLITE_NOTADB'), lost: undefined });
    expect(fs.readFileSync(s.recovery!.movedTo).equals(garbage)).toBe(true);
    expect(s.depth).toBe(0);
    s.append('m', body(0));
    expect(reopen(s).depth).toBe(1);
  });

  it('moves a spool with damaged pages aside, counting what it held when it still can', () => {
    let s = open();
    for (let i = 0; i < 50; i++) s.append('m', BODY);
    s.close();
    // Overwrite three pages in the middle with a pattern: overflow chains and b-tree cells now point nowhere.
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(3 * 4096, 0x5a), 0, 3 * 4096, 20 * 4096);
    fs.closeSync(fd);
    s = open();
    expect(s.recovery?.cause).toMatch(/^integrity_check: /);
    expect(s.recovery?.lost).toEqual({ count: 50, bytes: 50 * BODY.length });
    expect(fs.existsSync(s.recovery!.movedTo)).toBe(true);
    expect(fs.existsSync(`${s.recovery!.movedTo}-shm`)).toBe(false);
    expect(s.depth).toBe(0);
    expect(s.append('m', body(1))).toBe(1); // a fresh spool: seq starts again
  });

  it('a path it cannot open is an error naming it, and nothing is moved', () => {
    fs.mkdirSync(file, { recursive: true }); // a directory where the file should be
    const err = errorOf(() => open());
    expect(err.kind).toBe('unreadable');
    expect(err.message).toContain(`spool ${file} cannot be opened`);
    expect(err.message).toContain('check that it is a file this user can read and write');
    expect(fs.statSync(file).isDirectory()).toBe(true);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['spool.db']);
  });

  it('refuses an SQLite database that is not a spool, without touching it', () => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const other = new Database(file);
    other.exec('CREATE TABLE precious (x); INSERT INTO precious VALUES (1)');
    other.close();
    const err = errorOf(() => open());
    expect(err.kind).toBe('foreign');
    expect(err.message).toContain('not a ceilopoll spool');
    const again = new Database(file);
    expect(again.prepare('SELECT x FROM precious').pluck().get()).toBe(1);
    again.close();
  });
});

describe('a writer killed with SIGKILL', () => {
  const WRITER = path.join(ROOT, 'test/support/spool-writer.ts');

  /** Starts the writer, kills it once it has printed `killAfter` seqs, and returns what it printed. */
  async function runAndKill(at: string, killAfter: number, onOpen?: () => void): Promise<Map<number, number>> {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, at, '1000000'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const printed = new Map<number, number>();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let partial = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          if (line === 'open') {
            onOpen?.();
            continue;
          }
          const [seq, i] = line.split(' ').map(Number);
          printed.set(seq!, i!);
        }
        if (printed.size >= killAfter) child.kill('SIGKILL');
      });
      child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited ${code} ${signal}: ${stderr}`))));
    });
    return printed;
  }

  it('loses nothing it had appended, keeps order and bytes, and seq goes on after each crash', async () => {
    const all = new Map<number, number>();
    for (const killAfter of [300, 57, 1000]) {
      const printed = await runAndKill(file, killAfter);
      expect(printed.size).toBeGreaterThanOrEqual(killAfter);
      expect(Math.min(...printed.keys())).toBeGreaterThan(Math.max(0, ...all.keys()));
      for (const [seq, i] of printed) all.set(seq, i);
    }
    const s = open();
    const entries = s.peek(100_000);
    const bySeq = new Map(entries.map((e) => [e.seq, e]));
    for (const [seq, i] of all) {
      const e = bySeq.get(seq);
      expect(e, `seq ${seq} was printed but is not in the spool`).toBeDefined();
      expect(e!.body.equals(writerBody(i))).toBe(true);
      expect(e!.meta).toBe(JSON.stringify({ i }));
    }
    // Entries appended after the last print (before the kill landed) may be there too, in order, with no gap.
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, k) => k + 1));
    expect(s.depth).toBe(entries.length);
  }, 60_000);

  it('refuses to open a spool another process has open', async () => {
    let err: SpoolError | undefined;
    const printed = await runAndKill(file, 1, () => {
      err = errorOf(() => Spool.open(file, { maxBytes: MB, maxAgeMs: 1000 }));
    });
    expect(err?.kind).toBe('in-use');
    expect(err?.message).toContain(`spool ${file} is in use by another process`);
    expect(open().depth).toBeGreaterThanOrEqual(printed.size); // the lock died with the process
  }, 30_000);
});

describe('the reserve size', () => {
  const KB = 1024;
  it('is 1/16 of the filesystem, at most 32 MiB, at least 128 KiB, in whole 4 KiB pages', () => {
    expect([MAX_RESERVE_BYTES, MIN_RESERVE_BYTES]).toEqual([32 * MB, 128 * KB]);
    expect(reserveSizeFor(500 * 1024 * MB)).toBe(32 * MB); // any real disk
    expect(reserveSizeFor(512 * MB)).toBe(32 * MB); // the smallest that gets the whole 32 MiB
    expect(reserveSizeFor(512 * MB - 4096 * 16)).toBe(32 * MB - 4096);
    expect(reserveSizeFor(128 * MB)).toBe(8 * MB); // the chaos suite's 128m tmpfs
    expect(reserveSizeFor(24 * MB)).toBe(1536 * KB);
    expect(reserveSizeFor(3 * MB)).toBe(192 * KB); // the chaos suite's 3m tmpfs
    expect(reserveSizeFor(3_000_000)).toBe(180 * KB); // 187 500 bytes, rounded down to 45 pages
    expect(reserveSizeFor(2 * MB)).toBe(128 * KB);
    expect(reserveSizeFor(1 * MB)).toBe(128 * KB); // the floor
    expect(reserveSizeFor(4096)).toBe(128 * KB);
    for (const total of [1, 1234567, 3 * MB + 1, 77 * MB + 12345, 1e12]) expect(reserveSizeFor(total) % 4096).toBe(0);
  });

  it('is 32 MiB when the size is unknown', () => {
    expect(reserveSizeFor(0)).toBe(32 * MB);
    expect(reserveSizeFor(Number.NaN)).toBe(32 * MB);
  });

  it('follows the disk the spool is on when not given, and is used exactly when given', () => {
    const st = fs.statfsSync(dir);
    const s = open({ reserveBytes: undefined });
    expect(s.reserveBytes).toBe(reserveSizeFor(st.blocks * st.bsize));
    const at = path.join(dir, 'exact.db');
    const exact = open({ reserveBytes: 100 * KB + 1 }, at);
    expect(exact.reserveBytes).toBe(100 * KB + 1);
    expect(fs.statSync(`${at}-reserve`).size).toBe(100 * KB + 1);
    // larger than one 1 MiB chunk: written chunk by chunk, whole, and random throughout
    const chunked = path.join(dir, 'chunked.db');
    open({ reserveBytes: 2 * MB + 2 * KB + 7 }, chunked);
    const bytes = fs.readFileSync(`${chunked}-reserve`);
    expect(bytes.length).toBe(2 * MB + 2 * KB + 7);
    const slices = [0, 1, 2].map((i) => bytes.subarray(i * MB, i * MB + KB));
    for (const x of slices) expect(x.equals(Buffer.alloc(KB))).toBe(false);
    expect(slices[0]!.equals(slices[1]!)).toBe(false);
    // a reserve of another size left by an earlier run (an earlier version's) is replaced
    const other = path.join(dir, 'other.db');
    fs.writeFileSync(`${other}-reserve`, Buffer.alloc(300 * KB));
    expect(open({ reserveBytes: 64 * KB }, other).reserveBytes).toBe(64 * KB);
    expect(fs.statSync(`${other}-reserve`).size).toBe(64 * KB);
    const none = open({ reserveBytes: 0 }, path.join(dir, 'none.db'));
    expect(none.reserveBytes).toBe(0);
    expect(fs.existsSync(path.join(dir, 'none.db-reserve'))).toBe(false);
  });
});

describe('a full disk (a 1 MiB tmpfs)', () => {
  const mnt = path.join(os.tmpdir(), `ceilopoll-spool-tmpfs-${process.pid}`);
  let mounted = '';
  let skipReason = '';
  beforeAll(() => {
    fs.mkdirSync(mnt, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'pipe' });
      mounted = mnt;
    } catch (err) {
      fs.rmdirSync(mnt);
      skipReason = `cannot mount a tmpfs here (needs root): ${(err as Error).message.split('\n')[0]}`;
    }
  });
  afterAll(() => {
    if (!mounted) return;
    for (const s of opened.splice(0)) s.close();
    execFileSync('umount', [mnt]);
    fs.rmdirSync(mnt);
  });
  beforeEach((ctx) => {
    if (!mounted) ctx.skip(skipReason);
    for (const f of fs.readdirSync(mnt)) fs.rmSync(path.join(mnt, f), { recursive: true });
  });

  /** Another program takes what is left of the tmpfs: a ballast file written until ENOSPC; returns its path. */
  function fillDisk(): string {
    const ballast = path.join(mnt, 'ballast');
    const fd = fs.openSync(ballast, 'w');
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(4096, 1));
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      fs.closeSync(fd);
    }
    return ballast;
  }

  /** Appends real notifications until the first drop for a full disk; returns the seqs written before it. */
  function fillUntilDrop(s: Spool, drops: SpoolDrop[]): number[] {
    const seqs: number[] = [];
    for (let i = 0; i < 1000; i++) {
      seqs.push(s.append('memory.usage', BODY));
      if (drops.length > 0) return seqs;
    }
    throw new Error('1000 entries fitted in a 1 MiB tmpfs?');
  }

  it('drops the oldest for the newest on a full disk, reports it, and keeps the rest in order', () => {
    const at = path.join(mnt, 'spool.db');
    const drops: SpoolDrop[] = [];
    const s = open({ reserveBytes: 128 * 1024, onDrop: (d) => drops.push(d) }, at);
    const seqs = fillUntilDrop(s, drops);
    expect(seqs.length).toBeGreaterThan(50);
    const first = drops[0]!;
    expect(first.reason).toBe('disk-full');
    expect(first.count).toBeGreaterThan(0);
    expect(first.bytes).toBe(first.count * BODY.length);
    // the oldest went, the newest (the one that met the full disk) is there
    const kept = s.peek(1000).map((e) => e.seq);
    expect(kept).toEqual(seqs.slice(first.count));
    expect(s.stats.dropped).toBe(first.count);

    // still full: every further append drops the oldest again rather than failing
    const more: number[] = [];
    for (let i = 0; i < 30; i++) more.push(s.append('memory.usage', BODY));
    expect(drops.every((d) => d.reason === 'disk-full')).toBe(true);
    const dropped = drops.reduce((n, d) => n + d.count, 0);
    expect([s.depth, s.bytes]).toEqual([seqs.length + 30 - dropped, (seqs.length + 30 - dropped) * BODY.length]);
    const again = reopen(s, { reserveBytes: 128 * 1024 });
    const after = again.peek(1000);
    expect(after.map((e) => e.seq)).toEqual([...seqs, ...more].slice(dropped));
    expect(after.every((e) => e.body.equals(BODY))).toBe(true);
  });

  it('refuses with a clear disk-full error only when there is nothing left to drop', () => {
    const at = path.join(mnt, 'spool.db');
    const s = open({ reserveBytes: 128 * 1024 }, at);
    // another program takes the whole disk while the spool is empty
    const ballast = fillDisk();
    let err: SpoolError | undefined;
    for (let i = 0; i < 1000 && !err; i++) {
      try {
        s.append('memory.usage', BODY);
      } catch (e) {
        if (!(e instanceof SpoolError)) throw e;
        err = e;
      }
    }
    expect(err?.kind).toBe('disk-full');
    expect(err?.message).toContain(`spool ${at}: disk full`);
    expect(err?.message).toContain('nothing was written');
    fs.rmSync(ballast);
    s.append('memory.usage', BODY); // room again
    expect(s.depth).toBeGreaterThan(0);
  });

  it('takes appends again once another file frees the space it had taken, and sets its reserve aside again', () => {
    const at = path.join(mnt, 'spool.db');
    const drops: SpoolDrop[] = [];
    const s = open({ reserveBytes: 128 * 1024, onDrop: (d) => drops.push(d) }, at);
    for (let i = 0; i < 20; i++) s.append('memory.usage', BODY);
    // Another program fills the disk.
    const ballast = fillDisk();
    const seqs = fillUntilDrop(s, drops);
    expect(drops[0]!.reason).toBe('disk-full');
    expect(fs.existsSync(`${at}-reserve`)).toBe(false); // spent on the checkpoint
    const depth = s.depth;
    expect(depth).toBe(20 + seqs.length - drops[0]!.count);

    fs.rmSync(ballast);
    const before = drops.length;
    for (let i = 0; i < 10; i++) s.append('memory.usage', BODY);
    expect(drops.length).toBe(before); // room again: nothing more dropped
    expect(fs.statSync(`${at}-reserve`).size).toBe(128 * 1024); // set aside again
    expect(s.depth).toBe(depth + 10);
  });

  it('with the default reserve (the 128 KiB floor on this 1 MiB disk): takes entries, drops the oldest when full, recovers', () => {
    const at = path.join(mnt, 'spool.db');
    const drops: SpoolDrop[] = [];
    const s = open({ reserveBytes: undefined, onDrop: (d) => drops.push(d) }, at);
    expect(s.reserveBytes).toBe(128 * 1024);
    expect(fs.statSync(`${at}-reserve`).size).toBe(128 * 1024); // set aside at open: the disk has room for it twice over
    const seqs = fillUntilDrop(s, drops);
    expect(seqs.length).toBeGreaterThan(50); // the spool took most of the disk before the first drop
    expect(drops[0]!.reason).toBe('disk-full');
    expect(s.peek(1000).map((e) => e.seq)).toEqual(seqs.slice(drops[0]!.count));
    for (let i = 0; i < 30; i++) s.append('memory.usage', BODY); // still full: each append drops the oldest, none refused
    expect(drops.every((d) => d.reason === 'disk-full')).toBe(true);

    // delivery empties it: the pages it frees take new entries without drops
    s.removeUpTo(Number.MAX_SAFE_INTEGER);
    const before = drops.length;
    for (let i = 0; i < 20; i++) s.append('memory.usage', BODY);
    expect(drops.length).toBe(before);
    expect(s.depth).toBe(20);
  });
});
