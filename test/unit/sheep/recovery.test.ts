// Recovery (src/sheep/recovery.ts) against fake peers: what a node fetches after an epoch change, decided by
// the versions the peers report (GET_VERSIONS) — missing and newer objects fetched, equal versions verified by
// hash, copies nobody can prove current left unavailable (untrusted, no recovery_done) — and the client-path
// ordering (waitFor recovers first, claim cancels a fetch).
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { emptyRspArgs, type SdRequest, type SdResponse } from '../../../src/proto/sheepdog/header.js';
import { makeNodeId, nodeAddr, type NodeId, type SdNode } from '../../../src/proto/sheepdog/node.js';
import { Ring } from '../../../src/proto/sheepdog/ring.js';
import { rootLogger } from '../../../src/obs/log.js';
import { encodeVersionList } from '../../../src/sheep/currency.js';
import { SdError } from '../../../src/sheep/errors.js';
import type { PeerPool, PeerReply } from '../../../src/sheep/peer-pool.js';
import { Recovery, SF_OP_GET_VERSIONS, type RecoveryHost } from '../../../src/sheep/recovery.js';
import type { ObjVersion, ObjectStore } from '../../../src/sheep/store/store.js';

const SIZE = 64;

/** An in-memory store with just what recovery uses. */
class MemStore {
  readonly objs = new Map<bigint, Buffer>();
  readonly vers = new Map<bigint, ObjVersion>();
  version(oid: bigint): ObjVersion | null {
    return this.objs.has(oid) ? { ...(this.vers.get(oid) ?? { epoch: 0, gen: 0, current: 0 }) } : null;
  }
  setVersion(oid: bigint, v: ObjVersion): Promise<void> {
    this.vers.set(oid, { ...v });
    return Promise.resolve();
  }
  exists(oid: bigint): boolean {
    return this.objs.has(oid);
  }
  list(): bigint[] {
    return [...this.objs.keys()].sort((a, b) => (a < b ? -1 : 1));
  }
  create(oid: bigint, size: number, data: Buffer, _offset: number, ver: ObjVersion): Promise<void> {
    const b = Buffer.alloc(size);
    data.copy(b);
    this.objs.set(oid, b);
    this.vers.set(oid, { ...ver });
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
}

/** Fake peer pool: answers GET_VERSIONS, GET_HASH and READ_PEER from in-memory peers. */
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
      case SF_OP_GET_VERSIONS:
        return Promise.resolve(reply(req, C.SD_RES_SUCCESS, encodeVersionList(0, p.store.list().map((o) => [o, p.store.version(o)!]))));
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

type Copies = Map<bigint, [Buffer, ObjVersion]>;

/**
 * Node 7002 comes back in epoch `now` (default 3) after missing epoch 2 ({7000, 7001}); copies 3, so every
 * member owns everything. `remote` is what 7000 and 7001 hold (unless `down` lists them), `local` what 7002 holds.
 */
function setup(opts: { local: Copies; remote: Copies; down?: number[]; now?: number; epochs?: number[][] }) {
  const now = opts.now ?? 3;
  const byPort = (p: number): SdNode => node(p);
  const sets = opts.epochs ?? [[7000, 7001, 7002], [7000, 7001], [7000, 7001, 7002]];
  const rings = new Map<number, Ring>(sets.map((ports, i) => [i + 1, new Ring(ports.map(byPort))]));
  const peers = new Map<string, FakePeer>();
  for (const port of [7000, 7001]) {
    if (opts.down?.includes(port)) continue;
    const s = new MemStore();
    for (const [o, [b, v]] of opts.remote) {
      s.objs.set(o, Buffer.from(b));
      s.vers.set(o, v);
    }
    peers.set(nodeAddr(node(port).nid), { store: s });
  }
  const store = new MemStore();
  for (const [o, [b, v]] of opts.local) {
    store.objs.set(o, Buffer.from(b));
    store.vers.set(o, v);
  }
  const reads: string[] = [];
  let done = 0;
  const host: RecoveryHost = {
    self: node(7002).nid,
    store: store as unknown as ObjectStore,
    peers: fakePeers(peers, reads),
    epoch: () => now,
    ring: () => rings.get(now)!,
    ringOf: (e) => rings.get(e) ?? null,
    copiesOf: () => 3,
    objectSize: () => SIZE,
    tombstoned: () => false,
    purgeEpoch: () => 0,
    announceDone: () => {
      done++;
      return Promise.resolve();
    },
    log: rootLogger(),
  };
  return { recovery: new Recovery(host), store, reads, done: () => done, now };
}

async function settle(r: Recovery): Promise<void> {
  for (let i = 0; i < 200 && r.status().inRecovery; i++) await new Promise((res) => setTimeout(res, 5));
}

const obj = (fill: number): Buffer => Buffer.alloc(SIZE, fill);
const v = (epoch: number, gen: number, current: number): ObjVersion => ({ epoch, gen, current });

describe('Recovery', () => {
  it('fetches missing and newer objects with their versions, verifies equal versions by hash', async () => {
    const newer = 0x101n;
    const missing = 0x102n;
    const verifiedEqual = 0x103n;
    const verifiedDiffer = 0x104n;
    const t = setup({
      local: new Map([
        [newer, [obj(2), v(1, 1, 1)]],
        [verifiedEqual, [obj(4), v(1, 2, 1)]],
        [verifiedDiffer, [obj(5), v(1, 3, 1)]],
      ]),
      remote: new Map([
        [newer, [obj(22), v(2, 1, 2)]],
        [missing, [obj(3), v(2, 4, 2)]],
        [verifiedEqual, [obj(4), v(1, 2, 1)]],
        [verifiedDiffer, [obj(55), v(1, 3, 1)]],
      ]),
    });
    t.recovery.start(t.now);
    await settle(t.recovery);
    expect(t.reads.sort()).toEqual(['101', '102', '104']);
    expect(t.store.objs.get(newer)).toEqual(obj(22));
    expect(t.store.version(newer)).toEqual(v(2, 1, 3));
    expect(t.store.objs.get(missing)).toEqual(obj(3));
    expect(t.store.objs.get(verifiedDiffer)).toEqual(obj(55));
    expect(t.store.objs.get(verifiedEqual)).toEqual(obj(4));
    expect(t.store.version(verifiedEqual)).toEqual(v(1, 2, 3));
    expect(t.recovery.status()).toMatchObject({ inRecovery: false, transferred: 3 });
    expect(t.done()).toBe(1);
  });

  it('keeps an old copy untrusted and announces nothing while no live member can prove the current one', async () => {
    // Epoch 2 was {7000, 7001} (they took writes then); both are gone now, 7002 is alone with its old copy.
    const t = setup({ local: new Map([[0x200n, [obj(1), v(1, 1, 1)]]]), remote: new Map(), down: [7000, 7001], epochs: [[7000, 7001, 7002], [7000, 7001], [7002]] });
    t.recovery.start(t.now);
    await new Promise((r) => setTimeout(r, 100));
    expect(t.recovery.untrusted(0x200n)).toBe(true);
    expect(t.recovery.status()).toMatchObject({ inRecovery: true, state: 1 });
    expect(t.recovery.outstanding()).toBe(1);
    expect(t.done()).toBe(0);
    expect(t.store.objs.get(0x200n)).toEqual(obj(1));
  });

  it('a continuous member keeps its copies; claim() lets a client CREATE win over a pending fetch', async () => {
    const t = setup({
      local: new Map([[0x300n, [obj(1), v(3, 1, 3)]]]),
      remote: new Map([
        [0x300n, [obj(9), v(1, 1, 1)]],
        [0x301n, [obj(7), v(1, 1, 1)]],
      ]),
      now: 4,
      epochs: [[7000, 7001, 7002], [7000, 7001], [7000, 7001, 7002], [7000, 7001, 7002]],
    });
    t.recovery.start(t.now);
    await t.recovery.claim(0x301n);
    await settle(t.recovery);
    expect(t.reads).toEqual([]);
    expect(t.store.exists(0x301n)).toBe(false);
    expect(t.store.objs.get(0x300n)).toEqual(obj(1));
  });

  it('waitFor() recovers the object a client is waiting for before it returns', async () => {
    const t = setup({
      local: new Map(),
      remote: new Map([
        [0x400n, [obj(4), v(2, 1, 2)]],
        [0x401n, [obj(5), v(2, 1, 2)]],
      ]),
    });
    t.recovery.throttle = { maxExecCount: 1, intervalMs: 50 };
    t.recovery.start(t.now);
    expect(t.recovery.untrusted(0x401n) || !t.store.exists(0x401n)).toBe(true);
    await t.recovery.waitFor(0x401n);
    expect(t.store.objs.get(0x401n)).toEqual(obj(5));
    expect(t.recovery.untrusted(0x401n)).toBe(false);
    await settle(t.recovery);
    expect(t.store.objs.get(0x400n)).toEqual(obj(4));
  });
});
