// VdiDevice against a real sheep process: a seeded random mix of writes, discards and write-zeroes checked
// against an in-memory model (unaligned, object-spanning, concurrent), copy-on-write when a snapshot is
// taken under the open device (READONLY reaction), the snapshot opened read-only, exclusive locking, and
// reconnection after the sheep process is killed and restarted on the same port and store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { VdiDevice } from '../../src/block/vdi.js';
import { SHEEPFOLD_BIN, cleanupTempDirs, killAll, start, waitForOutput } from '../helpers/proc.js';
import { dogOk, startSheep, type SheepProc } from './dog-harness.js';

const MiB = 2 ** 20;
let sheep: SheepProc;
beforeAll(async () => {
  sheep = await startSheep();
  await dogOk(sheep.port, ['cluster', 'format', '-c', '1']);
});
afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

/** xorshift32 PRNG: reproducible from the printed seed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

describe('VdiDevice (real sheep)', () => {
  it('matches an in-memory model under a random mix of concurrent writes, discards and zeroes', async () => {
    const seed = Date.now() % 1_000_000;
    const rnd = prng(seed);
    await dogOk(sheep.port, ['vdi', 'create', 'model', '24M', '-z', '20']); // 1 MiB objects: many boundaries
    const dev = await VdiDevice.open({ gateways: sheep.addr, vdi: 'model' });
    const model = Buffer.alloc(dev.size);
    try {
      for (let round = 0; round < 12; round++) {
        // Non-overlapping concurrent operations within one round, so the model order does not matter.
        const slots = [...Array(6).keys()].map((k) => k * 4 * MiB);
        await Promise.all(
          slots.map(async (base) => {
            const off = base + Math.floor(rnd() * 2 * MiB);
            const len = 1 + Math.floor(rnd() * 2 * MiB);
            const kind = rnd();
            if (kind < 0.6) {
              const data = crypto.randomBytes(len);
              data.copy(model, off);
              await dev.write(off, data);
            } else if (kind < 0.8) {
              model.fill(0, off, off + len);
              await dev.discard(off, len);
            } else {
              model.fill(0, off, off + len);
              await dev.writeZeroes(off, len, { mayTrim: rnd() < 0.5 });
            }
          }),
        );
      }
      const back = await dev.read(0, dev.size);
      expect(back.equals(model), `seed ${seed}`).toBe(true);
      for (const e of await dev.extents(0, dev.size)) {
        if (!e.allocated) expect(model.subarray(e.offset, e.offset + e.length).equals(Buffer.alloc(e.length)), `seed ${seed}`).toBe(true);
      }
    } finally {
      await dev.close();
    }
    // Re-opened (fresh inode from the sheep), and read through dog: the same bytes.
    const again = await VdiDevice.open({ gateways: sheep.addr, vdi: 'model', noLock: true });
    expect((await again.read(0, again.size)).equals(model), `seed ${seed}`).toBe(true);
    await again.close();
  });

  it('copies on write after a snapshot is taken under the open device, and reads the snapshot read-only', async () => {
    await dogOk(sheep.port, ['vdi', 'create', 'live', '16M']);
    const dev = await VdiDevice.open({ gateways: sheep.addr, vdi: 'live' });
    const before = crypto.randomBytes(6 * MiB);
    await dev.write(MiB, before);
    const oldVid = dev.currentVid;
    await dogOk(sheep.port, ['vdi', 'snapshot', '-s', 'snap', 'live']);
    const patch = crypto.randomBytes(3 * MiB);
    await dev.write(2 * MiB + 100, patch);
    expect(dev.currentVid).not.toBe(oldVid);
    const want = Buffer.from(before);
    patch.copy(want, MiB + 100);
    expect((await dev.read(MiB, 6 * MiB)).equals(want)).toBe(true);
    const snap = await VdiDevice.open({ gateways: sheep.addr, vdi: 'live', tag: 'snap' });
    expect(snap.readOnly).toBe(true);
    expect((await snap.read(MiB, 6 * MiB)).equals(before)).toBe(true);
    await expect(snap.write(0, Buffer.alloc(512))).rejects.toMatchObject({ code: 'EROFS' });
    await snap.close();
    // The lock moved to the new working VDI with the device; the snapshot is no longer locked.
    const locks = await dogOk(sheep.port, ['vdi', 'lock', 'list']);
    expect(locks).toContain(` ${dev.currentVid.toString(16).padStart(6)}  `);
    expect(locks).not.toContain(` ${oldVid.toString(16).padStart(6)}  `);
    await expect(VdiDevice.open({ gateways: sheep.addr, vdi: 'live' })).rejects.toMatchObject({ code: 'ECONFLICT' });
    await dev.close();
  });

  it('reconnects after the sheep is killed and restarted, and keeps serving I/O', async () => {
    await dogOk(sheep.port, ['vdi', 'create', 'rc', '8M']);
    const dev = await VdiDevice.open({ gateways: sheep.addr, vdi: 'rc' });
    const data = crypto.randomBytes(2 * MiB);
    await dev.write(0, data);
    sheep.proc.kill('SIGKILL');
    await sheep.proc.exited;
    const pending = dev.read(0, 2 * MiB); // issued while the sheep is down
    const proc = start(process.execPath, [SHEEPFOLD_BIN, 'sheep', '--store', sheep.dir, '--port', String(sheep.port), '--log-level', 'warn']);
    await waitForOutput(proc, /sheep ready/, 60_000);
    sheep = { ...sheep, proc };
    expect((await pending).equals(data)).toBe(true);
    await dev.write(4 * MiB, data);
    expect((await dev.read(4 * MiB, 2 * MiB)).equals(data)).toBe(true);
    await dev.close();
  });
});
