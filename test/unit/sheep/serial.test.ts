// SerialIo as the primary of an object (no forwarding): CREATE_EXCL creates once, CMP_WRITE compares and writes
// against the replicas' bytes, and overlapping ops run in arrival order while disjoint ones overlap.
import { describe, expect, it } from 'vitest';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { emptyReqArgs, makeRequest } from '../../../src/proto/sheepdog/header.js';
import { vidToDataOid } from '../../../src/proto/sheepdog/oid.js';
import { SdError } from '../../../src/sheep/errors.js';
import type { Gateway, ObjIo } from '../../../src/sheep/gateway.js';
import type { PeerPool } from '../../../src/sheep/peer-pool.js';
import { SerialIo } from '../../../src/sheep/serial.js';
import { componentLogger } from '../../../src/obs/log.js';

const OID = vidToDataOid(0x7c2b25, 3);
const SIZE = 4 << 20;

/** A gateway over one in-memory object; every write records its order and may be held open. */
function fakeGateway(): { gw: Gateway; obj: () => Buffer | null; log: string[]; holdAt: (offset: number, p: Promise<void>) => void } {
  let obj: Buffer | null = null;
  const log: string[] = [];
  const gates = new Map<number, Promise<void>>();
  const gw = {
    checkClientWrite: () => Promise.resolve(),
    copiesFor: () => 3,
    readReplicas: (_oid: bigint, off: number, len: number) => {
      if (!obj) return Promise.reject(new SdError(C.SD_RES_NO_OBJ, 'no object'));
      return Promise.resolve(Buffer.from(obj.subarray(off, off + len)));
    },
    createUnchecked: async (io: ObjIo, data: Buffer) => {
      obj = Buffer.alloc(SIZE);
      data.copy(obj, io.offset);
      log.push(`create@${io.offset}`);
    },
    writeUnchecked: async (io: ObjIo, data: Buffer) => {
      await gates.get(io.offset);
      if (!obj) throw new SdError(C.SD_RES_NO_OBJ, 'no object');
      data.copy(obj, io.offset);
      log.push(`write@${io.offset}:${data[0]}`);
    },
  } as unknown as Gateway;
  return { gw, obj: () => obj, log, holdAt: (offset, p) => gates.set(offset, p) };
}

function serial(gw: Gateway): SerialIo {
  return new SerialIo({ gateway: gw, primary: () => null, peers: {} as PeerPool, epoch: () => 1, log: componentLogger('test') });
}

function req(opcode: number, offset: number, payload: Buffer): [ReturnType<typeof makeRequest>, ObjIo, Buffer] {
  const r = makeRequest(opcode, { ...emptyReqArgs('obj'), oid: OID, offset }, { flags: C.SD_FLAG_CMD_WRITE, dataLength: payload.length });
  return [r, { oid: OID, cowOid: 0n, copies: 0, offset, flags: r.flags }, payload];
}

describe('SerialIo at the primary', () => {
  it('creates an object once; a second CREATE_EXCL answers OID_EXIST and writes nothing', async () => {
    const f = fakeGateway();
    const s = serial(f.gw);
    expect((await s.handle(...req(C.SF_OP_CREATE_EXCL, 4096, Buffer.alloc(512, 1)))).result).toBe(C.SD_RES_SUCCESS);
    expect((await s.handle(...req(C.SF_OP_CREATE_EXCL, 0, Buffer.alloc(512, 2)))).result).toBe(C.SD_RES_OID_EXIST);
    expect(f.obj()?.subarray(4096, 4098)).toEqual(Buffer.from([1, 1]));
    expect(f.obj()?.[0]).toBe(0);
    expect(f.log).toEqual(['create@4096']);
  });

  it('writes on a match and reports the first differing byte on a miscompare', async () => {
    const f = fakeGateway();
    const s = serial(f.gw);
    await s.handle(...req(C.SF_OP_CREATE_EXCL, 0, Buffer.alloc(16, 7)));
    const ok = await s.handle(...req(C.SF_OP_CMP_WRITE, 0, Buffer.concat([Buffer.alloc(16, 7), Buffer.alloc(16, 9)])));
    expect(ok.result).toBe(C.SD_RES_SUCCESS);
    const expected = Buffer.alloc(16, 9);
    expected[5] = 0;
    const miss = await s.handle(...req(C.SF_OP_CMP_WRITE, 0, Buffer.concat([expected, Buffer.alloc(16, 3)])));
    expect(miss.result).toBe(C.SF_RES_MISCOMPARE);
    expect(miss.data?.readUInt32LE(0)).toBe(5);
    expect(f.obj()?.subarray(0, 16)).toEqual(Buffer.alloc(16, 9));
  });

  it('refuses a CMP_WRITE payload that is not two equal halves', async () => {
    const s = serial(fakeGateway().gw);
    await expect(s.handle(...req(C.SF_OP_CMP_WRITE, 0, Buffer.alloc(15)))).rejects.toMatchObject({ result: C.SD_RES_INVALID_PARMS });
  });

  it('runs overlapping ops in arrival order and lets disjoint ones pass a held one', async () => {
    const f = fakeGateway();
    const s = serial(f.gw);
    await s.handle(...req(C.SF_OP_CREATE_EXCL, 0, Buffer.alloc(1)));
    let open!: () => void;
    f.holdAt(0, new Promise<void>((r) => (open = r)));
    const first = s.handle(...req(C.SF_OP_WRITE_SERIAL, 0, Buffer.alloc(1024, 1)));
    const overlapping = s.handle(...req(C.SF_OP_WRITE_SERIAL, 512, Buffer.alloc(1024, 2)));
    const disjoint = s.handle(...req(C.SF_OP_WRITE_SERIAL, 8192, Buffer.alloc(512, 3)));
    await disjoint;
    expect(f.log).toEqual(['create@0', 'write@8192:3']);
    open();
    await Promise.all([first, overlapping]);
    expect(f.log).toEqual(['create@0', 'write@8192:3', 'write@0:1', 'write@512:2']);
    expect(f.obj()?.[600]).toBe(2);
  });
});
