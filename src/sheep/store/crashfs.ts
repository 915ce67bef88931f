// CrashFs: an in-memory StoreFs for crash-consistency tests (issue 8, test 3). It keeps a log of every
// mutation and persistence point, in the manner of dm-log-writes/CrashMonkey, and can rebuild the file system
// a power cut would leave at any point of that log:
//  - file data and size changes are volatile until fsync/fdatasync of that file;
//  - directory entries (create, rename, unlink) are volatile until a syncDir, which commits every pending
//    entry change in order (a journalled file system commits its metadata in order);
//  - at the crash, a chosen subset of the volatile changes reaches the disk anyway: none ('synced'), all
//    ('all'), or a seeded random choice ('random': each 4 KiB page of each pending write independently, and a
//    prefix of the pending entry changes). Pages are the unit of atomicity (the page cache writes them back
//    whole), so a write is never torn inside a page.
// Unlike SIGKILL, which keeps the page cache, this models losing everything not yet synced.
import path from 'node:path';
import { Rng } from '../../util/rng.js';
import { fsError, type StoreFile, type StoreFs } from './fs.js';

const PAGE = 4096;

type LogEntry =
  | { t: 'write'; ino: number; pos: number; data: Buffer }
  | { t: 'trunc'; ino: number; len: number }
  | { t: 'fsync'; ino: number }
  | { t: 'link'; name: string; ino: number }
  | { t: 'rename'; from: string; to: string }
  | { t: 'unlink'; name: string }
  | { t: 'syncdir' };

export type CrashPolicy = 'synced' | 'all' | 'random';

/** Growable byte content of one inode. */
class Content {
  buf = Buffer.alloc(0);
  size = 0;
  clone(): Content {
    const c = new Content();
    c.buf = Buffer.from(this.buf.subarray(0, this.size));
    c.size = this.size;
    return c;
  }
  private ensure(n: number): void {
    if (n <= this.buf.length) return;
    const nb = Buffer.alloc(Math.max(n, this.buf.length * 2));
    this.buf.copy(nb, 0, 0, this.size);
    this.buf = nb;
  }
  write(pos: number, data: Buffer): void {
    this.ensure(pos + data.length);
    data.copy(this.buf, pos);
    this.size = Math.max(this.size, pos + data.length);
  }
  truncate(len: number): void {
    this.ensure(len);
    if (len < this.size) this.buf.fill(0, len, this.size);
    this.size = len;
  }
}

export class CrashFs implements StoreFs {
  private readonly names = new Map<string, number>();
  private readonly inodes = new Map<number, Content>();
  private readonly dirs = new Set<string>();
  private nextIno = 1;
  private readonly log: LogEntry[] = [];
  /** Test hook: throw this errno code from matching operations (e.g. ENOSPC on writes). */
  inject: ((op: 'write' | 'create' | 'sync', file: string) => string | null) | null = null;

  /** Number of log entries so far: a monotonic clock for histories. */
  get clock(): number {
    return this.log.length;
  }

  /** Log indices of the persistence points (fsync, fdatasync, syncDir). */
  syncPoints(): number[] {
    const out: number[] = [];
    this.log.forEach((e, i) => {
      if (e.t === 'fsync' || e.t === 'syncdir') out.push(i);
    });
    return out;
  }

  private check(op: 'write' | 'create' | 'sync', file: string): void {
    const code = this.inject?.(op, file);
    if (code) throw fsError(code, `${op} ${file}`);
  }

  private content(ino: number): Content {
    let c = this.inodes.get(ino);
    if (!c) this.inodes.set(ino, (c = new Content()));
    return c;
  }

  open(file: string, flags: 'r' | 'r+' | 'w'): Promise<StoreFile> {
    let ino = this.names.get(file);
    if (ino === undefined) {
      if (flags !== 'w') return Promise.reject(fsError('ENOENT', file));
      if (!this.dirs.has(path.dirname(file))) return Promise.reject(fsError('ENOENT', path.dirname(file)));
      this.check('create', file);
      ino = this.nextIno++;
      this.names.set(file, ino);
      this.log.push({ t: 'link', name: file, ino });
    } else if (flags === 'w') {
      this.content(ino).truncate(0);
      this.log.push({ t: 'trunc', ino, len: 0 });
    }
    const id = ino;
    const c = this.content(id);
    let closed = false;
    const live = (): void => {
      if (closed) throw fsError('EBADF', file);
    };
    const f: StoreFile = {
      read: (buf, offset, length, position) => {
        live();
        const n = Math.max(0, Math.min(length, c.size - position));
        if (n > 0) c.buf.copy(buf, offset, position, position + n);
        return Promise.resolve(n);
      },
      write: (buf, offset, length, position) => {
        live();
        if (flags === 'r') return Promise.reject(fsError('EBADF', file));
        this.check('write', file);
        const data = Buffer.from(buf.subarray(offset, offset + length));
        c.write(position, data);
        this.log.push({ t: 'write', ino: id, pos: position, data });
        return Promise.resolve(length);
      },
      truncate: (length) => {
        live();
        c.truncate(length);
        this.log.push({ t: 'trunc', ino: id, len: length });
        return Promise.resolve();
      },
      sync: () => {
        live();
        this.check('sync', file);
        this.log.push({ t: 'fsync', ino: id });
        return Promise.resolve();
      },
      datasync: () => f.sync(),
      size: () => Promise.resolve(c.size),
      linked: () => Promise.resolve([...this.names.values()].includes(id)),
      close: () => {
        closed = true;
        return Promise.resolve();
      },
    };
    return Promise.resolve(f);
  }

  rename(from: string, to: string): Promise<void> {
    const ino = this.names.get(from);
    if (ino === undefined) return Promise.reject(fsError('ENOENT', from));
    if (!this.dirs.has(path.dirname(to))) return Promise.reject(fsError('ENOENT', to));
    this.names.delete(from);
    this.names.set(to, ino);
    this.log.push({ t: 'rename', from, to });
    return Promise.resolve();
  }

  unlink(file: string): Promise<void> {
    if (!this.names.delete(file)) return Promise.reject(fsError('ENOENT', file));
    this.log.push({ t: 'unlink', name: file });
    return Promise.resolve();
  }

  readdir(dir: string): Promise<string[]> {
    if (!this.dirs.has(dir)) return Promise.reject(fsError('ENOENT', dir));
    const out = new Set<string>();
    for (const n of [...this.names.keys(), ...this.dirs]) if (path.dirname(n) === dir && n !== dir) out.add(path.basename(n));
    return Promise.resolve([...out]);
  }

  /** Directories are durable at once (the store creates them before any object). */
  mkdirp(dir: string): Promise<void> {
    for (let d = dir; !this.dirs.has(d); d = path.dirname(d)) {
      this.dirs.add(d);
      if (path.dirname(d) === d) break;
    }
    return Promise.resolve();
  }

  async rmrf(target: string): Promise<void> {
    for (const n of [...this.names.keys()]) if (n === target || n.startsWith(`${target}/`)) await this.unlink(n);
    for (const d of [...this.dirs]) if (d === target || d.startsWith(`${target}/`)) this.dirs.delete(d);
  }

  syncDir(dir: string): Promise<void> {
    if (!this.dirs.has(dir)) return Promise.reject(fsError('ENOENT', dir));
    this.check('sync', dir);
    this.log.push({ t: 'syncdir' });
    return Promise.resolve();
  }

  statfs(): Promise<{ size: bigint; free: bigint }> {
    return Promise.resolve({ size: 1n << 40n, free: 1n << 40n });
  }

  /**
   * The file system a power cut right after log entry `at` (inclusive) would leave, as a fresh CrashFs with
   * an empty log. `at` = clock - 1 is a crash at the end.
   */
  crashAt(at: number, policy: CrashPolicy, seed = 1): CrashFs {
    const r = new Rng(seed);
    const rand = (): number => r.next() / 0x100000000;
    const durable = new Map<number, Content>();
    const pending = new Map<number, LogEntry[]>();
    const names = new Map<string, number>();
    let pendingNames: LogEntry[] = [];
    const applyName = (e: LogEntry): void => {
      if (e.t === 'link') names.set(e.name, e.ino);
      else if (e.t === 'unlink') names.delete(e.name);
      else if (e.t === 'rename') {
        const ino = names.get(e.from);
        names.delete(e.from);
        // A rename of an entry whose creation never became durable moves nothing.
        if (ino !== undefined) names.set(e.to, ino);
        else names.delete(e.to);
      }
    };
    const dur = (ino: number): Content => {
      let c = durable.get(ino);
      if (!c) durable.set(ino, (c = new Content()));
      return c;
    };
    const applyData = (c: Content, e: LogEntry, pageFilter: (() => boolean) | null): void => {
      if (e.t === 'trunc') {
        if (!pageFilter || pageFilter()) c.truncate(e.len);
      } else if (e.t === 'write') {
        if (!pageFilter) return c.write(e.pos, e.data);
        for (let off = 0; off < e.data.length; ) {
          const pageEnd = (Math.floor((e.pos + off) / PAGE) + 1) * PAGE - e.pos;
          const end = Math.min(e.data.length, pageEnd);
          if (pageFilter()) c.write(e.pos + off, e.data.subarray(off, end));
          off = end;
        }
      }
    };
    for (let i = 0; i <= at && i < this.log.length; i++) {
      const e = this.log[i]!;
      switch (e.t) {
        case 'write':
        case 'trunc': {
          let p = pending.get(e.ino);
          if (!p) pending.set(e.ino, (p = []));
          p.push(e);
          break;
        }
        case 'fsync': {
          const c = dur(e.ino);
          for (const w of pending.get(e.ino) ?? []) applyData(c, w, null);
          pending.delete(e.ino);
          break;
        }
        case 'link':
        case 'rename':
        case 'unlink':
          pendingNames.push(e);
          break;
        case 'syncdir':
          for (const n of pendingNames) applyName(n);
          pendingNames = [];
          break;
      }
    }
    if (policy !== 'synced') {
      const keep = policy === 'all' ? pendingNames.length : Math.floor(rand() * (pendingNames.length + 1));
      for (const n of pendingNames.slice(0, keep)) applyName(n);
      for (const [ino, writes] of pending) {
        const c = dur(ino);
        for (const w of writes) applyData(c, w, policy === 'all' ? null : () => rand() < 0.5);
      }
    }
    const out = new CrashFs();
    for (const d of this.dirs) out.dirs.add(d);
    for (const [name, ino] of names) {
      out.names.set(name, ino);
      out.inodes.set(ino, (durable.get(ino) ?? new Content()).clone());
    }
    out.nextIno = this.nextIno;
    return out;
  }

  /** Direct access for corruption tests: the current bytes of a file (a copy), or null. */
  peek(file: string): Buffer | null {
    const ino = this.names.get(file);
    if (ino === undefined) return null;
    const c = this.content(ino);
    return Buffer.from(c.buf.subarray(0, c.size));
  }
}
