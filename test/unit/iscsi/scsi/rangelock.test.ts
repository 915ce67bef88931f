// The LBA range lock: shared holders coexist, an exclusive holder excludes overlapping ones, FIFO fairness.
import { describe, it, expect } from 'vitest';
import { LocalRangeLock } from '../../../../src/iscsi/scsi/rangelock.js';

describe('LocalRangeLock', () => {
  it('lets shared holders overlap and makes exclusive wait for them', async () => {
    const l = new LocalRangeLock();
    const order: string[] = [];
    const r1 = await l.acquire(0, 100, 'shared');
    const r2 = await l.acquire(50, 100, 'shared');
    const ex = l.acquire(10, 10, 'exclusive').then((r) => {
      order.push('exclusive');
      return r;
    });
    const later = l.acquire(10, 1, 'shared').then((r) => {
      order.push('shared-after');
      return r;
    });
    await Promise.resolve();
    expect(order).toEqual([]);
    r1();
    r2();
    const rex = await ex;
    expect(order).toEqual(['exclusive']);
    rex();
    (await later)();
    expect(order).toEqual(['exclusive', 'shared-after']);
  });
  it('does not block disjoint ranges (an overlapping one waits)', async () => {
    const l = new LocalRangeLock();
    // Granted or still waiting once every queued promise job has run.
    const state = (p: Promise<unknown>): Promise<string> =>
      Promise.race([p.then(() => 'granted'), new Promise<string>((r) => setImmediate(() => r('waiting')))]);
    const a = await l.acquire(0, 10, 'exclusive');
    const b = l.acquire(10, 10, 'exclusive');
    expect(await state(b)).toBe('granted');
    const overlap = l.acquire(9, 2, 'exclusive');
    expect(await state(overlap)).toBe('waiting');
    a();
    expect(await state(overlap)).toBe('waiting');
    (await b)();
    expect(await state(overlap)).toBe('granted');
    (await overlap)();
  });
});
