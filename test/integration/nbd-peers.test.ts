// The NBD target against real peers (libnbd's nbdinfo/nbdcopy, qemu-img, qemu-io) on a memory and a file
// export: handshake facts, listing, allocation map, byte-identical copies in and out, patterns through
// write/read/discard/write-zeroes, two clients at once, and a read-only export refusing writes with EPERM.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cleanupTempDirs, killAll, run, tempDir, lacking } from '../helpers/proc.js';
import { NbdRequestError } from '../../src/nbd/client.js';
import { NBD_EPERM } from '../../src/proto/nbd/constants.js';
import { rssBytes, startTarget, tcpClient, type RunningTarget } from './nbd-harness.js';

const MiB = 1024 * 1024;
const COPY_BYTES = 256 * MiB;
const peers = !lacking(['nbdinfo', 'nbdcopy', 'qemu-img', 'qemu-io']);

interface InfoExport {
  'export-name': string;
  'export-size': number;
  contexts?: string[];
  is_read_only: boolean;
  can_flush: boolean;
  can_fua: boolean;
  can_trim: boolean;
  can_zero: boolean;
  can_fast_zero: boolean;
  can_df: boolean;
  can_cache: boolean;
  can_multi_conn: boolean;
}

async function nbdinfo(args: string[]): Promise<{ exports: InfoExport[]; structured: boolean }> {
  const r = await run('nbdinfo', ['--json', ...args]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { exports: InfoExport[]; structured: boolean };
}

/** nbdinfo --map as [offset, length, description] rows. */
async function map(uri: string): Promise<[number, number, string][]> {
  const r = await run('nbdinfo', ['--map', uri]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .map((f) => [Number(f[0]), Number(f[1]), f.slice(3).join(' ')]);
}

async function qemuIo(uri: string, cmds: string[]): Promise<string> {
  const r = await run('qemu-io', ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), uri]);
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  expect(r.stdout).not.toMatch(/verification failed|error|failed/i);
  return r.stdout;
}

describe.skipIf(!peers)('NBD target with real peers', () => {
  let t: RunningTarget;
  let dir: string;
  let fileImg: string;
  let src: string;

  beforeAll(async () => {
    dir = tempDir('sheepfold-nbd-');
    fileImg = path.join(dir, 'disk.img');
    fs.writeFileSync(fileImg, '');
    fs.truncateSync(fileImg, COPY_BYTES);
    src = path.join(dir, 'src.img');
    // Random data, written in pieces so the test process never holds it all at once.
    const fd = fs.openSync(src, 'w');
    for (let o = 0; o < COPY_BYTES; o += 16 * MiB) fs.writeSync(fd, crypto.randomBytes(16 * MiB));
    fs.closeSync(fd);
    t = await startTarget([
      '--export',
      `mem=mem:${COPY_BYTES}`,
      '--export',
      `file=file:${fileImg}`,
      '--export',
      'small=mem:64M',
      '--export',
      'ro=mem:16M,ro',
    ]);
  });

  afterAll(async () => {
    await killAll();
    cleanupTempDirs();
  });

  it('nbdinfo sees size, flags, structured replies and base:allocation', async () => {
    const info = await nbdinfo([t.uri('small')]);
    expect(info.structured).toBe(true);
    const e = info.exports[0]!;
    expect(e['export-size']).toBe(64 * MiB);
    expect(e.contexts).toContain('base:allocation');
    expect(e).toMatchObject({
      is_read_only: false,
      can_flush: true,
      can_fua: true,
      can_trim: true,
      can_zero: true,
      can_fast_zero: true,
      can_df: true,
      can_cache: true,
      can_multi_conn: true,
    });
    const ro = (await nbdinfo([t.uri('ro')])).exports[0]!;
    expect(ro.is_read_only).toBe(true);
  });

  it('nbdinfo --list lists every export', async () => {
    const info = await nbdinfo(['--list', t.uri('')]);
    expect(info.exports.map((e) => e['export-name'])).toEqual(['mem', 'file', 'small', 'ro']);
    expect(info.exports.map((e) => e['export-size'])).toEqual([COPY_BYTES, COPY_BYTES, 64 * MiB, 16 * MiB]);
  });

  it('nbdinfo --map shows holes where nothing was written and data where it was', async () => {
    expect(await map(t.uri('small'))).toEqual([[0, 64 * MiB, 'hole,zero']]);
    await qemuIo(t.uri('small'), ['write -P 0x5a 8M 2M', 'write -P 0x6b 32M 1M']);
    expect(await map(t.uri('small'))).toEqual([
      [0, 8 * MiB, 'hole,zero'],
      [8 * MiB, 2 * MiB, 'data'],
      [10 * MiB, 22 * MiB, 'hole,zero'],
      [32 * MiB, MiB, 'data'],
      [33 * MiB, 31 * MiB, 'hole,zero'],
    ]);
    // Discarding whole chunks makes holes again.
    await qemuIo(t.uri('small'), ['discard 8M 2M']);
    expect(await map(t.uri('small'))).toEqual([
      [0, 32 * MiB, 'hole,zero'],
      [32 * MiB, MiB, 'data'],
      [33 * MiB, 31 * MiB, 'hole,zero'],
    ]);
  });

  for (const name of ['mem', 'file']) {
    it(`nbdcopy 256 MiB of random data into and out of the ${name} export byte-identical`, async () => {
      const back = path.join(dir, `back-${name}.img`);
      let r = await run('nbdcopy', [src, t.uri(name)], { timeoutMs: 240_000 });
      expect(r.code, r.stderr).toBe(0);
      r = await run('nbdcopy', [t.uri(name), back], { timeoutMs: 240_000 });
      expect(r.code, r.stderr).toBe(0);
      r = await run('cmp', [src, back]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      fs.rmSync(back);
    });

    it(`qemu-img convert and compare over nbd:// on the ${name} export`, async () => {
      const part = path.join(dir, `part-${name}.img`);
      fs.writeFileSync(part, '');
      fs.truncateSync(part, COPY_BYTES);
      const fd = fs.openSync(part, 'r+');
      fs.writeSync(fd, crypto.randomBytes(4 * MiB), 0, 4 * MiB, 100 * MiB);
      fs.closeSync(fd);
      let r = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', part, t.uri(name)], {
        timeoutMs: 240_000,
      });
      expect(r.code, r.stderr).toBe(0);
      r = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', part, t.uri(name)], { timeoutMs: 240_000 });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/Images are identical/);
      fs.rmSync(part);
    });

    it(`qemu-io write/read/discard/write-zeroes patterns on the ${name} export`, async () => {
      const u = t.uri(name);
      await qemuIo(u, [
        'write -P 0x11 0 4M',
        'write -P 0x22 4M 4M',
        'write -P 0x33 -f 6M 64k',
        'read -P 0x11 0 4M',
        'read -P 0x22 4M 2M',
        'read -P 0x33 6M 64k',
        'discard 1M 1M',
        'read -P 0 1M 1M',
        'read -P 0x11 0 1M',
        'write -z 2M 512k',
        'write -z -u 3M 1M',
        'read -P 0 2M 512k',
        'read -P 0x11 2560k 512k',
        'read -P 0 3M 1M',
        'write -P 0x44 5000 3000',
        'read -P 0x44 5000 3000',
        'read -P 0x11 4096 904',
        'flush',
      ]);
    });
  }

  it('two clients at once see one consistent device', async () => {
    const u = t.uri('small');
    const watcher = await tcpClient(t, { exportName: 'small' });
    const a = Array.from({ length: 16 }, (_, i) => `write -P 0xa1 ${i * 256}k 256k`);
    const b = Array.from({ length: 16 }, (_, i) => `write -P 0xb2 ${4096 + i * 256}k 256k`);
    await Promise.all([qemuIo(u, a), qemuIo(u, b)]);
    // Each client's data is visible to a new client and to one connected before the writes.
    await qemuIo(u, ['read -P 0xa1 0 4M', 'read -P 0xb2 4M 4M']);
    expect((await watcher.read(0, 4 * MiB)).equals(Buffer.alloc(4 * MiB, 0xa1))).toBe(true);
    expect((await watcher.read(4 * MiB, 4 * MiB)).equals(Buffer.alloc(4 * MiB, 0xb2))).toBe(true);
    // And concurrently: both keep reading each other's regions while writing their own.
    await Promise.all([
      qemuIo(u, ['write -P 0xc3 16M 4M', 'read -P 0xb2 4M 4M']),
      qemuIo(u, ['write -P 0xd4 20M 4M', 'read -P 0xa1 0 4M']),
    ]);
    expect((await watcher.read(16 * MiB, 8 * MiB)).subarray(4 * MiB).equals(Buffer.alloc(4 * MiB, 0xd4))).toBe(true);
    watcher.disconnect();
  });

  it('a client that stops reading replies makes the target stop taking requests, and is served once it reads', async () => {
    // The file export reads into buffers of its own (a memory export lends views of its data), so replies the
    // target keeps show in its resident memory.
    const c = await tcpClient(t, { exportName: 'file' });
    const sock = (c as unknown as { sock: import('node:net').Socket }).sock;
    sock.pause();
    const pid = t.proc.pid as number;
    const before = rssBytes(pid);
    // 320 MiB of replies: far more than the reply backlog (64 MiB) plus reads in flight (64 MiB).
    let answered = 0;
    const reads = Array.from({ length: 320 }, (_, i) => c.read((i % 64) * MiB, MiB).then((b) => (answered++, b)));
    // Wait until the target's memory stops growing: it has stopped taking requests.
    let peak = before;
    for (let last = -1, still = 0, i = 0; still < 5 && i < 150; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const now = rssBytes(pid);
      peak = Math.max(peak, now);
      still = Math.abs(now - last) < MiB ? still + 1 : 0;
      last = now;
    }
    expect(answered).toBe(0);
    expect(peak - before).toBeLessThan(200 * MiB);
    sock.resume();
    const got = await Promise.all(reads);
    const disk = fs.readFileSync(fileImg).subarray(0, 64 * MiB);
    expect(got.every((b, i) => b.equals(disk.subarray((i % 64) * MiB, ((i % 64) + 1) * MiB)))).toBe(true);
    c.disconnect();
  });

  it('a read-only export refuses writes with EPERM and keeps its data', async () => {
    const c = await tcpClient(t, { exportName: 'ro' });
    for (const op of [() => c.write(0, Buffer.alloc(4096, 1)), () => c.trim(0, 4096), () => c.writeZeroes(0, 4096)]) {
      const err = await op().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NbdRequestError);
      expect((err as NbdRequestError).errno).toBe(NBD_EPERM);
    }
    expect((await c.read(0, 4096)).equals(Buffer.alloc(4096))).toBe(true);
    c.disconnect();
    const r = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 512', t.uri('ro')]);
    expect(r.code).not.toBe(0);
    const rr = await run('qemu-io', ['-r', '-f', 'raw', '-c', 'read -P 0 0 1M', t.uri('ro')]);
    expect(rr.code, rr.stdout + rr.stderr).toBe(0);
  });

  it('stops gracefully on SIGTERM', async () => {
    t.proc.kill('SIGTERM');
    expect(await t.proc.exited).toBe(0);
  });
});
