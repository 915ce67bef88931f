// Deliberately broken replica behaviour, to prove the reliability checks catch real bugs (issue 8
// acceptance). A filter the CLI composes (`sheepfold sheep --fault ack-early`) or a test builds in process; the
// gateway knows nothing of it. `ackEarly` wraps a gateway Placement so every
// replica mutation is acknowledged at once while the real one finishes in the background — the bug of
// answering a write before its replicas have it on stable storage.
import { isDataOid } from '../proto/sheepdog/oid.js';
import type { Placement, ReplicaIo } from '../sheep/gateway.js';

/**
 * A replica whose create/write/remove resolve before the wrapped replica has done them; with `delayMs` the real
 * operation only starts that much later (a wide window for a crash to lose acknowledged writes).
 */
function ackEarlyReplica(r: ReplicaIo, onLateError: (err: unknown) => void, delayMs: number): ReplicaIo {
  const background = (op: () => Promise<void>): Promise<void> => {
    const run = (): void => void op().catch(onLateError);
    if (delayMs > 0) setTimeout(run, delayMs);
    else run();
    return Promise.resolve();
  };
  return {
    label: `${r.label}+ack-early`,
    create: (oid, size, data, offset, base, epoch) => background(() => r.create(oid, size, data, offset, base, epoch)),
    write: (oid, data, offset, epoch) => background(() => r.write(oid, data, offset, epoch)),
    read: (oid, offset, length, epoch) => r.read(oid, offset, length, epoch),
    remove: (oid, epoch) => background(() => r.remove(oid, epoch)),
  };
}

/** Wrap a Placement with the "ack early" fault. */
export function ackEarly(p: Placement, onLateError: (err: unknown) => void = () => undefined, delayMs = 0): Placement {
  return { replicas: (oid, copies) => p.replicas(oid, copies).map((r) => ackEarlyReplica(r, onLateError, delayMs)) };
}

/**
 * The process-level fault (`--fault ack-early`): only data objects are acknowledged early (250 ms before the
 * real write starts), so VDI metadata stays usable and the loss shows in data.
 */
export function ackEarlyData(p: Placement): Placement {
  const early = ackEarly(p, undefined, 250);
  return { replicas: (oid, copies) => (isDataOid(oid) ? early : p).replicas(oid, copies) };
}
