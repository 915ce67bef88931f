// Lock identity and the sheep-side write fence (docs/fencing.md §3–4), on a real three-sheep cluster with our
// target processes (dist/) and raw clients:
// 1. An exclusive export SIGKILLed and restarted with the same target id (through another gateway) reopens its
//    VDI with no manual step and serves the same data; a target with another id is refused ("already locked")
//    until `dog vdi lock unlock`; after the unlock the old holder's writes are fenced (EIO), the new one's land.
// 2. Two shared targets A and B on different gateways; A's gateway sheep is killed, so A fails over to B's
//    gateway: an allocation through A still makes B reload (B reads A's data, never zeros), and
//    `dog vdi lock list` shows two distinct participants.
// 3. The fence with raw clients: incarnation X locks, incarnation Y of the same target id takes the lock over
//    through another gateway; X's writes, creates and inode refresh reads get FENCED, X cannot lock or release.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { SheepClient, SheepError } from '../../src/client/index.js';
import * as C from '../../src/proto/sheepdog/constants.js';
import { vidToDataOid, vidToVdiOid } from '../../src/proto/sheepdog/oid.js';
import { SF_RES_FENCED } from '../../src/proto/sheepdog/target-id.js';
import { startLocalCluster, type LocalCluster } from '../helpers/cluster.js';
import { SHEEPFOLD_BIN, cleanupTempDirs, killAll, start, waitForOutput } from '../helpers/proc.js';
import { startTarget, tcpClient, type RunningTarget } from './nbd-harness.js';

const MiB = 2 ** 20;
let cluster: LocalCluster;

interface LockEntry {
  name: string;
  state: string;
  owner: string | null;
  ownerTarget?: string;
  participants: { node: string; target?: string; state: string }[];
}

const gw = (i: number): string => `127.0.0.1:${cluster.nodes[i]?.port ?? 0}`;

async function locks(vdi: string, node = 2): Promise<LockEntry | undefined> {
  return (await cluster.dogJson<LockEntry[]>(['vdi', 'lock', 'list', '--json'], { node })).find((l) => l.name === vdi);
}

function target(id: string, sheep: string, exp: string): Promise<RunningTarget> {
  return startTarget(['--sheep', sheep, '--export', exp, '--target-id', id]);
}

async function sigkill(t: RunningTarget): Promise<void> {
  t.proc.kill('SIGKILL');
  await t.proc.exited;
}

/** Start a target that must fail to open its export; resolves with its output. */
async function refused(id: string, sheep: string, exp: string): Promise<string> {
  const p = start(process.execPath, [SHEEPFOLD_BIN, 'target', '--nbd', '127.0.0.1:0', '--json', '--log-level', 'warn', '--sheep', sheep, '--export', exp, '--target-id', id]);
  const code = await p.exited;
  expect(code).not.toBe(0);
  return p.output();
}

beforeAll(async () => {
  cluster = await startLocalCluster(3);
  expect((await cluster.dog(['cluster', 'format', '-c', '2'])).code).toBe(0);
  for (const v of ['excl', 'mp', 'fence']) expect((await cluster.dog(['vdi', 'create', v, '32M'])).code).toBe(0);
}, 300_000);

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe('lock identity that survives a restart, and the fence', () => {
  it('exclusive: restarted with the same target id it reopens; another id is refused until dog vdi lock unlock', async () => {
    const t1 = await target('host-x', gw(0), 'excl=excl');
    const c1 = await tcpClient(t1, { exportName: 'excl' });
    const data = crypto.randomBytes(MiB);
    await c1.write(4 * MiB, data);
    await c1.flush();
    expect(await locks('excl')).toMatchObject({ state: 'locked', owner: 'target:host-x', ownerTarget: 'host-x' });
    c1.disconnect();
    await sigkill(t1);
    expect((await locks('excl'))?.owner).toBe('target:host-x'); // the dead target's lock stays

    // Same target id, through another gateway: no manual step.
    const t2 = await target('host-x', gw(1), 'excl=excl');
    const c2 = await tcpClient(t2, { exportName: 'excl' });
    expect((await c2.read(4 * MiB, MiB)).equals(data)).toBe(true);
    const more = crypto.randomBytes(MiB);
    await c2.write(8 * MiB, more);
    await c2.flush();

    // A different target: refused with the reason, and the lock is unchanged.
    const why = await refused('host-y', gw(2), 'excl=excl');
    expect(why).toMatch(/already locked/i);
    expect(why).toContain("'dog vdi lock unlock excl'"); // what the operator can do
    expect((await locks('excl'))?.owner).toBe('target:host-x');

    // The operator breaks the lock (replicas reconciled first); now host-y opens it, host-x is fenced.
    const un = await cluster.dog(['vdi', 'lock', 'unlock', 'excl'], { node: 2 });
    expect(un.code, un.stderr).toBe(0);
    expect(await locks('excl')).toBeUndefined();
    const t3 = await target('host-y', gw(2), 'excl=excl');
    const c3 = await tcpClient(t3, { exportName: 'excl' });
    expect((await c3.read(4 * MiB, MiB)).equals(data)).toBe(true);
    expect((await c3.read(8 * MiB, MiB)).equals(more)).toBe(true);
    // FENCED at the gateway, EIO (NBD errno 5) at the initiator.
    await expect(c2.write(8 * MiB, crypto.randomBytes(4096))).rejects.toMatchObject({ name: 'NbdRequestError', errno: 5 });
    expect((await c3.read(8 * MiB, MiB)).equals(more)).toBe(true); // the fenced write did not land
    const last = crypto.randomBytes(4096);
    await c3.write(8 * MiB, last);
    await c3.flush();
    expect((await c3.read(8 * MiB, 4096)).equals(last)).toBe(true);
    expect(await locks('excl')).toMatchObject({ state: 'locked', owner: 'target:host-y' });
    c2.disconnect();
    c3.disconnect();
    await sigkill(t2);
    await sigkill(t3);
  }, 300_000);

  it('shared: A fails over to B\'s gateway and its allocations still make B reload (two participants)', async () => {
    const a = await target('host-a', `${gw(0)},${gw(1)}`, 'mp=mp,shared');
    const b = await target('host-b', gw(1), 'mp=mp,shared');
    const ca = await tcpClient(a, { exportName: 'mp' });
    const cb = await tcpClient(b, { exportName: 'mp' });
    // B caches "unallocated" for the objects A is about to allocate.
    expect((await cb.read(8 * MiB, 8 * MiB)).equals(Buffer.alloc(8 * MiB))).toBe(true);
    // A's gateway dies: A's client fails over to B's gateway.
    await cluster.killNode(0);
    const x = crypto.randomBytes(8 * MiB);
    await ca.write(8 * MiB, x);
    await ca.flush();
    await waitForOutput(a.proc, /gateway_failover/, 60_000);
    expect((await cb.read(8 * MiB, 8 * MiB)).equals(x)).toBe(true);
    const l = await locks('mp');
    expect(l?.state).toBe('shared');
    expect(l?.participants.map((p) => p.node).sort()).toEqual(['target:host-a', 'target:host-b']);
    // And the other way round: B allocates, A (behind the same gateway now) reloads.
    const y = crypto.randomBytes(4 * MiB);
    await cb.write(20 * MiB, y);
    await cb.flush();
    expect((await ca.read(20 * MiB, 4 * MiB)).equals(y)).toBe(true);
    ca.disconnect();
    cb.disconnect();
    await sigkill(a);
    await sigkill(b);
    await cluster.startNode(0);
    await cluster.waitSettled(3);
  }, 300_000);

  it('fence: an old incarnation is refused after the same target id re-locked through another gateway', async () => {
    const x = new SheepClient({ gateways: gw(0), hello: { targetId: 'raw', incarnation: 1000n } });
    const y = new SheepClient({ gateways: gw(1), hello: { targetId: 'raw', incarnation: 2000n } });
    try {
      const { vid } = await x.lockVdi('fence', { type: C.LOCK_TYPE_SHARED });
      const flags = C.SD_FLAG_CMD_TGT;
      await x.createAndWriteObj(vidToDataOid(vid, 0), Buffer.alloc(4096, 1), { copies: 2, flags });
      expect((await y.lockVdi('fence', { type: C.LOCK_TYPE_SHARED })).vid).toBe(vid);
      const code = async (p: Promise<unknown>): Promise<number> => {
        try {
          await p;
          return C.SD_RES_SUCCESS;
        } catch (err) {
          if (err instanceof SheepError) return err.result;
          throw err;
        }
      };
      expect(await code(x.writeObj(vidToDataOid(vid, 0), Buffer.alloc(4096, 2), { copies: 2, flags }))).toBe(SF_RES_FENCED);
      expect(await code(x.createAndWriteObj(vidToDataOid(vid, 1), Buffer.alloc(4096, 2), { copies: 2, flags }))).toBe(SF_RES_FENCED);
      expect(await code(x.readObj(vidToVdiOid(vid), C.TGT_INODE_SIZE, { flags }))).toBe(SF_RES_FENCED);
      expect(await code(x.lockVdi('fence', { type: C.LOCK_TYPE_SHARED }))).toBe(C.SD_RES_VDI_LOCKED);
      await x.releaseVdi(vid, C.LOCK_TYPE_SHARED); // ignored: not its lock any more
      // The new incarnation works, and nothing of X's landed.
      expect((await y.readObj(vidToDataOid(vid, 0), 4096, { flags })).equals(Buffer.alloc(4096, 1))).toBe(true);
      await y.writeObj(vidToDataOid(vid, 0), Buffer.alloc(4096, 3), { copies: 2, flags });
      expect((await y.readObj(vidToDataOid(vid, 0), 4096, { flags })).equals(Buffer.alloc(4096, 3))).toBe(true);
      const l = await locks('fence', 2);
      expect(l?.participants.map((p) => p.node)).toEqual(['target:raw']);
      // A release by the holder ends it; the VDI is unlocked and Y is fenced from now on too.
      await y.releaseVdi(vid, C.LOCK_TYPE_SHARED);
      expect(await locks('fence', 2)).toBeUndefined();
      expect(await code(y.writeObj(vidToDataOid(vid, 0), Buffer.alloc(4096, 4), { copies: 2, flags }))).toBe(SF_RES_FENCED);
    } finally {
      x.close();
      y.close();
    }
  }, 120_000);
});
