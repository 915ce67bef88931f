// Walking the VDIs of a cluster as dog's parse_vdi does (fact sheet §2.5 `vdi list`): READ_VDIS and
// READ_DEL_VDIS, then for each vid in use and not deleted read the inode header (skipping cleared names) and,
// when asked, the index area for the Used/Shared columns. Reads are pipelined with a bounded window.
import * as C from '../proto/sheepdog/constants.js';
import { countDataObjs, decodeInodeHeader, vidToVdiOid, type Inode, type InodeHeader } from '../proto/sheepdog/index.js';
import type { SheepClient } from '../client/index.js';
import { SheepError, describeVdi, type VdiSelector } from '../client/index.js';
import { DogError, EXIT_FAILURE, EXIT_MISSING } from './context.js';

export interface VdiEntry {
  vid: number;
  header: InodeHeader;
  /** data_vdi_id[0 .. count_data_objs) when the index was read. */
  index: Uint32Array | null;
}

/** Run `fn` over items with at most `width` promises pending; results in input order. */
export async function mapWindow<T, R>(items: readonly T[], width: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}

/** Every live VDI (working VDIs, snapshots, clones) in vid order. */
export async function listVdis(client: SheepClient, withIndex: boolean): Promise<VdiEntry[]> {
  const [inuse, deleted] = await Promise.all([client.readVdis(), client.readDelVdis()]);
  const vids = [...inuse.setBits()].filter((v) => !deleted.test(v));
  const entries = await mapWindow(vids, 16, async (vid): Promise<VdiEntry | null> => {
    let head: Buffer;
    try {
      head = await client.readObj(vidToVdiOid(vid), C.SD_INODE_HEADER_SIZE);
    } catch (err) {
      if (err instanceof SheepError && err.result === C.SD_RES_NO_OBJ) return null;
      throw err;
    }
    const header = decodeInodeHeader(head);
    if (header.name === '') return null;
    let index: Uint32Array | null = null;
    if (withIndex) {
      const n = countDataObjs(header.vdiSize, header.blockSizeShift || C.SD_DEFAULT_BLOCK_SIZE_SHIFT);
      index = new Uint32Array(n);
      if (n > 0 && header.storePolicy === C.STORE_POLICY_FLAT) {
        const raw = await client.readObj(vidToVdiOid(vid), 4 * Math.min(n, C.MAX_DATA_OBJS), { offset: C.SD_INODE_HEADER_SIZE });
        for (let i = 0; i < index.length && 4 * i + 4 <= raw.length; i++) index[i] = raw.readUInt32LE(4 * i);
      }
    }
    return { vid, header, index };
  });
  return entries.filter((e): e is VdiEntry => e !== null);
}

/** (my objects, objects shared with ancestors) of an index, as sd_inode_stat. */
export function inodeStat(vid: number, index: Uint32Array): { mine: number; cow: number } {
  let mine = 0;
  let cow = 0;
  for (const v of index) {
    if (v === vid) mine++;
    else if (v !== 0) cow++;
  }
  return { mine, cow };
}

/** A clone is a fresh name (snap_id 1) whose parent is a snapshot. */
export function isClone(h: Pick<InodeHeader, 'snapId' | 'parentVdiId'>): boolean {
  return h.snapId === 1 && h.parentVdiId !== 0;
}

/** Parse `-s` (a tag, or a number = snapid) into a selector, as dog does. */
export function snapshotSelector(s: string | undefined): VdiSelector {
  if (s === undefined || s === '') return {};
  if (/^\d+$/.test(s)) return { snapid: Number(s) };
  return { tag: s };
}

/** Resolve a VDI (or snapshot) and read its inode; dog's read_vdi_obj with its messages. */
export async function openVdi(client: SheepClient, name: string, sel: VdiSelector, length: number = C.SD_INODE_SIZE): Promise<{ vid: number; inode: Inode }> {
  let vid: number;
  try {
    vid = (await client.getVdiInfo(name, sel)).vid;
  } catch (err) {
    if (err instanceof SheepError) {
      const missing = err.result === C.SD_RES_NO_VDI || err.result === C.SD_RES_NO_TAG;
      throw new DogError(`Failed to open VDI ${describeVdi(name, sel)}: ${err.resultMessage}`, missing ? EXIT_MISSING : EXIT_FAILURE, { cause: err });
    }
    throw err;
  }
  try {
    return { vid, inode: await client.readInode(vid, length) };
  } catch (err) {
    if (err instanceof SheepError) {
      throw new DogError(`Failed to read the inode of ${describeVdi(name, sel)}: ${err.resultMessage}`, EXIT_FAILURE, { cause: err });
    }
    throw err;
  }
}
