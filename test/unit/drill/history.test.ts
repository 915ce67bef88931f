// Self-test of the history checker on known-good and known-bad histories (issue 8, test 1), and of stamped
// block classification.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkHistory, searchLinearizable, type Op } from '../../../src/drill/history.js';
import { classifyBlock, makeStampedBlock, valueKey } from '../../../src/drill/stamp.js';

const w = (block: number, value: string, invoke: number, complete: number | null): Op => ({ kind: 'write', block, value, invoke, complete });
const r = (block: number, value: string, invoke: number, complete: number, final = false): Op => ({ kind: 'read', block, value, invoke, complete, final });

describe('history checker: known-bad histories are caught', () => {
  it('stale read: an older value after a newer write completed', () => {
    const res = checkHistory([w(1, 'a', 0, 10), w(1, 'b', 20, 30), r(1, 'a', 40, 50)]);
    expect(res.staleReads).toBe(1);
    expect(res.violations[0]!.kind).toBe('stale');
  });

  it('lost write: the final verification read misses an acknowledged write', () => {
    const res = checkHistory([w(7, 'a', 0, 10), w(7, 'b', 20, 30), r(7, 'a', 100, 110, true)]);
    expect(res.lostWrites).toBe(1);
  });

  it('lost write to zero: an acknowledged write reads back as never written', () => {
    expect(checkHistory([w(3, 'x', 0, 5), r(3, '0', 10, 12, true)]).lostWrites).toBe(1);
  });

  it('corruption: garbage, a never-written value, a value from the future', () => {
    const res = checkHistory([
      r(1, 'garbage:checksum mismatch', 0, 1),
      r(2, '9:9', 0, 1),
      w(3, 'c', 50, 60),
      r(3, 'c', 0, 10),
    ]);
    expect(res.corrupt).toBe(3);
  });

  it('new-old inversion between two reads is found by the linearizability search', () => {
    const h = [w(1, 'a', 0, 10), w(1, 'b', 20, 100), r(1, 'b', 30, 40), r(1, 'a', 50, 60)];
    const res = checkHistory(h);
    expect(res.staleReads).toBe(0);
    expect(res.nonlinearizable).toBe(1);
  });
});

describe('history checker: valid histories pass', () => {
  it('concurrent writes; reads may see either while they overlap', () => {
    const res = checkHistory([
      w(1, 'a', 0, 50),
      w(1, 'b', 10, 60),
      r(1, 'b', 20, 30),
      r(1, 'a', 55, 70), // a may linearize after b (both in flight at 20..50)
      r(1, 'a', 80, 90),
    ]);
    expect(res.violations).toEqual([]);
  });

  it('an unknown-outcome write may or may not have happened', () => {
    expect(checkHistory([w(1, 'a', 0, 10), w(1, 'b', 20, null), r(1, 'a', 30, 40)]).violations).toEqual([]);
    expect(checkHistory([w(1, 'a', 0, 10), w(1, 'b', 20, null), r(1, 'b', 30, 40), r(1, 'b', 50, 60)]).violations).toEqual([]);
    // but once b was seen, a cannot come back
    expect(checkHistory([w(1, 'a', 0, 10), w(1, 'b', 20, null), r(1, 'b', 30, 40), r(1, 'a', 50, 60)]).nonlinearizable).toBe(1);
  });

  it('random sequential histories of a real register are always linearizable', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 40 }), (kinds) => {
        let t = 0;
        let cur = '0';
        const h: Op[] = [];
        kinds.forEach((isWrite, i) => {
          if (isWrite) {
            cur = `0:${i}`;
            h.push(w(0, cur, t, t + 1));
          } else h.push(r(0, cur, t, t + 1));
          t += 2;
        });
        expect(checkHistory(h).violations).toEqual([]);
        expect(searchLinearizable(h, 100_000)).toBe('yes');
      }),
    );
  });
});

describe('stamped blocks', () => {
  it('round-trip and classify', () => {
    const b = makeStampedBlock({ writer: 3, seq: 77, lba: 12 }, 4096);
    const c = classifyBlock(b, 12);
    expect(c).toEqual({ kind: 'stamp', stamp: { writer: 3, seq: 77, lba: 12 } });
    expect(valueKey(c)).toBe('3:77');
    expect(classifyBlock(Buffer.alloc(4096)).kind).toBe('zero');
  });

  it('a flipped bit anywhere, a misplaced block, or a torn block is garbage', () => {
    const b = makeStampedBlock({ writer: 1, seq: 2, lba: 5 }, 4096);
    for (const pos of [0, 9, 30, 100, 4095]) {
      const x = Buffer.from(b);
      x[pos]! ^= 0x10;
      expect(classifyBlock(x, 5).kind).toBe('garbage');
    }
    expect(classifyBlock(b, 6).kind).toBe('garbage');
    const torn = Buffer.concat([b.subarray(0, 2048), makeStampedBlock({ writer: 1, seq: 3, lba: 5 }, 4096).subarray(2048)]);
    expect(classifyBlock(torn, 5).kind).toBe('garbage');
  });
});
