// Log compaction with real sheep nodes (in-process SheepNode + server) on the etcd driver (the local driver does not compact yet): a cluster
// that has applied 100 000 cluster operations (VDI additions, lock/release pairs) keeps a bounded log (at most
// about two compaction intervals), and a new sheep joins by loading the snapshot and replaying only what follows
// it — its applied state (config, epochs, VDI table, locks, tombstones) then equals the old node's. The join
// time and the retained log are printed.
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import type { ClusterDriver } from '../../src/sheep/cluster/local.js';
import { EtcdClusterDriver } from '../../src/sheep/cluster/etcd.js';
import type { ClusterMsg } from '../../src/sheep/cluster/messages.js';
import { startSheep, type RunningSheep } from '../../src/sheep/index.js';
import { SD_CLUSTER_FLAG_USE_LOCK } from '../../src/proto/sheepdog/constants.js';
import { retainedRevisions, startEtcd, stopEtcd, type EtcdMember } from '../helpers/etcd.js';
import { cleanupTempDirs, tempDir } from '../helpers/proc.js';

const OPS = 100_000;
const COMPACT_EVERY = 10_000;
const LOADERS = 8;
const VDIS = 2_000;

const sheep: RunningSheep[] = [];
const loaders: ClusterDriver[] = [];
let etcd: EtcdMember | null = null;
afterAll(async () => {
  for (const s of sheep) await s.stop().catch(() => undefined);
  for (const d of loaders) await d.close().catch(() => undefined);
  if (etcd) await stopEtcd(etcd);
  cleanupTempDirs();
}, 120_000);

/** The state a node applied, minus what is legitimately per node (epoch start times, its own space). */
function comparable(s: RunningSheep): unknown {
  const st = JSON.parse(JSON.stringify(s.node.exportClusterState())) as {
    config: { space: unknown } | null;
    history: { time: unknown }[];
  };
  if (st.config) st.config.space = null;
  for (const h of st.history) h.time = null;
  return st;
}

/** 100 000 cluster operations from LOADERS extra members (not sheep: they do not change the node set). */
async function load(make: () => ClusterDriver): Promise<void> {
  const mine: ClusterDriver[] = [];
  for (let i = 0; i < LOADERS; i++) {
    const d = make();
    d.onEvent(() => undefined);
    await d.join(`loader-${i}`, null);
    mine.push(d);
    loaders.push(d);
  }
  const sender = { addr: Buffer.alloc(16).toString('hex'), port: 9 };
  let next = 0;
  const op = (k: number): ClusterMsg => {
    const token = `load-${k}`;
    if (k < VDIS) return { t: 'vdi_add', token, vid: 0x100000 + k, oldVid: 0, copies: 3, copyPolicy: 0, blockSizeShift: 22, parentVid: 0 };
    const vid = 0x100000 + (Math.floor(k / 2) % VDIS);
    return k % 2 === 0 ? { t: 'lock', token, vid, type: 0, sender } : { t: 'release', token, vid, type: 0, sender };
  };
  // The VDIs first (in order), then lock/release traffic from every loader at once.
  for (; next < VDIS; next++) await mine[0]!.broadcast(op(next));
  // Each loader keeps a window of broadcasts in flight (the drivers commit them in groups, in order).
  await Promise.all(
    mine.map(async (d) => {
      while (next < OPS) {
        const window: Promise<number>[] = [];
        for (let w = 0; w < 64 && next < OPS; w++, next += 2) window.push(d.broadcast(op(next)), d.broadcast(op(next + 1)));
        await Promise.all(window);
      }
    }),
  );
}

async function run(
  label: string,
  make: (compactEvery: number) => ClusterDriver,
  retained: () => Promise<number>,
): Promise<{ joinMs: number; retained: number }> {
  const dir = tempDir(`sf-compact-${label}-`);
  for (const d of ['a', 'b']) fs.mkdirSync(path.join(dir, d));
  const a = await startSheep({ dir: path.join(dir, 'a'), port: 0, driver: make(COMPACT_EVERY) });
  sheep.push(a);
  expect(await a.node.makeFs({ ctime: 0n, flags: SD_CLUSTER_FLAG_USE_LOCK, copies: 3, copyPolicy: 0, blockSizeShift: 22, store: '' })).toBe(0);
  const t0 = Date.now();
  await load(() => make(COMPACT_EVERY));
  const loadMs = Date.now() - t0;
  await a.node.driver.sync!();
  expect(a.node.vdis.all().length).toBe(VDIS);
  const kept = await retained();
  const j0 = Date.now();
  const b = await startSheep({ dir: path.join(dir, 'b'), port: 0, driver: make(COMPACT_EVERY) });
  const joinMs = Date.now() - j0;
  sheep.push(b);
  await a.node.driver.sync!();
  await b.node.driver.sync!();
  expect(comparable(b)).toEqual(comparable(a));
  expect(b.node.epoch).toBe(a.node.epoch);
  expect(b.node.locks.lockedVids()).toEqual(a.node.locks.lockedVids());
  console.log(`${label}: ${OPS} cluster operations in ${loadMs} ms; log retained ${kept} (compaction every ${COMPACT_EVERY}); new sheep joined in ${joinMs} ms`);
  return { joinMs, retained: kept };
}

describe('cluster log compaction with sheep nodes', () => {
  it(`etcd: ${OPS} operations → bounded history, a new sheep joins from the snapshot with the same state`, async () => {
    const e = (etcd = await startEtcd());
    const prefix = `/sf-compact-${process.pid}`;
    const admin = new Etcd3({ hosts: [e.clientUrl] });
    const retained = (): Promise<number> => retainedRevisions(admin, Buffer.from(`${prefix}/log`));
    try {
      const r = await run('etcd', (compactEvery) => new EtcdClusterDriver({ endpoints: [e.clientUrl], prefix, compactEvery }), retained);
      expect(r.retained).toBeLessThanOrEqual(2 * COMPACT_EVERY + 2 * LOADERS + 10);
      expect(r.joinMs).toBeLessThan(20_000);
    } finally {
      admin.close();
    }
  }, 900_000);
});
