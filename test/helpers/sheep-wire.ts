// A tiny test-only Sheepdog wire client: one socket, pipelined requests matched by id, raw access to every
// header field (so tests can send exactly what tgt or dog sends, or garbage). Built on the pure codecs.
import net from 'node:net';
import * as C from '../../src/proto/sheepdog/constants.js';
import { SdResponseDecoder } from '../../src/proto/sheepdog/frame.js';
import {
  emptyReqArgs,
  encodeRequestHeader,
  requestVariant,
  type ReqArgs,
  type SdRequest,
  type SdResponse,
} from '../../src/proto/sheepdog/header.js';
import { fixedString } from '../../src/proto/sheepdog/hash.js';
import { vidToVdiOid } from '../../src/proto/sheepdog/oid.js';

export interface WireReply {
  rsp: SdResponse;
  data: Buffer;
}

export type WireTarget = { port: number; host?: string } | { path: string };

export class SheepWire {
  private readonly dec = new SdResponseDecoder({ maxPayload: 64 * 1024 * 1024 });
  private readonly waiting = new Map<number, { resolve: (r: WireReply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  closed = false;
  private closeWaiters: (() => void)[] = [];

  private constructor(readonly sock: net.Socket) {
    sock.on('data', (chunk: Buffer) => {
      this.dec.push(chunk);
      for (let m = this.dec.next(); m; m = this.dec.next()) {
        const w = this.waiting.get(m.header.id);
        this.waiting.delete(m.header.id);
        w?.resolve({ rsp: m.header, data: Buffer.from(m.payload ?? Buffer.alloc(0)) });
      }
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.closeWaiters) w();
      for (const [, w] of this.waiting) w.reject(new Error('connection closed before the reply'));
      this.waiting.clear();
    });
  }

  static connect(t: WireTarget): Promise<SheepWire> {
    return new Promise((resolve, reject) => {
      const s = 'path' in t ? net.connect(t.path) : net.connect({ port: t.port, host: t.host ?? '127.0.0.1' });
      s.once('connect', () => resolve(new SheepWire(s)));
      s.once('error', reject);
    });
  }

  /** Resolves when the server closed the connection. */
  whenClosed(): Promise<void> {
    return this.closed ? Promise.resolve() : new Promise((r) => this.closeWaiters.push(r));
  }

  /** Send a request (id assigned unless given) and wait for its reply. */
  request(
    opcode: number,
    fields: Partial<Omit<SdRequest, 'opcode' | 'args'>> & { args?: Partial<ReqArgs> } = {},
    payload?: Buffer,
  ): Promise<WireReply> {
    const id = fields.id ?? this.nextId++;
    const base = emptyReqArgs(requestVariant(opcode));
    const req: SdRequest = {
      protoVer: fields.protoVer ?? (opcode >= 0x80 ? C.SD_SHEEP_PROTO_VER : C.SD_PROTO_VER),
      opcode,
      flags: fields.flags ?? (payload ? C.SD_FLAG_CMD_WRITE : 0),
      epoch: fields.epoch ?? 0,
      id,
      dataLength: fields.dataLength ?? payload?.length ?? 0,
      args: { ...base, ...(fields.args ?? {}) } as ReqArgs,
    };
    const p = new Promise<WireReply>((resolve, reject) => {
      if (this.closed) reject(new Error(`connection closed before ${C.opName(opcode)}`));
      else this.waiting.set(id, { resolve, reject });
    });
    this.sock.cork();
    this.sock.write(encodeRequestHeader(req));
    if (payload && payload.length > 0) this.sock.write(payload);
    this.sock.uncork();
    return p;
  }

  writeRaw(b: Buffer): void {
    this.sock.write(b);
  }

  close(): void {
    this.sock.destroy();
  }

  // ---- convenience wrappers ----

  makeFs(opts: { copies?: number; flags?: number; shift?: number } = {}): Promise<WireReply> {
    return this.request(
      C.SD_OP_MAKE_FS,
      { args: { kind: 'cluster', copies: opts.copies ?? 1, flags: opts.flags ?? C.SD_CLUSTER_FLAG_USE_LOCK, blockSizeShift: opts.shift ?? 0, ctime: 1n << 32n } },
      Buffer.from('plain\0'),
    );
  }

  newVdi(name: string, size: bigint, o: { base?: number; snapid?: number; copies?: number; shift?: number } = {}): Promise<WireReply> {
    return this.request(
      C.SD_OP_NEW_VDI,
      { args: { kind: 'vdi', vdiSize: size, baseVdiId: o.base ?? 0, snapid: o.snapid ?? 0, copies: o.copies ?? 0, blockSizeShift: o.shift ?? 0 } },
      fixedString(name, 256),
    );
  }

  vdiInfo(name: string, tag = '', snapid = 0): Promise<WireReply> {
    const p = Buffer.concat([fixedString(name, 256), fixedString(tag, 256)]);
    return this.request(C.SD_OP_GET_VDI_INFO, { args: { kind: 'vdi', snapid } }, p);
  }

  lock(name: string, type: number = C.LOCK_TYPE_SHARED, protoVer = 1): Promise<WireReply> {
    const p = Buffer.concat([fixedString(name, 256), Buffer.alloc(256)]);
    return this.request(C.SD_OP_LOCK_VDI, { protoVer, args: { kind: 'vdi', type } }, p);
  }

  release(vid: number, type: number = C.LOCK_TYPE_SHARED): Promise<WireReply> {
    return this.request(C.SD_OP_RELEASE_VDI, { protoVer: 0, args: { kind: 'vdi', baseVdiId: vid, type } });
  }

  delVdi(name: string, tag = '', snapid = 0): Promise<WireReply> {
    const p = Buffer.concat([fixedString(name, 256), fixedString(tag, 256)]);
    return this.request(C.SD_OP_DEL_VDI, { args: { kind: 'vdi', snapid } }, p);
  }

  read(oid: bigint, offset: number, length: number, flags = 0, copies = 0): Promise<WireReply> {
    return this.request(C.SD_OP_READ_OBJ, { flags, dataLength: length, args: { kind: 'obj', oid, offset, copies } });
  }

  write(oid: bigint, offset: number, data: Buffer, flags = C.SD_FLAG_CMD_WRITE): Promise<WireReply> {
    return this.request(C.SD_OP_WRITE_OBJ, { flags: flags | C.SD_FLAG_CMD_WRITE, args: { kind: 'obj', oid, offset } }, data);
  }

  create(oid: bigint, offset: number, data: Buffer, o: { cowOid?: bigint; flags?: number } = {}): Promise<WireReply> {
    let flags = (o.flags ?? 0) | C.SD_FLAG_CMD_WRITE;
    if (o.cowOid) flags |= C.SD_FLAG_CMD_COW;
    return this.request(C.SD_OP_CREATE_AND_WRITE_OBJ, { flags, dataLength: data.length, args: { kind: 'obj', oid, offset, cowOid: o.cowOid ?? 0n } }, data);
  }

  /** Write index entries the way tgt does after allocating (§8.4). */
  setIndex(vid: number, idx: number, value: number, flags = C.SD_FLAG_CMD_WRITE): Promise<WireReply> {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    return this.write(vidToVdiOid(vid), C.SD_INODE_HEADER_SIZE + 4 * idx, b, flags);
  }
}

/** Assert a reply succeeded; returns it. */
export function okReply(r: WireReply): WireReply {
  if (r.rsp.result !== C.SD_RES_SUCCESS) throw new Error(`${C.opName(r.rsp.opcode)} failed: ${C.resultName(r.rsp.result)}`);
  return r;
}
