// Per-device LBA range lock: makes COMPARE AND WRITE atomic against every other write to the same blocks on
// this target, whatever session it comes from. Ordinary writes take the range shared (they never wait for each
// other); COMPARE AND WRITE takes it exclusive. An interface so a cluster-wide lock (multipath: two target
// hosts on one VDI) can replace the in-process one later.

export type LockMode = 'shared' | 'exclusive';

export interface RangeLock {
  /** Wait until [start, start+length) (in bytes) can be held in `mode`; resolves to the release function. */
  acquire(start: number, length: number, mode: LockMode): Promise<() => void>;
}

interface Held {
  start: number;
  end: number;
  mode: LockMode;
}
interface Waiter extends Held {
  grant: () => void;
}

/** In-process range lock; waiters are granted in FIFO order among conflicting requests. */
export class LocalRangeLock implements RangeLock {
  private held: Held[] = [];
  private waiters: Waiter[] = [];

  acquire(start: number, length: number, mode: LockMode): Promise<() => void> {
    const want: Held = { start, end: start + Math.max(length, 1), mode };
    if (!this.conflicts(want, this.waiters.length)) return Promise.resolve(this.grant(want));
    return new Promise((resolve) => {
      this.waiters.push({ ...want, grant: () => resolve(this.grant(want)) });
    });
  }

  /** Whether `w` conflicts with a held range or with one of the first `nWaiters` queued waiters. */
  private conflicts(w: Held, nWaiters: number): boolean {
    const clash = (h: Held): boolean =>
      h.start < w.end && w.start < h.end && (h.mode === 'exclusive' || w.mode === 'exclusive');
    if (this.held.some(clash)) return true;
    for (let i = 0; i < nWaiters; i++) if (clash(this.waiters[i] as Held)) return true;
    return false;
  }

  private grant(h: Held): () => void {
    this.held.push(h);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const i = this.held.indexOf(h);
      if (i >= 0) this.held.splice(i, 1);
      this.wake();
    };
  }

  private wake(): void {
    for (let i = 0; i < this.waiters.length; ) {
      const w = this.waiters[i] as Waiter;
      if (!this.conflicts(w, i)) {
        this.waiters.splice(i, 1);
        w.grant();
      } else i++;
    }
  }
}
