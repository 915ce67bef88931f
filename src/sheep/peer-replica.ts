// Ring placement for the gateway (fact sheet §2.1, §9.4): the replicas of an object are the nodes the ring of
// the current epoch names; this node's own replica is the local store (read first), the others are reached
// with the *_PEER ops carrying the epoch the placement was computed for. The local replica waits for the
// object's recovery before serving it and refuses a stale epoch like a peer would (OLD_NODE_VER), so the
// gateway's retry recomputes the placement.
import * as C from '../proto/sheepdog/constants.js';
import { emptyReqArgs } from '../proto/sheepdog/header.js';
import { nodeAddr, nodeIdEquals, type NodeId } from '../proto/sheepdog/node.js';
import { oidHex } from '../proto/sheepdog/oid.js';
import type { Ring } from '../proto/sheepdog/ring.js';
import { SdError } from './errors.js';
import type { Placement, ReplicaIo } from './gateway.js';
import { PeerPool } from './peer-pool.js';
import type { Recovery } from './recovery.js';
import type { ClientStore } from './client-store.js';

export interface RingPlacementDeps {
  self: NodeId;
  store: ClientStore;
  peers: PeerPool;
  recovery: Recovery;
  ring: () => Ring;
  epoch: () => number;
}

/** The answer for a copy recovery has not made current: retryable, the gateway waits and tries again. */
export function notCurrent(oid: bigint): SdError {
  return new SdError(C.SD_RES_NODE_IN_RECOVERY, `object ${oidHex(oid)} is not current on this node yet`);
}

/** This node's replica in a cluster. */
class ClusterLocalReplica implements ReplicaIo {
  readonly label = 'local';
  constructor(private readonly d: RingPlacementDeps) {}
  private check(epoch: number): void {
    if (epoch < this.d.epoch()) throw new SdError(C.SD_RES_OLD_NODE_VER, `placement of epoch ${epoch} is stale`);
  }
  async create(oid: bigint, size: number, data: Buffer, offset: number, base: Buffer | undefined, epoch: number): Promise<void> {
    this.check(epoch);
    await this.d.recovery.claim(oid);
    this.check(epoch);
    await this.d.store.create(oid, size, data, offset, base);
  }
  async write(oid: bigint, data: Buffer, offset: number, epoch: number): Promise<void> {
    await this.ready(oid, epoch);
    await this.d.store.write(oid, data, offset);
  }
  async read(oid: bigint, offset: number, length: number, epoch: number): Promise<Buffer> {
    await this.ready(oid, epoch);
    return this.d.store.read(oid, offset, length);
  }
  /** Recover the object first; a copy recovery could not make current is never read or written. */
  private async ready(oid: bigint, epoch: number): Promise<void> {
    this.check(epoch);
    await this.d.recovery.waitFor(oid);
    this.check(epoch);
    if (this.d.recovery.untrusted(oid)) throw notCurrent(oid);
  }
  async remove(oid: bigint, epoch: number): Promise<void> {
    this.check(epoch);
    await this.d.recovery.claim(oid);
    this.check(epoch);
    await this.d.store.remove(oid);
  }
}

/** A peer's replica, reached with CREATE_AND_WRITE_PEER / WRITE_PEER / READ_PEER / REMOVE_PEER. */
class PeerReplica implements ReplicaIo {
  readonly label: string;
  constructor(
    private readonly peers: PeerPool,
    private readonly nid: NodeId,
  ) {
    this.label = nodeAddr(nid);
  }
  private async op(opcode: number, oid: bigint, offset: number, epoch: number, length: number, payload: Buffer | null): Promise<Buffer | null> {
    const req = PeerPool.request(opcode, { ...emptyReqArgs('obj'), oid, offset }, epoch, length, payload ? C.SD_FLAG_CMD_WRITE : 0);
    return (await this.peers.call(this.nid, req, payload)).data;
  }
  async create(oid: bigint, size: number, data: Buffer, offset: number, base: Buffer | undefined, epoch: number): Promise<void> {
    if (base && base.length > 0) {
      // Copy-on-write: the peer gets the whole new object.
      const full = Buffer.alloc(size);
      base.copy(full, 0, 0, Math.min(base.length, size));
      data.copy(full, offset);
      await this.op(C.SD_OP_CREATE_AND_WRITE_PEER, oid, 0, epoch, full.length, full);
      return;
    }
    await this.op(C.SD_OP_CREATE_AND_WRITE_PEER, oid, offset, epoch, data.length, data);
  }
  async write(oid: bigint, data: Buffer, offset: number, epoch: number): Promise<void> {
    await this.op(C.SD_OP_WRITE_PEER, oid, offset, epoch, data.length, data);
  }
  async read(oid: bigint, offset: number, length: number, epoch: number): Promise<Buffer> {
    const d = await this.op(C.SD_OP_READ_PEER, oid, offset, epoch, length, null);
    const out = d ?? Buffer.alloc(0);
    if (out.length === length) return out;
    const full = Buffer.alloc(length);
    out.copy(full);
    return full;
  }
  async remove(oid: bigint, epoch: number): Promise<void> {
    await this.op(C.SD_OP_REMOVE_PEER, oid, 0, epoch, 0, null);
  }
}

/** Placement by the ring of the current epoch; the local replica first. */
export class RingPlacement implements Placement {
  private readonly local: ClusterLocalReplica;
  private readonly remote = new Map<string, PeerReplica>();

  constructor(private readonly d: RingPlacementDeps) {
    this.local = new ClusterLocalReplica(d);
  }

  replicas(oid: bigint, copies: number): ReplicaIo[] {
    const nodes = this.d.ring().oidToNodes(oid, Math.max(1, copies));
    const out: ReplicaIo[] = [];
    for (const n of nodes) {
      if (nodeIdEquals(n.nid, this.d.self)) {
        out.unshift(this.local);
        continue;
      }
      const key = nodeAddr(n.nid);
      let r = this.remote.get(key);
      if (!r) {
        r = new PeerReplica(this.d.peers, n.nid);
        this.remote.set(key, r);
      }
      out.push(r);
    }
    return out;
  }
}
