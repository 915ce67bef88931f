// `dog node recovery [info|set-throttle|get-throttle]`, `dog node kill N` and `dog cluster check` (fact sheet
// §2.4 STAT_RECOVERY, GET/SET_RECOVERY, KILL_NODE, §10.6). recovery: STAT_RECOVERY from every node, dog's
// "Nodes In Recovery" table exactly as dog prints it (`--json`: every node with its counters; `-P`: a progress
// bar for the addressed node until its recovery ends). kill: KILL_NODE to the node with that index in the node
// list. cluster check: `vdi check` over every working VDI and snapshot, one summary line each.
import * as C from '../proto/sheepdog/constants.js';
import {
  decodeRecoveryState,
  decodeRecoveryThrottling,
  emptyReqArgs,
  encodeRecoveryThrottling,
  makeRequest,
  type NodeId,
  type RecoveryState,
  type RecoveryThrottling,
} from '../proto/sheepdog/index.js';
import { checkVdi, progressLine, summarize } from './check.js';
import { DogError, EXIT_FAILURE, EXIT_SYSFAIL, EXIT_USAGE, describeFailure, type DogContext } from './context.js';
import { addrToStr, lpad, rpad } from './format.js';
import { listVdis } from './vdis.js';

const STATE_TEXT = ['preparing', 'recovering', 'notifying'];
/** recovery_state.state values (sheep's enum rw_state). */
const RW_PREPARE_LIST = 0;
const RW_RECOVER_OBJ = 1;
const RW_NOTIFY_COMPLETION = 2;

export interface RecoveryRow {
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
  /** -P: follow the recovery of the addressed node with a progress bar until it ends. */
  progress?: boolean;
}

/** The two header lines dog prints before the rows, also when no node is in recovery (Sheepdog's test
 * helper waits for recovery by counting exactly these two lines). */
export const RECOVERY_HEADER = 'Nodes In Recovery:\n  Id   Host:Port         V-Nodes       Zone       Progress\n';

/** dog's node recovery table: the header, then one row per node in recovery in dog's printf format
 * ("%4d   %-20s%5d%11d%11.1f%%"); raw: no header, "id addr vnodes zone finished total". */
export function renderRecovery(rows: readonly RecoveryRow[], raw: boolean): string {
  let s = raw ? '' : RECOVERY_HEADER;
  for (const r of rows) {
    if (!r.inRecovery) continue;
    const zone = r.zone | 0;
    if (raw) {
      s += `${r.id} ${r.addr} ${r.vnodes} ${zone} ${r.finished} ${r.total}\n`;
      continue;
    }
    // dog divides by nr_total as a float; a node still listing its objects has no total yet and shows 0.0
    // here instead of C's "nan".
    const pct = r.total === 0n ? 0 : (100 * Number(r.finished)) / Number(r.total);
    s += `${rpad(r.id, 4)}   ${lpad(r.addr, 20)}${rpad(r.vnodes, 5)}${rpad(zone, 11)}${rpad(pct.toFixed(1), 11)}%\n`;
  }
  return s;
}

async function statRecovery(ctx: DogContext, nid?: NodeId): Promise<RecoveryState> {
  const req = makeRequest(C.SD_OP_STAT_RECOVERY, emptyReqArgs('obj'), { dataLength: C.SD_RECOVERY_STATE_SIZE });
  const r = await (nid ? ctx.client.forNode(nid) : ctx.client).call(req);
  return decodeRecoveryState(r.data ?? Buffer.alloc(C.SD_RECOVERY_STATE_SIZE));
}

export async function nodeRecovery(ctx: DogContext, o: RecoveryOptions = {}, sleep: (ms: number) => Promise<void> = defaultSleep): Promise<void> {
  if (o.progress === true) return recoveryProgress(ctx, sleep);
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
    const st = await statRecovery(ctx, n.nid);
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
  ctx.output({ nodes: rows }, () => renderRecovery(rows, ctx.raw));
}

const defaultSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** dog node recovery -P: poll the addressed node once a second and draw its progress until its recovery ends
 * (nothing at all when it is not recovering); the bar only on a terminal, as dog's show_progress. */
async function recoveryProgress(ctx: DogContext, sleep: (ms: number) => Promise<void>): Promise<void> {
  let st = await statRecovery(ctx);
  if (!st.inRecovery) {
    if (ctx.json) ctx.output({ inRecovery: false }, '');
    return;
  }
  const width = (): number => process.stdout.columns ?? 80;
  const bar = (done: bigint, total: bigint): void => {
    if (!ctx.out.isTTY || ctx.json) return;
    ctx.out.write(`\r${progressLine(Number(done), Number(total), width())}${done === total ? '\n' : ''}`);
  };
  for (;;) {
    const prevTotal = st.nrTotal;
    st = await statRecovery(ctx);
    if (!st.inRecovery) {
      bar(prevTotal, prevTotal);
      break;
    }
    if (st.state === RW_PREPARE_LIST) {
      if (!ctx.json) ctx.out.write('\rpreparing a checked object list...');
    } else if (st.state === RW_NOTIFY_COMPLETION) {
      if (!ctx.json) ctx.out.write('\rnotifying a completion of recovery...');
    } else if (st.state === RW_RECOVER_OBJ) bar(st.nrFinished, st.nrTotal);
    else throw new DogError(`unknown state of recovery: ${st.state}`, EXIT_SYSFAIL);
    await sleep(1000);
  }
  if (ctx.json) ctx.output({ inRecovery: false }, '');
}

/** Parse a C integer as strtol/strtoll would accept it whole (optional blanks and sign, decimal digits). */
function cInteger(text: string | undefined): bigint | null {
  if (text === undefined || !/^\s*[+-]?\d+$/.test(text)) return null;
  return BigInt(text.trim());
}

const U32_MAX = 0xffffffffn;
const LONG_LONG_MAX = 0x7fffffffffffffffn;

/** `dog node recovery set-throttle <max> <interval>` with dog's checks and messages: both zero (no throttle)
 * or both non-zero; max fits 32 bits, interval is a non-negative 64-bit signed value. SET_RECOVERY goes to
 * the addressed node only, as in Sheepdog (the throttle is per node). */
export async function recoverySetThrottle(ctx: DogContext, maxText: string | undefined, intervalText: string | undefined): Promise<void> {
  if (maxText === undefined || intervalText === undefined) {
    throw new DogError(`Invalid interval max (${maxText ?? '(null)'}), interval (${intervalText ?? '(null)'})`, EXIT_USAGE);
  }
  const max = cInteger(maxText);
  // strtol clamps an overflow to LONG_MIN/MAX with ERANGE; either way dog reports the text as given.
  if (max === null || max < 0n || max > U32_MAX) throw new DogError(`Invalid max (${maxText})`, EXIT_USAGE);
  const interval = cInteger(intervalText);
  if (interval === null || interval < 0n || interval > LONG_LONG_MAX) throw new DogError(`Invalid interval (${intervalText})`, EXIT_USAGE);
  if ((max === 0n) !== (interval === 0n)) throw new DogError(`Invalid interval max (${max}), interval (${interval})`, EXIT_USAGE);
  const payload = encodeRecoveryThrottling({ maxExecCount: Number(max), queueWorkIntervalMs: interval, throttling: max > 0n });
  try {
    await ctx.client.call(makeRequest(C.SD_OP_SET_RECOVERY, emptyReqArgs('obj'), { flags: C.SD_FLAG_CMD_WRITE, dataLength: payload.length }), { payload });
  } catch (err) {
    throw new DogError(`Failed to execute request: ${describeFailure(err).message}`, EXIT_FAILURE, { cause: err });
  }
  ctx.output({ maxExecCount: max, queueWorkInterval: interval }, '');
}

/** `dog node recovery get-throttle`: the addressed node's throttle as dog logs it ("max (N), interval (M)" on
 * stderr, as dog's sd_info does); --json on stdout. */
export async function recoveryGetThrottle(ctx: DogContext): Promise<void> {
  let t: RecoveryThrottling;
  try {
    const r = await ctx.client.call(makeRequest(C.SD_OP_GET_RECOVERY, emptyReqArgs('obj'), { dataLength: C.SD_RECOVERY_THROTTLING_SIZE }));
    t = decodeRecoveryThrottling(r.data ?? Buffer.alloc(C.SD_RECOVERY_THROTTLING_SIZE));
  } catch (err) {
    throw new DogError(`Failed to execute request: ${describeFailure(err).message}`, EXIT_FAILURE, { cause: err });
  }
  if (ctx.json) ctx.output({ maxExecCount: t.maxExecCount, queueWorkInterval: t.queueWorkIntervalMs }, '');
  else ctx.err.write(`max (${t.maxExecCount}), interval (${t.queueWorkIntervalMs})\n`);
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
