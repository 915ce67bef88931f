// Recovery of a local sheep cluster, real processes on 127.0.0.1:
// - a node back after a short outage fetches only the objects written while it was away (dirty tracking,
//   seed 004: the count comes from its `recovery_finished` log line);
// - a VDI deleted while a node is down does not reappear anywhere when the node is back (seed 003);
// - 5 nodes with 2 copies: a 6th node joins, then one leaves: data rebalances, recovery progress is shown by
//   `dog node recovery`, and in the end every object has exactly 2 copies, on the nodes the ring names.
import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Ring, nodeAddr, oidHex, vidToDataOid, vidToVdiOid } from '../../src/proto/sheepdog/index.js';
import { SheepClient } from '../../src/client/index.js';
import { startLocalCluster, type LocalCluster } from '../helpers/cluster.js';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';

const MiB = 1024 * 1024;
const clusters: LocalCluster[] = [];

afterAll(async () => {
  for (const c of clusters) await c.stopAll();
  await killAll();
  cleanupTempDirs();
}, 120_000);

function client(cluster: LocalCluster, node: number): SheepClient {
  return new SheepClient({ gateways: `127.0.0.1:${cluster.nodes[node]!.port}`, reconnectTimeoutMs: 0 });
}

async function vdiOids(c: SheepClient, name: string): Promise<{ vid: number; oids: bigint[] }> {
  const { vid } = await c.getVdiInfo(name);
  const inode = await c.readInode(vid);
  const oids = [vidToVdiOid(vid)];
  inode.dataVdiId.forEach((v, i) => {
    if (v !== 0) oids.push(vidToDataOid(v, i));
  });
  return { vid, oids };
}

function storeObjects(cluster: LocalCluster, node: number): string[] {
  try {
    return fs.readdirSync(path.join(cluster.nodes[node]!.store, 'obj')).filter((n) => /^[0-9a-f]{16}$/.test(n));
  } catch {
    return [];
  }
}

/** Wait until the node's output has a `recovery_finished` line for `epoch`; return its transfer count. */
async function transferredAt(cluster: LocalCluster, node: number, epoch: number): Promise<number> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    for (const line of (cluster.nodes[node]!.proc?.output() ?? '').split('\n')) {
      if (!line.includes('"recovery_finished"')) continue;
      const rec = JSON.parse(line) as { epoch: number; transferred: number };
      if (rec.epoch === epoch) return rec.transferred;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no recovery_finished for epoch ${epoch}`);
}

async function waitNodes(cluster: LocalCluster, n: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const list = await cluster.dogJson<unknown[]>(['node', 'list']).catch(() => []);
    if (list.length === n) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`node count never became ${n}`);
}

describe('cluster recovery', () => {
  it('after a short outage a node fetches only the objects written meanwhile; a VDI deleted meanwhile stays deleted', async () => {
    const cluster = await startLocalCluster(3, { logLevel: 'info' });
    clusters.push(cluster);
    expect((await cluster.dog(['cluster', 'format', '-c', '3'])).code).toBe(0);
    expect((await cluster.dog(['vdi', 'create', 'v', '64M'])).code).toBe(0);
    expect((await cluster.dog(['vdi', 'create', 'gone', '16M'])).code).toBe(0);
    const first = randomBytes(16 * MiB);
    expect((await cluster.dog(['vdi', 'write', 'v'], { input: first })).code).toBe(0);
    expect((await cluster.dog(['vdi', 'write', 'gone'], { input: randomBytes(16 * MiB) })).code).toBe(0);
    const c = client(cluster, 0);
    const gone = await vdiOids(c, 'gone');
    c.close();

    await cluster.killNode(2);
    await waitNodes(cluster, 2);
    // Written while node 2 is away: two new data objects of v (index 8 and 9), the inode of v and the inode of
    // `gone` (its deletion clears its index and name); the data objects of `gone` are removed, not fetched.
    const second = randomBytes(8 * MiB);
    expect((await cluster.dog(['vdi', 'write', 'v', String(32 * MiB), String(8 * MiB)], { input: second })).code).toBe(0);
    const del = await cluster.dog(['vdi', 'delete', 'gone']);
    expect(del.code, del.stderr).toBe(0);

    await cluster.startNode(2);
    const epoch = await cluster.waitSettled(3);
    expect(await transferredAt(cluster, 2, epoch)).toBe(4);

    const r = await cluster.dogBinary(['vdi', 'read', 'v', '0', String(40 * MiB)], { node: 2 });
    expect(r.stdout.subarray(0, 16 * MiB).equals(first)).toBe(true);
    expect(r.stdout.subarray(32 * MiB).equals(second)).toBe(true);

    const goneData = gone.oids.filter((o) => o !== vidToVdiOid(gone.vid)).map(oidHex);
    expect(goneData.length).toBe(4);
    for (const n of cluster.nodes) {
      const objs = storeObjects(cluster, n.index);
      expect(objs.filter((o) => goneData.includes(o))).toEqual([]);
    }
    // Another epoch change (a new node) must not resurrect them either.
    await cluster.addNode();
    await cluster.waitSettled(4);
    for (const n of cluster.nodes) expect(storeObjects(cluster, n.index).filter((o) => goneData.includes(o))).toEqual([]);
    const list = await cluster.dog(['vdi', 'list'], { node: 3 });
    expect(list.stdout).not.toMatch(/\bgone\b/);
  }, 900_000);

  it('5 nodes, 2 copies: a 6th node joins and one leaves; data rebalances to exactly 2 copies each', async () => {
    const cluster = await startLocalCluster(5);
    clusters.push(cluster);
    expect((await cluster.dog(['cluster', 'format', '-c', '2'])).code).toBe(0);
    expect((await cluster.dog(['vdi', 'create', 'v', '128M'])).code).toBe(0);
    // Enough objects that every survivor has several to recover, so throttled recovery is long enough to watch.
    const data = randomBytes(96 * MiB);
    expect((await cluster.dog(['vdi', 'write', 'v'], { input: data })).code).toBe(0);

    const added = await cluster.addNode();
    await cluster.waitSettled(6);
    const rec = await cluster.dogJson<{ nodes: { addr: string; finished: number; total: number; inRecovery: boolean }[] }>(['node', 'recovery']);
    const mine = rec.nodes.find((n) => n.addr === `127.0.0.1:${added.port}`);
    expect(mine).toBeDefined();
    expect(Number(mine!.total)).toBeGreaterThan(0);
    expect(Number(mine!.finished)).toBe(Number(mine!.total));

    // Slow recovery down (SET_RECOVERY on every node) so its progress can be watched while a node leaves.
    const slow = await cluster.dog(['node', 'recovery', '--max-exec-count', '1', '--queue-work-interval', '2000'], { node: 1 });
    expect(slow.code, slow.stderr).toBe(0);
    await cluster.stopNode(0);
    type Rec = { nodes: { addr: string; finished: number; total: number; inRecovery: boolean; state: number }[] };
    let seen: Rec['nodes'][number] | undefined;
    let human = '';
    const watchUntil = Date.now() + 60_000;
    while (!seen && Date.now() < watchUntil) {
      const r = await cluster.dogJson<Rec>(['node', 'recovery'], { node: 1 });
      seen = r.nodes.find((n) => n.inRecovery && n.state === 1 && Number(n.total) > 0 && Number(n.finished) < Number(n.total));
      if (seen) human = (await cluster.dog(['node', 'recovery'], { node: 1 })).stdout;
    }
    expect(seen).toBeDefined();
    expect(human).toMatch(/Nodes In Recovery/);
    const fast = await cluster.dog(['node', 'recovery', '--max-exec-count', '0', '--queue-work-interval', '0'], { node: 1 });
    expect(fast.code, fast.stderr).toBe(0);
    await cluster.waitSettled(5, 180_000);

    const c = client(cluster, 1);
    try {
      const { oids } = await vdiOids(c, 'v');
      expect(oids.length).toBe(25);
      const { nodes } = await c.getNodeList();
      const ring = new Ring(nodes);
      const byAddr = new Map(cluster.nodes.map((n) => [`127.0.0.1:${n.port}`, n.index]));
      const liveIdx = cluster.live().map((n) => n.index);
      // Stale copies go once every node reported its recovery done: wait for exactly 2 copies each.
      const deadline = Date.now() + 120_000;
      let bad: string[] = [];
      do {
        const stores = new Map(liveIdx.map((i) => [i, new Set(storeObjects(cluster, i))]));
        bad = [];
        for (const oid of oids) {
          const want = ring.oidToNodes(oid, 2).map((n) => byAddr.get(nodeAddr(n.nid))).sort();
          const have = liveIdx.filter((i) => stores.get(i)!.has(oidHex(oid))).sort();
          if (JSON.stringify(want) !== JSON.stringify(have)) bad.push(`${oidHex(oid)} want ${want} have ${have}`);
        }
        if (bad.length === 0) break;
        await new Promise((r) => setTimeout(r, 250));
      } while (Date.now() < deadline);
      expect(bad).toEqual([]);
    } finally {
      c.close();
    }
    for (const n of cluster.live()) {
      const r = await cluster.dogBinary(['vdi', 'read', 'v', '0', String(96 * MiB)], { node: n.index });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.equals(data)).toBe(true);
    }
  }, 900_000);
});

describe('a frozen node', () => {
  it('is expelled while stopped, rejoins when continued, and fetches only what changed meanwhile', async () => {
    const cluster = await startLocalCluster(3, { logLevel: 'info' });
    clusters.push(cluster);
    expect((await cluster.dog(['cluster', 'format', '-c', '3'])).code).toBe(0);
    expect((await cluster.dog(['vdi', 'create', 'v', '32M'])).code).toBe(0);
    const first = randomBytes(12 * MiB);
    expect((await cluster.dog(['vdi', 'write', 'v'], { input: first })).code).toBe(0);
    const frozen = cluster.nodes[2]!.proc!;
    frozen.kill('SIGSTOP');
    try {
      await waitNodes(cluster, 2);
      // Two new data objects (index 4 and 5) and the inode change while node 2 is stopped.
      const second = randomBytes(8 * MiB);
      expect((await cluster.dog(['vdi', 'write', 'v', String(16 * MiB), String(8 * MiB)], { input: second })).code).toBe(0);
    } finally {
      frozen.kill('SIGCONT');
    }
    const epoch = await cluster.waitSettled(3);
    expect(await transferredAt(cluster, 2, epoch)).toBe(3);
    expect(frozen.output()).toContain('cluster_expelled_rejoining');
    const r = await cluster.dogBinary(['vdi', 'read', 'v', '0', String(12 * MiB)], { node: 2 });
    expect(r.stdout.equals(first)).toBe(true);
  }, 600_000);
});

describe('whole-cluster restart', () => {
  it('every node SIGKILLed and restarted: the log replay restores VDIs, epochs continue, data reads back', async () => {
    const cluster = await startLocalCluster(3);
    clusters.push(cluster);
    expect((await cluster.dog(['cluster', 'format', '-c', '2'])).code).toBe(0);
    expect((await cluster.dog(['vdi', 'create', 'v', '32M'])).code).toBe(0);
    const data = randomBytes(20 * MiB);
    expect((await cluster.dog(['vdi', 'write', 'v'], { input: data })).code).toBe(0);
    const before = await cluster.dogJson<{ epoch: number }>(['cluster', 'info']);
    for (const n of cluster.nodes) await cluster.killNode(n.index);
    for (const n of cluster.nodes) await cluster.startNode(n.index);
    const epoch = await cluster.waitSettled(3);
    expect(epoch).toBeGreaterThan(before.epoch);
    const list = await cluster.dog(['vdi', 'list'], { node: 2 });
    expect(list.stdout).toMatch(/\bv\b/);
    for (const n of cluster.nodes) {
      const r = await cluster.dogBinary(['vdi', 'read', 'v', '0', String(20 * MiB)], { node: n.index });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.equals(data)).toBe(true);
    }
    const chk = await cluster.dogJson<{ lost: string[]; noMajority: string[] }>(['vdi', 'check', 'v']);
    expect(chk.lost).toEqual([]);
    expect(chk.noMajority).toEqual([]);
  }, 600_000);
});
