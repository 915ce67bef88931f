// `dog vdi read NAME [OFFSET [LEN]]` and `dog vdi write NAME [OFFSET [LEN]]` (fact sheet §2.5): the full inode
// is read once, then the byte range is split per object and streamed. Reads keep a window of object reads in
// flight and write them to stdout in order (honouring backpressure). Writes read stdin piece by piece; an
// owned object gets WRITE_OBJ, an unallocated one CREATE_AND_WRITE_OBJ, an inherited one CREATE_AND_WRITE_OBJ
// with COW from the ancestor's object; each create is followed by the 4-byte index WRITE_OBJ at 4664+4*idx,
// exactly as dog does. Pieces are distinct objects, so the window never has two requests for one object.
import type { Readable, Writable } from 'node:stream';
import * as C from '../proto/sheepdog/constants.js';
import { dataVidOffset, vidToDataOid, vidToVdiOid, type Inode } from '../proto/sheepdog/index.js';
import type { SheepClient } from '../client/index.js';
import { DogError, EXIT_FAILURE, EXIT_SYSFAIL, type DogContext } from './context.js';
import { parseSizeArg } from './vdi.js';
import { openVdi, snapshotSelector } from './vdis.js';

/** Requests in flight for vdi read/write (each up to one object). */
export const IO_WINDOW = 8;

interface Piece {
  idx: number;
  /** offset inside the object */
  off: number;
  len: number;
}

/** Split [offset, offset+total) into per-object pieces. */
export function pieces(offset: bigint, total: bigint, objectSize: number): Piece[] {
  const out: Piece[] = [];
  const osz = BigInt(objectSize);
  let pos = offset;
  const end = offset + total;
  while (pos < end) {
    const idx = Number(pos / osz);
    const off = Number(pos % osz);
    const len = Number(BigInt(Math.min(objectSize - off, Number(end - pos))));
    out.push({ idx, off, len });
    pos += BigInt(len);
  }
  return out;
}

function rangeOf(inode: Inode, offsetText: string | undefined, lenText: string | undefined, what: 'Read' | 'Write'): { offset: bigint; total: bigint } {
  const offset = offsetText === undefined ? 0n : parseSizeArg(offsetText, 'offset');
  const len = lenText === undefined ? null : parseSizeArg(lenText, 'length');
  if (offset > inode.vdiSize) throw new DogError(`${what} offset is beyond the end of the VDI`, EXIT_FAILURE);
  const room = inode.vdiSize - offset;
  return { offset, total: len === null || len > room ? room : len };
}

/** Read one piece: zeros for an unallocated object, else the owning (possibly ancestor) object's bytes. */
async function readPiece(c: SheepClient, inode: Inode, p: Piece): Promise<Buffer> {
  const owner = inode.dataVdiId[p.idx] ?? 0;
  if (owner === 0) return Buffer.alloc(p.len);
  return c.readObj(vidToDataOid(owner, p.idx), p.len, { offset: p.off });
}

function writeOut(out: Writable, buf: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    out.once('error', onError);
    const ok = out.write(buf, (e) => {
      if (e) reject(e);
    });
    if (ok) {
      out.off('error', onError);
      resolve();
    } else
      out.once('drain', () => {
        out.off('error', onError);
        resolve();
      });
  });
}

export async function vdiRead(ctx: DogContext, name: string, offsetText: string | undefined, lenText: string | undefined, snap: string | undefined, out: Writable): Promise<void> {
  const c = ctx.client;
  const { inode } = await openVdi(c, name, snapshotSelector(snap));
  const { offset, total } = rangeOf(inode, offsetText, lenText, 'Read');
  const list = pieces(offset, total, 2 ** (inode.blockSizeShift || C.SD_DEFAULT_BLOCK_SIZE_SHIFT));
  const inflight: Promise<Buffer>[] = [];
  let next = 0;
  const fill = (): void => {
    while (inflight.length < IO_WINDOW && next < list.length) {
      const p = readPiece(c, inode, list[next++] as Piece);
      p.catch(() => undefined);
      inflight.push(p);
    }
  };
  fill();
  while (inflight.length > 0) {
    let buf: Buffer;
    try {
      buf = await (inflight.shift() as Promise<Buffer>);
    } catch (err) {
      throw new DogError(`Failed to read VDI ${name}: ${err instanceof Error ? err.message : String(err)}`, EXIT_FAILURE, { cause: err });
    }
    fill();
    try {
      await writeOut(out, buf);
    } catch (err) {
      if ((err as { code?: string }).code === 'EPIPE') return;
      throw new DogError(`Failed to write to stdout: ${err instanceof Error ? err.message : String(err)}`, EXIT_SYSFAIL, { cause: err });
    }
  }
}

/** Pulls exactly n bytes at a time from a stream (fewer only at EOF). */
export class ExactReader {
  private readonly it: AsyncIterator<Buffer | string>;
  private buf: Buffer = Buffer.alloc(0);
  private eof = false;
  constructor(src: Readable) {
    this.it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  }

  async read(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      if (this.buf.length === 0) {
        if (this.eof) break;
        const r = await this.it.next();
        if (r.done === true) {
          this.eof = true;
          break;
        }
        this.buf = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
        continue;
      }
      const k = Math.min(n - have, this.buf.length);
      parts.push(this.buf.subarray(0, k));
      this.buf = this.buf.subarray(k);
      have += k;
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, have);
  }
}

export async function vdiWrite(ctx: DogContext, name: string, offsetText: string | undefined, lenText: string | undefined, src: Readable): Promise<void> {
  const c = ctx.client;
  const { vid, inode } = await openVdi(c, name, {});
  const { offset, total } = rangeOf(inode, offsetText, lenText, 'Write');
  const list = pieces(offset, total, 2 ** (inode.blockSizeShift || C.SD_DEFAULT_BLOCK_SIZE_SHIFT));
  const reader = new ExactReader(src);
  const inflight = new Set<Promise<void>>();
  let failure: unknown = null;
  let written = 0;
  let created = 0;
  const writePiece = async (p: Piece, data: Buffer): Promise<void> => {
    const owner = inode.dataVdiId[p.idx] ?? 0;
    const oid = vidToDataOid(vid, p.idx);
    if (owner === vid) {
      await c.writeObj(oid, data, { offset: p.off, copies: inode.nrCopies });
      return;
    }
    const cowOid = owner === 0 ? undefined : vidToDataOid(owner, p.idx);
    await c.createAndWriteObj(oid, data, { offset: p.off, copies: inode.nrCopies, ...(cowOid !== undefined ? { cowOid } : {}) });
    const entry = Buffer.alloc(4);
    entry.writeUInt32LE(vid);
    await c.writeObj(vidToVdiOid(vid), entry, { offset: dataVidOffset(p.idx), copies: inode.nrCopies });
    inode.dataVdiId[p.idx] = vid;
    created++;
  };
  for (const p of list) {
    if (failure !== null) break;
    let data: Buffer;
    try {
      data = await reader.read(p.len);
    } catch (err) {
      failure = new DogError(`Failed to read from stdin: ${err instanceof Error ? err.message : String(err)}`, EXIT_SYSFAIL);
      break;
    }
    if (data.length === 0) break;
    const piece = data.length === p.len ? p : { ...p, len: data.length };
    const task = writePiece(piece, data).then(
      () => {
        written += data.length;
      },
      (err: unknown) => {
        failure ??= err;
      },
    );
    inflight.add(task);
    void task.finally(() => inflight.delete(task));
    if (inflight.size >= IO_WINDOW) await Promise.race(inflight);
    if (data.length < p.len) break;
  }
  await Promise.all(inflight);
  if (failure !== null) {
    if (failure instanceof DogError) throw failure;
    throw new DogError(`Failed to write VDI ${name}: ${failure instanceof Error ? failure.message : String(failure)}`, EXIT_FAILURE, { cause: failure });
  }
  ctx.output({ name, vid, offset, written, objectsCreated: created }, '');
}
