// Recovery (src/sheep/recovery.ts) against fake peers: what a node fetches after an epoch change — missing
// objects, objects changed while it was away (dirty reports), verified-by-hash objects of its last epoch,
// objects removed meanwhile — and the client-path ordering (waitFor recovers first, claim cancels a fetch).
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { emptyRspArgs, type SdRequest, type SdResponse } from '../../../src/proto/sheepdog/header.js';
import { makeNodeId, nodeAddr, type NodeId, type SdNode } from '../../../src/proto/sheepdog/node.js';
import { Ring } from '../../../src/proto/sheepdog/ring.js';
import { rootLogger } from '../../../src/obs/log.js';
import { encodeDirtyReport, type DirtyEntry } from '../../../src/sheep/cluster/dirty.js';
import { SdError } from '../../../src/sheep/errors.js';
import type { PeerPool, PeerReply } from '../../../src/sheep/peer-pool.js';
import { Recovery, SF_OP_GET_DIRTY, type RecoveryHost } from '../../../src/sheep/recovery.js';
import type { ObjectStore } from '../../../src/sheep/store/store.js';

const SIZE = 64;

/** An in-memory store with just what recovery uses. */
class MemStore {
  readonly objs = new Map<bigint, Buffer>();
  exists(oid: bigint): boolean {
    return this.objs.has(oid);
  }
  list(): bigint[] {
    return [...this.objs.keys()].sort((a, b) => (a < b ? -1 : 1));
  }
  create(oid: bigint, size: number, data: Buffer): Promise<void> {
    const b = Buffer.alloc(size);
    data.copy(b);
    this.objs.set(oid, b);
    return Promise.resolve();
  }
  remove(oid: bigint): Promise<void> {
    this.objs.delete(oid);
    return Promise.resolve();
  }
  hash(oid: bigint): Promise<Buffer> {
    const b = this.objs.get(oid);
    if (!b) return Promise.reject(new SdError(C.SD_RES_NO_OBJ, 'no obj'));
    return Promise.resolve(createHash('sha1').update(b).digest());
  }
}

interface FakePeer {
  store: MemStore;
  dirty: { complete: boolean; entries: DirtyEntry[] };
}

/** Fake peer pool: answers GET_OBJ_LIST, GET_DIRTY, GET_HASH and READ_PEER from in-memory peers. */
function fakePeers(peers: Map<string, FakePeer>, reads: string[]): PeerPool {
  const reply = (req: SdRequest, result: number, data: Buffer | null, args = emptyRspArgs('obj') as SdResponse['args']): PeerReply => ({
    result,
    epoch: req.epoch,
    data,
    rsp: { protoVer: 0x0a, opcode: req.opcode, flags: 0, epoch: req.epoch, id: 0, dataLength: data?.length ?? 0, result, args },
  });
  const send = (nid: NodeId, req: SdRequest): Promise<PeerReply> => {
    const p = peers.get(nodeAddr(nid));
    if (!p) return Promise.reject(new SdError(C.SD_RES_NETWORK_ERROR, 'down'));
    const oid = req.args.kind === 'obj' ? req.args.oid : 0n;
    switch (req.opcode) {
      case C.SD_OP_GET_OBJ_LIST: {
        const l = p.store.list();
        const b = Buffer.alloc(8 * l.length);
        l.forEach((o, i) => b.writeBigUInt64LE(o, 8 * i));
        return Promise.resolve(reply(req, C.SD_RES_SUCCESS, b));
      }
      case SF_OP_GET_DIRTY:
        return Promise.resolve(reply(req, C.SD_RES_SUCCESS, encodeDirtyReport(p.dirty)));
      case C.SD_OP_GET_HASH: {
        const b = p.store.objs.get(oid);
        if (!b) return Promise.resolve(reply(req, C.SD_RES_NO_OBJ, null));
        return Promise.resolve(reply(req, C.SD_RES_SUCCESS, null, { kind: 'hash', digest: createHash('sha1').update(b).digest() }));
      }
      case C.SD_OP_READ_PEER: {
        const b = p.store.objs.get(oid);
        if (!b) return Promise.resolve(reply(req, C.SD_RES_NO_OBJ, null));
        reads.push(oid.toString(16));
        return Promise.resolve(reply(req, C.SD_RES_SUCCESS, Buffer.from(b)));
      }
      default:
        return Promise.resolve(reply(req, C.SD_RES_INVALID_PARMS, null));
    }
  };
  const call = async (nid: NodeId, req: SdRequest): Promise<PeerReply> => {
    const r = await send(nid, req);
    if (r.result !== C.SD_RES_SUCCESS) throw new SdError(r.result, 'peer failed');
    return r;
  };
  return { send, call } as unknown as PeerPool;
}

const node = (port: number): SdNode => ({ nid: makeNodeId('127.0.0.1', port), nrVnodes: 128, zone: port, space: 1000n });

/** A 3-node cluster (copies 3: everyone owns everything) where node 7002 comes back at epoch 3. */
function setup(opts: { dirty: DirtyEntry[]; complete?: boolean; local: Map<bigint, Buffer>; remote: Map<bigint, Buffer>; epoch?: number }) {
  const now = opts.epoch ?? 3;
  const all = [node(7000), node(7001), node(7002)];
  const rings = new Map<number, Ring>([
    [1, new Ring(all)],
    [2, new Ring(all.slice(0, 2))],
    [3, new Ring(all)],
    [4, new Ring(all)],
  ]);
  const peers = new Map<string, FakePeer>();
  for (const n of all.slice(0, 2)) {
    const s = new MemStore();
    for (const [o, b] of opts.remote) s.objs.set(o, Buffer.from(b));
    peers.set(nodeAddr(n.nid), { store: s, dirty: { complete: opts.complete ?? true, entries: opts.dirty } });
  }
  const store = new MemStore();
  for (const [o, b] of opts.local) store.objs.set(o, Buffer.from(b));
  const reads: string[] = [];
  let done = 0;
  const host: RecoveryHost = {
    self: all[2]!.nid,
    store: store as unknown as ObjectStore,
    peers: fakePeers(peers, reads),
    epoch: () => now,
    ring: () => rings.get(now)!,
    ringOf: (e) => rings.get(e) ?? null,
    copiesOf: () => 3,
    objectSize: () => SIZE,
    tombstoned: () => false,
    announceDone: () => {
      done++;
      return Promise.resolve();
    },
    log: rootLogger(),
  };
  return { recovery: new Recovery(host), store, reads, done: () => done };
}

async function settle(r: Recovery): Promise<void> {
  for (let i = 0; i < 200 && r.status().inRecovery; i++) await new Promise((res) => setTimeout(res, 5));
}

const obj = (fill: number): Buffer => Buffer.alloc(SIZE, fill);

describe('Recovery', () => {
  it('fetches missing and changed objects, verifies same-epoch ones by hash, deletes removed ones', async () => {
    const same = 0x100n;
    const changed = 0x101n;
    const missing = 0x102n;
    const verifiedEqual = 0x103n;
    const verifiedDiffer = 0x104n;
    const removed = 0x105n;
    const t = setup({
      local: new Map([
        [same, obj(1)],
        [changed, obj(2)],
        [verifiedEqual, obj(4)],
        [verifiedDiffer, obj(5)],
        [removed, obj(6)],
      ]),
      remote: new Map([
        [same, obj(1)],
        [changed, obj(22)],
        [missing, obj(3)],
        [verifiedEqual, obj(4)],
        [verifiedDiffer, obj(55)],
      ]),
      dirty: [
        { oid: changed, epoch: 2, removed: false },
        { oid: verifiedEqual, epoch: 1, removed: false },
        { oid: verifiedDiffer, epoch: 1, removed: false },
        { oid: removed, epoch: 2, removed: true },
      ],
    });
    t.recovery.start(3, 1);
    await settle(t.recovery);
    expect(t.reads.sort()).toEqual(['101', '102', '104']);
    expect(t.store.objs.get(changed)).toEqual(obj(22));
    expect(t.store.objs.get(missing)).toEqual(obj(3));
    expect(t.store.objs.get(verifiedDiffer)).toEqual(obj(55));
    expect(t.store.objs.get(same)).toEqual(obj(1));
    expect(t.store.exists(removed)).toBe(false);
    expect(t.recovery.status()).toMatchObject({ inRecovery: false, transferred: 3 });
    expect(t.done()).toBe(1);
  });

  it('fetches every owned object when a peer cannot vouch for the gap', async () => {
    const t = setup({ local: new Map([[0x200n, obj(1)]]), remote: new Map([[0x200n, obj(1)]]), dirty: [], complete: false });
    t.recovery.start(3, 1);
    await settle(t.recovery);
    expect(t.reads).toEqual(['200']);
  });

  it('a continuous member trusts its copies; claim() lets a client CREATE win over a pending fetch', async () => {
    const t = setup({ local: new Map([[0x300n, obj(1)]]), remote: new Map([[0x300n, obj(9)], [0x301n, obj(7)]]), dirty: [], epoch: 4 });
    t.recovery.start(4, 3);
    await t.recovery.claim(0x301n);
    await settle(t.recovery);
    expect(t.reads).toEqual([]);
    expect(t.store.exists(0x301n)).toBe(false);
    expect(t.store.objs.get(0x300n)).toEqual(obj(1));
  });

  it('waitFor() recovers the object a client is waiting for before it returns', async () => {
    const t = setup({ local: new Map(), remote: new Map([[0x400n, obj(4)], [0x401n, obj(5)]]), dirty: [] });
    t.recovery.throttle = { maxExecCount: 1, intervalMs: 50 };
    t.recovery.start(3, 1);
    expect(t.recovery.untrusted(0x401n) || !t.store.exists(0x401n)).toBe(true);
    await t.recovery.waitFor(0x401n);
    expect(t.store.objs.get(0x401n)).toEqual(obj(5));
    await settle(t.recovery);
    expect(t.store.objs.get(0x400n)).toEqual(obj(4));
  });
});
