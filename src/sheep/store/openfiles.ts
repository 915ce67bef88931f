// A bounded LRU cache of open object files for the plain store: an object's data file and its checksum
// sidecar stay open between operations, so a read costs its preads and not an open/read-header/close of each.
// Correctness rests on invalidation: every store operation that makes an object path name another inode
// (a replacing create's rename, remove, moveToStale, wipe) calls invalidate() right after the path changed, and
// an open that was in flight at that moment is used by its own caller once and never cached, so no later
// operation is served from a replaced or removed file. A handle evicted or invalidated while an operation still
// uses it is closed when that operation releases it.

/** The open files of one object, shared by the operations that hold a reference to it. */
export interface OpenObject<F, S> {
  readonly obj: F;
  readonly sidecar: S;
  /** Handed out from the cache at least once (not only to the operation that opened it). */
  readonly reused?: boolean;
}

interface Entry<F, S> extends OpenObject<F, S> {
  reused: boolean;
  refs: number;
  /** Out of the cache (evicted or invalidated): closed once the last holder releases it. */
  dead: boolean;
}

/** One open in flight; `stale` is set when its object was invalidated before the open finished. */
interface Opening {
  stale: boolean;
}

export class OpenFileCache<F, S> {
  private readonly entries = new Map<bigint, Entry<F, S>>();
  private readonly opening = new Map<bigint, Set<Opening>>();
  private readonly held = new Map<OpenObject<F, S>, Entry<F, S>>();

  constructor(
    /** Most objects kept open (each holds up to two descriptors). */
    private readonly capacity: number,
    private readonly doOpen: (oid: bigint) => Promise<OpenObject<F, S>>,
    private readonly doClose: (o: OpenObject<F, S>) => Promise<void>,
  ) {}

  /** Objects currently cached (for tests). */
  get size(): number {
    return this.entries.size;
  }

  /** The open files of `oid` (opening them on a miss); the caller must release() them. */
  async acquire(oid: bigint): Promise<OpenObject<F, S>> {
    const hit = this.entries.get(oid);
    if (hit) {
      this.entries.delete(oid);
      this.entries.set(oid, hit);
      hit.refs++;
      hit.reused = true;
      this.held.set(hit, hit);
      return hit;
    }
    const token: Opening = { stale: false };
    let set = this.opening.get(oid);
    if (!set) this.opening.set(oid, (set = new Set()));
    set.add(token);
    let opened: OpenObject<F, S>;
    try {
      opened = await this.doOpen(oid);
    } finally {
      set.delete(token);
      if (set.size === 0 && this.opening.get(oid) === set) this.opening.delete(oid);
    }
    const entry: Entry<F, S> = { obj: opened.obj, sidecar: opened.sidecar, reused: false, refs: 1, dead: true };
    if (!token.stale && this.capacity > 0 && !this.entries.has(oid)) {
      entry.dead = false;
      this.entries.set(oid, entry);
      this.evict();
    }
    this.held.set(entry, entry);
    return entry;
  }

  /** Give back a reference from acquire(); `broken` drops the object from the cache (e.g. after an I/O error). */
  async release(o: OpenObject<F, S>, oid: bigint, broken = false): Promise<void> {
    const e = this.held.get(o);
    if (!e) return;
    if (broken && this.entries.get(oid) === e) {
      this.entries.delete(oid);
      e.dead = true;
    }
    e.refs--;
    if (e.refs === 0) {
      this.held.delete(e);
      if (e.dead) await this.doClose(e);
    }
  }

  /** The path of `oid` names another file now (or none): never serve it from what is open. */
  invalidate(oid: bigint): void {
    const e = this.entries.get(oid);
    if (e) void this.drop(oid, e);
    for (const t of this.opening.get(oid) ?? []) t.stale = true;
  }

  /** Every object path changed (wipe). */
  invalidateAll(): void {
    for (const [oid, e] of [...this.entries]) void this.drop(oid, e);
    for (const set of this.opening.values()) for (const t of set) t.stale = true;
  }

  /** Close everything no operation holds; what is held closes on release. */
  async closeAll(): Promise<void> {
    const closing = [...this.entries].map(([oid, e]) => this.drop(oid, e));
    for (const set of this.opening.values()) for (const t of set) t.stale = true;
    await Promise.all(closing);
  }

  /** Take an entry out of the cache; closes it now if nobody holds it (the promise settles when closed). */
  private drop(oid: bigint, e: Entry<F, S>): Promise<void> {
    this.entries.delete(oid);
    e.dead = true;
    return e.refs === 0 ? this.doClose(e).catch(() => undefined) : Promise.resolve();
  }

  private evict(): void {
    while (this.entries.size > this.capacity) {
      const first = this.entries.entries().next();
      if (first.done) return;
      const [oid, e] = first.value;
      void this.drop(oid, e);
    }
  }
}
