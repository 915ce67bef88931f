// SheepClient.readObjInto against the in-process fake sheep: object bytes land in the caller's buffer (a view
// at any offset of a larger buffer), neighbouring bytes stay untouched, many reads in flight each fill their own
// region, and an error reply rejects as readObj's does.
import { afterEach, describe, expect, it } from 'vitest';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { SheepClient, SheepError } from '../../../src/client/index.js';
import { vidToDataOid } from '../../../src/proto/sheepdog/index.js';
import { FakeSheep } from './fake-sheep.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

describe('SheepClient.readObjInto', () => {
  it('reads object bytes into views of the caller buffer, large and small, many in flight', async () => {
    const s = new FakeSheep();
    await s.start();
    cleanups.push(() => s.stop());
    const c = new SheepClient({ gateways: s.addr, reconnectTimeoutMs: 2000 });
    cleanups.push(() => c.close());
    const info = await c.newVdi({ name: 'into', size: 64n << 20n });
    const big = Buffer.alloc(300 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 1) & 0xff;
    for (let i = 0; i < 4; i++) await c.createAndWriteObj(vidToDataOid(info.vid, i), big, { offset: i * 512 });

    const out = Buffer.alloc(4 * big.length + 2, 0xaa);
    await Promise.all(
      [0, 1, 2, 3].map((i) => c.readObjInto(vidToDataOid(info.vid, i), out.subarray(1 + i * big.length, 1 + (i + 1) * big.length), { offset: i * 512 })),
    );
    for (let i = 0; i < 4; i++) expect(out.subarray(1 + i * big.length, 1 + (i + 1) * big.length).equals(big)).toBe(true);
    expect(out[0]).toBe(0xaa);
    expect(out[out.length - 1]).toBe(0xaa);

    const small = Buffer.alloc(16, 0xbb);
    await c.readObjInto(vidToDataOid(info.vid, 0), small.subarray(4, 9), { offset: 3 });
    expect(small.subarray(4, 9).equals(big.subarray(3, 8))).toBe(true);
    expect(small[3]).toBe(0xbb);
    expect(small[9]).toBe(0xbb);

    const err = await c.readObjInto(vidToDataOid(info.vid, 9), Buffer.alloc(10)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SheepError);
    expect((err as SheepError).result).toBe(C.SD_RES_NO_OBJ);
  });
});
