// The `NAME=VDI[:TAG]` export kind: opens a VdiDevice through the sheep gateways given by `--sheep
// HOST:PORT[,HOST:PORT...]` (failover in that order). A working VDI is locked for the life of the export:
// exclusively, or with `,shared` a SHARED lock (multipath: one target per gateway sheep, inode coherence);
// `VDI:TAG` opens that snapshot read-only without a lock. A shared export restarted on the same gateway after a
// crash takes its own stale participant back (lock-reclaim.ts); its writes are fenced (docs/fencing.md).
import type { BlockDevice } from '../block/device.js';
import { VdiDevice } from '../block/vdi.js';
import { parseGatewayList } from '../client/address.js';
import { componentLogger } from '../obs/log.js';
import type { ExportSpec, OpenContext } from './exports.js';
import { reclaimSharedParticipant } from './lock-reclaim.js';

/** Write fence of shared (multipath) exports, below the initiators' path-failure times (docs/fencing.md). */
export const SHARED_WRITE_FENCE_MS = 15_000;

/** Open a VDI export (the opener registered for kind 'vdi'). */
export async function openVdiExport(spec: Extract<ExportSpec, { kind: 'vdi' }>, ctx: OpenContext): Promise<BlockDevice> {
  if (ctx.sheep === undefined) throw new Error(`export '${spec.name}': VDI exports need --sheep`);
  const gateways = parseGatewayList(ctx.sheep);
  const log = componentLogger('vdi', { export: spec.name });
  const open = (): Promise<VdiDevice> =>
    VdiDevice.open({
      gateways,
      vdi: spec.vdi,
      ...(spec.tag !== undefined ? { tag: spec.tag } : {}),
      readOnly: spec.readOnly,
      shared: spec.shared === true,
      ...(spec.shared === true ? { writeFenceMs: SHARED_WRITE_FENCE_MS } : {}),
      name: spec.name,
      logger: log,
    });
  try {
    return await open();
  } catch (err) {
    const locked = err instanceof Error && /already locked/i.test(err.message);
    if (!locked || spec.shared !== true || spec.tag !== undefined) throw err;
    if (!(await reclaimSharedParticipant(gateways, spec.vdi, log))) throw err;
    return open();
  }
}
