// The file-system seam of the plain object store: every file operation the store makes goes through a
// StoreFs, so tests can inject a file system that forgets unsynced writes (CrashFs, crash-state replay) or
// fails with ENOSPC/EIO on demand. Errors carry a Node-style `code` ('ENOENT', 'ENOSPC', 'EIO', ...), which
// the store maps to SD_RES codes at one edge.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { parseOidHex } from '../../proto/sheepdog/oid.js';

/** An open file. Positions and lengths are bytes; read/write may be short, like pread/pwrite. */
export interface StoreFile {
  read(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  write(buf: Buffer, offset: number, length: number, position: number): Promise<number>;
  truncate(length: number): Promise<void>;
  /** fsync: data and metadata of this file on stable storage. */
  sync(): Promise<void>;
  /** fdatasync: the data (and the size) of this file on stable storage. */
  datasync(): Promise<void>;
  size(): Promise<number>;
  /** False once no directory entry names this file any more (deleted or renamed over); absent: assume named. */
  linked?(): Promise<boolean>;
  close(): Promise<void>;
}

/** The file operations of the store. `open` flags: 'r' read-only, 'r+' read-write, 'w' create or truncate. */
export interface StoreFs {
  open(file: string, flags: 'r' | 'r+' | 'w'): Promise<StoreFile>;
  rename(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  mkdirp(dir: string): Promise<void>;
  /** Remove a file or a directory tree; absent is fine. */
  rmrf(target: string): Promise<void>;
  /** fsync of a directory: its entries (creations, renames, unlinks) on stable storage. */
  syncDir(dir: string): Promise<void>;
  statfs(dir: string): Promise<{ size: bigint; free: bigint }>;
}

/** Build an Error with a Node-style errno code (for injected faults and in-memory file systems). */
export function fsError(code: string, what: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`${code}: ${what}`);
  e.code = code;
  return e;
}

/** The real file system (node:fs/promises). */
export class NodeStoreFs implements StoreFs {
  async open(file: string, flags: 'r' | 'r+' | 'w'): Promise<StoreFile> {
    const fh = await fsp.open(file, flags, 0o644);
    return {
      read: async (buf, offset, length, position) => (await fh.read(buf, offset, length, position)).bytesRead,
      write: async (buf, offset, length, position) => (await fh.write(buf, offset, length, position)).bytesWritten,
      truncate: (length) => fh.truncate(length),
      sync: () => fh.sync(),
      datasync: () => fh.datasync(),
      size: async () => (await fh.stat()).size,
      linked: async () => (await fh.stat()).nlink > 0,
      close: () => fh.close(),
    };
  }
  rename(from: string, to: string): Promise<void> {
    return fsp.rename(from, to);
  }
  unlink(file: string): Promise<void> {
    return fsp.unlink(file);
  }
  readdir(dir: string): Promise<string[]> {
    return fsp.readdir(dir);
  }
  async mkdirp(dir: string): Promise<void> {
    await fsp.mkdir(dir, { recursive: true });
  }
  rmrf(target: string): Promise<void> {
    return fsp.rm(target, { recursive: true, force: true });
  }
  async syncDir(dir: string): Promise<void> {
    const fh = await fsp.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
  async statfs(dir: string): Promise<{ size: bigint; free: bigint }> {
    const st = await fsp.statfs(dir);
    return { size: BigInt(st.blocks) * BigInt(st.bsize), free: BigInt(st.bavail) * BigInt(st.bsize) };
  }
}

/** Read exactly `length` bytes at `position` unless EOF comes first; returns the count read. */
export async function readFully(f: StoreFile, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const n = await f.read(buf, offset + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** Write all of `data` at `position` (pwrite may be short). */
export async function writeFully(f: StoreFile, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const n = await f.write(data, done, data.length - done, position + done);
    if (n <= 0) throw fsError('EIO', 'short write made no progress');
    done += n;
  }
}

/**
 * Delete every checksum sidecar in `csumDir` whose object `has` does not know (leftovers of an interrupted create
 * or remove); returns how many went.
 */
export async function removeOrphanSidecars(fs: StoreFs, csumDir: string, has: (oid: bigint) => boolean): Promise<number> {
  let removed = 0;
  for (const name of await fs.readdir(csumDir)) {
    const oid = parseOidHex(name);
    if (oid === null || !has(oid)) {
      await fs.rmrf(path.join(csumDir, name));
      removed++;
    }
  }
  return removed;
}
