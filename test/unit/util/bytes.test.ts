import { describe, expect, it } from 'vitest';
import { copyUnlessInPlace, firstDifference } from '../../../src/util/bytes.js';

describe('firstDifference', () => {
  it('finds the first differing byte, -1 for equal buffers, the shorter length for a prefix', () => {
    expect(firstDifference(Buffer.from([1, 2, 3]), Buffer.from([1, 2, 3]))).toBe(-1);
    expect(firstDifference(Buffer.from([1, 2, 3]), Buffer.from([1, 9, 3]))).toBe(1);
    expect(firstDifference(Buffer.from([1, 2]), Buffer.from([1, 2, 3]))).toBe(2);
  });
});

describe('copyUnlessInPlace', () => {
  it('copies into the destination at an offset, and leaves a view already at that place alone', () => {
    const dst = Buffer.alloc(8);
    copyUnlessInPlace(Buffer.from([1, 2, 3]), dst, 2);
    expect([...dst]).toEqual([0, 0, 1, 2, 3, 0, 0, 0]);
    // A view of dst at offset 4: "copying" it there must not read or write anything else.
    const view = dst.subarray(4, 6);
    view.fill(7);
    copyUnlessInPlace(view, dst, 4);
    expect([...dst]).toEqual([0, 0, 1, 2, 7, 7, 0, 0]);
    // The same view named for another offset is copied there.
    copyUnlessInPlace(view, dst, 0);
    expect([...dst]).toEqual([7, 7, 1, 2, 7, 7, 0, 0]);
  });
});
