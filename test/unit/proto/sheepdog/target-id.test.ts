// Golden bytes of the Sheepfold target-identity extension (HELLO payload, TARGET_LOCKS entry, synthetic node id).
import { describe, expect, it } from 'vitest';
import * as C from '../../../../src/proto/sheepdog/constants.js';
import { nodeIdToStr } from '../../../../src/proto/sheepdog/node.js';
import {
  SF_HELLO_SIZE,
  SF_OP_BREAK_LOCK,
  SF_OP_HELLO,
  SF_OP_TARGET_LOCKS,
  SF_RES_FENCED,
  SF_TARGET_LOCK_SIZE,
  checkTargetId,
  decodeHello,
  decodeTargetLocks,
  encodeHello,
  encodeTargetLocks,
  isTargetNodeId,
  makeIncarnation,
  targetNodeId,
} from '../../../../src/proto/sheepdog/target-id.js';

describe('target identity extension', () => {
  it('encodes HELLO as 80 bytes: version, flags, incarnation, NUL-padded id', () => {
    const b = encodeHello({ targetId: 'host-a', incarnation: 0x0102030405060708n });
    expect(b.length).toBe(SF_HELLO_SIZE);
    expect(b.subarray(0, 22).toString('hex')).toBe('01000000' + '00000000' + '0807060504030201' + Buffer.from('host-a').toString('hex'));
    expect(b.subarray(22).equals(Buffer.alloc(58))).toBe(true);
    expect(decodeHello(b)).toEqual({ targetId: 'host-a', incarnation: 0x0102030405060708n });
    expect(() => decodeHello(b.subarray(0, 79))).toThrow(RangeError);
    const bad = Buffer.from(b);
    bad.writeUInt32LE(2, 0);
    expect(() => decodeHello(bad)).toThrow(/version/);
  });

  it('checks target ids: 1-64 bytes, no control characters', () => {
    expect(checkTargetId('x'.repeat(64))).toHaveLength(64);
    expect(() => checkTargetId('')).toThrow(RangeError);
    expect(() => checkTargetId('x'.repeat(65))).toThrow(RangeError);
    expect(() => checkTargetId('a\nb')).toThrow(RangeError);
  });

  it('derives a deterministic synthetic node id (fd53:4674 prefix, port 0) distinct per id', () => {
    const a = targetNodeId('host-a');
    expect(a.addr.subarray(0, 4).toString('hex')).toBe('fd534674');
    expect(a.port).toBe(0);
    expect(targetNodeId('host-a')).toEqual(a);
    expect(targetNodeId('host-b').addr.equals(a.addr)).toBe(false);
    expect(isTargetNodeId(a)).toBe(true);
    expect(nodeIdToStr(a)).toMatch(/^IPv6 ip:fd53:4674:[0-9a-f:]+ port:0$/);
    expect(isTargetNodeId({ ...a, port: 7000 })).toBe(false);
  });

  it('names the ops and the FENCED result for logs and errors', () => {
    expect([C.opName(SF_OP_HELLO), C.opName(SF_OP_TARGET_LOCKS), C.opName(SF_OP_BREAK_LOCK)]).toEqual(['HELLO', 'TARGET_LOCKS', 'BREAK_LOCK']);
    expect(C.resultName(SF_RES_FENCED)).toBe('FENCED');
    expect(SF_RES_FENCED).toBe(0xf0);
  });

  it('orders incarnations by start time, then random bits', () => {
    expect(makeIncarnation(1000, 0.5)).toBe((1000n << 20n) | 0x80000n);
    expect(makeIncarnation(1001, 0) > makeIncarnation(1000, 0.999999)).toBe(true);
  });

  it('round-trips TARGET_LOCKS entries (128 bytes each)', () => {
    const e = { vid: 0x7c2b25, targetId: 'host-a', nid: targetNodeId('host-a'), incarnation: 5n, generation: 3, held: true, type: C.LOCK_TYPE_SHARED };
    const b = encodeTargetLocks([e, { ...e, targetId: 'host-b', nid: targetNodeId('host-b'), held: false }]);
    expect(b.length).toBe(2 * SF_TARGET_LOCK_SIZE);
    expect(b.subarray(0, 18).toString('hex')).toBe('252b7c00' + '03000000' + '0500000000000000' + '01' + '01');
    expect(b.subarray(24, 28).toString('hex')).toBe('fd534674');
    expect(decodeTargetLocks(b)).toEqual([e, { ...e, targetId: 'host-b', nid: targetNodeId('host-b'), held: false }]);
  });
});
