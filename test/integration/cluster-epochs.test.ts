// Epochs around a cluster shutdown, as sheepdog records them (real processes, local driver): `dog cluster
// shutdown` does not move the epoch; sheep started again wait (WAIT_FOR_JOIN) until every node of the last
// epoch is back, then the cluster records one epoch with all of them and serves the data written before;
// `dog cluster recover force` ends the wait with the nodes present.
import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startLocalCluster, type LocalCluster } from '../helpers/cluster.js';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';

const MiB = 1024 * 1024;
const clusters: LocalCluster[] = [];

afterAll(async () => {
  for (const c of clusters) await c.stopAll();
  await killAll();
  cleanupTempDirs();
}, 120_000);

interface Info {
  status: string;
  epoch: number;
  epochs: { epoch: number; nodes: { addr: string }[] }[];
}

describe('cluster shutdown and restart', () => {
  it('keeps the epoch across a shutdown and records one epoch with every node when all are back', async () => {
    const cluster = await startLocalCluster(3);
    clusters.push(cluster);
    expect((await cluster.dog(['cluster', 'format', '-c', '2'])).code).toBe(0);
    expect((await cluster.dog(['vdi', 'create', 'v', '16M'])).code).toBe(0);
    const data = randomBytes(16 * MiB);
    expect((await cluster.dog(['vdi', 'write', 'v'], { input: data })).code).toBe(0);
    const before = await cluster.waitSettled(3);

    const r = await cluster.dog(['cluster', 'shutdown']);
    expect(r.code, r.stderr).toBe(0);
    for (const n of cluster.nodes) await n.proc?.exited;
    // They exited by themselves; the harness forgets their processes (killNode on an exited child sends nothing).
    for (const n of cluster.nodes) await cluster.killNode(n.index);

    // The first sheep back waits for the others; the epoch has not moved.
    await cluster.startNode(0);
    const waiting = await cluster.dogJson<Info>(['cluster', 'info'], { node: 0 });
    expect(waiting.epoch).toBe(before);
    expect(waiting.status).toBe('wait_for_join');
    const list = await cluster.dog(['vdi', 'list'], { node: 0 });
    expect(list.code).not.toBe(0);
    expect(list.stderr).toMatch(/[Ww]aiting for other nodes/);

    await cluster.startNode(1);
    expect((await cluster.dogJson<Info>(['cluster', 'info'], { node: 1 })).epoch).toBe(before);
    await cluster.startNode(2);
    const after = await cluster.waitSettled(3);
    expect(after).toBe(before + 1);
    const info = await cluster.dogJson<Info>(['cluster', 'info'], { node: 2 });
    expect(info.status).toBe('running');
    expect(info.epochs.find((e) => e.epoch === after)?.nodes.length).toBe(3);
    const read = await cluster.dogBinary(['vdi', 'read', 'v']);
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout.equals(data)).toBe(true);

    // Shut down again and bring back only two: `dog cluster recover force` goes on without the third.
    expect((await cluster.dog(['cluster', 'shutdown'])).code).toBe(0);
    for (const n of cluster.nodes) await n.proc?.exited;
    // They exited by themselves; the harness forgets their processes (killNode on an exited child sends nothing).
    for (const n of cluster.nodes) await cluster.killNode(n.index);
    await cluster.startNode(0);
    await cluster.startNode(1);
    expect((await cluster.dogJson<Info>(['cluster', 'info'], { node: 1 })).status).toBe('wait_for_join');
    const refused = await cluster.dog(['cluster', 'recover', 'force'], { node: 0, input: Buffer.from('no\n') });
    expect(refused.code).toBe(1);
    expect(refused.stdout + refused.stderr).toContain('Are you sure you want to continue? [yes/no]: ');
    const forced = await cluster.dog(['cluster', 'recover', 'force'], { node: 0, input: Buffer.from('yes\n') });
    expect(forced.code, forced.stderr).toBe(0);
    expect(await cluster.waitSettled(2)).toBe(after + 1);
    const again = await cluster.dogBinary(['vdi', 'read', 'v']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.equals(data)).toBe(true);
    // Not waiting any more: a second force is refused as sheepdog refuses it.
    expect((await cluster.dog(['cluster', 'recover', 'force', '-f'], { node: 0 })).code).toBe(1);
  });
});
