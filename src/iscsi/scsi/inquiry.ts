// INQUIRY data (SPC-4 §6.6): standard data and the VPD pages 0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2. The LU
// identity (serial, NAA-6 designator) comes from device.identity, so two target hosts exporting the same disk
// present the same LU to a multipath initiator.
import type { BlockDevice } from '../../block/device.js';
import * as C from '../../proto/scsi/constants.js';

export interface InquiryContext {
  device: BlockDevice;
  blocks: bigint;
  targetName: string;
  relativePortId: number;
  /** Target port group id (VPD 0x83) and TPGS (standard data byte 5; 0 without ALUA). */
  targetPortGroup?: number;
  tpgs?: number;
  vendor: string;
  product: string;
  revision: string;
  maxCompareAndWriteBlocks: number;
  maxUnmapDescriptors: number;
  maxWriteSameBlocks: number;
  maxTransferBlocks: number;
  atomicAlignmentBlocks: number;
  removable: boolean;
}

const VERSION_SAM5 = 0x00a0;
const VERSION_ISCSI = 0x0960;
const VERSION_SPC4 = 0x0460;
const VERSION_SBC3 = 0x04c0;

function ascii(s: string, len: number): Buffer {
  const b = Buffer.alloc(len, 0x20);
  b.write(s.slice(0, len), 'ascii');
  return b;
}

function vpd(code: number, body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = C.TYPE_DISK;
  h[1] = code;
  h.writeUInt16BE(body.length, 2);
  return Buffer.concat([h, body]);
}

/** One designation descriptor (SPC-4 §7.8.6.1). */
function designator(codeSet: number, association: number, type: number, id: Buffer, piv = false): Buffer {
  const h = Buffer.alloc(4);
  h[0] = (piv ? 0x50 : 0) | codeSet; // protocol identifier 5 (iSCSI) when PIV
  h[1] = (piv ? 0x80 : 0) | (association << 4) | type;
  h[3] = id.length;
  return Buffer.concat([h, id]);
}

/** NAA-6 IEEE Registered Extended designator: 0x6 nibble, then naaId (64 bits), zero-filled to 16 bytes. */
export function naa6(naaId: bigint): Buffer {
  const b = Buffer.alloc(16);
  const v = (6n << 124n) | ((naaId & 0xffffffffffffffffn) << 60n);
  b.writeBigUInt64BE(v >> 64n, 0);
  b.writeBigUInt64BE(v & 0xffffffffffffffffn, 8);
  return b;
}

const SUPPORTED_VPD = [
  C.VPD_SUPPORTED_PAGES,
  C.VPD_UNIT_SERIAL_NUMBER,
  C.VPD_DEVICE_IDENTIFICATION,
  C.VPD_BLOCK_LIMITS,
  C.VPD_BLOCK_DEVICE_CHARACTERISTICS,
  C.VPD_LOGICAL_BLOCK_PROVISIONING,
];

/** Standard INQUIRY data (evpd=false) or a VPD page; undefined for an unsupported page. */
export function buildInquiry(ctx: InquiryContext, evpd: boolean, pageCode: number): Buffer | undefined {
  const dev = ctx.device;
  if (!evpd) {
    const b = Buffer.alloc(96);
    b[0] = C.TYPE_DISK;
    if (ctx.removable) b[1] = 0x80; // RMB
    b[2] = 0x06; // SPC-4
    b[3] = 0x12; // HISUP, response data format 2
    b[4] = b.length - 5;
    b[5] = 0x08 | (((ctx.tpgs ?? 0) & 3) << 4); // 3PC: EXTENDED COPY; TPGS (ALUA)
    b[7] = 0x02; // CMDQUE
    ascii(ctx.vendor, 8).copy(b, 8);
    ascii(ctx.product, 16).copy(b, 16);
    ascii(ctx.revision, 4).copy(b, 32);
    [VERSION_SAM5, VERSION_ISCSI, VERSION_SPC4, VERSION_SBC3].forEach((v, i) => b.writeUInt16BE(v, 58 + 2 * i));
    return b;
  }
  switch (pageCode) {
    case C.VPD_SUPPORTED_PAGES:
      return vpd(pageCode, Buffer.from(SUPPORTED_VPD));
    case C.VPD_UNIT_SERIAL_NUMBER:
      return vpd(pageCode, Buffer.from(dev.identity.serial, 'ascii'));
    case C.VPD_DEVICE_IDENTIFICATION: {
      const t10 = Buffer.concat([ascii(ctx.vendor, 8), Buffer.from(dev.identity.serial, 'ascii')]);
      const port = Buffer.alloc(4);
      port.writeUInt16BE(ctx.relativePortId, 2);
      const tpg = Buffer.alloc(4);
      tpg.writeUInt16BE(ctx.targetPortGroup ?? 1, 2);
      const nameRaw = Buffer.from(`${ctx.targetName}\0`, 'utf8');
      const name = Buffer.alloc((nameRaw.length + 3) & ~3);
      nameRaw.copy(name);
      return vpd(
        pageCode,
        Buffer.concat([
          designator(1, 0, 3, naa6(dev.identity.naaId)),
          designator(2, 0, 1, t10),
          designator(1, 1, 4, port, true),
          designator(1, 1, 5, tpg, true),
          designator(3, 2, 8, name, true),
        ]),
      );
    }
    case C.VPD_BLOCK_LIMITS: {
      const b = Buffer.alloc(0x3c);
      b[1] = ctx.maxCompareAndWriteBlocks & 0xff;
      const gran = Math.max(1, Math.floor(dev.preferredBlockSize / dev.blockSize));
      b.writeUInt16BE(Math.min(gran, 0xffff), 2); // OPTIMAL TRANSFER LENGTH GRANULARITY
      b.writeUInt32BE(ctx.maxTransferBlocks, 4); // MAXIMUM TRANSFER LENGTH
      b.writeUInt32BE(Math.floor((1024 * 1024) / dev.blockSize), 8); // OPTIMAL TRANSFER LENGTH
      if (dev.thin) {
        b.writeUInt32BE(0xffffffff, 16); // MAXIMUM UNMAP LBA COUNT
        b.writeUInt32BE(ctx.maxUnmapDescriptors, 20);
        b.writeUInt32BE(1, 24); // OPTIMAL UNMAP GRANULARITY
      }
      b.writeBigUInt64BE(BigInt(ctx.maxWriteSameBlocks), 32);
      b.writeUInt32BE(ctx.maxTransferBlocks, 40); // MAXIMUM ATOMIC TRANSFER LENGTH
      b.writeUInt32BE(ctx.atomicAlignmentBlocks, 44); // ATOMIC ALIGNMENT
      b.writeUInt32BE(ctx.atomicAlignmentBlocks, 48); // ATOMIC TRANSFER LENGTH GRANULARITY
      return vpd(pageCode, b);
    }
    case C.VPD_BLOCK_DEVICE_CHARACTERISTICS: {
      const b = Buffer.alloc(0x3c);
      b.writeUInt16BE(1, 0); // non-rotating medium
      b[3] = 0x40 | 0x10; // WABEREQ=01b, WACEREQ=01b: after SANITIZE BLOCK/CRYPTO ERASE reads succeed (zeros)
      return vpd(pageCode, b);
    }
    case C.VPD_LOGICAL_BLOCK_PROVISIONING: {
      const b = Buffer.alloc(4);
      if (dev.thin) {
        b[1] = 0x80 | 0x40 | 0x20 | 0x04; // LBPU, LBPWS, LBPWS10, LBPRZ
        b[2] = 0x02; // thin provisioned
      }
      return vpd(pageCode, b);
    }
    default:
      return undefined;
  }
}
