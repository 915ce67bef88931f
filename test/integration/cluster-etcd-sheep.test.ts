// Three sheep processes on the etcd cluster driver (a real etcd on 127.0.0.1), each bound to its own loopback
// address (127.0.0.1/2/3), which the etcd driver treats as three hosts: zones default to the host, so
// `dog cluster format -c 3` puts every object's three copies on three distinct zones. A SIGKILLed sheep leaves
// as failed when its lease expires (a new epoch, I/O goes on), comes back as a new incarnation, recovers, and
// `dog vdi check` is clean with the same bytes read through every sheep.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { hostZone } from '../../src/sheep/index.js';
import { startLocalCluster, type LocalCluster, type LocationJson, type NodeJson } from '../helpers/cluster.js';
import { startEtcd, stopEtcd, type EtcdMember } from '../helpers/etcd.js';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';

const MiB = 1024 * 1024;
let etcd: EtcdMember;
let cluster: LocalCluster | null = null;

beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await cluster?.stopAll();
  await killAll();
  if (etcd) await stopEtcd(etcd);
  cleanupTempDirs();
}, 120_000);

describe('sheep on the etcd cluster driver', () => {
  it('3 sheep: format -c 3 → copies on 3 zones (hosts); kill one → failed leave, new epoch, I/O goes on; back → recovery, check clean', async () => {
    const hosts = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
    cluster = await startLocalCluster(3, {
      cluster: `etcd:${etcd.clientUrl}/sf-sheep-${process.pid}`,
      hostOf: (i) => hosts[i]!,
      extraArgs: ['--lease-ttl', '2'],
      logLevel: 'info',
    });
    const c = cluster;
    expect((await c.dog(['cluster', 'format', '-c', '3'])).code).toBe(0);
    const list = await c.dogJson<NodeJson[]>(['node', 'list']);
    expect(list.map((n) => n.zone).sort()).toEqual(hosts.map(hostZone).sort());
    expect((await c.dog(['vdi', 'create', 'v', '32M'])).code).toBe(0);
    const first = randomBytes(12 * MiB);
    expect((await c.dog(['vdi', 'write', 'v'], { input: first })).code).toBe(0);
    for (const idx of ['0', '1', '2']) {
      const loc = await c.dogJson<LocationJson>(['vdi', 'object', 'location', 'v', idx]);
      expect(loc.nodes.filter((n) => n.has).length).toBe(3);
      expect(loc.zones.length).toBe(3);
    }
    const text = await c.dog(['vdi', 'object', 'location', 'v', '0']);
    expect(text.stdout).toContain('The copies are in 3 zones');
    const epoch0 = (await c.dogJson<{ epoch: number }>(['cluster', 'info'])).epoch;

    // SIGKILL sheep 2: its lease (TTL 2 s) expires, the others see a failed leave and a new epoch.
    const killed = Date.now();
    await c.killNode(2);
    const epoch1 = await c.waitSettled(2, 60_000);
    const leaveMs = Date.now() - killed;
    expect(epoch1).toBe(epoch0 + 1);
    expect(c.nodes[0]!.proc!.output()).toMatch(/cluster_member_failed/);
    const second = randomBytes(4 * MiB);
    const w = await c.dog(['vdi', 'write', 'v', String(16 * MiB), String(4 * MiB)], { input: second });
    expect(w.code, w.stderr).toBe(0);

    // Back as a new incarnation: another epoch, recovery, every copy in place again.
    await c.startNode(2);
    const epoch2 = await c.waitSettled(3, 120_000);
    expect(epoch2).toBe(epoch1 + 1);
    const check = await c.dog(['vdi', 'check', 'v']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    for (const node of [0, 1, 2]) {
      const r = await c.dogBinary(['vdi', 'read', 'v', '0', String(20 * MiB)], { node });
      expect(r.stdout.subarray(0, 12 * MiB).equals(first)).toBe(true);
      expect(r.stdout.subarray(16 * MiB, 20 * MiB).equals(second)).toBe(true);
    }
    for (const idx of ['0', '4']) {
      const loc = await c.dogJson<LocationJson>(['vdi', 'object', 'location', 'v', idx], { node: 2 });
      expect(loc.nodes.filter((n) => n.has).length).toBe(3);
    }
    console.log(`etcd driver: SIGKILLed sheep out of the membership and the cluster settled after ${leaveMs} ms (lease TTL 2 s)`);
  });
});
