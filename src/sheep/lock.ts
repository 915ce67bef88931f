// VDI locks and the MSI-like inode coherence state (fact sheet §6.2–6.3, §7.1–7.2, §7.6). Pure and
// deterministic: every node applies the same cluster ops in the same order and reaches the same state.
// Identity of an owner or participant is the gateway sheep (a NodeId), never a client connection.
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
import type { VdiStateParticipant } from '../proto/sheepdog/vdi-state.js';

export interface VdiLock {
  state: number;
  owner: NodeId | null;
  participants: VdiStateParticipant[];
}

export const ZERO_NODE_ID: NodeId = { addr: Buffer.alloc(16), port: 0, ioAddr: Buffer.alloc(16), ioPort: 0 };

/** Lock state of every VDI; a VDI without an entry is UNLOCKED. */
export class LockTable {
  private readonly locks = new Map<number, VdiLock>();

  get(vid: number): VdiLock {
    return this.locks.get(vid) ?? { state: LOCK_STATE_UNLOCKED, owner: null, participants: [] };
  }

  /** Every VDI that is not UNLOCKED. */
  lockedVids(): number[] {
    return [...this.locks.keys()].sort((a, b) => a - b);
  }

  clear(): void {
    this.locks.clear();
  }

  private set(vid: number, l: VdiLock): void {
    if (l.state === LOCK_STATE_UNLOCKED) this.locks.delete(vid);
    else this.locks.set(vid, l);
    assertSingleModified(vid, l);
  }

  /** LOCK_VDI applied on every node (§6.3): SUCCESS or VDI_LOCKED. */
  lock(vid: number, type: number, sender: NodeId): number {
    const cur = this.get(vid);
    if (type === LOCK_TYPE_NORMAL) {
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
    if (cur.participants.some((p) => nodeIdEquals(p.nid, sender))) return SD_RES_VDI_LOCKED;
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
   * sender from the participants. Returns false when nothing matched (sheep only logs that).
   */
  release(vid: number, type: number, sender: NodeId): boolean {
    const cur = this.get(vid);
    if (type === LOCK_TYPE_NORMAL) {
      if (cur.state !== LOCK_STATE_LOCKED) return false;
      this.set(vid, { state: LOCK_STATE_UNLOCKED, owner: null, participants: [] });
      return true;
    }
    if (cur.state !== LOCK_STATE_SHARED) return false;
    const rest = cur.participants.filter((p) => !nodeIdEquals(p.nid, sender));
    if (rest.length === cur.participants.length) return false;
    this.set(vid, rest.length === 0 ? { state: LOCK_STATE_UNLOCKED, owner: null, participants: [] } : { ...cur, participants: rest });
    return true;
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
}

function assertSingleModified(vid: number, l: VdiLock): void {
  const n = l.participants.filter((p) => p.state === SHARED_LOCK_STATE_MODIFIED).length;
  if (n > 1) throw new Error(`invariant: vid ${vid.toString(16)} has ${n} MODIFIED participants`);
}
