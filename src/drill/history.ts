// History checker for block workloads (Jepsen-style): each block is a register. Writes carry unique values
// (writer:seq stamps); reads observe a value ('0' = never written). Checks, per block:
//  - corruption: a value no write produced, or a value read before its write began;
//  - stale read: a value older than a write that completed before the read began (`final` reads that do this
//    count as lost writes: an acknowledged write is gone after recovery);
//  - linearizability: a Wing–Gong search over overlapping operations (unknown-outcome writes may or may not
//    take effect), for what the cheap checks cannot decide (e.g. new-old inversions between reads).
// Times are monotonic numbers (ms or ns) from one clock. A write whose outcome is unknown has complete = null.

export interface WriteOp {
  kind: 'write';
  block: number;
  value: string;
  invoke: number;
  /** Completion time of an acknowledged write; null if the outcome is unknown (error, timeout, crash). */
  complete: number | null;
}

export interface ReadOp {
  kind: 'read';
  block: number;
  /** Observed value: '0', a write's value, or 'garbage:<reason>'. */
  value: string;
  invoke: number;
  complete: number;
  /** A verification read after the faults ended: a stale result here is a lost write. */
  final?: boolean;
}

export type Op = WriteOp | ReadOp;

export interface Violation {
  kind: 'corrupt' | 'stale' | 'lost' | 'nonlinearizable';
  block: number;
  detail: string;
}

export interface CheckResult {
  ops: number;
  reads: number;
  writes: number;
  acknowledgedWrites: number;
  corrupt: number;
  staleReads: number;
  lostWrites: number;
  nonlinearizable: number;
  /** Blocks whose search hit the step budget: neither proven nor refuted. */
  undetermined: number;
  violations: Violation[];
}

export interface CheckOptions {
  /** Largest per-block history the linearizability search is attempted on. */
  maxSearchOps?: number;
  /** Step budget per block for the search. */
  searchBudget?: number;
  /** Keep at most this many violation details. */
  maxViolations?: number;
}

/** Check a whole history; blocks are independent registers (P-compositionality). */
export function checkHistory(history: readonly Op[], opts: CheckOptions = {}): CheckResult {
  const byBlock = new Map<number, Op[]>();
  for (const op of history) {
    let list = byBlock.get(op.block);
    if (!list) byBlock.set(op.block, (list = []));
    list.push(op);
  }
  const res: CheckResult = {
    ops: history.length,
    reads: 0,
    writes: 0,
    acknowledgedWrites: 0,
    corrupt: 0,
    staleReads: 0,
    lostWrites: 0,
    nonlinearizable: 0,
    undetermined: 0,
    violations: [],
  };
  const maxViolations = opts.maxViolations ?? 100;
  const add = (v: Violation): void => {
    if (v.kind === 'corrupt') res.corrupt++;
    else if (v.kind === 'stale') res.staleReads++;
    else if (v.kind === 'lost') res.lostWrites++;
    else res.nonlinearizable++;
    if (res.violations.length < maxViolations) res.violations.push(v);
  };
  for (const [block, ops] of byBlock) {
    const found = checkBlockCheap(block, ops, res, add);
    if (found) continue;
    if (ops.length > (opts.maxSearchOps ?? 400)) continue;
    const outcome = searchLinearizable(ops, opts.searchBudget ?? 200_000);
    if (outcome === 'no') add({ kind: 'nonlinearizable', block, detail: 'no linearization of this block history exists' });
    else if (outcome === 'unknown') res.undetermined++;
  }
  return res;
}

/** Cheap per-read checks; returns true if a violation was found on this block. */
function checkBlockCheap(block: number, ops: readonly Op[], res: CheckResult, add: (v: Violation) => void): boolean {
  const writes = new Map<string, WriteOp>();
  const acked: WriteOp[] = [];
  for (const op of ops) {
    if (op.kind !== 'write') continue;
    res.writes++;
    writes.set(op.value, op);
    if (op.complete !== null) {
      res.acknowledgedWrites++;
      acked.push(op);
    }
  }
  let found = false;
  for (const op of ops) {
    if (op.kind !== 'read') continue;
    res.reads++;
    const r = op;
    if (r.value.startsWith('garbage')) {
      add({ kind: 'corrupt', block, detail: `read at ${r.invoke} returned ${r.value}` });
      found = true;
      continue;
    }
    const w = r.value === '0' ? undefined : writes.get(r.value);
    if (r.value !== '0' && (w === undefined || w.invoke > r.complete)) {
      add({ kind: 'corrupt', block, detail: `read at ${r.invoke} returned ${r.value}, which no earlier write produced` });
      found = true;
      continue;
    }
    // Newer acknowledged write that finished before the read began, and strictly after the observed value.
    const newer = acked.find(
      (x) => x !== w && x.complete! < r.invoke && (w === undefined || (w.complete !== null && w.complete < x.invoke)),
    );
    if (newer) {
      add({
        kind: r.final ? 'lost' : 'stale',
        block,
        detail: `read at ${r.invoke} returned ${r.value} although ${newer.value} was acknowledged at ${newer.complete}`,
      });
      found = true;
    }
  }
  return found;
}

interface SOp {
  inv: number;
  resp: number; // Infinity for unknown-outcome writes
  write: boolean;
  value: string;
  optional: boolean;
}

/**
 * Wing–Gong linearizability search for one register with memoization on (linearized set, value).
 * Unknown-outcome writes are optional: they may be linearized anywhere after their invocation, or never.
 */
export function searchLinearizable(ops: readonly Op[], budget: number): 'yes' | 'no' | 'unknown' {
  const s: SOp[] = ops
    .map((o) => ({
      inv: o.invoke,
      resp: o.kind === 'write' ? (o.complete ?? Infinity) : o.complete,
      write: o.kind === 'write',
      value: o.value,
      optional: o.kind === 'write' && o.complete === null,
    }))
    .sort((a, b) => a.inv - b.inv);
  const n = s.length;
  const full = (1n << BigInt(n)) - 1n;
  const requiredMask = s.reduce((m, o, i) => (o.optional ? m : m | (1n << BigInt(i))), 0n);
  const seen = new Set<string>();
  let steps = 0;
  let exhausted = false;

  const dfs = (done: bigint, value: string): boolean => {
    if ((done & requiredMask) === requiredMask) return true;
    if (++steps > budget) {
      exhausted = true;
      return false;
    }
    const key = `${done.toString(36)}|${value}`;
    if (seen.has(key)) return false;
    seen.add(key);
    let minResp = Infinity;
    for (let i = 0; i < n; i++) if ((done & (1n << BigInt(i))) === 0n && s[i]!.resp < minResp) minResp = s[i]!.resp;
    for (let i = 0; i < n; i++) {
      const bit = 1n << BigInt(i);
      if ((done & bit) !== 0n) continue;
      const o = s[i]!;
      if (o.inv > minResp) break; // sorted by inv: no later op can be minimal either
      if (o.write) {
        if (dfs(done | bit, o.value)) return true;
      } else if (o.value === value) {
        if (dfs(done | bit, value)) return true;
      }
      if (exhausted) return false;
    }
    // Optional writes that were never linearized are allowed to have never happened: handled by requiredMask.
    return false;
  };
  if (n === 0 || full === 0n) return 'yes';
  const ok = dfs(0n, '0');
  if (ok) return 'yes';
  return exhausted ? 'unknown' : 'no';
}

/** One-line `k=v` summary of a check result, for RELIABILITY lines and drill reports. */
export function summarize(r: CheckResult): string {
  return [
    `ops=${r.ops}`,
    `acknowledged_writes=${r.acknowledgedWrites}`,
    `reads=${r.reads}`,
    `lost=${r.lostWrites}`,
    `stale=${r.staleReads}`,
    `corrupt=${r.corrupt}`,
    `nonlinearizable=${r.nonlinearizable}`,
    `undetermined=${r.undetermined}`,
  ].join(' ');
}
