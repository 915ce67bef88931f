// The `NAME=VDI[:TAG]` export kind: opens a VdiDevice through the sheep gateways given by `--sheep
// HOST:PORT[,HOST:PORT...]` (failover in that order). A working VDI is locked for the life of the export:
// exclusively, or with `,shared` a SHARED lock (multipath: inode coherence between target hosts);
// `VDI:TAG` opens that snapshot read-only without a lock. The client announces the target id (HELLO), so the
// lock is this target's wherever its gateway is, and a restart with the same id takes it back (docs/fencing.md
// §3); on sheep without HELLO a restarted shared export reclaims its gateway participant (lock-reclaim.ts).
import type { BlockDevice } from '../block/device.js';
import { VdiDevice } from '../block/vdi.js';
import { parseGatewayList } from '../client/address.js';
import { helloFor } from '../client/hello.js';
import { componentLogger } from '../obs/log.js';
import type { ExportSpec, OpenContext } from './export-spec.js';
import { reclaimSharedParticipant } from './lock-reclaim.js';

/** Write fence of shared (multipath) exports, below the initiators' path-failure times (docs/fencing.md). */
export const SHARED_WRITE_FENCE_MS = 15_000;

/** Open a VDI export (the opener registered for kind 'vdi'). */
export async function openVdiExport(spec: Extract<ExportSpec, { kind: 'vdi' }>, ctx: OpenContext): Promise<BlockDevice> {
  if (ctx.sheep === undefined) throw new Error(`export '${spec.name}': VDI exports need --sheep`);
  const gateways = parseGatewayList(ctx.sheep);
  const log = componentLogger('vdi', { export: spec.name });
  const hello = ctx.targetId !== undefined ? helloFor(ctx.targetId) : undefined;
  const open = (): Promise<VdiDevice> =>
    VdiDevice.open({
      gateways,
      vdi: spec.vdi,
      ...(spec.tag !== undefined ? { tag: spec.tag } : {}),
      readOnly: spec.readOnly,
      shared: spec.shared === true,
      ...(hello ? { hello } : {}),
      ...(spec.shared === true ? { writeFenceMs: SHARED_WRITE_FENCE_MS } : {}),
      name: spec.name,
      logger: log,
    });
  try {
    return await open();
  } catch (err) {
    const locked = err instanceof Error && /already locked/i.test(err.message);
    if (!locked) throw err;
    if (spec.shared !== true || spec.tag !== undefined) throw lockedHint(err, spec.vdi, ctx.targetId);
    if (!(await reclaimSharedParticipant(gateways, spec.vdi, log, hello))) throw lockedHint(err, spec.vdi, ctx.targetId);
    return open();
  }
}

/** A VDI_LOCKED failure with what the operator can do about it (docs/fencing.md §3). */
function lockedHint(err: Error, vdi: string, targetId: string | undefined): Error {
  const self = targetId !== undefined ? ` (this target's id is '${targetId}')` : '';
  return new Error(
    `${err.message}: another holder has it${self}; see 'dog vdi lock list'. If that holder is gone for good, ` +
      `'dog vdi lock unlock ${vdi}' checks the replicas and releases it; a restarted target takes its own lock back ` +
      `when started with the same --target-id.`,
    { cause: err },
  );
}
