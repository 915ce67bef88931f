// `sheepfold target` exporting VDIs of a real sheep over NBD (`NAME=VDI` and the read-only snapshot export
// `NAME=VDI:TAG`), checked with real peers: nbdinfo, nbdcopy in/out byte-identical, qemu-img compare, and the
// snapshot export returning the snapshot's bytes. The export holds the VDI lock while it runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SHEEPFOLD_BIN, cleanupTempDirs, killAll, run, tempDir, lacking } from '../helpers/proc.js';
import { startTarget, type RunningTarget } from './nbd-harness.js';
import { dogBinary, dogOk, startCluster, startSheep, type SheepProc } from './dog-harness.js';

const MiB = 2 ** 20;

/** Poll until `cond` holds (generous deadline for a loaded CI machine). */
async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Offset of the first differing byte (or length mismatch), -1 if equal: a readable failure message. */
function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
const peers = !lacking(['nbdinfo', 'nbdcopy', 'qemu-img']);
let sheep: SheepProc;
let target: RunningTarget;
let dir: string;
const early = crypto.randomBytes(5 * MiB + 333);

beforeAll(async () => {
  if (!peers) return;
  dir = tempDir('sheepfold-nbdvdi-');
  sheep = await startSheep();
  await dogOk(sheep.port, ['cluster', 'format', '-c', '1']);
  await dogOk(sheep.port, ['vdi', 'create', 'disk', '64M']);
  await dogOk(sheep.port, ['vdi', 'write', 'disk', '1000'], early);
  await dogOk(sheep.port, ['vdi', 'snapshot', '-s', 'before', 'disk']);
  target = await startTarget(['--sheep', sheep.addr, '--export', 'disk=disk', '--export', 'snap=disk:before', '--target-id', 'nbd-disk']);
});
afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe.skipIf(!peers)('NBD export of a VDI (real sheep, real NBD peers)', () => {
  it('nbdinfo shows the VDI size; the snapshot export is read-only; the VDI is locked', async () => {
    const r = await run('nbdinfo', ['--json', target.uri('disk')]);
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout) as { exports: { 'export-size': number; is_read_only: boolean; can_multi_conn: boolean }[] };
    expect(info.exports[0]).toMatchObject({ 'export-size': 64 * MiB, is_read_only: false, can_multi_conn: true });
    const s = JSON.parse((await run('nbdinfo', ['--json', target.uri('snap')])).stdout) as typeof info;
    expect(s.exports[0]).toMatchObject({ 'export-size': 64 * MiB, is_read_only: true });
    const locks = await dogOk(sheep.port, ['vdi', 'lock', 'list']);
    // The holder is the target (its --target-id, docs/fencing.md §3), not its gateway sheep.
    expect(locks).toMatch(/^ {2}disk {10}2 .* target:nbd-disk$/m);
  });

  it('nbdcopy in and out is byte-identical and qemu-img compare agrees', async () => {
    const src = path.join(dir, 'src.bin');
    const back = path.join(dir, 'back.bin');
    const data = crypto.randomBytes(64 * MiB);
    fs.writeFileSync(src, data);
    let r = await run('nbdcopy', [src, target.uri('disk')], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    r = await run('nbdcopy', [target.uri('disk'), back], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(back).equals(data)).toBe(true);
    r = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, target.uri('disk')], { timeoutMs: 240_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // The bytes are in the VDI: dog reads the same.
    const viaDog = await dogBinary(sheep.port, ['vdi', 'read', 'disk', String(40 * MiB + 5), '4096']);
    expect(viaDog.stdout.equals(data.subarray(40 * MiB + 5, 40 * MiB + 5 + 4096))).toBe(true);
  });

  it('the snapshot export still returns the snapshot bytes after the working VDI was overwritten', async () => {
    const out = path.join(dir, 'snap.bin');
    const r = await run('nbdcopy', [target.uri('snap'), out], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    const got = fs.readFileSync(out);
    expect(got.length).toBe(64 * MiB);
    expect(got.subarray(1000, 1000 + early.length).equals(early)).toBe(true);
    expect(got.subarray(0, 1000).equals(Buffer.alloc(1000))).toBe(true);
    expect(got.subarray(1000 + early.length).equals(Buffer.alloc(64 * MiB - 1000 - early.length))).toBe(true);
  });

  it('releases the VDI lock when the target stops', async () => {
    target.proc.kill('SIGTERM');
    await target.proc.exited;
    expect(await dogOk(sheep.port, ['vdi', 'lock', 'list'])).toBe('  Name         Id  VDI id  Tag            Owner node(s)\n');
  });
});

describe.skipIf(!peers)('two targets exporting one VDI with ,shared through two sheep (multipath)', () => {
  it('bytes written through target A read back identical through target B', async () => {
    const nodes = await startCluster(2);
    await dogOk(nodes[0]!.port, ['cluster', 'format', '-c', '2']);
    await dogOk(nodes[0]!.port, ['vdi', 'create', 'mp', '32M']);
    const a = await startTarget(['--sheep', nodes[0]!.addr, '--export', 'mp=mp,shared', '--target-id', 'nbd-mp-a']);
    const b = await startTarget(['--sheep', nodes[1]!.addr, '--export', 'mp=mp,shared', '--target-id', 'nbd-mp-b']);
    const locks = await dogOk(nodes[0]!.port, ['vdi', 'lock', 'list']);
    expect(locks).toContain('target:nbd-mp-a(');
    expect(locks).toContain('target:nbd-mp-b(');
    const src = path.join(dir, 'mp.bin');
    const back = path.join(dir, 'mp-back.bin');
    const data = crypto.randomBytes(32 * MiB);
    fs.writeFileSync(src, data);
    // B reads first (caching an all-unallocated index), then A writes everything, then B must see it.
    let r = await run('nbdcopy', [b.uri('mp'), back], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    r = await run('nbdcopy', [src, a.uri('mp')], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    // INODE_COHERENCE is applied by B's sheep asynchronously (cluster log): wait until it knows B's cache is
    // stale before reading through B (see the report: the ack through A does not wait for the other nodes).
    await waitFor("B's invalidation on its sheep", async () =>
      (await dogOk(nodes[1]!.port, ['vdi', 'lock', 'list'])).includes('target:nbd-mp-b(invalidated)'),
    );
    r = await run('nbdcopy', [b.uri('mp'), back], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(firstDiff(fs.readFileSync(back), data)).toBe(-1);
    r = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', a.uri('mp'), b.uri('mp')], { timeoutMs: 240_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});

describe.skipIf(!peers)('a crashed target leaves its lock; dog vdi lock unlock recovers (seed 000)', () => {
  it('refuses a second open until the lock is checked and released, then serves the same bytes', async () => {
    const sh = await startSheep();
    await dogOk(sh.port, ['cluster', 'format', '-c', '1']);
    await dogOk(sh.port, ['vdi', 'create', 'crash', '16M']);
    const t1 = await startTarget(['--sheep', sh.addr, '--export', 'crash=crash']);
    const src = path.join(dir, 'crash.bin');
    const data = crypto.randomBytes(16 * MiB);
    fs.writeFileSync(src, data);
    let r = await run('nbdcopy', [src, t1.uri('crash')], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    t1.proc.kill('SIGKILL');
    await t1.proc.exited;
    expect(await dogOk(sh.port, ['vdi', 'lock', 'list'])).toMatch(/^ {2}crash {9}1 /m);
    // The same target restarted would take its own lock back (docs/fencing.md §3): another target is refused.
    const refused = await run(process.execPath, [SHEEPFOLD_BIN, 'target', '--nbd', '127.0.0.1:0', '--sheep', sh.addr, '--export', 'crash=crash', '--log-level', 'warn', '--target-id', 'another-target']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('cannot open VDI crash: cannot lock VDI crash: VDI is already locked');
    const unlock = await dogOk(sh.port, ['vdi', 'lock', 'unlock', 'crash']);
    expect(unlock).toBe('crash: checked 5 object(s), fixed 0 replica(s), re-created 0 missing replica(s), all consistent\nreleased the lock on crash\n');
    const t2 = await startTarget(['--sheep', sh.addr, '--export', 'crash=crash']);
    const back = path.join(dir, 'crash-back.bin');
    r = await run('nbdcopy', [t2.uri('crash'), back], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(back).equals(data)).toBe(true);
  });
});

describe.skipIf(!peers)('target gateway failover (--sheep A,B)', () => {
  it('keeps serving the export through B after sheep A is SIGKILLed', async () => {
    const [a, b] = await startCluster(2);
    await dogOk(a!.port, ['cluster', 'format', '-c', '2']);
    await dogOk(a!.port, ['vdi', 'create', 'fo', '16M']);
    const t = await startTarget(['--sheep', `${a!.addr},${b!.addr}`, '--export', 'fo=fo']);
    const src = path.join(dir, 'fo.bin');
    const back = path.join(dir, 'fo-back.bin');
    const first = crypto.randomBytes(16 * MiB);
    fs.writeFileSync(src, first);
    let r = await run('nbdcopy', [src, t.uri('fo')], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    a!.proc.kill('SIGKILL');
    await a!.proc.exited;
    // Let the survivor notice the death and finish its recovery before the next writes go through it.
    await waitFor('B alone in the cluster, recovery done', async () => {
      const nl = JSON.parse(await dogOk(b!.port, ['node', 'list', '--json'])) as unknown[];
      const rec = JSON.parse(await dogOk(b!.port, ['node', 'recovery', '--json'])) as { nodes: { inRecovery: boolean }[] };
      return nl.length === 1 && rec.nodes.every((n) => !n.inRecovery);
    });
    const second = crypto.randomBytes(16 * MiB);
    fs.writeFileSync(src, second);
    r = await run('nbdcopy', [src, t.uri('fo')], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    r = await run('nbdcopy', [t.uri('fo'), back], { timeoutMs: 240_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(back).equals(second)).toBe(true);
    const viaB = await dogBinary(b!.port, ['vdi', 'read', 'fo']);
    expect(viaB.code, viaB.stderr).toBe(0);
    expect(firstDiff(viaB.stdout, second)).toBe(-1);
    expect(t.proc.output()).toMatch(/vdi\.gateway_failover/);
  });
});
