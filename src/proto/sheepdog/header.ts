// The 48-byte Sheepdog request and response headers (`struct sd_req`, `struct sd_rsp`) and their
// opcode-specific variants. Fact sheet §1.2–1.4. All integers little-endian; 64-bit fields are bigint.
import * as C from './constants.js';

/** Request variants (§1.3): which 32-byte union member an opcode uses. */
export type ReqArgs =
  | ObjReqArgs
  | VdiReqArgs
  | ClusterReqArgs
  | VdiStateReqArgs
  | RefReqArgs
  | ForwReqArgs
  | VdiStateCheckpointReqArgs
  | InodeCoherenceReqArgs;

export interface ObjReqArgs {
  kind: 'obj';
  oid: bigint;
  cowOid: bigint;
  copies: number;
  copyPolicy: number;
  ecIndex: number;
  /** tgt calls it `rsvd`; recovery reads use it as the epoch to read from. */
  tgtEpoch: number;
  /** Byte offset inside the object. */
  offset: number;
}

export interface VdiReqArgs {
  kind: 'vdi';
  vdiSize: bigint;
  /** tgt's `vdi_id`: the base VDI for NEW_VDI, the vid for RELEASE_VDI. */
  baseVdiId: number;
  copies: number;
  copyPolicy: number;
  storePolicy: number;
  blockSizeShift: number;
  snapid: number;
  /** Lock type (LOCK_TYPE_NORMAL / LOCK_TYPE_SHARED). */
  type: number;
}

export interface ClusterReqArgs {
  kind: 'cluster';
  oid: bigint;
  ctime: bigint;
  copies: number;
  copyPolicy: number;
  flags: number;
  tag: number;
  nodesNr: number;
  blockSizeShift: number;
}

export interface VdiStateReqArgs {
  kind: 'vdiState';
  oldVid: number;
  newVid: number;
  copies: number;
  setBitmap: number;
  copyPolicy: number;
  blockSizeShift: number;
}

export interface RefReqArgs {
  kind: 'ref';
  oid: bigint;
  generation: number;
  count: number;
}

export interface ForwReqArgs {
  kind: 'forw';
  oid: bigint;
  /** 16 raw address bytes (IPv4 = 12 zero bytes + 4 address bytes). */
  addr: Buffer;
  port: number;
}

export interface VdiStateCheckpointReqArgs {
  kind: 'vdiStateCheckpoint';
  get: number;
  tgtEpoch: number;
  vid: number;
}

export interface InodeCoherenceReqArgs {
  kind: 'inodeCoherence';
  vid: number;
  validate: number;
}

export interface SdRequest {
  protoVer: number;
  opcode: number;
  flags: number;
  epoch: number;
  id: number;
  dataLength: number;
  args: ReqArgs;
}

/** Response variants (§1.4). `result` sits at offset 16 in all of them. */
export type RspArgs = ObjRspArgs | VdiRspArgs | NodeRspArgs | HashRspArgs | ClusterDefaultRspArgs;

export interface ObjRspArgs {
  kind: 'obj';
  copies: number;
  offset: bigint;
}
export interface VdiRspArgs {
  kind: 'vdi';
  rsvd: number;
  vdiId: number;
  attrId: number;
  copies: number;
  blockSizeShift: number;
}
export interface NodeRspArgs {
  kind: 'node';
  nrNodes: number;
  storeSize: bigint;
  storeFree: bigint;
}
export interface HashRspArgs {
  kind: 'hash';
  /** SHA-1 digest, 20 bytes. */
  digest: Buffer;
}
export interface ClusterDefaultRspArgs {
  kind: 'clusterDefault';
  nrCopies: number;
  copyPolicy: number;
  blockSizeShift: number;
}

export interface SdResponse {
  protoVer: number;
  opcode: number;
  flags: number;
  epoch: number;
  id: number;
  dataLength: number;
  result: number;
  args: RspArgs;
}

/** Which request variant an opcode uses; every opcode not listed uses `obj`. */
export function requestVariant(opcode: number): ReqArgs['kind'] {
  switch (opcode) {
    case C.SD_OP_NEW_VDI:
    case C.SD_OP_LOCK_VDI:
    case C.SD_OP_RELEASE_VDI:
    case C.SD_OP_GET_VDI_INFO:
    case C.SD_OP_DEL_VDI:
    case C.SD_OP_GET_VDI_ATTR:
      return 'vdi';
    case C.SD_OP_MAKE_FS:
    case C.SD_OP_STAT_CLUSTER:
    case C.SD_OP_ALTER_CLUSTER_COPY:
      return 'cluster';
    case C.SD_OP_NOTIFY_VDI_ADD:
    case C.SD_OP_ALTER_VDI_COPY:
      return 'vdiState';
    case C.SD_OP_DECREF_OBJ:
    case C.SD_OP_DECREF_PEER:
      return 'ref';
    case C.SD_OP_REPAIR_REPLICA:
      return 'forw';
    case C.SD_OP_VDI_STATE_CHECKPOINT_CTL:
      return 'vdiStateCheckpoint';
    case C.SD_OP_INODE_COHERENCE:
      return 'inodeCoherence';
    default:
      return 'obj';
  }
}

/** Which response variant an opcode uses; every opcode not listed uses `obj`. */
export function responseVariant(opcode: number): RspArgs['kind'] {
  switch (opcode) {
    case C.SD_OP_NEW_VDI:
    case C.SD_OP_LOCK_VDI:
    case C.SD_OP_RELEASE_VDI:
    case C.SD_OP_GET_VDI_INFO:
    case C.SD_OP_DEL_VDI:
    case C.SD_OP_GET_VDI_ATTR:
      return 'vdi';
    case C.SD_OP_GET_NODE_LIST:
    case C.SD_OP_STAT_SHEEP:
      return 'node';
    case C.SD_OP_GET_HASH:
      return 'hash';
    case C.SD_OP_GET_CLUSTER_DEFAULT:
      return 'clusterDefault';
    default:
      return 'obj';
  }
}

/** Zero-valued request args of a variant, for building requests field by field. */
export function emptyReqArgs<K extends ReqArgs['kind']>(kind: K): Extract<ReqArgs, { kind: K }> {
  const empty: { [P in ReqArgs['kind']]: Extract<ReqArgs, { kind: P }> } = {
    obj: { kind: 'obj', oid: 0n, cowOid: 0n, copies: 0, copyPolicy: 0, ecIndex: 0, tgtEpoch: 0, offset: 0 },
    vdi: {
      kind: 'vdi',
      vdiSize: 0n,
      baseVdiId: 0,
      copies: 0,
      copyPolicy: 0,
      storePolicy: 0,
      blockSizeShift: 0,
      snapid: 0,
      type: 0,
    },
    cluster: {
      kind: 'cluster',
      oid: 0n,
      ctime: 0n,
      copies: 0,
      copyPolicy: 0,
      flags: 0,
      tag: 0,
      nodesNr: 0,
      blockSizeShift: 0,
    },
    vdiState: { kind: 'vdiState', oldVid: 0, newVid: 0, copies: 0, setBitmap: 0, copyPolicy: 0, blockSizeShift: 0 },
    ref: { kind: 'ref', oid: 0n, generation: 0, count: 0 },
    forw: { kind: 'forw', oid: 0n, addr: Buffer.alloc(16), port: 0 },
    vdiStateCheckpoint: { kind: 'vdiStateCheckpoint', get: 0, tgtEpoch: 0, vid: 0 },
    inodeCoherence: { kind: 'inodeCoherence', vid: 0, validate: 0 },
  };
  return empty[kind];
}

/** Zero-valued response args of a variant. */
export function emptyRspArgs<K extends RspArgs['kind']>(kind: K): Extract<RspArgs, { kind: K }> {
  const empty: { [P in RspArgs['kind']]: Extract<RspArgs, { kind: P }> } = {
    obj: { kind: 'obj', copies: 0, offset: 0n },
    vdi: { kind: 'vdi', rsvd: 0, vdiId: 0, attrId: 0, copies: 0, blockSizeShift: 0 },
    node: { kind: 'node', nrNodes: 0, storeSize: 0n, storeFree: 0n },
    hash: { kind: 'hash', digest: Buffer.alloc(20) },
    clusterDefault: { kind: 'clusterDefault', nrCopies: 0, copyPolicy: 0, blockSizeShift: 0 },
  };
  return empty[kind];
}

/** Write a request header into `out` at `off` (48 bytes). */
export function writeRequestHeader(req: SdRequest, out: Buffer, off = 0): void {
  out.fill(0, off, off + C.SD_REQ_SIZE);
  out.writeUInt8(req.protoVer, off);
  out.writeUInt8(req.opcode, off + 1);
  out.writeUInt16LE(req.flags, off + 2);
  out.writeUInt32LE(req.epoch >>> 0, off + 4);
  out.writeUInt32LE(req.id >>> 0, off + 8);
  out.writeUInt32LE(req.dataLength >>> 0, off + 12);
  const a = req.args;
  const b = off;
  switch (a.kind) {
    case 'obj':
      out.writeBigUInt64LE(a.oid, b + 16);
      out.writeBigUInt64LE(a.cowOid, b + 24);
      out.writeUInt8(a.copies, b + 32);
      out.writeUInt8(a.copyPolicy, b + 33);
      out.writeUInt8(a.ecIndex, b + 34);
      out.writeUInt32LE(a.tgtEpoch >>> 0, b + 36);
      out.writeUInt32LE(a.offset >>> 0, b + 40);
      break;
    case 'vdi':
      out.writeBigUInt64LE(a.vdiSize, b + 16);
      out.writeUInt32LE(a.baseVdiId >>> 0, b + 24);
      out.writeUInt8(a.copies, b + 28);
      out.writeUInt8(a.copyPolicy, b + 29);
      out.writeUInt8(a.storePolicy, b + 30);
      out.writeUInt8(a.blockSizeShift, b + 31);
      out.writeUInt32LE(a.snapid >>> 0, b + 32);
      out.writeUInt32LE(a.type >>> 0, b + 36);
      break;
    case 'cluster':
      out.writeBigUInt64LE(a.oid, b + 16);
      out.writeBigUInt64LE(a.ctime, b + 24);
      out.writeUInt8(a.copies, b + 32);
      out.writeUInt8(a.copyPolicy, b + 33);
      out.writeUInt16LE(a.flags, b + 34);
      out.writeUInt32LE(a.tag >>> 0, b + 36);
      out.writeUInt32LE(a.nodesNr >>> 0, b + 40);
      out.writeUInt8(a.blockSizeShift, b + 44);
      break;
    case 'vdiState':
      out.writeUInt32LE(a.oldVid >>> 0, b + 16);
      out.writeUInt32LE(a.newVid >>> 0, b + 20);
      out.writeUInt8(a.copies, b + 24);
      out.writeUInt8(a.setBitmap, b + 25);
      out.writeUInt8(a.copyPolicy, b + 26);
      out.writeUInt8(a.blockSizeShift, b + 27);
      break;
    case 'ref':
      out.writeBigUInt64LE(a.oid, b + 16);
      out.writeUInt32LE(a.generation >>> 0, b + 24);
      out.writeUInt32LE(a.count >>> 0, b + 28);
      break;
    case 'forw':
      out.writeBigUInt64LE(a.oid, b + 16);
      a.addr.copy(out, b + 24, 0, 16);
      out.writeUInt16LE(a.port, b + 40);
      break;
    case 'vdiStateCheckpoint':
      out.writeUInt32LE(a.get >>> 0, b + 16);
      out.writeUInt32LE(a.tgtEpoch >>> 0, b + 20);
      out.writeUInt32LE(a.vid >>> 0, b + 24);
      break;
    case 'inodeCoherence':
      out.writeUInt32LE(a.vid >>> 0, b + 16);
      out.writeUInt32LE(a.validate >>> 0, b + 20);
      break;
  }
}

/** Encode a request header as a fresh 48-byte buffer. */
export function encodeRequestHeader(req: SdRequest): Buffer {
  const out = Buffer.allocUnsafe(C.SD_REQ_SIZE);
  writeRequestHeader(req, out, 0);
  return out;
}

/** Decode the 48-byte request header at `off`; the args variant follows from the opcode. */
export function decodeRequestHeader(buf: Buffer, off = 0): SdRequest {
  if (buf.length - off < C.SD_REQ_SIZE) throw new RangeError('short sheepdog request header');
  const opcode = buf.readUInt8(off + 1);
  return {
    protoVer: buf.readUInt8(off),
    opcode,
    flags: buf.readUInt16LE(off + 2),
    epoch: buf.readUInt32LE(off + 4),
    id: buf.readUInt32LE(off + 8),
    dataLength: buf.readUInt32LE(off + 12),
    args: decodeReqArgs(requestVariant(opcode), buf, off),
  };
}

/** Decode the 32-byte union of a request header as the given variant. */
export function decodeReqArgs(kind: ReqArgs['kind'], buf: Buffer, b: number): ReqArgs {
  switch (kind) {
    case 'obj':
      return {
        kind,
        oid: buf.readBigUInt64LE(b + 16),
        cowOid: buf.readBigUInt64LE(b + 24),
        copies: buf.readUInt8(b + 32),
        copyPolicy: buf.readUInt8(b + 33),
        ecIndex: buf.readUInt8(b + 34),
        tgtEpoch: buf.readUInt32LE(b + 36),
        offset: buf.readUInt32LE(b + 40),
      };
    case 'vdi':
      return {
        kind,
        vdiSize: buf.readBigUInt64LE(b + 16),
        baseVdiId: buf.readUInt32LE(b + 24),
        copies: buf.readUInt8(b + 28),
        copyPolicy: buf.readUInt8(b + 29),
        storePolicy: buf.readUInt8(b + 30),
        blockSizeShift: buf.readUInt8(b + 31),
        snapid: buf.readUInt32LE(b + 32),
        type: buf.readUInt32LE(b + 36),
      };
    case 'cluster':
      return {
        kind,
        oid: buf.readBigUInt64LE(b + 16),
        ctime: buf.readBigUInt64LE(b + 24),
        copies: buf.readUInt8(b + 32),
        copyPolicy: buf.readUInt8(b + 33),
        flags: buf.readUInt16LE(b + 34),
        tag: buf.readUInt32LE(b + 36),
        nodesNr: buf.readUInt32LE(b + 40),
        blockSizeShift: buf.readUInt8(b + 44),
      };
    case 'vdiState':
      return {
        kind,
        oldVid: buf.readUInt32LE(b + 16),
        newVid: buf.readUInt32LE(b + 20),
        copies: buf.readUInt8(b + 24),
        setBitmap: buf.readUInt8(b + 25),
        copyPolicy: buf.readUInt8(b + 26),
        blockSizeShift: buf.readUInt8(b + 27),
      };
    case 'ref':
      return {
        kind,
        oid: buf.readBigUInt64LE(b + 16),
        generation: buf.readUInt32LE(b + 24),
        count: buf.readUInt32LE(b + 28),
      };
    case 'forw':
      return {
        kind,
        oid: buf.readBigUInt64LE(b + 16),
        addr: Buffer.from(buf.subarray(b + 24, b + 40)),
        port: buf.readUInt16LE(b + 40),
      };
    case 'vdiStateCheckpoint':
      return { kind, get: buf.readUInt32LE(b + 16), tgtEpoch: buf.readUInt32LE(b + 20), vid: buf.readUInt32LE(b + 24) };
    case 'inodeCoherence':
      return { kind, vid: buf.readUInt32LE(b + 16), validate: buf.readUInt32LE(b + 20) };
  }
}

/** Write a response header into `out` at `off` (48 bytes). */
export function writeResponseHeader(rsp: SdResponse, out: Buffer, off = 0): void {
  out.fill(0, off, off + C.SD_RSP_SIZE);
  out.writeUInt8(rsp.protoVer, off);
  out.writeUInt8(rsp.opcode, off + 1);
  out.writeUInt16LE(rsp.flags, off + 2);
  out.writeUInt32LE(rsp.epoch >>> 0, off + 4);
  out.writeUInt32LE(rsp.id >>> 0, off + 8);
  out.writeUInt32LE(rsp.dataLength >>> 0, off + 12);
  out.writeUInt32LE(rsp.result >>> 0, off + 16);
  const a = rsp.args;
  const b = off;
  switch (a.kind) {
    case 'obj':
      out.writeUInt8(a.copies, b + 20);
      out.writeBigUInt64LE(a.offset, b + 24);
      break;
    case 'vdi':
      out.writeUInt32LE(a.rsvd >>> 0, b + 20);
      out.writeUInt32LE(a.vdiId >>> 0, b + 24);
      out.writeUInt32LE(a.attrId >>> 0, b + 28);
      out.writeUInt8(a.copies, b + 32);
      out.writeUInt8(a.blockSizeShift, b + 33);
      break;
    case 'node':
      out.writeUInt32LE(a.nrNodes >>> 0, b + 20);
      out.writeBigUInt64LE(a.storeSize, b + 32);
      out.writeBigUInt64LE(a.storeFree, b + 40);
      break;
    case 'hash':
      a.digest.copy(out, b + 24, 0, 20);
      break;
    case 'clusterDefault':
      out.writeUInt8(a.nrCopies, b + 20);
      out.writeUInt8(a.copyPolicy, b + 21);
      out.writeUInt8(a.blockSizeShift, b + 22);
      break;
  }
}

/** Encode a response header as a fresh 48-byte buffer. */
export function encodeResponseHeader(rsp: SdResponse): Buffer {
  const out = Buffer.allocUnsafe(C.SD_RSP_SIZE);
  writeResponseHeader(rsp, out, 0);
  return out;
}

/** Decode the 48-byte response header at `off`; the args variant follows from the opcode. */
export function decodeResponseHeader(buf: Buffer, off = 0): SdResponse {
  if (buf.length - off < C.SD_RSP_SIZE) throw new RangeError('short sheepdog response header');
  const opcode = buf.readUInt8(off + 1);
  return {
    protoVer: buf.readUInt8(off),
    opcode,
    flags: buf.readUInt16LE(off + 2),
    epoch: buf.readUInt32LE(off + 4),
    id: buf.readUInt32LE(off + 8),
    dataLength: buf.readUInt32LE(off + 12),
    result: buf.readUInt32LE(off + 16),
    args: decodeRspArgs(responseVariant(opcode), buf, off),
  };
}

/** Decode the variant part of a response header. */
export function decodeRspArgs(kind: RspArgs['kind'], buf: Buffer, b: number): RspArgs {
  switch (kind) {
    case 'obj':
      return { kind, copies: buf.readUInt8(b + 20), offset: buf.readBigUInt64LE(b + 24) };
    case 'vdi':
      return {
        kind,
        rsvd: buf.readUInt32LE(b + 20),
        vdiId: buf.readUInt32LE(b + 24),
        attrId: buf.readUInt32LE(b + 28),
        copies: buf.readUInt8(b + 32),
        blockSizeShift: buf.readUInt8(b + 33),
      };
    case 'node':
      return {
        kind,
        nrNodes: buf.readUInt32LE(b + 20),
        storeSize: buf.readBigUInt64LE(b + 32),
        storeFree: buf.readBigUInt64LE(b + 40),
      };
    case 'hash':
      return { kind, digest: Buffer.from(buf.subarray(b + 24, b + 44)) };
    case 'clusterDefault':
      return {
        kind,
        nrCopies: buf.readUInt8(b + 20),
        copyPolicy: buf.readUInt8(b + 21),
        blockSizeShift: buf.readUInt8(b + 22),
      };
  }
}

/** True if the request carries a payload on the wire (§1.1): WRITE flag and data_length > 0. */
export function requestHasPayload(req: Pick<SdRequest, 'flags' | 'dataLength'>): boolean {
  return (req.flags & C.SD_FLAG_CMD_WRITE) !== 0 && req.dataLength > 0;
}

/** Convenience: build a request with defaults (proto 0x02 for public ops, 0x0a for internal ones). */
export function makeRequest(
  opcode: number,
  args: ReqArgs = emptyReqArgs(requestVariant(opcode)),
  fields: Partial<Omit<SdRequest, 'opcode' | 'args'>> = {},
): SdRequest {
  return {
    protoVer: fields.protoVer ?? (opcode >= 0x80 ? C.SD_SHEEP_PROTO_VER : C.SD_PROTO_VER),
    opcode,
    flags: fields.flags ?? 0,
    epoch: fields.epoch ?? 0,
    id: fields.id ?? 0,
    dataLength: fields.dataLength ?? 0,
    args,
  };
}

/** Convenience: build a response to `req` with the given result, echoing opcode and id (§12 pitfall 19). */
export function makeResponse(
  req: Pick<SdRequest, 'opcode' | 'id'>,
  result: number,
  fields: Partial<Omit<SdResponse, 'opcode' | 'id' | 'result'>> = {},
): SdResponse {
  return {
    protoVer: fields.protoVer ?? 0,
    opcode: req.opcode,
    flags: fields.flags ?? 0,
    epoch: fields.epoch ?? 0,
    id: req.id,
    dataLength: fields.dataLength ?? 0,
    result,
    args: fields.args ?? emptyRspArgs(responseVariant(req.opcode)),
  };
}
