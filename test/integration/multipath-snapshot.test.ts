// A snapshot taken under two hosts sharing a VDI (docs/fencing.md §1): host B cached an object as its own
// (the working VDI's), a snapshot turns that VDI into the snapshot, and host A copies the object on write into the
// new working VDI. B's next read of that object, or of an object A allocated after the snapshot, must return A's
// data: the gateway refuses a locked target's TGT reads of a snapshot's objects until it has reloaded and moved to
// the new working VDI. Real sheep (two nodes, each host on its own gateway), two shared VdiDevices with target ids.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { VdiDevice } from '../../src/block/vdi.js';
import { makeIncarnation } from '../../src/proto/sheepdog/target-id.js';
import { startLocalCluster, type LocalCluster } from '../helpers/cluster.js';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';

const MiB = 2 ** 20;
let cluster: LocalCluster;

const gw = (i: number): string => `127.0.0.1:${cluster.nodes[i]?.port ?? 0}`;

function host(i: number, id: string): Promise<VdiDevice> {
  return VdiDevice.open({ gateways: gw(i), vdi: 'snapped', shared: true, hello: { targetId: id, incarnation: makeIncarnation(Date.now(), crypto.randomInt(2 ** 20)) } });
}

beforeAll(async () => {
  cluster = await startLocalCluster(2);
  await cluster.dog(['cluster', 'format', '-c', '2']);
  expect((await cluster.dog(['vdi', 'create', 'snapped', '64M'])).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await cluster?.stopAll();
  await killAll();
  cleanupTempDirs();
});

describe('shared VDI snapshotted under two hosts', () => {
  it('B reads what A wrote after the snapshot, never the snapshot data or zeros it cached', async () => {
    const a = await host(0, 'snap-host-a');
    const b = await host(1, 'snap-host-b');
    try {
      // B allocates object 1 and caches it as the working VDI's own; both hosts know the index.
      const old1 = crypto.randomBytes(MiB);
      await b.write(4 * MiB, old1);
      expect((await a.read(4 * MiB, MiB)).equals(old1)).toBe(true);
      expect((await b.read(12 * MiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);

      expect((await cluster.dog(['vdi', 'snapshot', '-s', 'snap1', 'snapped'])).code).toBe(0);

      // A copies object 1 on write into the new working VDI and allocates object 3 there.
      const new1 = crypto.randomBytes(MiB);
      const new3 = crypto.randomBytes(MiB);
      await a.write(4 * MiB, new1);
      await a.write(12 * MiB, new3);

      expect((await b.read(4 * MiB, MiB)).equals(new1)).toBe(true);
      expect((await b.read(12 * MiB, MiB)).equals(new3)).toBe(true);
      // B's own writes go to the working VDI too and A sees them; the snapshot keeps the old bytes.
      const b1 = crypto.randomBytes(64 * 1024);
      await b.write(4 * MiB, b1);
      expect((await a.read(4 * MiB, 64 * 1024)).equals(b1)).toBe(true);
      const snap = await VdiDevice.open({ gateways: gw(0), vdi: 'snapped', tag: 'snap1' });
      try {
        expect((await snap.read(4 * MiB, MiB)).equals(old1)).toBe(true);
        expect((await snap.read(12 * MiB, MiB)).equals(Buffer.alloc(MiB))).toBe(true);
      } finally {
        await snap.close();
      }
    } finally {
      await a.close();
      await b.close();
    }
  }, 120_000);
});
