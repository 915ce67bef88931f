// The gateway's inode-coherence rules (fact sheet §7.1–7.3, transcript §4.3) seen over the wire: another sheep
// B is a participant of the same SHARED lock (injected into the lock table, as its cluster op would). After B
// invalidates, every TGT request of ours is refused with INODE_INVALIDATED — as a state, not once — until the
// exact 4 198 968-byte refresh read validates; an index write of ours invalidates B.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { makeNodeId } from '../../../src/proto/sheepdog/node.js';
import { vidToDataOid, vidToVdiOid } from '../../../src/proto/sheepdog/oid.js';
import { startSheep, type RunningSheep } from '../../../src/sheep/index.js';
import { SheepWire, okReply } from '../../helpers/sheep-wire.js';

const B = makeNodeId('127.0.0.2', 7001);
const TGT = C.SD_FLAG_CMD_TGT;
let dir: string;
let sheep: RunningSheep;
let w: SheepWire;
let vid = 0;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sheep-coherence-'));
  sheep = await startSheep({ dir, port: 0 });
  w = await SheepWire.connect({ port: sheep.port });
  okReply(await w.makeFs({ copies: 1, flags: C.SD_CLUSTER_FLAG_USE_LOCK }));
  vid = (okReply(await w.newVdi('coh', 16n << 20n)).rsp.args as { vdiId: number }).vdiId;
});

afterAll(async () => {
  w.close();
  await sheep.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const states = (): number[] => sheep.node.locks.get(vid).participants.map((p) => p.state);

describe('inode coherence through the gateway', () => {
  it('walks §7.4 with this sheep as A and an injected participant B', async () => {
    okReply(await w.lock('coh'));
    okReply(await w.read(vidToVdiOid(vid), 0, C.TGT_INODE_SIZE, TGT));
    expect(states()).toEqual([C.SHARED_LOCK_STATE_MODIFIED]);
    expect(sheep.node.locks.lock(vid, C.LOCK_TYPE_SHARED, B)).toBe(0); // B opens: INVALIDATED
    expect(sheep.node.locks.coherence(vid, true, B)).toBe(0); // B's refresh read
    expect(states()).toEqual([C.SHARED_LOCK_STATE_SHARED, C.SHARED_LOCK_STATE_SHARED]);
    // A allocates: the create passes (A is SHARED), the index write invalidates B before it is applied.
    okReply(await w.create(vidToDataOid(vid, 0), 0, Buffer.alloc(4096, 0x11), { flags: TGT }));
    okReply(await w.setIndex(vid, 0, vid, TGT | C.SD_FLAG_CMD_WRITE));
    expect(states()).toEqual([C.SHARED_LOCK_STATE_MODIFIED, C.SHARED_LOCK_STATE_INVALIDATED]);
    // Now B writes its index: A is invalidated.
    expect(sheep.node.locks.coherence(vid, false, B)).toBe(0);
    expect(states()).toEqual([C.SHARED_LOCK_STATE_INVALIDATED, C.SHARED_LOCK_STATE_MODIFIED]);
  });

  it('refuses every TGT request of an invalidated node until the refresh read, then validates', async () => {
    const ino = vidToVdiOid(vid);
    for (let i = 0; i < 2; i++) {
      expect((await w.read(vidToDataOid(vid, 0), 0, 4096, TGT)).rsp.result).toBe(C.SD_RES_INODE_INVALIDATED);
      expect((await w.read(ino, 0, 1, TGT)).rsp.result).toBe(C.SD_RES_INODE_INVALIDATED);
      expect((await w.write(vidToDataOid(vid, 0), 4096, Buffer.alloc(512, 2), TGT)).rsp.result).toBe(C.SD_RES_INODE_INVALIDATED);
      expect((await w.create(vidToDataOid(vid, 1), 0, Buffer.alloc(512, 3), { flags: TGT })).rsp.result).toBe(C.SD_RES_INODE_INVALIDATED);
      expect((await w.setIndex(vid, 1, vid, TGT | C.SD_FLAG_CMD_WRITE)).rsp.result).toBe(C.SD_RES_INODE_INVALIDATED);
    }
    // Requests without the TGT flag (dog) are not checked; a full 12 MiB read is not a refresh read.
    expect((await w.read(vidToDataOid(vid, 0), 0, 4096)).rsp.result).toBe(0);
    expect((await w.read(ino, 0, C.SD_INODE_SIZE, TGT)).rsp.result).toBe(C.SD_RES_INODE_INVALIDATED);
    okReply(await w.read(ino, 0, C.SD_INODE_SIZE));
    expect(states()[0]).toBe(C.SHARED_LOCK_STATE_INVALIDATED);
    const refresh = okReply(await w.read(ino, 0, C.TGT_INODE_SIZE, TGT));
    expect(refresh.data.length).toBe(C.TGT_INODE_SIZE);
    expect(states()).toEqual([C.SHARED_LOCK_STATE_SHARED, C.SHARED_LOCK_STATE_SHARED]);
    expect((await w.read(vidToDataOid(vid, 0), 0, 4096, TGT)).data.equals(Buffer.alloc(4096, 0x11))).toBe(true);
    // B leaves the cluster: it is dropped from the participants, A carries on.
    sheep.node.locks.removeNode(B);
    expect(states()).toEqual([C.SHARED_LOCK_STATE_SHARED]);
    okReply(await w.release(vid));
    expect(sheep.node.locks.get(vid).state).toBe(C.LOCK_STATE_UNLOCKED);
  });
});
