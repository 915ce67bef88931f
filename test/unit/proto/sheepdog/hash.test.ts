// Hash vectors from the fact sheet (§4.2, §9.2), checked against an independent BigInt FNV reference.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fnv1a64, sdHash, sdHashNext, sdHashOid, sdHashVdi, vdiAttrId } from '../../../../src/proto/sheepdog/hash.js';

function refFnv1a(bytes: Uint8Array, h = 0xcbf29ce484222325n): bigint {
  for (const x of bytes) {
    h ^= BigInt(x);
    h = BigInt.asUintN(64, h * 0x100000001b3n);
  }
  return h;
}

describe('sheepdog hashes', () => {
  it('fnv1a64 matches a BigInt reference on random input', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (b, h) => {
        expect(fnv1a64(b, h)).toBe(refFnv1a(b, h));
      }),
    );
  });

  it('vid from name: fact sheet vectors (tests 097, 105)', () => {
    expect(sdHashVdi('test')).toBe(0x7c2b25);
    expect(sdHashVdi('01909709')).toBe(1); // hash 0 → 1
    expect(sdHashVdi('05421217')).toBe(0xffffff);
    expect(sdHashVdi('00471718')).toBe(0xfffff9);
    expect(sdHashVdi('alpha')).toBe(0xed202b);
    expect(sdHashVdi('cap')).toBe(0xe49c5b); // the tgtd transcript's VDI
  });

  it('ring hashes: fact sheet §9.2 vectors', () => {
    expect(sdHashOid(0x807c2b2500000000n)).toBe(0x8b4b18c243befa1an);
    expect(sdHashOid(0x007c2b2500000000n)).toBe(0x387358f0fb5c1275n);
    const nid = Buffer.alloc(18);
    nid[12] = 127;
    nid[15] = 1;
    nid.writeUInt16LE(7000, 16);
    const base = sdHash(nid);
    expect(base).toBe(0x9cb3d6dd0a4c0f9fn);
    const v0 = sdHashNext(base);
    const v1 = sdHashNext(v0);
    const v2 = sdHashNext(v1);
    expect([v0, v1, v2]).toEqual([0x3af2cba6e538cdf3n, 0xfd38432fd111924bn, 0x2ad2bef8f506e35dn]);
  });

  it('attr id hashes the fixed-size buffers', () => {
    const buf = Buffer.alloc(256 + 256 + 4 + 256);
    buf.write('vol', 0);
    buf.writeUInt32LE(0, 512);
    buf.write('key', 516);
    expect(vdiAttrId('vol', '', 0, 'key')).toBe(Number(refFnv1a(buf) & 0xffffffffn));
  });
});
