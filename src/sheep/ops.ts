// The sheep op table (fact sheet §2.1–2.4): for every opcode its class, whether it is allowed before the
// cluster is formatted ("force"), and its handler. dispatch() is the single edge where requests are validated
// (proto_ver, status, peer epoch) and where operation errors become SD_RES_* replies. Handlers return the
// reply payload; the server trims it to what the client asked for.
import * as C from '../proto/sheepdog/constants.js';
import { encodeClusterInfo, encodeRecoveryState, encodeRecoveryThrottling, encodeEpochLogs, type EpochLog } from '../proto/sheepdog/cluster-info.js';
import { readCString } from '../proto/sheepdog/cstring.js';
import { type ObjReqArgs, type RspArgs, type SdRequest } from '../proto/sheepdog/header.js';
import { encodeNodes, nodeIdEquals } from '../proto/sheepdog/node.js';
import { encodeVdiStates } from '../proto/sheepdog/vdi-state.js';
import { oidHex, oidToVid } from '../proto/sheepdog/oid.js';
import {
  SF_OP_BREAK_LOCK,
  SF_OP_HELLO,
  SF_OP_TARGET_LOCKS,
  SF_TARGET_LOCK_SIZE,
  decodeHello,
  encodeTargetLocks,
  targetNodeId,
} from '../proto/sheepdog/target-id.js';
import { getVdiAttr as lookupVdiAttr } from './attr.js';
import { SdError, resultOf } from './errors.js';
import type { ObjIo } from './gateway.js';
import type { TargetIdentity } from './lock.js';
import type { SheepNode, VdiReply } from './node.js';
import { fetchFromPeer } from './peer.js';
import { encodeVersionList, VERSIONS_ENTRY, VERSIONS_HEADER } from './currency.js';
import { notCurrent } from './peer-replica.js';
import { SF_OP_GET_VERSIONS } from './recovery.js';
import type { ObjVersion } from './store/store.js';

export type OpClass = 'gateway' | 'peer' | 'local' | 'cluster';

export interface OpResult {
  result: number;
  /** Reply payload; the server never sends more than the client asked for. */
  data?: Buffer | null;
  args?: RspArgs;
}

/** Per-connection state requests may use: the target identity bound by HELLO (docs/fencing.md §3). */
export interface ConnContext {
  target?: TargetIdentity;
}

export type OpHandler = (node: SheepNode, req: SdRequest, data: Buffer | null, conn: ConnContext) => Promise<OpResult>;

export interface OpDef {
  name: string;
  cls: OpClass;
  /** Allowed while the cluster is not running (WAIT). */
  force: boolean;
  handler: OpHandler;
}

const ok = (data?: Buffer | null, args?: RspArgs): OpResult => ({ result: C.SD_RES_SUCCESS, data, args });
const fail = (result: number): OpResult => ({ result });

function objArgs(req: SdRequest): ObjReqArgs {
  if (req.args.kind !== 'obj') throw new SdError(C.SD_RES_INVALID_PARMS, 'expected object request');
  return req.args;
}

/** The object I/O of a request; `conn` adds the client's target identity (coherence, fence). */
function objIo(req: SdRequest, conn?: ConnContext): ObjIo {
  const a = objArgs(req);
  const io: ObjIo = { oid: a.oid, cowOid: a.cowOid, copies: a.copies, offset: a.offset, flags: req.flags };
  if (conn?.target) io.who = conn.target;
  return io;
}

function vdiArgs(req: SdRequest): Extract<SdRequest['args'], { kind: 'vdi' }> {
  if (req.args.kind !== 'vdi') throw new SdError(C.SD_RES_INVALID_PARMS, 'expected vdi request');
  return req.args;
}

/** Payload bytes of a WRITE request (empty when data_length is 0); INVALID_PARMS without the WRITE flag. */
function payload(req: SdRequest, data: Buffer | null): Buffer {
  if ((req.flags & C.SD_FLAG_CMD_WRITE) === 0) throw new SdError(C.SD_RES_INVALID_PARMS, 'missing WRITE flag');
  return data ?? Buffer.alloc(0);
}

/** name[256] (+ tag[256]) of a VDI request; the payload must be exactly 256 or 512 bytes. */
function nameTag(req: SdRequest, data: Buffer | null, allowTag = true): { name: string; tag: string } {
  const p = payload(req, data);
  if (!(p.length === C.SD_MAX_VDI_LEN || (allowTag && p.length === C.SD_MAX_VDI_LEN + C.SD_MAX_VDI_TAG_LEN))) {
    throw new SdError(C.SD_RES_INVALID_PARMS, `VDI name payload of ${p.length} bytes`);
  }
  return {
    name: readCString(p, 0, C.SD_MAX_VDI_LEN),
    tag: p.length > C.SD_MAX_VDI_LEN ? readCString(p, C.SD_MAX_VDI_LEN, C.SD_MAX_VDI_TAG_LEN) : '',
  };
}

function vdiRsp(r: VdiReply, attrId = 0): OpResult {
  return {
    result: r.result,
    args: { kind: 'vdi', rsvd: 0, vdiId: r.vid, attrId, copies: r.copies, blockSizeShift: r.blockSizeShift },
  };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
}

// ---- gateway and peer object ops ----

const readObj: OpHandler = async (node, req, _data, conn) => ok(await node.gateway.read(objIo(req, conn), req.dataLength));
const createObj: OpHandler = async (node, req, data, conn) => {
  await node.gateway.create(objIo(req, conn), payload(req, data));
  return ok();
};
const writeObj: OpHandler = async (node, req, data, conn) => {
  await node.gateway.write(objIo(req, conn), payload(req, data));
  return ok();
};
/** SF_OP_CREATE_EXCL / CMP_WRITE / WRITE_SERIAL: serialized at the object's primary (serial.ts). */
const serialObj: OpHandler = async (node, req, data, conn) => {
  const r = await node.serial.handle(req, objIo(req, conn), payload(req, data));
  return { result: r.result, data: r.data ?? null };
};
const removeObj: OpHandler = async (node, req) => {
  await node.gateway.remove(objArgs(req).oid, objArgs(req).copies);
  return ok();
};

const peerCheckRange = (node: SheepNode, oid: bigint, offset: number, length: number): number => {
  const size = node.gateway.objectSize(oid);
  if (offset + length > size) throw new SdError(C.SD_RES_INVALID_PARMS, `range outside ${oidHex(oid)}`);
  return size;
};
// Peer ops wait for the object's recovery on this node (§10.5 step 6) and never serve or change a copy
// recovery could not make current (NODE_IN_RECOVERY: the gateway retries); a RECOVERY read is answered from
// the copy the requester chose by its version; CREATE/REMOVE replace whatever recovery would have fetched.
const readPeer: OpHandler = async (node, req) => {
  const a = objArgs(req);
  peerCheckRange(node, a.oid, a.offset, req.dataLength);
  if ((req.flags & C.SD_FLAG_CMD_RECOVERY) === 0) {
    await node.recovery.waitFor(a.oid);
    // The epoch moved while this waited: the sender's placement is stale, it retries on the new one.
    if (req.epoch < node.epoch) return fail(C.SD_RES_OLD_NODE_VER);
    if (node.recovery.untrusted(a.oid)) throw notCurrent(a.oid);
  }
  return ok(await node.store.read(a.oid, a.offset, req.dataLength));
};
const createPeer: OpHandler = async (node, req, data) => {
  const a = objArgs(req);
  const p = payload(req, data);
  const size = peerCheckRange(node, a.oid, a.offset, p.length);
  await node.recovery.claim(a.oid);
  if (req.epoch < node.epoch) return fail(C.SD_RES_OLD_NODE_VER);
  await node.store.create(a.oid, size, p, a.offset);
  return ok();
};
const writePeer: OpHandler = async (node, req, data) => {
  const a = objArgs(req);
  const p = payload(req, data);
  peerCheckRange(node, a.oid, a.offset, p.length);
  await node.recovery.waitFor(a.oid);
  if (req.epoch < node.epoch) return fail(C.SD_RES_OLD_NODE_VER);
  if (node.recovery.untrusted(a.oid)) throw notCurrent(a.oid);
  await node.store.write(a.oid, p, a.offset);
  return ok();
};
const removePeer: OpHandler = async (node, req) => {
  await node.recovery.claim(objArgs(req).oid);
  await node.store.remove(objArgs(req).oid);
  return ok();
};
/** The version of every local copy and this node's purge epoch (recovery plans by them, currency.ts). */
const getVersions: OpHandler = (node, req) => {
  const oids = node.rawStore.list();
  if (req.dataLength < VERSIONS_HEADER + VERSIONS_ENTRY * oids.length) return Promise.resolve(fail(C.SD_RES_BUFFER_SMALL));
  const entries: [bigint, ObjVersion][] = [];
  for (const oid of oids) {
    const v = node.rawStore.version(oid);
    if (v) entries.push([oid, v]);
  }
  return Promise.resolve(ok(encodeVersionList(node.purgeEpoch, entries)));
};

// ---- VDI ops ----

const newVdi: OpHandler = async (node, req, data) => {
  const a = vdiArgs(req);
  const { name } = nameTag(req, data, false);
  return vdiRsp(
    await node.newVdi({
      name,
      vdiSize: a.vdiSize,
      baseVid: a.baseVdiId,
      copies: a.copies,
      copyPolicy: a.copyPolicy,
      storePolicy: a.storePolicy,
      blockSizeShift: a.blockSizeShift,
      snapid: a.snapid,
    }),
  );
};
const getVdiInfo: OpHandler = async (node, req, data) => {
  const { name, tag } = nameTag(req, data);
  return vdiRsp(await node.getVdiInfo(name, tag, vdiArgs(req).snapid));
};
const lockVdi: OpHandler = async (node, req, data, conn) => {
  const { name, tag } = nameTag(req, data);
  const a = vdiArgs(req);
  return vdiRsp(await node.lockVdi(name, tag, a.snapid, a.type, conn.target));
};
const releaseVdi: OpHandler = async (node, req, _data, conn) => {
  const a = vdiArgs(req);
  return { result: await node.releaseVdi(a.baseVdiId, a.type, conn.target?.nid ?? node.nid, conn.target) };
};

// ---- target identity (Sheepfold extension, docs/fencing.md §3-4) ----

/** HELLO: bind this connection to a target id and incarnation; later lock and object requests act as it. */
const hello: OpHandler = (_node, req, data, conn) => {
  let h;
  try {
    h = decodeHello(payload(req, data));
  } catch (err) {
    throw new SdError(C.SD_RES_INVALID_PARMS, err instanceof Error ? err.message : String(err));
  }
  conn.target = { targetId: h.targetId, incarnation: h.incarnation, nid: targetNodeId(h.targetId) };
  return Promise.resolve(ok());
};
/** TARGET_LOCKS: every (VDI, target) lock record of this node's (cluster-ordered) lock table. */
const targetLocks: OpHandler = (node, req) => {
  const list = node.locks.targetLocks();
  if (req.dataLength < list.length * SF_TARGET_LOCK_SIZE) return Promise.resolve(fail(C.SD_RES_BUFFER_SMALL));
  return Promise.resolve(ok(encodeTargetLocks(list)));
};
/** BREAK_LOCK: release every holder of the VDI's lock (obj.oid = its inode oid), as a cluster op. */
const breakLock: OpHandler = async (node, req) => ({ result: await node.breakLock(oidToVid(objArgs(req).oid)) });
const delVdi: OpHandler = async (node, req, data) => {
  const { name, tag } = nameTag(req, data);
  return vdiRsp(await node.delVdi(name, tag, vdiArgs(req).snapid));
};
const readVdis =
  (which: 'inUse' | 'deleted'): OpHandler =>
  (node, req) => {
    if (req.dataLength !== C.SD_VDI_BITMAP_SIZE) return Promise.resolve(fail(C.SD_RES_INVALID_PARMS));
    return Promise.resolve(ok(Buffer.from(node.vdis[which].toBuffer())));
  };
const getVdiAttr: OpHandler = async (node, req, data) => {
  const r = await lookupVdiAttr(node, req.flags, vdiArgs(req).snapid, payload(req, data));
  return {
    result: r.result,
    args: { kind: 'vdi', rsvd: 0, vdiId: r.vid, attrId: r.attrId, copies: r.copies, blockSizeShift: 0 },
  };
};

// ---- cluster and node ops ----

const makeFs: OpHandler = async (node, req, data) => {
  if (req.args.kind !== 'cluster') return fail(C.SD_RES_INVALID_PARMS);
  const a = req.args;
  const store = data ? readCString(data, 0, Math.min(data.length, 16)) : '';
  if (store !== '' && store !== 'plain' && store !== 'tree') return fail(C.SD_RES_NO_STORE);
  return {
    result: await node.makeFs({
      ctime: a.ctime,
      flags: a.flags,
      copies: a.copies,
      copyPolicy: a.copyPolicy,
      blockSizeShift: a.blockSizeShift,
      store: store || 'plain',
    }),
  };
};

const getNodeList: OpHandler = (node) => {
  const nodes = node.nodes();
  const args: RspArgs = { kind: 'node', nrNodes: nodes.length, storeSize: 0n, storeFree: 0n };
  return Promise.resolve(ok(encodeNodes(nodes), args));
};

const statSheep: OpHandler = async (node) => {
  const s = await node.rawStore.space();
  return ok(null, { kind: 'node', nrNodes: 0, storeSize: s.size, storeFree: s.free });
};

const statCluster: OpHandler = async (node, req) => {
  const nodesNr = req.args.kind === 'cluster' ? req.args.nodesNr : 0;
  const status = clusterStatusResult(node);
  if (!node.formatted) return { result: status };
  const stride = C.SD_EPOCH_LOG_HEADER_SIZE + nodesNr * C.SD_NODE_SIZE;
  const max = Math.floor(req.dataLength / stride);
  const logs: EpochLog[] = [];
  const cfg = node.config!;
  for (let e = node.epoch; e > 0 && logs.length < max; e--) {
    const entry = await node.files.loadEpoch(e);
    const nodes = entry?.nodes ?? [];
    if (nodesNr > 0 && nodes.length > nodesNr) return fail(C.SD_RES_BUFFER_SMALL);
    const first = logs.length === 0;
    logs.push({
      ctime: first ? cfg.ctime : 0n,
      time: entry?.time ?? 0n,
      epoch: e,
      disableRecovery: 0,
      nrCopies: first ? cfg.copies : 0,
      copyPolicy: first ? cfg.copyPolicy : 0,
      flags: first ? cfg.flags : 0,
      drvName: first ? cfg.defaultStore : '',
      nodes: nodesNr > 0 ? nodes : [],
    });
  }
  return { result: status, data: encodeEpochLogs(logs, nodesNr) };
};

function clusterStatusResult(node: SheepNode): number {
  switch (node.status) {
    case C.SD_STATUS_OK:
      return C.SD_RES_SUCCESS;
    case C.SD_STATUS_WAIT:
      return node.formatted ? C.SD_RES_WAIT_FOR_JOIN : C.SD_RES_WAIT_FOR_FORMAT;
    case C.SD_STATUS_SHUTDOWN:
      return C.SD_RES_SHUTDOWN;
    default:
      return C.SD_RES_SYSTEM_ERROR;
  }
}

const clusterInfo: OpHandler = (node, req) => {
  const cfg = node.config;
  const buf = encodeClusterInfo(
    {
      protoVer: C.SD_SHEEP_PROTO_VER,
      disableRecovery: 0,
      epoch: node.epoch,
      ctime: cfg?.ctime ?? 0n,
      flags: cfg?.flags ?? 0,
      nrCopies: cfg?.copies ?? 0,
      copyPolicy: cfg?.copyPolicy ?? 0,
      status: node.status,
      blockSizeShift: cfg?.blockSizeShift ?? 0,
      defaultStore: cfg?.defaultStore ?? '',
      nodes: node.nodes(),
    },
    Math.min(req.dataLength, C.SD_CLUSTER_INFO_SIZE),
  );
  return Promise.resolve(ok(buf));
};

const getVdiCopies: OpHandler = (node, req) => {
  const states = node.vdis.states(node.locks);
  if (req.dataLength < states.length * C.SD_VDI_STATE_SIZE) return Promise.resolve(fail(C.SD_RES_BUFFER_SMALL));
  return Promise.resolve(ok(encodeVdiStates(states)));
};

/**
 * GET_HASH: the SHA-1 of this node's copy — refused (NODE_IN_RECOVERY) while recovery has not made it current,
 * so a stale copy never votes in a check. A caller that asks for 12 bytes also gets the copy's version
 * (epoch, gen, current as u32le), which `dog vdi check` uses where current copies disagree.
 */
const getHash: OpHandler = async (node, req) => {
  const oid = objArgs(req).oid;
  if (node.clustered && node.recovery.untrusted(oid)) throw notCurrent(oid);
  const digest = await node.store.hash(oid, node.gateway.objectSize(oid));
  const v = node.store.version(oid);
  if (req.dataLength < 12 || !v) return ok(null, { kind: 'hash', digest });
  const out = Buffer.alloc(12);
  out.writeUInt32LE(v.epoch >>> 0, 0);
  out.writeUInt32LE(v.gen >>> 0, 4);
  out.writeUInt32LE(v.current >>> 0, 8);
  return ok(out, { kind: 'hash', digest });
};

const exist: OpHandler = (node, req) => Promise.resolve(fail(node.store.exists(objArgs(req).oid) ? C.SD_RES_SUCCESS : C.SD_RES_NO_OBJ));

const oidsExist: OpHandler = (node, req, data) => {
  const p = payload(req, data);
  const missing: bigint[] = [];
  for (let off = 0; off + 8 <= p.length; off += 8) {
    const oid = p.readBigUInt64LE(off);
    if (!node.store.exists(oid)) missing.push(oid);
  }
  if (missing.length === 0) return Promise.resolve(ok());
  const out = Buffer.alloc(8 * missing.length);
  missing.forEach((o, i) => out.writeBigUInt64LE(o, 8 * i));
  return Promise.resolve({ result: C.SD_RES_NO_OBJ, data: out });
};

const getObjList: OpHandler = (node, req) => {
  const oids = node.store.list();
  if (req.dataLength < 8 * oids.length) return Promise.resolve(fail(C.SD_RES_BUFFER_SMALL));
  const out = Buffer.alloc(8 * oids.length);
  oids.forEach((o, i) => out.writeBigUInt64LE(o, 8 * i));
  return Promise.resolve(ok(out));
};

const getEpoch: OpHandler = async (node, req) => {
  const entry = await node.files.loadEpoch(objArgs(req).tgtEpoch);
  if (!entry) return fail(C.SD_RES_NO_TAG);
  const nodes = encodeNodes(entry.nodes);
  if (req.dataLength < nodes.length + 8) return fail(C.SD_RES_BUFFER_SMALL);
  const out = Buffer.alloc(nodes.length + 8);
  nodes.copy(out);
  out.writeBigUInt64LE(entry.time, nodes.length);
  return ok(out);
};

/**
 * REPAIR_REPLICA (§10.6): pull the object from the node named in `forw` and store it here. When that node is
 * this one (a one-node cluster), the replica is only verified to be readable.
 */
const repairReplica: OpHandler = async (node, req) => {
  if (req.args.kind !== 'forw') return fail(C.SD_RES_INVALID_PARMS);
  const { oid, addr, port } = req.args;
  const size = node.gateway.objectSize(oid);
  if (nodeIdEquals({ addr, port, ioAddr: Buffer.alloc(16), ioPort: 0 }, node.nid)) {
    await node.store.hash(oid, size);
    return ok();
  }
  // Only cluster members are pulled from: a request must not make the sheep connect anywhere else.
  if (!node.nodes().some((n) => nodeIdEquals(n.nid, { addr, port, ioAddr: Buffer.alloc(16), ioPort: 0 }))) {
    return fail(C.SD_RES_INVALID_PARMS);
  }
  // The source serves only a copy current in this epoch (readPeer), so the repaired copy is current too.
  const data = await fetchFromPeer({ addr, port }, oid, size, node.epoch);
  await node.recovery.claim(oid);
  await node.rawStore.create(oid, size, data, 0, { epoch: node.epoch, gen: 0, current: node.epoch });
  node.log.info({ oid: oidHex(oid), from: port }, 'replica_repaired');
  return ok();
};

const inodeCoherence: OpHandler = async (node, req) => {
  if (req.args.kind !== 'inodeCoherence') return fail(C.SD_RES_INVALID_PARMS);
  return { result: await node.clusterOp({ t: 'coherence', token: '', vid: req.args.vid, validate: req.args.validate !== 0, sender: { addr: node.nid.addr.toString('hex'), port: node.nid.port } }) };
};

const notifyVdiAdd: OpHandler = async (node, req) => {
  if (req.args.kind !== 'vdiState') return fail(C.SD_RES_INVALID_PARMS);
  const a = req.args;
  return {
    result: await node.clusterOp({
      t: 'vdi_add',
      token: '',
      vid: a.newVid,
      oldVid: a.oldVid,
      copies: a.copies,
      copyPolicy: a.copyPolicy,
      blockSizeShift: a.blockSizeShift,
      parentVid: a.oldVid,
    }),
  };
};

const alterVdiCopy: OpHandler = async (node, req) => {
  if (req.args.kind !== 'vdiState' || req.args.copyPolicy !== 0) return fail(C.SD_RES_INVALID_PARMS);
  const a = req.args;
  return { result: await node.clusterOp({ t: 'alter_vdi_copy', token: '', vid: a.newVid, copies: a.copies, blockSizeShift: a.blockSizeShift }) };
};

/** ALTER_CLUSTER_COPY (§2.4): new default copies for VDIs created later; replication only. */
const alterClusterCopy: OpHandler = async (node, req) => {
  if (req.args.kind !== 'cluster' || req.args.copyPolicy !== 0) return fail(C.SD_RES_INVALID_PARMS);
  const copies = req.args.copies;
  if (copies < 1 || copies > C.SD_MAX_COPIES) return fail(C.SD_RES_INVALID_PARMS);
  return { result: await node.clusterOp({ t: 'alter_cluster_copy', token: '', copies }) };
};

const flushVdi: OpHandler = () => Promise.resolve(fail(C.SD_RES_INVALID_PARMS));
const success: OpHandler = () => Promise.resolve(ok());
const noSupport: OpHandler = () => Promise.resolve(fail(C.SD_RES_NO_SUPPORT));

const discardObj: OpHandler = async (node, req, _data, conn) => {
  await node.gateway.discard(objArgs(req).oid, conn.target);
  return ok();
};

const clusterDefault: OpHandler = (node) => {
  const d = node.clusterDefaults();
  return Promise.resolve(ok(null, { kind: 'clusterDefault', nrCopies: d.copies, copyPolicy: d.copyPolicy, blockSizeShift: d.blockSizeShift }));
};

const storeList: OpHandler = () => Promise.resolve(ok(Buffer.from('plain ', 'latin1')));
const statRecovery: OpHandler = (node) => {
  const st = node.recoveryState();
  return Promise.resolve(ok(encodeRecoveryState({ inRecovery: st.inRecovery, state: st.state, nrFinished: BigInt(st.finished), nrTotal: BigInt(st.total) })));
};
const getRecovery: OpHandler = (node) => {
  const t = node.recovery.throttle;
  return Promise.resolve(ok(encodeRecoveryThrottling({ maxExecCount: t.maxExecCount, queueWorkIntervalMs: t.intervalMs, throttling: t.maxExecCount > 0 || t.intervalMs > 0n })));
};
/**
 * SET_RECOVERY (§2.4): recovery concurrency (max_exec_count, 0 = default) and pause between objects. Any u32 /
 * u64 is taken and reported back as set (sheepdog's test 107 sets the largest); recovery itself runs at most 64
 * objects at once and pauses at most an hour between two.
 */
const setRecovery: OpHandler = (node, req, data) => {
  const p = payload(req, data);
  if (p.length < C.SD_RECOVERY_THROTTLING_SIZE) return Promise.resolve(fail(C.SD_RES_INVALID_PARMS));
  const maxExecCount = p.readUInt32LE(0);
  const interval = p.readBigUInt64LE(8);
  const throttling = p.readUInt8(16) !== 0;
  node.recovery.throttle = throttling ? { maxExecCount, intervalMs: interval } : { maxExecCount: 0, intervalMs: 0n };
  return Promise.resolve(ok());
};
const getLogLevel: OpHandler = () => Promise.resolve(ok(u32(6)));
const getVnodes: OpHandler = () => Promise.resolve(ok(u32(C.SD_DEFAULT_VNODES)));
const shutdown: OpHandler = async (node) => ({ result: await node.shutdown() });
const killNode: OpHandler = (node) => {
  node.kill();
  return Promise.resolve(ok());
};
/** FORCE_RECOVER: only while the cluster waits after a shutdown for missing nodes; else FORCE_RECOVER. */
const forceRecover: OpHandler = async (node) => {
  if (node.missingAfterShutdown().length === 0) return fail(C.SD_RES_FORCE_RECOVER);
  return { result: await node.forceRecover() };
};
const checkpoint: OpHandler = () => Promise.resolve(fail(C.SD_RES_NO_CHECKPOINT_ENTRY));

/** How long a peer request from a newer epoch waits for this node to catch up. */
const PEER_EPOCH_WAIT_MS = 5_000;

const def = (name: string, cls: OpClass, force: boolean, handler: OpHandler): OpDef => ({ name, cls, force, handler });

/** The op table. Opcodes not in it get INVALID_PARMS. */
export const OPS: ReadonlyMap<number, OpDef> = new Map<number, OpDef>([
  [C.SD_OP_CREATE_AND_WRITE_OBJ, def('CREATE_AND_WRITE_OBJ', 'gateway', false, createObj)],
  [C.SD_OP_READ_OBJ, def('READ_OBJ', 'gateway', false, readObj)],
  [C.SD_OP_WRITE_OBJ, def('WRITE_OBJ', 'gateway', false, writeObj)],
  [C.SD_OP_REMOVE_OBJ, def('REMOVE_OBJ', 'gateway', false, removeObj)],
  [C.SF_OP_CREATE_EXCL, def('CREATE_EXCL', 'gateway', false, serialObj)],
  [C.SF_OP_CMP_WRITE, def('CMP_WRITE', 'gateway', false, serialObj)],
  [C.SF_OP_WRITE_SERIAL, def('WRITE_SERIAL', 'gateway', false, serialObj)],
  [C.SD_OP_DISCARD_OBJ, def('DISCARD_OBJ', 'local', false, discardObj)],
  [C.SD_OP_NEW_VDI, def('NEW_VDI', 'cluster', false, newVdi)],
  [C.SD_OP_LOCK_VDI, def('LOCK_VDI', 'cluster', false, lockVdi)],
  [C.SD_OP_RELEASE_VDI, def('RELEASE_VDI', 'cluster', false, releaseVdi)],
  [C.SD_OP_GET_VDI_INFO, def('GET_VDI_INFO', 'cluster', false, getVdiInfo)],
  [C.SD_OP_READ_VDIS, def('READ_VDIS', 'local', true, readVdis('inUse'))],
  [C.SD_OP_FLUSH_VDI, def('FLUSH_VDI', 'local', false, flushVdi)],
  [C.SD_OP_DEL_VDI, def('DEL_VDI', 'cluster', false, delVdi)],
  [C.SD_OP_GET_CLUSTER_DEFAULT, def('GET_CLUSTER_DEFAULT', 'local', true, clusterDefault)],
  [C.SD_OP_GET_NODE_LIST, def('GET_NODE_LIST', 'local', true, getNodeList)],
  [C.SD_OP_MAKE_FS, def('MAKE_FS', 'cluster', true, makeFs)],
  [C.SD_OP_SHUTDOWN, def('SHUTDOWN', 'cluster', true, shutdown)],
  [C.SD_OP_STAT_SHEEP, def('STAT_SHEEP', 'local', false, statSheep)],
  [C.SD_OP_STAT_CLUSTER, def('STAT_CLUSTER', 'local', true, statCluster)],
  [C.SD_OP_GET_VDI_ATTR, def('GET_VDI_ATTR', 'cluster', false, getVdiAttr)],
  [C.SD_OP_FORCE_RECOVER, def('FORCE_RECOVER', 'cluster', true, forceRecover)],
  [C.SD_OP_GET_STORE_LIST, def('GET_STORE_LIST', 'local', true, storeList)],
  [C.SD_OP_CLEANUP, def('CLEANUP', 'cluster', true, success)],
  [C.SD_OP_TRACE_STATUS, def('TRACE_STATUS', 'local', false, noSupport)],
  [C.SD_OP_TRACE_READ_BUF, def('TRACE_READ_BUF', 'local', false, noSupport)],
  [C.SD_OP_TRACE_ENABLE, def('TRACE_ENABLE', 'local', false, noSupport)],
  [C.SD_OP_TRACE_DISABLE, def('TRACE_DISABLE', 'local', false, noSupport)],
  [C.SD_OP_STAT_RECOVERY, def('STAT_RECOVERY', 'local', false, statRecovery)],
  [C.SD_OP_FLUSH_DEL_CACHE, def('FLUSH_DEL_CACHE', 'local', false, success)],
  [C.SD_OP_NOTIFY_VDI_DEL, def('NOTIFY_VDI_DEL', 'cluster', true, success)],
  [C.SD_OP_KILL_NODE, def('KILL_NODE', 'local', true, killNode)],
  [C.SD_OP_GET_OBJ_LIST, def('GET_OBJ_LIST', 'local', false, getObjList)],
  [C.SD_OP_GET_EPOCH, def('GET_EPOCH', 'local', false, getEpoch)],
  [C.SD_OP_CREATE_AND_WRITE_PEER, def('CREATE_AND_WRITE_PEER', 'peer', false, createPeer)],
  [C.SD_OP_READ_PEER, def('READ_PEER', 'peer', false, readPeer)],
  [C.SD_OP_WRITE_PEER, def('WRITE_PEER', 'peer', false, writePeer)],
  [C.SD_OP_REMOVE_PEER, def('REMOVE_PEER', 'peer', false, removePeer)],
  [C.SD_OP_ENABLE_RECOVER, def('ENABLE_RECOVER', 'cluster', false, success)],
  [C.SD_OP_DISABLE_RECOVER, def('DISABLE_RECOVER', 'cluster', false, success)],
  [C.SD_OP_GET_VDI_COPIES, def('GET_VDI_COPIES', 'local', true, getVdiCopies)],
  [C.SD_OP_COMPLETE_RECOVERY, def('COMPLETE_RECOVERY', 'cluster', true, success)],
  [C.SD_OP_NOTIFY_VDI_ADD, def('NOTIFY_VDI_ADD', 'cluster', true, notifyVdiAdd)],
  [C.SD_OP_DELETE_CACHE, def('DELETE_CACHE', 'cluster', false, success)],
  [C.SD_OP_MD_INFO, def('MD_INFO', 'local', false, noSupport)],
  [C.SD_OP_MD_PLUG, def('MD_PLUG', 'local', false, noSupport)],
  [C.SD_OP_MD_UNPLUG, def('MD_UNPLUG', 'local', false, noSupport)],
  [C.SD_OP_GET_HASH, def('GET_HASH', 'local', false, getHash)],
  [C.SD_OP_REWEIGHT, def('REWEIGHT', 'cluster', false, success)],
  [C.SD_OP_GET_LOGLEVEL, def('GET_LOGLEVEL', 'local', true, getLogLevel)],
  [C.SD_OP_SET_LOGLEVEL, def('SET_LOGLEVEL', 'local', true, success)],
  [C.SD_OP_EXIST, def('EXIST', 'local', true, exist)],
  [C.SD_OP_CLUSTER_INFO, def('CLUSTER_INFO', 'local', true, clusterInfo)],
  [C.SD_OP_ALTER_CLUSTER_COPY, def('ALTER_CLUSTER_COPY', 'cluster', false, alterClusterCopy)],
  [C.SD_OP_ALTER_VDI_COPY, def('ALTER_VDI_COPY', 'cluster', false, alterVdiCopy)],
  [C.SD_OP_REPAIR_REPLICA, def('REPAIR_REPLICA', 'local', false, repairReplica)],
  [C.SD_OP_OIDS_EXIST, def('OIDS_EXIST', 'local', true, oidsExist)],
  [C.SD_OP_VDI_STATE_CHECKPOINT_CTL, def('VDI_STATE_CHECKPOINT_CTL', 'local', false, checkpoint)],
  [C.SD_OP_INODE_COHERENCE, def('INODE_COHERENCE', 'cluster', false, inodeCoherence)],
  [C.SD_OP_READ_DEL_VDIS, def('READ_DEL_VDIS', 'local', true, readVdis('deleted'))],
  [C.SD_OP_GET_RECOVERY, def('GET_RECOVERY', 'local', true, getRecovery)],
  [C.SD_OP_SET_RECOVERY, def('SET_RECOVERY', 'local', true, setRecovery)],
  [SF_OP_GET_VERSIONS, def('GET_VERSIONS', 'local', false, getVersions)],
  [C.SD_OP_GET_VNODES, def('GET_VNODES', 'local', false, getVnodes)],
  [SF_OP_HELLO, def('HELLO', 'local', true, hello)],
  [SF_OP_TARGET_LOCKS, def('TARGET_LOCKS', 'local', true, targetLocks)],
  [SF_OP_BREAK_LOCK, def('BREAK_LOCK', 'cluster', false, breakLock)],
]);

/** Validate and run one request; never throws (every failure becomes a result code). */
export async function dispatch(node: SheepNode, req: SdRequest, data: Buffer | null, conn: ConnContext = {}): Promise<OpResult> {
  if (req.opcode >= 0x80 ? req.protoVer !== C.SD_SHEEP_PROTO_VER : req.protoVer > C.SD_PROTO_VER) {
    return fail(C.SD_RES_VER_MISMATCH);
  }
  const op = OPS.get(req.opcode);
  if (!op) return fail(C.SD_RES_INVALID_PARMS);
  if (node.status === C.SD_STATUS_KILLED) return fail(C.SD_RES_KILLED);
  if (!op.force) {
    if (node.status === C.SD_STATUS_SHUTDOWN) return fail(C.SD_RES_SHUTDOWN);
    if (node.status === C.SD_STATUS_WAIT) return fail(node.formatted ? C.SD_RES_WAIT_FOR_JOIN : C.SD_RES_WAIT_FOR_FORMAT);
  }
  // Self-fencing: a sheep that cannot prove it is still a cluster member neither serves nor acknowledges.
  const fenced = !op.force && node.driver.fenced ? () => node.driver.fenced!() : null;
  if (fenced?.()) return fail(C.SD_RES_NETWORK_ERROR);
  if (op.cls === 'peer' && req.args.kind === 'obj' && req.args.oid !== 0n && (req.flags & C.SD_FLAG_CMD_RECOVERY) === 0) {
    // Catch up with the cluster log first: a node that was frozen (SIGSTOP) and expelled must learn the new
    // epoch before it serves peer I/O still queued on its sockets, or an old write could land as a ghost.
    await node.driver.sync?.();
    if (req.epoch < node.epoch) return fail(C.SD_RES_OLD_NODE_VER);
    // A newer epoch: this node has not applied the membership change yet; wait for it (§1.8).
    if (req.epoch > node.epoch && !(await node.waitEpochAtLeast(req.epoch, PEER_EPOCH_WAIT_MS))) return fail(C.SD_RES_NEW_NODE_VER);
    if (req.epoch < node.epoch) return fail(C.SD_RES_OLD_NODE_VER);
  }
  try {
    const r = await op.handler(node, req, data, conn);
    // Fenced while it ran: what it did is not acknowledged (the client retries elsewhere or later).
    if (fenced?.() && r.result === C.SD_RES_SUCCESS) return fail(C.SD_RES_NETWORK_ERROR);
    return r;
  } catch (err) {
    const result = resultOf(err);
    if (result !== null) {
      node.log.debug({ op: op.name, result: C.resultName(result), err: (err as Error).message }, 'op_failed');
      return fail(result);
    }
    node.log.error({ op: op.name, err }, 'op_crashed');
    return fail(C.SD_RES_EIO);
  }
}

