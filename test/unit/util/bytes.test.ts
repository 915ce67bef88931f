import { describe, expect, it } from 'vitest';
import { firstDifference } from '../../../src/util/bytes.js';

describe('firstDifference', () => {
  it('finds the first differing byte, -1 for equal buffers, the shorter length for a prefix', () => {
    expect(firstDifference(Buffer.from([1, 2, 3]), Buffer.from([1, 2, 3]))).toBe(-1);
    expect(firstDifference(Buffer.from([1, 2, 3]), Buffer.from([1, 9, 3]))).toBe(1);
    expect(firstDifference(Buffer.from([1, 2]), Buffer.from([1, 2, 3]))).toBe(2);
  });
});
