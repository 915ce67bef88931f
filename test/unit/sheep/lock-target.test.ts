// LockTable with target identities (docs/fencing.md §3–4): a target re-locking after a restart takes its own
// lock over (NORMAL and SHARED), an older incarnation cannot, a different target is refused, releases are the
// holder's own, `dog vdi lock unlock` (breakLock) fences everyone, and node leave keeps target participants.
import { describe, expect, it } from 'vitest';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { makeNodeId } from '../../../src/proto/sheepdog/node.js';
import { targetNodeId } from '../../../src/proto/sheepdog/target-id.js';
import { LockTable, type TargetIdentity } from '../../../src/sheep/lock.js';

const V = 0x7c2b25;
const GW1 = makeNodeId('127.0.0.1', 7000);
const GW2 = makeNodeId('127.0.0.1', 7001);
const { SHARED_LOCK_STATE_MODIFIED: M, SHARED_LOCK_STATE_SHARED: S, SHARED_LOCK_STATE_INVALIDATED: I } = C;

function tgt(id: string, inc: bigint): TargetIdentity {
  return { targetId: id, incarnation: inc, nid: targetNodeId(id) };
}
const lockAs = (t: LockTable, type: number, who: TargetIdentity): number => t.lock(V, type, who.nid, who);
const states = (t: LockTable): number[] => t.get(V).participants.map((p) => p.state);

describe('LockTable with target identities', () => {
  it('NORMAL: the same target re-locks after a restart; another target and an older incarnation are refused', () => {
    const t = new LockTable();
    const a1 = tgt('host-a', 100n);
    const a2 = tgt('host-a', 200n);
    expect(lockAs(t, C.LOCK_TYPE_NORMAL, a1)).toBe(C.SD_RES_SUCCESS);
    expect(t.fenced(V, 'host-a', 100n)).toBe(false);
    expect(lockAs(t, C.LOCK_TYPE_NORMAL, tgt('host-b', 300n))).toBe(C.SD_RES_VDI_LOCKED);
    expect(t.lock(V, C.LOCK_TYPE_NORMAL, GW1)).toBe(C.SD_RES_VDI_LOCKED); // a tgt-style client as well
    expect(lockAs(t, C.LOCK_TYPE_NORMAL, a2)).toBe(C.SD_RES_SUCCESS); // restart, no manual step
    expect(t.get(V).state).toBe(C.LOCK_STATE_LOCKED);
    expect(t.fenced(V, 'host-a', 100n)).toBe(true); // the old incarnation's I/O
    expect(t.fenced(V, 'host-a', 200n)).toBe(false);
    expect(lockAs(t, C.LOCK_TYPE_NORMAL, a1)).toBe(C.SD_RES_VDI_LOCKED); // a stale process cannot take it back
    expect(lockAs(t, C.LOCK_TYPE_SHARED, a2)).toBe(C.SD_RES_VDI_LOCKED); // kinds still conflict
    const rec = t.targetLocks();
    expect(rec).toHaveLength(1);
    expect(rec[0]).toMatchObject({ vid: V, targetId: 'host-a', incarnation: 200n, generation: 2, held: true, type: C.LOCK_TYPE_NORMAL });
  });

  it('NORMAL: a stale incarnation cannot release its successor; dog (no identity) still breaks it and fences', () => {
    const t = new LockTable();
    const a1 = tgt('host-a', 100n);
    const a2 = tgt('host-a', 200n);
    lockAs(t, C.LOCK_TYPE_NORMAL, a1);
    lockAs(t, C.LOCK_TYPE_NORMAL, a2);
    expect(t.release(V, C.LOCK_TYPE_NORMAL, a1.nid, a1)).toBe(false);
    expect(t.get(V).state).toBe(C.LOCK_STATE_LOCKED);
    expect(t.release(V, C.LOCK_TYPE_NORMAL, tgt('host-b', 1n).nid, tgt('host-b', 1n))).toBe(false); // not its lock
    expect(t.release(V, C.LOCK_TYPE_NORMAL, GW2)).toBe(true); // sheepdog semantics for identity-less senders
    expect(t.get(V).state).toBe(C.LOCK_STATE_UNLOCKED);
    expect(t.fenced(V, 'host-a', 200n)).toBe(true); // released: its late writes cannot land
    expect(lockAs(t, C.LOCK_TYPE_NORMAL, tgt('host-b', 300n))).toBe(C.SD_RES_SUCCESS);
    expect(t.fenced(V, 'host-b', 300n)).toBe(false);
    expect(t.fenced(V, 'host-a', 200n)).toBe(true);
    expect(t.fenced(V, 'never-locked', 1n)).toBe(false); // no record, no fence (e.g. a snapshot reader)
  });

  it('SHARED: a restarted target replaces its participant; others keep theirs; the old incarnation is fenced', () => {
    const t = new LockTable();
    const a1 = tgt('host-a', 100n);
    const b1 = tgt('host-b', 150n);
    expect(lockAs(t, C.LOCK_TYPE_SHARED, a1)).toBe(0);
    expect(lockAs(t, C.LOCK_TYPE_SHARED, b1)).toBe(0);
    expect(states(t)).toEqual([M, I]);
    t.coherence(V, true, b1.nid);
    expect(states(t)).toEqual([S, S]);
    t.coherence(V, false, a1.nid); // A allocates
    expect(states(t)).toEqual([M, I]);
    // A restarts: its fresh participant must read the inode; nobody else is MODIFIED, so SHARED.
    const a2 = tgt('host-a', 200n);
    expect(lockAs(t, C.LOCK_TYPE_SHARED, a2)).toBe(0);
    expect(states(t)).toEqual([S, I]);
    expect(t.get(V).participants.map((p) => p.nid)).toEqual([a1.nid, b1.nid]); // same synthetic ids, same order
    expect(t.fenced(V, 'host-a', 100n)).toBe(true);
    expect(t.fenced(V, 'host-a', 200n)).toBe(false);
    expect(t.fenced(V, 'host-b', 150n)).toBe(false);
    // B restarts while A is MODIFIED: B comes back INVALIDATED.
    t.coherence(V, false, a2.nid);
    expect(lockAs(t, C.LOCK_TYPE_SHARED, tgt('host-b', 250n))).toBe(0);
    expect(states(t)).toEqual([M, I]);
    expect(lockAs(t, C.LOCK_TYPE_SHARED, a1)).toBe(C.SD_RES_VDI_LOCKED); // stale incarnation
    expect(t.release(V, C.LOCK_TYPE_SHARED, a1.nid, a1)).toBe(false); // nor release its successor
    expect(t.get(V).participants).toHaveLength(2);
  });

  it('two targets behind one gateway are two participants; a tgt behind that gateway is a third', () => {
    const t = new LockTable();
    expect(lockAs(t, C.LOCK_TYPE_SHARED, tgt('host-a', 1n))).toBe(0);
    expect(lockAs(t, C.LOCK_TYPE_SHARED, tgt('host-b', 1n))).toBe(0);
    expect(t.lock(V, C.LOCK_TYPE_SHARED, GW1)).toBe(0);
    expect(t.get(V).participants).toHaveLength(3);
    t.coherence(V, false, targetNodeId('host-b'));
    expect(states(t)).toEqual([I, M, I]);
    expect(t.refreshRequired(V, targetNodeId('host-a'))).toBe(true);
    expect(t.refreshRequired(V, GW1)).toBe(true);
  });

  it('node leave drops gateway participants only; releases and breakLock mark records not held', () => {
    const t = new LockTable();
    const a = tgt('host-a', 1n);
    const b = tgt('host-b', 1n);
    lockAs(t, C.LOCK_TYPE_SHARED, a);
    t.lock(V, C.LOCK_TYPE_SHARED, GW1);
    lockAs(t, C.LOCK_TYPE_SHARED, b);
    t.removeNode(GW1);
    expect(t.get(V).participants.map((p) => p.nid)).toEqual([a.nid, b.nid]);
    expect(t.release(V, C.LOCK_TYPE_SHARED, b.nid, b)).toBe(true);
    expect(t.fenced(V, 'host-b', 1n)).toBe(true);
    expect(t.fenced(V, 'host-a', 1n)).toBe(false);
    expect(lockAs(t, C.LOCK_TYPE_SHARED, b)).toBe(0); // a released target may lock again
    expect(t.fenced(V, 'host-b', 1n)).toBe(false);
    expect(t.breakLock(V)).toBe(true);
    expect(t.get(V).state).toBe(C.LOCK_STATE_UNLOCKED);
    expect(t.fenced(V, 'host-a', 1n)).toBe(true);
    expect(t.fenced(V, 'host-b', 1n)).toBe(true);
    expect(t.breakLock(V)).toBe(false);
    // After a break even an older incarnation may lock (nobody holds the record any more).
    expect(lockAs(t, C.LOCK_TYPE_NORMAL, tgt('host-a', 0n))).toBe(0);
    expect(t.targetLocks().map((r) => [r.targetId, r.held, r.generation])).toEqual([
      ['host-a', true, 2],
      ['host-b', false, 2],
    ]);
    t.clear();
    expect(t.targetLocks()).toEqual([]);
  });
});
