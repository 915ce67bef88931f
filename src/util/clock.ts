// The time source of the front ends and the sheep client: `now` in milliseconds and timers. Production uses
// systemClock (Date.now and Node's timers, unref'd so a pending timer never keeps a process alive); tests and
// simulations use a ManualClock, whose time moves only when told, so timeouts, fences and probes are tested
// without sleeping and replay the same way every run.
// Invariant (ManualClock): timers fire in order of due time, then of creation; now() never goes back.

/** A timer handle of a Clock (opaque). */
export interface ClockTimer {
  readonly __clockTimer: true;
}

export interface Clock {
  /** Milliseconds since the epoch (the clock's own epoch for a ManualClock). */
  now(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  setInterval(fn: () => void, ms: number): ClockTimer;
  /** Cancel a timeout or an interval (undefined and already-fired timers are fine). */
  clear(t: ClockTimer | undefined): void;
  /** Resolves after `ms` (the system clock's keeps the process alive meanwhile; its timers do not). */
  sleep(ms: number): Promise<void>;
}

class SystemClock implements Clock {
  now(): number {
    return Date.now();
  }
  setTimeout(fn: () => void, ms: number): ClockTimer {
    return setTimeout(fn, ms).unref() as unknown as ClockTimer;
  }
  setInterval(fn: () => void, ms: number): ClockTimer {
    return setInterval(fn, ms).unref() as unknown as ClockTimer;
  }
  clear(t: ClockTimer | undefined): void {
    if (t !== undefined) clearTimeout(t as unknown as NodeJS.Timeout);
  }
  sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }
}

/** Wall-clock time and Node's timers. */
export const systemClock: Clock = new SystemClock();

interface ManualTimer extends ClockTimer {
  due: number;
  seq: number;
  every: number;
  fn: () => void;
  live: boolean;
}

/** A clock that moves only on advance(); for tests and simulations. */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: ManualTimer[] = [];

  constructor(start = 1_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.add(fn, ms, 0);
  }

  setInterval(fn: () => void, ms: number): ClockTimer {
    return this.add(fn, ms, Math.max(1, ms));
  }

  clear(t: ClockTimer | undefined): void {
    if (t === undefined) return;
    const m = t as ManualTimer;
    m.live = false;
    this.timers = this.timers.filter((x) => x !== m);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.setTimeout(r, ms));
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.length;
  }

  /** When the next timer is due, or undefined. */
  nextDue(): number | undefined {
    return this.timers[0]?.due;
  }

  /**
   * Move time forward by `ms`, firing every timer that falls due on the way at its own instant. Between timers
   * queued promise jobs and I/O callbacks already due run (one event-loop turn), so a chain of timeouts and the
   * work they start unfold as they would in real time.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`cannot move a clock by ${ms} ms`);
    const end = this.t + ms;
    await turn();
    for (;;) {
      const next = this.timers[0];
      if (next === undefined || next.due > end) break;
      this.timers.shift();
      this.t = Math.max(this.t, next.due);
      if (next.every > 0) {
        next.due += next.every;
        this.insert(next);
      } else next.live = false;
      next.fn();
      await turn();
    }
    this.t = end;
  }

  private add(fn: () => void, ms: number, every: number): ClockTimer {
    const m = { due: this.t + Math.max(0, ms), seq: this.seq++, every, fn, live: true } as ManualTimer;
    this.insert(m);
    return m;
  }

  private insert(m: ManualTimer): void {
    let i = this.timers.length;
    while (i > 0) {
      const p = this.timers[i - 1] as ManualTimer;
      if (p.due < m.due || (p.due === m.due && p.seq < m.seq)) break;
      i--;
    }
    this.timers.splice(i, 0, m);
  }
}

/** One event-loop turn: queued promise jobs and I/O callbacks that are ready run first. */
function turn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
