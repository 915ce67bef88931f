// The rest of the op table over the wire: discard, hash/exist/oids-exist, object list, attributes, repair of
// the local replica, cluster info, store list, recovery state, peer-op epoch checks, restart persistence, and
// KILL_NODE.
import { afterAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { decodeClusterInfo, decodeRecoveryState } from '../../../src/proto/sheepdog/cluster-info.js';
import { encodeVdiAttr } from '../../../src/proto/sheepdog/attr.js';
import { sdHashVdi } from '../../../src/proto/sheepdog/hash.js';
import { vidToAttrOid, vidToDataOid, vidToVdiOid } from '../../../src/proto/sheepdog/oid.js';
import { startSheep, type RunningSheep } from '../../../src/sheep/index.js';
import { SheepWire, okReply } from '../../helpers/sheep-wire.js';

const dirs: string[] = [];
const running: RunningSheep[] = [];
afterAll(async () => {
  for (const s of running) await s.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function fresh(dir?: string): Promise<{ sheep: RunningSheep; w: SheepWire; dir: string }> {
  const d = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'sheep-ops-'));
  if (!dir) dirs.push(d);
  const sheep = await startSheep({ dir: d, port: 0 });
  running.push(sheep);
  return { sheep, w: await SheepWire.connect({ port: sheep.port }), dir: d };
}

const vidOf = (r: { rsp: { args: unknown } }): number => (r.rsp.args as { vdiId: number }).vdiId;

describe('sheep ops', () => {
  it('discards objects, hashes them and reports existence', async () => {
    const { w } = await fresh();
    okReply(await w.makeFs());
    const vid = vidOf(okReply(await w.newVdi('d', 16n << 20n)));
    const bytes = crypto.randomBytes(4096);
    for (const idx of [0, 1]) {
      okReply(await w.create(vidToDataOid(vid, idx), 0, bytes));
      okReply(await w.setIndex(vid, idx, vid));
    }
    const h = okReply(await w.request(C.SD_OP_GET_HASH, { args: { kind: 'obj', oid: vidToDataOid(vid, 0) } }));
    const full = Buffer.alloc(4 << 20);
    bytes.copy(full);
    expect((h.rsp.args as { digest: Buffer }).digest.equals(crypto.createHash('sha1').update(full).digest())).toBe(true);
    okReply(await w.request(C.SD_OP_DISCARD_OBJ, { args: { kind: 'obj', oid: vidToDataOid(vid, 1) } }));
    okReply(await w.request(C.SD_OP_DISCARD_OBJ, { args: { kind: 'obj', oid: vidToDataOid(vid, 1) } })); // already unmapped
    expect((await w.request(C.SD_OP_EXIST, { args: { kind: 'obj', oid: vidToDataOid(vid, 1) } })).rsp.result).toBe(C.SD_RES_NO_OBJ);
    expect((await w.request(C.SD_OP_EXIST, { args: { kind: 'obj', oid: vidToDataOid(vid, 0) } })).rsp.result).toBe(0);
    const idx = okReply(await w.read(vidToVdiOid(vid), C.SD_INODE_HEADER_SIZE, 8)).data;
    expect([idx.readUInt32LE(0), idx.readUInt32LE(4)]).toEqual([vid, 0]);
    const oids = Buffer.alloc(16);
    oids.writeBigUInt64LE(vidToDataOid(vid, 0), 0);
    oids.writeBigUInt64LE(vidToDataOid(vid, 1), 8);
    const ex = await w.request(C.SD_OP_OIDS_EXIST, { flags: C.SD_FLAG_CMD_WRITE | C.SD_FLAG_CMD_PIGGYBACK }, oids);
    expect(ex.rsp.result).toBe(C.SD_RES_NO_OBJ);
    expect(ex.data.readBigUInt64LE(0)).toBe(vidToDataOid(vid, 1));
    const list = okReply(await w.request(C.SD_OP_GET_OBJ_LIST, { dataLength: 1024 }));
    const got = [];
    for (let o = 0; o < list.data.length; o += 8) got.push(list.data.readBigUInt64LE(o));
    expect(got).toEqual([vidToDataOid(vid, 0), vidToVdiOid(vid)]);
    expect((await w.request(C.SD_OP_GET_OBJ_LIST, { dataLength: 8 })).rsp.result).toBe(C.SD_RES_BUFFER_SMALL);
    // REPAIR_REPLICA naming this node verifies the local replica.
    const self = { kind: 'forw' as const, oid: vidToDataOid(vid, 0), addr: Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 127, 0, 0, 1]), port: w.sock.remotePort! };
    okReply(await w.request(C.SD_OP_REPAIR_REPLICA, { args: self }));
    const stranger = { ...self, addr: Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 1, 2, 3]) };
    expect((await w.request(C.SD_OP_REPAIR_REPLICA, { args: stranger })).rsp.result).toBe(C.SD_RES_INVALID_PARMS);
    w.close();
  });

  it('creates, finds and deletes VDI attributes', async () => {
    const { w } = await fresh();
    okReply(await w.makeFs());
    okReply(await w.newVdi('at', 1n << 20n));
    const attr = encodeVdiAttr({ name: 'at', tag: '', ctime: 0n, snapId: 0, key: 'k', value: Buffer.from('v1') });
    const flags = C.SD_FLAG_CMD_WRITE;
    expect((await w.request(C.SD_OP_GET_VDI_ATTR, { flags }, attr)).rsp.result).toBe(C.SD_RES_NO_OBJ);
    const cr = okReply(await w.request(C.SD_OP_GET_VDI_ATTR, { flags: flags | C.SD_FLAG_CMD_CREAT }, attr));
    const { vdiId, attrId } = cr.rsp.args as { vdiId: number; attrId: number };
    expect(vdiId).toBe(sdHashVdi('at'));
    const obj = okReply(await w.read(vidToAttrOid(vdiId, attrId), 0, C.SD_ATTR_OBJ_SIZE)).data;
    expect(obj.equals(attr)).toBe(true);
    expect((await w.request(C.SD_OP_GET_VDI_ATTR, { flags: flags | C.SD_FLAG_CMD_CREAT | C.SD_FLAG_CMD_EXCL }, attr)).rsp.result).toBe(C.SD_RES_VDI_EXIST);
    okReply(await w.request(C.SD_OP_GET_VDI_ATTR, { flags: flags | C.SD_FLAG_CMD_DEL }, attr));
    expect((await w.request(C.SD_OP_GET_VDI_ATTR, { flags }, attr)).rsp.result).toBe(C.SD_RES_NO_OBJ);
    w.close();
  });

  it('reports cluster info, stores and recovery; checks peer epochs; keeps everything across a restart', async () => {
    const { sheep, w, dir } = await fresh();
    okReply(await w.makeFs({ copies: 3, flags: C.SD_CLUSTER_FLAG_USE_LOCK, shift: 20 }));
    okReply(await w.request(C.SD_OP_ALTER_CLUSTER_COPY, { args: { kind: 'cluster', copies: 2 } }));
    expect((await w.request(C.SD_OP_ALTER_CLUSTER_COPY, { args: { kind: 'cluster', copies: 2, copyPolicy: 0x21 } })).rsp.result).toBe(C.SD_RES_INVALID_PARMS);
    const ci = decodeClusterInfo(okReply(await w.request(C.SD_OP_CLUSTER_INFO, { dataLength: C.SD_CLUSTER_INFO_SIZE })).data);
    expect(ci).toMatchObject({ protoVer: C.SD_SHEEP_PROTO_VER, epoch: 1, nrCopies: 2, blockSizeShift: 20, status: C.SD_STATUS_OK, defaultStore: 'plain' });
    expect(ci.nodes).toHaveLength(1);
    expect(okReply(await w.request(C.SD_OP_GET_STORE_LIST, { dataLength: 64 })).data.toString()).toBe('plain ');
    expect(decodeRecoveryState(okReply(await w.request(C.SD_OP_STAT_RECOVERY, { dataLength: 24 })).data).inRecovery).toBe(false);
    const vid = vidOf(okReply(await w.newVdi('keep', 8n << 20n)));
    okReply(await w.create(vidToDataOid(vid, 0), 0, Buffer.alloc(1 << 20, 9)));
    const peer = { kind: 'obj' as const, oid: vidToDataOid(vid, 0) };
    expect((await w.request(C.SD_OP_READ_PEER, { epoch: 0, dataLength: 16, args: peer })).rsp.result).toBe(C.SD_RES_OLD_NODE_VER);
    expect((await w.request(C.SD_OP_READ_PEER, { epoch: 2, dataLength: 16, args: peer })).rsp.result).toBe(C.SD_RES_NEW_NODE_VER);
    expect(okReply(await w.request(C.SD_OP_READ_PEER, { epoch: 1, dataLength: 16, args: peer })).data.equals(Buffer.alloc(16, 9))).toBe(true);
    const tag = Buffer.alloc(256);
    tag.write('t');
    okReply(await w.write(vidToVdiOid(vid), 256, tag));
    okReply(await w.newVdi('keep', 8n << 20n, { base: vid, snapid: 1 }));
    w.close();
    await sheep.stop();
    running.splice(running.indexOf(sheep), 1);
    const again = await fresh(dir);
    const w2 = again.w;
    const def = okReply(await w2.request(C.SD_OP_GET_CLUSTER_DEFAULT));
    expect(def.rsp.args).toMatchObject({ nrCopies: 2, blockSizeShift: 20 });
    expect(vidOf(okReply(await w2.vdiInfo('keep', 't')))).toBe(vid);
    expect(vidOf(okReply(await w2.vdiInfo('keep')))).toBe(vid + 1);
    expect((await w2.write(vidToDataOid(vid, 0), 0, Buffer.alloc(1))).rsp.result).toBe(C.SD_RES_READONLY);
    // KILL_NODE: the node stops serving.
    okReply(await w2.request(C.SD_OP_KILL_NODE));
    expect((await w2.request(C.SD_OP_GET_NODE_LIST, { dataLength: 80 })).rsp.result).toBe(C.SD_RES_KILLED);
    w2.close();
  });

  it('without USE_LOCK, LOCK_VDI is a lookup and RELEASE_VDI a no-op (§6.1)', async () => {
    const { w } = await fresh();
    okReply(await w.makeFs({ flags: 0 }));
    const vid = vidOf(okReply(await w.newVdi('free', 1n << 20n)));
    expect(vidOf(okReply(await w.lock('free')))).toBe(vid);
    expect(vidOf(okReply(await w.lock('free')))).toBe(vid);
    expect(vidOf(okReply(await w.lock('free', C.LOCK_TYPE_NORMAL)))).toBe(vid);
    okReply(await w.release(vid));
    expect((await w.lock('nope')).rsp.result).toBe(C.SD_RES_NO_VDI);
    w.close();
  });
});
