// The VdiDevice write fence (docs/fencing.md): a write whose deadline has passed sends no object I/O and fails
// with EIO; a write within its deadline, and any write without one, lands.
import { afterEach, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { SheepClient } from '../../../src/client/index.js';
import { VdiDevice } from '../../../src/block/vdi.js';
import { FakeSheep } from '../client/fake-sheep.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

describe('VdiDevice write fence', () => {
  it('refuses to start a write past its deadline and lands one within it', async () => {
    const s = new FakeSheep({ blockSizeShift: 20 });
    await s.start();
    cleanups.push(() => s.stop());
    const c = new SheepClient({ gateways: s.addr, reconnectTimeoutMs: 1000 });
    cleanups.push(() => c.close());
    await c.newVdi({ name: 'disk', size: BigInt(16 * 2 ** 20) });
    const d = await VdiDevice.open({ gateways: s.addr, vdi: 'disk', shared: true, writeFenceMs: 60_000 });
    cleanups.push(() => d.close());
    const objectWrites = (): number =>
      s.log.filter((r) => r.opcode === C.SD_OP_CREATE_AND_WRITE_OBJ || r.opcode === C.SD_OP_WRITE_OBJ).length;
    const before = objectWrites();
    await expect(d.write(4096, crypto.randomBytes(8192), { notAfter: Date.now() - 1 })).rejects.toMatchObject({ code: 'EIO' });
    expect(objectWrites()).toBe(before);
    expect(await d.read(4096, 8192)).toEqual(Buffer.alloc(8192));
    const x = crypto.randomBytes(8192);
    await d.write(4096, x); // the device's own 60 s fence
    expect((await d.read(4096, 8192)).equals(x)).toBe(true);
    expect(objectWrites()).toBeGreaterThan(before);
  });
});
