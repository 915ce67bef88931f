// The sheep event feed end to end, on a real three-sheep local cluster (dist/ processes):
// 1. `dog event watch --count N` (a process) against sheep 0 prints, as JSON lines and in order, the lock and
//    invalidate events of a VDI shared from two gateways (open A, open B, A allocates = index write, B reloads
//    because its feed said so — gateway identity — and reads A's bytes, B and A close), then the node-leave of a SIGKILLed sheep and its node-join when it comes back.
// 2. Two target processes (NBD, shared export, different gateways): B caches a hole, A allocates the object;
//    B's feed delivers the invalidation, and B's next read returns A's bytes after a reload counted as
//    reason="feed" — B never received INODE_INVALIDATED (reason="invalidated" stays 0), read from its /metrics.
// 3. The same after B's gateway sheep is SIGKILLed: B's client fails over to its second gateway and the feed
//    subscription follows it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { VdiDevice } from '../../src/block/vdi.js';
import { feedInvalidations, inodeReloads } from '../../src/obs/metrics.js';
import { decodeFeedEvent, type FeedEvent } from '../../src/proto/feed.js';
import { startLocalCluster, type LocalCluster } from '../helpers/cluster.js';
import { DOG_BIN, cleanupTempDirs, killAll, start, waitForOutput } from '../helpers/proc.js';
import { startTarget, tcpClient } from './nbd-harness.js';

const MiB = 2 ** 20;
let cluster: LocalCluster;

beforeAll(async () => {
  cluster = await startLocalCluster(3);
  expect((await cluster.dog(['cluster', 'format', '-c', '2'])).code).toBe(0);
  for (const v of ['ev', 'tg', 'fo']) expect((await cluster.dog(['vdi', 'create', v, '64M'])).code).toBe(0);
}, 300_000);

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

const addr = (i: number): string => `127.0.0.1:${cluster.nodes[i]?.port ?? 0}`;

/** The value of a counter series in Prometheus text (0 when absent). */
async function counter(metricsAddr: string, name: string, label = ''): Promise<number> {
  const text = await (await fetch(`http://${metricsAddr}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (label && !line.includes(label)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** A process-wide counter of this (test) process, optionally one reason. */
async function inProcess(c: typeof feedInvalidations | typeof inodeReloads, reason?: string): Promise<number> {
  const m = await c.get();
  return m.values.filter((v) => reason === undefined || v.labels.reason === reason).reduce((a, v) => a + v.value, 0);
}

describe('event feed', () => {
  it('dog event watch prints lock, invalidate and node events as JSON lines, in order', async () => {
    const watch = start(process.execPath, [DOG_BIN, 'event', 'watch', '-p', String(cluster.nodes[0]?.port), '--vdi', 'ev', '--type', 'lock,invalidate,node', '--count', '11']);
    await waitForOutput(watch, /watching 127\.0\.0\.1:\d+ \(node 127\.0\.0\.1:\d+\)/, 30_000);
    const a = await VdiDevice.open({ gateways: addr(0), vdi: 'ev', shared: true });
    const b = await VdiDevice.open({ gateways: addr(1), vdi: 'ev', shared: true });
    try {
      // B caches object 1 as a hole; A allocates it (an index-area write): B's participant is invalidated.
      expect((await b.read(4 * MiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
      const data = crypto.randomBytes(MiB);
      await a.write(4 * MiB, data);
      // B (gateway identity: no HELLO here) learns it from its gateway's feed and reloads before its next read.
      const deadline = Date.now() + 60_000;
      while ((await inProcess(feedInvalidations)) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await inProcess(feedInvalidations)).toBe(1);
      expect((await b.read(4 * MiB, MiB)).equals(data)).toBe(true);
      expect(await inProcess(inodeReloads, 'feed')).toBe(1);
      expect(await inProcess(inodeReloads, 'invalidated')).toBe(0);
    } finally {
      await b.close().catch(() => undefined);
      await a.close().catch(() => undefined);
    }
    // A second watcher on sheep 1 follows epochs and recovery until interrupted.
    const watch2 = start(process.execPath, [DOG_BIN, 'event', 'watch', '-p', String(cluster.nodes[1]?.port), '--type', 'epoch,recovery']);
    await waitForOutput(watch2, /watching 127\.0\.0\.1:\d+/, 30_000);
    await cluster.killNode(2);
    await cluster.waitSettled(2);
    await cluster.startNode(2);
    expect(await watch.exited).toBe(0);
    await cluster.waitSettled(3);
    watch2.kill('SIGINT');
    expect(await watch2.exited).toBe(0);
    const ev2 = watch2
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => decodeFeedEvent(l));
    const epochs = ev2.filter((e): e is Extract<FeedEvent, { type: 'epoch' }> => e.type === 'epoch');
    expect(epochs.map((e) => e.nodes.length)).toEqual([2, 3]);
    expect(epochs[1]?.epoch).toBe((epochs[0]?.epoch ?? 0) + 1);
    for (const e of epochs) {
      // Each epoch's recovery on sheep 1: announced after the epoch, ends done with every planned object.
      const rec = ev2.filter((r): r is Extract<FeedEvent, { type: 'recovery' }> => r.type === 'recovery' && r.recoveryEpoch === e.epoch);
      expect(rec[0]).toMatchObject({ state: 'preparing', node: addr(1) });
      expect(ev2.indexOf(rec[0] as FeedEvent)).toBeGreaterThan(ev2.indexOf(e));
      const done = rec.at(-1);
      expect(done).toMatchObject({ state: 'done', node: addr(1) });
      expect(done?.type === 'recovery' ? done.done : -1).toBe(done?.type === 'recovery' ? done.total : -2);
    }
    const lines = watch
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(lines).toHaveLength(11);
    const ev = lines.map((l) => decodeFeedEvent(l));
    const vid = (ev[0] as Extract<FeedEvent, { type: 'lock' }>).vid;
    const [n0, n1, n2] = [addr(0), addr(1), addr(2)];
    expect(ev).toMatchObject([
      { type: 'lock', vid, state: 'shared', participants: [{ node: n0, state: 'modified' }] },
      { type: 'lock', vid, participants: [{ node: n0, state: 'modified' }, { node: n1, state: 'invalidated' }] },
      { type: 'invalidate', vid, participant: n1 },
      { type: 'lock', vid, participants: [{ node: n0, state: 'shared' }, { node: n1, state: 'shared' }] },
      { type: 'lock', vid, participants: [{ node: n0, state: 'modified' }, { node: n1, state: 'invalidated' }] },
      { type: 'invalidate', vid, participant: n1 },
      // B's feed-triggered refresh read validates it; B closes (releases), then A: the VDI ends unlocked.
      { type: 'lock', vid, participants: [{ node: n0, state: 'shared' }, { node: n1, state: 'shared' }] },
      { type: 'lock', vid, participants: [{ node: n0, state: 'shared' }] },
      { type: 'lock', vid, state: 'unlocked', participants: [] },
      { type: 'node-leave', node: n2, reason: 'failed', nodes: [n0, n1].sort() },
      { type: 'node-join', node: n2 },
    ]);
    // One sheep's events carry increasing sequence numbers and epochs that never go back.
    for (let i = 1; i < ev.length; i++) {
      expect((ev[i] as FeedEvent).seq).toBeGreaterThan((ev[i - 1] as FeedEvent).seq);
      expect((ev[i] as FeedEvent).epoch).toBeGreaterThanOrEqual((ev[i - 1] as FeedEvent).epoch);
    }
    expect((ev[10] as FeedEvent).epoch).toBeGreaterThan((ev[8] as FeedEvent).epoch);
  }, 300_000);

  it("a target refreshes its inode from the feed before its next request (no INODE_INVALIDATED)", async () => {
    await cluster.waitSettled(3);
    const common = ['--log-level', 'warn', '--metrics', '127.0.0.1:0'];
    const ta = await startTarget(['--sheep', addr(0), '--export', 'mp=tg,shared', '--target-id', 'feed-a', ...common]);
    const tb = await startTarget(['--sheep', addr(1), '--export', 'mp=tg,shared', '--target-id', 'feed-b', ...common]);
    const metricsOf = (out: string): string => {
      const m = /\{"ready":true[^\n]*\}/.exec(out);
      return (JSON.parse(m?.[0] ?? '{}') as { metrics: string }).metrics;
    };
    const mb = metricsOf(tb.proc.output());
    const a = await tcpClient(ta, { exportName: 'mp' });
    const b = await tcpClient(tb, { exportName: 'mp' });
    // B caches object 2 as a hole.
    expect((await b.read(8 * MiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    expect(await counter(mb, 'sheepfold_inode_reloads_total')).toBe(0);
    const data = crypto.randomBytes(MiB);
    await a.write(8 * MiB, data); // A allocates object 2: B's copy of the inode is invalidated
    const deadline = Date.now() + 60_000;
    while ((await counter(mb, 'sheepfold_feed_invalidations_total')) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await counter(mb, 'sheepfold_feed_invalidations_total')).toBe(1);
    const got = await b.read(8 * MiB, MiB);
    expect(got.equals(data)).toBe(true);
    expect(await counter(mb, 'sheepfold_inode_reloads_total', 'reason="feed"')).toBe(1);
    expect(await counter(mb, 'sheepfold_inode_reloads_total', 'reason="invalidated"')).toBe(0);
    // B's refresh read validated its participant (§7.2: everyone SHARED again), as `dog vdi lock list` shows.
    const locks = await cluster.dog(['vdi', 'lock', 'list']);
    expect(locks.code).toBe(0);
    expect(locks.stdout).not.toContain('(invalidated)');
    expect(locks.stdout).toMatch(/feed-a\(shared\)/);
    expect(locks.stdout).toMatch(/feed-b\(shared\)/);
  }, 300_000);

  it("follows its target's gateway failover: invalidations arrive through the new gateway's feed", async () => {
    await cluster.waitSettled(3);
    const common = ['--log-level', 'warn', '--metrics', '127.0.0.1:0'];
    const ta = await startTarget(['--sheep', addr(0), '--export', 'mp=fo,shared', '--target-id', 'fo-a', ...common]);
    const tb = await startTarget(['--sheep', `${addr(1)},${addr(2)}`, '--export', 'mp=fo,shared', '--target-id', 'fo-b', ...common]);
    const mb = (JSON.parse(/\{"ready":true[^\n]*\}/.exec(tb.proc.output())?.[0] ?? '{}') as { metrics: string }).metrics;
    const a = await tcpClient(ta, { exportName: 'mp' });
    const b = await tcpClient(tb, { exportName: 'mp' });
    expect((await b.read(12 * MiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    // B's gateway dies; B's client fails over to sheep 2 (its next request at the latest) and its feed follows.
    await cluster.killNode(1);
    await cluster.waitSettled(2);
    expect((await b.read(12 * MiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
    const data = crypto.randomBytes(MiB);
    await a.write(12 * MiB, data); // allocates object 3
    const deadline = Date.now() + 60_000;
    while ((await counter(mb, 'sheepfold_feed_invalidations_total')) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await counter(mb, 'sheepfold_feed_invalidations_total')).toBeGreaterThanOrEqual(1);
    expect((await b.read(12 * MiB, MiB)).equals(data)).toBe(true);
    expect(await counter(mb, 'sheepfold_inode_reloads_total', 'reason="feed"')).toBeGreaterThanOrEqual(1);
    expect(await counter(mb, 'sheepfold_inode_reloads_total', 'reason="invalidated"')).toBe(0);
  }, 300_000);
});
