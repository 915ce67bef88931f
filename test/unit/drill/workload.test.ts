// The verifying workload on a healthy device finds nothing; on a device that acknowledges writes it then
// loses ("ack early"), or serves stale data, the checker reports lost writes and stale reads.
import { describe, expect, it } from 'vitest';
import { MemoryDevice } from '../../../src/block/memory.js';
import { Workload, type IoTarget } from '../../../src/drill/workload.js';

async function runFor(target: IoTarget, ms: number, opts: Partial<ConstructorParameters<typeof Workload>[1]> = {}): Promise<Workload> {
  const w = new Workload(target, { blocks: 64, workers: 4, seed: 7, ...opts });
  w.start();
  await new Promise((r) => setTimeout(r, ms));
  await w.stop();
  return w;
}

describe('verifying workload', () => {
  it('a correct device: many operations, zero violations', async () => {
    const dev = new MemoryDevice({ name: 'ok', size: 1 << 20 });
    const w = await runFor(dev, 300);
    await w.verify();
    const r = w.check();
    expect(r.acknowledgedWrites).toBeGreaterThan(50);
    expect(r.reads).toBeGreaterThan(50);
    expect(r.violations).toEqual([]);
  });

  it('"ack early": a device that acknowledges writes and drops some of them is caught (lost writes)', async () => {
    const dev = new MemoryDevice({ name: 'lossy', size: 1 << 20 });
    let n = 0;
    const lossy: IoTarget = {
      read: (o, l) => dev.read(o, l),
      write: async (o, d) => {
        if (++n % 5 === 0) return; // acknowledged, never stored
        await dev.write(o, d);
      },
    };
    const w = await runFor(lossy, 200, { writeRatio: 1 });
    await w.verify(dev);
    const r = w.check();
    expect(r.lostWrites).toBeGreaterThan(0);
  });

  it('a device that serves an old copy after a newer write is caught (stale reads)', async () => {
    const dev = new MemoryDevice({ name: 'stale', size: 1 << 20 });
    const snapshot = new Map<number, Buffer>();
    const stale: IoTarget = {
      read: async (o, l) => snapshot.get(o) ?? dev.read(o, l),
      write: async (o, d) => {
        if (!snapshot.has(o)) snapshot.set(o, Buffer.from(d)); // remember the first version forever
        await dev.write(o, d);
      },
    };
    const w = await runFor(stale, 300, { blocks: 8, workers: 2 });
    const r = w.check();
    expect(r.staleReads + r.nonlinearizable).toBeGreaterThan(0);
  });

  it('torn or misplaced data is corruption', async () => {
    const dev = new MemoryDevice({ name: 'torn', size: 1 << 20 });
    const torn: IoTarget = {
      read: async (o, l) => {
        const b = await dev.read(o, l);
        if (b[100] !== 0) b[100] = b[100]! ^ 1;
        return b;
      },
      write: (o, d) => dev.write(o, d),
    };
    const w = await runFor(torn, 200);
    expect(w.check().corrupt).toBeGreaterThan(0);
  });
});
