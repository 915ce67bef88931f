// The plain-file object store (fact sheet §10.7): `<dir>/obj/%016x`, one sparse file per object.
// - create = write `<oid>.tmp.<n>` (base bytes, payload, full-size truncate) + fsync, rename over the object,
//   fsync the directory: a crash leaves the old object or the new one, never a half-written one; leftover
//   temporaries are deleted by open();
// - write = pwrite + fdatasync before the promise resolves;
// - mutations of one oid are serialized (a re-sent CREATE racing the first one must not interleave).
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { SD_RES_EIO, SD_RES_NO_OBJ, SD_RES_NO_SPACE } from '../../proto/sheepdog/constants.js';
import { oidHex, parseOidHex } from '../../proto/sheepdog/oid.js';
import { componentLogger, type Logger } from '../../obs/log.js';
import { StoreError, type ObjectStore } from './store.js';

const HASH_CHUNK = 1 << 20;

/** Map a file-system error to the SD_RES code the wire sees (§3: ENOENT → NO_OBJ, ENOSPC → NO_SPACE, else EIO). */
function storeError(err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const result = code === 'ENOENT' ? SD_RES_NO_OBJ : code === 'ENOSPC' || code === 'EDQUOT' ? SD_RES_NO_SPACE : SD_RES_EIO;
  return new StoreError(result, `${what}: ${err instanceof Error ? err.message : String(err)}`);
}

export class PlainStore implements ObjectStore {
  readonly objDir: string;
  readonly staleDir: string;
  private readonly objects = new Set<bigint>();
  private readonly locks = new Map<bigint, Promise<void>>();
  private tmpCounter = 0;
  private readonly log: Logger;

  constructor(readonly baseDir: string, log?: Logger) {
    this.objDir = path.join(baseDir, 'obj');
    this.staleDir = path.join(this.objDir, '.stale');
    this.log = log ?? componentLogger('store');
  }

  async open(): Promise<void> {
    await fsp.mkdir(this.staleDir, { recursive: true });
    this.objects.clear();
    let removed = 0;
    for (const name of await fsp.readdir(this.objDir)) {
      const oid = parseOidHex(name);
      if (oid !== null) {
        this.objects.add(oid);
      } else if (name.includes('.tmp')) {
        await fsp.rm(path.join(this.objDir, name), { force: true });
        removed++;
      }
    }
    if (removed > 0) await this.syncDir();
    this.log.info({ objects: this.objects.size, removedTmp: removed }, 'store_opened');
  }

  private file(oid: bigint): string {
    return path.join(this.objDir, oidHex(oid));
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

  private async syncDir(): Promise<void> {
    const fh = await fsp.open(this.objDir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  create(oid: bigint, size: number, data: Buffer, offset: number, base?: Buffer): Promise<void> {
    return this.withLock(oid, async () => {
      const tmp = `${this.file(oid)}.tmp.${process.pid}.${++this.tmpCounter}`;
      try {
        const fh = await fsp.open(tmp, 'w', 0o644);
        try {
          if (base && base.length > 0) await writeAll(fh, base.subarray(0, Math.min(base.length, size)), 0);
          await fh.truncate(size);
          if (data.length > 0) await writeAll(fh, data, offset);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await fsp.rename(tmp, this.file(oid));
        await this.syncDir();
        this.objects.add(oid);
      } catch (err) {
        await fsp.rm(tmp, { force: true }).catch(() => undefined);
        throw storeError(err, `create ${oidHex(oid)}`);
      }
    });
  }

  write(oid: bigint, data: Buffer, offset: number): Promise<void> {
    return this.withLock(oid, async () => {
      try {
        const fh = await fsp.open(this.file(oid), 'r+');
        try {
          await writeAll(fh, data, offset);
          await fh.datasync();
        } finally {
          await fh.close();
        }
      } catch (err) {
        throw storeError(err, `write ${oidHex(oid)}`);
      }
    });
  }

  async read(oid: bigint, offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    try {
      const fh = await fsp.open(this.file(oid), 'r');
      try {
        let done = 0;
        while (done < length) {
          const { bytesRead } = await fh.read(out, done, length - done, offset + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw storeError(err, `read ${oidHex(oid)}`);
    }
    return out;
  }

  remove(oid: bigint): Promise<void> {
    return this.withLock(oid, async () => {
      try {
        await fsp.unlink(this.file(oid));
        this.objects.delete(oid);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.objects.delete(oid);
        throw storeError(err, `remove ${oidHex(oid)}`);
      }
    });
  }

  exists(oid: bigint): boolean {
    return this.objects.has(oid);
  }

  list(): bigint[] {
    return [...this.objects].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  async hash(oid: bigint, size: number): Promise<Buffer> {
    const h = createHash('sha1');
    try {
      const fh = await fsp.open(this.file(oid), 'r');
      try {
        const chunk = Buffer.alloc(HASH_CHUNK);
        for (let off = 0; off < size; off += HASH_CHUNK) {
          const n = Math.min(HASH_CHUNK, size - off);
          chunk.fill(0, 0, n);
          let done = 0;
          while (done < n) {
            const { bytesRead } = await fh.read(chunk, done, n - done, off + done);
            if (bytesRead === 0) break;
            done += bytesRead;
          }
          h.update(chunk.subarray(0, n));
        }
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw storeError(err, `hash ${oidHex(oid)}`);
    }
    return h.digest();
  }

  moveToStale(oid: bigint, epoch: number): Promise<void> {
    return this.withLock(oid, async () => {
      try {
        await fsp.rename(this.file(oid), path.join(this.staleDir, `${oidHex(oid)}.${epoch}`));
        this.objects.delete(oid);
      } catch (err) {
        throw storeError(err, `stale ${oidHex(oid)}`);
      }
    });
  }

  async wipe(): Promise<void> {
    await fsp.rm(this.objDir, { recursive: true, force: true });
    await fsp.mkdir(this.staleDir, { recursive: true });
    this.objects.clear();
    await this.syncDir();
  }

  async space(): Promise<{ size: bigint; free: bigint }> {
    const st = await fsp.statfs(this.baseDir);
    return { size: BigInt(st.blocks) * BigInt(st.bsize), free: BigInt(st.bavail) * BigInt(st.bsize) };
  }

  async close(): Promise<void> {
    await Promise.all([...this.locks.values()]).catch(() => undefined);
  }
}

async function writeAll(fh: fsp.FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
