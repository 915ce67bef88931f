// The local cluster driver: one total order for every member, membership in events, replay for late joiners,
// graceful leave, and failure detection through stale heartbeats (a stopped member). SIGKILL detection of a
// separate process is in test/integration/cluster-local.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalClusterDriver, type ClusterEvent } from '../../../../src/sheep/cluster/local.js';

const dirs: string[] = [];
const drivers: LocalClusterDriver[] = [];
afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.close()));
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sf-cluster-'));
  dirs.push(d);
  return d;
}

function driver(dir: string, opts: { failTimeoutMs?: number } = {}): { d: LocalClusterDriver; events: ClusterEvent[] } {
  const d = new LocalClusterDriver({ dir, heartbeatMs: 50, failTimeoutMs: opts.failTimeoutMs ?? 400 });
  const events: ClusterEvent[] = [];
  d.onEvent((e) => {
    events.push(e);
  });
  drivers.push(d);
  return { d, events };
}

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sig = (e: ClusterEvent): string =>
  e.type === 'message' ? `m:${JSON.stringify(e.payload)}` : e.type === 'expelled' ? 'x' : `${e.type}:${e.member.node}`;

describe('local cluster driver', () => {
  it('delivers joins and concurrent broadcasts in one identical order to every member', async () => {
    const dir = tmp();
    const a = driver(dir);
    const b = driver(dir);
    const c = driver(dir);
    await a.d.join('A', { zone: 0 });
    await b.d.join('B', { zone: 1 });
    await c.d.join('C', { zone: 2 });
    const sends: Promise<number>[] = [];
    for (let i = 0; i < 20; i++) {
      sends.push(a.d.broadcast({ i, by: 'a' }), b.d.broadcast({ i, by: 'b' }), c.d.broadcast({ i, by: 'c' }));
    }
    const seqs = await Promise.all(sends);
    expect(new Set(seqs).size).toBe(60);
    await until(() => [a, b, c].every((x) => x.events.filter((e) => e.type === 'message').length === 60));
    const order = a.events.map(sig);
    expect(b.events.map(sig)).toEqual(order);
    expect(c.events.map(sig)).toEqual(order);
    expect(a.d.members().map((m) => m.node).sort()).toEqual(['A', 'B', 'C']);
    // per-sender FIFO holds inside the total order
    const fromA = a.events.filter((e) => e.type === 'message' && (e.payload as { by: string }).by === 'a');
    expect(fromA.map((e) => (e.type === 'message' ? (e.payload as { i: number }).i : -1))).toEqual([...Array(20).keys()]);
  });

  it('a late joiner replays history marked historical, then sees new events live', async () => {
    const dir = tmp();
    const a = driver(dir);
    await a.d.join('A', {});
    await a.d.broadcast('before');
    const b = driver(dir);
    await b.d.join('B', {});
    await a.d.broadcast('after');
    await until(() => b.events.some((e) => e.type === 'message' && e.payload === 'after'));
    const hist = b.events.filter((e) => e.historical).map(sig);
    expect(hist).toEqual(['join:A', 'm:"before"']);
    expect(b.events.find((e) => e.type === 'message' && e.payload === 'after')?.historical).toBe(false);
  });

  it('sync() is a read barrier: after it, a member has applied what another member had acknowledged', async () => {
    const dir = tmp();
    const a = driver(dir);
    const b = driver(dir);
    await a.d.join('A', {});
    await b.d.join('B', {});
    for (let i = 0; i < 20; i++) {
      await a.d.broadcast({ i });
      await b.d.sync();
      expect(b.events.some((e) => e.type === 'message' && (e.payload as { i: number }).i === i)).toBe(true);
    }
  });

  it('graceful leave is delivered to the others with the new membership', async () => {
    const dir = tmp();
    const a = driver(dir);
    const b = driver(dir);
    await a.d.join('A', {});
    await b.d.join('B', {});
    await b.d.leave();
    await until(() => a.events.some((e) => e.type === 'leave'));
    const ev = a.events.find((e) => e.type === 'leave');
    expect(ev?.type === 'leave' && ev.reason).toBe('graceful');
    expect(a.d.members().map((m) => m.node)).toEqual(['A']);
  });

  it('a member whose heartbeat stops is removed as failed, and sees itself expelled', async () => {
    const dir = tmp();
    const a = driver(dir);
    const b = driver(dir);
    await a.d.join('A', {});
    await b.d.join('B', {});
    // Simulate a hung process: B stops heartbeating (its timers stop) but keeps reading the log.
    (b.d as unknown as { timers: NodeJS.Timeout[] }).timers.slice(0, 2).forEach((t) => clearInterval(t));
    await until(() => a.events.some((e) => e.type === 'leave'));
    const ev = a.events.find((e) => e.type === 'leave');
    expect(ev?.type === 'leave' && ev.reason).toBe('failed');
    expect(a.d.members().map((m) => m.node)).toEqual(['A']);
    await until(() => b.events.some((e) => e.type === 'expelled'));
    await expect(b.d.broadcast('x')).rejects.toThrow(/not a cluster member/);
  });
});
