// FileDevice: real file I/O through a FileHandle, zeroing by writes, honest extents, limits and errors.
import { describe, it, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileDevice } from '../../../src/block/file.js';
import { BlockError } from '../../../src/block/device.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sheepfold-file-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof BlockError ? err.code : String(err);
  }
}

describe('FileDevice', () => {
  it('creates a file of the given size, writes with FUA, reads back, flushes', async () => {
    const p = path.join(dir, 'a.img');
    const d = await FileDevice.open({ name: 'a', path: p, size: 1 << 20 });
    expect(d.size).toBe(1 << 20);
    expect(fs.statSync(p).size).toBe(1 << 20);
    await d.write(4096, Buffer.alloc(8192, 0x42), { fua: true });
    await d.flush();
    expect((await d.read(4096, 8192)).equals(Buffer.alloc(8192, 0x42))).toBe(true);
    const onDisk = fs.readFileSync(p).subarray(4096, 4096 + 8192);
    expect(onDisk.equals(Buffer.alloc(8192, 0x42))).toBe(true);
    await d.close();
  });

  it('discard and writeZeroes write zeros; FAST_ZERO is refused; extents are all data', async () => {
    const p = path.join(dir, 'b.img');
    fs.writeFileSync(p, Buffer.alloc(3 << 20, 0xff));
    const d = await FileDevice.open({ name: 'b', path: p });
    expect(d.thin).toBe(false);
    await d.discard(0, 512);
    await d.writeZeroes(1 << 20, (1 << 20) + 512);
    expect((await d.read(0, 512)).equals(Buffer.alloc(512))).toBe(true);
    expect((await d.read(1 << 20, (1 << 20) + 512)).equals(Buffer.alloc((1 << 20) + 512))).toBe(true);
    expect((await d.read(512, 512)).equals(Buffer.alloc(512, 0xff))).toBe(true);
    expect(await code(d.writeZeroes(0, 512, { fastOnly: true }))).toBe('ENOTSUP');
    expect((await d.read(512, 1))[0]).toBe(0xff);
    expect(await d.extents(512, 4096)).toEqual([{ offset: 512, length: 4096, allocated: true, zero: false }]);
    await d.close();
  });

  it('rounds the size down to the block size and rejects bad opens', async () => {
    const p = path.join(dir, 'c.img');
    fs.writeFileSync(p, Buffer.alloc(1000));
    const d = await FileDevice.open({ name: 'c', path: p });
    expect(d.size).toBe(512);
    expect(await code(d.read(0, 1000))).toBe('EINVAL');
    await d.close();
    expect(await code(d.read(0, 1))).toBe('ESHUTDOWN');
    expect(await code(FileDevice.open({ name: 'x', path: path.join(dir, 'missing.img') }))).toBe('EINVAL');
    expect(await code(FileDevice.open({ name: 'x', path: p, size: 512 }))).toBe('EINVAL');
    expect(await code(FileDevice.open({ name: 'x', path: dir }))).toBe('EINVAL');
  });

  it('read-only devices refuse writes with EROFS', async () => {
    const p = path.join(dir, 'd.img');
    fs.writeFileSync(p, Buffer.alloc(4096, 1));
    const d = await FileDevice.open({ name: 'd', path: p, readOnly: true });
    expect(await code(d.write(0, Buffer.alloc(512)))).toBe('EROFS');
    expect(await code(d.writeZeroes(0, 512))).toBe('EROFS');
    expect((await d.read(0, 512)).equals(Buffer.alloc(512, 1))).toBe(true);
    await d.flush();
    await d.close();
  });
});
