// Decoders for the data-in an initiator gets back (SPC-4, SBC-3): standard INQUIRY, VPD pages 0x80/0x83/0xB0/0xB2,
// READ CAPACITY (16), REPORT TARGET PORT GROUPS (ALUA states), PERSISTENT RESERVE IN, GET LBA STATUS, REPORT LUNS
// and the MODE SENSE (6) header. Every decoder tolerates truncated data (allocation length shorter than the page)
// by reading only what is there; lengths inside the data are clamped to the buffer.
import * as C from './constants.js';

export interface StandardInquiry {
  peripheralQualifier: number;
  peripheralDeviceType: number;
  /** TPGS (byte 5 bits 5..4): 0 none, 1 implicit ALUA, 2 explicit, 3 both. */
  tpgs: number;
  vendor: string;
  product: string;
  revision: string;
  cmdque: boolean;
}

const text = (b: Buffer, start: number, end: number): string =>
  b.toString('ascii', Math.min(start, b.length), Math.min(end, b.length)).replace(/[\s\0]+$/, '');

export function decodeStandardInquiry(b: Buffer): StandardInquiry {
  const b0 = b[0] ?? 0;
  return {
    peripheralQualifier: b0 >> 5,
    peripheralDeviceType: b0 & 0x1f,
    tpgs: ((b[5] ?? 0) >> 4) & 3,
    vendor: text(b, 8, 16),
    product: text(b, 16, 32),
    revision: text(b, 32, 36),
    cmdque: ((b[7] ?? 0) & 0x02) !== 0,
  };
}

/** The payload of a VPD page (after its 4-byte header), clamped to the buffer. */
export function vpdPayload(b: Buffer): Buffer {
  const len = b.length >= 4 ? b.readUInt16BE(2) : 0;
  return b.subarray(Math.min(4, b.length), Math.min(4 + len, b.length));
}

export function decodeUnitSerial(b: Buffer): string {
  return vpdPayload(b).toString('ascii').replace(/[\s\0]+$/, '').replace(/^\s+/, '');
}

export interface Designator {
  protocolId: number;
  codeSet: number;
  piv: boolean;
  /** 0 = logical unit, 1 = target port, 2 = target device. */
  association: number;
  /** 1 T10 vendor, 2 EUI-64, 3 NAA, 4 relative target port, 5 target port group, 8 SCSI name string. */
  type: number;
  id: Buffer;
}

export const DESIG_T10 = 1;
export const DESIG_EUI64 = 2;
export const DESIG_NAA = 3;
export const DESIG_RELATIVE_PORT = 4;
export const DESIG_TARGET_PORT_GROUP = 5;
export const DESIG_SCSI_NAME = 8;

/** The designation descriptors of VPD 0x83 (SPC-4 §7.8.6). */
export function decodeDeviceIdentification(b: Buffer): Designator[] {
  const p = vpdPayload(b);
  const out: Designator[] = [];
  let off = 0;
  while (off + 4 <= p.length) {
    const len = p[off + 3] ?? 0;
    if (off + 4 + len > p.length) break;
    const b0 = p[off] ?? 0;
    const b1 = p[off + 1] ?? 0;
    out.push({
      protocolId: b0 >> 4,
      codeSet: b0 & 0x0f,
      piv: (b1 & 0x80) !== 0,
      association: (b1 >> 4) & 3,
      type: b1 & 0x0f,
      id: p.subarray(off + 4, off + 4 + len),
    });
    off += 4 + len;
  }
  return out;
}

/** What a multipath initiator needs from VPD 0x83: the LU's NAA name and this port's ids. */
export interface LuIdentity {
  /** Hex of the LU NAA designator (the multipath identity), or undefined if the LU has none. */
  naa: string | undefined;
  /** The NAA value with the NAA nibble stripped (64 bits; the upper bits of a 16-byte NAA-6). */
  naaId: bigint | undefined;
  /** T10 vendor id designator text, if any. */
  t10: string | undefined;
  relativeTargetPort: number | undefined;
  targetPortGroup: number | undefined;
  scsiName: string | undefined;
}

export function luIdentity(designators: Designator[]): LuIdentity {
  const lu = designators.filter((d) => d.association === 0);
  const port = designators.filter((d) => d.association === 1);
  // Several NAA designators may be present (tgtd sends a locally assigned NAA-3 and an NAA-6): prefer the
  // registered formats, as Linux scsi_id does: 6 (IEEE registered extended), 5, 2, then 3 (locally assigned).
  const naaRank = (d: Designator): number => [6, 5, 2, 3].indexOf((d.id[0] ?? 0) >> 4) >>> 0;
  const naa = lu.filter((d) => d.type === DESIG_NAA).sort((a, b) => naaRank(a) - naaRank(b))[0];
  let naaId: bigint | undefined;
  if (naa && naa.id.length >= 8) {
    if (naa.id.length >= 16) {
      const v = (naa.id.readBigUInt64BE(0) << 64n) | naa.id.readBigUInt64BE(8);
      naaId = (v >> 60n) & 0xffffffffffffffffn;
    } else naaId = naa.id.readBigUInt64BE(0) & 0x0fffffffffffffffn;
  }
  const rel = port.find((d) => d.type === DESIG_RELATIVE_PORT && d.id.length >= 4);
  const tpg = port.find((d) => d.type === DESIG_TARGET_PORT_GROUP && d.id.length >= 4);
  const name = designators.find((d) => d.type === DESIG_SCSI_NAME);
  const t10 = lu.find((d) => d.type === DESIG_T10);
  return {
    naa: naa?.id.toString('hex'),
    naaId,
    t10: t10?.id.toString('ascii').replace(/[\s\0]+$/, ''),
    relativeTargetPort: rel?.id.readUInt16BE(2),
    targetPortGroup: tpg?.id.readUInt16BE(2),
    scsiName: name?.id.toString('utf8').replace(/\0+$/, ''),
  };
}

export interface BlockLimits {
  maxCompareAndWriteBlocks: number;
  optimalTransferGranularityBlocks: number;
  /** 0 = no limit reported. */
  maxTransferBlocks: number;
  optimalTransferBlocks: number;
  maxUnmapBlocks: number;
  maxUnmapDescriptors: number;
  maxWriteSameBlocks: bigint;
}

/** VPD 0xB0 (SBC-3 §6.6.3); offsets are within the whole page. */
export function decodeBlockLimits(b: Buffer): BlockLimits {
  const u32 = (o: number): number => (b.length >= o + 4 ? b.readUInt32BE(o) : 0);
  return {
    maxCompareAndWriteBlocks: b[5] ?? 0,
    optimalTransferGranularityBlocks: b.length >= 8 ? b.readUInt16BE(6) : 0,
    maxTransferBlocks: u32(8),
    optimalTransferBlocks: u32(12),
    maxUnmapBlocks: u32(20),
    maxUnmapDescriptors: u32(24),
    maxWriteSameBlocks: b.length >= 44 ? b.readBigUInt64BE(36) : 0n,
  };
}

export interface LogicalBlockProvisioning {
  lbpu: boolean;
  lbpws: boolean;
  lbpws10: boolean;
  lbprz: boolean;
  provisioningType: number;
}

/** VPD 0xB2 (SBC-3 §6.6.4). */
export function decodeLogicalBlockProvisioning(b: Buffer): LogicalBlockProvisioning {
  const f = b[5] ?? 0;
  return {
    lbpu: (f & 0x80) !== 0,
    lbpws: (f & 0x40) !== 0,
    lbpws10: (f & 0x20) !== 0,
    lbprz: (f & 0x04) !== 0,
    provisioningType: (b[6] ?? 0) & 7,
  };
}

export interface Capacity16 {
  lastLba: bigint;
  blockLength: number;
  /** Logical blocks per physical block exponent. */
  lbppbe: number;
  lbpme: boolean;
  lbprz: boolean;
  lowestAlignedLba: number;
}

/** READ CAPACITY (16) parameter data (SBC-3 §5.16.2). */
export function decodeCapacity16(b: Buffer): Capacity16 {
  if (b.length < 12) throw new RangeError(`READ CAPACITY (16) data too short: ${b.length} bytes`);
  const b14 = b[14] ?? 0;
  return {
    lastLba: b.readBigUInt64BE(0),
    blockLength: b.readUInt32BE(8),
    lbppbe: (b[13] ?? 0) & 0x0f,
    lbpme: (b14 & 0x80) !== 0,
    lbprz: (b14 & 0x40) !== 0,
    lowestAlignedLba: ((b14 & 0x3f) << 8) | (b[15] ?? 0),
  };
}

/** ALUA asymmetric access states (SPC-4 §5.16.2.4). */
export type AluaState =
  | 'active/optimized'
  | 'active/non-optimized'
  | 'standby'
  | 'unavailable'
  | 'lba-dependent'
  | 'offline'
  | 'transitioning'
  | 'reserved';

export const ALUA_STATES: Record<number, AluaState> = {
  0x0: 'active/optimized',
  0x1: 'active/non-optimized',
  0x2: 'standby',
  0x3: 'unavailable',
  0x4: 'lba-dependent',
  0xe: 'offline',
  0xf: 'transitioning',
};

export interface TargetPortGroup {
  preferred: boolean;
  state: AluaState;
  /** Raw 4-bit state code. */
  stateCode: number;
  /** Supported-state bits: T_SUP O_SUP LBD_SUP U_SUP S_SUP AN_SUP AO_SUP (byte 1). */
  supported: number;
  id: number;
  statusCode: number;
  relativeTargetPorts: number[];
}

/** REPORT TARGET PORT GROUPS parameter data (SPC-4 §6.36.2), either header format. */
export function decodeTargetPortGroups(b: Buffer): TargetPortGroup[] {
  if (b.length < 4) return [];
  const end = Math.min(b.length, 4 + b.readUInt32BE(0));
  const extended = b.length >= 8 && (((b[4] ?? 0) >> 4) & 7) === 1;
  let off = extended ? 8 : 4;
  const out: TargetPortGroup[] = [];
  while (off + 8 <= end) {
    const count = b[off + 7] ?? 0;
    const code = (b[off] ?? 0) & 0x0f;
    const ports: number[] = [];
    for (let i = 0; i < count && off + 8 + 4 * i + 4 <= end; i++) ports.push(b.readUInt16BE(off + 8 + 4 * i + 2));
    out.push({
      preferred: ((b[off] ?? 0) & 0x80) !== 0,
      state: ALUA_STATES[code] ?? 'reserved',
      stateCode: code,
      supported: b[off + 1] ?? 0,
      id: b.readUInt16BE(off + 2),
      statusCode: b[off + 5] ?? 0,
      relativeTargetPorts: ports,
    });
    off += 8 + 4 * count;
  }
  return out;
}

export interface PrKeys {
  generation: number;
  keys: bigint[];
}
export interface PrReservation {
  generation: number;
  /** Undefined when no reservation is held. */
  reservation: { key: bigint; scope: number; type: number } | undefined;
}

/** PERSISTENT RESERVE IN, READ KEYS (SPC-4 §6.15.2). */
export function decodePrReadKeys(b: Buffer): PrKeys {
  if (b.length < 8) return { generation: 0, keys: [] };
  const len = b.readUInt32BE(4);
  const keys: bigint[] = [];
  for (let off = 8; off + 8 <= Math.min(b.length, 8 + len); off += 8) keys.push(b.readBigUInt64BE(off));
  return { generation: b.readUInt32BE(0), keys };
}

/** PERSISTENT RESERVE IN, READ RESERVATION (SPC-4 §6.15.3). */
export function decodePrReadReservation(b: Buffer): PrReservation {
  if (b.length < 8) return { generation: 0, reservation: undefined };
  const len = b.readUInt32BE(4);
  if (len < 16 || b.length < 24) return { generation: b.readUInt32BE(0), reservation: undefined };
  const st = b[21] ?? 0;
  return { generation: b.readUInt32BE(0), reservation: { key: b.readBigUInt64BE(8), scope: st >> 4, type: st & 0x0f } };
}

export interface LbaStatus {
  lba: bigint;
  blocks: number;
  /** 0 mapped, 1 deallocated, 2 anchored. */
  provisioningStatus: number;
}

/** GET LBA STATUS parameter data (SBC-3 §5.7.2). */
export function decodeLbaStatus(b: Buffer): LbaStatus[] {
  if (b.length < 8) return [];
  const end = Math.min(b.length, 4 + b.readUInt32BE(0));
  const out: LbaStatus[] = [];
  for (let off = 8; off + 16 <= end; off += 16) {
    out.push({ lba: b.readBigUInt64BE(off), blocks: b.readUInt32BE(off + 8), provisioningStatus: (b[off + 12] ?? 0) & 0x0f });
  }
  return out;
}

/** REPORT LUNS parameter data (SPC-4 §6.33.2): the raw 8-byte LUN fields. */
export function decodeReportLuns(b: Buffer): bigint[] {
  if (b.length < 8) return [];
  const end = Math.min(b.length, 8 + b.readUInt32BE(0));
  const out: bigint[] = [];
  for (let off = 8; off + 8 <= end; off += 8) out.push(b.readBigUInt64BE(off));
  return out;
}

/** The MODE SENSE (6) header (SPC-4 §7.5.5): WP bit of the device-specific parameter. */
export function decodeModeSense6Header(b: Buffer): { writeProtected: boolean; blockDescriptorLength: number } {
  return { writeProtected: ((b[2] ?? 0) & 0x80) !== 0, blockDescriptorLength: b[3] ?? 0 };
}

/** True for an INQUIRY peripheral device type the initiator can use as a disk. */
export const isDisk = (i: StandardInquiry): boolean => i.peripheralQualifier === 0 && i.peripheralDeviceType === C.TYPE_DISK;
