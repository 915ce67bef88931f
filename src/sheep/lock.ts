// VDI locks and the MSI-like inode coherence state (fact sheet §6.2–6.3, §7.1–7.2, §7.6). Pure and
// deterministic: every node applies the same cluster ops in the same order and reaches the same state.
// Identity of an owner or participant is the gateway sheep (a NodeId), never a client connection -- unless the
// connection said HELLO (docs/fencing.md §3): then it is the target's synthetic NodeId, and a per-(VDI, target)
// record keeps the incarnation that holds the lock, how many grants it had (generation) and whether it still
// holds it. A target re-locking takes its own lock over (a restart); an older incarnation cannot; every request
// of an incarnation that does not hold the record any more is fenced (gateway.ts).
// Invariant: at most one participant of a VDI is MODIFIED (checked after every transition).
import {
  LOCK_STATE_LOCKED,
  LOCK_STATE_SHARED,
  LOCK_STATE_UNLOCKED,
  LOCK_TYPE_NORMAL,
  LOCK_TYPE_SHARED,
  SD_MAX_COPIES,
  SD_RES_NO_VDI,
  SD_RES_SUCCESS,
  SD_RES_VDI_LOCKED,
  SHARED_LOCK_STATE_INVALIDATED,
  SHARED_LOCK_STATE_MODIFIED,
  SHARED_LOCK_STATE_SHARED,
} from '../proto/sheepdog/constants.js';
import { nodeIdEquals, type NodeId } from '../proto/sheepdog/node.js';
import type { TargetLockEntry } from '../proto/sheepdog/target-id.js';
import type { VdiStateParticipant } from '../proto/sheepdog/vdi-state.js';

export interface VdiLock {
  state: number;
  owner: NodeId | null;
  participants: VdiStateParticipant[];
}

export const ZERO_NODE_ID: NodeId = { addr: Buffer.alloc(16), port: 0, ioAddr: Buffer.alloc(16), ioPort: 0 };

/** A lock request's target identity (HELLO): `nid` is targetNodeId(targetId). */
export interface TargetIdentity {
  targetId: string;
  incarnation: bigint;
  nid: NodeId;
}

/** One (VDI, target) record: a TARGET_LOCKS entry without its vid. */
type TargetRecord = Omit<TargetLockEntry, 'vid'>;

/** Lock state of every VDI; a VDI without an entry is UNLOCKED. */
export class LockTable {
  private readonly locks = new Map<number, VdiLock>();
  /** vid → target id → record (kept after a release: a released incarnation stays fenced). */
  private readonly records = new Map<number, Map<string, TargetRecord>>();

  get(vid: number): VdiLock {
    return this.locks.get(vid) ?? { state: LOCK_STATE_UNLOCKED, owner: null, participants: [] };
  }

  /** Every VDI that is not UNLOCKED. */
  lockedVids(): number[] {
    return [...this.locks.keys()].sort((a, b) => a - b);
  }

  clear(): void {
    this.locks.clear();
    this.records.clear();
  }

  /**
   * Install a lock state; every target whose synthetic id is no longer owner or participant stops holding
   * its record (released, broken, or dropped by a transition).
   */
  private set(vid: number, l: VdiLock): void {
    if (l.state === LOCK_STATE_UNLOCKED) this.locks.delete(vid);
    else this.locks.set(vid, l);
    assertSingleModified(vid, l);
    for (const r of this.records.get(vid)?.values() ?? []) {
      if (r.held && !holds(l, r.nid)) r.held = false;
    }
  }

  private record(vid: number, targetId: string): TargetRecord | undefined {
    return this.records.get(vid)?.get(targetId);
  }

  /** A held record of a newer incarnation refuses the lock (a stale process cannot take it back). */
  private staleIncarnation(vid: number, t: TargetIdentity): boolean {
    const r = this.record(vid, t.targetId);
    return r !== undefined && r.held && t.incarnation < r.incarnation;
  }

  private grant(vid: number, type: number, t: TargetIdentity): void {
    let m = this.records.get(vid);
    if (!m) this.records.set(vid, (m = new Map()));
    const prev = m.get(t.targetId);
    m.set(t.targetId, { targetId: t.targetId, nid: t.nid, incarnation: t.incarnation, generation: (prev?.generation ?? 0) + 1, held: true, type });
  }

  /**
   * LOCK_VDI applied on every node (§6.3): SUCCESS or VDI_LOCKED. With a target identity (`target`, whose nid
   * is `sender`) the same target may lock again: NORMAL keeps the lock, SHARED replaces its participant by a
   * fresh one (INVALIDATED if another participant is MODIFIED, else SHARED), both record the new incarnation.
   */
  lock(vid: number, type: number, sender: NodeId, target?: TargetIdentity): number {
    const r = this.lockAs(vid, type, sender, target);
    if (r === SD_RES_SUCCESS && target) this.grant(vid, type, target);
    return r;
  }

  private lockAs(vid: number, type: number, sender: NodeId, target: TargetIdentity | undefined): number {
    const cur = this.get(vid);
    if (type === LOCK_TYPE_NORMAL) {
      if (cur.state === LOCK_STATE_LOCKED && target && cur.owner && nodeIdEquals(cur.owner, sender)) {
        return this.staleIncarnation(vid, target) ? SD_RES_VDI_LOCKED : SD_RES_SUCCESS;
      }
      if (cur.state !== LOCK_STATE_UNLOCKED) return SD_RES_VDI_LOCKED;
      this.set(vid, { state: LOCK_STATE_LOCKED, owner: sender, participants: [] });
      return SD_RES_SUCCESS;
    }
    if (type !== LOCK_TYPE_SHARED) return SD_RES_VDI_LOCKED;
    if (cur.state === LOCK_STATE_UNLOCKED) {
      this.set(vid, {
        state: LOCK_STATE_SHARED,
        owner: null,
        participants: [{ nid: sender, state: SHARED_LOCK_STATE_MODIFIED }],
      });
      return SD_RES_SUCCESS;
    }
    if (cur.state !== LOCK_STATE_SHARED) return SD_RES_VDI_LOCKED;
    const at = cur.participants.findIndex((p) => nodeIdEquals(p.nid, sender));
    if (at >= 0 && target) {
      if (this.staleIncarnation(vid, target)) return SD_RES_VDI_LOCKED;
      const othersModified = cur.participants.some((p, i) => i !== at && p.state === SHARED_LOCK_STATE_MODIFIED);
      const participants = cur.participants.map((p, i) =>
        i === at ? { nid: sender, state: othersModified ? SHARED_LOCK_STATE_INVALIDATED : SHARED_LOCK_STATE_SHARED } : p,
      );
      this.set(vid, { ...cur, participants });
      return SD_RES_SUCCESS;
    }
    if (at >= 0) return SD_RES_VDI_LOCKED;
    if (cur.participants.length >= SD_MAX_COPIES) return SD_RES_VDI_LOCKED;
    const anyModified = cur.participants.some((p) => p.state === SHARED_LOCK_STATE_MODIFIED);
    this.set(vid, {
      ...cur,
      participants: [
        ...cur.participants,
        { nid: sender, state: anyModified ? SHARED_LOCK_STATE_INVALIDATED : SHARED_LOCK_STATE_SHARED },
      ],
    });
    return SD_RES_SUCCESS;
  }

  /**
   * RELEASE_VDI (§6.3): NORMAL unlocks whoever the owner is (how a stale lock is broken); SHARED removes the
   * sender from the participants. Returns false when nothing matched (sheep only logs that). A target
   * (`target` set) releases only its own lock, and only while its incarnation holds the record.
   */
  release(vid: number, type: number, sender: NodeId, target?: TargetIdentity): boolean {
    const cur = this.get(vid);
    if (target) {
      const r = this.record(vid, target.targetId);
      if (r !== undefined && r.incarnation !== target.incarnation) return false;
    }
    if (type === LOCK_TYPE_NORMAL) {
      if (cur.state !== LOCK_STATE_LOCKED) return false;
      if (target && !(cur.owner && nodeIdEquals(cur.owner, sender))) return false;
      this.set(vid, { state: LOCK_STATE_UNLOCKED, owner: null, participants: [] });
      return true;
    }
    if (cur.state !== LOCK_STATE_SHARED) return false;
    const rest = cur.participants.filter((p) => !nodeIdEquals(p.nid, sender));
    if (rest.length === cur.participants.length) return false;
    this.set(vid, rest.length === 0 ? { state: LOCK_STATE_UNLOCKED, owner: null, participants: [] } : { ...cur, participants: rest });
    return true;
  }

  /** Break every holder's lock (`dog vdi lock unlock`, SF_OP_BREAK_LOCK); false if the VDI was not locked. */
  breakLock(vid: number): boolean {
    if (this.get(vid).state === LOCK_STATE_UNLOCKED) return false;
    this.set(vid, { state: LOCK_STATE_UNLOCKED, owner: null, participants: [] });
    return true;
  }

  /**
   * The fence (docs/fencing.md §4): true when `targetId` has a record on `vid` and `incarnation` does not hold
   * it (another incarnation took the lock over, or it was released or broken). No record: never fenced.
   */
  fenced(vid: number, targetId: string, incarnation: bigint): boolean {
    const r = this.record(vid, targetId);
    return r !== undefined && (!r.held || r.incarnation !== incarnation);
  }

  /** True if `targetId` ever locked `vid` (its requests must then be judged against the newest cluster state). */
  hasRecord(vid: number, targetId: string): boolean {
    return this.record(vid, targetId) !== undefined;
  }

  /** Every (VDI, target) record, by vid then target id (SF_OP_TARGET_LOCKS, `dog vdi lock list`). */
  targetLocks(): TargetLockEntry[] {
    const out: TargetLockEntry[] = [];
    for (const [vid, m] of [...this.records].sort((a, b) => a[0] - b[0])) {
      for (const r of [...m.values()].sort((a, b) => (a.targetId < b.targetId ? -1 : a.targetId > b.targetId ? 1 : 0))) {
        out.push({ vid, ...r });
      }
    }
    return out;
  }

  /** INODE_COHERENCE (§7.2): validate = false invalidates every other participant. */
  coherence(vid: number, validate: boolean, sender: NodeId): number {
    const cur = this.get(vid);
    if (cur.state !== LOCK_STATE_SHARED) return SD_RES_SUCCESS;
    if (!cur.participants.some((p) => nodeIdEquals(p.nid, sender))) return SD_RES_NO_VDI;
    const participants = cur.participants.map((p) => {
      const self = nodeIdEquals(p.nid, sender);
      if (!validate) return { nid: p.nid, state: self ? SHARED_LOCK_STATE_MODIFIED : SHARED_LOCK_STATE_INVALIDATED };
      if (self) return { nid: p.nid, state: SHARED_LOCK_STATE_SHARED };
      return { nid: p.nid, state: p.state === SHARED_LOCK_STATE_INVALIDATED ? p.state : SHARED_LOCK_STATE_SHARED };
    });
    this.set(vid, { ...cur, participants });
    return SD_RES_SUCCESS;
  }

  /** The state of `node` as a participant of a SHARED-locked VDI, or null when it is not one. */
  participantState(vid: number, node: NodeId): number | null {
    const cur = this.get(vid);
    if (cur.state !== LOCK_STATE_SHARED) return null;
    return cur.participants.find((p) => nodeIdEquals(p.nid, node))?.state ?? null;
  }

  /** `refresh_required` (§7.1): SHARED and `node` is an INVALIDATED participant. */
  refreshRequired(vid: number, node: NodeId): boolean {
    return this.participantState(vid, node) === SHARED_LOCK_STATE_INVALIDATED;
  }

  /** A node left the cluster (§6.4): drop it from every participant list; NORMAL locks are kept. */
  removeNode(node: NodeId): void {
    for (const [vid, cur] of [...this.locks]) {
      if (cur.state !== LOCK_STATE_SHARED) continue;
      const rest = cur.participants.filter((p) => !nodeIdEquals(p.nid, node));
      if (rest.length === cur.participants.length) continue;
      this.set(vid, rest.length === 0 ? { state: LOCK_STATE_UNLOCKED, owner: null, participants: [] } : { ...cur, participants: rest });
    }
  }

  /** Install a state taken from a checkpoint (joining node, §6.4). */
  restore(vid: number, l: VdiLock): void {
    this.set(vid, l);
  }

  /** The whole table for a compaction snapshot (live objects: the caller encodes them at once). */
  exportState(): { locks: [number, VdiLock][]; records: [number, [string, TargetRecord][]][] } {
    return {
      locks: [...this.locks],
      records: [...this.records].map(([vid, m]) => [vid, [...m]] as [number, [string, TargetRecord][]]),
    };
  }

  /** Replace the table with a snapshot's (exportState's output). */
  importState(s: { locks: [number, VdiLock][]; records: [number, [string, TargetRecord][]][] }): void {
    this.clear();
    for (const [vid, l] of s.locks) this.locks.set(vid, l);
    for (const [vid, m] of s.records) this.records.set(vid, new Map(m));
  }
}

/** True if `nid` is the owner or a participant of `l`. */
function holds(l: VdiLock, nid: NodeId): boolean {
  if (l.state === LOCK_STATE_LOCKED) return l.owner !== null && nodeIdEquals(l.owner, nid);
  return l.participants.some((p) => nodeIdEquals(p.nid, nid));
}

function assertSingleModified(vid: number, l: VdiLock): void {
  const n = l.participants.filter((p) => p.state === SHARED_LOCK_STATE_MODIFIED).length;
  if (n > 1) throw new Error(`invariant: vid ${vid.toString(16)} has ${n} MODIFIED participants`);
}
