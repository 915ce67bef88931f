// The refresh-read race of inode coherence (docs/fencing.md §1): target A's index write invalidates B, and B's
// refresh read runs while A's write is still landing on the replicas, so B reads the index without A's entry.
// The gateway validates before it reads and A re-checks after its write: B must end up INVALIDATED again (it
// reloads on its next request), never SHARED with the stale copy — the drill `partition` symptom of B reading
// zeros for a write A acknowledged.
import { describe, expect, it } from 'vitest';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { vidToVdiOid } from '../../../src/proto/sheepdog/oid.js';
import { makeNodeId } from '../../../src/proto/sheepdog/node.js';
import { targetNodeId } from '../../../src/proto/sheepdog/target-id.js';
import { componentLogger } from '../../../src/obs/log.js';
import { SdError } from '../../../src/sheep/errors.js';
import { Gateway, type ReplicaIo } from '../../../src/sheep/gateway.js';
import { LockTable, type TargetIdentity } from '../../../src/sheep/lock.js';
import { Mutex } from '../../../src/sheep/mutex.js';
import { VdiNamespace } from '../../../src/sheep/vdi.js';

const V = 0x1234;
const INO = vidToVdiOid(V);
const who = (id: string): TargetIdentity => ({ targetId: id, incarnation: 1n, nid: targetNodeId(id) });
const A = who('host-a');
const B = who('host-b');

/** One in-memory replica whose writes can be held at a gate. */
class GatedReplica implements ReplicaIo {
  readonly label = 'mem';
  readonly objs = new Map<bigint, Buffer>();
  gate: Promise<void> | null = null;
  entered: (() => void) | null = null;
  create(oid: bigint, size: number, data: Buffer, offset: number): Promise<void> {
    const b = Buffer.alloc(size);
    data.copy(b, offset);
    this.objs.set(oid, b);
    return Promise.resolve();
  }
  async write(oid: bigint, data: Buffer, offset: number): Promise<void> {
    this.entered?.();
    if (this.gate) await this.gate;
    const b = this.objs.get(oid);
    if (!b) throw new SdError(C.SD_RES_NO_OBJ, 'no object');
    data.copy(b, offset);
  }
  read(oid: bigint, offset: number, length: number): Promise<Buffer> {
    const b = this.objs.get(oid);
    if (!b) return Promise.reject(new SdError(C.SD_RES_NO_OBJ, 'no object'));
    return Promise.resolve(Buffer.from(b.subarray(offset, offset + length)));
  }
  remove(oid: bigint): Promise<void> {
    this.objs.delete(oid);
    return Promise.resolve();
  }
}

const GW = makeNodeId('127.0.0.1', 7000);

/** A one-replica gateway whose coherence ops apply straight to `locks` (as the cluster log would). */
function setup(onCoherence: () => void = () => undefined): { locks: LockTable; replica: GatedReplica; gw: Gateway } {
  const locks = new LockTable();
  const replica = new GatedReplica();
  const gw = new Gateway({
    placement: { replicas: () => [replica] },
    vdis: new VdiNamespace(),
    locks,
    self: GW,
    epoch: () => 1,
    defaults: () => ({ copies: 1, blockSizeShift: 22 }),
    coherence: (vid, validate, sender) => {
      onCoherence();
      return Promise.resolve(locks.coherence(vid, validate, sender ?? GW));
    },
    namespaceMutex: new Mutex(),
    log: componentLogger('test'),
  });
  return { locks, replica, gw };
}

describe('inode coherence: a refresh read racing an index write', () => {
  it('leaves the reader INVALIDATED when it read the index before the write landed', async () => {
    const { locks, replica, gw } = setup();
    await replica.create(INO, C.SD_INODE_SIZE, Buffer.alloc(0), 0);
    expect(locks.lock(V, C.LOCK_TYPE_SHARED, A.nid, A)).toBe(0);
    expect(locks.lock(V, C.LOCK_TYPE_SHARED, B.nid, B)).toBe(0);
    locks.coherence(V, true, B.nid);
    const state = (t: TargetIdentity): number | null => locks.participantState(V, t.nid);
    expect([state(A), state(B)]).toEqual([C.SHARED_LOCK_STATE_SHARED, C.SHARED_LOCK_STATE_SHARED]);

    // A writes index entry 0 (allocating object 0); the replica write is held.
    let open!: () => void;
    replica.gate = new Promise<void>((r) => (open = r));
    const inWrite = new Promise<void>((r) => (replica.entered = r));
    const entry = Buffer.alloc(4);
    entry.writeUInt32LE(V);
    const io = { oid: INO, cowOid: 0n, copies: 1, offset: C.SD_INODE_HEADER_SIZE, flags: 0 };
    const aWrite = gw.write({ ...io, who: A }, entry);
    await inWrite;
    expect(state(B)).toBe(C.SHARED_LOCK_STATE_INVALIDATED);

    // B refreshes now: it validates and reads the index without A's entry.
    const copy = await gw.read({ oid: INO, cowOid: 0n, copies: 1, offset: 0, flags: C.SD_FLAG_CMD_TGT, who: B }, C.TGT_INODE_SIZE);
    expect(copy.readUInt32LE(C.SD_INODE_HEADER_SIZE)).toBe(0);
    expect(state(B)).toBe(C.SHARED_LOCK_STATE_SHARED);

    // A's write lands and is acknowledged: by then B is INVALIDATED again, so its next request reloads.
    replica.gate = null;
    open();
    await aWrite;
    expect(state(B)).toBe(C.SHARED_LOCK_STATE_INVALIDATED);
    expect(state(A)).toBe(C.SHARED_LOCK_STATE_MODIFIED);
    expect(locks.refreshRequired(V, B.nid)).toBe(true);
    const again = await gw.read({ oid: INO, cowOid: 0n, copies: 1, offset: 0, flags: C.SD_FLAG_CMD_TGT, who: B }, C.TGT_INODE_SIZE);
    expect(again.readUInt32LE(C.SD_INODE_HEADER_SIZE)).toBe(V);
    expect(state(B)).toBe(C.SHARED_LOCK_STATE_SHARED);
  });

  it('costs no second invalidation when nobody validated during the write', async () => {
    let ops = 0;
    const { locks, replica, gw } = setup(() => ops++);
    await replica.create(INO, C.SD_INODE_SIZE, Buffer.alloc(0), 0);
    locks.lock(V, C.LOCK_TYPE_SHARED, A.nid, A);
    locks.lock(V, C.LOCK_TYPE_SHARED, B.nid, B);
    locks.coherence(V, true, B.nid);
    const entry = Buffer.alloc(4, 0);
    await gw.write({ oid: INO, cowOid: 0n, copies: 1, offset: C.SD_INODE_HEADER_SIZE, flags: 0, who: A }, entry);
    expect(ops).toBe(1);
    await gw.write({ oid: INO, cowOid: 0n, copies: 1, offset: C.SD_INODE_HEADER_SIZE + 4, flags: 0, who: A }, entry);
    expect(ops).toBe(1); // still MODIFIED: nothing to do
  });
});
