// The VDI namespace (fact sheet §4.2): linear probing from the name hash, wrap-around past 2^24 (functional
// test 105's vectors), lookup of the working VDI and of snapshots by tag or snap id, NO_VDI vs NO_TAG.
import { describe, expect, it } from 'vitest';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { emptyInode, encodeInodeHeader, type InodeHeader } from '../../../src/proto/sheepdog/inode.js';
import { VdiNamespace, type InodeReader } from '../../../src/sheep/vdi.js';

class FakeCluster {
  ns = new VdiNamespace();
  inodes = new Map<number, InodeHeader>();
  read: InodeReader = (vid, off, len) => {
    const h = this.inodes.get(vid);
    if (!h) return Promise.reject(Object.assign(new Error('no obj'), { result: C.SD_RES_NO_OBJ }));
    return Promise.resolve(encodeInodeHeader(h).subarray(off, off + len));
  };

  /** Create a VDI, or snapshot the working VDI of `name` (it keeps `tag`). */
  async create(name: string, snapshotTag?: string): Promise<number> {
    const cur = await this.ns.lookup(name, '', 0, this.read);
    const { result, vid } = this.ns.allocateVid(name);
    expect(result).toBe(C.SD_RES_SUCCESS);
    const { dataVdiId: _d, gref: _g, ...base } = emptyInode();
    const snapId = snapshotTag !== undefined ? cur.header!.snapId + 1 : cur.nextSnapId;
    this.inodes.set(vid, { ...base, name, vdiId: vid, snapId, parentVdiId: snapshotTag !== undefined ? cur.vid : 0 });
    let oldVid = 0;
    if (snapshotTag !== undefined) {
      oldVid = cur.vid;
      const old = this.inodes.get(oldVid)!;
      this.inodes.set(oldVid, { ...old, snapCtime: 1n << 32n, tag: snapshotTag });
    }
    this.ns.applyAdd({ vid, nrCopies: 1, copyPolicy: 0, blockSizeShift: 22, snapshot: false, deleted: false, parentVid: oldVid }, oldVid);
    return vid;
  }
}

describe('VdiNamespace', () => {
  it('allocates from the name hash and wraps past 2^24 as in functional test 105', async () => {
    const f = new FakeCluster();
    expect(await f.create('01909709')).toBe(1);
    expect(await f.create('05421217')).toBe(0xffffff);
    expect(await f.create('00471718')).toBe(0xfffff9);
    const snaps: number[] = [];
    for (let i = 0; i < 8; i++) snaps.push(await f.create('00471718', `t${i}`));
    expect(snaps).toEqual([0xfffffa, 0xfffffb, 0xfffffc, 0xfffffd, 0xfffffe, 2, 3, 4]);
    const cur = await f.ns.lookup('00471718', '', 0, f.read);
    expect(cur).toMatchObject({ result: C.SD_RES_SUCCESS, vid: 4, nextSnapId: 10 });
    expect(await f.ns.lookup('00471718', 't0', 0, f.read)).toMatchObject({ result: C.SD_RES_SUCCESS, vid: 0xfffff9 });
    expect(await f.ns.lookup('00471718', 't6', 0, f.read)).toMatchObject({ result: C.SD_RES_SUCCESS, vid: 2 });
    expect(await f.ns.lookup('00471718', '', 8, f.read)).toMatchObject({ result: C.SD_RES_SUCCESS, vid: 3 });
    // snap_id 9 is the working VDI, not a snapshot.
    expect((await f.ns.lookup('00471718', '', 9, f.read)).result).toBe(C.SD_RES_NO_TAG);
    expect((await f.ns.lookup('00471718', 'nope', 0, f.read)).result).toBe(C.SD_RES_NO_TAG);
    expect((await f.ns.lookup('05421217', '', 0, f.read)).vid).toBe(0xffffff);
    expect((await f.ns.lookup('01909709', '', 0, f.read)).vid).toBe(1);
  });

  it('answers NO_VDI for unknown names and for a name whose working VDI is gone', async () => {
    const f = new FakeCluster();
    expect((await f.ns.lookup('test', '', 0, f.read)).result).toBe(C.SD_RES_NO_VDI);
    const v = await f.create('test');
    expect(v).toBe(0x7c2b25);
    await f.create('test', 'snap');
    const w = (await f.ns.lookup('test', '', 0, f.read)).vid;
    // Delete the working VDI: its name is cleared in the inode.
    f.inodes.set(w, { ...f.inodes.get(w)!, name: '' });
    f.ns.applyDelete(w);
    const r = await f.ns.lookup('test', '', 0, f.read);
    expect(r.result).toBe(C.SD_RES_NO_VDI);
    expect(r.nextSnapId).toBe(2);
    expect(f.ns.deleted.test(w)).toBe(true);
    expect(f.ns.get(v)!.snapshot).toBe(true);
    expect(f.ns.familyFrom(v)).toEqual([v, w]);
  });
});
