// The plain-file object store (fact sheet §10.7): `<dir>/obj/%016x`, one sparse file per object, and a
// checksum sidecar `<dir>/csum/%016x` per object (checksum.ts). All file operations go through a StoreFs.
// - create = write the sidecar and `<oid>.tmp.<n>` (base bytes, payload, full-size truncate), sync both, rename
//   the sidecar into place and sync its directory, then rename the object and sync its directory: a crash
//   leaves the old object or the new one, never a half-written one, and the sidecar (which accepts old and
//   new bytes) matches whichever survived; leftover temporaries and orphan sidecars are deleted by open();
// - write = sidecar entries (old and new CRC) + fdatasync, then pwrite + fdatasync before the promise
//   resolves, so the sidecar on disk always accepts what the object holds; then (unsynced) the old CRC is
//   dropped, so a block that reverts to its old bytes (zeroed, truncated) is caught as well;
// - read = verify every 4 KiB block it touches against the sidecar: a mismatch is SD_RES_EIO (that replica
//   is bad; the gateway reads another one) and is counted and logged, never served;
// - a capacity limit (bytes of objects, logical size) answers NO_SPACE before anything is written;
// - scrub() (and a timer with scrubIntervalMs) re-verifies every object and reports corrupt or missing ones;
// - mutations of one oid are serialized (a re-sent CREATE racing the first one must not interleave).
// Objects without a sidecar (stores from before checksums) are served unverified; their version lives only in
// memory (it is unknown again after a restart).
// Versions: the trailer of the sidecar (checksum.ts), written with the entries before the same fdatasync, so a
// write's version is durable exactly when its checksums are; a create's comes with the renamed sidecar.
// Reads, hashes and writes use an object's data file and sidecar from a bounded open-file cache (openfiles.ts),
// invalidated right after any rename or unlink of an object path; scrub and open() always go by path. Writes
// keep their fdatasync before the promise resolves (fdatasync covers the file, whichever descriptor).
import { createHash } from 'node:crypto';
import path from 'node:path';
import { SD_RES_EIO, SD_RES_NO_OBJ, SD_RES_NO_SPACE } from '../../proto/sheepdog/constants.js';
import { oidHex, parseOidHex } from '../../proto/sheepdog/oid.js';
import { componentLogger, type Logger } from '../../obs/log.js';
import { NO_VERSION, StoreError, type ObjVersion, type ObjectStore } from './store.js';
import { NodeStoreFs, readFully, removeOrphanSidecars, writeFully, type StoreFile, type StoreFs } from './fs.js';
import { OpenFileCache, type OpenObject } from './openfiles.js';
import {
  CSUM_BLOCK,
  CSUM_ENTRY_SIZE,
  CSUM_HEADER_SIZE,
  blockCount,
  blockCrc,
  blockLength,
  decodeCsumHeader,
  decodeEntries,
  decodeVersionTrailer,
  encodeCsumHeader,
  encodeEntries,
  encodeVersionTrailer,
  entryAccepts,
  entryOffset,
  trailerOffset,
  VER_TRAILER_SIZE,
  zeroCrc,
  type CsumEntry,
} from './checksum.js';

const HASH_CHUNK = 1 << 20;
/** Descriptors the open-file cache may hold when the caller names no limit (two per cached object). */
const DEFAULT_OPEN_FILES = 512;

export interface PlainStoreOptions {
  log?: Logger;
  fs?: StoreFs;
  /** Largest total logical size of the objects, in bytes; creates beyond it fail with NO_SPACE. */
  capacityBytes?: number;
  /** Re-verify every object this often (0 or absent: only on demand). */
  scrubIntervalMs?: number;
  /** Called for each corrupt or missing object a read or a scrub finds (e.g. to schedule a repair). */
  onCorrupt?: (oid: bigint, kind: 'corrupt' | 'missing') => void;
}

/** Counters of the integrity checks, for tests and reports. */
export interface IntegrityStats {
  /** Reads (or writes, scrubs) that found a block matching neither of its checksums. */
  detected: number;
  scrubs: number;
  scrubCorrupt: number;
  scrubMissing: number;
}

export interface ScrubReport {
  scanned: number;
  corrupt: bigint[];
  missing: bigint[];
}

/** Map a file-system error to the SD_RES code the wire sees (§3: ENOENT → NO_OBJ, ENOSPC → NO_SPACE, else EIO). */
function storeError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const result = code === 'ENOENT' ? SD_RES_NO_OBJ : code === 'ENOSPC' || code === 'EDQUOT' ? SD_RES_NO_SPACE : SD_RES_EIO;
  return new StoreError(result, `${what}: ${err instanceof Error ? err.message : String(err)}`);
}

function isOptions(v: Logger | PlainStoreOptions | undefined): v is PlainStoreOptions {
  return v === undefined || !('info' in v);
}

function isNoEnt(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

/** A corrupt block found by verification. */
class CorruptError extends StoreError {
  constructor(
    readonly oid: bigint,
    readonly block: number,
  ) {
    super(SD_RES_EIO, `object ${oidHex(oid)} block ${block}: checksum mismatch`);
  }
}

/** A block whose bytes match neither checksum, seen by one verification pass (not yet judged corrupt). */
class Mismatch extends Error {
  constructor(readonly block: number) {
    super(`checksum mismatch in block ${block}`);
  }
}

/** An object's sidecar, open for reading (and writing). */
interface Sidecar {
  f: StoreFile;
  size: number;
}

export class PlainStore implements ObjectStore {
  readonly objDir: string;
  readonly staleDir: string;
  readonly csumDir: string;
  readonly stats: IntegrityStats = { detected: 0, scrubs: 0, scrubCorrupt: 0, scrubMissing: 0 };
  private readonly objects = new Map<bigint, number>();
  private readonly versions = new Map<bigint, ObjVersion>();
  private readonly locks = new Map<bigint, Promise<void>>();
  private tmpCounter = 0;
  private usedBytes = 0;
  private readonly log: Logger;
  private readonly fs: StoreFs;
  private readonly opts: PlainStoreOptions;
  private scrubTimer: NodeJS.Timeout | null = null;
  private scrubbing: Promise<ScrubReport> | null = null;
  private readonly files: OpenFileCache<StoreFile, Sidecar | null>;

  constructor(
    readonly baseDir: string,
    logOrOpts?: Logger | PlainStoreOptions,
    /** Most descriptors the open-file cache keeps (two per object; 0 opens files per operation). */
    readonly maxOpenFiles?: number,
  ) {
    this.opts = logOrOpts === undefined ? {} : isOptions(logOrOpts) ? logOrOpts : { log: logOrOpts };
    this.objDir = path.join(baseDir, 'obj');
    this.staleDir = path.join(this.objDir, '.stale');
    this.csumDir = path.join(baseDir, 'csum');
    this.log = this.opts.log ?? componentLogger('store');
    this.fs = this.opts.fs ?? new NodeStoreFs();
    this.files = new OpenFileCache<StoreFile, Sidecar | null>(
      Math.floor((maxOpenFiles ?? DEFAULT_OPEN_FILES) / 2),
      (oid) => this.openObject(oid),
      async (o) => {
        await o.sidecar?.f.close();
        await o.obj.close();
      },
    );
  }

  /** Open an object's data file and sidecar read-write (for the open-file cache). */
  private async openObject(oid: bigint): Promise<OpenObject<StoreFile, Sidecar | null>> {
    const obj = await this.fs.open(this.file(oid), 'r+');
    try {
      return { obj, sidecar: await this.openSidecar(oid, 'r+') };
    } catch (err) {
      await obj.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Run `fn` on the open files of `oid`; an error drops them from the cache (the next use reopens by path).
   * Files reused from the cache are checked, alongside `fn`, to still be named by a directory entry: an object
   * file deleted or replaced behind the store's back (a disk fault, an operator) is then opened again by path
   * and `fn` re-run, so it reads NO_OBJ as it did without the cache, never the removed file's bytes.
   */
  private async withFiles<T>(oid: bigint, fn: (f: StoreFile, sc: Sidecar | null) => Promise<T>): Promise<T> {
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

  async open(): Promise<void> {
    this.files.invalidateAll();
    await this.fs.mkdirp(this.staleDir);
    await this.fs.mkdirp(this.csumDir);
    this.objects.clear();
    this.versions.clear();
    this.usedBytes = 0;
    let removed = 0;
    for (const name of await this.fs.readdir(this.objDir)) {
      const oid = parseOidHex(name);
      if (oid !== null) {
        const size = this.opts.capacityBytes ? await this.fileSize(this.file(oid)) : 0;
        this.objects.set(oid, size);
        this.usedBytes += size;
      } else if (name.includes('.tmp')) {
        await this.fs.rmrf(path.join(this.objDir, name));
        removed++;
      }
    }
    removed += await removeOrphanSidecars(this.fs, this.csumDir, (oid) => this.objects.has(oid));
    if (removed > 0) {
      await this.fs.syncDir(this.objDir);
      await this.fs.syncDir(this.csumDir);
    }
    for (const oid of this.objects.keys()) {
      const v = await this.loadVersion(oid).catch(() => null);
      if (v) this.versions.set(oid, v);
    }
    const interval = this.opts.scrubIntervalMs ?? 0;
    if (interval > 0 && !this.scrubTimer) {
      this.scrubTimer = setInterval(() => void this.scrub().catch((err: unknown) => this.log.warn({ err }, 'scrub_failed')), interval);
      this.scrubTimer.unref();
    }
    this.log.info({ objects: this.objects.size, removedTmp: removed, usedBytes: this.usedBytes }, 'store_opened');
  }

  /** The version trailer of an object's sidecar (null: no sidecar, or one from before versions). */
  private async loadVersion(oid: bigint): Promise<ObjVersion | null> {
    const sc = await this.openSidecar(oid, 'r');
    if (!sc) return null;
    try {
      const b = Buffer.alloc(VER_TRAILER_SIZE);
      const n = await readFully(sc.f, b, 0, VER_TRAILER_SIZE, trailerOffset(sc.size));
      return n === VER_TRAILER_SIZE ? decodeVersionTrailer(b) : null;
    } finally {
      await sc.f.close();
    }
  }

  private async fileSize(file: string): Promise<number> {
    const f = await this.fs.open(file, 'r');
    try {
      return await f.size();
    } finally {
      await f.close();
    }
  }

  private file(oid: bigint): string {
    return path.join(this.objDir, oidHex(oid));
  }

  private sumFile(oid: bigint): string {
    return path.join(this.csumDir, oidHex(oid));
  }

  /** Run `fn` after every earlier mutation of `oid` has finished. */
  private async withLock<T>(oid: bigint, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(oid) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = prev.then(() => mine);
    this.locks.set(oid, chained);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(oid) === chained) this.locks.delete(oid);
    }
  }

  private corrupt(oid: bigint, block: number, source: string): CorruptError {
    this.stats.detected++;
    this.log.error({ oid: oidHex(oid), block, source }, 'object_corrupt');
    this.opts.onCorrupt?.(oid, 'corrupt');
    return new CorruptError(oid, block);
  }

  /** Open an object's sidecar, or null when it has none (a legacy object, served unverified). */
  private async openSidecar(oid: bigint, flags: 'r' | 'r+'): Promise<Sidecar | null> {
    let f: StoreFile;
    try {
      f = await this.fs.open(this.sumFile(oid), flags);
    } catch (err) {
      if (isNoEnt(err)) return null;
      throw err;
    }
    const h = Buffer.alloc(CSUM_HEADER_SIZE);
    const size = (await readFully(f, h, 0, CSUM_HEADER_SIZE, 0)) === CSUM_HEADER_SIZE ? decodeCsumHeader(h) : null;
    if (size === null) {
      await f.close();
      throw new Mismatch(-1);
    }
    return { f, size };
  }

  private async readEntries(sc: Sidecar, first: number, count: number): Promise<CsumEntry[]> {
    const b = Buffer.alloc(count * CSUM_ENTRY_SIZE);
    const n = await readFully(sc.f, b, 0, b.length, entryOffset(first));
    return decodeEntries(b.subarray(0, n - (n % CSUM_ENTRY_SIZE)));
  }

  /**
   * Read [offset, offset+length) of an open object, verifying every block it touches. Bytes past the object
   * size (or past the end of a short file) read as zeros.
   */
  private async readVerified(f: StoreFile, sc: Sidecar | null, offset: number, length: number): Promise<Buffer> {
    if (!sc || length === 0 || offset >= sc.size) {
      const out = Buffer.allocUnsafe(length);
      out.fill(0, await readFully(f, out, 0, length, offset));
      return out;
    }
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
      const blk = buf.subarray(o, o + blockLength(sc.size, i));
      if (!entryAccepts(entries[i - first], blockCrc(blk))) throw new Mismatch(i);
    }
    return buf.subarray(offset - start, offset - start + length);
  }

  create(oid: bigint, size: number, data: Buffer, offset: number, ver: ObjVersion, base?: Buffer): Promise<void> {
    return this.withLock(oid, async () => {
      const n = ++this.tmpCounter;
      const tmp = `${this.file(oid)}.tmp.${process.pid}.${n}`;
      const sumTmp = `${this.sumFile(oid)}.tmp.${process.pid}.${n}`;
      const oldSize = this.objects.get(oid);
      const reserve = oldSize === undefined ? size : Math.max(0, size - oldSize);
      const cap = this.opts.capacityBytes;
      if (cap !== undefined && cap > 0 && this.usedBytes + reserve > cap) {
        throw new StoreError(SD_RES_NO_SPACE, `create ${oidHex(oid)}: store capacity ${cap} bytes reached`);
      }
      this.usedBytes += reserve;
      try {
        const entries = this.contentCrcs(size, data, offset, base);
        if (oldSize !== undefined) await this.carryOldCrcs(oid, entries);
        await Promise.all([this.writeSidecar(sumTmp, size, entries, ver), this.writeObjectFile(tmp, size, data, offset, base)]);
        await this.fs.rename(sumTmp, this.sumFile(oid));
        this.files.invalidate(oid);
        await this.fs.syncDir(this.csumDir);
        await this.fs.rename(tmp, this.file(oid));
        this.files.invalidate(oid);
        await this.fs.syncDir(this.objDir);
        this.objects.set(oid, size);
        this.versions.set(oid, { ...ver });
        if (oldSize !== undefined) {
          const sc = await this.fs.open(this.sumFile(oid), 'r+');
          try {
            await this.forgetPrev(sc, 0, entries);
          } finally {
            await sc.close();
          }
        }
      } catch (err) {
        this.files.invalidate(oid);
        this.usedBytes -= reserve;
        await this.fs.rmrf(tmp).catch(() => undefined);
        await this.fs.rmrf(sumTmp).catch(() => undefined);
        throw storeError(err, `create ${oidHex(oid)}`);
      }
    });
  }

  private async writeObjectFile(tmp: string, size: number, data: Buffer, offset: number, base?: Buffer): Promise<void> {
    const f = await this.fs.open(tmp, 'w');
    try {
      if (base && base.length > 0) await writeFully(f, base.subarray(0, Math.min(base.length, size)), 0);
      await f.truncate(size);
      if (data.length > 0) await writeFully(f, data, offset);
      await f.sync();
    } finally {
      await f.close();
    }
  }

  private async writeSidecar(file: string, size: number, entries: CsumEntry[], ver: ObjVersion): Promise<void> {
    const f = await this.fs.open(file, 'w');
    try {
      await writeFully(f, Buffer.concat([encodeCsumHeader(size), encodeEntries(entries), encodeVersionTrailer(ver)]), 0);
      await f.sync();
    } finally {
      await f.close();
    }
  }

  /** CRCs of the blocks of a new object: base bytes, then `data` at `offset`, zeros elsewhere. */
  private contentCrcs(size: number, data: Buffer, offset: number, base?: Buffer): CsumEntry[] {
    const baseLen = base ? Math.min(base.length, size) : 0;
    const scratch = Buffer.alloc(CSUM_BLOCK);
    const out: CsumEntry[] = [];
    for (let i = 0; i < blockCount(size); i++) {
      const s = i * CSUM_BLOCK;
      const len = blockLength(size, i);
      const e = s + len;
      const touchesBase = s < baseLen;
      const touchesData = data.length > 0 && s < offset + data.length && e > offset;
      let crc: number;
      if (!touchesBase && !touchesData) crc = zeroCrc(len);
      else {
        const blk = scratch.subarray(0, len);
        blk.fill(0);
        if (touchesBase && base) base.copy(blk, 0, s, Math.min(e, baseLen));
        if (touchesData) data.copy(blk, Math.max(0, offset - s), Math.max(0, s - offset), Math.min(data.length, e - offset));
        crc = blockCrc(blk);
      }
      out.push({ cur: crc, prev: crc });
    }
    return out;
  }

  /** For a create that replaces an object: also accept the old bytes until the rename is durable. */
  private async carryOldCrcs(oid: bigint, entries: CsumEntry[]): Promise<void> {
    const sc = await this.openSidecar(oid, 'r').catch(() => null);
    if (!sc) return;
    try {
      const old = await this.readEntries(sc, 0, Math.min(entries.length, blockCount(sc.size)));
      old.forEach((o, i) => {
        const e = entries[i];
        if (e && blockLength(sc.size, i) === CSUM_BLOCK) e.prev = o.cur;
      });
    } finally {
      await sc.f.close();
    }
  }

  write(oid: bigint, data: Buffer, offset: number, ver: ObjVersion): Promise<void> {
    return this.withLock(oid, async () => {
      try {
        await this.withFiles(oid, async (f, sc) => {
          if (sc && data.length > 0 && offset < sc.size) await this.writeChecked(oid, f, sc, data, offset, ver);
          else {
            if (sc) await this.writeTrailer(sc, ver);
            await writeFully(f, data, offset);
            await f.datasync();
          }
        });
        if (this.objects.has(oid)) this.versions.set(oid, { ...ver });
      } catch (err) {
        throw storeError(err, `write ${oidHex(oid)}`);
      }
    });
  }

  /** Make `ver` the durable version of an open sidecar. */
  private async writeTrailer(sc: Sidecar, ver: ObjVersion): Promise<void> {
    await writeFully(sc.f, encodeVersionTrailer(ver), trailerOffset(sc.size));
    await sc.f.datasync();
  }

  version(oid: bigint): ObjVersion | null {
    if (!this.objects.has(oid)) return null;
    const v = this.versions.get(oid);
    return v ? { ...v } : { ...NO_VERSION };
  }

  setVersion(oid: bigint, ver: ObjVersion): Promise<void> {
    return this.withLock(oid, async () => {
      if (!this.objects.has(oid)) throw new StoreError(SD_RES_NO_OBJ, `version of ${oidHex(oid)}: no such object`);
      try {
        await this.withFiles(oid, async (_f, sc) => {
          if (sc) await this.writeTrailer(sc, ver);
        });
      } catch (err) {
        throw storeError(err, `set version ${oidHex(oid)}`);
      }
      this.versions.set(oid, { ...ver });
    });
  }

  /** Sidecar first (old and new CRCs, synced), then the data: the sidecar on disk accepts either state. */
  private async writeChecked(oid: bigint, f: StoreFile, sc: Sidecar, data: Buffer, offset: number, ver: ObjVersion): Promise<void> {
    const first = Math.floor(offset / CSUM_BLOCK);
    const last = Math.ceil(Math.min(offset + data.length, sc.size) / CSUM_BLOCK);
    const start = first * CSUM_BLOCK;
    const span = Math.min(last * CSUM_BLOCK, sc.size) - start;
    const buf = Buffer.alloc(span);
    await readFully(f, buf, 0, span, start);
    const old = await this.readEntries(sc, first, last - first);
    const next: CsumEntry[] = [];
    const newBuf = Buffer.from(buf);
    data.copy(newBuf, offset - start, 0, Math.min(data.length, span - (offset - start)));
    for (let i = first; i < last; i++) {
      const o = (i - first) * CSUM_BLOCK;
      const len = blockLength(sc.size, i);
      const oldCrc = blockCrc(buf.subarray(o, o + len));
      const newCrc = blockCrc(newBuf.subarray(o, o + len));
      const covered = offset <= i * CSUM_BLOCK && offset + data.length >= i * CSUM_BLOCK + len;
      const valid = entryAccepts(old[i - first], oldCrc);
      // A write that covers a corrupt block replaces it; a partial write into one would spread the damage.
      if (!valid && !covered) throw this.corrupt(oid, i, 'write');
      next.push({ cur: newCrc, prev: valid ? oldCrc : newCrc });
    }
    await writeFully(sc.f, encodeEntries(next), entryOffset(first));
    await writeFully(sc.f, encodeVersionTrailer(ver), trailerOffset(sc.size));
    await sc.f.datasync();
    try {
      await writeFully(f, data, offset);
      await f.datasync();
    } catch (err) {
      // The object may now hold old or new bytes per page: make the sidecar accept what is really there.
      await this.resyncEntries(f, sc, first, last, next).catch(() => undefined);
      throw err;
    }
    await this.forgetPrev(sc.f, first, next);
  }

  /**
   * Once the new bytes are durable, stop accepting the old ones (else a block reverting to its old content,
   * e.g. zeroed or truncated back to a hole, would pass). Not synced: if a crash loses this, the block only
   * keeps accepting its previous content a while longer.
   */
  private async forgetPrev(f: StoreFile, first: number, entries: CsumEntry[]): Promise<void> {
    if (entries.every((e) => e.prev === e.cur)) return;
    await writeFully(f, encodeEntries(entries.map((e) => ({ cur: e.cur, prev: e.cur }))), entryOffset(first));
  }

  private async resyncEntries(f: StoreFile, sc: Sidecar, first: number, last: number, next: CsumEntry[]): Promise<void> {
    const start = first * CSUM_BLOCK;
    const span = Math.min(last * CSUM_BLOCK, sc.size) - start;
    const buf = Buffer.alloc(span);
    await readFully(f, buf, 0, span, start);
    const fixed = next.map((e, k) => {
      const o = k * CSUM_BLOCK;
      return { cur: blockCrc(buf.subarray(o, o + blockLength(sc.size, first + k))), prev: e.prev };
    });
    await writeFully(sc.f, encodeEntries(fixed), entryOffset(first));
    await sc.f.datasync();
  }

  /**
   * Run a verification; a mismatch may be a race with an overwrite or a replace finishing between reading the
   * bytes and reading the sidecar, so it is tried once more before it counts as corruption.
   */
  private async verified<T>(oid: bigint, source: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof Mismatch)) throw err;
    }
    try {
      return await fn();
    } catch (err) {
      if (err instanceof Mismatch) throw this.corrupt(oid, err.block, source);
      throw err;
    }
  }

  async read(oid: bigint, offset: number, length: number): Promise<Buffer> {
    try {
      return await this.verified(oid, 'read', () => this.readOnce(oid, offset, length));
    } catch (err) {
      throw storeError(err, `read ${oidHex(oid)}`);
    }
  }

  private readOnce(oid: bigint, offset: number, length: number): Promise<Buffer> {
    return this.withFiles(oid, (f, sc) => this.readVerified(f, sc, offset, length));
  }

  remove(oid: bigint): Promise<void> {
    return this.withLock(oid, async () => {
      try {
        await this.fs.unlink(this.file(oid));
      } catch (err) {
        if (isNoEnt(err)) this.forget(oid);
        throw storeError(err, `remove ${oidHex(oid)}`);
      } finally {
        this.files.invalidate(oid);
      }
      this.forget(oid);
      await this.fs.unlink(this.sumFile(oid)).catch(() => undefined);
    });
  }

  private forget(oid: bigint): void {
    this.usedBytes -= this.objects.get(oid) ?? 0;
    this.objects.delete(oid);
    this.versions.delete(oid);
  }

  exists(oid: bigint): boolean {
    return this.objects.has(oid);
  }

  list(): bigint[] {
    return [...this.objects.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** SHA-1 of the object data at `size` bytes (zero-padded); every block is verified on the way. */
  async hash(oid: bigint, size: number): Promise<Buffer> {
    try {
      return await this.verified(oid, 'hash', () => this.hashOnce(oid, size));
    } catch (err) {
      throw storeError(err, `hash ${oidHex(oid)}`);
    }
  }

  private async hashOnce(oid: bigint, size: number): Promise<Buffer> {
    const h = createHash('sha1');
    await this.withFiles(oid, async (f, sc) => {
      for (let off = 0; off < size; off += HASH_CHUNK) h.update(await this.readVerified(f, sc, off, Math.min(HASH_CHUNK, size - off)));
    });
    return h.digest();
  }

  moveToStale(oid: bigint, epoch: number): Promise<void> {
    return this.withLock(oid, async () => {
      try {
        await this.fs.rename(this.file(oid), path.join(this.staleDir, `${oidHex(oid)}.${epoch}`));
        this.files.invalidate(oid);
        this.forget(oid);
        await this.fs.unlink(this.sumFile(oid)).catch(() => undefined);
      } catch (err) {
        throw storeError(err, `stale ${oidHex(oid)}`);
      }
    });
  }

  async wipe(): Promise<void> {
    await this.fs.rmrf(this.objDir);
    this.files.invalidateAll();
    await this.fs.rmrf(this.csumDir);
    this.files.invalidateAll();
    await this.fs.mkdirp(this.staleDir);
    await this.fs.mkdirp(this.csumDir);
    this.objects.clear();
    this.versions.clear();
    this.usedBytes = 0;
    await this.fs.syncDir(this.objDir);
  }

  async space(): Promise<{ size: bigint; free: bigint }> {
    const real = await this.fs.statfs(this.baseDir);
    const cap = this.opts.capacityBytes;
    if (!cap) return real;
    const free = BigInt(Math.max(0, cap - this.usedBytes));
    return { size: BigInt(cap), free: free < real.free ? free : real.free };
  }

  /**
   * Verify every object against its sidecar. Corrupt and missing objects are counted, logged and reported to
   * onCorrupt; nothing is changed (repair needs a good replica, which only the cluster has).
   */
  scrub(): Promise<ScrubReport> {
    if (this.scrubbing) return this.scrubbing;
    const run = async (): Promise<ScrubReport> => {
      const rep: ScrubReport = { scanned: 0, corrupt: [], missing: [] };
      for (const oid of this.list()) {
        if (!this.objects.has(oid)) continue;
        rep.scanned++;
        try {
          await this.withLock(oid, () => this.verified(oid, 'scrub', () => this.verifyObject(oid)));
        } catch (err) {
          if (err instanceof CorruptError) rep.corrupt.push(oid);
          else if (isNoEnt(err) && this.objects.has(oid)) {
            rep.missing.push(oid);
            this.log.error({ oid: oidHex(oid) }, 'object_missing');
            this.opts.onCorrupt?.(oid, 'missing');
          } else if (!isNoEnt(err)) this.log.warn({ oid: oidHex(oid), err }, 'scrub_object_failed');
        }
      }
      this.stats.scrubs++;
      this.stats.scrubCorrupt += rep.corrupt.length;
      this.stats.scrubMissing += rep.missing.length;
      this.log.info({ scanned: rep.scanned, corrupt: rep.corrupt.length, missing: rep.missing.length }, 'scrub_done');
      return rep;
    };
    this.scrubbing = run().finally(() => (this.scrubbing = null));
    return this.scrubbing;
  }

  private async verifyObject(oid: bigint): Promise<void> {
    const f = await this.fs.open(this.file(oid), 'r');
    let sc: Sidecar | null = null;
    try {
      sc = await this.openSidecar(oid, 'r');
      if (!sc) return;
      for (let off = 0; off < sc.size; off += HASH_CHUNK) await this.readVerified(f, sc, off, Math.min(HASH_CHUNK, sc.size - off));
    } finally {
      await sc?.f.close();
      await f.close();
    }
  }

  async close(): Promise<void> {
    if (this.scrubTimer) clearInterval(this.scrubTimer);
    this.scrubTimer = null;
    await Promise.all([...this.locks.values()]).catch(() => undefined);
    await this.scrubbing?.catch(() => undefined);
    await this.files.closeAll();
  }
}
