// `dog node recovery`, `dog node kill N` and `dog cluster check` (fact sheet §2.4 STAT_RECOVERY, KILL_NODE,
// §10.6). recovery: STAT_RECOVERY from every node, dog's "Nodes In Recovery" table with a progress bar per
// node (`--json`: every node with its counters). kill: KILL_NODE to the node with that index in the node
// list. cluster check: `vdi check` over every working VDI and snapshot, one summary line each.
import * as C from '../proto/sheepdog/constants.js';
import { decodeRecoveryState, emptyReqArgs, encodeRecoveryThrottling, makeRequest } from '../proto/sheepdog/index.js';
import { checkVdi, progressLine, summarize } from './check.js';
import { DogError, EXIT_FAILURE, EXIT_USAGE, type DogContext } from './context.js';
import { addrToStr, lpad, rpad } from './format.js';
import { listVdis } from './vdis.js';

const STATE_TEXT = ['preparing', 'recovering', 'notifying'];

interface RecoveryRow {
  id: number;
  addr: string;
  vnodes: number;
  zone: number;
  inRecovery: boolean;
  state: number;
  stateText: string;
  finished: bigint;
  total: bigint;
}

export interface RecoveryOptions {
  /** Objects recovered in parallel per node (0 = the default). */
  maxExecCount?: string;
  /** Pause between two recovered objects, ms. */
  queueWorkInterval?: string;
}

export async function nodeRecovery(ctx: DogContext, o: RecoveryOptions = {}): Promise<void> {
  const { nodes } = await ctx.client.getNodeList();
  if (o.maxExecCount !== undefined || o.queueWorkInterval !== undefined) {
    const num = (t: string | undefined, what: string): number => {
      if (t === undefined) return 0;
      if (!/^\d+$/.test(t)) throw new DogError(`invalid ${what} '${t}'`, EXIT_USAGE);
      return Number(t);
    };
    const maxExecCount = num(o.maxExecCount, 'max-exec-count');
    const interval = num(o.queueWorkInterval, 'queue-work-interval');
    const payload = encodeRecoveryThrottling({ maxExecCount, queueWorkIntervalMs: BigInt(interval), throttling: maxExecCount > 0 || interval > 0 });
    // SET_RECOVERY (§2.4) on every node: the throttle is per node.
    for (const n of nodes) {
      await ctx.client
        .forNode(n.nid)
        .call(makeRequest(C.SD_OP_SET_RECOVERY, emptyReqArgs('obj'), { flags: C.SD_FLAG_CMD_WRITE, dataLength: payload.length }), { payload });
    }
  }
  const rows: RecoveryRow[] = [];
  for (const [i, n] of nodes.entries()) {
    const r = await ctx.client
      .forNode(n.nid)
      .call(makeRequest(C.SD_OP_STAT_RECOVERY, emptyReqArgs('obj'), { dataLength: C.SD_RECOVERY_STATE_SIZE }));
    const st = decodeRecoveryState(r.data ?? Buffer.alloc(C.SD_RECOVERY_STATE_SIZE));
    rows.push({
      id: i,
      addr: addrToStr(n.nid),
      vnodes: n.nrVnodes,
      zone: n.zone >>> 0,
      inRecovery: st.inRecovery,
      state: st.state,
      stateText: st.inRecovery ? (STATE_TEXT[st.state] ?? String(st.state)) : 'done',
      finished: st.nrFinished,
      total: st.nrTotal,
    });
  }
  ctx.output({ nodes: rows }, () => {
    const busy = rows.filter((r) => r.inRecovery);
    if (busy.length === 0) return ctx.raw ? '' : 'No node is in recovery\n';
    let s = ctx.raw ? '' : 'Nodes In Recovery:\n  Id   Host:Port         V-Nodes       Zone       Progress\n';
    const width = Math.max(40, Math.min(process.stdout.columns ?? 100, 120) - 60);
    for (const r of busy) {
      const total = Number(r.total);
      const done = Number(r.finished);
      const bar = r.state === 0 ? 'preparing the object list' : progressLine(done, total, width).replace(/ [0-9.]+ [A-Z]?B \/ .*$/, ` ${done}/${total}`);
      s += ctx.raw
        ? `${r.id} ${r.addr} ${r.vnodes} ${r.zone} ${r.state} ${done} ${total}\n`
        : `${rpad(r.id, 4)}   ${lpad(r.addr, 20)}\t${rpad(r.vnodes, 2)}${rpad(r.zone, 11)}   ${bar.trimEnd()}\n`;
    }
    return s;
  });
}

export async function nodeKill(ctx: DogContext, index: string): Promise<void> {
  if (!/^\d+$/.test(index)) throw new DogError(`invalid node id '${index}'`, EXIT_USAGE);
  const { nodes } = await ctx.client.getNodeList();
  const n = nodes[Number(index)];
  if (!n) throw new DogError(`invalid node id ${index} (the cluster has ${nodes.length} nodes)`, EXIT_USAGE);
  await ctx.client.forNode(n.nid).call(makeRequest(C.SD_OP_KILL_NODE, emptyReqArgs('obj')));
  ctx.output({ killed: addrToStr(n.nid), id: Number(index) }, '');
}

export async function clusterCheck(ctx: DogContext): Promise<void> {
  const c = ctx.client;
  const vdis = await listVdis(c, false);
  const reports = [];
  let bad = 0;
  for (const v of vdis) {
    const inode = await c.readInode(v.vid);
    const lines: string[] = [];
    const progress =
      ctx.json || !ctx.out.isTTY ? undefined : (done: number, total: number) => ctx.out.write(`\r${progressLine(done, total, process.stdout.columns ?? 80)}${done >= total ? '\n' : ''}`);
    const report = await checkVdi(c, v.vid, inode, (l) => lines.push(l), progress);
    bad += report.lost.length + report.noMajority.length + report.failed.length;
    reports.push({ vid: v.vid, ...report });
    if (!ctx.json) ctx.out.write(`${lines.map((l) => `${l}\n`).join('')}finish check&repair ${report.name}\n${summarize(report)}\n`);
  }
  if (ctx.json) ctx.output({ vdis: reports }, '');
  if (bad > 0) throw new DogError(`${bad} object(s) could not be repaired`, EXIT_FAILURE);
}
