// `dog vdi lock list|unlock` against a real sheep: a VdiDevice (exclusive) and a shared-lock VdiDevice show
// up in dog's lock table; unlock first checks the VDI's objects (reporting a lost one) and then releases the
// lock so the VDI can be opened again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { VdiDevice } from '../../src/block/vdi.js';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';
import { dog, dogOk, startSheep, type SheepProc } from './dog-harness.js';

const MiB = 2 ** 20;
const HEADER = '  Name         Id  VDI id  Tag            Owner node(s)\n';
let sheep: SheepProc;
let p: number;
beforeAll(async () => {
  sheep = await startSheep();
  p = sheep.port;
  await dogOk(p, ['cluster', 'format', '-c', '1']);
  await dogOk(p, ['vdi', 'create', 'test', '16M']);
  await dogOk(p, ['vdi', 'create', 'shared', '16M']);
});
afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe('dog vdi lock (real sheep)', () => {
  it('lists an exclusive and a shared lock in dog format', async () => {
    const a = await VdiDevice.open({ gateways: sheep.addr, vdi: 'test' });
    const b = await VdiDevice.open({ gateways: sheep.addr, vdi: 'shared', shared: true });
    try {
      const out = await dogOk(p, ['vdi', 'lock', 'list']);
      expect(out).toBe(
        HEADER +
          `  test          1  7c2b25                 IPv4 ip:127.0.0.1 port:${p}\n` +
          `  shared        1  ${b.currentVid.toString(16).padStart(6)}                 IPv4 ip:127.0.0.1 port:${p}(modified)\n`,
      );
      const j = JSON.parse(await dogOk(p, ['vdi', 'lock', 'list', '--json'])) as { name: string; state: string }[];
      expect(j.map((x) => [x.name, x.state])).toEqual([
        ['test', 'locked'],
        ['shared', 'shared'],
      ]);
    } finally {
      await a.close();
      await b.close();
    }
    expect(await dogOk(p, ['vdi', 'lock', 'list'])).toBe(HEADER);
  });

  it('unlock checks the objects, reports what it found, then releases a stale lock', async () => {
    const dev = await VdiDevice.open({ gateways: sheep.addr, vdi: 'test' });
    await dev.write(0, Buffer.alloc(3 * MiB, 5));
    // Simulate a crashed client: the lock stays held by the sheep (the device is never closed).
    const again = await VdiDevice.open({ gateways: sheep.addr, vdi: 'test' }).catch((e: unknown) => e);
    expect((again as { code?: string }).code).toBe('ECONFLICT');
    const out = await dogOk(p, ['vdi', 'lock', 'unlock', 'test']);
    expect(out).toBe('test: checked 2 object(s), fixed 0 replica(s), re-created 0 missing replica(s), all consistent\nreleased the lock on test\n');
    expect(await dogOk(p, ['vdi', 'lock', 'list'])).toBe(HEADER);
    const reopened = await VdiDevice.open({ gateways: sheep.addr, vdi: 'test' });
    expect((await reopened.read(MiB, 16)).equals(Buffer.alloc(16, 5))).toBe(true);
    await reopened.close();
    await dev.close();
  });

  it('unlock reports an object that no node has, and still releases the lock', async () => {
    const dev = await VdiDevice.open({ gateways: sheep.addr, vdi: 'shared' });
    await dev.write(0, Buffer.alloc(2 * MiB, 1));
    const oid = (BigInt(dev.currentVid) << 32n).toString(16).padStart(16, '0');
    fs.rmSync(path.join(sheep.dir, 'obj', oid));
    const r = await dog(p, ['vdi', 'lock', 'unlock', 'shared']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`no node has ${oid}\n`);
    expect(r.stdout).toContain('released the lock on shared\n');
    expect(r.stderr).toBe('shared: some objects could not be repaired (lock released)\n');
    expect(await dogOk(p, ['vdi', 'lock', 'list'])).toBe(HEADER);
    await dev.close();
  });

  it('unlock releases a shared lock through its participant sheep', async () => {
    await dogOk(p, ['vdi', 'create', 'sh2', '8M']);
    const dev = await VdiDevice.open({ gateways: sheep.addr, vdi: 'sh2', shared: true });
    await dev.write(0, Buffer.alloc(4096, 2));
    expect(await dogOk(p, ['vdi', 'lock', 'list'])).toContain('(modified)');
    const out = await dogOk(p, ['vdi', 'lock', 'unlock', 'sh2']);
    expect(out).toBe('sh2: checked 2 object(s), fixed 0 replica(s), re-created 0 missing replica(s), all consistent\nreleased the shared lock on sh2\n');
    expect(await dogOk(p, ['vdi', 'lock', 'list'])).toBe(HEADER);
    await dev.close();
  });

  it('unlock of an unlocked VDI is a clear error', async () => {
    const r = await dog(p, ['vdi', 'lock', 'unlock', 'test']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('VDI test is not locked\n');
  });
});
