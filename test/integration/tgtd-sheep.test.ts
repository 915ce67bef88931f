// Acceptance of the sheep against the real tgtd 1.0.85 (`--bstype sheepdog`) and our `dog`: 64 MiB of random
// data through iSCSI reads back identical through tgtd and through `dog vdi read`; READ CAPACITY(16) gives the
// VDI size; `dog vdi write` data is read through tgtd; a snapshot under a live tgtd keeps the old bytes; VDI
// locks refuse a second tgtd until the first LU is deleted and refuse an exclusive lock from another client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as C from '../../src/proto/sheepdog/constants.js';
import { portInRange, waitForPort } from '../helpers/ports.js';
import { DOG_BIN, SHEEPFOLD_BIN, cleanupTempDirs, killAll, run, runBinary, start, tempDir, waitForOutput, type Proc, lacking } from '../helpers/proc.js';
import { SheepWire } from '../helpers/sheep-wire.js';
import { startTgtd, type Tgtd } from '../helpers/tgtd.js';

const MiB = 1024 * 1024;
const peers = !lacking(['tgtd', 'tgtadm', 'qemu-img', 'qemu-io', 'iscsi-readcapacity16'], { 'the built sheepfold CLI': SHEEPFOLD_BIN, 'the built dog CLI': DOG_BIN });
const built = peers;

let dir: string;
let port: number;
let sheep: Proc;
const tgtds: Tgtd[] = [];

async function dog(args: string[], input?: Buffer): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await run(process.execPath, [DOG_BIN, ...args, '-p', String(port)], { input, timeoutMs: 120_000 });
  return r;
}

async function dogOk(args: string[], input?: Buffer): Promise<string> {
  const r = await dog(args, input);
  if (r.code !== 0) throw new Error(`dog ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function dogRead(args: string[]): Promise<Buffer> {
  const r = await runBinary(process.execPath, [DOG_BIN, 'vdi', 'read', ...args, '-p', String(port)], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`dog vdi read ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Read a range of a LU through tgtd with qemu-img (raw driver offset/size over the iscsi protocol). */
async function readLu(t: Tgtd, lun: number, file: string): Promise<Buffer> {
  const r = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', t.url(lun), file], { timeoutMs: 180_000 });
  if (r.code !== 0) throw new Error(`qemu-img convert from ${t.url(lun)}: ${r.stderr}`);
  return fs.readFileSync(file);
}

async function qemuIo(t: Tgtd, lun: number, cmds: string[]): Promise<string> {
  const args = ['-f', 'raw'];
  for (const c of cmds) args.push('-c', c);
  args.push(t.url(lun));
  const r = await run('qemu-io', args, { timeoutMs: 120_000 });
  if (r.code !== 0 || /failed|error/i.test(r.stdout + r.stderr)) throw new Error(`qemu-io ${cmds.join('; ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  if (!peers || !built) return;
  dir = tempDir('sheep-tgtd-');
  port = await portInRange(7000, 9999);
  sheep = start(process.execPath, [SHEEPFOLD_BIN, 'sheep', '--store', path.join(dir, 'store'), '--port', String(port), '--log-level', 'warn']);
  await waitForOutput(sheep, /sheep ready/);
  await waitForPort(port);
  await dogOk(['cluster', 'format', '-c', '1']);
});

afterAll(async () => {
  for (const t of tgtds) await t.stop().catch(() => undefined);
  await killAll();
  cleanupTempDirs();
});

describe.skipIf(!peers || !built)('sheep behind the real tgtd', () => {
  let t1: Tgtd;
  const data = crypto.randomBytes(64 * MiB);

  it('serves 64 MiB written through iSCSI back through tgtd and dog; READ CAPACITY(16) is the VDI size', async () => {
    await dogOk(['vdi', 'create', 'disk', '64M']);
    t1 = await startTgtd('a');
    tgtds.push(t1);
    const add = await t1.addLun(1, `tcp:127.0.0.1:${port}:disk`);
    expect(add.code, add.stderr).toBe(0);
    const cap = await run('iscsi-readcapacity16', [t1.url(1)]);
    expect(cap.stdout).toMatch(/Total size:67108864/);
    const src = path.join(dir, 'rand.img');
    fs.writeFileSync(src, data);
    const conv = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, t1.url(1)], { timeoutMs: 300_000 });
    expect(conv.code, conv.stderr).toBe(0);
    const back = await readLu(t1, 1, path.join(dir, 'back.img'));
    expect(back.equals(data)).toBe(true);
    const viaDog = await dogRead(['disk']);
    expect(viaDog.equals(data)).toBe(true);
  });

  it('reads data written with dog vdi write through tgtd', async () => {
    // Into objects tgtd has already allocated (its inode cache stays valid) ...
    const patch = crypto.randomBytes(3 * MiB + 512);
    await dogOk(['vdi', 'write', 'disk', String(5 * MiB + 512), String(patch.length)], patch);
    data.set(patch, 5 * MiB + 512);
    const back = await readLu(t1, 1, path.join(dir, 'back2.img'));
    expect(back.equals(data)).toBe(true);
    // ... and into a fresh VDI before tgtd opens it, this time over the store's unix socket.
    await dogOk(['vdi', 'create', 'dogdisk', '16M']);
    const fresh = crypto.randomBytes(9 * MiB);
    await dogOk(['vdi', 'write', 'dogdisk', String(2 * MiB), String(fresh.length)], fresh);
    expect((await t1.addLun(2, `unix:${path.join(dir, 'store', 'sock')}:dogdisk`)).code).toBe(0);
    const lu2 = await readLu(t1, 2, path.join(dir, 'lu2.img'));
    expect(lu2.subarray(2 * MiB, 11 * MiB).equals(fresh)).toBe(true);
    expect(lu2.subarray(0, 2 * MiB).equals(Buffer.alloc(2 * MiB))).toBe(true);
    expect((await t1.deleteLun(2)).code).toBe(0);
  });

  it('keeps a snapshot taken under a live tgtd: old bytes in the snapshot, new ones in the VDI', async () => {
    const old = Buffer.from(data);
    await dogOk(['vdi', 'snapshot', '-s', 's1', 'disk']);
    // Writes after the snapshot: tgtd meets READONLY, reloads, and copies-on-write into the new working VDI.
    await qemuIo(t1, 1, ['write -P 0x33 0 4M', 'write -P 0x44 20M 64k', 'write -P 0x55 63M 1M']);
    data.fill(0x33, 0, 4 * MiB);
    data.fill(0x44, 20 * MiB, 20 * MiB + 64 * 1024);
    data.fill(0x55, 63 * MiB, 64 * MiB);
    expect((await dogRead(['-s', 's1', 'disk'])).equals(old)).toBe(true);
    expect((await dogRead(['disk'])).equals(data)).toBe(true);
    const back = await readLu(t1, 1, path.join(dir, 'back3.img'));
    expect(back.equals(data)).toBe(true);
    const list = await dogOk(['vdi', 'list']);
    expect(list).toMatch(/^s\s+disk\s+1\s.*s1/m);
    expect(list).toMatch(/^\s+disk\s+2\s/m);
  });

  it('locks: a second tgtd cannot open the VDI until the first LU is deleted; exclusive locks are refused', async () => {
    await dogOk(['vdi', 'create', 'shared', '8M']);
    expect((await t1.addLun(3, `tcp:127.0.0.1:${port}:shared`)).code).toBe(0);
    const locks = await dogOk(['vdi', 'lock', 'list']);
    expect(locks).toMatch(new RegExp(`shared.*IPv4 ip:127\\.0\\.0\\.1 port:${port}\\(modified\\)`));
    const t2 = await startTgtd('b');
    tgtds.push(t2);
    const refused = await t2.addLun(1, `tcp:127.0.0.1:${port}:shared`);
    expect(refused.code).toBe(22);
    await waitForOutput(t2.proc, /VDI is already locked/);
    // An exclusive lock from another client is refused with VDI_LOCKED.
    const w = await SheepWire.connect({ port });
    const ex = await w.lock('shared', C.LOCK_TYPE_NORMAL);
    expect(C.resultMessage(ex.rsp.result)).toBe('VDI is already locked');
    w.close();
    expect((await t1.deleteLun(3)).code).toBe(0);
    const after = await dogOk(['vdi', 'lock', 'list']);
    expect(after).not.toMatch(/^\s*shared\s/m);
    const ok = await t2.addLun(1, `tcp:127.0.0.1:${port}:shared`);
    expect(ok.code, ok.stderr).toBe(0);
    await qemuIo(t2, 1, ['write -P 0x66 0 64k', 'read -P 0x66 0 64k']);
    expect((await t2.deleteLun(1)).code).toBe(0);
  });

  it('a tgtd killed with its LU open leaves a stale lock that `dog vdi lock unlock` checks and breaks', async () => {
    await dogOk(['vdi', 'create', 'stale', '8M']);
    const t3 = await startTgtd('c');
    tgtds.push(t3);
    expect((await t3.addLun(1, `tcp:127.0.0.1:${port}:stale`)).code).toBe(0);
    await qemuIo(t3, 1, ['write -P 0x77 0 1M']);
    t3.proc.kill('SIGKILL');
    await t3.proc.exited;
    // The lock belongs to the sheep, not the connection: it survives the client's death (§6.4).
    expect(await dogOk(['vdi', 'lock', 'list'])).toMatch(/^\s*stale\s/m);
    const t4 = await startTgtd('d');
    tgtds.push(t4);
    expect((await t4.addLun(1, `tcp:127.0.0.1:${port}:stale`)).code).toBe(22);
    const out = await dogOk(['vdi', 'lock', 'unlock', 'stale']);
    expect(out).toMatch(/consistent|fixed|repaired|check/i);
    expect(await dogOk(['vdi', 'lock', 'list'])).not.toMatch(/^\s*stale\s/m);
    expect((await t4.addLun(1, `tcp:127.0.0.1:${port}:stale`)).code).toBe(0);
    await qemuIo(t4, 1, ['read -P 0x77 0 1M']);
    expect((await t4.deleteLun(1)).code).toBe(0);
  });

  it('exports a grown VDI with its new size and keeps its data', async () => {
    await dogOk(['vdi', 'resize', 'dogdisk', '40M']);
    expect((await t1.addLun(4, `tcp:127.0.0.1:${port}:dogdisk`)).code).toBe(0);
    const cap = await run('iscsi-readcapacity16', [t1.url(4)]);
    expect(cap.stdout).toMatch(new RegExp(`Total size:${40 * MiB}\\b`));
    await qemuIo(t1, 4, ['write -P 0x21 39M 1M', 'read -P 0x21 39M 1M']);
    expect((await dogRead(['dogdisk', String(39 * MiB), String(MiB)])).equals(Buffer.alloc(MiB, 0x21))).toBe(true);
    expect((await t1.deleteLun(4)).code).toBe(0);
  });

  it('keeps 300 concurrent non-overlapping random writes through tgtd (object creation races, index updates)', async () => {
    await dogOk(['vdi', 'create', 'rand', '32M']);
    expect((await t1.addLun(5, `tcp:127.0.0.1:${port}:rand`)).code).toBe(0);
    const size = 32 * MiB;
    const model = Buffer.alloc(size);
    const used: [number, number][] = [];
    const cmds: string[] = [];
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    while (used.length < 300) {
      const len = [512, 4096, 65536, 131072][rnd(4)]!;
      const off = Math.floor(rnd(size - len) / 512) * 512;
      if (used.some(([o, l]) => off < o + l && o < off + len)) continue;
      used.push([off, len]);
      const pat = 1 + rnd(254);
      model.fill(pat, off, off + len);
      cmds.push(`aio_write -P ${pat} ${off} ${len}`);
      if (used.length % 25 === 0) cmds.push('aio_flush');
    }
    const r = await run('qemu-io', ['-f', 'raw', t1.url(5)], { input: `${cmds.join('\n')}\naio_flush\n`, timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/error|failed/i);
    expect((await dogRead(['rand'])).equals(model)).toBe(true);
    expect((await t1.deleteLun(5)).code).toBe(0);
  });
});
