// `dog cluster format|info|shutdown` (fact sheet §2.5, §10.4). format: node list, a CLUSTER_INFO per node,
// READ_VDIS (a cluster with VDIs is formatted only after dog's question is answered "yes" on stdin, or with -f),
// MAKE_FS with the flags; locking is ON by default here (`-l` accepted, `--no-lock` turns it off); `-R` is
// refused (VDI ids are never recycled). info: STAT_CLUSTER with the epoch history, doubling nodes_nr on
// BUFFER_SMALL.
import * as C from '../proto/sheepdog/constants.js';
import { nodeAddr, resultMessage, resultName, sdTimestampSeconds } from '../proto/sheepdog/index.js';
import { nowTimestamp } from '../client/index.js';
import { DogError, EXIT_USAGE, type DogContext } from './context.js';
import { ctimeText, dateSeconds, redundancy } from './format.js';

export interface FormatOptions {
  copies?: string;
  blockSizeShift?: string;
  lock?: boolean;
  strict?: boolean;
  recycleVid?: boolean;
  fixedVnodes?: boolean;
  avoidDiskfull?: boolean;
  force?: boolean;
  store?: string;
}

/** Parse `-c N` or `-c D:P` into (copies, copy_policy). */
export function parseCopies(text: string): { copies: number; copyPolicy: number } {
  const ec = /^(\d+):(\d+)$/.exec(text);
  if (ec) {
    const d = Number(ec[1]);
    const p = Number(ec[2]);
    if (![2, 4, 8, 16].includes(d) || p < 1 || p > 15) throw new DogError(`invalid redundancy '${text}': D must be 2, 4, 8 or 16 and P 1..15`, EXIT_USAGE);
    return { copies: d + p, copyPolicy: ((d / 2) << 4) | p };
  }
  if (!/^\d+$/.test(text)) throw new DogError(`invalid number of copies '${text}'`, EXIT_USAGE);
  const n = Number(text);
  if (n < 1 || n > C.SD_MAX_COPIES) throw new DogError(`number of copies must be 1..${C.SD_MAX_COPIES} (got ${n})`, EXIT_USAGE);
  return { copies: n, copyPolicy: 0 };
}

/** Parse `-z SHIFT` (20..31). */
export function parseShift(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < C.SD_MIN_BLOCK_SIZE_SHIFT || n > C.SD_MAX_BLOCK_SIZE_SHIFT) {
    throw new DogError(`block_size_shift must be ${C.SD_MIN_BLOCK_SIZE_SHIFT}..${C.SD_MAX_BLOCK_SIZE_SHIFT} (got '${text}')`, EXIT_USAGE);
  }
  return n;
}

/** dog's question before formatting a cluster that has VDIs (dog/cluster.c FORMAT_PRINT), byte for byte. */
export const FORMAT_PRINT =
  "    __\n   ()'`;\n   /\\|`\n  /  |   Caution! The cluster is not empty.\n(/_)_|_  Are you sure you want to continue? [yes/no]: ";

export async function clusterFormat(ctx: DogContext, o: FormatOptions, confirm: (q: string) => Promise<boolean>): Promise<void> {
  if (o.recycleVid === true) {
    // The sheep never reuses the id of a deleted VDI family; taking the flag would promise what it does not do.
    throw new DogError('-R/--recycle-vid is not supported: Sheepfold never recycles VDI ids (see docs/compatibility.md)', EXIT_USAGE);
  }
  const c = ctx.client;
  const red = o.copies !== undefined ? parseCopies(o.copies) : { copies: 0, copyPolicy: 0 };
  const shift = o.blockSizeShift !== undefined ? parseShift(o.blockSizeShift) : 0;
  const { nodes } = await c.getNodeList();
  for (const n of nodes) await c.forNode(n.nid).clusterInfo();
  const inuse = await c.readVdis();
  if (inuse.nextSet(1) !== -1 && o.force !== true) {
    const yes = await confirm(FORMAT_PRINT);
    if (!yes) throw new DogError('the cluster is not empty; not formatting (answer yes, or use -f)');
  }
  let flags = 0;
  if (o.lock !== false) flags |= C.SD_CLUSTER_FLAG_USE_LOCK;
  if (o.strict === true) flags |= C.SD_CLUSTER_FLAG_STRICT;
  if (o.avoidDiskfull === true) flags |= C.SD_CLUSTER_FLAG_AVOID_DISKFULL;
  if (o.fixedVnodes !== true) flags |= C.SD_CLUSTER_FLAG_AUTO_VNODES;
  const store = o.store ?? 'plain';
  const ctime = nowTimestamp();
  if (!ctx.json) ctx.out.write(`using backend ${store} store\n`);
  await c.makeFs({ copies: red.copies, copyPolicy: red.copyPolicy, flags, blockSizeShift: shift, ctime, store });
  if (ctx.json) {
    ctx.output(
      { formatted: true, store, copies: red.copies || C.SD_DEFAULT_COPIES, copyPolicy: red.copyPolicy, blockSizeShift: shift || C.SD_DEFAULT_BLOCK_SIZE_SHIFT, lock: o.lock !== false, flags, ctime },
      '',
    );
  }
}

export async function clusterInfo(ctx: DogContext): Promise<void> {
  const c = ctx.client;
  const { nodes, epoch } = await c.getNodeList();
  const st = await c.statCluster(Math.max(1, nodes.length), Math.max(1, epoch));
  const first = st.logs[0];
  const running = st.status === C.SD_RES_SUCCESS;
  const json = {
    status: running ? 'running' : resultName(st.status).toLowerCase(),
    statusMessage: running ? 'running' : resultMessage(st.status),
    autoRecovery: first ? first.disableRecovery === 0 : true,
    epoch: st.epoch,
    ctime: first?.ctime ?? 0n,
    copies: first?.nrCopies ?? 0,
    copyPolicy: first?.copyPolicy ?? 0,
    flags: first?.flags ?? 0,
    lock: first ? (first.flags & C.SD_CLUSTER_FLAG_USE_LOCK) !== 0 : false,
    store: first?.drvName ?? '',
    epochs: st.logs.map((l) => ({
      epoch: l.epoch,
      time: l.time,
      nodes: l.nodes.map((n) => ({ addr: nodeAddr(n.nid), vnodes: n.nrVnodes, zone: n.zone })),
    })),
  };
  ctx.output(json, () => {
    let s = ctx.raw ? '' : 'Cluster status: ';
    s += running ? `running, auto-recovery ${first && first.disableRecovery !== 0 ? 'disabled' : 'enabled'}\n` : `${resultMessage(st.status)}\n`;
    if (ctx.verbose) {
      if (!ctx.raw) s += 'Cluster store: ';
      s += running && first ? `${first.drvName} with ${redundancy(first.nrCopies, first.copyPolicy)} redundancy policy\n` : `${resultMessage(st.status)}\n`;
      if (running && first) s += `${ctx.raw ? '' : 'Cluster vnodes strategy: '}${first.flags & C.SD_CLUSTER_FLAG_AUTO_VNODES ? 'auto' : 'fixed'}\n`;
      s += `${ctx.raw ? '' : 'Cluster vnode mode: '}node\n`;
    } else s += '\n';
    if (!ctx.raw && st.logs.length > 0 && first) {
      s += `Cluster created at ${ctimeText(sdTimestampSeconds(first.ctime))}\n\n`;
      s += 'Epoch Time           Version [Host:Port:V-Nodes,,,]\n';
    }
    for (const l of st.logs) {
      const t = ctx.raw ? String(l.time) : dateSeconds(Number(l.time));
      s += ctx.raw ? `${t} ${l.epoch}` : `${t} ${String(l.epoch).padStart(6)}`;
      s += ` [${l.nodes.map((n) => `${nodeAddr(n.nid)}:${n.nrVnodes}`).join(', ')}]\n`;
    }
    return s;
  });
}

export async function clusterShutdown(ctx: DogContext): Promise<void> {
  await ctx.client.shutdown();
  ctx.output({ shutdown: true }, '');
}
