// Dirty tracking for short outages (seed 004): every node remembers, per object, the last epoch in which a
// client write, create or remove reached its store. A node that comes back after missing epochs asks its
// peers for the objects changed after the last epoch it was a member of and re-fetches only those; every
// other local copy is known current. A peer that started tracking later than that epoch cannot vouch for
// the gap and says so (`complete: false`), and the returning node then re-fetches everything it owns.
// TrackedStore wraps the object store seam without changing it: client-path mutations are recorded,
// recovery writes go to the inner store and are not (they copy, they do not change data).
import type { ObjectStore } from '../store/store.js';

export interface DirtyEntry {
  oid: bigint;
  epoch: number;
  removed: boolean;
}

export class DirtyTracker {
  private readonly entries = new Map<bigint, { epoch: number; removed: boolean }>();
  /** First epoch fully observed by this process (0 until it knows its epoch). */
  since = 0;

  record(oid: bigint, epoch: number, removed: boolean): void {
    this.entries.set(oid, { epoch, removed });
  }

  /** Objects changed in epochs > `after`; `complete` is false if this node did not watch all of them. */
  changedAfter(after: number): { complete: boolean; entries: DirtyEntry[] } {
    const out: DirtyEntry[] = [];
    for (const [oid, e] of this.entries) if (e.epoch > after) out.push({ oid, epoch: e.epoch, removed: e.removed });
    return { complete: this.since > 0 && this.since <= after + 1, entries: out };
  }

  reset(since: number): void {
    this.entries.clear();
    this.since = since;
  }
}

/** Wire form of a dirty report: u8 complete, 7 pad, then {u64 oid, u32 epoch, u8 removed, 3 pad} entries. */
export function encodeDirtyReport(r: { complete: boolean; entries: DirtyEntry[] }): Buffer {
  const out = Buffer.alloc(8 + 16 * r.entries.length);
  out.writeUInt8(r.complete ? 1 : 0, 0);
  r.entries.forEach((e, i) => {
    out.writeBigUInt64LE(e.oid, 8 + 16 * i);
    out.writeUInt32LE(e.epoch >>> 0, 16 + 16 * i);
    out.writeUInt8(e.removed ? 1 : 0, 20 + 16 * i);
  });
  return out;
}

export function decodeDirtyReport(b: Buffer): { complete: boolean; entries: DirtyEntry[] } {
  if (b.length < 8) return { complete: false, entries: [] };
  const entries: DirtyEntry[] = [];
  for (let off = 8; off + 16 <= b.length; off += 16) {
    entries.push({ oid: b.readBigUInt64LE(off), epoch: b.readUInt32LE(off + 8), removed: b.readUInt8(off + 12) !== 0 });
  }
  return { complete: b.readUInt8(0) === 1, entries };
}

/** The object store with client-path mutations recorded in a DirtyTracker. */
export class TrackedStore implements ObjectStore {
  constructor(
    readonly inner: ObjectStore,
    readonly tracker: DirtyTracker,
    private readonly epoch: () => number,
  ) {}

  open(): Promise<void> {
    return this.inner.open();
  }
  async create(oid: bigint, size: number, data: Buffer, offset: number, base?: Buffer): Promise<void> {
    await this.inner.create(oid, size, data, offset, base);
    this.tracker.record(oid, this.epoch(), false);
  }
  async write(oid: bigint, data: Buffer, offset: number): Promise<void> {
    await this.inner.write(oid, data, offset);
    this.tracker.record(oid, this.epoch(), false);
  }
  read(oid: bigint, offset: number, length: number): Promise<Buffer> {
    return this.inner.read(oid, offset, length);
  }
  async remove(oid: bigint): Promise<void> {
    try {
      await this.inner.remove(oid);
    } finally {
      this.tracker.record(oid, this.epoch(), true);
    }
  }
  exists(oid: bigint): boolean {
    return this.inner.exists(oid);
  }
  list(): bigint[] {
    return this.inner.list();
  }
  hash(oid: bigint, size: number): Promise<Buffer> {
    return this.inner.hash(oid, size);
  }
  moveToStale(oid: bigint, epoch: number): Promise<void> {
    return this.inner.moveToStale(oid, epoch);
  }
  wipe(): Promise<void> {
    return this.inner.wipe();
  }
  space(): Promise<{ size: bigint; free: bigint }> {
    return this.inner.space();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
