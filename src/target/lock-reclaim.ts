// Lock identity across a target restart on sheep WITHOUT target identities (docs/fencing.md §3). A Sheepfold
// sheep binds our connections to the target id (HELLO), so a restarted target simply locks again and gets its
// own lock back; nothing here runs then. A sheep that does not know HELLO (sheepdog) identifies a SHARED-lock
// participant by its gateway sheep: a target that was SIGKILLed and is restarted on the same gateway finds
// itself still listed and its LOCK_VDI is refused. That participant is this target from a previous life (one
// target per gateway sheep and VDI is then the multipath rule): release it through that gateway, so the next
// LOCK_VDI adds a fresh participant that starts by reading the inode. Exclusive (NORMAL) locks are never taken
// over here: a different target stays refused until `dog vdi lock unlock`.
import { SheepClient } from '../client/index.js';
import type { GatewayAddr } from '../client/address.js';
import { SheepConnection } from '../client/connection.js';
import type { Hello } from '../client/hello.js';
import { LOCK_STATE_SHARED, LOCK_TYPE_SHARED } from '../proto/sheepdog/constants.js';
import { addrText } from '../proto/sheepdog/node.js';
import type { Logger } from '../obs/log.js';

/** True if the sheep at `gw` binds connections to target identities (answers HELLO). */
async function knowsTargets(gw: GatewayAddr, hello: Hello): Promise<boolean> {
  const c = await SheepConnection.connect(gw, { connectTimeoutMs: 10_000, hello });
  c.close();
  return c.targetBound;
}

/**
 * Release a stale SHARED participant of `vdi` whose identity is one of `gateways`; true if one was released.
 * With `hello`, gateways that know target identities are skipped (a gateway participant there is not ours).
 */
export async function reclaimSharedParticipant(gateways: GatewayAddr[], vdi: string, log: Logger, hello?: Hello): Promise<boolean> {
  for (const gw of gateways) {
    if (gw.kind !== 'tcp') continue;
    const client = new SheepClient({ gateways: [gw], requestTimeoutMs: 30_000, initialConnectTimeoutMs: 10_000 });
    try {
      if (hello && (await knowsTargets(gw, hello))) return false;
      const { vid } = await client.getVdiInfo(vdi);
      const state = (await client.getVdiCopies()).find((s) => s.vid === vid);
      if (!state || state.lockState !== LOCK_STATE_SHARED) return false;
      const mine = state.participants.some((p) => p.nid.port === gw.port && addrText(p.nid.addr) === gw.host);
      if (!mine) continue;
      await client.releaseVdi(vid, LOCK_TYPE_SHARED);
      log.warn({ vdi, gateway: `${gw.host}:${gw.port}` }, 'vdi.shared_lock.reclaimed');
      return true;
    } catch (err) {
      log.warn({ vdi, err: err instanceof Error ? err.message : String(err) }, 'vdi.shared_lock.reclaim_failed');
    } finally {
      client.close();
    }
  }
  return false;
}
