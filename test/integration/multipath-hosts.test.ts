// Multipath across two target hosts on a real three-sheep cluster: target processes A and B (ours, from dist/)
// export one VDI in shared mode, each through its own gateway sheep, with ALUA (A preferred).
// 1. Seed 001 exactly: B caches the inode, A allocates new objects and copies on write after a snapshot, A is
//    SIGKILLed; reads through B return A's data byte for byte and B's writes land in A's objects (the index
//    entries do not change). `dog vdi lock list` shows the MSI participant states at each step.
// 2. ALUA as read by our initiator: one active/optimized and one active/non-optimized group; B takes over when A
//    dies (UNIT ATTENTION 2A/06) and gives the preference back when A returns; SendTargets lists both portals.
// 3. Persistent reservations kept in the cluster: registered and reserved through A, seen and enforced through
//    B (RESERVATION CONFLICT for a non-holder on both), still there after A's death, preempted through B.
// 4. The multipath initiator runs the stamped drill workload across both paths while A is SIGKILLed and restarted
//    three times: no I/O error, no lost write, no stale read; failover times are reported.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { VdiDevice } from '../../src/block/vdi.js';
import { IscsiSession, ScsiStatusError, discoverTargets } from '../../src/initiator/index.js';
import { PROUT_PREEMPT, PROUT_REGISTER, PROUT_RESERVE, PR_TYPE_WRITE_EXCLUSIVE } from '../../src/proto/scsi/constants.js';
import { MultipathDevice } from '../../src/initiator/multipath.js';
import { Workload } from '../../src/drill/workload.js';
import { startLocalCluster, type LocalCluster } from '../helpers/cluster.js';
import { ephemeralPort } from '../helpers/ports.js';
import { SHEEPFOLD_BIN, cleanupTempDirs, killAll, start, tempDir, waitForOutput, type Proc } from '../helpers/proc.js';
import { waitFor } from '../unit/initiator/helpers.js';

const MiB = 2 ** 20;
const IQN = 'iqn.2026-11.org.sheepfold:mp';

interface Host {
  group: number;
  port: number;
  sheepPort: number;
  config: string;
  proc: Proc | null;
}

let cluster: LocalCluster;
let dir: string;
const hosts: Host[] = [];

/** Write host i's config (VDI `vdi` shared, ALUA group i+1, peer = the other host) and start it. */
async function startHost(i: number, vdi: string): Promise<Host> {
  const h = hosts[i];
  if (!h) throw new Error(`no host ${i}`);
  const peer = hosts[1 - i];
  if (!peer) throw new Error('no peer');
  const toml = [
    `sheep = "127.0.0.1:${h.sheepPort}"`,
    `target-id = "${holder(i)}"`,
    'log-level = "warn"',
    '[nbd]',
    'enabled = false',
    '[iscsi]',
    'enabled = true',
    `listen = "127.0.0.1:${h.port}"`,
    'iqn-prefix = "iqn.2026-11.org.sheepfold:"',
    `portals = "127.0.0.1:${hosts[0]?.port}#1,127.0.0.1:${hosts[1]?.port}#2"`,
    `alua-group = ${h.group}`,
    'alua-preferred-group = 1',
    `alua-peers = "${peer.group}@127.0.0.1:${peer.port}"`,
    'alua-probe-ms = 200',
    '[[export]]',
    'name = "mp"',
    'type = "vdi"',
    `vdi = "${vdi}"`,
    'shared = true',
    '',
  ].join('\n');
  fs.writeFileSync(h.config, toml);
  h.proc = start(process.execPath, [SHEEPFOLD_BIN, 'target', '--config', h.config, '--json']);
  await waitForOutput(h.proc, /"ready":true/, 60_000);
  return h;
}

/** Host i's lock identity (docs/fencing.md §3): `dog vdi lock list` shows it as `target:ID`. */
function holder(i: number): string {
  return `mp-host-${i}`;
}

async function killHost(i: number): Promise<void> {
  const h = hosts[i];
  if (!h?.proc) return;
  h.proc.kill('SIGKILL');
  await h.proc.exited;
  h.proc = null;
}

function session(h: Host): IscsiSession {
  return new IscsiSession({ host: '127.0.0.1', port: h.port, targetName: IQN, nopIntervalMs: 0, reconnect: false });
}

/** The VDI's data index as a lock-free reader sees it now. */
async function indexOf(vdi: string): Promise<Uint32Array> {
  const d = await VdiDevice.open({ gateways: `127.0.0.1:${cluster.nodes[2]?.port}`, vdi, noLock: true, readOnly: true });
  try {
    return d.indexSnapshot();
  } finally {
    await d.close();
  }
}

async function lockList(): Promise<string> {
  const r = await cluster.dog(['vdi', 'lock', 'list'], { node: 2 });
  expect(r.code).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  cluster = await startLocalCluster(3);
  expect((await cluster.dog(['cluster', 'format', '-c', '2'])).code).toBe(0);
  for (const v of ['seed', 'alua', 'pr', 'wl']) expect((await cluster.dog(['vdi', 'create', v, '64M'])).code).toBe(0);
  dir = tempDir('sheepfold-mp-hosts-');
  for (let i = 0; i < 2; i++) {
    hosts.push({ group: i + 1, port: await ephemeralPort(), sheepPort: cluster.nodes[i]?.port ?? 0, config: path.join(dir, `host-${i}.toml`), proc: null });
  }
}, 300_000);

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe('multipath across two target hosts (ours, shared VDI, ALUA)', () => {
  it('seed 001: B never acts on its stale inode after A allocated, copied on write and died', async () => {
    await startHost(0, 'seed');
    await startHost(1, 'seed');
    const [ha, hb] = [hosts[0] as Host, hosts[1] as Host];
    const a = session(ha);
    const b = session(hb);
    await a.connect();
    await b.connect();
    try {
      // B reads first: it caches "unallocated" for the objects A is about to allocate.
      expect((await b.read((8 * MiB) / 512, (12 * MiB) / 512)).equals(Buffer.alloc(12 * MiB))).toBe(true);
      const x = crypto.randomBytes(12 * MiB);
      await a.write((8 * MiB) / 512, x, { fua: true }); // allocates objects 2, 3, 4
      let locks = await lockList();
      expect(locks).toContain(`target:${holder(0)}(modified)`);
      expect(locks).toContain(`target:${holder(1)}(invalidated)`);
      // Copy on write: a snapshot, then A overwrites part of object 3 and allocates object 6.
      const v1 = (await indexOf('seed'))[2] ?? 0;
      expect((await cluster.dog(['vdi', 'snapshot', '-s', 'before', 'seed'])).code).toBe(0);
      const y = crypto.randomBytes(MiB);
      await a.write((13 * MiB) / 512, y, { fua: true });
      const w = crypto.randomBytes(2 * MiB);
      await a.write((24 * MiB) / 512, w, { fua: true });
      const original = Buffer.from(x);
      x.set(y, 5 * MiB);
      const afterA = await indexOf('seed');
      const v2 = afterA[3] ?? 0;
      expect(v2).not.toBe(v1);
      expect([afterA[2], afterA[3], afterA[4], afterA[6]]).toEqual([v1, v2, v1, v2]);
      expect([...afterA.entries()].filter(([, v]) => v !== 0).map(([i]) => i)).toEqual([2, 3, 4, 6]);
      locks = await lockList();
      expect(locks).toContain(`target:${holder(0)}(modified)`);
      expect(locks).toContain(`target:${holder(1)}(invalidated)`);

      await killHost(0); // A dies; B still holds the inode from before A's allocations
      a.close().catch(() => undefined);

      expect((await b.read((8 * MiB) / 512, (12 * MiB) / 512)).equals(x)).toBe(true);
      expect((await b.read((24 * MiB) / 512, (2 * MiB) / 512)).equals(w)).toBe(true);
      locks = await lockList();
      expect(locks).toContain(`target:${holder(1)}(shared)`);
      // B writes into the objects A allocated or copied (3 and 6): they land there, the index does not change.
      const z3 = crypto.randomBytes(MiB);
      const z6 = crypto.randomBytes(MiB);
      await b.write((12 * MiB + 512 * 1024) / 512, z3, { fua: true });
      await b.write((25 * MiB) / 512, z6, { fua: true });
      expect([...(await indexOf('seed'))]).toEqual([...afterA]);
      x.set(z3, 4 * MiB + 512 * 1024);
      w.set(z6, MiB);
      expect((await b.read((8 * MiB) / 512, (12 * MiB) / 512)).equals(x)).toBe(true);
      expect((await b.read((24 * MiB) / 512, (2 * MiB) / 512)).equals(w)).toBe(true);
      // A write to object 2 (still the snapshot's) is copied on write into the working VDI, never into the snapshot.
      const z2 = crypto.randomBytes(64 * 1024);
      await b.write((9 * MiB) / 512, z2, { fua: true });
      const afterB = await indexOf('seed');
      expect([afterB[2], afterB[3], afterB[4], afterB[6]]).toEqual([v2, v2, v1, v2]);
      const snap = await VdiDevice.open({ gateways: `127.0.0.1:${cluster.nodes[2]?.port}`, vdi: 'seed', tag: 'before' });
      const old = await snap.read(8 * MiB, 12 * MiB);
      await snap.close();
      expect(old.equals(original)).toBe(true);
    } finally {
      await b.close().catch(() => undefined);
      await killHost(1);
    }
  }, 300_000);

  it('ALUA: one active/optimized and one active/non-optimized group, swapped while A is down; SendTargets lists both', async () => {
    await startHost(0, 'alua');
    await startHost(1, 'alua');
    const [ha, hb] = [hosts[0] as Host, hosts[1] as Host];
    const b = session(hb);
    await b.connect();
    try {
      const states = async (s: IscsiSession): Promise<string[]> =>
        (await s.reportTargetPortGroups()).map((g) => `${g.id}:${g.state}${g.preferred ? ':pref' : ''}`);
      const a = session(ha);
      await a.connect();
      // Each host probes the other: wait until A has seen B come up.
      let sa: string[] = [];
      for (let i = 0; i < 600 && sa[1] !== '2:active/non-optimized'; i++) {
        sa = await states(a);
        if (sa[1] !== '2:active/non-optimized') await new Promise((r) => setTimeout(r, 50));
      }
      expect(sa).toEqual(['1:active/optimized:pref', '2:active/non-optimized']);
      expect(await states(b)).toEqual(['1:active/optimized:pref', '2:active/non-optimized']);
      const [ia, ib] = [await a.deviceIdentification(), await b.deviceIdentification()];
      expect(ia.naa).toBe(ib.naa);
      expect([ia.targetPortGroup, ia.relativeTargetPort, ib.targetPortGroup, ib.relativeTargetPort]).toEqual([1, 1, 2, 2]);
      expect(await a.unitSerialNumber()).toBe(await b.unitSerialNumber());
      expect((await a.inquiry()).tpgs).toBe(3);
      const found = await discoverTargets({ host: '127.0.0.1', port: hb.port });
      expect(found).toHaveLength(1);
      expect(found[0]?.name).toBe(IQN);
      expect(found[0]?.addresses).toEqual([
        { host: '127.0.0.1', port: ha.port, portalGroupTag: 1 },
        { host: '127.0.0.1', port: hb.port, portalGroupTag: 2 },
      ]);
      await a.close();

      await killHost(0);
      // B notices A is gone: UNIT ATTENTION 2A/06, then B is active/optimized.
      let seen: string[] = [];
      for (let i = 0; i < 600 && seen[1] !== '2:active/optimized'; i++) {
        seen = await states(b).catch(() => []);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(seen).toEqual(['1:unavailable:pref', '2:active/optimized']);

      await startHost(0, 'alua'); // same target id and gateway: reopens its shared lock without manual steps
      for (let i = 0; i < 600 && seen[0] !== '1:active/optimized:pref'; i++) {
        seen = await states(b).catch(() => []);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(seen).toEqual(['1:active/optimized:pref', '2:active/non-optimized']);
    } finally {
      await b.close().catch(() => undefined);
      await killHost(0);
      await killHost(1);
    }
  }, 300_000);

  it('persistent reservations: made through A, seen and enforced through B, kept after A dies', async () => {
    await startHost(0, 'pr');
    await startHost(1, 'pr');
    const [ha, hb] = [hosts[0] as Host, hosts[1] as Host];
    const who = (h: Host, name: string): IscsiSession =>
      new IscsiSession({ host: '127.0.0.1', port: h.port, targetName: IQN, nopIntervalMs: 0, reconnect: false, initiatorName: name });
    const holderA = who(ha, 'iqn.2026-11.test:holder');
    const otherA = who(ha, 'iqn.2026-11.test:other');
    const otherB = who(hb, 'iqn.2026-11.test:other');
    const holderB = who(hb, 'iqn.2026-11.test:holder-b');
    for (const s of [holderA, otherA, otherB, holderB]) await s.connect();
    try {
      const key = 0x1234abcdn;
      await holderA.persistentReserveOut(PROUT_REGISTER, 0, { reservationKey: 0n, serviceActionReservationKey: key });
      await holderA.persistentReserveOut(PROUT_RESERVE, PR_TYPE_WRITE_EXCLUSIVE, { reservationKey: key, serviceActionReservationKey: 0n });
      // Seen through B (PR IN reads the cluster copy).
      expect((await otherB.readKeys()).keys).toEqual([key]);
      expect((await otherB.readReservation()).reservation).toMatchObject({ key, type: PR_TYPE_WRITE_EXCLUSIVE });
      // Enforced on both hosts at once: a non-holder's write conflicts.
      const data = crypto.randomBytes(4096);
      const conflict = async (s: IscsiSession): Promise<boolean> => {
        try {
          await s.write(2048, data);
          return false;
        } catch (e) {
          return e instanceof ScsiStatusError && e.kind === 'reservation-conflict';
        }
      };
      expect(await conflict(otherA)).toBe(true);
      expect(await conflict(otherB)).toBe(true);
      await holderA.write(2048, data); // the holder writes
      expect((await otherB.read(2048, 8)).equals(data)).toBe(true); // WRITE EXCLUSIVE: others may read

      await killHost(0);
      holderA.close().catch(() => undefined);
      otherA.close().catch(() => undefined);
      expect((await otherB.readReservation()).reservation).toMatchObject({ key, type: PR_TYPE_WRITE_EXCLUSIVE });
      expect(await conflict(otherB)).toBe(true);
      // A new path of the cluster software takes over with PREEMPT through B.
      const key2 = 0x5678n;
      await holderB.persistentReserveOut(PROUT_REGISTER, 0, { reservationKey: 0n, serviceActionReservationKey: key2 });
      await holderB.persistentReserveOut(PROUT_PREEMPT, PR_TYPE_WRITE_EXCLUSIVE, { reservationKey: key2, serviceActionReservationKey: key });
      expect((await otherB.readKeys()).keys).toEqual([key2]);
      expect((await otherB.readReservation()).reservation).toMatchObject({ key: key2 });
      await holderB.write(2048, data);
    } finally {
      for (const s of [holderA, otherA, otherB, holderB]) await s.close().catch(() => undefined);
      await killHost(0);
      await killHost(1);
    }
  }, 300_000);

  it('drill workload over MultipathDevice while A is SIGKILLed and restarted three times: history clean', async () => {
    await startHost(0, 'wl');
    await startHost(1, 'wl');
    const [ha, hb] = [hosts[0] as Host, hosts[1] as Host];
    const dev = new MultipathDevice({
      paths: [
        { name: 'A', session: { host: '127.0.0.1', port: ha.port, targetName: IQN } },
        { name: 'B', priority: 1, session: { host: '127.0.0.1', port: hb.port, targetName: IQN } },
      ],
      ioTimeoutMs: 10_000,
      probeIntervalMs: 200,
      aluaRefreshMs: 1000,
    });
    await dev.open();
    try {
      // 64 blocks of 64 KiB at 4 MiB objects: the workload allocates objects through both hosts.
      const wl = new Workload(dev, { blocks: 64, workers: 4, writeRatio: 0.5, seed: 11, opTimeoutMs: 120_000, baseOffset: 0 });
      wl.start();
      for (let round = 0; round < 3; round++) {
        const acked = wl.stats.acknowledgedWrites;
        await waitFor(() => wl.stats.acknowledgedWrites > acked + 50, `writes before kill ${round}`, 120_000);
        await killHost(0);
        await waitFor(() => dev.failovers().length > round, `failover ${round}`, 120_000);
        const mid = wl.stats.acknowledgedWrites;
        await waitFor(() => wl.stats.acknowledgedWrites > mid + 50, `writes through B ${round}`, 120_000);
        await startHost(0, 'wl');
        await waitFor(() => dev.status()[0]?.state === 'active', `A reinstated ${round}`, 120_000);
      }
      const last = wl.stats.acknowledgedWrites;
      await waitFor(() => wl.stats.acknowledgedWrites > last + 50, 'writes after the last failback', 120_000);
      await wl.stop();
      await wl.verify();
      const r = wl.check();
      const failovers = dev.failovers();
      console.log(`multipath failover times (ms): ${failovers.map((f) => `${f.durationMs ?? "?"}/${f.recoveryMs ?? "?"}`).join(", ")}`);
      expect(wl.stats.readErrors + wl.stats.writeErrors).toBe(0);
      expect([r.corrupt, r.staleReads, r.lostWrites, r.nonlinearizable]).toEqual([0, 0, 0, 0]);
      expect(failovers.length).toBeGreaterThanOrEqual(3);
    } finally {
      await dev.close();
      await killHost(0);
      await killHost(1);
    }
  }, 600_000);
});
