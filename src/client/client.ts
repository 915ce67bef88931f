// SheepClient: typed Sheepdog operations on top of SheepTransport. Each helper builds the request exactly as
// dog/tgt do (fact sheet §2.2–2.5), checks the result and returns decoded structures; a non-success result
// becomes a SheepError carrying the SD_RES code and its message. Per-node clients (for GET_HASH, EXIST,
// REPAIR_REPLICA sent to one replica directly) come from forNode() and share the options.
import * as C from '../proto/sheepdog/constants.js';
import {
  VdiBitmap,
  addrText,
  decodeClusterInfo,
  decodeEpochLogs,
  decodeInode,
  decodeInodeHeader,
  decodeNodes,
  decodeVdiStates,
  emptyReqArgs,
  epochLogStride,
  fixedString,
  isIPv4,
  makeRequest,
  sdTimestamp,
  vidToVdiOid,
  type ClusterInfo,
  type EpochLog,
  type Inode,
  type InodeHeader,
  type NodeId,
  type SdNode,
  type SdRequest,
  type SdResponse,
  type VdiState,
} from '../proto/sheepdog/index.js';
import { gatewayText, parseGatewayList, type GatewayAddr } from './address.js';
import type { SdReply } from './connection.js';
import { SheepError, SheepNetError } from './errors.js';
import { SheepTransport, type RequestOptions, type TransportOptions } from './transport.js';
import { copyUnlessInPlace } from '../util/bytes.js';
import type { Clock } from '../util/clock.js';

export interface ObjIoOptions {
  /** Offset inside the object. */
  offset?: number;
  /** Replica count (0 = the VDI's, chosen by the gateway). */
  copies?: number;
  /** Extra header flags (e.g. SD_FLAG_CMD_TGT for coherence-aware I/O). */
  flags?: number;
  timeoutMs?: number;
  /** Write fence (the client clock's now(), ms): never sent or re-sent after it (see RequestOptions.notAfter). */
  notAfter?: number;
  /** When the write was accepted from the initiator (RequestOptions.issuedAt). */
  issuedAt?: number;
}

export interface CreateOptions extends ObjIoOptions {
  /** Copy-on-write source: the new object is first filled from this oid (SD_FLAG_CMD_COW). */
  cowOid?: bigint;
}

export interface VdiInfo {
  vid: number;
  copies: number;
  blockSizeShift: number;
}

export interface NewVdiOptions {
  name: string;
  size: bigint;
  /** Parent vid: the snapshot for a clone, the current vid for a snapshot. */
  baseVid?: number;
  /** Take a snapshot of `baseVid` (snapid != 0). */
  snapshot?: boolean;
  copies?: number;
  copyPolicy?: number;
  storePolicy?: number;
  blockSizeShift?: number;
}

export interface VdiSelector {
  tag?: string;
  snapid?: number;
}

export interface MakeFsOptions {
  copies?: number;
  copyPolicy?: number;
  /** SD_CLUSTER_FLAG_* bits. */
  flags?: number;
  blockSizeShift?: number;
  /** sec<<32 | nsec; default now. */
  ctime?: bigint;
  store?: string;
}

export interface ClusterStat {
  /** SD_RES_SUCCESS when running, else WAIT_FOR_FORMAT / WAIT_FOR_JOIN / SHUTDOWN. */
  status: number;
  epoch: number;
  logs: EpochLog[];
}

export type SheepClientOptions = Omit<TransportOptions, 'gateways'> & { gateways: GatewayAddr[] | string };

export class SheepClient {
  readonly transport: SheepTransport;
  private readonly opts: SheepClientOptions;
  private readonly nodeClients = new Map<string, SheepClient>();
  /** Epoch seen in the last reply (rsp.epoch: the gateway's current epoch). */
  epoch = 0;

  constructor(opts: SheepClientOptions) {
    this.opts = opts;
    const gateways = typeof opts.gateways === 'string' ? parseGatewayList(opts.gateways) : opts.gateways;
    this.transport = new SheepTransport({ ...opts, gateways });
  }

  /** The time source of this client's timeouts and write fences (`notAfter` is an instant on it). */
  get clock(): Clock {
    return this.transport.clock;
  }

  /** Text of the gateway in use. */
  get gatewayLabel(): string {
    return gatewayText(this.transport.gateway);
  }

  connect(): Promise<void> {
    return this.transport.connect();
  }

  /** Close this client and every per-node client it made. */
  close(): void {
    this.transport.close();
    for (const c of this.nodeClients.values()) c.close();
    this.nodeClients.clear();
  }

  /** A client talking to one node directly (no failover), cached. */
  forNode(nid: NodeId): SheepClient {
    const host = addrText(nid.addr);
    const key = `${host}:${nid.port}`;
    let c = this.nodeClients.get(key);
    if (c === undefined) {
      c = new SheepClient({
        ...this.opts,
        gateways: [{ kind: 'tcp', host: isIPv4(nid.addr) ? host : host, port: nid.port }],
        reconnectTimeoutMs: 0,
      });
      this.nodeClients.set(key, c);
    }
    return c;
  }

  /** Raw request: the reply whatever its result. */
  async raw(req: SdRequest, opts: RequestOptions = {}): Promise<SdReply> {
    const r = await this.transport.request(req, opts);
    if (r.rsp.epoch !== 0) this.epoch = r.rsp.epoch;
    return r;
  }

  /** Request that must succeed (or end with one of `ok`); throws SheepError otherwise. */
  async call(req: SdRequest, opts: RequestOptions & { ok?: number[]; context?: string } = {}): Promise<SdReply> {
    const r = await this.raw(req, opts);
    if (r.rsp.result !== C.SD_RES_SUCCESS && !(opts.ok ?? []).includes(r.rsp.result)) {
      throw new SheepError(req.opcode, r.rsp.result, opts.context);
    }
    return r;
  }

  // ---- object I/O (gateway ops) ----

  /** READ_OBJ: `length` bytes at `offset` of an object. */
  async readObj(oid: bigint, length: number, o: ObjIoOptions = {}): Promise<Buffer> {
    const args = { ...emptyReqArgs('obj'), oid, copies: o.copies ?? 0, offset: o.offset ?? 0 };
    const r = await this.call(makeRequest(C.SD_OP_READ_OBJ, args, { flags: o.flags ?? 0, dataLength: length }), {
      timeoutMs: o.timeoutMs,
    });
    const data = r.data ?? Buffer.alloc(0);
    if (data.length === length) return data;
    const out = Buffer.alloc(length);
    data.copy(out, 0, 0, Math.min(length, data.length));
    return out;
  }

  /**
   * READ_OBJ into the caller's buffer: `target.length` bytes at `offset` of an object, read by the socket
   * straight into `target` (no allocation, no copy); a short reply is zero-filled. `target` is not written after
   * the promise settles.
   */
  async readObjInto(oid: bigint, target: Buffer, o: ObjIoOptions = {}): Promise<void> {
    const args = { ...emptyReqArgs('obj'), oid, copies: o.copies ?? 0, offset: o.offset ?? 0 };
    const r = await this.call(makeRequest(C.SD_OP_READ_OBJ, args, { flags: o.flags ?? 0, dataLength: target.length }), {
      timeoutMs: o.timeoutMs,
      into: target,
    });
    const data = r.data ?? Buffer.alloc(0);
    copyUnlessInPlace(data, target);
    if (data.length < target.length) target.fill(0, data.length);
  }

  /** WRITE_OBJ: overwrite bytes of an existing object (NO_OBJ if absent). */
  async writeObj(oid: bigint, data: Buffer, o: ObjIoOptions = {}): Promise<void> {
    const args = { ...emptyReqArgs('obj'), oid, copies: o.copies ?? 0, offset: o.offset ?? 0 };
    await this.call(makeRequest(C.SD_OP_WRITE_OBJ, args, { flags: C.SD_FLAG_CMD_WRITE | (o.flags ?? 0), dataLength: data.length }), {
      payload: data,
      timeoutMs: o.timeoutMs,
      notAfter: o.notAfter,
      issuedAt: o.issuedAt,
    });
  }

  /** CREATE_AND_WRITE_OBJ: create (or replace) an object, optionally copy-on-write from `cowOid`. */
  async createAndWriteObj(oid: bigint, data: Buffer, o: CreateOptions = {}): Promise<void> {
    const cow = o.cowOid !== undefined && o.cowOid !== 0n;
    const args = { ...emptyReqArgs('obj'), oid, cowOid: cow ? (o.cowOid ?? 0n) : 0n, copies: o.copies ?? 0, offset: o.offset ?? 0 };
    const flags = C.SD_FLAG_CMD_WRITE | (cow ? C.SD_FLAG_CMD_COW : 0) | (o.flags ?? 0);
    await this.call(makeRequest(C.SD_OP_CREATE_AND_WRITE_OBJ, args, { flags, dataLength: data.length }), {
      payload: data.length > 0 ? data : null,
      timeoutMs: o.timeoutMs,
      notAfter: o.notAfter,
      issuedAt: o.issuedAt,
    });
  }

  /**
   * SF_OP_CREATE_EXCL: create the object (as createAndWriteObj) unless it exists, decided by the object's
   * primary replica for the whole cluster. Resolves true when this call created it, false when it existed
   * (nothing written).
   */
  async createObjExcl(oid: bigint, data: Buffer, o: CreateOptions = {}): Promise<boolean> {
    const cow = o.cowOid !== undefined && o.cowOid !== 0n;
    const args = { ...emptyReqArgs('obj'), oid, cowOid: cow ? (o.cowOid ?? 0n) : 0n, copies: o.copies ?? 0, offset: o.offset ?? 0 };
    const flags = C.SD_FLAG_CMD_WRITE | (cow ? C.SD_FLAG_CMD_COW : 0) | (o.flags ?? 0);
    const r = await this.call(makeRequest(C.SF_OP_CREATE_EXCL, args, { flags, dataLength: data.length }), {
      payload: data,
      timeoutMs: o.timeoutMs,
      notAfter: o.notAfter,
      issuedAt: o.issuedAt,
      ok: [C.SD_RES_OID_EXIST],
    });
    return r.rsp.result === C.SD_RES_SUCCESS;
  }

  /**
   * SF_OP_CMP_WRITE: write `data` at `offset` only if the object holds `expected` there, atomically against
   * every other serialized op on the object (decided by its primary replica). Resolves null when written,
   * else the offset (from `offset`) of the first byte that differs.
   */
  async cmpWriteObj(oid: bigint, expected: Buffer, data: Buffer, o: ObjIoOptions = {}): Promise<number | null> {
    if (expected.length !== data.length || data.length === 0) throw new RangeError('compare and write needs two buffers of one non-zero length');
    const args = { ...emptyReqArgs('obj'), oid, copies: o.copies ?? 0, offset: o.offset ?? 0 };
    const payload = Buffer.concat([expected, data]);
    const r = await this.call(makeRequest(C.SF_OP_CMP_WRITE, args, { flags: C.SD_FLAG_CMD_WRITE | C.SD_FLAG_CMD_PIGGYBACK | (o.flags ?? 0), dataLength: payload.length }), {
      payload,
      timeoutMs: o.timeoutMs,
      notAfter: o.notAfter,
      issuedAt: o.issuedAt,
      ok: [C.SF_RES_MISCOMPARE],
    });
    if (r.rsp.result === C.SD_RES_SUCCESS) return null;
    return r.data && r.data.length >= 4 ? r.data.readUInt32LE(0) : 0;
  }

  /** SF_OP_WRITE_SERIAL: WRITE_OBJ ordered at the object's primary against the other serialized ops. */
  async writeObjSerial(oid: bigint, data: Buffer, o: ObjIoOptions = {}): Promise<void> {
    const args = { ...emptyReqArgs('obj'), oid, copies: o.copies ?? 0, offset: o.offset ?? 0 };
    await this.call(makeRequest(C.SF_OP_WRITE_SERIAL, args, { flags: C.SD_FLAG_CMD_WRITE | (o.flags ?? 0), dataLength: data.length }), {
      payload: data,
      timeoutMs: o.timeoutMs,
      notAfter: o.notAfter,
      issuedAt: o.issuedAt,
    });
  }

  /** REMOVE_OBJ; `missingOk` turns NO_OBJ into success (e.g. after a re-send). */
  async removeObj(oid: bigint, o: { copies?: number; missingOk?: boolean } = {}): Promise<void> {
    const args = { ...emptyReqArgs('obj'), oid, copies: o.copies ?? 0 };
    await this.call(makeRequest(C.SD_OP_REMOVE_OBJ, args), { ok: o.missingOk === true ? [C.SD_RES_NO_OBJ] : [] });
  }

  /** DISCARD_OBJ: zero the VDI's index entry for this data oid and remove the object (local op on the gateway). */
  async discardObj(oid: bigint): Promise<void> {
    await this.call(makeRequest(C.SD_OP_DISCARD_OBJ, { ...emptyReqArgs('obj'), oid }));
  }

  /** FLUSH_VDI: SUCCESS and INVALID_PARMS both mean every acknowledged write is durable. */
  async flushVdi(vid: number): Promise<void> {
    await this.call(makeRequest(C.SD_OP_FLUSH_VDI, { ...emptyReqArgs('obj'), oid: vidToVdiOid(vid) }), {
      ok: [C.SD_RES_INVALID_PARMS],
    });
  }

  /** Read an inode: the full object, tgt's 4 198 968-byte refresh view, or the 4664-byte header. */
  async readInode(vid: number, length: number = C.SD_INODE_SIZE, o: ObjIoOptions = {}): Promise<Inode> {
    return decodeInode(await this.readObj(vidToVdiOid(vid), length, o));
  }

  async readInodeHeader(vid: number, o: ObjIoOptions = {}): Promise<InodeHeader> {
    return decodeInodeHeader(await this.readObj(vidToVdiOid(vid), C.SD_INODE_HEADER_SIZE, o));
  }

  // ---- VDI ops (cluster ops) ----

  private static nameTag(name: string, tag = ''): Buffer {
    return Buffer.concat([fixedString(name, C.SD_MAX_VDI_LEN), fixedString(tag, C.SD_MAX_VDI_TAG_LEN)]);
  }

  private static vdiInfo(rsp: SdResponse): VdiInfo {
    const a = rsp.args;
    return a.kind === 'vdi' ? { vid: a.vdiId, copies: a.copies, blockSizeShift: a.blockSizeShift } : { vid: 0, copies: 0, blockSizeShift: 0 };
  }

  /** NEW_VDI: create a VDI, a clone (baseVid = snapshot) or a snapshot (snapshot: true, baseVid = current). */
  async newVdi(o: NewVdiOptions): Promise<VdiInfo> {
    const args = {
      ...emptyReqArgs('vdi'),
      vdiSize: o.size,
      baseVdiId: o.baseVid ?? 0,
      copies: o.copies ?? 0,
      copyPolicy: o.copyPolicy ?? 0,
      storePolicy: o.storePolicy ?? 0,
      blockSizeShift: o.blockSizeShift ?? 0,
      snapid: o.snapshot === true ? 1 : 0,
    };
    const r = await this.call(makeRequest(C.SD_OP_NEW_VDI, args, { flags: C.SD_FLAG_CMD_WRITE, dataLength: C.SD_MAX_VDI_LEN }), {
      payload: fixedString(o.name, C.SD_MAX_VDI_LEN),
      context: `Failed to create VDI ${o.name}`,
    });
    return SheepClient.vdiInfo(r.rsp);
  }

  /** GET_VDI_INFO: resolve a name (working VDI, or a snapshot by tag/snapid) to its vid. */
  async getVdiInfo(name: string, sel: VdiSelector = {}): Promise<VdiInfo> {
    const args = { ...emptyReqArgs('vdi'), snapid: sel.snapid ?? 0 };
    const r = await this.call(makeRequest(C.SD_OP_GET_VDI_INFO, args, { flags: C.SD_FLAG_CMD_WRITE, dataLength: 512 }), {
      payload: SheepClient.nameTag(name, sel.tag),
      context: describeVdi(name, sel),
    });
    return SheepClient.vdiInfo(r.rsp);
  }

  /**
   * LOCK_VDI (type NORMAL by default). LOCK is not idempotent: if its reply is lost it is never re-sent; the
   * lock state is re-checked through GET_VDI_COPIES and a SheepNetError EUNCERTAIN says what was found.
   */
  async lockVdi(name: string, o: VdiSelector & { type?: number } = {}): Promise<VdiInfo> {
    const type = o.type ?? C.LOCK_TYPE_NORMAL;
    const args = { ...emptyReqArgs('vdi'), snapid: o.snapid ?? 0, type };
    try {
      const r = await this.call(makeRequest(C.SD_OP_LOCK_VDI, args, { flags: C.SD_FLAG_CMD_WRITE, dataLength: 512 }), {
        payload: SheepClient.nameTag(name, o.tag),
        context: `cannot lock VDI ${describeVdi(name, o)}`,
      });
      return SheepClient.vdiInfo(r.rsp);
    } catch (err) {
      if (!(err instanceof SheepNetError) || err.code !== 'EUNCERTAIN') throw err;
      let state = 'unknown';
      try {
        const info = await this.getVdiInfo(name, o);
        const s = (await this.getVdiCopies()).find((v) => v.vid === info.vid);
        state = s === undefined ? 'unknown' : lockStateText(s.lockState);
      } catch {
        // the re-check itself failed: state stays unknown
      }
      throw new SheepNetError(
        'EUNCERTAIN',
        err.gateway,
        `LOCK_VDI ${name}: the reply was lost and the request was not re-sent; the VDI is now ${state}` +
          ` (if this client holds it, run 'dog vdi lock unlock ${name}' before retrying)`,
        { cause: err },
      );
    }
  }

  /** RELEASE_VDI: vid at base_vdi_id, with the lock type that was taken. Always SUCCESS on sheep 1.0. */
  async releaseVdi(vid: number, type: number = C.LOCK_TYPE_NORMAL): Promise<void> {
    await this.call(makeRequest(C.SD_OP_RELEASE_VDI, { ...emptyReqArgs('vdi'), baseVdiId: vid, type }), {
      ok: [C.SD_RES_VDI_NOT_LOCKED],
    });
  }

  /** DEL_VDI of the working VDI or of a snapshot. */
  async delVdi(name: string, sel: VdiSelector = {}): Promise<number> {
    const args = { ...emptyReqArgs('vdi'), snapid: sel.snapid ?? 0 };
    const r = await this.call(makeRequest(C.SD_OP_DEL_VDI, args, { flags: C.SD_FLAG_CMD_WRITE, dataLength: 512 }), {
      payload: SheepClient.nameTag(name, sel.tag),
      context: `Failed to delete ${describeVdi(name, sel)}`,
    });
    return SheepClient.vdiInfo(r.rsp).vid;
  }

  /** READ_VDIS: the in-use VDI bitmap. */
  async readVdis(): Promise<VdiBitmap> {
    const r = await this.call(makeRequest(C.SD_OP_READ_VDIS, emptyReqArgs('obj'), { dataLength: C.SD_VDI_BITMAP_SIZE }));
    return bitmapOf(r.data);
  }

  /** READ_DEL_VDIS: the deleted-VDI bitmap. */
  async readDelVdis(): Promise<VdiBitmap> {
    const r = await this.call(makeRequest(C.SD_OP_READ_DEL_VDIS, emptyReqArgs('obj'), { dataLength: C.SD_VDI_BITMAP_SIZE }));
    return bitmapOf(r.data);
  }

  /** GET_VDI_COPIES: every VDI's state (copies, snapshot/deleted, lock state), sorted by vid. */
  async getVdiCopies(): Promise<VdiState[]> {
    for (let n = 512; ; n *= 2) {
      const r = await this.call(makeRequest(C.SD_OP_GET_VDI_COPIES, emptyReqArgs('obj'), { dataLength: n * C.SD_VDI_STATE_SIZE }), {
        ok: [C.SD_RES_BUFFER_SMALL],
      });
      if (r.rsp.result === C.SD_RES_BUFFER_SMALL) continue;
      return decodeVdiStates(r.data ?? Buffer.alloc(0)).sort((a, b) => a.vid - b.vid);
    }
  }

  /** GET_CLUSTER_DEFAULT: the cluster's default copies, policy and block_size_shift. */
  async getClusterDefault(): Promise<{ copies: number; copyPolicy: number; blockSizeShift: number }> {
    const r = await this.call(makeRequest(C.SD_OP_GET_CLUSTER_DEFAULT, emptyReqArgs('obj')));
    const a = r.rsp.args;
    return a.kind === 'clusterDefault' ? { copies: a.nrCopies, copyPolicy: a.copyPolicy, blockSizeShift: a.blockSizeShift } : { copies: 0, copyPolicy: 0, blockSizeShift: 0 };
  }

  // ---- cluster / node admin (internal ops, proto 0x0a) ----

  /** GET_NODE_LIST: the members (sorted by address), and the gateway's epoch. */
  async getNodeList(): Promise<{ nodes: SdNode[]; epoch: number }> {
    for (let n = 64; ; n *= 4) {
      const r = await this.call(makeRequest(C.SD_OP_GET_NODE_LIST, emptyReqArgs('obj'), { dataLength: n * C.SD_NODE_SIZE }), {
        ok: [C.SD_RES_BUFFER_SMALL],
      });
      if (r.rsp.result === C.SD_RES_BUFFER_SMALL && n < C.SD_MAX_NODES) continue;
      const a = r.rsp.args;
      const count = a.kind === 'node' ? a.nrNodes : undefined;
      return { nodes: decodeNodes(r.data ?? Buffer.alloc(0), count), epoch: r.rsp.epoch };
    }
  }

  /** STAT_CLUSTER: status and epoch history (newest first). */
  async statCluster(nodesHint = 1, epochHint = 1): Promise<ClusterStat> {
    let nodesNr = Math.max(1, nodesHint);
    const epochs = Math.max(1, epochHint);
    for (;;) {
      const args = { ...emptyReqArgs('cluster'), nodesNr };
      const r = await this.raw(makeRequest(C.SD_OP_STAT_CLUSTER, args, { dataLength: Math.min(epochs * epochLogStride(nodesNr), 64 << 20) }));
      if (r.rsp.result === C.SD_RES_BUFFER_SMALL && nodesNr < C.SD_MAX_NODES) {
        nodesNr *= 2;
        continue;
      }
      const logs = r.data ? decodeEpochLogs(r.data, nodesNr) : [];
      return { status: r.rsp.result, epoch: r.rsp.epoch, logs };
    }
  }

  /** CLUSTER_INFO: the node's cluster_info (ctime, flags, copies, status, nodes). */
  async clusterInfo(): Promise<ClusterInfo> {
    const r = await this.call(makeRequest(C.SD_OP_CLUSTER_INFO, emptyReqArgs('obj'), { dataLength: C.SD_CLUSTER_INFO_SIZE }));
    const data = r.data ?? Buffer.alloc(0);
    const full = data.length >= C.SD_CLUSTER_INFO_HEADER_SIZE ? data : Buffer.concat([data, Buffer.alloc(C.SD_CLUSTER_INFO_HEADER_SIZE - data.length)]);
    return decodeClusterInfo(full);
  }

  /** MAKE_FS: format the cluster. */
  async makeFs(o: MakeFsOptions = {}): Promise<void> {
    const store = o.store ?? 'plain';
    const args = {
      ...emptyReqArgs('cluster'),
      copies: o.copies ?? 0,
      copyPolicy: o.copyPolicy ?? 0,
      flags: o.flags ?? C.SD_CLUSTER_FLAG_AUTO_VNODES,
      blockSizeShift: o.blockSizeShift ?? 0,
      ctime: o.ctime ?? nowTimestamp(),
    };
    const payload = Buffer.concat([Buffer.from(store, 'utf8'), Buffer.alloc(1)]);
    await this.call(makeRequest(C.SD_OP_MAKE_FS, args, { flags: C.SD_FLAG_CMD_WRITE, dataLength: payload.length }), {
      payload,
      context: 'Format failed',
    });
  }

  /** SHUTDOWN: stop the whole cluster. */
  async shutdown(): Promise<void> {
    await this.call(makeRequest(C.SD_OP_SHUTDOWN, emptyReqArgs('obj')));
  }

  /** STAT_SHEEP: this node's store size and free bytes. */
  async statSheep(): Promise<{ storeSize: bigint; storeFree: bigint }> {
    const r = await this.call(makeRequest(C.SD_OP_STAT_SHEEP, emptyReqArgs('obj')));
    const a = r.rsp.args;
    return a.kind === 'node' ? { storeSize: a.storeSize, storeFree: a.storeFree } : { storeSize: 0n, storeFree: 0n };
  }

  /** GET_HASH: SHA-1 of this node's whole copy of the object (live or stale, at `tgtEpoch`). */
  async getHash(oid: bigint, tgtEpoch = this.epoch): Promise<Buffer> {
    const r = await this.call(makeRequest(C.SD_OP_GET_HASH, { ...emptyReqArgs('obj'), oid, tgtEpoch }));
    const a = r.rsp.args;
    return a.kind === 'hash' ? a.digest : Buffer.alloc(20);
  }

  /** EXIST: does this node hold the object? */
  async exist(oid: bigint): Promise<boolean> {
    const r = await this.call(makeRequest(C.SD_OP_EXIST, { ...emptyReqArgs('obj'), oid }), { ok: [C.SD_RES_NO_OBJ] });
    return r.rsp.result === C.SD_RES_SUCCESS;
  }

  /** OIDS_EXIST: which of these oids this node lacks. */
  async oidsExist(oids: readonly bigint[]): Promise<bigint[]> {
    const payload = Buffer.alloc(8 * oids.length);
    oids.forEach((o, i) => payload.writeBigUInt64LE(o, 8 * i));
    const r = await this.call(
      makeRequest(C.SD_OP_OIDS_EXIST, emptyReqArgs('obj'), { flags: C.SD_FLAG_CMD_WRITE | C.SD_FLAG_CMD_PIGGYBACK, dataLength: payload.length }),
      { payload, ok: [C.SD_RES_NO_OBJ] },
    );
    if (r.rsp.result === C.SD_RES_SUCCESS || r.data === null) return [];
    const missing: bigint[] = [];
    for (let off = 0; off + 8 <= r.data.length; off += 8) missing.push(r.data.readBigUInt64LE(off));
    return missing;
  }

  /** REPAIR_REPLICA: ask this node to pull `oid` from the node `from` and store it locally. */
  async repairReplica(oid: bigint, from: NodeId): Promise<void> {
    const args = { ...emptyReqArgs('forw'), oid, addr: Buffer.from(from.addr), port: from.port };
    await this.call(makeRequest(C.SD_OP_REPAIR_REPLICA, args));
  }
}

/** `name`, `name (tag=T)` or `name (snapid=N)` for messages, as dog's describe_vdi. */
export function describeVdi(name: string, sel: VdiSelector = {}): string {
  if (sel.snapid !== undefined && sel.snapid > 0) return `${name} (snapid=${sel.snapid})`;
  if (sel.tag !== undefined && sel.tag !== '') return `${name} (tag=${sel.tag})`;
  return name;
}

export function lockStateText(state: number): string {
  switch (state) {
    case C.LOCK_STATE_UNLOCKED:
      return 'unlocked';
    case C.LOCK_STATE_LOCKED:
      return 'locked';
    case C.LOCK_STATE_SHARED:
      return 'shared-locked';
    default:
      return `in lock state ${state}`;
  }
}

function bitmapOf(data: Buffer | null): VdiBitmap {
  const b = Buffer.alloc(C.SD_VDI_BITMAP_SIZE);
  data?.copy(b, 0, 0, Math.min(b.length, data.length));
  return new VdiBitmap(b);
}

/** Now as a wire timestamp: seconds << 32 | nanoseconds. */
export function nowTimestamp(): bigint {
  return sdTimestamp(Date.now());
}
