// Sheepfold target identity (docs/fencing.md §3–4): the HELLO extension op that binds a client connection to a
// target id and an incarnation, the synthetic `node_id` a target id is represented by in lock state (so the
// `vdi_state` wire struct, `dog vdi lock list` and the cluster log keep their formats), the FENCED result code,
// and the TARGET_LOCKS listing. Sheepdog and tgt never send these opcodes (internal range, proto_ver 0x0a);
// a sheepdog sheep answers them with INVALID_PARMS, which a client takes as "no target identity".
import { SD_NODE_ID_SIZE, SF_OP_BREAK_LOCK, SF_OP_HELLO, SF_OP_TARGET_LOCKS, SF_RES_FENCED } from './constants.js';
import { readCString, writeCString } from './cstring.js';
import { FNV1A_64_INIT, fnv1a64 } from './hash.js';
import { readNodeId, writeNodeId, type NodeId } from './node.js';

// The opcodes and result code live in constants.ts (names for logs and errors) and are re-exported here:
// HELLO (0xf0): payload `SF_HELLO_SIZE` bytes (below); binds the connection, no reply payload.
// TARGET_LOCKS (0xf1): reply = `SF_TARGET_LOCK_SIZE`-byte entries, one per (VDI, target) record; BUFFER_SMALL.
// BREAK_LOCK (0xf2): obj.oid = the VDI's inode oid; releases every holder (NORMAL owner, all SHARED participants).
// FENCED (0xf0): a request of a connection whose incarnation no longer holds the VDI's lock record.
export { SF_OP_BREAK_LOCK, SF_OP_HELLO, SF_OP_TARGET_LOCKS, SF_RES_FENCED };

/** Longest target id, in UTF-8 bytes. */
export const SF_TARGET_ID_MAX = 64;
export const SF_HELLO_VERSION = 1;
/** HELLO payload: u32 version @0, u32 flags @4 (0), u64 incarnation @8, char target_id[64] @16 (NUL padded). */
export const SF_HELLO_SIZE = 80;
/**
 * TARGET_LOCKS entry: u32 vid @0, u32 generation @4, u64 incarnation @8, u8 held @16, u8 type @17 (LOCK_TYPE_*),
 * pad, node_id[40] @24 (the synthetic id), char target_id[64] @64.
 */
export const SF_TARGET_LOCK_SIZE = 128;

export interface Hello {
  targetId: string;
  /** Larger is newer: ms since the epoch << 20 | 20 random bits (makeIncarnation). */
  incarnation: bigint;
}

export interface TargetLockEntry {
  vid: number;
  targetId: string;
  nid: NodeId;
  incarnation: bigint;
  /** Lock grants to this target on this VDI so far (cluster-ordered). */
  generation: number;
  /** False once released, broken (`dog vdi lock unlock`) or never re-taken: its writes are fenced. */
  held: boolean;
  /** LOCK_TYPE_NORMAL or LOCK_TYPE_SHARED of the last grant. */
  type: number;
}

/** Check a target id: 1–64 UTF-8 bytes, printable, no NUL. Returns it. */
export function checkTargetId(id: string): string {
  const n = Buffer.byteLength(id, 'utf8');
  if (n === 0 || n > SF_TARGET_ID_MAX) throw new RangeError(`target id must be 1 to ${SF_TARGET_ID_MAX} bytes (got ${n})`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) throw new RangeError('target id must not contain control characters');
  return id;
}

/** A new incarnation for a process start at `nowMs`, with 20 random bits from `random` (0 ≤ r < 1). */
export function makeIncarnation(nowMs: number, random: number): bigint {
  return (BigInt(Math.floor(nowMs)) << 20n) | BigInt(Math.floor(random * 0x100000) & 0xfffff);
}

export function encodeHello(h: Hello): Buffer {
  checkTargetId(h.targetId);
  const b = Buffer.alloc(SF_HELLO_SIZE);
  b.writeUInt32LE(SF_HELLO_VERSION, 0);
  b.writeBigUInt64LE(BigInt.asUintN(64, h.incarnation), 8);
  writeCString(b, 16, SF_TARGET_ID_MAX, h.targetId);
  return b;
}

/** Decode a HELLO payload; throws RangeError on a bad size, version or id. */
export function decodeHello(b: Buffer): Hello {
  if (b.length !== SF_HELLO_SIZE) throw new RangeError(`HELLO payload of ${b.length} bytes (expected ${SF_HELLO_SIZE})`);
  const v = b.readUInt32LE(0);
  if (v !== SF_HELLO_VERSION) throw new RangeError(`HELLO version ${v}`);
  return { incarnation: b.readBigUInt64LE(8), targetId: checkTargetId(readCString(b, 16, SF_TARGET_ID_MAX)) };
}

/** First four address bytes of every synthetic target node id: fd 53 46 74 ("\xfdSFt", an IPv6 ULA prefix). */
export const TARGET_NID_PREFIX = Buffer.from([0xfd, 0x53, 0x46, 0x74]);

/**
 * The synthetic node_id of a target id: addr = TARGET_NID_PREFIX + 12 bytes of hash (FNV-1a 64 of the id
 * with two bases), port 0, no io address. Port 0 is never a sheep's, so it cannot equal a gateway's identity.
 */
export function targetNodeId(targetId: string): NodeId {
  const bytes = Buffer.from(checkTargetId(targetId), 'utf8');
  const h1 = fnv1a64(bytes);
  const h2 = fnv1a64(bytes, BigInt.asUintN(64, FNV1A_64_INIT ^ 0x5346_7461_7267_6574n));
  const addr = Buffer.alloc(16);
  TARGET_NID_PREFIX.copy(addr, 0);
  addr.writeBigUInt64BE(h1, 4);
  addr.writeUInt32BE(Number(h2 & 0xffffffffn), 12);
  return { addr, port: 0, ioAddr: Buffer.alloc(16), ioPort: 0 };
}

/** True for a node_id made by targetNodeId (a target participant, not a gateway sheep). */
export function isTargetNodeId(nid: NodeId): boolean {
  return nid.port === 0 && nid.addr.subarray(0, 4).equals(TARGET_NID_PREFIX);
}

export function encodeTargetLocks(entries: readonly TargetLockEntry[]): Buffer {
  const out = Buffer.alloc(entries.length * SF_TARGET_LOCK_SIZE);
  entries.forEach((e, i) => {
    const o = i * SF_TARGET_LOCK_SIZE;
    out.writeUInt32LE(e.vid >>> 0, o);
    out.writeUInt32LE(e.generation >>> 0, o + 4);
    out.writeBigUInt64LE(BigInt.asUintN(64, e.incarnation), o + 8);
    out.writeUInt8(e.held ? 1 : 0, o + 16);
    out.writeUInt8(e.type & 0xff, o + 17);
    writeNodeId(e.nid, out, o + 24);
    writeCString(out, o + 24 + SD_NODE_ID_SIZE, SF_TARGET_ID_MAX, e.targetId);
  });
  return out;
}

export function decodeTargetLocks(b: Buffer): TargetLockEntry[] {
  const out: TargetLockEntry[] = [];
  for (let o = 0; o + SF_TARGET_LOCK_SIZE <= b.length; o += SF_TARGET_LOCK_SIZE) {
    out.push({
      vid: b.readUInt32LE(o),
      generation: b.readUInt32LE(o + 4),
      incarnation: b.readBigUInt64LE(o + 8),
      held: b.readUInt8(o + 16) !== 0,
      type: b.readUInt8(o + 17),
      nid: readNodeId(b, o + 24),
      targetId: readCString(b, o + 24 + SD_NODE_ID_SIZE, SF_TARGET_ID_MAX),
    });
  }
  return out;
}
