// Object I/O serialized at the object's primary replica (Sheepfold extension ops SF_OP_*, constants.ts):
// exclusive creation, compare-and-write and ordered writes. Two target hosts reach the cluster through two
// gateways; plain object I/O from both reaches the replicas in whatever order the network gives, so "create
// this object unless it exists" or "write only if it still holds X" cannot be decided by either gateway. The
// first node the ring names for the object (its primary) decides: the receiving gateway runs the client checks
// (inode coherence, read-only snapshot data, range), forwards the request with FWD to the primary, and the
// primary executes it under a per-object FIFO queue against the replicas. Every gateway of one epoch names the
// same primary; a forwarded request of another epoch is refused (OLD/NEW_NODE_VER) and retried by the gateway
// once the epochs agree, so during a membership change two nodes never both act as primary for one request.
import * as C from '../proto/sheepdog/constants.js';
import { isVdiOid, oidHex } from '../proto/sheepdog/oid.js';
import { makeRequest, type SdRequest } from '../proto/sheepdog/header.js';
import { nodeAddr, type NodeId } from '../proto/sheepdog/node.js';
import type { Logger } from '../obs/log.js';
import { firstDifference } from '../util/bytes.js';
import { SdError, resultOf } from './errors.js';
import { GATEWAY_RETRY_MS, type Gateway, type ObjIo } from './gateway.js';
import type { PeerPool, PeerReply } from './peer-pool.js';

export interface SerialDeps {
  gateway: Gateway;
  /** The object's primary replica when it is another node; null when this node is the primary (or alone). */
  primary: (oid: bigint) => NodeId | null;
  peers: PeerPool;
  epoch: () => number;
  /** Resolve once the epoch is past `seen`, or after `ms` (cluster mode). */
  waitEpoch?: (seen: number, ms: number) => Promise<void>;
  /** Resolve once the epoch is at least `epoch`; false after `ms`. */
  waitEpochAtLeast?: (epoch: number, ms: number) => Promise<boolean>;
  /** Apply every cluster op acknowledged so far (membership changes included). */
  sync?: () => Promise<void>;
  log: Logger;
}

export interface SerialResult {
  result: number;
  data?: Buffer | null;
}

/** Results of a forwarded request that mean "the placement moved: retry on the next epoch". */
const RETRY = new Set<number>([
  C.SD_RES_NETWORK_ERROR,
  C.SD_RES_OLD_NODE_VER,
  C.SD_RES_NEW_NODE_VER,
  C.SD_RES_NODE_IN_RECOVERY,
  C.SD_RES_KILLED,
  C.SD_RES_WAIT_FOR_JOIN,
  C.SD_RES_SHUTDOWN,
]);
const EPOCH_WAIT_MS = 5_000;

/** One admitted op's byte range of an object and the promise that settles when it is done. */
interface Held {
  start: number;
  end: number;
  done: Promise<void> | null;
}

export class SerialIo {
  /** Per object: the ranges of ops admitted (running or waiting), in arrival order. */
  private readonly ranges = new Map<bigint, Held[]>();

  constructor(private readonly d: SerialDeps) {}

  /** Serve one SF_OP_* request: at the receiving gateway, or (FWD) as the object's primary. */
  async handle(req: SdRequest, io: ObjIo, payload: Buffer): Promise<SerialResult> {
    const length = this.writeLength(req.opcode, io, payload);
    if ((req.flags & C.SD_FLAG_CMD_FWD) !== 0) return this.asPrimary(req, io, payload);
    await this.d.gateway.checkClientWrite(io, length);
    return this.route(req, io, payload);
  }

  /** Bytes the request writes in the object; validates the payload shape of each op. */
  private writeLength(opcode: number, io: ObjIo, payload: Buffer): number {
    if (opcode === C.SF_OP_CMP_WRITE) {
      if (payload.length === 0 || payload.length % 2 !== 0) {
        throw new SdError(C.SD_RES_INVALID_PARMS, `CMP_WRITE payload of ${payload.length} bytes is not expected + new bytes`);
      }
      // An inode write has index-area side effects (coherence, reclaim) a compare must not bypass.
      if (isVdiOid(io.oid)) throw new SdError(C.SD_RES_INVALID_PARMS, `CMP_WRITE on inode object ${oidHex(io.oid)}`);
      return payload.length / 2;
    }
    return payload.length;
  }

  /** Execute here when this node is the primary, else forward to it; retried across epoch changes. */
  private async route(req: SdRequest, io: ObjIo, payload: Buffer): Promise<SerialResult> {
    const deadline = Date.now() + GATEWAY_RETRY_MS;
    for (let n = 0; ; n++) {
      const seen = this.d.epoch();
      const primary = this.d.primary(io.oid);
      if (primary === null) return this.queued(req.opcode, io, payload);
      let reply: PeerReply | null = null;
      let err: unknown = null;
      try {
        const fwd = makeRequest(req.opcode, { ...req.args }, { epoch: seen, dataLength: payload.length, flags: req.flags | C.SD_FLAG_CMD_FWD | C.SD_FLAG_CMD_WRITE });
        reply = await this.d.peers.send(primary, fwd, payload);
      } catch (e) {
        err = e;
      }
      const result = reply ? reply.result : (resultOf(err) ?? C.SD_RES_NETWORK_ERROR);
      if (reply && !RETRY.has(result)) return { result, data: reply.data };
      if (!this.d.waitEpoch || Date.now() > deadline) {
        if (err) throw err;
        return { result };
      }
      this.d.log.debug({ oid: oidHex(io.oid), primary: nodeAddr(primary), result: C.resultName(result), attempt: n }, 'serial_retry');
      await this.d.waitEpoch(seen, Math.min(1000, 50 * 2 ** Math.min(n, 5)));
    }
  }

  /** A forwarded request: only a primary of the sender's epoch executes it. */
  private async asPrimary(req: SdRequest, io: ObjIo, payload: Buffer): Promise<SerialResult> {
    await this.d.sync?.();
    if (req.epoch > this.d.epoch() && this.d.waitEpochAtLeast) await this.d.waitEpochAtLeast(req.epoch, EPOCH_WAIT_MS);
    if (req.epoch < this.d.epoch()) return { result: C.SD_RES_OLD_NODE_VER };
    if (req.epoch > this.d.epoch()) return { result: C.SD_RES_NEW_NODE_VER };
    if (this.d.primary(io.oid) !== null) return { result: C.SD_RES_OLD_NODE_VER };
    return this.queued(req.opcode, io, payload);
  }

  /**
   * Run one op under the object's range lock (this node is its primary): ops on overlapping ranges run one
   * after the other in arrival order, disjoint ones concurrently. CREATE_EXCL covers the whole object.
   */
  private async queued(opcode: number, io: ObjIo, payload: Buffer): Promise<SerialResult> {
    const length = opcode === C.SF_OP_CMP_WRITE ? payload.length / 2 : payload.length;
    const range: Held = opcode === C.SF_OP_CREATE_EXCL ? { start: 0, end: Infinity, done: null } : { start: io.offset, end: io.offset + length, done: null };
    const held = this.ranges.get(io.oid) ?? [];
    const before = held.filter((h) => h.start < range.end && range.start < h.end).map((h) => h.done);
    let release!: () => void;
    range.done = new Promise<void>((r) => (release = r));
    held.push(range);
    this.ranges.set(io.oid, held);
    try {
      await Promise.all(before);
      return await this.execute(opcode, io, payload);
    } finally {
      release();
      const rest = (this.ranges.get(io.oid) ?? []).filter((h) => h !== range);
      if (rest.length === 0) this.ranges.delete(io.oid);
      else this.ranges.set(io.oid, rest);
    }
  }

  private async execute(opcode: number, io: ObjIo, payload: Buffer): Promise<SerialResult> {
    const g = this.d.gateway;
    switch (opcode) {
      case C.SF_OP_CREATE_EXCL: {
        if (await this.exists(io.oid, io.copies)) return { result: C.SD_RES_OID_EXIST };
        await g.createUnchecked(io, payload);
        return { result: C.SD_RES_SUCCESS };
      }
      case C.SF_OP_CMP_WRITE: {
        const len = payload.length / 2;
        const cur = await g.readReplicas(io.oid, io.offset, len, g.copiesFor(io.oid, io.copies));
        const at = firstDifference(cur, payload.subarray(0, len));
        if (at >= 0) {
          const info = Buffer.alloc(4);
          info.writeUInt32LE(at, 0);
          return { result: C.SF_RES_MISCOMPARE, data: info };
        }
        await g.writeUnchecked(io, payload.subarray(len));
        return { result: C.SD_RES_SUCCESS };
      }
      case C.SF_OP_WRITE_SERIAL:
        await g.writeUnchecked(io, payload);
        return { result: C.SD_RES_SUCCESS };
      default:
        throw new SdError(C.SD_RES_NO_SUPPORT, `opcode 0x${opcode.toString(16)} is not serialized`);
    }
  }

  /** Whether any replica holds the object (NO_OBJ from all of them means no). */
  private async exists(oid: bigint, copies: number): Promise<boolean> {
    const g = this.d.gateway;
    try {
      await g.readReplicas(oid, 0, 1, g.copiesFor(oid, copies));
      return true;
    } catch (err) {
      if (resultOf(err) === C.SD_RES_NO_OBJ) return false;
      throw err;
    }
  }
}
