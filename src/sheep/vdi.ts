// The VDI namespace of a sheep (fact sheet §4.2, §4.4–4.5, §5.5, §6.5): the in-use and deleted bitmaps, the
// per-VDI state (copies, snapshot, deleted, parent) and the name lookup with linear probing. State changes
// are applied only from ordered cluster ops (applyAdd/applyDelete), so every node holds the same namespace;
// lookups read inode headers through an InodeReader (the gateway), as sheep does.
import {
  SD_INODE_LOOKUP_SIZE,
  SD_NR_VDIS,
  SD_RES_FULL_VDI,
  SD_RES_NO_TAG,
  SD_RES_NO_VDI,
  SD_RES_SUCCESS,
} from '../proto/sheepdog/constants.js';
import { VdiBitmap } from '../proto/sheepdog/bitmap.js';
import { sdHashVdi } from '../proto/sheepdog/hash.js';
import { decodeInodeHeader, type InodeHeader } from '../proto/sheepdog/inode.js';
import type { VdiState } from '../proto/sheepdog/vdi-state.js';
import type { LockTable } from './lock.js';
import { ZERO_NODE_ID } from './lock.js';

export interface VdiRecord {
  vid: number;
  nrCopies: number;
  copyPolicy: number;
  blockSizeShift: number;
  snapshot: boolean;
  deleted: boolean;
  parentVid: number;
}

/** Reads inode bytes (through the gateway, so it works wherever the replicas live). */
export type InodeReader = (vid: number, offset: number, length: number) => Promise<Buffer>;

export interface LookupResult {
  /** SUCCESS, NO_VDI or NO_TAG. */
  result: number;
  vid: number;
  /** Header of the match (SUCCESS only). */
  header: InodeHeader | null;
  /** snap_id a new working VDI of this name gets: the newest match's snap_id + 1, or 1. */
  nextSnapId: number;
}

export class VdiNamespace {
  inUse = new VdiBitmap();
  deleted = new VdiBitmap();
  private readonly records = new Map<number, VdiRecord>();

  get(vid: number): VdiRecord | undefined {
    return this.records.get(vid);
  }

  all(): VdiRecord[] {
    return [...this.records.values()].sort((a, b) => a.vid - b.vid);
  }

  clear(): void {
    this.inUse = new VdiBitmap();
    this.deleted = new VdiBitmap();
    this.records.clear();
  }

  /** The vids to probe for a name, in lookup order (§4.2): the set run from the hash, highest first. */
  private probeOrder(name: string): number[] {
    const left = sdHashVdi(name);
    if (!this.inUse.test(left)) return [];
    const out: number[] = [];
    const right = this.inUse.nextZero(left);
    if (right !== -1) {
      for (let v = right - 1; v >= left; v--) out.push(v);
      return out;
    }
    const wrapRight = this.inUse.nextZero(1);
    const end = wrapRight === -1 ? SD_NR_VDIS : wrapRight;
    for (let v = end - 1; v >= 1; v--) out.push(v);
    for (let v = SD_NR_VDIS - 1; v >= left; v--) out.push(v);
    return out;
  }

  /** Lookup by name, and by tag or snapid for a snapshot (§4.2). */
  async lookup(name: string, tag: string, snapid: number, read: InodeReader): Promise<LookupResult> {
    const wantSnap = tag !== '' || snapid !== 0;
    let nextSnapId = 1;
    let seenName = false;
    for (const vid of this.probeOrder(name)) {
      const hdr = decodeInodeHeader(await read(vid, 0, SD_INODE_LOOKUP_SIZE));
      if (hdr.name === '' || hdr.name !== name) continue;
      if (!seenName) nextSnapId = hdr.snapId + 1;
      seenName = true;
      const isSnap = hdr.snapCtime !== 0n;
      if (!wantSnap) {
        if (isSnap) return { result: SD_RES_NO_VDI, vid: 0, header: null, nextSnapId };
        return { result: SD_RES_SUCCESS, vid, header: hdr, nextSnapId };
      }
      if (!isSnap) continue;
      if ((tag !== '' && hdr.tag === tag) || (snapid !== 0 && hdr.snapId === snapid)) {
        return { result: SD_RES_SUCCESS, vid, header: hdr, nextSnapId };
      }
    }
    return { result: seenName && wantSnap ? SD_RES_NO_TAG : SD_RES_NO_VDI, vid: 0, header: null, nextSnapId };
  }

  /** The vid a new VDI of `name` gets (§4.2 linear probing), or an error code. */
  allocateVid(name: string): { result: number; vid: number } {
    const left = sdHashVdi(name);
    let vid = this.inUse.nextZero(left);
    if (vid === -1) vid = this.inUse.nextZero(1);
    return vid === -1 ? { result: SD_RES_FULL_VDI, vid: 0 } : { result: SD_RES_SUCCESS, vid };
  }

  /** NOTIFY_VDI_ADD / NEW_VDI applied on every node: the new VDI is in use; `oldVid` becomes a snapshot. */
  applyAdd(rec: VdiRecord, oldVid: number): void {
    this.inUse.set(rec.vid);
    this.records.set(rec.vid, { ...rec });
    if (oldVid !== 0) {
      const old = this.records.get(oldVid);
      if (old) old.snapshot = true;
    }
  }

  /** The applied namespace for a compaction snapshot (bitmaps as lists of set vids). */
  exportState(): { records: VdiRecord[]; inUse: number[]; deleted: number[] } {
    return { records: this.all().map((r) => ({ ...r })), inUse: setBits(this.inUse), deleted: setBits(this.deleted) };
  }

  /** Replace the namespace with a snapshot's (exportState's output). */
  importState(s: { records: VdiRecord[]; inUse: number[]; deleted: number[] }): void {
    this.clear();
    for (const v of s.inUse) this.inUse.set(v);
    for (const v of s.deleted) this.deleted.set(v);
    for (const r of s.records) this.records.set(r.vid, { ...r });
  }

  /** DEL_VDI applied on every node. */
  applyDelete(vid: number): void {
    this.deleted.set(vid);
    const r = this.records.get(vid);
    if (r) r.deleted = true;
  }

  /** Rebuild from the inode headers found in the store at startup. */
  rebuild(headers: InodeHeader[]): void {
    this.clear();
    for (const h of headers) {
      if (h.vdiId === 0 || h.vdiId >= SD_NR_VDIS) continue;
      this.inUse.set(h.vdiId);
      if (h.name === '') this.deleted.set(h.vdiId);
      this.records.set(h.vdiId, {
        vid: h.vdiId,
        nrCopies: h.nrCopies,
        copyPolicy: h.copyPolicy,
        blockSizeShift: h.blockSizeShift,
        snapshot: h.snapCtime !== 0n,
        deleted: h.name === '',
        parentVid: h.parentVdiId,
      });
    }
  }

  /** `vid` and every VDI descending from it (snapshots, clones, working VDIs built on it). */
  familyFrom(vid: number): number[] {
    const children = new Map<number, number[]>();
    for (const r of this.records.values()) {
      if (r.parentVid === 0 || r.parentVid === r.vid) continue;
      const list = children.get(r.parentVid) ?? [];
      list.push(r.vid);
      children.set(r.parentVid, list);
    }
    const out: number[] = [];
    const seen = new Set<number>();
    const queue = [vid];
    while (queue.length > 0) {
      const v = queue.shift()!;
      if (seen.has(v)) continue;
      seen.add(v);
      out.push(v);
      for (const c of children.get(v) ?? []) queue.push(c);
    }
    return out;
  }

  /** GET_VDI_COPIES entries (§6.5), sorted by vid, with the lock state of each. */
  states(locks: LockTable): VdiState[] {
    return this.all().map((r) => {
      const l = locks.get(r.vid);
      return {
        vid: r.vid,
        nrCopies: r.nrCopies,
        snapshot: r.snapshot,
        deleted: r.deleted,
        copyPolicy: r.copyPolicy,
        blockSizeShift: r.blockSizeShift,
        parentVid: r.parentVid,
        lockState: l.state,
        lockOwner: l.owner ?? ZERO_NODE_ID,
        participants: l.participants,
      };
    });
  }
}

/** The vids set in a bitmap, ascending (a namespace holds few of the 2^24). */
function setBits(b: VdiBitmap): number[] {
  const out: number[] = [];
  b.bytes.forEach((byte, i) => {
    if (byte === 0) return;
    for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) out.push(i * 8 + bit);
  });
  return out;
}
