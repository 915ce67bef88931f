// Crash-state replay (issue 8, test 3): after a stamped workload ran over a CrashFs, rebuild the file system a
// power cut would have left at every persistence point (and under several "what reached the disk anyway"
// policies), reopen the store on it, read every block back, and run the history checker with those final
// reads. The workload's clock must be the CrashFs log clock, so "acknowledged before the crash" is exact:
// a write that completed at or before the cut must be there (else: lost), a write in flight may or may not
// be, and any block must hold zeros or some write's whole stamp (else: corrupt, "neither old nor new").
import type { CrashFs, CrashPolicy } from '../sheep/store/crashfs.js';
import { checkHistory, type Op, type Violation } from './history.js';
import { classifyBlock, valueKey } from './stamp.js';
import type { IoTarget } from './workload.js';

export interface CrashReplayOptions {
  fs: CrashFs;
  /** The workload history, timed with fs.clock. */
  history: readonly Op[];
  /** Open the product (store, gateway, ...) on a crashed file system; the target reads blocks. */
  open: (crashed: CrashFs) => Promise<{ target: IoTarget; close: () => Promise<void> }>;
  blocks: number;
  blockSize: number;
  baseOffset?: number;
  policies?: CrashPolicy[];
  /** Log indices to crash at (default: every persistence point, plus the end). */
  points?: number[];
  seed?: number;
}

export interface CrashReplayReport {
  points: number;
  states: number;
  /** Acknowledged writes missing after a crash (final reads older than them). */
  lost: number;
  /** Blocks that are neither zeros nor a whole stamp, or a stamp of another block. */
  corrupt: number;
  /** Blocks the reopened product refused to read (e.g. EIO). */
  unreadable: number;
  nonlinearizable: number;
  /** Acknowledged writes checked, summed over states. */
  ackedChecked: number;
  firstViolation?: { point: number; policy: CrashPolicy; violation: Violation | string };
}

/** The history as seen by a crash right after log entry `point`. */
function cutHistory(history: readonly Op[], cut: number): Op[] {
  const out: Op[] = [];
  for (const op of history) {
    if (op.kind !== 'write' || op.invoke >= cut) continue;
    out.push({ ...op, complete: op.complete !== null && op.complete <= cut ? op.complete : null });
  }
  return out;
}

export async function replayCrashStates(o: CrashReplayOptions): Promise<CrashReplayReport> {
  const policies = o.policies ?? ['synced', 'all', 'random'];
  const points = o.points ?? [...o.fs.syncPoints(), o.fs.clock - 1];
  const bs = o.blockSize;
  const base = o.baseOffset ?? 0;
  const rep: CrashReplayReport = { points: points.length, states: 0, lost: 0, corrupt: 0, unreadable: 0, nonlinearizable: 0, ackedChecked: 0 };
  const note = (point: number, policy: CrashPolicy, v: Violation | string): void => {
    rep.firstViolation ??= { point, policy, violation: v };
  };
  let seed = o.seed ?? 1;
  for (const point of points) {
    const cut = point + 1;
    const ops = cutHistory(o.history, cut);
    const written = new Set(ops.map((w) => w.block));
    for (const policy of policies) {
      rep.states++;
      const crashed = o.fs.crashAt(point, policy, seed++);
      const { target, close } = await o.open(crashed);
      const history = [...ops];
      const t = cut + 1;
      try {
        for (let block = 0; block < o.blocks; block++) {
          let buf: Buffer;
          try {
            buf = await target.read(base + block * bs, bs);
          } catch (err) {
            rep.unreadable++;
            note(point, policy, `block ${block} unreadable: ${err instanceof Error ? err.message : String(err)}`);
            continue;
          }
          const c = classifyBlock(buf, block);
          if (!written.has(block) && c.kind !== 'zero') {
            rep.corrupt++;
            note(point, policy, `block ${block} never written but reads ${valueKey(c)}`);
            continue;
          }
          history.push({ kind: 'read', block, value: valueKey(c), invoke: t, complete: t, final: true });
        }
      } finally {
        await close();
      }
      const res = checkHistory(history);
      rep.ackedChecked += res.acknowledgedWrites;
      rep.lost += res.lostWrites;
      rep.corrupt += res.corrupt;
      rep.nonlinearizable += res.nonlinearizable;
      const v = res.violations[0];
      if (v) note(point, policy, v);
    }
  }
  return rep;
}
