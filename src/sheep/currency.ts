// Which copy of an object holds every acknowledged write (docs/cluster.md "Object versions"): the decision
// recovery makes for each object a node owns after an epoch change, from the versions the live members
// report and the epoch history every node shares. Pure: no I/O, no clock.
//
// Facts it rests on (each enforced elsewhere):
// - a write is acknowledged only when every replica of its epoch applied it, and a replica applies a client
//   write only to a copy that is current (recovered first), so a member that was a replica of an object in
//   epoch e either holds every write of e or — if its copy was not current during e — proves that no write
//   of that object was acknowledged in e;
// - a copy made current in epoch c (written, fetched or verified then) stays current through every following
//   epoch in which its holder is still a replica of the object ("continuity");
// - copies only move forward: a newer version is never replaced by an older one on purpose, and a node that
//   deletes a copy records the epoch (`purgeEpoch`), so a node without a copy vouches only for epochs after it.
// A copy is authoritative at epoch `now` when it is current through `now - 1`, or through an earlier epoch v
// while live members prove that nothing was written in every epoch after v. Anything else is unavailable:
// reads and writes of it wait, and recovery stays pending, until a member that knows returns.
import { nodeAddr, type NodeId } from '../proto/sheepdog/node.js';
import type { Ring } from '../proto/sheepdog/ring.js';
import { compareVersion, type ObjVersion } from './store/store.js';

/** What one live member reports about one object. */
export interface CopyInfo {
  node: NodeId;
  /** Its copy's version, or null when it holds none. */
  ver: ObjVersion | null;
  /** Epoch of this member's last deletion of copies: without a copy it vouches only for later epochs. */
  purgeEpoch: number;
}

export interface History {
  /** The ring of epoch `e`, or null when unknown (treated as "nothing can be proven for e"). */
  ringOf(e: number): Ring | null;
  copiesOf(oid: bigint): number;
}

export type Decision =
  /** The local copy is authoritative; `mark` = its `current` must be raised to the new epoch. */
  | { kind: 'keep'; mark: boolean }
  /** Fetch the copy of `from` (it carries `ver`); `verify` = same version as ours: compare hashes first. */
  | { kind: 'fetch'; from: NodeId; ver: ObjVersion; verify: boolean }
  /** No live member can prove which content is current (the epochs `gapFrom..gapTo` are unaccounted for). */
  | { kind: 'unavailable'; best: number; gapFrom: number; gapTo: number }
  /** No live member holds a copy and none can be current: nothing to fetch. */
  | { kind: 'none' };

export function isReplica(ring: Ring | null, oid: bigint, nid: NodeId, copies: number): boolean {
  if (!ring) return false;
  const name = nodeAddr(nid);
  return ring.oidToNodes(oid, copies).some((n) => nodeAddr(n.nid) === name);
}

/**
 * The last epoch ≤ `upTo` through which a copy made current in epoch `current` on `nid` is known to hold every
 * acknowledged write (0: never; a copy of unknown version proves nothing).
 */
export function currentThrough(current: number, nid: NodeId, oid: bigint, upTo: number, h: History): number {
  if (current <= 0) return 0;
  if (current >= upTo) return current;
  const copies = h.copiesOf(oid);
  let v = current;
  for (let e = current + 1; e <= upTo; e++) {
    if (!isReplica(h.ringOf(e), oid, nid, copies)) break;
    v = e;
  }
  return v;
}

/** True when `c` proves that no write of `oid` was acknowledged in epoch `e`. */
export function attestsNoWrite(c: CopyInfo, oid: bigint, e: number, h: History): boolean {
  if (!isReplica(h.ringOf(e), oid, c.node, h.copiesOf(oid))) return false;
  if (c.ver === null) return e > c.purgeEpoch;
  return c.ver.current < e && currentThrough(c.ver.current, c.node, oid, e, h) < e;
}

/**
 * Decide what node `self` (a replica of `oid` in epoch `now`) does with its copy: `mine` is its own report,
 * `others` the reports of every other live member of `now`.
 */
export function decide(oid: bigint, now: number, mine: CopyInfo, others: readonly CopyInfo[], h: History): Decision {
  const all = [mine, ...others];
  const through = all.map((c) => (c.ver ? currentThrough(c.ver.current, c.node, oid, now - 1, h) : 0));
  const ownThrough = through[0] ?? 0;
  // The common case: this node kept its copy current through the last epoch (and is a replica now).
  if (ownThrough >= now - 1 && mine.ver) return { kind: 'keep', mark: false };
  let best = 0;
  for (const t of through) best = Math.max(best, t);
  if (best === 0) return all.some((c) => c.ver) ? { kind: 'unavailable', best: 0, gapFrom: 1, gapTo: now - 1 } : { kind: 'none' };
  for (let e = best + 1; e <= now - 1; e++) {
    if (!all.some((c) => attestsNoWrite(c, oid, e, h))) return { kind: 'unavailable', best, gapFrom: e, gapTo: now - 1 };
  }
  // Among the copies current through `best` (same acknowledged content), take the newest version.
  let pick = -1;
  for (let i = 0; i < all.length; i++) {
    const v = all[i]?.ver;
    if (!v || through[i] !== best) continue;
    const cur = pick >= 0 ? all[pick]?.ver : null;
    if (!cur || compareVersion(v, cur) > 0) pick = i;
  }
  if (pick === 0 || (pick > 0 && mine.ver && compareVersion(mine.ver, all[pick]!.ver!) === 0 && ownThrough === best)) {
    return { kind: 'keep', mark: true };
  }
  const src = all[pick];
  if (!src?.ver) return { kind: 'none' };
  const verify = mine.ver !== null && compareVersion(mine.ver, src.ver) === 0;
  return { kind: 'fetch', from: src.node, ver: { ...src.ver }, verify };
}

/** Wire form of a node's version list: header {u32 purgeEpoch, u32 count, 8 reserved}, then entries. */
export const VERSIONS_HEADER = 16;
/** Entry: {u64 oid, u32 epoch, u32 gen, u32 current, u32 reserved}. */
export const VERSIONS_ENTRY = 24;

export interface VersionList {
  purgeEpoch: number;
  entries: Map<bigint, ObjVersion>;
}

export function encodeVersionList(purgeEpoch: number, entries: Iterable<[bigint, ObjVersion]>): Buffer {
  const list = [...entries];
  const b = Buffer.alloc(VERSIONS_HEADER + VERSIONS_ENTRY * list.length);
  b.writeUInt32LE(purgeEpoch >>> 0, 0);
  b.writeUInt32LE(list.length, 4);
  list.forEach(([oid, v], i) => {
    const o = VERSIONS_HEADER + VERSIONS_ENTRY * i;
    b.writeBigUInt64LE(oid, o);
    b.writeUInt32LE(v.epoch >>> 0, o + 8);
    b.writeUInt32LE(v.gen >>> 0, o + 12);
    b.writeUInt32LE(v.current >>> 0, o + 16);
  });
  return b;
}

/** Decode a version list; null when the bytes are too short for the count they announce. */
export function decodeVersionList(b: Buffer): VersionList | null {
  if (b.length < VERSIONS_HEADER) return null;
  const count = b.readUInt32LE(4);
  if (b.length < VERSIONS_HEADER + VERSIONS_ENTRY * count) return null;
  const entries = new Map<bigint, ObjVersion>();
  for (let i = 0; i < count; i++) {
    const o = VERSIONS_HEADER + VERSIONS_ENTRY * i;
    entries.set(b.readBigUInt64LE(o), { epoch: b.readUInt32LE(o + 8), gen: b.readUInt32LE(o + 12), current: b.readUInt32LE(o + 16) });
  }
  return { purgeEpoch: b.readUInt32LE(0), entries };
}
