// The `single` cluster driver: a cluster of exactly one sheep. It gives the same contract as the `local`
// driver (ordered delivery of joins, leaves and broadcasts, each handler awaited before the next event) with
// no shared directory, so the sheep code path is identical whether it runs alone or in a cluster.
import { randomUUID } from 'node:crypto';
import type { ClusterDriver, ClusterEvent, ClusterMember } from './local.js';

export class SingleClusterDriver implements ClusterDriver {
  readonly name = 'single';
  private handler: (e: ClusterEvent) => void | Promise<void> = () => undefined;
  private self: ClusterMember | null = null;
  private seq = 0;
  /** Deliveries are chained so events reach the handler one at a time, in broadcast order. */
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  onEvent(handler: (e: ClusterEvent) => void | Promise<void>): void {
    this.handler = handler;
  }

  members(): ClusterMember[] {
    return this.self ? [this.self] : [];
  }

  private deliver<T>(make: (seq: number) => ClusterEvent, result: (seq: number) => T): Promise<T> {
    const next = this.chain.then(async () => {
      const seq = this.seq++;
      await this.handler(make(seq));
      return result(seq);
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  join(node: string, info: unknown): Promise<ClusterMember> {
    const member: ClusterMember = { id: randomUUID(), node, pid: process.pid, info, joinedAt: this.seq, joinedMs: Date.now() };
    this.self = member;
    return this.deliver(
      (seq) => ({ type: 'join', seq, historical: false, member, members: [member] }),
      () => member,
    );
  }

  broadcast(payload: unknown): Promise<number> {
    if (!this.self || this.closed) return Promise.reject(new Error('not a cluster member'));
    const from = this.self.id;
    return this.deliver(
      (seq) => ({ type: 'message', seq, historical: false, from, payload }),
      (seq) => seq,
    );
  }

  async leave(): Promise<void> {
    const me = this.self;
    if (!me) return;
    await this.deliver(
      (seq) => ({ type: 'leave', seq, historical: false, member: me, members: [], reason: 'graceful' }),
      () => undefined,
    );
    this.self = null;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
  }
}
