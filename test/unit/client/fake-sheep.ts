// A fake in-memory sheep for unit tests of the client, dog and VdiDevice: speaks the real wire protocol
// (request decoder + response encoder from src/proto/sheepdog) and implements the ops those clients use,
// with the sheep semantics the fact sheet describes (NEW_VDI snapshot/clone, COW creates, READONLY on
// snapshot objects, index-area writes, locks). Fault hooks: `hook` can answer, delay or drop any request.
import { firstDifference } from '../../../src/util/bytes.js';
import net from 'node:net';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as C from '../../../src/proto/sheepdog/constants.js';
import {
  SdRequestDecoder,
  VdiBitmap,
  decodeInodeHeader,
  emptyInode,
  encodeInode,
  encodeNodes,
  encodeEpochLogs,
  encodeClusterInfo,
  encodeVdiStates,
  encodeResponseHeader,
  makeNodeId,
  makeResponse,
  oidToVid,
  oidToIndex,
  isDataOid,
  isVdiOid,
  readCString,
  sdHashVdi,
  vidToVdiOid,
  dataVidOffset,
  type SdRequest,
  type SdResponse,
  type SdNode,
  type VdiState,
} from '../../../src/proto/sheepdog/index.js';

export type HookResult =
  | { action: 'reply'; result: number; data?: Buffer; rsp?: Partial<SdResponse> }
  | { action: 'drop' } // close the connection without answering
  | { action: 'hang' } // never answer
  | undefined; // normal processing

export interface FakeSheepOptions {
  formatted?: boolean;
  useLock?: boolean;
  blockSizeShift?: number;
  copies?: number;
}

interface LockInfo {
  state: number;
  participants: number;
}

export class FakeSheep {
  readonly objects = new Map<bigint, Buffer>();
  readonly inuse = new VdiBitmap();
  readonly deleted = new VdiBitmap();
  readonly locks = new Map<number, LockInfo>();
  readonly log: SdRequest[] = [];
  formatted: boolean;
  flags: number;
  copies: number;
  blockSizeShift: number;
  epoch = 1;
  ctime = (1_700_000_000n << 32n) | 5n;
  hook: ((req: SdRequest, payload: Buffer | null) => HookResult | Promise<HookResult>) | null = null;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  sockPath = '';
  /** Zone advertised in the node list. */
  zone = 0;
  /** Members reported by GET_NODE_LIST (default: this node only). */
  cluster: FakeSheep[] | null = null;
  /** Every started fake by port, so REPAIR_REPLICA can pull from a peer. */
  static readonly byPort = new Map<number, FakeSheep>();

  constructor(opts: FakeSheepOptions = {}) {
    this.formatted = opts.formatted ?? true;
    this.flags = C.SD_CLUSTER_FLAG_AUTO_VNODES | (opts.useLock === false ? 0 : C.SD_CLUSTER_FLAG_USE_LOCK);
    this.copies = opts.copies ?? 1;
    this.blockSizeShift = opts.blockSizeShift ?? 22;
  }

  /** Listen on 127.0.0.1 (ephemeral port) or on a unix socket when `unix` is set. */
  async start(unix = false): Promise<void> {
    const srv = net.createServer((s) => this.serve(s));
    this.server = srv;
    if (unix) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fake-sheep-'));
      this.sockPath = path.join(dir, 'sock');
      await new Promise<void>((r) => srv.listen(this.sockPath, r));
    } else {
      await new Promise<void>((r) => srv.listen({ host: '127.0.0.1', port: this.port }, r));
      const a = srv.address();
      this.port = typeof a === 'object' && a !== null ? a.port : 0;
      FakeSheep.byPort.set(this.port, this);
    }
  }

  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Close the listener and every connection (simulates a dead sheep). */
  async stop(): Promise<void> {
    if (FakeSheep.byPort.get(this.port) === this) FakeSheep.byPort.delete(this.port);
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const srv = this.server;
    this.server = null;
    if (srv) await new Promise<void>((r) => srv.close(() => r()));
  }

  /** Drop every client connection but keep listening. */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  get node(): SdNode {
    return { nid: makeNodeId('127.0.0.1', this.port), nrVnodes: 128, zone: this.zone, space: 1n << 40n };
  }

  private get members(): SdNode[] {
    return (this.cluster ?? [this]).map((f) => f.node);
  }

  private serve(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
    const dec = new SdRequestDecoder({ maxPayload: 1 << 30 });
    s.on('data', (chunk: Buffer) => {
      dec.push(chunk);
      for (;;) {
        const m = dec.next();
        if (m === null) break;
        const payload = m.payload ? Buffer.from(m.payload) : null;
        void this.handle(s, m.header, payload);
      }
    });
  }

  private async handle(s: net.Socket, req: SdRequest, payload: Buffer | null): Promise<void> {
    this.log.push(req);
    let out: { result: number; data?: Buffer; rsp?: Partial<SdResponse> };
    const h = this.hook ? await this.hook(req, payload) : undefined;
    if (h?.action === 'drop') {
      s.destroy();
      return;
    }
    if (h?.action === 'hang') return;
    if (h?.action === 'reply') out = h;
    else out = this.process(req, payload);
    const data = out.data ?? null;
    const rsp = makeResponse(req, out.result, { epoch: this.epoch, dataLength: data ? data.length : 0, ...(out.rsp ?? {}) });
    if (!s.destroyed) {
      s.write(encodeResponseHeader(rsp));
      if (data && data.length > 0) s.write(data);
    }
  }

  // ---- object store helpers ----

  objSize(oid: bigint): number {
    if (isVdiOid(oid)) return C.SD_INODE_SIZE;
    const vid = oidToVid(oid);
    const ino = this.objects.get(vidToVdiOid(vid));
    const shift = ino ? ino.readUInt8(555) : this.blockSizeShift;
    return 2 ** shift;
  }

  inode(vid: number): Buffer | undefined {
    return this.objects.get(vidToVdiOid(vid));
  }

  private isSnapshotVid(vid: number): boolean {
    const ino = this.inode(vid);
    return ino !== undefined && ino.readBigUInt64LE(520) !== 0n;
  }

  /** Lookup like sheep's GET_VDI_INFO (§4.2): highest vid with the name; tag/snapid select snapshots. */
  lookup(name: string, tag: string, snapid: number): { result: number; vid: number } {
    let sawName = false;
    const cands: number[] = [];
    for (const v of this.inuse.setBits()) {
      const ino = this.inode(v);
      if (!ino) continue;
      if (readCString(ino, 0, 256) !== name) continue;
      cands.push(v);
    }
    cands.sort((a, b) => b - a);
    for (const v of cands) {
      sawName = true;
      const ino = this.inode(v)!;
      const isSnap = ino.readBigUInt64LE(520) !== 0n;
      if (tag === '' && snapid === 0) {
        if (isSnap || this.deleted.test(v)) return { result: C.SD_RES_NO_VDI, vid: 0 };
        return { result: C.SD_RES_SUCCESS, vid: v };
      }
      if (!isSnap) continue;
      const t = readCString(ino, 256, 256);
      if ((tag !== '' && t === tag) || (snapid !== 0 && ino.readUInt32LE(556) === snapid)) return { result: C.SD_RES_SUCCESS, vid: v };
    }
    return { result: sawName ? C.SD_RES_NO_TAG : C.SD_RES_NO_VDI, vid: 0 };
  }

  private allocVid(name: string): number {
    let v = sdHashVdi(name);
    while (this.inuse.test(v)) v++;
    return v;
  }

  private vdiRsp(vid: number): Partial<SdResponse> {
    const ino = this.inode(vid);
    return {
      args: { kind: 'vdi', rsvd: 0, vdiId: vid, attrId: 0, copies: ino ? ino.readUInt8(554) : 0, blockSizeShift: ino ? ino.readUInt8(555) : 0 },
    };
  }

  /** Normal processing of one request. */
  process(req: SdRequest, payload: Buffer | null): { result: number; data?: Buffer; rsp?: Partial<SdResponse> } {
    const ok = C.SD_RES_SUCCESS;
    const needFormat = ![C.SD_OP_MAKE_FS, C.SD_OP_GET_NODE_LIST, C.SD_OP_STAT_CLUSTER, C.SD_OP_CLUSTER_INFO, C.SD_OP_READ_VDIS, C.SD_OP_READ_DEL_VDIS].includes(req.opcode);
    if (!this.formatted && needFormat) return { result: C.SD_RES_WAIT_FOR_FORMAT };
    const a = req.args;
    switch (req.opcode) {
      case C.SD_OP_READ_OBJ: {
        if (a.kind !== 'obj') break;
        const obj = this.objects.get(a.oid);
        if (!obj) return { result: C.SD_RES_NO_OBJ };
        const out = Buffer.alloc(req.dataLength);
        obj.copy(out, 0, a.offset, Math.min(obj.length, a.offset + req.dataLength));
        return { result: ok, data: out };
      }
      case C.SF_OP_CMP_WRITE: {
        if (a.kind !== 'obj' || !payload || payload.length % 2 !== 0) return { result: C.SD_RES_INVALID_PARMS };
        const obj = this.objects.get(a.oid);
        if (!obj) return { result: C.SD_RES_NO_OBJ };
        const len = payload.length / 2;
        const at = firstDifference(obj.subarray(a.offset, a.offset + len), payload.subarray(0, len));
        if (at >= 0) {
          const info = Buffer.alloc(4);
          info.writeUInt32LE(at, 0);
          return { result: C.SF_RES_MISCOMPARE, data: info };
        }
        payload.copy(obj, a.offset, len);
        return { result: ok };
      }
      case C.SF_OP_WRITE_SERIAL:
      case C.SD_OP_WRITE_OBJ: {
        if (a.kind !== 'obj' || !payload) return { result: C.SD_RES_INVALID_PARMS };
        const obj = this.objects.get(a.oid);
        if (!obj) return { result: C.SD_RES_NO_OBJ };
        if (isDataOid(a.oid) && this.isSnapshotVid(oidToVid(a.oid))) return { result: C.SD_RES_READONLY };
        payload.copy(obj, a.offset);
        return { result: ok };
      }
      case C.SF_OP_CREATE_EXCL:
      case C.SD_OP_CREATE_AND_WRITE_OBJ: {
        if (a.kind !== 'obj') break;
        if (req.opcode === C.SF_OP_CREATE_EXCL && this.objects.has(a.oid)) return { result: C.SD_RES_OID_EXIST };
        if (isDataOid(a.oid) && this.isSnapshotVid(oidToVid(a.oid))) return { result: C.SD_RES_READONLY };
        const obj = Buffer.alloc(this.objSize(a.oid));
        if ((req.flags & C.SD_FLAG_CMD_COW) !== 0) {
          const src = this.objects.get(a.cowOid);
          if (!src) return { result: C.SD_RES_NO_OBJ };
          src.copy(obj);
        }
        payload?.copy(obj, a.offset);
        this.objects.set(a.oid, obj);
        return { result: ok };
      }
      case C.SD_OP_REMOVE_OBJ:
        if (a.kind !== 'obj') break;
        return { result: this.objects.delete(a.oid) ? ok : C.SD_RES_NO_OBJ };
      case C.SD_OP_DISCARD_OBJ: {
        if (a.kind !== 'obj') break;
        const ino = this.inode(oidToVid(a.oid));
        if (!ino) return { result: C.SD_RES_NO_VDI };
        const off = dataVidOffset(oidToIndex(a.oid));
        if (ino.readUInt32LE(off) === 0) return { result: ok };
        ino.writeUInt32LE(0, off);
        this.objects.delete(a.oid);
        return { result: ok };
      }
      case C.SD_OP_FLUSH_VDI:
        return { result: C.SD_RES_INVALID_PARMS };
      case C.SD_OP_NEW_VDI:
        return this.newVdi(req, payload);
      case C.SD_OP_GET_VDI_INFO:
      case C.SD_OP_LOCK_VDI: {
        if (a.kind !== 'vdi' || !payload) return { result: C.SD_RES_INVALID_PARMS };
        const name = readCString(payload, 0, 256);
        const tag = payload.length >= 512 ? readCString(payload, 256, 256) : '';
        const r = this.lookup(name, tag, a.snapid);
        if (r.result !== ok) return { result: r.result };
        if (req.opcode === C.SD_OP_LOCK_VDI && (this.flags & C.SD_CLUSTER_FLAG_USE_LOCK) !== 0) {
          const l = this.locks.get(r.vid);
          if (a.type === C.LOCK_TYPE_NORMAL) {
            if (l && l.state !== C.LOCK_STATE_UNLOCKED) return { result: C.SD_RES_VDI_LOCKED };
            this.locks.set(r.vid, { state: C.LOCK_STATE_LOCKED, participants: 0 });
          } else {
            if (l && l.state !== C.LOCK_STATE_UNLOCKED) return { result: C.SD_RES_VDI_LOCKED };
            this.locks.set(r.vid, { state: C.LOCK_STATE_SHARED, participants: 1 });
          }
        }
        return { result: ok, rsp: this.vdiRsp(r.vid) };
      }
      case C.SD_OP_RELEASE_VDI:
        if (a.kind !== 'vdi') break;
        this.locks.delete(a.baseVdiId);
        return { result: ok };
      case C.SD_OP_DEL_VDI: {
        if (a.kind !== 'vdi' || !payload) return { result: C.SD_RES_INVALID_PARMS };
        const r = this.lookup(readCString(payload, 0, 256), payload.length >= 512 ? readCString(payload, 256, 256) : '', a.snapid);
        if (r.result !== ok) return { result: r.result };
        const ino = this.inode(r.vid)!;
        ino.fill(0, 0, 256);
        ino.fill(0, 536, 544);
        this.deleted.set(r.vid);
        return { result: ok, rsp: this.vdiRsp(r.vid) };
      }
      case C.SD_OP_READ_VDIS:
        return { result: ok, data: Buffer.from(this.inuse.toBuffer()) };
      case C.SD_OP_READ_DEL_VDIS:
        return { result: ok, data: Buffer.from(this.deleted.toBuffer()) };
      case C.SD_OP_GET_VDI_COPIES: {
        const states: VdiState[] = [...this.inuse.setBits()].map((vid) => {
          const ino = this.inode(vid);
          const l = this.locks.get(vid);
          return {
            vid,
            nrCopies: ino ? ino.readUInt8(554) : 0,
            snapshot: this.isSnapshotVid(vid),
            deleted: this.deleted.test(vid),
            copyPolicy: 0,
            blockSizeShift: ino ? ino.readUInt8(555) : 22,
            parentVid: ino ? ino.readUInt32LE(564) : 0,
            lockState: l?.state ?? C.LOCK_STATE_UNLOCKED,
            lockOwner: l?.state === C.LOCK_STATE_LOCKED ? this.node.nid : makeNodeId('0.0.0.0', 0),
            participants: l?.state === C.LOCK_STATE_SHARED ? [{ nid: this.node.nid, state: C.SHARED_LOCK_STATE_MODIFIED }] : [],
          };
        });
        const data = encodeVdiStates(states);
        if (data.length > req.dataLength) return { result: C.SD_RES_BUFFER_SMALL };
        return { result: ok, data };
      }
      case C.SD_OP_GET_NODE_LIST:
        return { result: ok, data: encodeNodes(this.members), rsp: { args: { kind: 'node', nrNodes: this.members.length, storeSize: 0n, storeFree: 0n } } };
      case C.SD_OP_STAT_CLUSTER: {
        if (a.kind !== 'cluster') break;
        if (!this.formatted) return { result: C.SD_RES_WAIT_FOR_FORMAT };
        const log = { ctime: this.ctime, time: 1_700_000_000n, epoch: 1, disableRecovery: 0, nrCopies: this.copies, copyPolicy: 0, flags: this.flags, drvName: 'plain', nodes: [this.node] };
        return { result: ok, data: encodeEpochLogs([log], a.nodesNr).subarray(0, req.dataLength) };
      }
      case C.SD_OP_CLUSTER_INFO: {
        const ci = encodeClusterInfo({
          protoVer: C.SD_SHEEP_PROTO_VER,
          disableRecovery: 0,
          epoch: this.formatted ? 1 : 0,
          ctime: this.formatted ? this.ctime : 0n,
          flags: this.flags,
          nrCopies: this.copies,
          copyPolicy: 0,
          status: this.formatted ? C.SD_STATUS_OK : C.SD_STATUS_WAIT,
          blockSizeShift: this.blockSizeShift,
          defaultStore: 'plain',
          nodes: [this.node],
        });
        return { result: ok, data: ci.subarray(0, req.dataLength) };
      }
      case C.SD_OP_MAKE_FS:
        if (a.kind !== 'cluster') break;
        this.formatted = true;
        this.flags = a.flags;
        this.copies = a.copies || 3;
        this.blockSizeShift = a.blockSizeShift || 22;
        this.ctime = a.ctime;
        this.objects.clear();
        this.inuse.bytes.fill(0);
        this.deleted.bytes.fill(0);
        this.locks.clear();
        return { result: ok };
      case C.SD_OP_SHUTDOWN:
        return { result: ok };
      case C.SD_OP_STAT_SHEEP:
        return { result: ok, rsp: { args: { kind: 'node', nrNodes: 1, storeSize: 1n << 40n, storeFree: 1n << 39n } } };
      case C.SD_OP_GET_CLUSTER_DEFAULT:
        return { result: ok, rsp: { args: { kind: 'clusterDefault', nrCopies: this.copies, copyPolicy: 0, blockSizeShift: this.blockSizeShift } } };
      case C.SD_OP_GET_HASH: {
        if (a.kind !== 'obj') break;
        const obj = this.objects.get(a.oid);
        if (!obj) return { result: C.SD_RES_NO_OBJ };
        const digest = crypto.createHash('sha1').update(obj).digest();
        return { result: ok, rsp: { args: { kind: 'hash', digest } } };
      }
      case C.SD_OP_EXIST:
        if (a.kind !== 'obj') break;
        return { result: this.objects.has(a.oid) ? ok : C.SD_RES_NO_OBJ };
      case C.SD_OP_OIDS_EXIST: {
        if (!payload) return { result: C.SD_RES_INVALID_PARMS };
        const missing: Buffer[] = [];
        for (let o = 0; o + 8 <= payload.length; o += 8) {
          if (!this.objects.has(payload.readBigUInt64LE(o))) missing.push(payload.subarray(o, o + 8));
        }
        return missing.length === 0 ? { result: ok } : { result: C.SD_RES_NO_OBJ, data: Buffer.concat(missing) };
      }
      case C.SD_OP_REPAIR_REPLICA: {
        if (a.kind !== 'forw') break;
        const src = FakeSheep.byPort.get(a.port)?.objects.get(a.oid);
        if (!src) return { result: C.SD_RES_NO_OBJ };
        this.objects.set(a.oid, Buffer.from(src));
        return { result: ok };
      }
      default:
        return { result: C.SD_RES_INVALID_PARMS };
    }
    return { result: C.SD_RES_INVALID_PARMS };
  }

  private newVdi(req: SdRequest, payload: Buffer | null): { result: number; rsp?: Partial<SdResponse> } {
    const a = req.args;
    if (a.kind !== 'vdi' || !payload || req.dataLength !== 256) return { result: C.SD_RES_INVALID_PARMS };
    const name = readCString(payload, 0, 256);
    const base = a.baseVdiId;
    const existing = this.lookup(name, '', 0);
    if (a.snapid === 0 && existing.result === C.SD_RES_SUCCESS) return { result: C.SD_RES_VDI_EXIST };
    const vid = this.allocVid(name);
    const ino = emptyInode();
    ino.name = name;
    ino.createTime = (1_700_000_100n << 32n) | BigInt(vid);
    ino.vdiSize = a.vdiSize;
    ino.nrCopies = a.copies || this.copies;
    ino.blockSizeShift = a.blockSizeShift || this.blockSizeShift;
    ino.vdiId = vid;
    ino.snapId = 1;
    if (base !== 0) {
      const b = this.inode(base);
      if (!b) return { result: C.SD_RES_NO_BASE_VDI };
      const bh = decodeInodeHeader(b);
      const bidx = b.subarray(C.SD_INODE_HEADER_SIZE, C.SD_INODE_GREF_OFFSET);
      Buffer.from(ino.dataVdiId.buffer).set(bidx);
      ino.parentVdiId = base;
      ino.blockSizeShift = bh.blockSizeShift;
      ino.nrCopies = bh.nrCopies;
      if (a.snapid !== 0) {
        ino.snapId = bh.snapId + 1;
        ino.vdiSize = a.vdiSize || bh.vdiSize;
        b.writeBigUInt64LE(1n << 32n, 520); // mark the old one a snapshot
      }
    }
    this.objects.set(vidToVdiOid(vid), encodeInode(ino));
    this.inuse.set(vid);
    return { result: C.SD_RES_SUCCESS, rsp: this.vdiRsp(vid) };
  }
}
