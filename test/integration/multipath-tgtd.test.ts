// Seed 001 with a mixed pair of paths: our target and the real tgtd (sheepdog backing store, its own SHARED
// lock through its own sheep) export one VDI. In both directions: the surviving host caches the inode, the other
// allocates objects (and copies on write after a snapshot) and is SIGKILLed; the survivor reads the dead host's
// data byte for byte and its writes land in those objects (the index does not change). `dog vdi lock list` shows
// the participant states (modified / invalidated / shared) at each step.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { VdiDevice } from '../../src/block/vdi.js';
import { IscsiSession } from '../../src/initiator/index.js';
import { startLocalCluster, type LocalCluster } from '../helpers/cluster.js';
import { ephemeralPort } from '../helpers/ports.js';
import { SHEEPFOLD_BIN, cleanupTempDirs, killAll, start, tempDir, waitForOutput, type Proc, lacking } from '../helpers/proc.js';
import { startTgtd, type Tgtd } from '../helpers/tgtd.js';

const MiB = 2 ** 20;
let cluster: LocalCluster;
let dir: string;

async function ours(vdi: string, sheepPort: number): Promise<{ proc: Proc; session: IscsiSession }> {
  const port = await ephemeralPort();
  const cfg = path.join(dir, `ours-${vdi}.toml`);
  fs.writeFileSync(
    cfg,
    [`sheep = "127.0.0.1:${sheepPort}"`, `target-id = "ours-${vdi}"`, 'log-level = "warn"', '[nbd]', 'enabled = false', '[iscsi]', 'enabled = true',
      `listen = "127.0.0.1:${port}"`, '[[export]]', `name = "${vdi}"`, 'type = "vdi"', `vdi = "${vdi}"`, 'shared = true', ''].join('\n'),
  );
  const proc = start(process.execPath, [SHEEPFOLD_BIN, 'target', '--config', cfg, '--json']);
  await waitForOutput(proc, /"ready":true/, 60_000);
  const session = new IscsiSession({ host: '127.0.0.1', port, targetName: `iqn.2026-11.org.sheepfold:${vdi}`, nopIntervalMs: 0, reconnect: false });
  await session.connect();
  return { proc, session };
}

async function theirs(vdi: string, sheepPort: number): Promise<{ tgtd: Tgtd; session: IscsiSession }> {
  const tgtd = await startTgtd(vdi);
  const r = await tgtd.addLun(1, `tcp:127.0.0.1:${sheepPort}:${vdi}`);
  if (r.code !== 0) throw new Error(`tgtd addLun: ${r.stderr}`);
  const session = new IscsiSession({ host: '127.0.0.1', port: tgtd.portal, targetName: tgtd.iqn, lun: 1, nopIntervalMs: 0, reconnect: false });
  await session.connect();
  return { tgtd, session };
}

async function indexOf(vdi: string): Promise<number[]> {
  const d = await VdiDevice.open({ gateways: `127.0.0.1:${cluster.nodes[2]?.port}`, vdi, noLock: true, readOnly: true });
  try {
    return [...d.indexSnapshot()];
  } finally {
    await d.close();
  }
}

async function lockLine(vdi: string): Promise<string> {
  const r = await cluster.dog(['vdi', 'lock', 'list'], { node: 2 });
  expect(r.code).toBe(0);
  return r.stdout.split('\n').find((l) => l.trim().startsWith(`${vdi} `)) ?? '';
}

interface Path {
  session: IscsiSession;
  /** How `dog vdi lock list` names this path's lock holder: `port:N` (tgtd: its gateway) or `target:ID` (ours). */
  holder: string;
  kill(): Promise<void>;
}

/** The seed 001 walk: `writer` allocates and copies on write, dies; `survivor` reads and writes after it. */
async function seed001(vdi: string, writer: Path, survivor: Path): Promise<void> {
  const blk = (b: number): number => b / 512;
  expect((await survivor.session.read(blk(8 * MiB), blk(8 * MiB))).equals(Buffer.alloc(8 * MiB))).toBe(true);
  const x = crypto.randomBytes(8 * MiB);
  await writer.session.write(blk(8 * MiB), x, { fua: true });
  const line = await lockLine(vdi);
  expect(line).toContain(`${writer.holder}(modified)`);
  expect(line).toContain(`${survivor.holder}(invalidated)`);
  expect((await cluster.dog(['vdi', 'snapshot', '-s', 'snap', vdi])).code).toBe(0);
  const y = crypto.randomBytes(MiB);
  await writer.session.write(blk(9 * MiB), y, { fua: true }); // copy on write of object 2
  const w = crypto.randomBytes(MiB);
  await writer.session.write(blk(20 * MiB), w, { fua: true }); // a fresh object 5
  x.set(y, MiB);
  const afterWriter = await indexOf(vdi);
  expect(afterWriter[2]).not.toBe(afterWriter[3]);
  // The snapshot made a new working vid; the lock states now live on it (logged, see the report).
  console.log(`${vdi} after the copy on write: ${await lockLine(vdi)}`);

  await writer.kill();
  expect((await survivor.session.read(blk(8 * MiB), blk(8 * MiB))).equals(x)).toBe(true);
  expect((await survivor.session.read(blk(20 * MiB), blk(MiB))).equals(w)).toBe(true);
  console.log(`${vdi} after the survivor's reads: ${await lockLine(vdi)}`);
  const z = crypto.randomBytes(MiB);
  await survivor.session.write(blk(9 * MiB), z, { fua: true });
  await survivor.session.write(blk(20 * MiB), z, { fua: true });
  expect(await indexOf(vdi)).toEqual(afterWriter); // into the objects the writer made
  x.set(z, MiB);
  expect((await survivor.session.read(blk(8 * MiB), blk(8 * MiB))).equals(x)).toBe(true);
  expect((await survivor.session.read(blk(20 * MiB), blk(MiB))).equals(z)).toBe(true);
  console.log(`${vdi} after the survivor's writes: ${await lockLine(vdi)}`);
}

beforeAll(async () => {
  cluster = await startLocalCluster(3);
  expect((await cluster.dog(['cluster', 'format', '-c', '2'])).code).toBe(0);
  for (const v of ['mixa', 'mixb']) expect((await cluster.dog(['vdi', 'create', v, '32M'])).code).toBe(0);
  dir = tempDir('sheepfold-mp-tgtd-');
}, 300_000);
afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe.skipIf(lacking(['tgtd']))('multipath with our target and the real tgtd on one VDI (seed 001)', () => {
  it('A = ours dies after allocating; B = tgtd reads its data and writes into its objects', async () => {
    const [s0, s1] = [cluster.nodes[0]?.port ?? 0, cluster.nodes[1]?.port ?? 0];
    const b = await theirs('mixa', s1);
    const a = await ours('mixa', s0);
    try {
      await seed001(
        'mixa',
        { session: a.session, holder: 'target:ours-mixa', kill: async () => { a.proc.kill('SIGKILL'); await a.proc.exited; await a.session.close().catch(() => undefined); } },
        { session: b.session, holder: `port:${s1}`, kill: async () => undefined },
      );
    } finally {
      await b.session.close().catch(() => undefined);
      await b.tgtd.stop();
    }
  }, 300_000);

  it('A = tgtd dies after allocating; B = ours reads its data and writes into its objects', async () => {
    const [s0, s1] = [cluster.nodes[0]?.port ?? 0, cluster.nodes[1]?.port ?? 0];
    const b = await ours('mixb', s0);
    const a = await theirs('mixb', s1);
    try {
      await seed001(
        'mixb',
        {
          session: a.session,
          holder: `port:${s1}`,
          kill: async () => {
            a.tgtd.proc.kill('SIGKILL');
            await a.tgtd.proc.exited;
            await a.session.close().catch(() => undefined);
          },
        },
        { session: b.session, holder: 'target:ours-mixb', kill: async () => undefined },
      );
    } finally {
      await b.session.close().catch(() => undefined);
      await a.tgtd.stop();
      b.proc.kill('SIGKILL');
    }
  }, 300_000);
});
