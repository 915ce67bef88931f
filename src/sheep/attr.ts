// GET_VDI_ATTR (fact sheet §4.3, §2.5 vdi setattr/getattr): find, create or delete the attribute object of a
// VDI family by probing attribute ids from the hash of name/tag/snap_id/key.
import {
  SD_ATTR_OBJ_SIZE,
  SD_FLAG_CMD_CREAT,
  SD_FLAG_CMD_DEL,
  SD_FLAG_CMD_EXCL,
  SD_RES_INVALID_PARMS,
  SD_RES_NO_OBJ,
  SD_RES_SUCCESS,
  SD_RES_VDI_EXIST,
} from '../proto/sheepdog/constants.js';
import { decodeVdiAttr } from '../proto/sheepdog/attr.js';
import { sdHashVdi, vdiAttrId } from '../proto/sheepdog/hash.js';
import { vidToAttrOid } from '../proto/sheepdog/oid.js';
import { resultOf } from './errors.js';
import type { SheepNode } from './node.js';

/** Upper bound on probes: attribute ids collide rarely; a long run means a corrupt or hostile store. */
export const MAX_ATTR_PROBES = 1024;

export interface AttrReply {
  result: number;
  vid: number;
  attrId: number;
  copies: number;
}

export async function getVdiAttr(node: SheepNode, flags: number, snapid: number, payload: Buffer): Promise<AttrReply> {
  const none = (result: number): AttrReply => ({ result, vid: 0, attrId: 0, copies: 0 });
  if (payload.length !== SD_ATTR_OBJ_SIZE) return none(SD_RES_INVALID_PARMS);
  const want = decodeVdiAttr(payload);
  const vdi = await node.getVdiInfo(want.name, want.tag, snapid);
  if (vdi.result !== SD_RES_SUCCESS) return none(vdi.result);
  const vid = sdHashVdi(want.name);
  const creat = (flags & SD_FLAG_CMD_CREAT) !== 0;
  let attrId = vdiAttrId(want.name, want.tag, want.snapId, want.key);
  const reply = (result: number): AttrReply => ({ result, vid, attrId, copies: vdi.copies });
  for (let probe = 0; probe < MAX_ATTR_PROBES; probe++, attrId = (attrId + 1) >>> 0) {
    const oid = vidToAttrOid(vid, attrId);
    let cur: Buffer | null = null;
    try {
      cur = await node.gateway.readReplicas(oid, 0, SD_ATTR_OBJ_SIZE, vdi.copies);
    } catch (err) {
      if (resultOf(err) !== SD_RES_NO_OBJ) throw err;
    }
    if (cur === null || cur[0] === 0) {
      if (!creat) {
        if (cur === null) return reply(SD_RES_NO_OBJ);
        continue;
      }
      await node.gateway.createInodeLike(oid, payload, vdi.copies);
      return reply(SD_RES_SUCCESS);
    }
    const have = decodeVdiAttr(cur);
    if (have.name !== want.name || have.tag !== want.tag || have.snapId !== want.snapId || have.key !== want.key) continue;
    if (creat && (flags & SD_FLAG_CMD_EXCL) !== 0) return reply(SD_RES_VDI_EXIST);
    if ((flags & SD_FLAG_CMD_DEL) !== 0) await node.gateway.writeRaw(oid, Buffer.alloc(1), 0);
    return reply(SD_RES_SUCCESS);
  }
  return none(SD_RES_NO_OBJ);
}
