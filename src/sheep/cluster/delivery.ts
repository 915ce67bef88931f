// Pieces the log-based cluster drivers (local, etcd) share: delivering one broadcast record to the handler and
// to the sender's waiter, and choosing the member that compacts.
import type { ClusterEvent, ClusterMember } from './driver.js';

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

/**
 * Group commit of one member's appends: records queued while a write is in flight go out together in the next
 * write (one durable append for many broadcasts), in queue order, so per-sender order is kept.
 */
export class GroupCommit<T> {
  private queue: { item: T; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly write: (items: T[]) => Promise<void>,
    /** Largest batch: items, and total weight (e.g. bytes) as `weigh` measures it. */
    private readonly maxItems: number,
    private readonly maxWeight = Infinity,
    private readonly weigh: (item: T) => number = () => 0,
  ) {}

  add(item: T): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.queue.push({ item, resolve, reject }));
    this.flushing ??= this.flush().finally(() => (this.flushing = null));
    return done;
  }

  /** Resolves once everything queued before the call has been written (or failed). */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      let n = 0;
      let weight = 0;
      while (n < this.queue.length && n < this.maxItems) {
        const w = this.weigh(this.queue[n]!.item);
        if (n > 0 && weight + w > this.maxWeight) break;
        weight += w;
        n++;
      }
      const batch = this.queue.splice(0, n);
      try {
        await this.write(batch.map((b) => b.item));
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
  }
}
