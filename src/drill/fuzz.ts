// A small mutation fuzzer for in-process decoder fuzzing (issue 8, test 7): seeded and reproducible, it
// mutates golden seed inputs (bit flips, interesting integers in length fields, insertions, deletions,
// truncations, splices) and feeds them to a target. An error the target declares expected (a protocol
// rejection) is fine; any other exception is a crash; an execution slower than `hangMs` is a hang.

import { Rng } from '../util/rng.js';

export { Rng };

const INTERESTING32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe];

/** One random mutation of `input` (never modifies it). */
export function mutate(rng: Rng, input: Buffer, seeds: readonly Buffer[]): Buffer {
  const b = Buffer.from(input);
  const pos = (len = 1): number => (b.length > len ? rng.int(b.length - len + 1) : 0);
  switch (rng.int(11)) {
    case 0: {
      if (b.length === 0) return rng.bytes(1 + rng.int(64));
      const p = pos();
      b[p] = b[p]! ^ (1 << rng.int(8));
      return b;
    }
    case 1: {
      if (b.length === 0) return b;
      b[pos()] = [0, 0xff, 0x7f, 0x80, 1][rng.int(5)]!;
      return b;
    }
    case 2:
    case 3: {
      if (b.length < 4) return b;
      const v = INTERESTING32[rng.int(INTERESTING32.length)]!;
      const p = pos(4);
      if (rng.int(2) === 0) b.writeUInt32LE(v >>> 0, p);
      else b.writeUInt32BE(v >>> 0, p);
      return b;
    }
    case 4: {
      if (b.length < 2) return b;
      const p = pos(2);
      b.writeUInt16LE(rng.int(0x10000), p);
      return b;
    }
    case 5: {
      const p = pos(0);
      return Buffer.concat([b.subarray(0, p), rng.bytes(1 + rng.int(32)), b.subarray(p)]);
    }
    case 6: {
      if (b.length === 0) return b;
      const p = pos();
      const n = 1 + rng.int(Math.min(64, b.length - p));
      return Buffer.concat([b.subarray(0, p), b.subarray(p + n)]);
    }
    case 7:
      return b.subarray(0, rng.int(b.length + 1));
    case 8: {
      const other = seeds[rng.int(seeds.length)] ?? Buffer.alloc(0);
      const p = pos(0);
      return Buffer.concat([b.subarray(0, p), other.subarray(rng.int(other.length + 1))]);
    }
    case 9: {
      if (b.length === 0) return b;
      const p = pos();
      const n = 1 + rng.int(Math.min(32, b.length - p));
      return Buffer.concat([b.subarray(0, p + n), b.subarray(p, p + n), b.subarray(p + n)]);
    }
    default:
      return rng.bytes(rng.int(256));
  }
}

export interface FuzzTarget {
  name: string;
  seeds: Buffer[];
  /** Feed one input; may throw an expected error. */
  run(input: Buffer): void;
  /** True for the errors a correct decoder raises on bad input. */
  isExpectedError(err: unknown): boolean;
}

export interface FuzzReport {
  name: string;
  seed: number;
  execs: number;
  crashes: number;
  hangs: number;
  rejected: number;
  execsPerSec: number;
  slowestMs: number;
  firstCrash?: { inputHex: string; error: string };
}

export interface FuzzOptions {
  iterations: number;
  seed: number;
  /** An execution slower than this counts as a hang. */
  hangMs?: number;
  /** Stacked mutations per input: 1..maxStack. */
  maxStack?: number;
}

/** Run a target for a number of iterations from its seeds. */
export function fuzz(target: FuzzTarget, opts: FuzzOptions): FuzzReport {
  const rng = new Rng(opts.seed);
  const hangMs = opts.hangMs ?? 1000;
  const report: FuzzReport = {
    name: target.name,
    seed: opts.seed,
    execs: 0,
    crashes: 0,
    hangs: 0,
    rejected: 0,
    execsPerSec: 0,
    slowestMs: 0,
  };
  const start = performance.now();
  for (let i = 0; i < opts.iterations; i++) {
    let input = target.seeds[rng.int(target.seeds.length)] ?? Buffer.alloc(0);
    const stack = 1 + rng.int(opts.maxStack ?? 4);
    for (let k = 0; k < stack; k++) input = mutate(rng, input, target.seeds);
    const t0 = performance.now();
    try {
      target.run(input);
    } catch (err) {
      if (target.isExpectedError(err)) report.rejected++;
      else {
        report.crashes++;
        report.firstCrash ??= { inputHex: input.toString('hex').slice(0, 4096), error: String((err as Error)?.stack ?? err) };
      }
    }
    const dt = performance.now() - t0;
    if (dt > report.slowestMs) report.slowestMs = dt;
    if (dt > hangMs) report.hangs++;
    report.execs++;
  }
  const secs = (performance.now() - start) / 1000;
  report.execsPerSec = Math.round(report.execs / Math.max(secs, 1e-6));
  return report;
}
