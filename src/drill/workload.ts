// The verifying workload used by drills and reliability tests: W workers write stamped blocks and read them
// back through any block target (NBD client, iSCSI session, multipath device, BlockDevice), recording every
// operation with monotonic invoke/complete times for the history checker, and an I/O-rate timeline for the
// drill report. Write errors and timeouts leave the write's outcome unknown (it may or may not have landed);
// read errors count as unavailability. `verify()` re-reads every touched block as a final check.
import { checkHistory, type CheckResult, type Op } from './history.js';
import { classifyBlock, makeStampedBlock, valueKey } from './stamp.js';
import { Rng } from './fuzz.js';

/** The little a workload needs from a block target. */
export interface IoTarget {
  read(offset: number, length: number): Promise<Buffer>;
  write(offset: number, data: Buffer, opts?: { fua?: boolean }): Promise<void>;
  flush?(): Promise<void>;
}

export interface WorkloadOptions {
  /** Bytes per stamped block (multiple of 512, >= 512). */
  blockSize?: number;
  /** Number of blocks in the region the workers share. */
  blocks: number;
  /** Byte offset of the region on the device. */
  baseOffset?: number;
  workers?: number;
  /** Fraction of operations that are writes. */
  writeRatio?: number;
  /** Workers write only their own slice of blocks (no write contention) when true. */
  partitioned?: boolean;
  seed?: number;
  /** An operation not finished within this time is abandoned (its outcome stays unknown). */
  opTimeoutMs?: number;
  /** Pause between a worker's operations, for light background load. */
  thinkMs?: number;
  /** Monotonic clock in ms (injected for tests). */
  now?: () => number;
}

export interface TimelineBucket {
  /** Start of the bucket in ms since the workload started. */
  t: number;
  reads: number;
  writes: number;
  errors: number;
}

export interface WorkloadStats {
  reads: number;
  writes: number;
  acknowledgedWrites: number;
  readErrors: number;
  writeErrors: number;
  /** Longest span in ms without any successful operation while the workload ran. */
  longestStallMs: number;
}

const BUCKET_MS = 250;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  if (!Number.isFinite(ms) || ms <= 0) return p;
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`operation timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

export class Workload {
  readonly history: Op[] = [];
  readonly timeline: TimelineBucket[] = [];
  readonly stats: WorkloadStats = { reads: 0, writes: 0, acknowledgedWrites: 0, readErrors: 0, writeErrors: 0, longestStallMs: 0 };
  private readonly bs: number;
  private readonly base: number;
  private readonly workers: number;
  private readonly now: () => number;
  private readonly t0: number;
  private running = false;
  private loops: Promise<void>[] = [];
  private lastSuccess: number;
  private readonly touched = new Set<number>();

  private target: IoTarget;

  constructor(
    target: IoTarget,
    private readonly opts: WorkloadOptions,
  ) {
    this.target = target;
    this.bs = opts.blockSize ?? 4096;
    this.base = opts.baseOffset ?? 0;
    this.workers = opts.workers ?? 4;
    this.now = opts.now ?? (() => performance.now());
    this.t0 = this.now();
    this.lastSuccess = this.t0;
  }

  /** Start the workers; they run until stop(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (let w = 0; w < this.workers; w++) this.loops.push(this.loop(w));
  }

  /** Stop issuing operations and wait for the in-flight ones. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  /** Switch the I/O target (e.g. after a failover the test performs itself). */
  retarget(target: IoTarget): void {
    this.target = target;
  }

  private bucket(): TimelineBucket {
    const t = Math.floor((this.now() - this.t0) / BUCKET_MS) * BUCKET_MS;
    let b = this.timeline[this.timeline.length - 1];
    if (!b || b.t !== t) {
      b = { t, reads: 0, writes: 0, errors: 0 };
      this.timeline.push(b);
    }
    return b;
  }

  private success(): void {
    const now = this.now();
    this.stats.longestStallMs = Math.max(this.stats.longestStallMs, now - this.lastSuccess);
    this.lastSuccess = now;
  }

  private pickBlock(rng: Rng, worker: number): number {
    const n = this.opts.blocks;
    if (!this.opts.partitioned) return rng.int(n);
    const per = Math.max(1, Math.floor(n / this.workers));
    return Math.min(n - 1, worker * per + rng.int(per));
  }

  private async loop(worker: number): Promise<void> {
    const rng = new Rng((this.opts.seed ?? 1) * 1000 + worker);
    let seq = 0;
    const timeout = this.opts.opTimeoutMs ?? 30_000;
    while (this.running) {
      const block = this.pickBlock(rng, worker);
      const offset = this.base + block * this.bs;
      if (rng.int(1000) < (this.opts.writeRatio ?? 0.5) * 1000) {
        const s = ++seq;
        const data = makeStampedBlock({ writer: worker, seq: s, lba: block }, this.bs);
        const op: Op = { kind: 'write', block, value: `${worker}:${s}`, invoke: this.now(), complete: null };
        this.history.push(op);
        this.touched.add(block);
        this.stats.writes++;
        try {
          await withTimeout(this.target.write(offset, data), timeout);
          op.complete = this.now();
          this.stats.acknowledgedWrites++;
          this.bucket().writes++;
          this.success();
        } catch {
          this.stats.writeErrors++;
          this.bucket().errors++;
        }
      } else {
        const invoke = this.now();
        this.stats.reads++;
        try {
          const buf = await withTimeout(this.target.read(offset, this.bs), timeout);
          const complete = this.now();
          this.history.push({ kind: 'read', block, value: valueKey(classifyBlock(buf, block)), invoke, complete });
          this.bucket().reads++;
          this.success();
        } catch {
          this.stats.readErrors++;
          this.bucket().errors++;
        }
      }
      if (this.opts.thinkMs) await new Promise((r) => setTimeout(r, this.opts.thinkMs));
      // Yield to the event loop now and then: targets that complete in microtasks must not starve timers.
      else if ((seq & 15) === 0 || rng.int(16) === 0) await new Promise((r) => setImmediate(r));
    }
  }

  /** Re-read every touched block once (final reads) through `target` (default: the workload's target). */
  async verify(target: IoTarget = this.target): Promise<void> {
    for (const block of [...this.touched].sort((a, b) => a - b)) {
      const invoke = this.now();
      const buf = await target.read(this.base + block * this.bs, this.bs);
      this.history.push({ kind: 'read', block, value: valueKey(classifyBlock(buf, block)), invoke, complete: this.now(), final: true });
    }
  }

  /** Run the history checker over everything recorded so far. */
  check(): CheckResult {
    return checkHistory(this.history);
  }
}
