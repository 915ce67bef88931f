// `struct sheepdog_vdi_attr` (§4.3), 66 320 bytes: a VDI attribute object (GET_VDI_ATTR, vdi setattr/getattr).
import { SD_ATTR_OBJ_SIZE, SD_MAX_VDI_ATTR_KEY_LEN, SD_MAX_VDI_ATTR_VALUE_LEN, SD_MAX_VDI_LEN, SD_MAX_VDI_TAG_LEN } from './constants.js';
import { readCString, writeCString } from './cstring.js';

export interface VdiAttr {
  name: string;
  tag: string;
  ctime: bigint;
  snapId: number;
  key: string;
  value: Buffer;
}

export const ATTR_OFF_CTIME = 512;
export const ATTR_OFF_SNAP_ID = 520;
export const ATTR_OFF_VALUE_LEN = 524;
export const ATTR_OFF_KEY = 528;
export const ATTR_OFF_VALUE = 784;

export function encodeVdiAttr(a: VdiAttr): Buffer {
  if (a.value.length > SD_MAX_VDI_ATTR_VALUE_LEN) throw new RangeError('attribute value too long');
  const out = Buffer.alloc(SD_ATTR_OBJ_SIZE);
  writeCString(out, 0, SD_MAX_VDI_LEN, a.name);
  writeCString(out, 256, SD_MAX_VDI_TAG_LEN, a.tag);
  out.writeBigUInt64LE(a.ctime, ATTR_OFF_CTIME);
  out.writeUInt32LE(a.snapId >>> 0, ATTR_OFF_SNAP_ID);
  out.writeUInt32LE(a.value.length, ATTR_OFF_VALUE_LEN);
  writeCString(out, ATTR_OFF_KEY, SD_MAX_VDI_ATTR_KEY_LEN, a.key);
  a.value.copy(out, ATTR_OFF_VALUE);
  return out;
}

export function decodeVdiAttr(buf: Buffer): VdiAttr {
  const len = Math.min(buf.readUInt32LE(ATTR_OFF_VALUE_LEN), SD_MAX_VDI_ATTR_VALUE_LEN, Math.max(0, buf.length - ATTR_OFF_VALUE));
  return {
    name: readCString(buf, 0, SD_MAX_VDI_LEN),
    tag: readCString(buf, 256, SD_MAX_VDI_TAG_LEN),
    ctime: buf.readBigUInt64LE(ATTR_OFF_CTIME),
    snapId: buf.readUInt32LE(ATTR_OFF_SNAP_ID),
    key: readCString(buf, ATTR_OFF_KEY, SD_MAX_VDI_ATTR_KEY_LEN),
    value: Buffer.from(buf.subarray(ATTR_OFF_VALUE, ATTR_OFF_VALUE + len)),
  };
}
