// Object id helpers (§4.1): inode, data, vmstate, attribute, B-tree and ledger oids of a vid.
import * as C from './constants.js';

/** The inode object of a VDI. */
export function vidToVdiOid(vid: number): bigint {
  return C.VDI_BIT | (BigInt(vid >>> 0) << 32n);
}

/** Data object `idx` of a VDI. */
export function vidToDataOid(vid: number, idx: number): bigint {
  return (BigInt(vid >>> 0) << 32n) | BigInt(idx >>> 0);
}

/** Attribute object of a VDI family (vid = name hash) for an attribute id. */
export function vidToAttrOid(vid: number, attrId: number): bigint {
  return C.VDI_ATTR_BIT | (BigInt(vid >>> 0) << 32n) | BigInt(attrId >>> 0);
}

/** vmstate object `idx` of a VDI. */
export function vidToVmstateOid(vid: number, idx: number): bigint {
  return C.VMSTATE_BIT | (BigInt(vid >>> 0) << 32n) | BigInt(idx >>> 0);
}

/** B-tree node object of a hyper volume. */
export function vidToBtreeOid(vid: number, btreeId: number): bigint {
  return C.VDI_BTREE_BIT | (BigInt(vid >>> 0) << 32n) | BigInt(btreeId >>> 0);
}

/** Ledger object of a data object. */
export function oidToLedgerOid(oid: bigint): bigint {
  return C.LEDGER_BIT | oid;
}

/** The 24-bit vid an oid belongs to. */
export function oidToVid(oid: bigint): number {
  return Number((oid & C.SD_VDI_MASK) >> 32n);
}

/** The low 32 bits: the data index of a data object (or attr/btree id). */
export function oidToIndex(oid: bigint): number {
  return Number(oid & 0xffffffffn);
}

export function isVdiOid(oid: bigint): boolean {
  return (oid & C.VDI_BIT) !== 0n;
}
export function isVmstateOid(oid: bigint): boolean {
  return (oid & C.VMSTATE_BIT) !== 0n;
}
export function isVdiAttrOid(oid: bigint): boolean {
  return (oid & C.VDI_ATTR_BIT) !== 0n;
}
export function isVdiBtreeOid(oid: bigint): boolean {
  return (oid & C.VDI_BTREE_BIT) !== 0n;
}
export function isLedgerOid(oid: bigint): boolean {
  return (oid & C.LEDGER_BIT) !== 0n;
}
/** A data object: none of bits 59–63 set. */
export function isDataOid(oid: bigint): boolean {
  return (oid & (C.VDI_BIT | C.VMSTATE_BIT | C.VDI_ATTR_BIT | C.VDI_BTREE_BIT | C.LEDGER_BIT)) === 0n;
}

/**
 * Size of an object on disk given its kind and the VDI's block_size_shift (data/vmstate objects) — inode,
 * attribute, B-tree and ledger objects have fixed sizes.
 */
export function objectSize(oid: bigint, blockSizeShift: number = C.SD_DEFAULT_BLOCK_SIZE_SHIFT): number {
  if (isVdiOid(oid)) return C.SD_INODE_SIZE;
  if (isVdiAttrOid(oid)) return C.SD_ATTR_OBJ_SIZE;
  if (isVdiBtreeOid(oid)) return C.SD_INODE_DATA_INDEX_SIZE;
  if (isLedgerOid(oid)) return C.SD_LEDGER_OBJ_SIZE;
  return 2 ** blockSizeShift;
}

/** 16 lowercase hex digits, as sheep names object files (`%016x`). */
export function oidHex(oid: bigint): string {
  return oid.toString(16).padStart(16, '0');
}

/** Parse 16 hex digits back into an oid; null if the text is not one. */
export function parseOidHex(text: string): bigint | null {
  if (!/^[0-9a-f]{16}$/.test(text)) return null;
  return BigInt(`0x${text}`);
}
