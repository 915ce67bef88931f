// The ClusterDriver contract as one set of checks every driver (local, etcd) must pass: one total order for
// every member, history replayed as `historical` to a late joiner, sync() as a read barrier, graceful leave, and
// compaction (a joiner starts from a snapshot whose state is exactly that of its position, then replays the
// rest; the retained log stays bounded).
import { expect, it } from 'vitest';
import type { ClusterDriver, ClusterEvent } from '../../src/sheep/cluster/local.js';

export interface DriverFactory {
  /** A new driver on the shared coordination space; `compactEvery` enables compaction. */
  make(opts?: { compactEvery?: number }): ClusterDriver;
  /** Records (or revisions) the log retains now, for the boundedness check. */
  retained(): Promise<number>;
}

export interface Tracked {
  d: ClusterDriver;
  events: ClusterEvent[];
  /** The test's replicated state machine: a running sum and count of delivered numeric messages. */
  state: { sum: number; count: number };
}

export async function until(cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sig = (e: ClusterEvent): string =>
  e.type === 'message'
    ? `m:${JSON.stringify(e.payload)}`
    : e.type === 'expelled'
      ? 'x'
      : e.type === 'snapshot'
        ? 's'
        : `${e.type}:${e.member.node}`;

export function track(d: ClusterDriver): Tracked {
  const t: Tracked = { d, events: [], state: { sum: 0, count: 0 } };
  d.onEvent((e) => {
    t.events.push(e);
    if (e.type === 'snapshot') t.state = { ...(e.state as { sum: number; count: number }) };
    if (e.type === 'message' && typeof e.payload === 'object' && e.payload !== null && 'v' in e.payload) {
      t.state.sum += (e.payload as { v: number }).v;
      t.state.count++;
    }
  });
  d.setSnapshotter?.({ export: () => ({ ...t.state }) });
  return t;
}

/** `compaction: false` for a driver that does not compact its log (local, for now). */
export function driverContract(get: () => DriverFactory, opts: { compaction?: boolean } = {}): void {
  it('delivers joins and concurrent broadcasts in one identical order to every member', async () => {
    const f = get();
    const [a, b, c] = [track(f.make()), track(f.make()), track(f.make())];
    await a.d.join('A', { zone: 0 });
    await b.d.join('B', { zone: 1 });
    await c.d.join('C', { zone: 2 });
    const sends: Promise<number>[] = [];
    for (let i = 0; i < 20; i++) sends.push(a.d.broadcast({ i, by: 'a' }), b.d.broadcast({ i, by: 'b' }), c.d.broadcast({ i, by: 'c' }));
    const seqs = await Promise.all(sends);
    expect(new Set(seqs).size).toBe(60);
    await until(() => [a, b, c].every((x) => x.events.filter((e) => e.type === 'message').length === 60));
    const order = a.events.map(sig);
    expect(b.events.map(sig)).toEqual(order);
    expect(c.events.map(sig)).toEqual(order);
    expect(a.d.members().map((m) => m.node).sort()).toEqual(['A', 'B', 'C']);
    const fromA = a.events.filter((e) => e.type === 'message' && (e.payload as { by: string }).by === 'a');
    expect(fromA.map((e) => (e.type === 'message' ? (e.payload as { i: number }).i : -1))).toEqual([...Array(20).keys()]);
  });

  it('a late joiner replays history marked historical, then sees new events live', async () => {
    const f = get();
    const a = track(f.make());
    await a.d.join('A', {});
    await a.d.broadcast('before');
    const b = track(f.make());
    await b.d.join('B', {});
    await a.d.broadcast('after');
    await until(() => b.events.some((e) => e.type === 'message' && e.payload === 'after'));
    expect(b.events.filter((e) => e.historical).map(sig)).toEqual(['join:A', 'm:"before"']);
    expect(b.events.find((e) => e.type === 'message' && e.payload === 'after')?.historical).toBe(false);
    expect(b.events.find((e) => e.type === 'join' && e.member.node === 'B')?.historical).toBe(false);
  });

  it('sync() is a read barrier: after it, a member has applied what another member had acknowledged', async () => {
    const f = get();
    const [a, b] = [track(f.make()), track(f.make())];
    await a.d.join('A', {});
    await b.d.join('B', {});
    for (let i = 0; i < 20; i++) {
      await a.d.broadcast({ i });
      await b.d.sync!();
      expect(b.events.some((e) => e.type === 'message' && (e.payload as { i: number }).i === i)).toBe(true);
    }
  });

  it('graceful leave is delivered to the others with the new membership', async () => {
    const f = get();
    const [a, b] = [track(f.make()), track(f.make())];
    await a.d.join('A', {});
    await b.d.join('B', {});
    await b.d.leave();
    await until(() => a.events.some((e) => e.type === 'leave'));
    const ev = a.events.find((e) => e.type === 'leave');
    expect(ev?.type === 'leave' && ev.reason).toBe('graceful');
    expect(a.d.members().map((m) => m.node)).toEqual(['A']);
  });

  if (opts.compaction === false) return;
  it('compaction: a joiner loads a snapshot of exactly its position and replays the rest; the log stays bounded', async () => {
    const f = get();
    const every = 40;
    const [a, b] = [track(f.make({ compactEvery: every })), track(f.make({ compactEvery: every }))];
    await a.d.join('A', {});
    await b.d.join('B', {});
    // Concurrent appends from both members while segments are sealed/snapshots written.
    let expectSum = 0;
    for (let round = 0; round < 8; round++) {
      const sends: Promise<number>[] = [];
      for (let i = 1; i <= 25; i++) {
        const v = round * 1000 + i;
        expectSum += 2 * v;
        sends.push(a.d.broadcast({ v }), b.d.broadcast({ v }));
      }
      await Promise.all(sends);
    }
    await until(() => a.state.count === 400 && b.state.count === 400, 120_000);
    expect(a.state.sum).toBe(expectSum);
    expect(b.events.map(sig)).toEqual(a.events.map(sig));
    expect(await f.retained()).toBeLessThanOrEqual(3 * every + 20);
    const c = track(f.make({ compactEvery: every }));
    await c.d.join('C', {});
    const snap = c.events[0];
    expect(snap?.type).toBe('snapshot');
    if (snap?.type !== 'snapshot') return;
    expect(snap.members.map((m) => m.node).sort()).toEqual(['A', 'B']);
    // Fewer events replayed than were ever sent, and the state identical to the members that saw everything.
    expect(c.events.filter((e) => e.type === 'message').length).toBeLessThan(400);
    await c.d.sync!();
    expect(c.state).toEqual(a.state);
    await a.d.broadcast({ v: 7 });
    await until(() => c.state.count === 401);
    expect(c.state.sum).toBe(expectSum + 7);
  }, 180_000);
}
