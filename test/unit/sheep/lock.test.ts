// The lock and coherence state machine (fact sheet §6.3, §7.2, §7.4, §6.4): the two-tgtd walk of test 097,
// the NORMAL/SHARED conflict tables, release semantics and node leave.
import { describe, expect, it } from 'vitest';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { makeNodeId } from '../../../src/proto/sheepdog/node.js';
import { LockTable } from '../../../src/sheep/lock.js';

const A = makeNodeId('127.0.0.1', 7000);
const B = makeNodeId('127.0.0.1', 7001);
const V = 0x7c2b25;
const states = (t: LockTable): number[] => t.get(V).participants.map((p) => p.state);
const { SHARED_LOCK_STATE_MODIFIED: M, SHARED_LOCK_STATE_SHARED: S, SHARED_LOCK_STATE_INVALIDATED: I } = C;

describe('LockTable', () => {
  it('walks §7.4: two tgtds behind sheep A and B', () => {
    const t = new LockTable();
    expect(t.lock(V, C.LOCK_TYPE_SHARED, A)).toBe(C.SD_RES_SUCCESS); // 1
    expect(states(t)).toEqual([M]);
    expect(t.refreshRequired(V, A)).toBe(false); // 2: A's refresh read needs no validation
    expect(t.lock(V, C.LOCK_TYPE_SHARED, B)).toBe(C.SD_RES_SUCCESS); // 3
    expect(states(t)).toEqual([M, I]);
    expect(t.refreshRequired(V, B)).toBe(true);
    expect(t.coherence(V, true, B)).toBe(C.SD_RES_SUCCESS); // 4: B's refresh read validates
    expect(states(t)).toEqual([S, S]);
    expect(t.coherence(V, false, A)).toBe(C.SD_RES_SUCCESS); // 5: A writes its inode
    expect(states(t)).toEqual([M, I]);
    expect(t.refreshRequired(V, B)).toBe(true); // 6: B's next TGT I/O is refused ...
    expect(t.refreshRequired(V, B)).toBe(true); // ... as a state, until it reloads
    expect(t.coherence(V, true, B)).toBe(C.SD_RES_SUCCESS);
    expect(states(t)).toEqual([S, S]);
    expect(t.get(V).state).toBe(C.LOCK_STATE_SHARED);
  });

  it('validation leaves other INVALIDATED participants invalidated', () => {
    const t = new LockTable();
    const D = makeNodeId('127.0.0.1', 7002);
    t.lock(V, C.LOCK_TYPE_SHARED, A);
    t.lock(V, C.LOCK_TYPE_SHARED, B);
    t.lock(V, C.LOCK_TYPE_SHARED, D);
    expect(states(t)).toEqual([M, I, I]);
    t.coherence(V, true, B);
    expect(states(t)).toEqual([S, S, I]);
  });

  it('refuses conflicting locks (§6.3 tables)', () => {
    const t = new LockTable();
    expect(t.lock(V, C.LOCK_TYPE_NORMAL, A)).toBe(C.SD_RES_SUCCESS);
    expect(t.lock(V, C.LOCK_TYPE_NORMAL, A)).toBe(C.SD_RES_VDI_LOCKED); // even the same node
    expect(t.lock(V, C.LOCK_TYPE_SHARED, B)).toBe(C.SD_RES_VDI_LOCKED);
    expect(t.lock(V, 7, B)).toBe(C.SD_RES_VDI_LOCKED);
    expect(t.release(V, C.LOCK_TYPE_NORMAL, B)).toBe(true); // whoever sends it
    expect(t.get(V).state).toBe(C.LOCK_STATE_UNLOCKED);
    expect(t.lock(V, C.LOCK_TYPE_SHARED, A)).toBe(C.SD_RES_SUCCESS);
    expect(t.lock(V, C.LOCK_TYPE_SHARED, A)).toBe(C.SD_RES_VDI_LOCKED); // already a participant
    expect(t.lock(V, C.LOCK_TYPE_NORMAL, B)).toBe(C.SD_RES_VDI_LOCKED);
    for (let i = 1; i < C.SD_MAX_COPIES; i++) expect(t.lock(V, C.LOCK_TYPE_SHARED, makeNodeId('10.0.0.1', 7000 + i))).toBe(0);
    expect(t.lock(V, C.LOCK_TYPE_SHARED, makeNodeId('10.0.0.2', 7000))).toBe(C.SD_RES_VDI_LOCKED); // 32nd
  });

  it('releases shared participants one by one; a stranger release changes nothing', () => {
    const t = new LockTable();
    t.lock(V, C.LOCK_TYPE_SHARED, A);
    t.lock(V, C.LOCK_TYPE_SHARED, B);
    expect(t.release(V, C.LOCK_TYPE_SHARED, makeNodeId('10.9.9.9', 1))).toBe(false);
    expect(t.release(V, C.LOCK_TYPE_SHARED, A)).toBe(true);
    expect(states(t)).toEqual([I]);
    expect(t.release(V, C.LOCK_TYPE_SHARED, B)).toBe(true);
    expect(t.get(V).state).toBe(C.LOCK_STATE_UNLOCKED);
    expect(t.coherence(V, false, A)).toBe(C.SD_RES_SUCCESS); // no-op while unlocked
  });

  it('coherence from a non-participant is NO_VDI; node leave drops participants but keeps NORMAL locks', () => {
    const t = new LockTable();
    t.lock(V, C.LOCK_TYPE_SHARED, A);
    expect(t.coherence(V, false, B)).toBe(C.SD_RES_NO_VDI);
    t.lock(V + 1, C.LOCK_TYPE_NORMAL, A);
    t.removeNode(A);
    expect(t.get(V).state).toBe(C.LOCK_STATE_UNLOCKED);
    expect(t.get(V + 1).state).toBe(C.LOCK_STATE_LOCKED);
  });
});
