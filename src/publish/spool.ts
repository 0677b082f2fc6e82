// The durable spool: every notification is written here before it is published (write-ahead), and
// taken out only once the broker has confirmed it. What is in the spool after a crash or a broker
// outage is replayed in order with its original bytes, hence its original oslo `_unique_id`.
//
// One SQLite file (better-sqlite3) in WAL mode, opened by one process at a time:
// - synchronous=NORMAL. In WAL mode a commit has written the entry to the WAL with write(2) before
//   `append` returns, so it is in the kernel's page cache and survives the death of the process,
//   SIGKILL included. NORMAL skips the fsync per commit (the WAL is synced at each checkpoint), so
//   a power loss or kernel crash may lose the last commits but never corrupts the file. FULL would
//   add an fsync per append to survive power loss too (see bench/spool.ts for the cost); OFF would
//   also survive SIGKILL but drops the fsync before a checkpoint, so a power loss could corrupt it.
// - locking_mode=EXCLUSIVE: a second agent on the same spool would publish every entry twice, so it
//   is refused at open. It also keeps the WAL index in memory (no -shm file).
// - seq is an AUTOINCREMENT rowid: strictly increasing and never reused, even once the spool has
//   been emptied and across restarts (a plain rowid would restart after the highest one is removed).
// - The bounds count body bytes only; the file itself is larger (pages, the index, the WAL).
//
// A full disk: SQLite in WAL mode cannot delete anything once the disk is full, since a delete is
// written to the WAL first and a checkpoint may need the database file to grow. So the spool keeps
// a reserve file (`<path>-reserve`) beside it; the first "disk full" releases it and checkpoints,
// after which removals work, and appends go on into the pages they free. The reserve comes back as
// soon as the disk has room for it twice over; until then an append that would grow the file first
// drops the oldest entries (reported, reason "disk-full"), as maxBytes does, and is refused with the
// same "disk full" error only when there is nothing left to drop. The WAL is checkpointed at half
// the reserve's size, so the released reserve always has room for the checkpoint.
//
// The reserve's size adapts to the filesystem (`reserveSizeFor`): 1/16 of its total size, at most
// 32 MiB and at least 128 KiB, rounded down to whole pages. So a disk of 512 MiB or more gets the
// full 32 MiB (WAL checkpointed at 16 MiB), a 128 MiB one 8 MiB, a 3 MiB tmpfs 192 KiB (checkpoint
// at 96 KiB), and a disk under 2 MiB the 128 KiB floor (checkpoint at 64 KiB, SQLite's smallest
// useful one here: 16 pages). A fixed 8 MiB reserve needed 16 MiB free before it was set aside, and
// until then the spool refused every append that grew the file: on a small disk it took nothing at
// all. An explicit `reserveBytes` is used as given. A reserve file of another size (an earlier
// version's, or the disk was resized) is removed and set aside again at the size wanted now.
//
// Why 32 MiB at most (8 MiB until 2026-11-27): a checkpoint runs inside the append that crosses it,
// copies the WAL's pages into the file and syncs both. A cycle at 1000 domains puts about 5 MB
// through the spool (68 notifications of 75 KB); with the checkpoint every 4 MiB the spool's appends,
// read-back and removals took a median 32 ms of CPU a cycle, every 16 MiB 20-22 ms (30 cycles each,
// twice): the pages that removals free and appends reuse are copied once per checkpoint, not once
// per 4 MiB. For 4.3 KB bodies it made no difference (15-18 ms either way for 200).

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export interface SpoolEntry {
  /**
   * Position in the spool: strictly increasing and never reused, also across restarts. Only a
   * fresh spool that replaced a corrupt one (see `Spool.recovery`) starts again from 1.
   */
  seq: number;
  /** When it was appended, ms since the epoch (the spool's clock). */
  createdAt: number;
  meter: string;
  /** The caller's own data about the entry (routing, headers), as given to `append`: JSON text. */
  meta: string;
  /** The message bytes, exactly as appended. */
  body: Buffer;
}

/** Entries the spool dropped to keep within its bounds: never silent, always reported. */
export interface SpoolDrop {
  count: number;
  /** sum of their body sizes */
  bytes: number;
  /** full: beyond maxBytes; disk-full: the disk had no room for a new entry; expired: beyond maxAgeMs */
  reason: 'full' | 'disk-full' | 'expired';
  oldestCreatedAt: number;
}

/** Counts since the spool was opened. */
export interface SpoolStats {
  appended: number;
  appendedBytes: number;
  /** taken out by `remove`/`removeUpTo` (delivered) */
  removed: number;
  removedBytes: number;
  /** dropped for the bounds (`onDrop` was told) */
  dropped: number;
  droppedBytes: number;
}

export interface SpoolOptions {
  /** Bound on the sum of body sizes; the oldest entries are dropped to make room for a new one. */
  maxBytes: number;
  /** Entries older than this are dropped by `expire()`. */
  maxAgeMs: number;
  now?: () => number;
  /** Called after each drop has been committed. If it throws, the error comes out of the call that dropped. */
  onDrop?: (d: SpoolDrop) => void;
  /**
   * Size of the reserve file that lets the spool recover from a full disk, exactly (the WAL is
   * checkpointed at half of it). Default: `reserveSizeFor` the filesystem's total size (32 MiB on
   * any disk of 512 MiB or more). 0: no reserve; after a full disk the spool is then stuck until
   * space frees up, since it cannot even delete.
   */
  reserveBytes?: number;
  /** 'NORMAL' (default) survives the death of the process; 'FULL' also survives a power loss, at an fsync per write. */
  synchronous?: 'NORMAL' | 'FULL';
}

/**
 * - `disk-full`: nothing was written (the call may be retried); `remove` and drops free room.
 * - `too-large`: an entry alone larger than `maxBytes`.
 * - `unreadable`: the file or its folder cannot be opened or created.
 * - `in-use`: another process has this spool open.
 * - `foreign`: the file is an SQLite database, but not a spool (or a spool from a newer version).
 * - `io`: any other I/O error from SQLite.
 * - `corrupt`: SQLite found the file damaged while in use; the next `open` moves it aside.
 * - `closed`: used after `close()`.
 */
export type SpoolErrorKind = 'disk-full' | 'too-large' | 'unreadable' | 'in-use' | 'foreign' | 'io' | 'corrupt' | 'closed';

export class SpoolError extends Error {
  override name = 'SpoolError';
  constructor(
    readonly kind: SpoolErrorKind,
    /** the spool file */
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A corrupt spool found at open: moved aside, and a fresh one started in its place. */
export interface SpoolRecovery {
  /** where the corrupt file is now (its WAL, if any, is beside it as `<movedTo>-wal`) */
  movedTo: string;
  /** what SQLite said about it */
  cause: string;
  /** what it held, if that could still be counted: those entries are lost to delivery */
  lost: { count: number; bytes: number } | undefined;
}

/** 'CPSP' in the database header: tells a spool from any other SQLite file. */
const APPLICATION_ID = 0x43505350;
const SCHEMA_VERSION = 1;
/** The reserve on a disk of 512 MiB or more, and whenever the filesystem's size cannot be read. */
export const MAX_RESERVE_BYTES = 32 * 1024 * 1024;
/** The smallest default reserve: its half (the WAL checkpoint) is still 16 pages. */
export const MIN_RESERVE_BYTES = 128 * 1024;
/** The default reserve is this fraction of the filesystem's total size (between the two bounds). */
export const RESERVE_FRACTION = 1 / 16;
/** SQLite's page size, which the spool never changes: the default reserve is a whole number of them. */
const PAGE_BYTES = 4096;
/** How long `open` waits for another process to let go of the file before calling it in use. */
const BUSY_TIMEOUT_MS = 1000;

const SCHEMA = `
  CREATE TABLE spool (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    meter      TEXT    NOT NULL,
    meta       TEXT    NOT NULL,
    body       BLOB    NOT NULL
  );
  CREATE INDEX spool_created_at ON spool (created_at);
  PRAGMA application_id = ${APPLICATION_ID};
  PRAGMA user_version = ${SCHEMA_VERSION};
`;

interface EntryRow {
  seq: number;
  createdAt: number;
  meter: string;
  meta: string;
  body: Buffer;
}

interface HeadRow {
  seq: number;
  size: number;
  created_at: number;
}

interface DropResult {
  count: number;
  bytes: number;
  oldestCreatedAt: number;
}

export class Spool {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly pageSize: number;
  private open = true;
  private depthNow: number;
  private bytesNow: number;
  private readonly counts: SpoolStats = { appended: 0, appendedBytes: 0, removed: 0, removedBytes: 0, dropped: 0, droppedBytes: 0 };

  private readonly insert: Database.Statement<[number, number, string, string, Buffer]>;
  private readonly selectAfter: Database.Statement<[number, number], EntryRow>;
  private readonly deleteOne: Database.Statement<[number], number>;
  private readonly removeManyTx: (seqs: readonly number[]) => number[];
  private readonly deleteUpTo: Database.Statement<[number], number>;
  private readonly selectHead: Database.Statement<[], HeadRow>;
  private readonly selectOlder: Database.Statement<[number], { count: number; bytes: number; oldest: number | null }>;
  private readonly deleteOlder: Database.Statement<[number]>;
  private readonly selectOldest: Database.Statement<[], number | null>;
  private readonly selectFreePages: Database.Statement<[], number>;
  private readonly appendTx: (createdAt: number, meter: string, meta: string, body: Buffer) => { seq: number; drop: DropResult | undefined };
  private readonly dropOldestTx: (bytes: number) => DropResult;
  private readonly expireTx: (cutoff: number) => DropResult | undefined;

  private constructor(
    readonly path: string,
    db: Database.Database,
    private readonly opts: SpoolOptions,
    private readonly reserve: Reserve,
    /** set when the file found at open was corrupt and has been replaced */
    readonly recovery: SpoolRecovery | undefined,
  ) {
    this.db = db;
    this.now = opts.now ?? Date.now;
    this.pageSize = db.pragma('page_size', { simple: true }) as number;

    this.insert = db.prepare('INSERT INTO spool (created_at, size, meter, meta, body) VALUES (?, ?, ?, ?, ?)');
    this.selectAfter = db.prepare('SELECT seq, created_at AS createdAt, meter, meta, body FROM spool WHERE seq > ? ORDER BY seq LIMIT ?');
    // RETURNING rows are read with all(): the statement has to run to its end for the delete to commit.
    this.deleteOne = db.prepare<[number], number>('DELETE FROM spool WHERE seq = ? RETURNING size').pluck();
    this.deleteUpTo = db.prepare<[number], number>('DELETE FROM spool WHERE seq <= ? RETURNING size').pluck();
    this.selectHead = db.prepare('SELECT seq, size, created_at FROM spool ORDER BY seq');
    this.selectOlder = db.prepare('SELECT count(*) AS count, coalesce(sum(size), 0) AS bytes, min(created_at) AS oldest FROM spool WHERE created_at < ?');
    this.deleteOlder = db.prepare('DELETE FROM spool WHERE created_at < ?');
    this.selectOldest = db.prepare<[], number | null>('SELECT min(created_at) FROM spool').pluck();
    this.selectFreePages = db.prepare<[], number>('PRAGMA freelist_count').pluck();

    const totals = db.prepare('SELECT count(*) AS count, coalesce(sum(size), 0) AS bytes FROM spool').get() as { count: number; bytes: number };
    this.depthNow = totals.count;
    this.bytesNow = totals.bytes;

    this.appendTx = db.transaction((createdAt: number, meter: string, meta: string, body: Buffer) => {
      const excess = this.bytesNow + body.length - this.opts.maxBytes;
      const drop = excess > 0 ? this.dropOldest(excess) : undefined;
      const seq = Number(this.insert.run(createdAt, body.length, meter, meta, body).lastInsertRowid);
      return { seq, drop };
    });
    this.dropOldestTx = db.transaction((bytes: number) => this.dropOldest(bytes));
    this.removeManyTx = db.transaction((seqs: readonly number[]) => {
      const sizes: number[] = [];
      for (const seq of seqs) for (const size of this.deleteOne.all(seq)) sizes.push(size);
      return sizes;
    });
    this.expireTx = db.transaction((cutoff: number) => {
      const older = this.selectOlder.get(cutoff)!;
      if (older.count === 0 || older.oldest === null) return undefined;
      this.deleteOlder.run(cutoff);
      return { count: older.count, bytes: older.bytes, oldestCreatedAt: older.oldest };
    });
  }

  /**
   * Opens the spool at `path`, creating it and its folders if need be. A corrupt file is moved
   * aside to `<path>.corrupt-<time>` and a fresh spool started: `recovery` then says so, and what
   * was lost; the caller should report it. A file that cannot be opened at all, or one that
   * another process holds, is a `SpoolError`: nothing is moved.
   *
   * It also sets the reserve file aside if the disk has room for it twice over; if not, appends
   * that would grow the file drop the oldest entries (or are refused as "disk full" when the spool
   * is empty) until it has. Without `reserveBytes`, the reserve's size is `reserveSizeFor` the
   * filesystem that holds `file`.
   */
  static open(file: string, opts: SpoolOptions): Spool {
    if (!(Number.isSafeInteger(opts.maxBytes) && opts.maxBytes > 0)) throw new RangeError(`spool ${file}: maxBytes ${opts.maxBytes} must be a positive integer`);
    if (!(opts.maxAgeMs > 0)) throw new RangeError(`spool ${file}: maxAgeMs ${opts.maxAgeMs} must be positive`);
    if (opts.reserveBytes !== undefined && !(Number.isSafeInteger(opts.reserveBytes) && opts.reserveBytes >= 0)) {
      throw new RangeError(`spool ${file}: reserveBytes ${opts.reserveBytes} must be a non-negative integer`);
    }
    const now = opts.now ?? Date.now;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
    } catch (err) {
      throw new SpoolError('unreadable', file, `spool ${file}: cannot create its folder (${errorText(err)}); check spool.path and its permissions`, { cause: err });
    }
    const reserveBytes = opts.reserveBytes ?? defaultReserveBytes(path.dirname(file));

    let recovery: SpoolRecovery | undefined;
    let db: Database.Database;
    try {
      db = openDatabase(file, opts.synchronous ?? 'NORMAL', reserveBytes);
    } catch (err) {
      if (!(err instanceof CorruptSpoolError)) throw openError(file, err);
      recovery = moveAside(file, err.message, now());
      try {
        db = openDatabase(file, opts.synchronous ?? 'NORMAL', reserveBytes);
      } catch (again) {
        throw openError(file, again);
      }
    }
    const reserve = new Reserve(`${file}-reserve`, reserveBytes);
    reserve.tryCreate();
    try {
      return new Spool(file, db, opts, reserve, recovery);
    } catch (err) {
      db.close();
      throw openError(file, err);
    }
  }

  /** Size of the reserve file, set aside or not (see the top of this file): `reserveBytes`, or the default for this disk. */
  get reserveBytes(): number {
    return this.reserve.bytes;
  }

  /** Number of entries. */
  get depth(): number {
    return this.depthNow;
  }

  /** Sum of the entries' body sizes. */
  get bytes(): number {
    return this.bytesNow;
  }

  /** Creation time of the oldest entry, or undefined when the spool is empty. */
  get oldestCreatedAt(): number | undefined {
    this.assertOpen();
    return this.selectOldest.get() ?? undefined;
  }

  get stats(): SpoolStats {
    return { ...this.counts };
  }

  /**
   * Writes an entry and returns its seq once it is durable (see the top of this file). Drops the
   * oldest entries first if it would not fit within `maxBytes`. Throws `SpoolError` `too-large`
   * or `disk-full`; either way nothing was written and the spool stays usable.
   */
  append(meter: string, body: Buffer, meta = '{}'): number {
    this.assertOpen();
    if (body.length > this.opts.maxBytes) {
      throw new SpoolError(
        'too-large',
        this.path,
        `spool ${this.path}: a ${meter} entry of ${body.length} bytes is larger than the whole spool (maxBytes ${this.opts.maxBytes}); raise the spool's maxBytes`,
      );
    }
    let result: { seq: number; drop: DropResult | undefined };
    for (;;) {
      try {
        this.checkRoom(body.length, meter);
        try {
          result = this.appendTx(this.now(), meter, meta, body);
        } catch (err) {
          throw this.writeFailed(err, `appending a ${meter} entry of ${body.length} bytes`);
        }
        break;
      } catch (err) {
        // A full disk: the newest notification matters more than the oldest, as with maxBytes. Drop
        // the oldest (reported) and try again while there is anything to drop; the released reserve
        // lets the deletes through.
        if (!(err instanceof SpoolError && err.kind === 'disk-full') || this.depthNow === 0) throw err;
        this.dropForRoom(body.length, err);
      }
    }
    this.depthNow += 1;
    this.bytesNow += body.length;
    this.counts.appended += 1;
    this.counts.appendedBytes += body.length;
    if (result.drop) this.dropped(result.drop, 'full');
    return result.seq;
  }

  /** Up to `limit` entries after `afterSeq` (default: from the head), in seq order. */
  peek(limit: number, afterSeq = 0): SpoolEntry[] {
    this.assertOpen();
    if (!(Number.isSafeInteger(limit) && limit > 0)) throw new RangeError(`spool ${this.path}: peek limit ${limit} must be a positive integer`);
    try {
      return this.selectAfter.all(afterSeq, limit);
    } catch (err) {
      throw this.failed(err, `reading ${limit} entries after ${afterSeq}`);
    }
  }

  /** Takes out one delivered entry. False if it is not there (already removed, or dropped). */
  remove(seq: number): boolean {
    this.assertOpen();
    let sizes: number[];
    try {
      sizes = this.deleteOne.all(seq);
    } catch (err) {
      throw this.writeFailed(err, `removing entry ${seq}`);
    }
    this.removed(sizes);
    return sizes.length > 0;
  }

  /**
   * Takes out several delivered entries in one transaction (one WAL commit instead of one each);
   * returns how many were there (the others were already removed, or dropped).
   */
  removeMany(seqs: readonly number[]): number {
    this.assertOpen();
    let sizes: number[];
    try {
      sizes = this.removeManyTx(seqs);
    } catch (err) {
      throw this.writeFailed(err, `removing ${seqs.length} entries (${seqs[0]}..${seqs[seqs.length - 1]})`);
    }
    this.removed(sizes);
    return sizes.length;
  }

  /** Takes out every entry up to and including `seq`; returns how many there were. */
  removeUpTo(seq: number): number {
    this.assertOpen();
    let sizes: number[];
    try {
      sizes = this.deleteUpTo.all(seq);
    } catch (err) {
      throw this.writeFailed(err, `removing the entries up to ${seq}`);
    }
    this.removed(sizes);
    return sizes.length;
  }

  /** Drops the entries older than `maxAgeMs` (by their creation time); call it periodically. */
  expire(): SpoolDrop | undefined {
    this.assertOpen();
    let drop: DropResult | undefined;
    try {
      drop = this.expireTx(this.now() - this.opts.maxAgeMs);
    } catch (err) {
      throw this.writeFailed(err, 'dropping expired entries');
    }
    return drop ? this.dropped(drop, 'expired') : undefined;
  }

  /** Closes the file (the WAL is checkpointed into it). Further calls throw `closed`; closing twice is fine. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.db.close();
  }

  private assertOpen(): void {
    if (!this.open) throw new SpoolError('closed', this.path, `spool ${this.path} is closed`);
  }

  /** Inside the append transaction: deletes from the head until at least `excess` body bytes are freed. */
  /** Drops the oldest entries to free room for an entry of `size` bytes on a full disk. */
  private dropForRoom(size: number, cause: SpoolError): void {
    // the entry's pages, a few b-tree pages, and some slack so that not every append needs a drop
    const want = size + 4 * this.pageSize + 64 * 1024;
    let drop: DropResult;
    try {
      drop = this.dropOldestTx(want);
    } catch {
      throw cause; // not even a delete fits: nothing was changed
    }
    this.dropped(drop, 'disk-full');
  }

  private dropOldest(excess: number): DropResult {
    let freed = 0;
    let count = 0;
    let lastSeq = 0;
    let oldest = Number.POSITIVE_INFINITY;
    for (const row of this.selectHead.iterate()) {
      freed += row.size;
      count += 1;
      lastSeq = row.seq;
      oldest = Math.min(oldest, row.created_at);
      if (freed >= excess) break;
    }
    this.deleteUpTo.all(lastSeq);
    return { count, bytes: freed, oldestCreatedAt: oldest };
  }

  private removed(sizes: number[]): void {
    let bytes = 0;
    for (const s of sizes) bytes += s;
    this.depthNow -= sizes.length;
    this.bytesNow -= bytes;
    this.counts.removed += sizes.length;
    this.counts.removedBytes += bytes;
  }

  private dropped(d: DropResult, reason: SpoolDrop['reason']): SpoolDrop {
    this.depthNow -= d.count;
    this.bytesNow -= d.bytes;
    this.counts.dropped += d.count;
    this.counts.droppedBytes += d.bytes;
    const drop: SpoolDrop = { count: d.count, bytes: d.bytes, reason, oldestCreatedAt: d.oldestCreatedAt };
    this.opts.onDrop?.(drop);
    return drop;
  }

  /**
   * While the reserve is spent (the disk filled up and has not got room for it again), takes only
   * what fits in the pages that removals freed, so the file does not grow and deletes keep working.
   */
  private checkRoom(size: number, meter: string): void {
    if (this.reserve.ready || this.reserve.tryCreate()) return;
    // An entry needs its pages plus a page or two of b-tree (table, index) that may split.
    const pages = Math.ceil(size / (this.pageSize - 4)) + 3;
    if (this.selectFreePages.get()! >= pages) return;
    throw this.diskFull(`appending a ${meter} entry of ${size} bytes`, 'the disk filled up earlier and still has no room for the spool to grow');
  }

  private writeFailed(err: unknown, what: string): Error {
    const code = err instanceof Database.SqliteError ? err.code : undefined;
    if (code === 'SQLITE_FULL') {
      // Give the file room to checkpoint: the WAL then starts again from its beginning, in space the
      // file already has, and deletes can be written. If even that fails, the next call tries again.
      this.reserve.release();
      try {
        this.db.pragma('wal_checkpoint(PASSIVE)');
      } catch {
        // still no room: nothing lost, the WAL keeps every committed entry
      }
      return this.diskFull(what, errorText(err), err);
    }
    return this.failed(err, what);
  }

  private failed(err: unknown, what: string): Error {
    const code = err instanceof Database.SqliteError ? err.code : undefined;
    if (code?.startsWith('SQLITE_CORRUPT')) {
      return new SpoolError('corrupt', this.path, `spool ${this.path}: ${what} failed: ${errorText(err)} (${code}); restart the agent: it moves the damaged file aside and starts a fresh spool`, { cause: err });
    }
    if (code?.startsWith('SQLITE_IOERR') || code?.startsWith('SQLITE_READONLY')) {
      return new SpoolError('io', this.path, `spool ${this.path}: ${what} failed: ${errorText(err)} (${code}); nothing was changed`, { cause: err });
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  private diskFull(what: string, detail: string, cause?: unknown): SpoolError {
    return new SpoolError(
      'disk-full',
      this.path,
      `spool ${this.path}: disk full, ${what} failed (${detail}); nothing was written. Free space on ${path.dirname(this.path)}, or lower the spool's maxBytes`,
      { cause },
    );
  }
}

/**
 * The default reserve for a filesystem of `totalBytes` (see the top of this file): 1/16 of it, at
 * most 32 MiB and at least 128 KiB, rounded down to whole pages.
 */
export function reserveSizeFor(totalBytes: number): number {
  if (!(Number.isFinite(totalBytes) && totalBytes > 0)) return MAX_RESERVE_BYTES;
  const share = Math.floor((totalBytes * RESERVE_FRACTION) / PAGE_BYTES) * PAGE_BYTES;
  return Math.min(MAX_RESERVE_BYTES, Math.max(MIN_RESERVE_BYTES, share));
}

/** `reserveSizeFor` the filesystem holding `dir` (its total size, not what is free now). */
function defaultReserveBytes(dir: string): number {
  try {
    const st = fs.statfsSync(dir);
    return reserveSizeFor(st.blocks * st.bsize);
  } catch {
    return MAX_RESERVE_BYTES; // the size cannot be read: what it always was
  }
}

/** SQLite's page cache for the spool, KiB (see openDatabase) */
const PAGE_CACHE_KIB = 2048;

/** The file held something SQLite calls corrupt, or not a database at all. */
class CorruptSpoolError extends Error {
  override name = 'CorruptSpoolError';
}

function openDatabase(file: string, synchronous: 'NORMAL' | 'FULL', reserveBytes: number): Database.Database {
  const db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  try {
    // EXCLUSIVE before the first access, so that the WAL never uses shared memory and the lock is
    // taken now: a second process fails here with SQLITE_BUSY.
    db.pragma('locking_mode = EXCLUSIVE');
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, not wal`);
    db.pragma(`synchronous = ${synchronous}`);
    // better-sqlite3 builds SQLite with a 16 MiB page cache per connection. The spool appends at the
    // tail and reads and deletes at the head, so a large cache only keeps pages it will not read
    // again: at 5000 domains (about 25 MB through the spool a cycle) it filled to 16 MiB of malloc
    // heap. 2 MiB: the heap 14-16 MiB smaller in bench/cycle.ts, the cycle's CPU the same.
    db.pragma(`cache_size = -${PAGE_CACHE_KIB}`);
    if (reserveBytes > 0) {
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      db.pragma(`wal_autocheckpoint = ${Math.max(16, Math.floor(reserveBytes / 2 / pageSize))}`);
    }
    // integrity_check reads every page, checks the b-trees and that the index matches the table:
    // about 50 ms per 10 000 entries (43 MB) here, so seconds only for a spool of gigabytes.
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new CorruptSpoolError(`integrity_check: ${firstLines(String(check), 3)}`);

    const appId = db.pragma('application_id', { simple: true }) as number;
    const version = db.pragma('user_version', { simple: true }) as number;
    const tables = db.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").pluck().get() as number;
    if (tables === 0 && appId === 0) {
      // One transaction, so that a crash here cannot leave a half-made spool that open then calls foreign.
      db.transaction(() => db.exec(SCHEMA))();
    } else if (appId !== APPLICATION_ID) {
      throw new SpoolError('foreign', file, `spool ${file} is an SQLite database but not a ceilopoll spool (application_id ${appId}); point the spool's path at a file of its own`);
    } else if (version !== SCHEMA_VERSION) {
      throw new SpoolError('foreign', file, `spool ${file} has schema version ${version}, this ceilopoll reads ${SCHEMA_VERSION}; run the version that wrote it until it is empty, or move it aside`);
    }
    return db;
  } catch (err) {
    db.close();
    if (err instanceof Database.SqliteError && (err.code === 'SQLITE_NOTADB' || err.code.startsWith('SQLITE_CORRUPT'))) {
      throw new CorruptSpoolError(`${err.message} (${err.code})`);
    }
    throw err;
  }
}

function openError(file: string, err: unknown): Error {
  if (err instanceof SpoolError) return err;
  const code = err instanceof Database.SqliteError ? err.code : (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new SpoolError('in-use', file, `spool ${file} is in use by another process (is another ceilopoll running?); stop it, or give this one its own spool path`, { cause: err });
  }
  if (code === 'SQLITE_FULL') {
    return new SpoolError('disk-full', file, `spool ${file}: disk full while opening it; free space on ${path.dirname(file)}`, { cause: err });
  }
  return new SpoolError(
    'unreadable',
    file,
    `spool ${file} cannot be opened: ${errorText(err)}${code ? ` (${code})` : ''}; check that it is a file this user can read and write, in a folder it can write`,
    { cause: err },
  );
}

/** Renames the corrupt file (and its WAL) out of the way, counting what it held if SQLite still can. */
function moveAside(file: string, cause: string, now: number): SpoolRecovery {
  const movedTo = `${file}.corrupt-${new Date(now).toISOString().replace(/:/g, '-')}`;
  try {
    fs.renameSync(file, movedTo);
    for (const suffix of ['-wal', '-shm']) {
      if (fs.existsSync(file + suffix)) fs.renameSync(file + suffix, movedTo + suffix);
    }
  } catch (err) {
    throw new SpoolError('unreadable', file, `spool ${file} is corrupt (${cause}) and could not be moved aside to ${movedTo}: ${errorText(err)}; move or delete it by hand`, { cause: err });
  }
  const shmBefore = fs.existsSync(`${movedTo}-shm`);
  const lost = countEntries(movedTo);
  // Counting opens it the ordinary way, which leaves a -shm beside it: keep only what was found.
  if (!shmBefore) fs.rmSync(`${movedTo}-shm`, { force: true });
  return { movedTo, cause, lost };
}

function countEntries(file: string): { count: number; bytes: number } | undefined {
  try {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return db.prepare('SELECT count(*) AS count, coalesce(sum(size), 0) AS bytes FROM spool').get() as { count: number; bytes: number };
    } finally {
      db.close();
    }
  } catch {
    return undefined; // too damaged to count: `lost` says unknown
  }
}

/**
 * Space set aside for the spool to recover after the disk filled up (see the top of this file).
 * Random bytes, so that a compressing filesystem cannot store it in less than it says.
 */
class Reserve {
  /** the file is there (or none is wanted) */
  ready: boolean;

  constructor(
    readonly file: string,
    readonly bytes: number,
  ) {
    this.ready = bytes === 0;
  }

  /** Creates the reserve if the disk has room for it twice over; true if it is (now) there. */
  tryCreate(): boolean {
    if (this.bytes === 0 || this.ready) return true;
    try {
      const found = fs.statSync(this.file, { throwIfNoEntry: false });
      if (found?.size === this.bytes) return (this.ready = true);
      // one of another size (an earlier version's, or the disk was resized): its room
      // counts as free for the one wanted now
      if (found) fs.rmSync(this.file, { force: true });
      const st = fs.statfsSync(path.dirname(this.file));
      if (st.bavail * st.bsize < 2 * this.bytes) return false;
      const tmp = `${this.file}.tmp`;
      try {
        writeRandom(tmp, this.bytes);
        fs.renameSync(tmp, this.file);
      } catch {
        fs.rmSync(tmp, { force: true });
        return false;
      }
      return (this.ready = true);
    } catch {
      return false; // not worth failing the append for: the reserve is tried again at the next one
    }
  }

  release(): void {
    if (this.bytes === 0) return;
    this.ready = false;
    fs.rmSync(this.file, { force: true });
  }
}

/** `bytes` random bytes to a new file, 1 MiB at a time (not the whole reserve in memory at once). */
function writeRandom(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let left = bytes; left > 0; ) {
      const chunk = randomBytes(Math.min(left, 1024 * 1024));
      fs.writeSync(fd, chunk);
      left -= chunk.length;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function firstLines(text: string, n: number): string {
  const lines = text.split('\n');
  return lines.length > n ? `${lines.slice(0, n).join('; ')}; and ${lines.length - n} more` : lines.join('; ');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
