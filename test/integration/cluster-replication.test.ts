// A 3-node local sheep cluster with 3 copies, real processes on 127.0.0.1: 128 MiB written through `dog vdi
// write` and through the real tgtd (LU on node 0) while node 1 is SIGKILLed; after node 1 is back and
// recovery is done, every object has a byte-identical copy on every node the ring names, `dog vdi check`
// finds nothing to fix, and all data reads back through every node. Then: a replica file corrupted or
// deleted on one node is repaired by `dog vdi check`; a node that joins after a shared lock was taken shows
// the same lock list.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as C from '../../src/proto/sheepdog/constants.js';
import { Ring, vidToDataOid, vidToVdiOid, oidHex, nodeAddr } from '../../src/proto/sheepdog/index.js';
import { SheepClient } from '../../src/client/index.js';
import { startLocalCluster, type LocalCluster } from '../helpers/cluster.js';
import { cleanupTempDirs, haveCommand, killAll, run } from '../helpers/proc.js';
import { startTgtd, type Tgtd } from '../helpers/tgtd.js';

const MiB = 1024 * 1024;
const haveTgtd = ['tgtd', 'tgtadm', 'qemu-img'].every(haveCommand);

let cluster: LocalCluster;
let tgtd: Tgtd | null = null;

beforeAll(async () => {
  cluster = await startLocalCluster(3);
  const f = await cluster.dog(['cluster', 'format', '-c', '3']);
  expect(f.code, f.stderr).toBe(0);
}, 300_000);

afterAll(async () => {
  await tgtd?.stop();
  await cluster?.stopAll();
  await killAll();
  cleanupTempDirs();
}, 120_000);

function client(node = 0): SheepClient {
  return new SheepClient({ gateways: `127.0.0.1:${cluster.nodes[node]!.port}`, reconnectTimeoutMs: 0 });
}

/** Every oid of a VDI (inode + allocated data objects). */
async function vdiOids(c: SheepClient, name: string): Promise<bigint[]> {
  const { vid } = await c.getVdiInfo(name);
  const inode = await c.readInode(vid);
  const out = [vidToVdiOid(vid)];
  inode.dataVdiId.forEach((v, i) => {
    if (v !== 0) out.push(vidToDataOid(v, i));
  });
  return out;
}

function objFile(node: number, oid: bigint): string {
  return path.join(cluster.nodes[node]!.store, 'obj', oidHex(oid));
}

function sha(file: string): string {
  return createHash('sha1').update(fs.readFileSync(file)).digest('hex');
}

describe('3-node cluster, 3 copies', () => {
  it('keeps 128 MiB written through dog and tgtd across a SIGKILL of a node; all copies where the ring says', async () => {
    expect((await cluster.dog(['vdi', 'create', 'a', '64M'])).code).toBe(0);
    expect((await cluster.dog(['vdi', 'create', 'b', '64M'])).code).toBe(0);
    const dataA = randomBytes(64 * MiB);
    const dataB = randomBytes(64 * MiB);
    const fileB = path.join(cluster.dir, 'b.raw');
    fs.writeFileSync(fileB, dataB);

    let tgtdWrite: Promise<void> = Promise.resolve();
    if (haveTgtd) {
      tgtd = await startTgtd('cluster');
      const add = await tgtd.addLun(1, `tcp:127.0.0.1:${cluster.nodes[0]!.port}:b`);
      expect(add.code, add.stderr).toBe(0);
      const t = tgtd;
      tgtdWrite = run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', fileB, t.url(1)], { timeoutMs: 600_000 }).then((r) => {
        expect(r.code, r.stderr).toBe(0);
      });
    }
    const chunk = 8 * MiB;
    for (let off = 0; off < dataA.length; off += chunk) {
      const w = await cluster.dog(['vdi', 'write', 'a', String(off), String(chunk)], { node: 0, input: dataA.subarray(off, off + chunk) });
      expect(w.code, w.stderr).toBe(0);
      if (off === chunk) await cluster.killNode(1);
    }
    await tgtdWrite;
    if (!haveTgtd) {
      const w = await cluster.dog(['vdi', 'write', 'b'], { node: 2, input: dataB });
      expect(w.code, w.stderr).toBe(0);
    }

    await cluster.startNode(1);
    await cluster.waitSettled(3);

    const c = client(0);
    try {
      const { nodes } = await c.getNodeList();
      const ring = new Ring(nodes);
      const byAddr = new Map(cluster.nodes.map((n) => [`127.0.0.1:${n.port}`, n.index]));
      for (const name of ['a', 'b']) {
        const chk = await cluster.dogJson<{ fixedReplica: string[]; fixedMissing: string[]; lost: string[]; noMajority: string[] }>(['vdi', 'check', name]);
        expect(chk.lost).toEqual([]);
        expect(chk.noMajority).toEqual([]);
        expect(chk.fixedMissing).toEqual([]);
        expect(chk.fixedReplica).toEqual([]);
        for (const oid of await vdiOids(c, name)) {
          const holders = ring.oidToNodes(oid, 3).map((n) => byAddr.get(nodeAddr(n.nid)));
          expect(holders.length).toBe(3);
          const digests = holders.map((i) => sha(objFile(i!, oid)));
          expect(new Set(digests).size).toBe(1);
        }
      }
    } finally {
      c.close();
    }
    for (const n of cluster.nodes) {
      const a = await cluster.dogBinary(['vdi', 'read', 'a'], { node: n.index });
      expect(a.code, a.stderr).toBe(0);
      expect(a.stdout.equals(dataA)).toBe(true);
      const b = await cluster.dogBinary(['vdi', 'read', 'b'], { node: n.index });
      expect(b.code, b.stderr).toBe(0);
      expect(b.stdout.equals(dataB)).toBe(true);
    }
  }, 900_000);

  it('repairs a corrupted and a deleted replica with dog vdi check', async () => {
    expect((await cluster.dog(['vdi', 'create', 'r', '16M'])).code).toBe(0);
    const data = randomBytes(16 * MiB);
    expect((await cluster.dog(['vdi', 'write', 'r'], { input: data })).code).toBe(0);
    const c = client(0);
    let oids: bigint[];
    try {
      oids = (await vdiOids(c, 'r')).filter((o) => (o & C.VDI_BIT) === 0n);
    } finally {
      c.close();
    }
    const corrupt = objFile(1, oids[0]!);
    const fd = fs.openSync(corrupt, 'r+');
    fs.writeSync(fd, Buffer.alloc(4096, 0xee), 0, 4096, 8192);
    fs.closeSync(fd);
    fs.rmSync(objFile(2, oids[1]!));
    const chk = await cluster.dogJson<{ fixedReplica: string[]; fixedMissing: string[]; lost: string[] }>(['vdi', 'check', 'r']);
    expect(chk.fixedReplica).toEqual([oids[0]!.toString(16).padStart(16, '0')]);
    expect(chk.fixedMissing).toEqual([oids[1]!.toString(16).padStart(16, '0')]);
    expect(chk.lost).toEqual([]);
    expect(sha(objFile(1, oids[0]!))).toBe(sha(objFile(0, oids[0]!)));
    expect(sha(objFile(2, oids[1]!))).toBe(sha(objFile(0, oids[1]!)));
    const again = await cluster.dogJson<{ fixedReplica: string[]; fixedMissing: string[] }>(['vdi', 'check', 'r']);
    expect(again.fixedReplica.length + again.fixedMissing.length).toBe(0);
    for (const n of cluster.nodes) {
      const r = await cluster.dogBinary(['vdi', 'read', 'r'], { node: n.index });
      expect(r.stdout.equals(data)).toBe(true);
    }
  }, 600_000);

  it('a node that joins after a shared lock was taken shows the same lock list', async () => {
    expect((await cluster.dog(['vdi', 'create', 'shared', '8M'])).code).toBe(0);
    const c = client(2);
    try {
      await c.lockVdi('shared', { type: C.LOCK_TYPE_SHARED });
      const before = await cluster.dog(['vdi', 'lock', 'list'], { node: 0 });
      expect(before.code, before.stderr).toBe(0);
      expect(before.stdout).toContain('shared');
      const added = await cluster.addNode();
      await cluster.waitSettled(4);
      const after = await cluster.dog(['vdi', 'lock', 'list'], { node: added.index });
      expect(after.code, after.stderr).toBe(0);
      expect(after.stdout).toBe(before.stdout);
    } finally {
      c.close();
    }
  }, 600_000);

  it('admin commands: node list zones, epoch history, object location, cluster check, node kill', async () => {
    const list = await cluster.dogJson<{ addr: string; zone: number }[]>(['node', 'list']);
    expect(list.length).toBe(4);
    expect(new Set(list.map((n) => n.zone)).size).toBe(4);
    const info = await cluster.dogJson<{ epoch: number; epochs: { epoch: number; nodes: unknown[] }[] }>(['cluster', 'info']);
    expect(info.epochs.map((e) => e.epoch)).toEqual(Array.from({ length: info.epoch }, (_, i) => info.epoch - i));
    expect(info.epochs[0]!.nodes.length).toBe(4);
    const loc = await cluster.dogJson<{ nodes: { node: string; has: boolean }[]; expected: string[] }>(['vdi', 'object', 'location', 'r', '0']);
    expect(loc.expected.length).toBe(3);
    expect(loc.nodes.filter((n) => n.has).map((n) => n.node).sort()).toEqual([...loc.expected].sort());
    const chk = await cluster.dog(['cluster', 'check']);
    expect(chk.code, chk.stderr).toBe(0);
    expect(chk.stdout).toMatch(/finish check&repair a/);
    expect(chk.stdout).toMatch(/r: checked \d+ object\(s\), fixed 0 replica\(s\), re-created 0 missing replica\(s\), all consistent/);
    const victim = list.findIndex((n) => n.addr === `127.0.0.1:${cluster.nodes[3]!.port}`);
    const kill = await cluster.dog(['node', 'kill', String(victim)]);
    expect(kill.code, kill.stderr).toBe(0);
    expect(await cluster.nodes[3]!.proc!.exited).toBe(0);
    cluster.nodes[3]!.proc = null;
    await cluster.waitSettled(3);
  }, 600_000);
});
