// The `NAME=VDI[:TAG]` export kind: opens a VdiDevice through the sheep gateways given by `--sheep
// HOST:PORT[,HOST:PORT...]` (failover in that order). A working VDI is locked for the life of the export:
// exclusively, or with `,shared` a SHARED lock (multipath: one target per gateway sheep, inode coherence);
// `VDI:TAG` opens that snapshot read-only without a lock.
import type { BlockDevice } from '../block/device.js';
import { VdiDevice } from '../block/vdi.js';
import { parseGatewayList } from '../client/address.js';
import { componentLogger } from '../obs/log.js';
import type { ExportSpec, OpenContext } from './exports.js';

/** Open a VDI export (the opener registered for kind 'vdi'). */
export async function openVdiExport(spec: Extract<ExportSpec, { kind: 'vdi' }>, ctx: OpenContext): Promise<BlockDevice> {
  if (ctx.sheep === undefined) throw new Error(`export '${spec.name}': VDI exports need --sheep`);
  return VdiDevice.open({
    gateways: parseGatewayList(ctx.sheep),
    vdi: spec.vdi,
    ...(spec.tag !== undefined ? { tag: spec.tag } : {}),
    readOnly: spec.readOnly,
    shared: spec.shared === true,
    name: spec.name,
    logger: componentLogger('vdi', { export: spec.name }),
  });
}
