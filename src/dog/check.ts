// Replica check and repair of one VDI (fact sheet §10.6), used by `dog vdi check` and, before releasing a
// lock, by `dog vdi lock unlock`. For the inode and every data object it references: GET_HASH from each of
// the min(copies, zones) replica nodes the ring picks, a Boyer–Moore majority over the copies found, then
// REPAIR_REPLICA (pull from the majority node) to each replica that lacks the object or differs. With one
// replica this proves the object exists and is readable in full (the node hashes the whole object).
// Versions first: a copy its sheep does not hold current (recovery has not made it so) does not vote and is
// repaired like a differing one; where the current copies disagree without a majority, the one with the
// newest version (write epoch, then writes in it) wins, and only equal newest versions are left unrepaired.
import * as C from '../proto/sheepdog/constants.js';
import { emptyReqArgs, makeRequest } from '../proto/sheepdog/header.js';
import { Ring, vidToDataOid, vidToVdiOid, countDataObjs, type Inode, type SdNode } from '../proto/sheepdog/index.js';
import { SheepError, type SheepClient } from '../client/index.js';
import { addrToStr, oid16, strnumber } from './format.js';
import { mapWindow } from './vdis.js';

export interface CheckReport {
  name: string;
  objects: number;
  /** oids re-copied over a differing replica */
  fixedReplica: string[];
  /** oids re-created on a replica that lacked them */
  fixedMissing: string[];
  /** oids no replica holds */
  lost: string[];
  /** oids whose replicas disagree with no majority */
  noMajority: string[];
  /** repairs that failed, one line each */
  failed: string[];
}

export interface CheckProgress {
  (doneBytes: number, totalBytes: number): void;
}

const UNREADABLE = 'unreadable';
const DOWN = 'down';

/** One replica's answer: digest (hex) and version, or why it has none. */
export type Found = { digest: string; ver: [number, number] | null } | null | typeof UNREADABLE | typeof DOWN;

/** GET_HASH asking for the copy's version too (12 bytes: epoch, gen, current). */
async function hashAndVersion(client: SheepClient, n: SdNode, oid: bigint, epoch: number): Promise<{ digest: string; ver: [number, number] | null }> {
  const r = await client.forNode(n.nid).call(makeRequest(C.SD_OP_GET_HASH, { ...emptyReqArgs('obj'), oid, tgtEpoch: epoch }, { dataLength: 12 }));
  const a = r.rsp.args;
  const d = r.data;
  return { digest: (a.kind === 'hash' ? a.digest : Buffer.alloc(20)).toString('hex'), ver: d && d.length >= 12 ? [d.readUInt32LE(0), d.readUInt32LE(4)] : null };
}

/** The digest of the single newest version among `found`, or null when the newest is not unique. */
export function newest(found: readonly Found[]): string | null {
  let best: { digest: string; ver: [number, number] } | null = null;
  let tie = false;
  for (const f of found) {
    if (f === null || typeof f === 'string' || !f.ver) continue;
    const cmp = best ? f.ver[0] - best.ver[0] || f.ver[1] - best.ver[1] : 1;
    if (cmp > 0) {
      best = { digest: f.digest, ver: f.ver };
      tie = false;
    } else if (cmp === 0 && f.digest !== best?.digest) tie = true;
  }
  return best && !tie ? best.digest : null;
}

/** Boyer–Moore majority over digests (hex); the winner must hold more than half of the copies found. */
export function majority(digests: readonly string[]): string | null {
  let cand: string | null = null;
  let count = 0;
  for (const d of digests) {
    if (count === 0) {
      cand = d;
      count = 1;
    } else if (d === cand) count++;
    else count--;
  }
  if (cand === null) return null;
  const n = digests.filter((d) => d === cand).length;
  return n * 2 > digests.length ? cand : null;
}

/** Every oid a VDI check covers: the inode, then each referenced data object in index order. */
export function checkedOids(vid: number, inode: Inode): bigint[] {
  const oids = [vidToVdiOid(vid)];
  const n = Math.min(countDataObjs(inode.vdiSize, inode.blockSizeShift || C.SD_DEFAULT_BLOCK_SIZE_SHIFT), C.MAX_DATA_OBJS);
  for (let i = 0; i < n; i++) {
    const v = inode.dataVdiId[i] ?? 0;
    if (v !== 0) oids.push(vidToDataOid(v, i));
  }
  return oids;
}

/** Check (and repair) every replica of the VDI's objects; `log` receives dog's per-object lines. */
export async function checkVdi(
  client: SheepClient,
  vid: number,
  inode: Inode,
  log: (line: string) => void,
  progress?: CheckProgress,
): Promise<CheckReport> {
  const { nodes, epoch } = await client.getNodeList();
  const ring = new Ring(nodes);
  const copies = inode.nrCopies || 1;
  const oids = checkedOids(vid, inode);
  const objSize = 2 ** (inode.blockSizeShift || C.SD_DEFAULT_BLOCK_SIZE_SHIFT);
  const total = (oids.length - 1) * objSize;
  let done = 0;
  const report: CheckReport = { name: inode.name, objects: oids.length, fixedReplica: [], fixedMissing: [], lost: [], noMajority: [], failed: [] };
  progress?.(0, total);
  await mapWindow(oids, 8, async (oid) => {
    const replicas: SdNode[] = ring.oidToNodes(oid, copies);
    // Per replica: its digest; null when it lacks the object; UNREADABLE when it cannot read its copy (EIO: a
    // corrupt copy, which does not vote and is repaired like a differing one); DOWN when the node cannot be
    // reached (reported; nothing can be done there).
    // A copy its sheep does not hold current (NODE_IN_RECOVERY) counts as UNREADABLE: no vote, repaired.
    const answers = await Promise.all(
      replicas.map(async (n): Promise<Found> => {
        try {
          return await hashAndVersion(client, n, oid, epoch);
        } catch (err) {
          if (err instanceof SheepError) return err.result === C.SD_RES_NO_OBJ ? null : UNREADABLE;
          const line = `cannot reach ${addrToStr(n.nid)} for ${oid16(oid)}: ${err instanceof Error ? err.message : String(err)}`;
          report.failed.push(line);
          log(line);
          return DOWN;
        }
      }),
    );
    const found = answers.map((a) => (a !== null && typeof a === 'object' ? a.digest : a));
    const present = found.filter((d): d is string => d !== null && d !== UNREADABLE && d !== DOWN);
    const winner = majority(present) ?? newest(answers);
    if (winner === null) {
      if (present.length === 0) {
        report.lost.push(oid16(oid));
        log(`no node has ${oid16(oid)}`);
      } else {
        report.noMajority.push(oid16(oid));
        log(`no majority of ${oid16(oid)}`);
      }
    } else {
      const src = replicas[found.indexOf(winner)] as SdNode;
      for (let i = 0; i < replicas.length; i++) {
        if (found[i] === winner || found[i] === DOWN) continue;
        const dst = replicas[i] as SdNode;
        try {
          await client.forNode(dst.nid).repairReplica(oid, src.nid);
          if (found[i] === null) {
            report.fixedMissing.push(oid16(oid));
            log(`fixed missing ${oid16(oid)}`);
          } else {
            report.fixedReplica.push(oid16(oid));
            log(`fixed replica ${oid16(oid)}`);
          }
        } catch (err) {
          const line = `failed to repair object ${oid16(oid)} from ${addrToStr(src.nid)} to ${addrToStr(dst.nid)}: ${err instanceof Error ? err.message : String(err)}`;
          report.failed.push(line);
          log(line);
        }
      }
    }
    if ((oid & C.VDI_BIT) === 0n) {
      done += objSize;
      progress?.(done, total);
    }
  });
  return report;
}

/** dog's show_progress line: " 45.0 % [====>     ] 180 MB / 400 MB", padded to the screen width. */
export function progressLine(done: number, total: number, width: number): string {
  const barLength = Math.max(10, width - 30);
  const pct = total === 0 ? 100 : (done / total) * 100;
  let bar = '';
  for (let i = 0; i < barLength; i++) {
    if ((total * (i + 1)) / barLength <= done) bar += '=';
    else if ((total * i) / barLength <= done && done < (total * (i + 1)) / barLength) bar += '>';
    else bar += ' ';
  }
  const line = `${pct.toFixed(1).padStart(5)} % [${bar}] ${strnumber(done)} / ${strnumber(total)}`;
  return line.padEnd(width).slice(0, width);
}

/** One-line summary of a check. */
export function summarize(r: CheckReport): string {
  const bad = r.lost.length + r.noMajority.length + r.failed.length;
  return (
    `${r.name}: checked ${r.objects} object(s), fixed ${r.fixedReplica.length} replica(s), ` +
    `re-created ${r.fixedMissing.length} missing replica(s)` +
    (bad > 0 ? `, ${r.lost.length} lost, ${r.noMajority.length} without majority, ${r.failed.length} failed repair(s)` : ', all consistent')
  );
}
