// VdiDevice against the in-process fake sheep: lock on open and release on close, round trips over object
// boundaries, zeros for holes, COW from a snapshot, per-object allocation under concurrency with one index
// write per request, discard/write-zeroes/extents, read-only snapshot exports, and the reactions to
// INODE_INVALIDATED (reload + retry) and READONLY (snapshot taken under the device).
import { afterEach, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { SheepClient } from '../../../src/client/index.js';
import { VdiDevice } from '../../../src/block/vdi.js';
import { BlockError } from '../../../src/block/device.js';
import { fixedString, vidToDataOid, vidToVdiOid, type SdRequest } from '../../../src/proto/sheepdog/index.js';
import { FakeSheep } from '../client/fake-sheep.js';

const MiB = 2 ** 20;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function setup(sizeMiB = 16, shift = 20): Promise<{ s: FakeSheep; c: SheepClient; vid: number }> {
  const s = new FakeSheep({ blockSizeShift: shift });
  await s.start();
  cleanups.push(() => s.stop());
  const c = new SheepClient({ gateways: s.addr, reconnectTimeoutMs: 1000 });
  cleanups.push(() => c.close());
  const { vid } = await c.newVdi({ name: 'disk', size: BigInt(sizeMiB * MiB) });
  return { s, c, vid };
}

async function open(s: FakeSheep, extra = {}): Promise<VdiDevice> {
  const d = await VdiDevice.open({ gateways: s.addr, vdi: 'disk', ...extra });
  cleanups.push(() => d.close());
  return d;
}

const ops = (s: FakeSheep, op: number, oid?: bigint): SdRequest[] =>
  s.log.filter((r) => r.opcode === op && (oid === undefined || (r.args.kind === 'obj' && r.args.oid === oid)));

/** Another target allocates object 1 ("theirs") behind the device's back: data object, then its index entry. */
async function allocateBehind(c: SheepClient, vid: number): Promise<void> {
  await c.createAndWriteObj(vidToDataOid(vid, 1), Buffer.from('theirs'));
  const e = Buffer.alloc(4);
  e.writeUInt32LE(vid);
  await c.writeObj(vidToVdiOid(vid), e, { offset: 4664 + 4 });
}

/** Take a snapshot the way dog does (tag into the working inode, then NEW_VDI snapid 1). */
async function snapshot(c: SheepClient, tag: string): Promise<void> {
  const { vid } = await c.getVdiInfo('disk');
  const h = await c.readInodeHeader(vid);
  await c.writeObj(vidToVdiOid(vid), fixedString(tag, 256), { offset: 256 });
  await c.newVdi({ name: 'disk', size: h.vdiSize, baseVid: vid, snapshot: true, copies: h.nrCopies, blockSizeShift: h.blockSizeShift });
}

describe('VdiDevice', () => {
  it('locks on open, refresh-reads the inode, releases on close', async () => {
    const { s, c, vid } = await setup();
    const d = await VdiDevice.open({ gateways: s.addr, vdi: 'disk' });
    expect(s.locks.get(vid)?.state).toBe(C.LOCK_STATE_LOCKED);
    expect(d.size).toBe(16 * MiB);
    expect(d.preferredBlockSize).toBe(MiB);
    const rr = ops(s, C.SD_OP_READ_OBJ, vidToVdiOid(vid))[0]!;
    expect(rr.dataLength).toBe(C.TGT_INODE_SIZE);
    expect(rr.flags & C.SD_FLAG_CMD_TGT).toBe(C.SD_FLAG_CMD_TGT);
    await expect(VdiDevice.open({ gateways: s.addr, vdi: 'disk' })).rejects.toMatchObject({ code: 'ECONFLICT' });
    const pending = d.write(0, Buffer.alloc(4096, 1)); // in flight when close() starts: it completes
    const closing = d.close();
    await expect(d.read(0, 512)).rejects.toMatchObject({ code: 'ESHUTDOWN' }); // new requests are refused
    await pending;
    await Promise.all([closing, d.close()]);
    expect(s.locks.get(vid)).toBeUndefined();
    expect(ops(s, C.SD_OP_RELEASE_VDI)).toHaveLength(1);
    expect((await c.readObj(vidToDataOid(vid, 0), 4096)).equals(Buffer.alloc(4096, 1))).toBe(true);
  });

  it('round-trips unaligned multi-object writes; holes read as zeros; one index write per request', async () => {
    const { s, vid } = await setup();
    const d = await open(s);
    const data = crypto.randomBytes(3 * MiB + 1000);
    const off = MiB / 2 + 512;
    await d.write(off, data);
    expect((await d.read(off, data.length)).equals(data)).toBe(true);
    expect((await d.read(0, off)).equals(Buffer.alloc(off))).toBe(true);
    expect((await d.read(8 * MiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    expect(ops(s, C.SD_OP_CREATE_AND_WRITE_OBJ)).toHaveLength(4);
    const idx = ops(s, C.SD_OP_WRITE_OBJ, vidToVdiOid(vid));
    expect(idx).toHaveLength(1);
    expect(idx[0]!.args).toMatchObject({ offset: 4664 });
    expect(idx[0]!.dataLength).toBe(16);
    // A second open sees the same bytes (the index was persisted).
    await d.close();
    const d2 = await open(s);
    expect((await d2.read(off, data.length)).equals(data)).toBe(true);
    const ext = await d2.extents(0, 16 * MiB);
    expect(ext).toEqual([
      { offset: 0, length: 4 * MiB, allocated: true, zero: false },
      { offset: 4 * MiB, length: 12 * MiB, allocated: false, zero: true },
    ]);
  });

  it('serializes concurrent writes to one unallocated object: one create, the rest are plain writes', async () => {
    const { s } = await setup();
    const d = await open(s);
    const parts = [...Array(8).keys()].map((i) => Buffer.alloc(4096, i + 1));
    await Promise.all(parts.map((b, i) => d.write(i * 4096, b)));
    expect(ops(s, C.SD_OP_CREATE_AND_WRITE_OBJ)).toHaveLength(1);
    const back = await d.read(0, 8 * 4096);
    parts.forEach((b, i) => expect(back.subarray(i * 4096, (i + 1) * 4096).equals(b)).toBe(true));
  });

  it('copies on write from a snapshot and exports the snapshot read-only with its own bytes', async () => {
    const { s, c, vid } = await setup();
    const d0 = await open(s);
    const orig = crypto.randomBytes(2 * MiB);
    await d0.write(0, orig);
    await d0.close();
    await snapshot(c, 'snap1');
    const d = await open(s);
    expect(d.currentVid).not.toBe(vid);
    await d.write(100, Buffer.from('new bytes'));
    const cow = ops(s, C.SD_OP_CREATE_AND_WRITE_OBJ).at(-1)!;
    expect(cow.flags & C.SD_FLAG_CMD_COW).toBe(C.SD_FLAG_CMD_COW);
    expect(cow.args).toMatchObject({ cowOid: vidToDataOid(vid, 0), oid: vidToDataOid(d.currentVid, 0), offset: 100 });
    const want = Buffer.from(orig);
    Buffer.from('new bytes').copy(want, 100);
    expect((await d.read(0, 2 * MiB)).equals(want)).toBe(true);
    const snap = await open(s, { tag: 'snap1' });
    expect(snap.readOnly).toBe(true);
    expect((await snap.read(0, 2 * MiB)).equals(orig)).toBe(true);
    await expect(snap.write(0, Buffer.alloc(512))).rejects.toMatchObject({ code: 'EROFS' });
  });

  it('discards whole objects (index zeroed, own objects removed) and zeroes partial ranges', async () => {
    const { s, vid } = await setup();
    const d = await open(s);
    await d.write(0, Buffer.alloc(3 * MiB, 0xab));
    await d.discard(0, 2 * MiB + 4096);
    expect(s.objects.has(vidToDataOid(vid, 0))).toBe(false);
    expect(s.objects.has(vidToDataOid(vid, 1))).toBe(false);
    expect(s.inode(vid)!.readUInt32LE(4664)).toBe(0);
    const back = await d.read(0, 3 * MiB);
    expect(back.subarray(0, 2 * MiB + 4096).equals(Buffer.alloc(2 * MiB + 4096))).toBe(true);
    expect(back.subarray(2 * MiB + 4096).equals(Buffer.alloc(MiB - 4096, 0xab))).toBe(true);
    await d.writeZeroes(2 * MiB, MiB);
    expect((await d.read(2 * MiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    expect(s.objects.has(vidToDataOid(vid, 2))).toBe(true); // zeroed in place, not unmapped
    await d.writeZeroes(2 * MiB, MiB, { mayTrim: true });
    expect(s.objects.has(vidToDataOid(vid, 2))).toBe(false);
    expect(await d.extents(0, 4 * MiB)).toEqual([{ offset: 0, length: 4 * MiB, allocated: false, zero: true }]);
    await d.write(0, Buffer.alloc(512, 1));
    await expect(d.writeZeroes(0, MiB, { fastOnly: true })).rejects.toBeInstanceOf(BlockError);
  });

  it('reloads the inode on INODE_INVALIDATED and retries the request', async () => {
    const { s, c, vid } = await setup();
    const d = await open(s, { shared: true });
    await allocateBehind(c, vid);
    let invalid = true;
    s.hook = (req) => {
      if (req.args.kind !== 'obj' || (req.flags & C.SD_FLAG_CMD_TGT) === 0) return undefined;
      if (req.opcode === C.SD_OP_READ_OBJ && req.dataLength === C.TGT_INODE_SIZE) {
        invalid = false;
        return undefined;
      }
      return invalid ? { action: 'reply', result: C.SD_RES_INODE_INVALIDATED } : undefined;
    };
    // Block status must not answer from the stale cache either (NBD clients skip "holes").
    expect(await d.extents(MiB, MiB)).toEqual([{ offset: MiB, length: MiB, allocated: true, zero: false }]);
    const got = await d.read(MiB, 6);
    expect(got.toString()).toBe('theirs');
    expect(ops(s, C.SD_OP_READ_OBJ, vidToVdiOid(vid)).filter((r) => r.dataLength === C.TGT_INODE_SIZE)).toHaveLength(2);
  });

  it('a read that passes the coherence check while its refresh read is still in flight uses the refreshed inode', async () => {
    // The gateway validates a participant when the refresh read arrives, before it answers: a request of the
    // same target checked in that window passes, and must not act on the inode cached before the refresh
    // (drill partition: B read zeros for a block A had written, found in 1 of 4 runs).
    const { s, c, vid } = await setup();
    const d = await open(s, { shared: true });
    await allocateBehind(c, vid);
    let invalid = true;
    let refreshArrived!: () => void;
    const arrived = new Promise<void>((r) => (refreshArrived = r));
    let answerRefresh!: () => void;
    const answer = new Promise<void>((r) => (answerRefresh = r));
    s.hook = async (req) => {
      if (req.args.kind !== 'obj' || (req.flags & C.SD_FLAG_CMD_TGT) === 0) return undefined;
      if (req.opcode === C.SD_OP_READ_OBJ && req.dataLength === C.TGT_INODE_SIZE) {
        invalid = false;
        refreshArrived();
        await answer;
        return undefined;
      }
      if (!invalid && req.opcode === C.SD_OP_READ_OBJ && req.dataLength === 1) probePassed();
      return invalid ? { action: 'reply', result: C.SD_RES_INODE_INVALIDATED } : undefined;
    };
    let probePassed!: () => void;
    const passed = new Promise<void>((r) => (probePassed = r));
    const first = d.read(MiB, 6);
    await arrived;
    const second = d.read(MiB, 6);
    // The second read's coherence probe passes at the "gateway" before the refresh read is answered.
    await passed;
    await new Promise((r) => setImmediate(r));
    answerRefresh();
    expect((await first).toString()).toBe('theirs');
    expect((await second).toString()).toBe('theirs');
  });

  it('shared: an object another host discarded is allocated again, not reported as an I/O error', async () => {
    const { s, c, vid } = await setup();
    const d = await open(s, { shared: true });
    await d.write(MiB, Buffer.alloc(4096, 7));
    // Another host unmaps object 1: index entry zeroed, object removed (our cache still maps it).
    await c.writeObj(vidToVdiOid(vid), Buffer.alloc(4), { offset: 4664 + 4 });
    await c.removeObj(vidToDataOid(vid, 1));
    const x = crypto.randomBytes(4096);
    await d.write(MiB + 8192, x);
    expect((await d.read(MiB + 8192, 4096)).equals(x)).toBe(true);
    expect((await d.read(MiB, 4096)).equals(Buffer.alloc(4096))).toBe(true);
    expect(s.objects.has(vidToDataOid(vid, 1))).toBe(true);
  });

  it('follows a snapshot taken under it (READONLY): new working vid, lock moved, COW', async () => {
    const { s, c, vid } = await setup();
    const d = await open(s);
    await d.write(0, Buffer.alloc(4096, 7));
    await snapshot(c, 'live');
    await d.write(0, Buffer.alloc(512, 9));
    expect(d.currentVid).not.toBe(vid);
    expect(s.locks.get(d.currentVid)?.state).toBe(C.LOCK_STATE_LOCKED);
    expect(s.locks.get(vid)).toBeUndefined();
    const back = await d.read(0, 4096);
    expect(back.subarray(0, 512).equals(Buffer.alloc(512, 9))).toBe(true);
    expect(back.subarray(512).equals(Buffer.alloc(4096 - 512, 7))).toBe(true);
    const snap = await open(s, { tag: 'live' });
    expect((await snap.read(0, 4096)).equals(Buffer.alloc(4096, 7))).toBe(true);
  });

  it('keeps an allocation whose index write landed in the old inode right after a snapshot', async () => {
    const { s, c, vid } = await setup();
    const d = await open(s);
    let snapped = false;
    s.hook = async (req) => {
      // The snapshot is taken between our CREATE and our index write, so the new working VDI's index
      // (copied at snapshot time) lacks the entry that then lands in the snapshot's inode.
      if (!snapped && req.opcode === C.SD_OP_WRITE_OBJ && req.args.kind === 'obj' && req.args.oid === vidToVdiOid(vid) && req.args.offset >= 4664) {
        snapped = true;
        s.hook = null;
        await snapshot(c, 'mid');
      }
      return undefined;
    };
    await d.write(3 * MiB, Buffer.alloc(4096, 0x33));
    expect(snapped).toBe(true);
    await d.write(0, Buffer.alloc(512, 1)); // READONLY -> snapshot reload
    expect(d.currentVid).not.toBe(vid);
    expect((await d.read(3 * MiB, 4096)).equals(Buffer.alloc(4096, 0x33))).toBe(true);
    await d.close();
    const fresh = await open(s, { noLock: true });
    expect((await fresh.read(3 * MiB, 4096)).equals(Buffer.alloc(4096, 0x33))).toBe(true);
  });

  it('derives a stable identity from the cluster ctime and vid', async () => {
    const { s } = await setup();
    const a = await open(s, { noLock: true, name: 'exp1' });
    const b = await open(s, { noLock: true, name: 'exp2' });
    expect(a.identity.serial).toBe(b.identity.serial);
    expect(a.identity.naaId).toBe(b.identity.naaId);
    expect(a.identity.name).toBe('exp1');
  });

  it('fails with a clear error for an unknown VDI', async () => {
    const { s } = await setup();
    await expect(VdiDevice.open({ gateways: s.addr, vdi: 'nope' })).rejects.toThrow('cannot open VDI nope: cannot lock VDI nope: No VDI found');
  });
});
