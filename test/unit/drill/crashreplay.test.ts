// ObjectIoTarget (objects allocated on first write, absent objects read as zeros, one create per object under
// concurrent first writes) and the crash-state replay: a store that acknowledges without syncing must show lost
// writes, the real store none.
import { describe, expect, it } from 'vitest';
import { ObjectIoTarget, type ObjectBackend } from '../../../src/drill/objdev.js';
import { replayCrashStates } from '../../../src/drill/crashreplay.js';
import { Workload } from '../../../src/drill/workload.js';
import { componentLogger } from '../../../src/obs/log.js';
import { SD_RES_NO_OBJ } from '../../../src/proto/sheepdog/constants.js';
import { CrashFs } from '../../../src/sheep/store/crashfs.js';
import { PlainStore } from '../../../src/sheep/store/plain.js';
import { ClientStore } from '../../../src/sheep/client-store.js';

/** Client-path versions of a one-node store in epoch 1. */
const clientStore = (s: PlainStore): ClientStore => new ClientStore(s, () => 1, () => Promise.resolve());
import type { StoreFile, StoreFs } from '../../../src/sheep/store/fs.js';

const log = componentLogger('drill-test').child({}, { level: 'silent' });

/** A StoreFs whose fsync does nothing: the classic "acknowledged but only in the page cache" bug. */
function noSync(fs: CrashFs): StoreFs {
  const wrap = (f: StoreFile): StoreFile => ({ ...f, sync: () => Promise.resolve(), datasync: () => Promise.resolve() });
  return {
    open: async (p, flags) => wrap(await fs.open(p, flags)),
    rename: (a, b) => fs.rename(a, b),
    unlink: (p) => fs.unlink(p),
    readdir: (d) => fs.readdir(d),
    mkdirp: (d) => fs.mkdirp(d),
    rmrf: (p) => fs.rmrf(p),
    syncDir: () => Promise.resolve(),
    statfs: () => fs.statfs(),
  };
}

async function run(broken: boolean): Promise<{ lost: number; corrupt: number; states: number }> {
  const fs = new CrashFs();
  const store = new PlainStore('/s', { fs: broken ? noSync(fs) : fs, log });
  await store.open();
  const wl = new Workload(new ObjectIoTarget(clientStore(store), 16384, 1n), { blocks: 16, blockSize: 4096, workers: 2, writeRatio: 1, seed: 7, now: () => fs.clock });
  wl.start();
  while (wl.stats.writes < 40) await new Promise((r) => setTimeout(r, 1));
  await wl.stop();
  // The broken store has no sync points of its own: crash after every log entry instead.
  const points = broken ? Array.from({ length: fs.clock }, (_, i) => i).filter((i) => i % 7 === 0) : undefined;
  const rep = await replayCrashStates({
    fs,
    history: wl.history,
    blocks: 16,
    blockSize: 4096,
    policies: ['synced'],
    ...(points ? { points } : {}),
    open: async (crashed) => {
      const s = new PlainStore('/s', { fs: crashed, log });
      await s.open();
      return { target: new ObjectIoTarget(clientStore(s), 16384, 1n), close: () => s.close() };
    },
  });
  return { lost: rep.lost, corrupt: rep.corrupt + rep.unreadable, states: rep.states };
}

describe('ObjectIoTarget', () => {
  it('creates each object once under concurrent first writes and reads absent objects as zeros', async () => {
    const calls: string[] = [];
    const data = new Map<bigint, Buffer>();
    const backend: ObjectBackend = {
      create: async (oid, size, d, off) => {
        calls.push(`create ${oid}`);
        await new Promise((r) => setTimeout(r, 5));
        const b = Buffer.alloc(size);
        d.copy(b, off);
        data.set(oid, b);
      },
      write: (oid, d, off) => {
        calls.push(`write ${oid}`);
        d.copy(data.get(oid)!, off);
        return Promise.resolve();
      },
      read: (oid, off, len) => {
        const b = data.get(oid);
        if (!b) return Promise.reject(Object.assign(new Error('no obj'), { result: SD_RES_NO_OBJ }));
        return Promise.resolve(b.subarray(off, off + len));
      },
    };
    const t = new ObjectIoTarget(backend, 8192, 10n);
    await Promise.all([t.write(0, Buffer.alloc(512, 1)), t.write(4096, Buffer.alloc(512, 2)), t.write(8192, Buffer.alloc(512, 3))]);
    expect(calls.filter((c) => c === 'create 10')).toHaveLength(1);
    expect(calls).toContain('write 10');
    expect((await t.read(4096, 512)).equals(Buffer.alloc(512, 2))).toBe(true);
    expect((await t.read(16384, 512)).equals(Buffer.alloc(512))).toBe(true);
    await expect(t.write(8000, Buffer.alloc(512))).rejects.toThrow(RangeError);
  });
});

describe('replayCrashStates', () => {
  it('finds lost writes in a store that does not sync, none in the real store', async () => {
    const good = await run(false);
    expect(good.states).toBeGreaterThan(20);
    expect(good).toMatchObject({ lost: 0, corrupt: 0 });
    const bad = await run(true);
    expect(bad.lost).toBeGreaterThan(0);
  });
});
