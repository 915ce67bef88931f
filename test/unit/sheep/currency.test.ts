// Which copy is current (src/sheep/currency.ts): continuity, attestation that nothing was written, the
// rolling replacement that served old data, the holder killed before recovery copied from it, and the wire
// form of a version list. Rings hold at most 3 nodes and copies is 3, so every member is a replica: the
// scenarios read as node sets per epoch.
import { describe, expect, it } from 'vitest';
import { makeNodeId, type NodeId, type SdNode } from '../../../src/proto/sheepdog/node.js';
import { Ring } from '../../../src/proto/sheepdog/ring.js';
import { currentThrough, decide, decodeVersionList, encodeVersionList, type CopyInfo, type History } from '../../../src/sheep/currency.js';
import type { ObjVersion } from '../../../src/sheep/store/store.js';

const OID = 0x7c2b2500000003n;
const ids: Record<string, NodeId> = { A: makeNodeId('127.0.0.1', 7000), B: makeNodeId('127.0.0.1', 7001), C: makeNodeId('127.0.0.1', 7002), D: makeNodeId('127.0.0.1', 7003) };
const sd = (n: string): SdNode => ({ nid: ids[n]!, nrVnodes: 64, zone: ids[n]!.port, space: 1n << 30n });

/** History from node sets per epoch ("AB" = nodes A and B), epoch 1 first. */
function history(...sets: string[]): History {
  const rings = sets.map((s) => new Ring([...s].map(sd)));
  return { ringOf: (e) => rings[e - 1] ?? null, copiesOf: () => 3 };
}
const v = (epoch: number, gen: number, current: number): ObjVersion => ({ epoch, gen, current });
const copy = (n: string, ver: ObjVersion | null, purgeEpoch = 0): CopyInfo => ({ node: ids[n]!, ver, purgeEpoch });

describe('currentThrough', () => {
  it('follows the epochs in which the holder stays a replica', () => {
    const h = history('AB', 'ABC', 'BC', 'BCD', 'CD');
    expect(currentThrough(1, ids.A!, OID, 5, h)).toBe(2);
    expect(currentThrough(1, ids.B!, OID, 5, h)).toBe(4);
    expect(currentThrough(3, ids.C!, OID, 5, h)).toBe(5);
    expect(currentThrough(0, ids.B!, OID, 5, h)).toBe(0);
  });
});

describe('decide', () => {
  // The rolling replacement: A,B hold v1; C,D replace them and take v2 in epoch 5; A comes back in epoch 6.
  const rolling = history('AB', 'ABC', 'BC', 'BCD', 'CD', 'ACD');

  it('a returning node fetches the newer copy, never keeps its old one', () => {
    const d = decide(OID, 6, copy('A', v(1, 1, 1)), [copy('C', v(5, 1, 5)), copy('D', v(5, 1, 5))], rolling);
    expect(d).toMatchObject({ kind: 'fetch', ver: v(5, 1, 5), verify: false });
  });

  it('a node that stayed a replica keeps its copy without asking', () => {
    expect(decide(OID, 6, copy('C', v(5, 1, 5)), [copy('A', v(1, 1, 1)), copy('D', v(5, 1, 5))], rolling)).toEqual({ kind: 'keep', mark: false });
  });

  it('when every holder of the newer copy is gone, the old copies are unavailable, not served', () => {
    // Epoch 6: only A and B are back; C and D (the only holders of epoch 5's writes) were killed.
    const h = history('AB', 'ABC', 'BC', 'BCD', 'CD', 'AB');
    const d = decide(OID, 6, copy('A', v(1, 1, 1)), [copy('B', v(1, 1, 1))], h);
    expect(d).toMatchObject({ kind: 'unavailable', best: 4, gapFrom: 5, gapTo: 5 });
  });

  it('the same versions on a non-continuous copy are verified by hash, not trusted', () => {
    const h = history('AB', 'B', 'AB');
    const d = decide(OID, 3, copy('A', v(1, 1, 1)), [copy('B', v(1, 1, 1))], h);
    expect(d).toMatchObject({ kind: 'fetch', from: ids.B, verify: true });
  });

  it('a replica that was never current in an epoch proves nothing was written then', () => {
    // Full stop after epoch 2; A (holding no copy) comes back alone in epoch 3, then B in epoch 4.
    const h = history('AB', 'B', 'A', 'AB');
    const d = decide(OID, 4, copy('A', null), [copy('B', v(2, 3, 2))], h);
    expect(d).toMatchObject({ kind: 'fetch', from: ids.B, ver: v(2, 3, 2) });
    // ... but not when A deleted copies in or after that epoch (it may have held and dropped a newer one).
    expect(decide(OID, 4, copy('A', null, 3), [copy('B', v(2, 3, 2))], h)).toMatchObject({ kind: 'unavailable', gapFrom: 3 });
  });

  it('a stale copy of a member that was a replica but not current does not vouch for itself', () => {
    // A missed epoch 2 (not a member), is back in epoch 3 without recovering, and epoch 4 asks.
    const h = history('AB', 'B', 'AB', 'A');
    expect(decide(OID, 4, copy('A', v(1, 1, 1)), [], h)).toMatchObject({ kind: 'unavailable' });
  });

  it('copies of unknown version prove nothing', () => {
    const h = history('AB', 'AB');
    expect(decide(OID, 2, copy('A', v(0, 0, 0)), [copy('B', v(0, 0, 0))], h)).toMatchObject({ kind: 'unavailable' });
    expect(decide(OID, 2, copy('A', null), [copy('B', null)], h)).toEqual({ kind: 'none' });
  });
});

describe('version list wire form', () => {
  it('round-trips and rejects a short buffer', () => {
    const entries: [bigint, ObjVersion][] = [
      [0x807c2b2500000000n, v(9, 26, 11)],
      [1n, v(1, 1, 1)],
    ];
    const b = encodeVersionList(7, entries);
    expect(b.length).toBe(16 + 2 * 24);
    expect(b.readUInt32LE(0)).toBe(7);
    expect(b.readBigUInt64LE(16)).toBe(0x807c2b2500000000n);
    expect(b.readUInt32LE(16 + 8)).toBe(9);
    const d = decodeVersionList(b);
    expect(d?.purgeEpoch).toBe(7);
    expect([...(d?.entries ?? [])]).toEqual(entries);
    expect(decodeVersionList(b.subarray(0, 30))).toBeNull();
  });
});
