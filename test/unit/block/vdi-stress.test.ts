// VdiDevice under concurrency on the fake sheep: rounds of concurrent writes, discards and write-zeroes on
// disjoint byte ranges that share objects, with INODE_INVALIDATED injected at random into data and index
// requests, must leave the device (and a fresh open of the VDI) equal to an in-memory model. The seed is printed
// on failure.
import { afterEach, describe, expect, it } from 'vitest';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { SheepClient } from '../../../src/client/index.js';
import { VdiDevice } from '../../../src/block/vdi.js';
import { FakeSheep } from '../client/fake-sheep.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

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

describe('VdiDevice concurrency', () => {
  for (const shared of [false, true]) {
    it(`stays equal to a model under concurrent I/O and injected invalidations (${shared ? 'shared' : 'exclusive'} lock)`, async () => {
      const seed = (Date.now() ^ (shared ? 0x5a5a : 0)) % 1_000_000;
      const rnd = prng(seed);
      const s = new FakeSheep({ blockSizeShift: 20 });
      await s.start();
      cleanups.push(() => s.stop());
      const c = new SheepClient({ gateways: s.addr });
      cleanups.push(() => c.close());
      const size = 8 * 2 ** 20;
      await c.newVdi({ name: 'st', size: BigInt(size) });
      const dev = await VdiDevice.open({ gateways: s.addr, vdi: 'st', shared, maxReloads: 1000 });
      cleanups.push(() => dev.close());
      let invalid = false;
      s.hook = (req) => {
        if ((req.flags & C.SD_FLAG_CMD_TGT) === 0 || req.args.kind !== 'obj') return undefined;
        if (req.opcode === C.SD_OP_READ_OBJ && req.dataLength === C.TGT_INODE_SIZE) {
          invalid = false;
          return undefined;
        }
        if (!invalid && rnd() < 0.05) invalid = true;
        return invalid ? { action: 'reply', result: C.SD_RES_INODE_INVALIDATED } : undefined;
      };
      const model = Buffer.alloc(size);
      for (let round = 0; round < 20; round++) {
        // Cut the device into 16 disjoint random ranges (several per object), one operation each, all at once.
        const cuts = [...new Set([...Array(15)].map(() => Math.floor(rnd() * (size / 512)) * 512))].sort((a, b) => a - b);
        const bounds = [0, ...cuts, size];
        const ops: Promise<void>[] = [];
        for (let i = 0; i + 1 < bounds.length; i++) {
          const off = bounds[i]!;
          const len = bounds[i + 1]! - off;
          if (len === 0 || rnd() < 0.3) continue;
          const k = rnd();
          if (k < 0.6) {
            const b = Buffer.alloc(len, (round * 16 + i) % 255 + 1);
            b.copy(model, off);
            ops.push(dev.write(off, b));
          } else if (k < 0.8) {
            model.fill(0, off, off + len);
            ops.push(dev.discard(off, len));
          } else {
            model.fill(0, off, off + len);
            ops.push(dev.writeZeroes(off, len, { mayTrim: rnd() < 0.5 }));
          }
        }
        await Promise.all(ops);
      }
      s.hook = null;
      const reloads = s.log.filter((r) => r.opcode === C.SD_OP_READ_OBJ && r.dataLength === C.TGT_INODE_SIZE).length;
      expect(reloads, `seed ${seed}`).toBeGreaterThan(5);
      expect((await dev.read(0, size)).equals(model), `seed ${seed}`).toBe(true);
      await dev.close();
      const fresh = await VdiDevice.open({ gateways: s.addr, vdi: 'st', noLock: true });
      cleanups.push(() => fresh.close());
      expect((await fresh.read(0, size)).equals(model), `seed ${seed}`).toBe(true);
    });
  }
});
