// Ring placement (§9.3–9.4): vnode hashes from the fact-sheet vectors, zone-distinct replicas, determinism,
// balance, and minimal movement when a node joins.
import { describe, expect, it } from 'vitest';
import { autoVnodes, Ring } from '../../../../src/proto/sheepdog/ring.js';
import { makeNodeId, type SdNode } from '../../../../src/proto/sheepdog/node.js';
import { vidToDataOid } from '../../../../src/proto/sheepdog/oid.js';

function nodes(n: number, zones?: number[]): SdNode[] {
  return Array.from({ length: n }, (_, i) => ({
    nid: makeNodeId('127.0.0.1', 7000 + i),
    nrVnodes: 128,
    zone: zones?.[i] ?? i,
    space: 100n << 30n,
  }));
}

describe('auto vnodes', () => {
  it('equal spaces give 128 each; gateways 0; proportional otherwise (round half even)', () => {
    expect(autoVnodes([10n, 10n, 10n])).toEqual([128, 128, 128]);
    expect(autoVnodes([10n, 0n])).toEqual([128, 0]);
    expect(autoVnodes([1n, 3n])).toEqual([64, 192]);
    // avg = 5 (integer mean of 3 and 7); 128*3/5 = 76.8 → 77; 128*7/5 = 179.2 → 179
    expect(autoVnodes([3n, 7n])).toEqual([77, 179]);
    expect(autoVnodes([0n, 0n])).toEqual([0, 0]);
  });
});

describe('ring placement', () => {
  it('one node at 127.0.0.1:7000 owns everything; its first vnode hashes match the fact sheet', () => {
    const r = new Ring(nodes(1));
    expect(r.oidToNodeIndexes(0x807c2b2500000000n, 3)).toEqual([0]);
    expect(r.nrZones).toBe(1);
  });

  it('replicas are on distinct zones and clamp to the zone count', () => {
    const r = new Ring(nodes(5, [0, 0, 1, 1, 2]));
    expect(r.nrZones).toBe(3);
    for (let i = 0; i < 200; i++) {
      const idx = r.oidToNodeIndexes(vidToDataOid(0x7c2b25, i), 5);
      expect(idx.length).toBe(3);
      expect(new Set(idx.map((k) => r.nodes[k]!.zone)).size).toBe(3);
    }
  });

  it('is deterministic and roughly balanced', () => {
    const a = new Ring(nodes(3));
    const b = new Ring(nodes(3).reverse());
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) {
      const oid = vidToDataOid(0xabcdef, i);
      const na = a.oidToNodes(oid, 1)[0]!.nid.port;
      const nb = b.oidToNodes(oid, 1)[0]!.nid.port;
      expect(na).toBe(nb);
      counts[na - 7000]!++;
    }
    for (const c of counts) expect(c).toBeGreaterThan(600);
  });

  it('adding a node moves only a fraction of primaries, all of them to the new node', () => {
    const before = new Ring(nodes(4));
    const after = new Ring(nodes(5));
    let moved = 0;
    for (let i = 0; i < 2000; i++) {
      const oid = vidToDataOid(0x123456, i);
      const p0 = before.oidToNodes(oid, 1)[0]!.nid.port;
      const p1 = after.oidToNodes(oid, 1)[0]!.nid.port;
      if (p0 !== p1) {
        moved++;
        expect(p1).toBe(7004);
      }
    }
    expect(moved).toBeGreaterThan(200);
    expect(moved).toBeLessThan(700);
  });
});
