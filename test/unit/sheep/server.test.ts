// The sheep served in-process on a temp store, driven over real sockets with the wire helper: format, VDI
// create/lookup/snapshot/clone/delete, tgt-style object I/O with the index side effects, locks and coherence,
// pipelining, and the error replies of the fact sheet.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { decodeInode, decodeInodeHeader } from '../../../src/proto/sheepdog/inode.js';
import { decodeNodes } from '../../../src/proto/sheepdog/node.js';
import { decodeVdiStates } from '../../../src/proto/sheepdog/vdi-state.js';
import { oidHex, vidToDataOid, vidToVdiOid } from '../../../src/proto/sheepdog/oid.js';
import { sdHashVdi } from '../../../src/proto/sheepdog/hash.js';
import { startSheep, type RunningSheep } from '../../../src/sheep/index.js';
import { SheepWire, okReply } from '../../helpers/sheep-wire.js';

const MiB = 1024 * 1024;
let dir: string;
let sheep: RunningSheep;
let w: SheepWire;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sheep-unit-'));
  sheep = await startSheep({ dir, port: 0 });
  w = await SheepWire.connect({ port: sheep.port });
});

afterAll(async () => {
  w.close();
  await sheep.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const objFile = (oid: bigint): string => path.join(dir, 'obj', oidHex(oid));

describe('sheep over the wire', () => {
  it('refuses I/O before format and serves force ops', async () => {
    const r = await w.read(vidToVdiOid(1), 0, 10);
    expect(r.rsp.result).toBe(C.SD_RES_WAIT_FOR_FORMAT);
    expect(r.rsp.dataLength).toBe(0);
    const st = await w.request(C.SD_OP_STAT_CLUSTER, { dataLength: 48 });
    expect(st.rsp.result).toBe(C.SD_RES_WAIT_FOR_FORMAT);
    const nl = await w.request(C.SD_OP_GET_NODE_LIST, { dataLength: 80 * 16 });
    expect(nl.rsp.result).toBe(0);
    expect(decodeNodes(nl.data)).toHaveLength(1);
    expect(decodeNodes(nl.data)[0]!.nid.port).toBe(sheep.port);
  });

  it('formats with locking and reports the cluster', async () => {
    okReply(await w.makeFs({ copies: 1, flags: C.SD_CLUSTER_FLAG_USE_LOCK }));
    const st = await w.request(C.SD_OP_STAT_CLUSTER, { dataLength: 48 + 80, args: { kind: 'cluster', nodesNr: 1 } });
    expect(st.rsp.result).toBe(0);
    expect(st.rsp.epoch).toBe(1);
    expect(st.data.readUInt32LE(16)).toBe(1); // epoch
    expect(st.data.readUInt16LE(30)).toBe(C.SD_CLUSTER_FLAG_USE_LOCK);
    const def = await w.request(C.SD_OP_GET_CLUSTER_DEFAULT);
    expect(def.rsp.args).toMatchObject({ kind: 'clusterDefault', nrCopies: 1, blockSizeShift: 22 });
    expect(fs.readFileSync(path.join(dir, 'config')).length).toBe(40);
  });

  it('creates a VDI at the name hash and finds it by name', async () => {
    const r = okReply(await w.newVdi('test', 64n * BigInt(MiB)));
    expect(r.rsp.args).toMatchObject({ kind: 'vdi', vdiId: 0x7c2b25, copies: 1, blockSizeShift: 22 });
    expect((await w.newVdi('test', 1n)).rsp.result).toBe(C.SD_RES_VDI_EXIST);
    const info = okReply(await w.vdiInfo('test'));
    expect(info.rsp.args).toMatchObject({ vdiId: 0x7c2b25 });
    expect((await w.vdiInfo('nosuch')).rsp.result).toBe(C.SD_RES_NO_VDI);
    expect((await w.vdiInfo('test', 'nosnap')).rsp.result).toBe(C.SD_RES_NO_TAG);
    const ino = decodeInodeHeader(okReply(await w.read(vidToVdiOid(0x7c2b25), 0, 4664)).data);
    expect(ino).toMatchObject({ name: 'test', vdiSize: 64n * BigInt(MiB), snapId: 1, vdiId: 0x7c2b25, nrCopies: 1 });
    const bm = okReply(await w.request(C.SD_OP_READ_VDIS, { dataLength: C.SD_VDI_BITMAP_SIZE }));
    expect(bm.data.length).toBe(C.SD_VDI_BITMAP_SIZE);
    expect(bm.data[0x7c2b25 >> 3]! & (1 << (0x7c2b25 & 7))).not.toBe(0);
    expect((await w.request(C.SD_OP_READ_VDIS, { dataLength: 1000 })).rsp.result).toBe(C.SD_RES_INVALID_PARMS);
  });

  it('serves the tgt open, write, read, flush and release sequence', async () => {
    const vid = 0x7c2b25;
    const lock = await w.lock('test', C.LOCK_TYPE_SHARED, 1);
    expect(lock.rsp.result).toBe(0);
    expect(lock.rsp.args).toMatchObject({ vdiId: vid });
    expect(lock.rsp.dataLength).toBe(0);
    const open = okReply(await w.read(vidToVdiOid(vid), 0, C.TGT_INODE_SIZE, C.SD_FLAG_CMD_TGT));
    expect(open.data.length).toBe(C.TGT_INODE_SIZE);
    const data = Buffer.alloc(8192, 0x5a);
    const cr = await w.create(vidToDataOid(vid, 0), 0, data, { flags: C.SD_FLAG_CMD_TGT | C.SD_FLAG_CMD_CACHE });
    expect(cr.rsp.result).toBe(0);
    expect(cr.rsp.dataLength).toBe(0);
    okReply(await w.setIndex(vid, 0, vid, C.SD_FLAG_CMD_TGT));
    const rd = okReply(await w.read(vidToDataOid(vid, 0), 0, 8192, C.SD_FLAG_CMD_TGT, 1));
    expect(rd.data.equals(data)).toBe(true);
    expect(fs.statSync(objFile(vidToDataOid(vid, 0))).size).toBe(4 * MiB);
    const probe = okReply(await w.read(vidToVdiOid(vid), 0, 1, C.SD_FLAG_CMD_TGT, 1));
    expect(probe.data.length).toBe(1);
    const fl = await w.request(C.SD_OP_FLUSH_VDI, { protoVer: 1, args: { kind: 'obj', oid: vidToVdiOid(vid) } });
    expect(fl.rsp.result).toBe(C.SD_RES_INVALID_PARMS);
    // A second shared opener through the same sheep is refused; an exclusive one too.
    expect((await w.lock('test', C.LOCK_TYPE_SHARED)).rsp.result).toBe(C.SD_RES_VDI_LOCKED);
    expect((await w.lock('test', C.LOCK_TYPE_NORMAL)).rsp.result).toBe(C.SD_RES_VDI_LOCKED);
    const copies = okReply(await w.request(C.SD_OP_GET_VDI_COPIES, { dataLength: 1428 * 16 }));
    const st = decodeVdiStates(copies.data).find((s) => s.vid === vid)!;
    expect(st.lockState).toBe(C.LOCK_STATE_SHARED);
    expect(st.participants.map((p) => p.state)).toEqual([C.SHARED_LOCK_STATE_MODIFIED]);
    const rel = await w.release(vid);
    expect(rel.rsp.result).toBe(0);
    const after = decodeVdiStates(okReply(await w.request(C.SD_OP_GET_VDI_COPIES, { dataLength: 1428 * 16 })).data);
    expect(after.find((s) => s.vid === vid)!.lockState).toBe(C.LOCK_STATE_UNLOCKED);
    // Exclusive: one holder, even from the same sheep.
    okReply(await w.lock('test', C.LOCK_TYPE_NORMAL));
    expect((await w.lock('test', C.LOCK_TYPE_NORMAL)).rsp.result).toBe(C.SD_RES_VDI_LOCKED);
    okReply(await w.release(vid, C.LOCK_TYPE_NORMAL));
  });

  it('snapshots: the old objects become read-only and COW keeps the parent bytes', async () => {
    const vid = 0x7c2b25;
    // dog: tag into the working inode, then NEW_VDI snapid=1 base=current.
    const tag = Buffer.alloc(256);
    tag.write('s1');
    okReply(await w.write(vidToVdiOid(vid), 256, tag));
    const snap = okReply(await w.newVdi('test', 64n * BigInt(MiB), { base: vid, snapid: 1 }));
    const nvid = (snap.rsp.args as { vdiId: number }).vdiId;
    expect(nvid).toBe(vid + 1);
    expect((okReply(await w.vdiInfo('test')).rsp.args as { vdiId: number }).vdiId).toBe(nvid);
    expect((okReply(await w.vdiInfo('test', 's1')).rsp.args as { vdiId: number }).vdiId).toBe(vid);
    expect((okReply(await w.vdiInfo('test', '', 1)).rsp.args as { vdiId: number }).vdiId).toBe(vid);
    const w1 = await w.write(vidToDataOid(vid, 0), 0, Buffer.alloc(512, 1), C.SD_FLAG_CMD_TGT);
    expect(w1.rsp.result).toBe(C.SD_RES_READONLY);
    const ni = decodeInode(okReply(await w.read(vidToVdiOid(nvid), 0, C.TGT_INODE_SIZE)).data);
    expect(ni.dataVdiId[0]).toBe(vid);
    expect(ni.parentVdiId).toBe(vid);
    expect(ni.snapId).toBe(2);
    expect(ni.tag).toBe('');
    okReply(await w.create(vidToDataOid(nvid, 0), 4096, Buffer.alloc(4096, 0x77), { cowOid: vidToDataOid(vid, 0), flags: C.SD_FLAG_CMD_TGT }));
    okReply(await w.setIndex(nvid, 0, nvid));
    const cow = okReply(await w.read(vidToDataOid(nvid, 0), 0, 8192)).data;
    expect(cow.subarray(0, 4096).equals(Buffer.alloc(4096, 0x5a))).toBe(true);
    expect(cow.subarray(4096).equals(Buffer.alloc(4096, 0x77))).toBe(true);
    const old = okReply(await w.read(vidToDataOid(vid, 0), 0, 8192)).data;
    expect(old.equals(Buffer.alloc(8192, 0x5a))).toBe(true);
    // The snapshot's object is still referenced by the snapshot: not reclaimed by the index change.
    expect(fs.existsSync(objFile(vidToDataOid(vid, 0)))).toBe(true);
  });

  it('clones a snapshot and deletes VDIs, reclaiming unreferenced objects only', async () => {
    const snap = 0x7c2b25;
    const clone = okReply(await w.newVdi('clone1', 0n, { base: snap }));
    const cvid = (clone.rsp.args as { vdiId: number }).vdiId;
    expect(cvid).toBe(sdHashVdi('clone1'));
    const ci = decodeInode(okReply(await w.read(vidToVdiOid(cvid), 0, C.TGT_INODE_SIZE)).data);
    expect(ci.dataVdiId[0]).toBe(snap);
    expect(ci.vdiSize).toBe(64n * BigInt(MiB));
    // Delete the snapshot: the clone still maps index 0 to it, so the object stays.
    okReply(await w.delVdi('test', 's1'));
    expect(fs.existsSync(objFile(vidToDataOid(snap, 0)))).toBe(true);
    expect((await w.vdiInfo('test', 's1')).rsp.result).toBe(C.SD_RES_NO_TAG);
    // Delete the clone: now nothing references the snapshot's object.
    okReply(await w.delVdi('clone1'));
    expect(fs.existsSync(objFile(vidToDataOid(snap, 0)))).toBe(false);
    // Delete the working VDI: its own object goes.
    const nvid = snap + 1;
    expect(fs.existsSync(objFile(vidToDataOid(nvid, 0)))).toBe(true);
    okReply(await w.delVdi('test'));
    expect(fs.existsSync(objFile(vidToDataOid(nvid, 0)))).toBe(false);
    expect((await w.vdiInfo('test')).rsp.result).toBe(C.SD_RES_NO_VDI);
    const del = okReply(await w.request(C.SD_OP_READ_DEL_VDIS, { dataLength: C.SD_VDI_BITMAP_SIZE }));
    expect(del.data[nvid >> 3]! & (1 << (nvid & 7))).not.toBe(0);
    // Re-creating the name continues its snap_id sequence.
    const again = okReply(await w.newVdi('test', BigInt(MiB)));
    const avid = (again.rsp.args as { vdiId: number }).vdiId;
    expect(avid).not.toBe(nvid);
  });

  it('answers pipelined requests by id, and bad input with errors', async () => {
    const vid = okReply(await w.newVdi('pipe', 8n * BigInt(MiB))).rsp.args as { vdiId: number };
    const big = Buffer.alloc(2 * MiB, 3);
    okReply(await w.create(vidToDataOid(vid.vdiId, 0), 0, big));
    const ps = [w.read(vidToDataOid(vid.vdiId, 0), 0, 2 * MiB), w.request(C.SD_OP_GET_NODE_LIST, { dataLength: 800 }), w.read(vidToDataOid(vid.vdiId, 0), 0, 16)];
    const rs = await Promise.all(ps);
    expect(rs.map((r) => r.rsp.result)).toEqual([0, 0, 0]);
    expect(rs[0]!.data.equals(big)).toBe(true);
    expect((await w.request(0x7e)).rsp.result).toBe(C.SD_RES_INVALID_PARMS);
    expect((await w.request(C.SD_OP_READ_OBJ, { protoVer: 3, dataLength: 4 })).rsp.result).toBe(C.SD_RES_VER_MISMATCH);
    expect((await w.request(C.SD_OP_GET_NODE_LIST, { protoVer: 2, dataLength: 80 })).rsp.result).toBe(C.SD_RES_VER_MISMATCH);
    const past = await w.read(vidToDataOid(vid.vdiId, 0), 4 * MiB - 4, 8);
    expect(past.rsp.result).toBe(C.SD_RES_INVALID_PARMS);
    expect(past.rsp.dataLength).toBe(0);
    expect((await w.write(vidToDataOid(vid.vdiId, 1), 0, Buffer.alloc(16))).rsp.result).toBe(C.SD_RES_NO_OBJ);
    const nv = await w.request(C.SD_OP_NEW_VDI, { args: { kind: 'vdi', vdiSize: 1n } }, Buffer.alloc(100));
    expect(nv.rsp.result).toBe(C.SD_RES_INVALID_PARMS);
    // An oversize payload closes the connection; other connections keep working.
    const bad = await SheepWire.connect({ port: sheep.port });
    const hdr = Buffer.alloc(48);
    hdr.writeUInt8(2, 0);
    hdr.writeUInt8(C.SD_OP_WRITE_OBJ, 1);
    hdr.writeUInt16LE(C.SD_FLAG_CMD_WRITE, 2);
    hdr.writeUInt32LE(0xffffffff, 12);
    bad.writeRaw(hdr);
    await bad.whenClosed();
    expect((await w.request(C.SD_OP_GET_NODE_LIST, { dataLength: 80 })).rsp.result).toBe(0);
  });

  it('serves the unix socket in the store directory', async () => {
    const u = await SheepWire.connect({ path: path.join(dir, 'sock') });
    expect((await u.request(C.SD_OP_GET_NODE_LIST, { dataLength: 80 })).rsp.result).toBe(0);
    u.close();
  });
});
