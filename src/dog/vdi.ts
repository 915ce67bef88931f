// `dog vdi create|list|tree|snapshot|clone|delete|resize|object map|object location|lock list|lock unlock|
// check`: request sequences as fact sheet §2.5 lists them, output in dog/vdi.c's formats.
import * as C from '../proto/sheepdog/constants.js';
import {
  Ring,
  countDataObjs,
  dataVidOffset,
  encodeIndexRange,
  fixedString,
  nodeIdToStr,
  sdTimestampSeconds,
  vidToDataOid,
  vidToVdiOid,
  type InodeHeader,
} from '../proto/sheepdog/index.js';
import { SheepError, describeVdi, lockStateText, type VdiSelector } from '../client/index.js';
import { breakLock, targetLocks } from '../client/hello.js';
import { isTargetNodeId } from '../proto/sheepdog/target-id.js';
import type { NodeId } from '../proto/sheepdog/node.js';
import { parseSize } from '../util/size.js';
import { checkVdi, progressLine, summarize } from './check.js';
import { parseCopies, parseShift } from './cluster.js';
import { DogError, EXIT_FAILURE, EXIT_USAGE, type DogContext } from './context.js';
import { addrToStr, dateMinutes, lpad, oid16, redundancy, rpad, strnumber } from './format.js';
import { inodeStat, isClone, listVdis, mapWindow, openVdi, snapshotSelector, type VdiEntry } from './vdis.js';

/** Parse a SIZE argument ("10G", "512M", "4096"). */
export function parseSizeArg(text: string, what = 'size'): bigint {
  try {
    return BigInt(parseSize(text));
  } catch (err) {
    throw new DogError(err instanceof Error ? err.message.replace(/^invalid size/, `invalid ${what}`) : String(err), EXIT_USAGE);
  }
}

/** Largest VDI with a flat index: object_size * 2^20. */
function maxVdiSize(shift: number): bigint {
  return (1n << BigInt(shift)) * BigInt(C.MAX_DATA_OBJS);
}

export interface CreateOptions {
  copies?: string;
  blockSizeShift?: string;
  prealloc?: boolean;
}

export async function vdiCreate(ctx: DogContext, name: string, sizeText: string, o: CreateOptions): Promise<void> {
  const c = ctx.client;
  const size = parseSizeArg(sizeText);
  if (size === 0n) throw new DogError('Please specify a VDI size larger than 0', EXIT_USAGE);
  const red = o.copies !== undefined ? parseCopies(o.copies) : { copies: 0, copyPolicy: 0 };
  let shift = o.blockSizeShift !== undefined ? parseShift(o.blockSizeShift) : 0;
  if (shift === 0) {
    const ci = await c.clusterInfo();
    if (ci.ctime === 0n) throw new DogError(`Failed to create VDI ${name}: ${new SheepError(0, C.SD_RES_WAIT_FOR_FORMAT).resultMessage}`, EXIT_FAILURE);
    shift = ci.blockSizeShift || C.SD_DEFAULT_BLOCK_SIZE_SHIFT;
  }
  if (size > maxVdiSize(shift)) throw new DogError(`VDI size is larger than ${maxVdiSize(shift)} bytes (hyper volumes are not supported)`, EXIT_USAGE);
  const info = await c.newVdi({ name, size, copies: red.copies, copyPolicy: red.copyPolicy, blockSizeShift: o.blockSizeShift !== undefined ? shift : 0 });
  if (o.prealloc === true) {
    const n = countDataObjs(size, info.blockSizeShift || shift);
    await mapWindow([...Array(n).keys()], 16, async (idx) => {
      await c.createAndWriteObj(vidToDataOid(info.vid, idx), Buffer.alloc(0), { flags: C.SD_FLAG_CMD_DIRECT });
      const entry = Buffer.alloc(4);
      entry.writeUInt32LE(info.vid);
      await c.writeObj(vidToVdiOid(info.vid), entry, { offset: dataVidOffset(idx) });
    });
  }
  ctx.output({ name, vid: info.vid, size, copies: info.copies, blockSizeShift: info.blockSizeShift, preallocated: o.prealloc === true }, () =>
    ctx.verbose ? (ctx.raw ? `${info.vid.toString(16)}\n` : `VDI ID of newly created VDI: ${info.vid.toString(16)}\n`) : '',
  );
}

function flagChar(h: InodeHeader): string {
  return h.snapCtime !== 0n ? 's' : isClone(h) ? 'c' : ' ';
}

function listRow(ctx: DogContext, e: VdiEntry): string {
  const h = e.header;
  const osz = 2 ** (h.blockSizeShift || C.SD_DEFAULT_BLOCK_SIZE_SHIFT);
  const st = inodeStat(e.vid, e.index ?? new Uint32Array(0));
  const t = sdTimestampSeconds(h.createTime);
  if (ctx.raw) {
    const esc = h.name.replace(/([\s\\])/g, '\\$1');
    const f = h.snapCtime !== 0n ? 's' : isClone(h) ? 'c' : '=';
    return `${f} ${esc} ${h.snapId} ${h.vdiSize} ${st.mine * osz} ${st.cow * osz} ${t} ${e.vid.toString(16)} ${redundancy(h.nrCopies, h.copyPolicy)} ${h.tag} ${h.blockSizeShift}\n`;
  }
  return (
    `${flagChar(h)} ${lpad(h.name, 8)} ${rpad(h.snapId, 5)} ${rpad(strnumber(h.vdiSize), 7)} ${rpad(strnumber(st.mine * osz), 7)} ` +
    `${rpad(strnumber(st.cow * osz), 7)} ${dateMinutes(t)}  ${rpad(e.vid.toString(16), 7)} ${rpad(redundancy(h.nrCopies, h.copyPolicy), 6)} ` +
    `${rpad(h.tag, 13)} ${rpad(h.blockSizeShift, 3)}\n`
  );
}

export const VDI_LIST_HEADER = '  Name        Id    Size    Used  Shared    Creation time   VDI id  Copies  Tag   Block Size Shift\n';

export async function vdiList(ctx: DogContext, name?: string): Promise<void> {
  const all = await listVdis(ctx.client, true);
  const rows = name === undefined ? all : all.filter((e) => e.header.name === name);
  const json = rows.map((e) => {
    const osz = 2 ** (e.header.blockSizeShift || C.SD_DEFAULT_BLOCK_SIZE_SHIFT);
    const st = inodeStat(e.vid, e.index ?? new Uint32Array(0));
    return {
      name: e.header.name,
      id: e.header.snapId,
      vid: e.vid,
      size: e.header.vdiSize,
      used: st.mine * osz,
      shared: st.cow * osz,
      createTime: sdTimestampSeconds(e.header.createTime),
      copies: e.header.nrCopies,
      copyPolicy: e.header.copyPolicy,
      tag: e.header.tag,
      blockSizeShift: e.header.blockSizeShift,
      snapshot: e.header.snapCtime !== 0n,
      clone: isClone(e.header),
      parentVid: e.header.parentVdiId,
    };
  });
  ctx.output(json, () => (ctx.raw ? '' : VDI_LIST_HEADER) + rows.map((e) => listRow(ctx, e)).join(''));
}

interface TreeNode {
  name: string;
  label: string;
  vid: number;
  pvid: number;
  children: TreeNode[];
}

/** dog's treeview: families by parent vid, drawn with -+- / |- / `- connectors. */
export function renderTree(entries: readonly { name: string; label: string; vid: number; pvid: number }[]): string {
  const root: TreeNode = { name: '', label: '', vid: 0, pvid: 0, children: [] };
  const find = (p: TreeNode, vid: number, name: string): TreeNode | null => {
    for (const ch of p.children) {
      if (ch.vid === vid && ch.name === name) return ch;
      const r = find(ch, vid, name);
      if (r) return r;
    }
    return null;
  };
  for (const e of entries) {
    const node: TreeNode = { ...e, children: [] };
    (find(root, e.pvid, e.name) ?? root).children.push(node);
  }
  const compaction = (p: TreeNode): void => {
    for (const ch of [...p.children]) {
      const np = find(root, ch.pvid, ch.name);
      if (np && np !== p) {
        p.children.splice(p.children.indexOf(ch), 1);
        np.children.push(ch);
      }
      compaction(ch);
    }
  };
  compaction(root);
  const width: number[] = [];
  const more: boolean[] = [];
  let out = '';
  const indent = (level: number, first: boolean, last: boolean): void => {
    if (first) {
      out += last ? '---' : '-+-';
      return;
    }
    for (let lvl = 0; lvl < level - 1; lvl++) out += ' '.repeat((width[lvl] ?? 0) + 1) + (more[lvl + 1] ? '| ' : '  ');
    out += ' '.repeat((width[level - 1] ?? 0) + 1) + (last ? '`-' : '|-');
  };
  const dump = (cur: TreeNode, level: number, first: boolean, last: boolean): void => {
    indent(level, first, last);
    out += cur.label;
    if (cur.children.length === 0) {
      out += '\n';
      return;
    }
    more[level] = !last;
    width[level] = cur.label.length;
    cur.children.forEach((ch, i) => dump(ch, level + 1, i === 0, i === cur.children.length - 1));
  };
  for (const fam of root.children) {
    out += fam.name;
    more[0] = false;
    width[0] = fam.name.length;
    dump(fam, 1, true, true);
  }
  return out;
}

export async function vdiTree(ctx: DogContext): Promise<void> {
  const all = await listVdis(ctx.client, false);
  const entries = all.map((e) => ({
    name: e.header.name,
    label: e.header.snapCtime !== 0n ? `[${dateMinutes(sdTimestampSeconds(e.header.createTime))}]` : '(you are here)',
    vid: e.vid,
    pvid: e.header.parentVdiId,
  }));
  ctx.output(
    all.map((e) => ({ name: e.header.name, vid: e.vid, parentVid: e.header.parentVdiId, snapshot: e.header.snapCtime !== 0n, tag: e.header.tag })),
    () => renderTree(entries),
  );
}

export async function vdiSnapshot(ctx: DogContext, name: string, tag: string | undefined): Promise<void> {
  const c = ctx.client;
  if (tag !== undefined && tag !== '') {
    if (/^\d+$/.test(tag)) throw new DogError(`invalid snapshot tag '${tag}': a tag cannot be a number`, EXIT_USAGE);
    try {
      await c.getVdiInfo(name, { tag });
      throw new DogError(`Failed to create snapshot for ${name}: tag ${tag} is already used`, EXIT_FAILURE);
    } catch (err) {
      if (!(err instanceof SheepError) || (err.result !== C.SD_RES_NO_TAG && err.result !== C.SD_RES_NO_VDI)) throw err;
      if (err.result === C.SD_RES_NO_VDI) throw new DogError(`Failed to open VDI ${name}: ${err.resultMessage}`, EXIT_FAILURE);
    }
  }
  const { vid, inode } = await openVdi(c, name, {}, C.SD_INODE_HEADER_SIZE);
  await c.writeObj(vidToVdiOid(vid), fixedString(tag ?? '', C.SD_MAX_VDI_TAG_LEN), { offset: 256 });
  const info = await c.newVdi({
    name,
    size: inode.vdiSize,
    baseVid: vid,
    snapshot: true,
    copies: inode.nrCopies,
    copyPolicy: inode.copyPolicy,
    storePolicy: inode.storePolicy,
    blockSizeShift: inode.blockSizeShift,
  });
  ctx.output({ name, tag: tag ?? '', snapshotVid: vid, newVid: info.vid }, () =>
    ctx.verbose ? `new VID of original VDI: ${info.vid.toString(16)}, VDI ID of newly created snapshot: ${vid.toString(16)}\n` : '',
  );
}

export async function vdiClone(ctx: DogContext, src: string, dst: string, snap: string | undefined): Promise<void> {
  if (snap === undefined || snap === '') throw new DogError('Only snapshot VDIs can be cloned: please specify the snapshot with -s', EXIT_USAGE);
  const c = ctx.client;
  const sel = snapshotSelector(snap);
  const { vid, inode } = await openVdi(c, src, sel, C.SD_INODE_HEADER_SIZE);
  if (inode.snapCtime === 0n) throw new DogError(`Only snapshot VDIs can be cloned (${describeVdi(src, sel)} is not one)`, EXIT_USAGE);
  const info = await c.newVdi({ name: dst, size: inode.vdiSize, baseVid: vid, copies: inode.nrCopies, copyPolicy: inode.copyPolicy, blockSizeShift: inode.blockSizeShift });
  ctx.output({ name: dst, vid: info.vid, source: src, snapshotVid: vid }, () => (ctx.verbose ? `VDI ID of newly created clone: ${info.vid.toString(16)}\n` : ''));
}

/** dog's delete: zero the non-zero index entries in batches of 128 (releasing the objects), then DEL_VDI. */
async function deleteVdi(c: DogContext['client'], name: string, sel: VdiSelector): Promise<{ vid: number; released: number }> {
  const { vid, inode } = await openVdi(c, name, sel);
  const n = Math.min(countDataObjs(inode.vdiSize, inode.blockSizeShift || C.SD_DEFAULT_BLOCK_SIZE_SHIFT), C.MAX_DATA_OBJS);
  const batches: { start: number; count: number }[] = [];
  for (let i = 0; i < n; i++) {
    if ((inode.dataVdiId[i] ?? 0) === 0) continue;
    let end = i;
    for (let j = i; j < Math.min(i + 128, n); j++) if ((inode.dataVdiId[j] ?? 0) !== 0) end = j;
    batches.push({ start: i, count: end - i + 1 });
    i = end;
  }
  const zeros = new Uint32Array(128);
  for (const b of batches) await c.writeObj(vidToVdiOid(vid), encodeIndexRange(zeros, 0, b.count), { offset: dataVidOffset(b.start) });
  await c.delVdi(name, sel);
  return { vid, released: batches.reduce((a, b) => a + b.count, 0) };
}

export async function vdiDelete(ctx: DogContext, name: string, snap: string | undefined): Promise<void> {
  const r = await deleteVdi(ctx.client, name, snapshotSelector(snap));
  ctx.output({ name, vid: r.vid, deleted: true, objectsReleased: r.released }, '');
}

/** `vdi rollback -s TAG NAME`: replace the working VDI by a fresh one based on the snapshot. */
export async function vdiRollback(ctx: DogContext, name: string, snap: string | undefined, force: boolean, confirm: (q: string) => Promise<boolean>): Promise<void> {
  if (snap === undefined || snap === '') throw new DogError('Please specify the snapshot to roll back to (-s)', EXIT_USAGE);
  const c = ctx.client;
  const sel = snapshotSelector(snap);
  const { vid: snapVid, inode } = await openVdi(c, name, sel, C.SD_INODE_HEADER_SIZE);
  if (inode.snapCtime === 0n) throw new DogError(`${describeVdi(name, sel)} is not a snapshot`, EXIT_USAGE);
  if (!force && !(await confirm('This operation dangerously deletes the current VDI state. Are you sure you want to continue? [yes/no]: '))) {
    throw new DogError(`not rolling back ${name} (use -f to do it without asking)`, EXIT_FAILURE);
  }
  const old = await deleteVdi(c, name, {});
  const info = await c.newVdi({ name, size: inode.vdiSize, baseVid: snapVid, copies: inode.nrCopies, copyPolicy: inode.copyPolicy, blockSizeShift: inode.blockSizeShift });
  ctx.output({ name, snapshotVid: snapVid, oldVid: old.vid, newVid: info.vid }, () => (ctx.verbose ? `New VDI ID of rollbacked VDI: ${info.vid.toString(16)}\n` : ''));
}

export async function vdiResize(ctx: DogContext, name: string, sizeText: string): Promise<void> {
  const c = ctx.client;
  const size = parseSizeArg(sizeText);
  const { vid } = await c.getVdiInfo(name).catch((err: unknown) => {
    if (err instanceof SheepError) throw new DogError(`Failed to open VDI ${name}: ${err.resultMessage}`, EXIT_FAILURE);
    throw err;
  });
  const raw = await c.readObj(vidToVdiOid(vid), C.SD_INODE_HEADER_SIZE);
  const old = raw.readBigUInt64LE(536);
  const shift = raw.readUInt8(555) || C.SD_DEFAULT_BLOCK_SIZE_SHIFT;
  if (size < old) throw new DogError('Shrinking VDIs is not implemented', EXIT_USAGE);
  if (size > maxVdiSize(shift)) throw new DogError(`New VDI size is too large. This volume's max size is ${maxVdiSize(shift)}`, EXIT_USAGE);
  const hdr = Buffer.from(raw);
  hdr.writeBigUInt64LE(size, 536);
  await c.writeObj(vidToVdiOid(vid), hdr, { offset: 0 });
  ctx.output({ name, vid, oldSize: old, size }, '');
}

export async function vdiObjectMap(ctx: DogContext, name: string, snap: string | undefined, index: string | undefined): Promise<void> {
  const { inode } = await openVdi(ctx.client, name, snapshotSelector(snap));
  const n = Math.min(countDataObjs(inode.vdiSize, inode.blockSizeShift || C.SD_DEFAULT_BLOCK_SIZE_SHIFT), C.MAX_DATA_OBJS);
  const rows: { index: number; vid: number }[] = [];
  if (index !== undefined) {
    const i = parseIndex(index);
    rows.push({ index: i, vid: inode.dataVdiId[i] ?? 0 });
  } else for (let i = 0; i < n; i++) if ((inode.dataVdiId[i] ?? 0) !== 0) rows.push({ index: i, vid: inode.dataVdiId[i] ?? 0 });
  ctx.output(rows, () => 'Index       VID\n' + rows.map((r) => `${String(r.index).padStart(8, '0')} ${rpad(r.vid.toString(16), 8)}\n`).join(''));
}

function parseIndex(text: string): number {
  const i = Number(text);
  if (!/^\d+$/.test(text) || i >= C.MAX_DATA_OBJS) throw new DogError(`invalid object index '${text}' (0..${C.MAX_DATA_OBJS - 1})`, EXIT_USAGE);
  return i;
}

export async function vdiObjectLocation(ctx: DogContext, name: string, snap: string | undefined, index: string | undefined): Promise<void> {
  const c = ctx.client;
  const { vid, inode } = await openVdi(c, name, snapshotSelector(snap));
  const { nodes } = await c.getNodeList();
  const ring = new Ring(nodes);
  let oid: bigint;
  let s = '';
  if (index === undefined) {
    oid = vidToVdiOid(vid);
    s += `Looking for the inode object 0x${vid.toString(16)} with ${nodes.length} nodes\n\n`;
  } else {
    const idx = parseIndex(index);
    const owner = inode.dataVdiId[idx] ?? 0;
    if (owner === 0) {
      ctx.output({ name, vid, index: idx, allocated: false }, `The inode object 0x${vid.toString(16)} idx ${idx} is not allocated\n`);
      return;
    }
    oid = vidToDataOid(owner, idx);
    s += `Looking for the object ${oid16(oid)} (vid 0x${vid.toString(16)} idx ${idx}, ${inode.nrCopies} copies) with ${nodes.length} nodes\n\n`;
  }
  const holders: { node: string; zone: number; has: boolean }[] = [];
  for (const n of nodes) {
    const has = await c.forNode(n.nid).exist(oid);
    holders.push({ node: addrToStr(n.nid), zone: n.zone >>> 0, has });
    s += `${addrToStr(n.nid)} ${has ? 'has the object' : "doesn't have the object"}\n`;
  }
  // Zones are failure domains (hosts, with the etcd driver): say how many distinct ones hold a copy.
  const zones = [...new Set(holders.filter((h) => h.has).map((h) => h.zone))];
  s += `\nThe copies are in ${zones.length} zone${zones.length === 1 ? '' : 's'}: ${zones.join(' ')}\n`;
  const copies = inode.nrCopies || 1;
  const expected = ring.oidToNodes(oid, copies).map((n) => addrToStr(n.nid));
  if (nodes.length < copies) {
    s += `\nBecause number of nodes (${nodes.length}) is less than number of copies (${copies}), the object should be located at every nodes.\n`;
  } else s += `\nAccording to sheepdog algorithm, the object should be located at:\n${expected.join(' ')}\n`;
  ctx.output({ name, vid, oid: oid16(oid), nodes: holders, zones, expected }, s);
}

const PARTICIPANT_STATE: Record<number, string> = {
  [C.SHARED_LOCK_STATE_MODIFIED]: 'modified',
  [C.SHARED_LOCK_STATE_SHARED]: 'shared',
  [C.SHARED_LOCK_STATE_INVALIDATED]: 'invalidated',
};

export async function vdiLockList(ctx: DogContext): Promise<void> {
  const c = ctx.client;
  const states = await c.getVdiCopies();
  const byVid = new Map(states.map((s) => [s.vid, s]));
  const vdis = await listVdis(c, false);
  // Holders that are targets (HELLO, docs/fencing.md §3) have synthetic node ids: print their target id.
  const targets = new Map((await targetLocks(c))?.map((t) => [`${t.vid}/${t.nid.addr.toString('hex')}`, t.targetId]) ?? []);
  const holder = (vid: number, nid: NodeId): { text: string; target?: string } => {
    const id = isTargetNodeId(nid) ? targets.get(`${vid}/${nid.addr.toString('hex')}`) : undefined;
    return id !== undefined ? { text: `target:${id}`, target: id } : { text: nodeIdToStr(nid) };
  };
  const locked = vdis.flatMap((e) => {
    const st = byVid.get(e.vid);
    return st === undefined || st.lockState === C.LOCK_STATE_UNLOCKED || st.lockState === C.LOCK_STATE_INIT ? [] : [{ e, st }];
  });
  const json = locked.map(({ e, st }) => ({
    name: e.header.name,
    id: e.header.snapId,
    vid: e.vid,
    tag: e.header.tag,
    state: st.lockState === C.LOCK_STATE_LOCKED ? 'locked' : 'shared',
    owner: st.lockState === C.LOCK_STATE_LOCKED ? holder(e.vid, st.lockOwner).text : null,
    ...(st.lockState === C.LOCK_STATE_LOCKED && holder(e.vid, st.lockOwner).target !== undefined ? { ownerTarget: holder(e.vid, st.lockOwner).target } : {}),
    participants:
      st.lockState === C.LOCK_STATE_SHARED
        ? st.participants.map((p) => {
            const h = holder(e.vid, p.nid);
            return { node: h.text, ...(h.target !== undefined ? { target: h.target } : {}), state: PARTICIPANT_STATE[p.state] ?? `unknown ${p.state}` };
          })
        : [],
  }));
  ctx.output(json, () => {
    let s = '  Name         Id  VDI id  Tag            Owner node(s)\n';
    for (const { e, st } of locked) {
      s += `${flagChar(e.header)} ${lpad(e.header.name, 8)}  ${rpad(e.header.snapId, 5)}  ${rpad(e.vid.toString(16), 6)}  ${lpad(e.header.tag, 13)} `;
      if (st.lockState === C.LOCK_STATE_LOCKED) s += ` ${holder(e.vid, st.lockOwner).text}\n`;
      else s += st.participants.map((p) => ` ${holder(e.vid, p.nid).text}(${PARTICIPANT_STATE[p.state] ?? `UNKNOWN ${p.state}, BUG!`})`).join('') + '\n';
    }
    return s;
  });
}

/** Progress callback drawing dog's bar on a TTY (and nothing otherwise). */
function progressFor(ctx: DogContext): ((done: number, total: number) => void) | undefined {
  if (ctx.json || !ctx.out.isTTY) return undefined;
  const width = process.stdout.columns ?? 80;
  return (done, total) => ctx.out.write(`\r${progressLine(done, total, width)}${done >= total ? '\n' : ''}`);
}

export async function vdiLockUnlock(ctx: DogContext, name: string, snap: string | undefined): Promise<void> {
  const c = ctx.client;
  const sel: VdiSelector = snapshotSelector(snap);
  const { vid, inode } = await openVdi(c, name, sel);
  const st = (await c.getVdiCopies()).find((s) => s.vid === vid);
  const state = st?.lockState ?? C.LOCK_STATE_UNLOCKED;
  if (state !== C.LOCK_STATE_LOCKED && state !== C.LOCK_STATE_SHARED) throw new DogError(`VDI ${describeVdi(name, sel)} is not locked`, EXIT_FAILURE);
  const lines: string[] = [];
  const report = await checkVdi(c, vid, inode, (l) => lines.push(l), progressFor(ctx));
  const type = state === C.LOCK_STATE_LOCKED ? C.LOCK_TYPE_NORMAL : C.LOCK_TYPE_SHARED;
  // A Sheepfold sheep releases every holder at once (targets included, whose writes are then fenced).
  if (!(await breakLock(c, vid))) {
    if (type === C.LOCK_TYPE_NORMAL) await c.releaseVdi(vid, type);
    // Sheep without BREAK_LOCK: a shared participant is a gateway sheep, released only through itself.
    else for (const p of st?.participants ?? []) await c.forNode(p.nid).releaseVdi(vid, type);
  }
  const after = (await c.getVdiCopies()).find((s) => s.vid === vid)?.lockState ?? C.LOCK_STATE_UNLOCKED;
  if (after !== C.LOCK_STATE_UNLOCKED) throw new DogError(`VDI ${describeVdi(name, sel)} is still ${lockStateText(after)} after the release`, EXIT_FAILURE);
  ctx.output({ name, vid, previousState: lockStateText(state), released: true, check: report }, () => lines.map((l) => `${l}\n`).join('') + `${summarize(report)}\nreleased the ${type === C.LOCK_TYPE_NORMAL ? 'lock' : 'shared lock'} on ${describeVdi(name, sel)}\n`);
  if (report.lost.length + report.noMajority.length + report.failed.length > 0) throw new DogError(`${name}: some objects could not be repaired (lock released)`, EXIT_FAILURE);
}

export async function vdiCheck(ctx: DogContext, name: string, snap: string | undefined): Promise<void> {
  const c = ctx.client;
  const sel = snapshotSelector(snap);
  const { vid, inode } = await openVdi(c, name, sel);
  const log = (l: string): void => {
    if (!ctx.json) ctx.out.write(`${ctx.out.isTTY ? '\r' : ''}${l}\n`);
  };
  const report = await checkVdi(c, vid, inode, log, progressFor(ctx));
  ctx.output({ vid, ...report }, `finish check&repair ${name}\n${summarize(report)}\n`);
  if (report.lost.length + report.noMajority.length + report.failed.length > 0) throw new DogError(`${name}: some objects could not be repaired`, EXIT_FAILURE);
}
