// One VDI, three ways in: data written through iSCSI (qemu-img → iscsi://) reads back through NBD (nbdcopy) and
// `dog vdi read`; data written through NBD and `dog vdi write` reads back through iSCSI. Every byte compared.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ephemeralPort, waitForPort } from '../helpers/ports.js';
import { DOG_BIN, SHEEPFOLD_BIN, cleanupTempDirs, killAll, run, runBinary, start, tempDir, waitForOutput } from '../helpers/proc.js';
import { portInRange } from '../helpers/ports.js';

const MiB = 2 ** 20;
const IQN = 'iqn.2026-11.org.sheepfold:x';
let dir: string;
let sheepPort: number;
let nbd: string;
let iscsi: string;

const dog = (args: string[], input?: Buffer) => run(process.execPath, [DOG_BIN, ...args, '-p', String(sheepPort)], input ? { input } : {});

beforeAll(async () => {
  dir = tempDir('sf-cross-');
  sheepPort = await portInRange(7000, 9999);
  const sheep = start(process.execPath, [SHEEPFOLD_BIN, 'sheep', '--store', path.join(dir, 's'), '--port', String(sheepPort), '--json', '--log-level', 'warn']);
  await waitForOutput(sheep, /sheep_ready/);
  expect((await dog(['cluster', 'format', '-c', '1'])).code).toBe(0);
  expect((await dog(['vdi', 'create', 'x', '64M'])).code).toBe(0);
  nbd = `127.0.0.1:${await ephemeralPort()}`;
  iscsi = `127.0.0.1:${await ephemeralPort()}`;
  const target = start(process.execPath, [SHEEPFOLD_BIN, 'target', '--sheep', `127.0.0.1:${sheepPort}`, '--export', 'x=x', '--nbd', nbd, '--iscsi', iscsi, '--json', '--log-level', 'warn']);
  await waitForOutput(target, /"ready":true/);
  await waitForPort(Number(iscsi.split(':')[1]));
});
afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe('iSCSI, NBD and dog see the same VDI', () => {
  it('iSCSI writes read back through NBD and dog', async () => {
    const data = crypto.randomBytes(24 * MiB);
    const src = path.join(dir, 'a.img');
    fs.writeFileSync(src, data);
    const w = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, `iscsi://${iscsi}/${IQN}/0`]);
    expect(w.stderr).toBe('');
    expect(w.code).toBe(0);
    const viaNbd = path.join(dir, 'nbd.out');
    expect((await run('nbdcopy', [`nbd://${nbd}/x`, viaNbd])).code).toBe(0);
    expect(fs.readFileSync(viaNbd).subarray(0, data.length).equals(data)).toBe(true);
    const viaDog = await runBinary(process.execPath, [DOG_BIN, 'vdi', 'read', 'x', '0', String(data.length), '-p', String(sheepPort)]);
    expect(viaDog.code).toBe(0);
    expect(viaDog.stdout.equals(data)).toBe(true);
  });

  it('NBD and dog writes read back through iSCSI', async () => {
    const viaNbdData = crypto.randomBytes(8 * MiB);
    const f = path.join(dir, 'b.img');
    fs.writeFileSync(f, viaNbdData);
    // nbdcopy writes [0, 8 MiB); dog writes an unaligned range in a fresh object after it.
    expect((await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', f, `nbd://${nbd}/x`])).code).toBe(0);
    const viaDogData = crypto.randomBytes(3 * MiB + 777);
    const off = 40 * MiB + 123;
    expect((await dog(['vdi', 'write', 'x', String(off), String(viaDogData.length)], viaDogData)).code).toBe(0);
    const out = path.join(dir, 'iscsi.out');
    const r = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', `iscsi://${iscsi}/${IQN}/0`, out]);
    expect(r.code).toBe(0);
    const img = fs.readFileSync(out);
    expect(img.length).toBe(64 * MiB);
    expect(img.subarray(0, viaNbdData.length).equals(viaNbdData)).toBe(true);
    expect(img.subarray(off, off + viaDogData.length).equals(viaDogData)).toBe(true);
    expect(img.subarray(off + viaDogData.length).every((b) => b === 0)).toBe(true);
  });
});
