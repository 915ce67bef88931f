// The write-ahead log of the journal store: one preallocated file used as a ring of checksummed records, with
// group commit. Layout (little-endian):
// - two superblock slots (at 0 and SB_SLOT), written alternately, the valid one with the highest generation
//   wins: where replay starts (tail position and the sequence number expected there) and the store id;
// - records from DATA_START on, each REC_ALIGN-aligned: an 80-byte header (magic, type, seq, the first seq of
//   its commit batch, oid, offset, object size, payload lengths, object version, a CRC32C of the payload and
//   one of the header), then the payload (base bytes, then data). A WRAP record fills the rest of the ring.
// Group commit: add() queues a record; one writer turns everything queued into contiguous writes and a single
// fdatasync, and every record of that batch settles after it; records added meanwhile form the next batch.
// Replay reads from the tail while the seq chain continues. A record that does not check out ends the log
// when nothing of a later batch follows it (a torn, never-acknowledged batch); if a later batch is on disk,
// its batch was synced, so the record is real corruption: reported, never applied.
import { crc32c } from '@node-rs/crc32';
import { randomBytes } from 'node:crypto';
import { SD_RES_EIO } from '../../proto/sheepdog/constants.js';
import { readFully, writeFully, type StoreFile, type StoreFs } from './fs.js';
import { StoreError, type ObjVersion } from './store.js';

export const REC_ALIGN = 512;
export const REC_HEADER = 80;
const SB_SLOT = 4096;
const SB_SIZE = 64;
export const DATA_START = 2 * SB_SLOT;
const REC_MAGIC = 0x524a4653; // 'SFJR'
const SB_MAGIC = 0x534a4653; // 'SFJS'
const SB_VERSION = 1;
const PREALLOC_CHUNK = 1 << 20;

export const REC_CREATE = 1;
export const REC_WRITE = 2;
export const REC_REMOVE = 3;
export const REC_STALE = 4;
export const REC_VERSION = 5;
export const REC_WRAP = 6;
/** A write that went straight to the object file: the record holds the new CRC of each block it covers. */
export const REC_DIRECT = 7;

/** What a record says; `aux` is the stale epoch of REC_STALE. */
export interface RecordBody {
  type: number;
  oid: bigint;
  offset: number;
  size: number;
  aux: number;
  ver: ObjVersion;
  base?: Buffer;
  data?: Buffer;
}

export interface LogRecord extends RecordBody {
  seq: number;
  pos: number;
  len: number;
}

/** A record whose header checks out but whose payload does not (and a later batch exists). */
export interface BadRecord {
  seq: number;
  pos: number;
  type: number;
  oid: bigint;
  size: number;
}

interface Pending {
  rec: LogRecord;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export function recordLength(base: number, data: number): number {
  return Math.ceil((REC_HEADER + base + data) / REC_ALIGN) * REC_ALIGN;
}

function encodeHeader(b: Buffer, r: LogRecord, batchStart: number, payloadCrc: number): void {
  b.fill(0, 0, REC_HEADER);
  b.writeUInt32LE(REC_MAGIC, 0);
  b.writeUInt16LE(r.type, 4);
  b.writeBigUInt64LE(BigInt(r.seq), 8);
  b.writeBigUInt64LE(BigInt(batchStart), 16);
  b.writeBigUInt64LE(r.oid, 24);
  b.writeUInt32LE(r.offset, 32);
  b.writeUInt32LE(r.size, 36);
  b.writeUInt32LE(r.data?.length ?? 0, 40);
  b.writeUInt32LE(r.base?.length ?? 0, 44);
  b.writeUInt32LE(r.ver.epoch >>> 0, 48);
  b.writeUInt32LE(r.ver.gen >>> 0, 52);
  b.writeUInt32LE(r.ver.current >>> 0, 56);
  b.writeUInt32LE(r.aux >>> 0, 60);
  b.writeUInt32LE(payloadCrc >>> 0, 64);
  b.writeUInt32LE(r.len, 68);
  b.writeUInt32LE(crc32c(b.subarray(0, 76)), 76);
}

interface Header {
  type: number;
  seq: number;
  batchStart: number;
  oid: bigint;
  offset: number;
  size: number;
  dataLen: number;
  baseLen: number;
  ver: ObjVersion;
  aux: number;
  payloadCrc: number;
  len: number;
}

function decodeHeader(b: Buffer): Header | null {
  if (b.length < REC_HEADER || b.readUInt32LE(0) !== REC_MAGIC) return null;
  if (crc32c(b.subarray(0, 76)) !== b.readUInt32LE(76)) return null;
  const h: Header = {
    type: b.readUInt16LE(4),
    seq: Number(b.readBigUInt64LE(8)),
    batchStart: Number(b.readBigUInt64LE(16)),
    oid: b.readBigUInt64LE(24),
    offset: b.readUInt32LE(32),
    size: b.readUInt32LE(36),
    dataLen: b.readUInt32LE(40),
    baseLen: b.readUInt32LE(44),
    ver: { epoch: b.readUInt32LE(48), gen: b.readUInt32LE(52), current: b.readUInt32LE(56) },
    aux: b.readUInt32LE(60),
    payloadCrc: b.readUInt32LE(64),
    len: b.readUInt32LE(68),
  };
  if (h.len < REC_HEADER || h.len % REC_ALIGN !== 0) return null;
  if (h.type !== REC_WRAP && h.len !== recordLength(h.baseLen, h.dataLen)) return null;
  return h;
}

interface Superblock {
  gen: number;
  /** Written by a clean close with nothing after the tail: replay reads nothing. */
  clean: boolean;
  tail: number;
  tailSeq: number;
  size: number;
  id: Buffer;
}

function encodeSuper(sb: Superblock): Buffer {
  const b = Buffer.alloc(SB_SIZE);
  b.writeUInt32LE(SB_MAGIC, 0);
  b.writeUInt32LE(SB_VERSION, 4);
  b.writeBigUInt64LE(BigInt(sb.gen), 8);
  b.writeBigUInt64LE(BigInt(sb.tail), 16);
  b.writeBigUInt64LE(BigInt(sb.tailSeq), 24);
  b.writeBigUInt64LE(BigInt(sb.size), 32);
  sb.id.copy(b, 40, 0, 16);
  b.writeUInt32LE(sb.clean ? 1 : 0, 56);
  b.writeUInt32LE(crc32c(b.subarray(0, 60)), 60);
  return b;
}

function decodeSuper(b: Buffer): Superblock | null {
  if (b.length < SB_SIZE || b.readUInt32LE(0) !== SB_MAGIC || b.readUInt32LE(4) !== SB_VERSION) return null;
  if (crc32c(b.subarray(0, 60)) !== b.readUInt32LE(60)) return null;
  return {
    gen: Number(b.readBigUInt64LE(8)),
    tail: Number(b.readBigUInt64LE(16)),
    tailSeq: Number(b.readBigUInt64LE(24)),
    size: Number(b.readBigUInt64LE(32)),
    id: Buffer.from(b.subarray(40, 56)),
    clean: b.readUInt32LE(56) === 1,
  };
}

function walError(what: string): StoreError {
  return new StoreError(SD_RES_EIO, `journal ${what}`);
}

export class Wal {
  private f: StoreFile | null = null;
  private sb: Superblock = { clean: false, gen: 0, tail: DATA_START, tailSeq: 1, size: 0, id: Buffer.alloc(16) };
  /** Where the next record goes, and its seq. */
  private head = DATA_START;
  private nextSeq = 1;
  private queue: Pending[] = [];
  private writing: Promise<void> | null = null;
  private failure: unknown = null;
  /** Batches and syncs done (for tests and reports). */
  readonly stats = { batches: 0, records: 0 };
  /** Called with each batch once it is durable, in seq order (before the records' promises settle). */
  onDurable: (recs: LogRecord[]) => void = () => undefined;

  constructor(
    private readonly fs: StoreFs,
    readonly file: string,
    readonly size: number,
  ) {
    if (size < DATA_START + 8 * REC_ALIGN || size % REC_ALIGN !== 0) throw new Error(`journal size ${size}: at least ${DATA_START + 8 * REC_ALIGN} bytes, a multiple of ${REC_ALIGN}`);
  }

  /** The seq of the oldest record replay would still read. */
  get tailSeq(): number {
    return this.sb.tailSeq;
  }

  get id(): Buffer {
    return this.sb.id;
  }

  /** Bytes of records between the tail and the head (what a checkpoint can free). */
  used(): number {
    const { tail } = this.sb;
    return this.head >= tail ? this.head - tail : this.size - tail + (this.head - DATA_START);
  }

  /** Room for a record of `len` bytes (and the WRAP before it, if it must wrap) without reaching the tail. */
  fits(len: number): boolean {
    const { tail } = this.sb;
    if (this.head >= tail) {
      if (this.head + len <= this.size) return true;
      return DATA_START + len < tail;
    }
    return this.head + len < tail;
  }

  /** Largest record that fits in an empty log. */
  get maxRecord(): number {
    return this.size - DATA_START - REC_ALIGN;
  }

  /** Open an existing log; null when the file does not exist. */
  async openExisting(): Promise<boolean> {
    try {
      this.f = await this.fs.open(this.file, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') return false;
      throw err;
    }
    const slots = [0, SB_SLOT].map(async (at) => {
      const b = Buffer.alloc(SB_SIZE);
      await readFully(this.f!, b, 0, SB_SIZE, at);
      return decodeSuper(b);
    });
    const found = (await Promise.all(slots)).filter((s): s is Superblock => s !== null);
    const best = found.sort((a, b) => b.gen - a.gen)[0];
    if (!best) throw walError(`${this.file}: no valid superblock (not a journal, or damaged)`);
    if (best.size !== this.size) throw walError(`${this.file} is ${best.size} bytes, configured ${this.size}: start with the journal size it was made with`);
    this.sb = best;
    this.head = best.tail;
    this.nextSeq = best.tailSeq;
    return true;
  }

  /** Make a new log: zero-filled to its full size (later overwrites allocate nothing), superblock, synced. */
  async create(): Promise<void> {
    const f = await this.fs.open(this.file, 'w');
    this.f = f;
    const zero = Buffer.alloc(Math.min(PREALLOC_CHUNK, this.size));
    for (let at = 0; at < this.size; at += zero.length) await writeFully(f, zero.subarray(0, Math.min(zero.length, this.size - at)), at);
    this.sb = { clean: true, gen: 1, tail: DATA_START, tailSeq: 1, size: this.size, id: randomBytes(16) };
    await writeFully(f, encodeSuper(this.sb), 0);
    await f.sync();
    await f.close();
    // 'w' opens write-only; replay and later use read it too.
    this.f = await this.fs.open(this.file, 'r+');
    this.head = DATA_START;
    this.nextSeq = 1;
  }

  /**
   * The records from the tail on, in order, ending at the first that does not check out unless a later batch
   * follows it. `bad` lists records whose payload is damaged though later batches exist (never to be applied).
   */
  async scan(): Promise<{ records: LogRecord[]; bad: BadRecord[] }> {
    if (this.sb.clean) {
      // Nothing follows the tail; from now on records may, so the superblock must stop saying so first.
      await this.setTail(this.sb.tail, this.sb.tailSeq);
      return { records: [], bad: [] };
    }
    const f = this.file_();
    const records: LogRecord[] = [];
    const bad: BadRecord[] = [];
    let pos = this.sb.tail;
    let expect = this.sb.tailSeq;
    const hb = Buffer.alloc(REC_HEADER);
    for (let steps = 0; ; steps++) {
      if (pos >= this.size) pos = DATA_START;
      if (steps > this.size / REC_ALIGN) throw walError(`${this.file}: record chain does not end`);
      const h = (await readFully(f, hb, 0, REC_HEADER, pos)) === REC_HEADER ? decodeHeader(hb) : null;
      let ok = h !== null && h.seq === expect && pos + h.len <= this.size;
      let payload: Buffer | null = null;
      if (ok && h && h.type !== REC_WRAP) {
        payload = Buffer.alloc(h.baseLen + h.dataLen);
        await readFully(f, payload, 0, payload.length, pos + REC_HEADER);
        ok = crc32c(payload) === h.payloadCrc;
      }
      if (!ok) {
        const later = await this.laterBatch(pos, expect);
        if (!later) break;
        if (!h || h.seq !== expect || h.type === REC_WRAP) {
          throw walError(`${this.file}: the record at offset ${pos} (seq ${expect}) is damaged and later synced records follow; this store cannot be replayed: remove it and let recovery rebuild this node's objects`);
        }
        bad.push({ seq: h.seq, pos, type: h.type, oid: h.oid, size: h.size });
      } else if (h && h.type !== REC_WRAP && payload) {
        records.push({
          type: h.type,
          oid: h.oid,
          offset: h.offset,
          size: h.size,
          aux: h.aux,
          ver: h.ver,
          seq: h.seq,
          pos,
          len: h.len,
          ...(h.baseLen > 0 ? { base: payload.subarray(0, h.baseLen) } : {}),
          ...(h.dataLen > 0 ? { data: payload.subarray(h.baseLen) } : {}),
        });
      }
      pos += h!.len;
      expect++;
    }
    this.head = pos >= this.size ? DATA_START : pos;
    this.nextSeq = expect;
    return { records, bad };
  }

  /** A record of a batch after `seq`'s batch somewhere past `from` (up to the tail): then that batch was synced. */
  private async laterBatch(from: number, seq: number): Promise<boolean> {
    const f = this.file_();
    const chunk = Buffer.alloc(PREALLOC_CHUNK);
    const tail = this.sb.tail;
    // Walk the ring from the record after `from` to the tail, reading a chunk at a time.
    let at = from + REC_ALIGN;
    let left = this.size - DATA_START - REC_ALIGN;
    while (left > 0) {
      if (at >= this.size) at = DATA_START;
      const stop = at < tail ? Math.min(tail, this.size) : this.size;
      const n = Math.min(chunk.length, stop - at, left);
      if (n <= 0) break;
      const got = await readFully(f, chunk, 0, n, at);
      for (let o = 0; o + REC_HEADER <= got; o += REC_ALIGN) {
        const h = chunk.readUInt32LE(o) === REC_MAGIC ? decodeHeader(chunk.subarray(o, o + REC_HEADER)) : null;
        if (h && h.seq > seq && h.batchStart > seq) return true;
      }
      at += n;
      left -= n;
      if (at === tail) break;
    }
    return false;
  }

  private file_(): StoreFile {
    if (!this.f) throw walError('not open');
    return this.f;
  }

  /** Queue a record (the caller checked fits()); resolves once a covering fdatasync has returned. */
  add(body: RecordBody): { rec: LogRecord; durable: Promise<void> } {
    if (this.failure) throw this.failure;
    const len = recordLength(body.base?.length ?? 0, body.data?.length ?? 0);
    if (!this.fits(len)) throw walError('record does not fit (caller must wait for room)');
    if (this.head + len > this.size) {
      if (this.head < this.size) {
        const wrap: LogRecord = { type: REC_WRAP, oid: 0n, offset: 0, size: 0, aux: 0, ver: { epoch: 0, gen: 0, current: 0 }, seq: this.nextSeq++, pos: this.head, len: this.size - this.head };
        this.queue.push({ rec: wrap, resolve: () => undefined, reject: () => undefined });
      }
      this.head = DATA_START;
    }
    const rec: LogRecord = { ...body, seq: this.nextSeq++, pos: this.head, len };
    this.head += len;
    let p!: Pending;
    const durable = new Promise<void>((resolve, reject) => (p = { rec, resolve, reject }));
    this.queue.push(p);
    if (!this.writing) this.writing = this.writeLoop();
    return { rec, durable };
  }

  /** Write what is queued as one batch, one fdatasync; repeat while more arrived meanwhile. */
  private async writeLoop(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.failure) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.writeBatch(batch);
          await this.file_().datasync();
        } catch (err) {
          this.failure = err;
          for (const p of [...batch, ...this.queue]) p.reject(err);
          this.queue = [];
          return;
        }
        this.stats.batches++;
        this.stats.records += batch.length;
        this.onDurable(batch.map((p) => p.rec));
        for (const p of batch) p.resolve();
      }
    } finally {
      this.writing = null;
    }
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    const first = batch[0]!.rec.seq;
    let i = 0;
    while (i < batch.length) {
      let j = i + 1;
      while (j < batch.length && batch[j]!.rec.pos === batch[j - 1]!.rec.pos + batch[j - 1]!.rec.len) j++;
      const start = batch[i]!.rec.pos;
      const end = batch[j - 1]!.rec.pos + batch[j - 1]!.rec.len;
      const buf = Buffer.allocUnsafe(end - start);
      for (let k = i; k < j; k++) this.encode(buf.subarray(batch[k]!.rec.pos - start), batch[k]!.rec, first);
      await writeFully(this.file_(), buf, start);
      i = j;
    }
  }

  private encode(b: Buffer, r: LogRecord, batchStart: number): void {
    if (r.type === REC_WRAP) {
      encodeHeader(b, r, batchStart, 0);
      return;
    }
    let at = REC_HEADER;
    let crc = 0;
    for (const part of [r.base, r.data]) {
      if (!part || part.length === 0) continue;
      part.copy(b, at);
      crc = crc32c(part, crc);
      at += part.length;
    }
    b.fill(0, at, r.len);
    encodeHeader(b, r, batchStart, crc);
  }

  /** A batch write or sync failed: nothing more is accepted (what was in the page cache cannot be trusted). */
  get failed(): unknown {
    return this.failure;
  }

  /** Wait until everything queued so far has been written and synced (or failed). */
  async settle(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Free the log up to `pos` (the end of the last record applied and synced), whose next seq is `seq`. */
  async setTail(pos: number, seq: number): Promise<void> {
    const f = this.file_();
    const tail = pos >= this.size ? DATA_START : pos;
    const next: Superblock = { ...this.sb, clean: false, gen: this.sb.gen + 1, tail, tailSeq: seq };
    await writeFully(f, encodeSuper(next), next.gen % 2 === 0 ? SB_SLOT : 0);
    await f.datasync();
    this.sb = next;
  }

  /** After a wipe: nothing before the head is to be replayed. */
  async reset(): Promise<void> {
    await this.settle();
    await this.setTail(this.head, this.nextSeq);
  }

  /** Everything is written back and synced, the tail is at the head: the next open need not scan. */
  async markClean(): Promise<void> {
    await this.settle();
    if (this.failure || this.queue.length > 0) return;
    const f = this.file_();
    const next: Superblock = { ...this.sb, clean: true, gen: this.sb.gen + 1, tail: this.head, tailSeq: this.nextSeq };
    await writeFully(f, encodeSuper(next), next.gen % 2 === 0 ? SB_SLOT : 0);
    await f.datasync();
    this.sb = next;
  }

  async close(): Promise<void> {
    await this.settle();
    await this.f?.close();
    this.f = null;
  }
}
