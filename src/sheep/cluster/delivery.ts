// Pieces the log-based cluster drivers (local, etcd) share: delivering one broadcast record to the handler and
// to the sender's waiter, and choosing the member that compacts.
import type { ClusterEvent, ClusterMember } from './local.js';

export interface MessageRecord {
  from: string;
  n: number;
  payload: unknown;
}

/** Deliver a message; if this process sent it (under any of its incarnations), resolve its broadcast(). */
export async function deliverMessage(
  handler: (e: ClusterEvent) => void | Promise<void>,
  rec: MessageRecord,
  seq: number,
  historical: boolean,
  ownIds: ReadonlySet<string>,
  waiters: Map<number, (seq: number) => void>,
): Promise<void> {
  await handler({ type: 'message', seq, historical, from: rec.from, payload: rec.payload });
  if (!ownIds.has(rec.from)) return;
  const w = waiters.get(rec.n);
  if (w) {
    waiters.delete(rec.n);
    w(seq);
  }
}

/** The member that joined first: every member agrees on it, so exactly one of them compacts. */
export function oldestMember(members: Iterable<ClusterMember>): ClusterMember | null {
  let oldest: ClusterMember | null = null;
  for (const m of members) if (!oldest || m.joinedAt < oldest.joinedAt) oldest = m;
  return oldest;
}
