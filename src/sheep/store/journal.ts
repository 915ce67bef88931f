// The journal object store: every mutation is a record in a write-ahead log (wal.ts) and is acknowledged once
// the group commit covering it has synced; object files are written from the log in the background and synced
// at checkpoints, after which the log space is reused.
// - Objects live as in the plain store, `<dir>/obj/%016x`, one file per object, with a sidecar
//   `<dir>/csum/%016x` (size, object version, flags, one CRC-32 per 4 KiB block) that reads verify; write-back
//   writes data and sidecar together without syncing, the checkpoint syncs both before the tail moves, and
//   replay rewrites both from the log, so a block's checksum costs no sync of its own.
// - create is one log record (base, data, size, version): atomic with no temporary file or directory sync in
//   the write path; write-back writes the whole object (allocating it, so later overwrites need no space).
// - Reads see records not yet written back: each object keeps the extents of its pending records in memory
//   (bounded by the log size), laid over the file bytes (or over zeros while a create is pending).
// - A full log makes new mutations wait (backpressure) for a checkpoint to free space.
// - Large aligned writes (directWriteBytes and up) to an object with no data in the live log can go straight
//   to the object file, as BlueStore does above its deferred-write size. The log gets a record with the new CRC
//   of each block first (synced), then the data is written and synced in place: after a crash, replay sets
//   each such block's checksum to what the disk holds if that is its old or new content. The object must have
//   no older data record in the live log, or replay would write it over. Off by default: measured with
//   scripts/bench/store.mjs on a shared 2-core VM, 1 MiB writes at QD16 through the log beat the direct path
//   (61 vs 25 MiB/s, medians of 3 rounds): a direct write pays a sync of its own after the log's, while the log
//   shares one sync among a whole batch; the disk's bandwidth was not the limit, its sync latency was.
// - Replay on open applies the records from the tail, then checkpoints. A record damaged behind later synced
//   batches is never applied: its object is marked bad (reads EIO until re-created, so the gateway serves and
//   repairs it from another replica).
// - A failed log write or sync, or a failed write-back, fails the store: the page cache can no longer be
//   trusted, so every later operation errors until the sheep restarts and replays.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { SD_RES_EIO, SD_RES_INVALID_PARMS, SD_RES_NO_OBJ, SD_RES_NO_SPACE } from '../../proto/sheepdog/constants.js';
import { oidHex, parseOidHex } from '../../proto/sheepdog/oid.js';
import { componentLogger, type Logger } from '../../obs/log.js';
import { StoreError, type ObjVersion, type ObjectStore } from './store.js';
import { NodeStoreFs, readFully, removeOrphanSidecars, writeFully, type StoreFile, type StoreFs } from './fs.js';
import { OpenFileCache, type OpenObject } from './openfiles.js';
import { CSUM_BLOCK, CSUM_ENTRY_SIZE, blockCount, blockCrc, blockLength, decodeEntries, encodeEntries, entryAccepts, type CsumEntry } from './checksum.js';
import { REC_CREATE, REC_DIRECT, REC_REMOVE, REC_STALE, REC_VERSION, REC_WRAP, REC_WRITE, Wal, recordLength, type LogRecord, type RecordBody } from './wal.js';

/** Default log size: some 14 000 records of 4 KiB; small enough to make in a moment on a busy disk. */
export const DEFAULT_JOURNAL_BYTES = 64 * 1024 * 1024;
/** fdatasyncs a checkpoint runs at once: the rest of the thread pool stays free (heartbeats, the log). */
const CHECKPOINT_SYNCS = 2;
const DEFAULT_CHECKPOINT_MS = 1000;
const DEFAULT_OPEN_FILES = 512;
const HASH_CHUNK = 1 << 20;
const ZERO_VER: ObjVersion = { epoch: 0, gen: 0, current: 0 };

// Sidecar of the journal store: magic 'SFJC', format, size u64, version (epoch, gen, current), flags; entries.
const JCS_MAGIC = 0x434a4653;
const JCS_FORMAT = 1;
const JCS_HEADER = 32;
const FLAG_BAD = 1;
/** A checksum no block has: a block whose old bytes were damaged when a partial write-back landed in it. */
const BAD_ENTRY: CsumEntry = { cur: 0, prev: 0 };

export interface JournalStoreOptions {
  log?: Logger;
  fs?: StoreFs;
  /** The log file (default `<dir>/journal/wal`); may be on another device. */
  journalPath?: string;
  /** Log size in bytes (fixed when the log is made). */
  journalBytes?: number;
  /** Largest total logical size of the objects; creates beyond it fail with NO_SPACE. */
  capacityBytes?: number;
  scrubIntervalMs?: number;
  /** Longest time written-back data waits for its checkpoint. */
  checkpointIntervalMs?: number;
  onCorrupt?: (oid: bigint, kind: 'corrupt' | 'missing') => void;
  maxOpenFiles?: number;
  /** Writes of at least this many bytes (4 KiB-aligned) bypass the log when they can (0: never). */
  directWriteBytes?: number;
}

/** Default size from which writes go straight to the object file (0: never; see the module header). */
export const DEFAULT_DIRECT_WRITE_BYTES = 0;

export interface JournalStats {
  detected: number;
  checkpoints: number;
  replayed: number;
  badRecords: number;
  /** Mutations that waited for log space. */
  waits: number;
  /** Writes that went straight to the object file. */
  direct: number;
}

interface Extent {
  seq: number;
  offset: number;
  data: Buffer;
}

interface ObjState {
  size: number;
  ver: ObjVersion;
  extents: Extent[];
  bad: boolean;
}

interface Sidecar {
  f: StoreFile;
  size: number;
}

interface Waiter {
  need: number;
  run: () => void;
}

/** A reader/writer gate per object: write-back (exclusive) never runs under a read (shared) of the file. */
class RwGate {
  private readers = 0;
  private writing = false;
  private readonly waiting: { excl: boolean; go: () => void }[] = [];

  async enter(excl: boolean): Promise<void> {
    if (!this.writing && this.waiting.length === 0 && (!excl || this.readers === 0)) {
      if (excl) this.writing = true;
      else this.readers++;
      return;
    }
    await new Promise<void>((go) => this.waiting.push({ excl, go }));
  }

  leave(excl: boolean): void {
    if (excl) this.writing = false;
    else this.readers--;
    while (this.waiting.length > 0 && !this.writing) {
      const w = this.waiting[0]!;
      if (w.excl && this.readers > 0) break;
      this.waiting.shift();
      if (w.excl) this.writing = true;
      else this.readers++;
      w.go();
    }
  }

  get idle(): boolean {
    return this.readers === 0 && !this.writing && this.waiting.length === 0;
  }
}

function storeError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const result = code === 'ENOENT' ? SD_RES_NO_OBJ : code === 'ENOSPC' || code === 'EDQUOT' ? SD_RES_NO_SPACE : SD_RES_EIO;
  return new StoreError(result, `${what}: ${err instanceof Error ? err.message : String(err)}`);
}

function isNoEnt(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

function encodeSidecarHeader(size: number, ver: ObjVersion, flags: number): Buffer {
  const b = Buffer.alloc(JCS_HEADER);
  b.writeUInt32LE(JCS_MAGIC, 0);
  b.writeUInt32LE(JCS_FORMAT, 4);
  b.writeBigUInt64LE(BigInt(size), 8);
  b.writeUInt32LE(ver.epoch >>> 0, 16);
  b.writeUInt32LE(ver.gen >>> 0, 20);
  b.writeUInt32LE(ver.current >>> 0, 24);
  b.writeUInt32LE(flags >>> 0, 28);
  return b;
}

function decodeSidecarHeader(b: Buffer): { size: number; ver: ObjVersion; flags: number } | null {
  if (b.length < JCS_HEADER || b.readUInt32LE(0) !== JCS_MAGIC || b.readUInt32LE(4) !== JCS_FORMAT) return null;
  const size = b.readBigUInt64LE(8);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return { size: Number(size), ver: { epoch: b.readUInt32LE(16), gen: b.readUInt32LE(20), current: b.readUInt32LE(24) }, flags: b.readUInt32LE(28) };
}

function entryAt(i: number): number {
  return JCS_HEADER + i * CSUM_ENTRY_SIZE;
}

function validVersion(v: ObjVersion): boolean {
  return [v.epoch, v.gen, v.current].every((n) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff);
}

export class JournalStore implements ObjectStore {
  readonly objDir: string;
  readonly staleDir: string;
  readonly csumDir: string;
  readonly journalPath: string;
  readonly stats: JournalStats = { detected: 0, checkpoints: 0, replayed: 0, badRecords: 0, waits: 0, direct: 0 };
  private readonly log: Logger;
  private readonly fs: StoreFs;
  private readonly opts: JournalStoreOptions;
  private readonly wal: Wal;
  private readonly objects = new Map<bigint, ObjState>();
  /** Creates logged but not yet written back, per oid: until then the file's old bytes do not count. */
  private readonly unappliedCreates = new Map<bigint, number>();
  private readonly gates = new Map<bigint, RwGate>();
  /** Seq of each object's newest data record (create, write): a direct write needs it out of the live log. */
  private readonly lastDataSeq = new Map<bigint, number>();
  /** Each object's direct writes in flight, chained: write-back of later records waits for them. */
  private readonly directs = new Map<bigint, Promise<void>>();
  private readonly files: OpenFileCache<StoreFile, Sidecar>;
  private usedBytes = 0;
  /** Object bytes logged as creates but not yet allocated by write-back (kept free on the object disk). */
  private pendingAlloc = 0;
  private waiters: Waiter[] = [];
  private failure: StoreError | null = null;
  // Write-back and checkpoint state.
  private applyQueue: LogRecord[] = [];
  private applying: Promise<void> | null = null;
  private appliedEnd = 0;
  private appliedSeq = 0;
  private dirty = new Set<bigint>();
  private dirDirty = false;
  private checkpointing: Promise<void> | null = null;
  /** A checkpoint is queued behind the running one (later requests share it). */
  private ckptQueued = false;
  /** First seq the log tail still holds. */
  private tailSeq = 0;
  private ckptTimer: NodeJS.Timeout | null = null;
  private scrubTimer: NodeJS.Timeout | null = null;
  private opened = false;

  constructor(
    readonly baseDir: string,
    opts: JournalStoreOptions = {},
  ) {
    this.opts = opts;
    this.objDir = path.join(baseDir, 'obj');
    this.staleDir = path.join(this.objDir, '.stale');
    this.csumDir = path.join(baseDir, 'csum');
    this.journalPath = opts.journalPath ?? path.join(baseDir, 'journal', 'wal');
    this.log = opts.log ?? componentLogger('store');
    this.fs = opts.fs ?? new NodeStoreFs();
    this.wal = new Wal(this.fs, this.journalPath, opts.journalBytes ?? DEFAULT_JOURNAL_BYTES);
    this.wal.onDurable = (recs) => this.committed(recs);
    this.files = new OpenFileCache<StoreFile, Sidecar>(
      Math.floor((opts.maxOpenFiles ?? DEFAULT_OPEN_FILES) / 2),
      (oid) => this.openObject(oid),
      async (o) => {
        await o.sidecar.f.close();
        await o.obj.close();
      },
    );
  }

  /** Log batches (one fdatasync each) and records, for reports. */
  get walStats(): { batches: number; records: number } {
    return this.wal.stats;
  }

  private file(oid: bigint): string {
    return path.join(this.objDir, oidHex(oid));
  }

  private sumFile(oid: bigint): string {
    return path.join(this.csumDir, oidHex(oid));
  }

  private idFile(): string {
    return path.join(this.baseDir, 'journal.id');
  }

  private async openObject(oid: bigint): Promise<OpenObject<StoreFile, Sidecar>> {
    const obj = await this.fs.open(this.file(oid), 'r+');
    try {
      const f = await this.fs.open(this.sumFile(oid), 'r+');
      const h = Buffer.alloc(JCS_HEADER);
      const hdr = (await readFully(f, h, 0, JCS_HEADER, 0)) === JCS_HEADER ? decodeSidecarHeader(h) : null;
      if (!hdr) {
        await f.close();
        throw new StoreError(SD_RES_EIO, `object ${oidHex(oid)}: checksum file damaged`);
      }
      return { obj, sidecar: { f, size: hdr.size } };
    } catch (err) {
      await obj.close().catch(() => undefined);
      throw err;
    }
  }

  private gate(oid: bigint): RwGate {
    let g = this.gates.get(oid);
    if (!g) this.gates.set(oid, (g = new RwGate()));
    return g;
  }

  private async gated<T>(oid: bigint, excl: boolean, fn: () => Promise<T>): Promise<T> {
    const g = this.gate(oid);
    await g.enter(excl);
    try {
      return await fn();
    } finally {
      g.leave(excl);
      if (g.idle && this.gates.get(oid) === g) this.gates.delete(oid);
    }
  }

  // ---- open, replay, identity -------------------------------------------------------------------------------

  async open(): Promise<void> {
    if (this.opened) await this.close();
    this.files.invalidateAll();
    await this.fs.mkdirp(this.staleDir);
    await this.fs.mkdirp(this.csumDir);
    await this.fs.mkdirp(path.dirname(this.journalPath));
    const known = await this.readId();
    if (await this.wal.openExisting()) {
      if (known && !known.equals(this.wal.id)) throw new StoreError(SD_RES_EIO, `journal ${this.journalPath} belongs to another store (this store's journal has id ${known.toString('hex')})`);
    } else {
      if (known) throw new StoreError(SD_RES_EIO, `journal ${this.journalPath} is missing; this store was written through a journal with id ${known.toString('hex')}: start the sheep with the --journal it used`);
      try {
        await this.wal.create();
      } catch (err) {
        throw storeError(err, `make journal ${this.journalPath}`);
      }
      await this.fs.syncDir(path.dirname(this.journalPath));
    }
    if (!known) await this.writeId(this.wal.id);
    const { records, bad } = await this.wal.scan();
    for (const r of records) await this.applyOne(r, true);
    this.stats.replayed = records.length;
    const last = records[records.length - 1];
    this.appliedSeq = last ? last.seq : 0;
    // Nothing is written back in this run yet: the reset below frees everything replayed.
    this.appliedEnd = -1;
    this.tailSeq = this.appliedSeq + 1;
    for (const b of bad) await this.markBadOnDisk(b.oid, b.size);
    this.stats.badRecords = bad.length;
    this.failure = null;
    await this.checkpointNow(true);
    await this.loadObjects();
    for (const b of bad) {
      this.log.error({ oid: oidHex(b.oid), seq: b.seq, pos: b.pos }, 'journal_record_corrupt');
      this.opts.onCorrupt?.(b.oid, 'corrupt');
    }
    this.opened = true;
    const interval = this.opts.scrubIntervalMs ?? 0;
    if (interval > 0 && !this.scrubTimer) {
      this.scrubTimer = setInterval(() => void this.scrub().catch((err: unknown) => this.log.warn({ err }, 'scrub_failed')), interval);
      this.scrubTimer.unref();
    }
    this.log.info({ objects: this.objects.size, replayed: records.length, badRecords: bad.length, journal: this.journalPath }, 'store_opened');
  }

  private async readId(): Promise<Buffer | null> {
    let f: StoreFile;
    try {
      f = await this.fs.open(this.idFile(), 'r');
    } catch (err) {
      if (isNoEnt(err)) return null;
      throw err;
    }
    try {
      const b = Buffer.alloc(64);
      const n = await readFully(f, b, 0, 64, 0);
      const m = /^([0-9a-f]{32})\n?$/.exec(b.subarray(0, n).toString('latin1'));
      if (!m?.[1]) throw new StoreError(SD_RES_EIO, `${this.idFile()} is damaged`);
      return Buffer.from(m[1], 'hex');
    } finally {
      await f.close();
    }
  }

  private async writeId(id: Buffer): Promise<void> {
    const tmp = `${this.idFile()}.tmp`;
    const f = await this.fs.open(tmp, 'w');
    try {
      await writeFully(f, Buffer.from(`${id.toString('hex')}\n`), 0);
      await f.sync();
    } finally {
      await f.close();
    }
    await this.fs.rename(tmp, this.idFile());
    await this.fs.syncDir(this.baseDir);
  }

  /** Build the object table from the files (after replay): size, version and flags from each sidecar. */
  private async loadObjects(): Promise<void> {
    this.objects.clear();
    this.unappliedCreates.clear();
    this.lastDataSeq.clear();
    this.usedBytes = 0;
    this.pendingAlloc = 0;
    let removed = 0;
    for (const name of await this.fs.readdir(this.objDir)) {
      const oid = parseOidHex(name);
      if (oid === null) {
        if (name.includes('.tmp')) {
          await this.fs.rmrf(path.join(this.objDir, name));
          removed++;
        }
        continue;
      }
      const st: ObjState = { size: 0, ver: ZERO_VER, extents: [], bad: false };
      try {
        const f = await this.fs.open(this.sumFile(oid), 'r');
        try {
          const h = Buffer.alloc(JCS_HEADER);
          const hdr = (await readFully(f, h, 0, JCS_HEADER, 0)) === JCS_HEADER ? decodeSidecarHeader(h) : null;
          if (hdr) {
            st.size = hdr.size;
            st.ver = hdr.ver;
            st.bad = (hdr.flags & FLAG_BAD) !== 0;
          } else st.bad = true;
        } finally {
          await f.close();
        }
      } catch (err) {
        if (!isNoEnt(err)) throw err;
        // Every object this store writes has a checksum file: one without is not trusted.
        this.log.error({ oid: oidHex(oid) }, 'object_without_checksums');
        const f = await this.fs.open(this.file(oid), 'r');
        st.size = await f.size().finally(() => f.close());
        st.bad = true;
      }
      this.objects.set(oid, st);
      this.usedBytes += st.size;
    }
    removed += await removeOrphanSidecars(this.fs, this.csumDir, (oid) => this.objects.has(oid));
    if (removed > 0) {
      await this.fs.syncDir(this.objDir);
      await this.fs.syncDir(this.csumDir);
    }
  }

  /** A record that cannot be applied: its object is kept (or made) and flagged bad, durably at the checkpoint. */
  private async markBadOnDisk(oid: bigint, size: number): Promise<void> {
    let hdr: { size: number; ver: ObjVersion } | null = null;
    try {
      const f = await this.fs.open(this.sumFile(oid), 'r');
      const h = Buffer.alloc(JCS_HEADER);
      hdr = (await readFully(f, h, 0, JCS_HEADER, 0).finally(() => f.close())) === JCS_HEADER ? decodeSidecarHeader(h) : null;
    } catch (err) {
      if (!isNoEnt(err)) throw err;
    }
    this.files.invalidate(oid);
    if (!hdr) {
      const f = await this.fs.open(this.file(oid), 'w');
      await f.truncate(size).finally(() => f.close());
    }
    const sc = await this.fs.open(this.sumFile(oid), hdr ? 'r+' : 'w');
    try {
      await writeFully(sc, encodeSidecarHeader(hdr?.size ?? size, hdr?.ver ?? ZERO_VER, FLAG_BAD), 0);
    } finally {
      await sc.close();
    }
    this.dirty.add(oid);
    this.dirDirty = true;
  }

  // ---- the log: room, records, commit -----------------------------------------------------------------------

  private check(): void {
    if (this.failure) throw this.failure;
    if (this.wal.failed) this.fail(storeError(this.wal.failed, 'journal write'));
  }

  private fail(err: StoreError): never {
    if (!this.failure) {
      this.failure = new StoreError(err.result, `store failed, restart the sheep to replay its journal: ${err.message}`);
      this.log.error({ err: err.message }, 'journal_store_failed');
      for (const w of this.waiters.splice(0)) w.run();
    }
    throw this.failure;
  }

  /**
   * Log a record once there is room: `prepare` runs synchronously right before the record gets its place (it
   * validates against the current state and may throw), `after` updates the in-memory state with the record.
   */
  private logRecord(body: RecordBody, prepare: () => void, after: (rec: LogRecord) => void): Promise<void> {
    const need = recordLength(body.base?.length ?? 0, body.data?.length ?? 0);
    if (need > this.wal.maxRecord / 2) {
      return Promise.reject(new StoreError(SD_RES_INVALID_PARMS, `${need}-byte record is too large for a ${this.wal.size}-byte journal (make it at least twice as large)`));
    }
    const run = (): Promise<void> => {
      this.check();
      prepare();
      const { rec, durable } = this.wal.add(body);
      after(rec);
      return durable.catch((err: unknown) => this.fail(storeError(err, 'journal write')));
    };
    try {
      this.check();
      if (this.waiters.length === 0 && this.wal.fits(need)) return run();
    } catch (err) {
      return Promise.reject(err);
    }
    this.stats.waits++;
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({
        need,
        run: () => {
          try {
            run().then(resolve, reject);
          } catch (err) {
            reject(err);
          }
        },
      });
      this.requestCheckpoint(true);
    });
  }

  /** Let waiting mutations in, in order, while the log has room. */
  private wake(): void {
    while (this.waiters.length > 0 && (this.failure || this.wal.fits(this.waiters[0]!.need))) this.waiters.shift()!.run();
  }

  /** A batch is durable: queue its records for write-back. */
  private committed(recs: LogRecord[]): void {
    for (const r of recs) this.applyQueue.push(r);
    if (!this.applying) this.applying = this.applyLoop();
  }

  // ---- write-back and checkpoints ---------------------------------------------------------------------------

  private async applyLoop(): Promise<void> {
    try {
      while (this.applyQueue.length > 0 && !this.failure) {
        const batch = this.applyQueue;
        this.applyQueue = [];
        const byOid = new Map<bigint, LogRecord[]>();
        for (const r of batch) {
          if (r.type === REC_WRAP) continue;
          let l = byOid.get(r.oid);
          if (!l) byOid.set(r.oid, (l = []));
          l.push(r);
        }
        try {
          for (const [oid, recs] of byOid) {
            // A direct write logged before these records must be in the file before they are applied.
            await this.directs.get(oid);
            await this.gated(oid, true, async () => {
              for (const r of recs) await this.applyOne(r, false);
            });
            this.pruneApplied(oid, recs);
            this.dirty.add(oid);
          }
        } catch (err) {
          this.fail(storeError(err, 'journal write-back'));
        }
        const last = batch[batch.length - 1]!;
        this.appliedSeq = last.seq;
        this.appliedEnd = last.pos + last.len;
        if (this.waiters.length > 0 || this.wal.used() > this.wal.size / 2) this.requestCheckpoint(true);
        else this.requestCheckpoint(false);
      }
    } catch {
      // The failure is recorded; operations report it.
    } finally {
      this.applying = null;
    }
  }

  /** Records written back: their extents leave the overlay, their creates stop hiding the file. */
  private pruneApplied(oid: bigint, recs: LogRecord[]): void {
    const last = recs[recs.length - 1]!.seq;
    const st = this.objects.get(oid);
    if (st && st.extents.length > 0) st.extents = st.extents.filter((e) => e.seq > last);
    for (const r of recs) {
      if (r.type !== REC_CREATE) continue;
      const n = (this.unappliedCreates.get(oid) ?? 1) - 1;
      if (n > 0) this.unappliedCreates.set(oid, n);
      else this.unappliedCreates.delete(oid);
      this.pendingAlloc -= r.size;
    }
  }

  /** Apply one record to the object files (page cache only; the checkpoint syncs). */
  private async applyOne(r: LogRecord, replay: boolean): Promise<void> {
    switch (r.type) {
      case REC_CREATE:
        return this.applyCreate(r);
      case REC_WRITE:
        return this.applyWrite(r, replay);
      case REC_REMOVE:
        this.files.invalidate(r.oid);
        await this.fs.unlink(this.file(r.oid)).catch((err: unknown) => (isNoEnt(err) ? undefined : Promise.reject(err)));
        await this.fs.unlink(this.sumFile(r.oid)).catch((err: unknown) => (isNoEnt(err) ? undefined : Promise.reject(err)));
        this.dirDirty = true;
        return;
      case REC_STALE:
        this.files.invalidate(r.oid);
        await this.fs.rename(this.file(r.oid), path.join(this.staleDir, `${oidHex(r.oid)}.${r.aux}`)).catch((err: unknown) => (isNoEnt(err) ? undefined : Promise.reject(err)));
        this.files.invalidate(r.oid);
        await this.fs.unlink(this.sumFile(r.oid)).catch((err: unknown) => (isNoEnt(err) ? undefined : Promise.reject(err)));
        this.dirDirty = true;
        return;
      case REC_DIRECT:
        // Outside replay the write itself did the work (applyLoop waited for it).
        if (replay) await this.replayDirect(r);
        return;
      case REC_VERSION:
        await this.withFiles(r.oid, (_f, sc) => this.writeVersion(sc, r.ver));
        if (replay) this.dirty.add(r.oid);
        return;
      default:
        throw new StoreError(SD_RES_EIO, `journal record ${r.seq}: unknown type ${r.type}`);
    }
  }

  /** The whole object: base bytes, zeros, data; and its sidecar. Written in full so it is allocated. */
  private async applyCreate(r: LogRecord): Promise<void> {
    const content = Buffer.alloc(r.size);
    r.base?.copy(content, 0, 0, Math.min(r.base.length, r.size));
    r.data?.copy(content, r.offset);
    const entries: CsumEntry[] = [];
    for (let i = 0; i < blockCount(r.size); i++) {
      const s = i * CSUM_BLOCK;
      const c = blockCrc(content.subarray(s, s + blockLength(r.size, i)));
      entries.push({ cur: c, prev: c });
    }
    this.files.invalidate(r.oid);
    const sc = await this.fs.open(this.sumFile(r.oid), 'w');
    try {
      await writeFully(sc, Buffer.concat([encodeSidecarHeader(r.size, r.ver, 0), encodeEntries(entries)]), 0);
    } finally {
      await sc.close();
    }
    const f = await this.fs.open(this.file(r.oid), 'w');
    try {
      await writeFully(f, content, 0);
    } finally {
      await f.close();
    }
    this.files.invalidate(r.oid);
    this.dirty.add(r.oid);
    this.dirDirty = true;
  }

  /**
   * Data, then the CRCs of the blocks it touched. A partly covered block whose old bytes fail their checksum
   * keeps a checksum nothing matches (outside replay, where the old bytes may legitimately be mid-update).
   */
  private async applyWrite(r: LogRecord, replay: boolean): Promise<void> {
    const data = r.data ?? Buffer.alloc(0);
    await this.withFiles(r.oid, async (f, sc) => {
      if (r.aux === 1) await this.writeVersion(sc, r.ver);
      if (data.length === 0) return;
      const end = Math.min(r.offset + data.length, sc.size);
      if (r.offset >= end) {
        await writeFully(f, data, r.offset);
        return;
      }
      const first = Math.floor(r.offset / CSUM_BLOCK);
      const last = Math.ceil(end / CSUM_BLOCK);
      const start = first * CSUM_BLOCK;
      const span = Math.min(last * CSUM_BLOCK, sc.size) - start;
      const aligned = r.offset === start && (end === r.offset + data.length) && (end % CSUM_BLOCK === 0 || end === sc.size);
      const damaged = new Set<number>();
      let buf: Buffer;
      if (aligned) {
        await writeFully(f, data, r.offset);
        buf = data;
      } else {
        buf = Buffer.alloc(span);
        await readFully(f, buf, 0, span, start);
        if (!replay) {
          const old = await this.readEntries(sc, first, last - first);
          for (let i = first; i < last; i++) {
            const o = (i - first) * CSUM_BLOCK;
            const covered = r.offset <= i * CSUM_BLOCK && r.offset + data.length >= i * CSUM_BLOCK + blockLength(sc.size, i);
            if (!covered && !entryAccepts(old[i - first], blockCrc(buf.subarray(o, o + blockLength(sc.size, i))))) damaged.add(i);
          }
        }
        data.copy(buf, r.offset - start, 0, Math.min(data.length, span - (r.offset - start)));
        await writeFully(f, data, r.offset);
      }
      const entries: CsumEntry[] = [];
      for (let i = first; i < last; i++) {
        if (damaged.has(i)) {
          this.stats.detected++;
          this.log.error({ oid: oidHex(r.oid), block: i }, 'object_corrupt');
          this.opts.onCorrupt?.(r.oid, 'corrupt');
          entries.push(BAD_ENTRY);
          continue;
        }
        const o = (i - first) * CSUM_BLOCK;
        const c = blockCrc(buf.subarray(o, o + blockLength(sc.size, i)));
        entries.push({ cur: c, prev: c });
      }
      await writeFully(sc.f, encodeEntries(entries), entryAt(first));
      if (replay) this.dirty.add(r.oid);
    });
  }

  /** Each block a direct write covered gets the checksum of what the disk holds, if that is old or new content. */
  private async replayDirect(r: LogRecord): Promise<void> {
    const crcs = r.data ?? Buffer.alloc(0);
    await this.withFiles(r.oid, async (f, sc) => {
      if (r.aux === 1) await this.writeVersion(sc, r.ver);
      const first = r.offset / CSUM_BLOCK;
      const n = Math.min(crcs.length / 4, blockCount(sc.size) - first);
      if (n <= 0) return;
      const old = await this.readEntries(sc, first, n);
      const buf = Buffer.alloc(n * CSUM_BLOCK);
      await readFully(f, buf, 0, buf.length, r.offset);
      const entries = old.map((e, i) => {
        const len = blockLength(sc.size, first + i);
        const c = blockCrc(buf.subarray(i * CSUM_BLOCK, i * CSUM_BLOCK + len));
        if (c === e.cur || c === e.prev || c === crcs.readUInt32LE(i * 4)) return { cur: c, prev: c };
        this.log.error({ oid: oidHex(r.oid), block: first + i }, 'object_corrupt');
        return BAD_ENTRY;
      });
      await writeFully(sc.f, encodeEntries(entries), entryAt(first));
    });
    this.dirty.add(r.oid);
  }

  private async writeVersion(sc: Sidecar, ver: ObjVersion): Promise<void> {
    const b = Buffer.alloc(12);
    b.writeUInt32LE(ver.epoch >>> 0, 0);
    b.writeUInt32LE(ver.gen >>> 0, 4);
    b.writeUInt32LE(ver.current >>> 0, 8);
    await writeFully(sc.f, b, 16);
  }

  private async readEntries(sc: Sidecar, first: number, count: number): Promise<CsumEntry[]> {
    const b = Buffer.alloc(count * CSUM_ENTRY_SIZE);
    const n = await readFully(sc.f, b, 0, b.length, entryAt(first));
    return decodeEntries(b.subarray(0, n - (n % CSUM_ENTRY_SIZE)));
  }

  private async withFiles<T>(oid: bigint, fn: (f: StoreFile, sc: Sidecar) => Promise<T>): Promise<T> {
    for (let again = true; ; again = false) {
      const o = await this.files.acquire(oid);
      let ok = false;
      try {
        const check = o.reused === true && o.obj.linked ? o.obj.linked() : Promise.resolve(true);
        const [r, linked] = await Promise.all([fn(o.obj, o.sidecar), check]);
        ok = linked;
        if (linked || !again) return r;
      } finally {
        await this.files.release(o, oid, !ok);
      }
    }
  }

  /** Checkpoint soon (`urgent`: now; else within checkpointIntervalMs). */
  private requestCheckpoint(urgent: boolean): void {
    if (urgent) {
      if (this.ckptTimer) clearTimeout(this.ckptTimer);
      this.ckptTimer = null;
      void this.checkpointNow(false).catch(() => undefined);
      return;
    }
    if (this.ckptTimer) return;
    this.ckptTimer = setTimeout(() => {
      this.ckptTimer = null;
      void this.checkpointNow(false).catch(() => undefined);
    }, this.opts.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_MS);
    this.ckptTimer.unref();
  }

  /**
   * Sync every object file written back since the last checkpoint (and the directories, if entries changed),
   * then move the log tail past the records they hold and let waiting mutations in.
   */
  private checkpointNow(all: boolean): Promise<void> {
    if (!all && this.ckptQueued && this.checkpointing) return this.checkpointing;
    this.ckptQueued = true;
    const run = async (): Promise<void> => {
      this.ckptQueued = false;
      if (this.failure && !all) return;
      const upto = this.appliedSeq;
      const end = this.appliedEnd;
      const dirty = this.dirty;
      const dirDirty = this.dirDirty;
      this.dirty = new Set();
      this.dirDirty = false;
      try {
        const todo = [...dirty];
        await Promise.all(
          Array.from({ length: Math.min(CHECKPOINT_SYNCS, todo.length) }, async () => {
            for (let oid = todo.pop(); oid !== undefined; oid = todo.pop()) await this.syncObject(oid);
          }),
        );
        if (dirDirty) {
          await this.fs.syncDir(this.objDir);
          await this.fs.syncDir(this.csumDir);
          await this.fs.syncDir(this.staleDir);
        }
        if (all) await this.wal.reset();
        else if (end >= 0 && upto >= this.tailSeq) {
          await this.wal.setTail(end, upto + 1);
          this.tailSeq = upto + 1;
        }
      } catch (err) {
        for (const oid of dirty) this.dirty.add(oid);
        this.dirDirty ||= dirDirty;
        this.fail(storeError(err, 'journal checkpoint'));
      }
      this.stats.checkpoints++;
      this.wake();
    };
    const prev = this.checkpointing ?? Promise.resolve();
    const mine: Promise<void> = prev.then(run, run).finally(() => {
      if (this.checkpointing === mine) this.checkpointing = null;
    });
    this.checkpointing = mine;
    return mine;
  }

  private async syncObject(oid: bigint): Promise<void> {
    await this.syncFile(this.file(oid));
    await this.syncFile(this.sumFile(oid));
  }

  /** fdatasync a file by path (absent: nothing to sync). */
  private async syncFile(file: string): Promise<void> {
    let f: StoreFile;
    try {
      f = await this.fs.open(file, 'r');
    } catch (err) {
      if (isNoEnt(err)) return;
      throw err;
    }
    try {
      await f.datasync();
    } finally {
      await f.close();
    }
  }

  /** Wait until everything logged so far is durable and written back. */
  private async drain(): Promise<void> {
    for (;;) {
      await this.wal.settle();
      if (this.applying) await this.applying;
      // A failed store writes nothing back (what is left replays at the next start).
      else if (this.applyQueue.length === 0 || this.failure) return;
      else this.applying = this.applyLoop();
    }
  }

  // ---- the ObjectStore operations ---------------------------------------------------------------------------

  async create(oid: bigint, size: number, data: Buffer, offset: number, ver: ObjVersion, base?: Buffer): Promise<void> {
    const v = ver;
    if (!Number.isSafeInteger(size) || size <= 0 || size > 0xffffffff || offset < 0 || offset + data.length > size || !validVersion(v)) {
      throw new StoreError(SD_RES_INVALID_PARMS, `create ${oidHex(oid)}: bad size ${size}, offset ${offset} or length ${data.length}`);
    }
    const cap = this.opts.capacityBytes;
    const free = (await this.fs.statfs(this.objDir).catch(() => null))?.free;
    const copy = Buffer.from(data);
    const b = base && base.length > 0 ? Buffer.from(base.subarray(0, Math.min(base.length, size))) : undefined;
    let reserve = 0;
    try {
      await this.logRecord(
        { type: REC_CREATE, oid, offset, size, aux: 0, ver: v, data: copy, ...(b ? { base: b } : {}) },
        () => {
          const old = this.objects.get(oid);
          reserve = old === undefined ? size : Math.max(0, size - old.size);
          if (cap !== undefined && cap > 0 && this.usedBytes + reserve > cap) {
            throw new StoreError(SD_RES_NO_SPACE, `create ${oidHex(oid)}: store capacity ${cap} bytes reached`);
          }
          if (free !== undefined && BigInt(this.pendingAlloc + size) > free) {
            throw new StoreError(SD_RES_NO_SPACE, `create ${oidHex(oid)}: no space left on the object disk`);
          }
        },
        (rec) => {
          this.usedBytes += reserve;
          this.pendingAlloc += size;
          const extents: Extent[] = [];
          if (b) extents.push({ seq: rec.seq, offset: 0, data: b });
          if (copy.length > 0) extents.push({ seq: rec.seq, offset, data: copy });
          this.objects.set(oid, { size, ver: v, extents, bad: false });
          this.lastDataSeq.set(oid, rec.seq);
          this.unappliedCreates.set(oid, (this.unappliedCreates.get(oid) ?? 0) + 1);
        },
      );
    } catch (err) {
      throw storeError(err, `create ${oidHex(oid)}`);
    }
  }

  async write(oid: bigint, data: Buffer, offset: number, ver: ObjVersion): Promise<void> {
    if (this.directable(oid, data, offset)) {
      try {
        return await this.directWrite(oid, data, offset, ver);
      } catch (err) {
        if (!(err instanceof NotDirect)) throw storeError(err, `write ${oidHex(oid)}`);
      }
    }
    if (data.length === 0) {
      if (!this.objects.has(oid)) throw new StoreError(SD_RES_NO_OBJ, `write ${oidHex(oid)}: no such object`);
      if (!ver) return;
    }
    const copy = Buffer.from(data);
    try {
      await this.logRecord(
        { type: REC_WRITE, oid, offset, size: 0, aux: ver ? 1 : 0, ver: ver ?? ZERO_VER, data: copy },
        () => {
          const st = this.objects.get(oid);
          if (!st) throw new StoreError(SD_RES_NO_OBJ, `write ${oidHex(oid)}: no such object`);
          if (offset < 0 || offset + data.length > st.size) {
            throw new StoreError(SD_RES_INVALID_PARMS, `write ${oidHex(oid)}: ${data.length} bytes at ${offset} beyond its size ${st.size}`);
          }
          if (ver && !validVersion(ver)) throw new StoreError(SD_RES_INVALID_PARMS, `write ${oidHex(oid)}: bad version`);
        },
        (rec) => {
          const st = this.objects.get(oid)!;
          st.extents.push({ seq: rec.seq, offset, data: copy });
          if (ver) st.ver = ver;
          this.lastDataSeq.set(oid, rec.seq);
        },
      );
    } catch (err) {
      throw storeError(err, `write ${oidHex(oid)}`);
    }
  }

  /** A large aligned write to an object with no data record in the live log (and no create pending). */
  private directable(oid: bigint, data: Buffer, offset: number): boolean {
    const min = this.opts.directWriteBytes ?? DEFAULT_DIRECT_WRITE_BYTES;
    const st = this.objects.get(oid);
    if (min <= 0 || data.length < min || !st || st.bad || offset % CSUM_BLOCK !== 0 || offset + data.length > st.size) return false;
    if (data.length % CSUM_BLOCK !== 0 && offset + data.length !== st.size) return false;
    return (this.lastDataSeq.get(oid) ?? 0) < this.wal.tailSeq && (this.unappliedCreates.get(oid) ?? 0) === 0 && st.extents.length === 0;
  }

  /** Log the new block CRCs (synced), then write and sync the data in place; see the module header. */
  private async directWrite(oid: bigint, data: Buffer, offset: number, ver?: ObjVersion): Promise<void> {
    if (ver && !validVersion(ver)) throw new StoreError(SD_RES_INVALID_PARMS, `write ${oidHex(oid)}: bad version`);
    const n = Math.ceil(data.length / CSUM_BLOCK);
    const crcs = Buffer.alloc(n * 4);
    for (let i = 0; i < n; i++) crcs.writeUInt32LE(blockCrc(data.subarray(i * CSUM_BLOCK, (i + 1) * CSUM_BLOCK)) >>> 0, i * 4);
    let prev: Promise<void> = Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((r) => (done = r));
    try {
      // An error here (no room, failed store, no longer directable) leaves nothing behind; after it, the store fails.
      await this.logRecord(
        { type: REC_DIRECT, oid, offset, size: data.length, aux: ver ? 1 : 0, ver: ver ?? ZERO_VER, data: crcs },
        () => {
          this.check();
          if (!this.directable(oid, data, offset)) throw new NotDirect();
        },
        () => {
          if (ver) this.objects.get(oid)!.ver = ver;
          prev = this.directs.get(oid) ?? Promise.resolve();
          const chained = prev.then(() => mine);
          this.directs.set(oid, chained);
          void chained.then(() => {
            if (this.directs.get(oid) === chained) this.directs.delete(oid);
          });
        },
      );
    } catch (err) {
      done();
      throw err;
    }
    try {
      await prev;
      this.stats.direct++;
      await this.gated(oid, true, () =>
        this.withFiles(oid, async (file, sc) => {
          const first = offset / CSUM_BLOCK;
          const old = await this.readEntries(sc, first, n);
          await writeFully(file, data, offset);
          const entries = old.map((e, i) => ({ cur: crcs.readUInt32LE(i * 4), prev: e.cur }));
          await writeFully(sc.f, encodeEntries(entries), entryAt(first));
          if (ver) await this.writeVersion(sc, ver);
        }),
      );
      // In the file now: later records of this object may be written back, and a checkpoint must sync it.
      this.dirty.add(oid);
      done();
      // The cached handle may be closed meanwhile: sync by path (fdatasync covers the file).
      await this.syncFile(this.file(oid));
    } catch (err) {
      this.fail(storeError(err, `direct write ${oidHex(oid)}`));
    } finally {
      done();
    }
  }

  version(oid: bigint): ObjVersion | null {
    return this.objects.get(oid)?.ver ?? null;
  }

  async setVersion(oid: bigint, ver: ObjVersion): Promise<void> {
    if (!validVersion(ver)) throw new StoreError(SD_RES_INVALID_PARMS, `set version ${oidHex(oid)}: bad version`);
    await this.logRecord(
      { type: REC_VERSION, oid, offset: 0, size: 0, aux: 0, ver },
      () => {
        if (!this.objects.has(oid)) throw new StoreError(SD_RES_NO_OBJ, `set version ${oidHex(oid)}: no such object`);
      },
      () => (this.objects.get(oid)!.ver = ver),
    );
  }

  async read(oid: bigint, offset: number, length: number): Promise<Buffer> {
    this.check();
    const st = this.objects.get(oid);
    if (!st) throw new StoreError(SD_RES_NO_OBJ, `read ${oidHex(oid)}: no such object`);
    if (st.bad) {
      this.stats.detected++;
      throw new StoreError(SD_RES_EIO, `read ${oidHex(oid)}: object is marked damaged`);
    }
    const exts = st.extents.slice();
    const end = offset + length;
    let out: Buffer;
    const covered = exts.some((e) => e.offset <= offset && e.offset + e.data.length >= end);
    if (covered || (this.unappliedCreates.get(oid) ?? 0) > 0 || length === 0) out = Buffer.alloc(length);
    else {
      try {
        out = await this.gated(oid, false, () => this.verified(oid, 'read', () => this.withFiles(oid, (f, sc) => this.readVerified(oid, f, sc, offset, length))));
      } catch (err) {
        throw storeError(err, `read ${oidHex(oid)}`);
      }
    }
    for (const e of exts) {
      const s = Math.max(offset, e.offset);
      const t = Math.min(end, e.offset + e.data.length);
      if (s < t) e.data.copy(out, s - offset, s - e.offset, t - e.offset);
    }
    return out;
  }

  /** A checksum mismatch is tried once more (a file replaced under an open handle) before it counts. */
  private async verified<T>(oid: bigint, source: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof Mismatch)) throw err;
    }
    try {
      return await fn();
    } catch (err) {
      if (err instanceof Mismatch) {
        this.stats.detected++;
        this.log.error({ oid: oidHex(oid), block: err.block, source }, 'object_corrupt');
        this.opts.onCorrupt?.(oid, 'corrupt');
        throw new StoreError(SD_RES_EIO, `object ${oidHex(oid)} block ${err.block}: checksum mismatch`);
      }
      throw err;
    }
  }

  private async readVerified(oid: bigint, f: StoreFile, sc: Sidecar, offset: number, length: number): Promise<Buffer> {
    if (length === 0 || offset >= sc.size) return Buffer.alloc(length);
    const first = Math.floor(offset / CSUM_BLOCK);
    const endByte = Math.min(offset + length, sc.size);
    const last = Math.ceil(endByte / CSUM_BLOCK);
    const start = first * CSUM_BLOCK;
    const span = Math.min(last * CSUM_BLOCK, sc.size) - start;
    const buf = Buffer.allocUnsafe(Math.max(span, offset + length - start));
    buf.fill(0, await readFully(f, buf, 0, span, start));
    const entries = await this.readEntries(sc, first, last - first);
    for (let i = first; i < last; i++) {
      const o = (i - first) * CSUM_BLOCK;
      if (!entryAccepts(entries[i - first], blockCrc(buf.subarray(o, o + blockLength(sc.size, i))))) throw new Mismatch(oid, i);
    }
    return buf.subarray(offset - start, offset - start + length);
  }

  async remove(oid: bigint): Promise<void> {
    await this.dropRecord(oid, REC_REMOVE, 0, 'remove');
  }

  async moveToStale(oid: bigint, epoch: number): Promise<void> {
    await this.dropRecord(oid, REC_STALE, epoch, 'stale');
  }

  private async dropRecord(oid: bigint, type: number, aux: number, what: string): Promise<void> {
    try {
      await this.logRecord(
        { type, oid, offset: 0, size: 0, aux, ver: ZERO_VER },
        () => {
          if (!this.objects.has(oid)) throw new StoreError(SD_RES_NO_OBJ, `${what} ${oidHex(oid)}: no such object`);
        },
        () => {
          this.usedBytes -= this.objects.get(oid)?.size ?? 0;
          this.objects.delete(oid);
          this.lastDataSeq.delete(oid);
        },
      );
    } catch (err) {
      throw storeError(err, `${what} ${oidHex(oid)}`);
    }
  }

  exists(oid: bigint): boolean {
    return this.objects.has(oid);
  }

  list(): bigint[] {
    return [...this.objects.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  async hash(oid: bigint, size: number): Promise<Buffer> {
    const h = createHash('sha1');
    for (let off = 0; off < size; off += HASH_CHUNK) h.update(await this.read(oid, off, Math.min(HASH_CHUNK, size - off)));
    if (size === 0 && !this.objects.has(oid)) throw new StoreError(SD_RES_NO_OBJ, `hash ${oidHex(oid)}: no such object`);
    return h.digest();
  }

  async wipe(): Promise<void> {
    this.check();
    await this.drain();
    await this.checkpointNow(true);
    this.check();
    await this.fs.rmrf(this.objDir);
    this.files.invalidateAll();
    await this.fs.rmrf(this.csumDir);
    this.files.invalidateAll();
    await this.fs.mkdirp(this.staleDir);
    await this.fs.mkdirp(this.csumDir);
    this.objects.clear();
    this.unappliedCreates.clear();
    this.lastDataSeq.clear();
    this.usedBytes = 0;
    this.pendingAlloc = 0;
    await this.fs.syncDir(this.objDir);
    await this.fs.syncDir(this.csumDir);
  }

  async space(): Promise<{ size: bigint; free: bigint }> {
    const real = await this.fs.statfs(this.baseDir);
    const cap = this.opts.capacityBytes;
    if (!cap) return real;
    const free = BigInt(Math.max(0, cap - this.usedBytes));
    return { size: BigInt(cap), free: free < real.free ? free : real.free };
  }

  /** Verify every object (file blocks against the sidecar, overlay applied); report corrupt and missing ones. */
  async scrub(): Promise<{ scanned: number; corrupt: bigint[]; missing: bigint[] }> {
    const rep = { scanned: 0, corrupt: [] as bigint[], missing: [] as bigint[] };
    for (const oid of this.list()) {
      const st = this.objects.get(oid);
      if (!st) continue;
      rep.scanned++;
      try {
        await this.hash(oid, st.size);
      } catch (err) {
        if (!this.objects.has(oid)) continue;
        if (err instanceof StoreError && err.result === SD_RES_NO_OBJ) {
          rep.missing.push(oid);
          this.log.error({ oid: oidHex(oid) }, 'object_missing');
          this.opts.onCorrupt?.(oid, 'missing');
        } else if (err instanceof StoreError && err.result === SD_RES_EIO && !this.failure) rep.corrupt.push(oid);
        else throw err;
      }
    }
    this.log.info({ scanned: rep.scanned, corrupt: rep.corrupt.length, missing: rep.missing.length }, 'scrub_done');
    return rep;
  }

  async close(): Promise<void> {
    if (this.scrubTimer) clearInterval(this.scrubTimer);
    this.scrubTimer = null;
    if (this.ckptTimer) clearTimeout(this.ckptTimer);
    this.ckptTimer = null;
    if (this.opened) {
      await this.drain().catch(() => undefined);
      if (!this.failure) await this.checkpointNow(false).catch(() => undefined);
      await this.checkpointing?.catch(() => undefined);
      if (!this.failure && this.applyQueue.length === 0 && !this.applying) await this.wal.markClean().catch(() => undefined);
    }
    await this.files.closeAll();
    await this.wal.close().catch(() => undefined);
    this.opened = false;
  }
}

/** A write that can no longer bypass the log (a data record for its object was logged meanwhile). */
class NotDirect extends Error {}

/** A block whose bytes match no checksum, seen once (retried before it counts). */
class Mismatch extends Error {
  constructor(
    readonly oid: bigint,
    readonly block: number,
  ) {
    super(`object ${oidHex(oid)} block ${block}: checksum mismatch`);
  }
}
