// Node sets and epoch history (src/sheep/epoch.ts) : the
// pure parts every node must compute identically from the same membership.
import { describe, expect, it } from 'vitest';
import { EpochHistory, nodeSetChanged, nodeSetOf } from '../../../../src/sheep/epoch.js';
import type { ClusterMember } from '../../../../src/sheep/cluster/local.js';
import { makeNodeId } from '../../../../src/proto/sheepdog/node.js';

function member(id: string, port: number, joinedAt: number, zone = port): ClusterMember {
  const addr = makeNodeId('127.0.0.1', port).addr.toString('hex');
  return { id, node: `127.0.0.1:${port}`, pid: 1, info: { addr, port, zone, space: '1000' }, joinedAt, joinedMs: 0 };
}

describe('nodeSetOf', () => {
  it('keeps one node per name, its newest incarnation, in node order, with auto vnodes', () => {
    const set = nodeSetOf([member('b1', 7001, 1), member('a1', 7000, 0), member('b2', 7001, 5)]);
    expect(set.nodes.map((n) => n.nid.port)).toEqual([7000, 7001]);
    expect(set.nodes.map((n) => n.nrVnodes)).toEqual([128, 128]);
    expect(set.reps.get('127.0.0.1:7001')).toBe('b2');
  });

  it('ignores members without valid sheep info', () => {
    const bad: ClusterMember = { ...member('x', 7002, 2), info: { addr: 'zz', port: 1 } };
    expect(nodeSetOf([member('a', 7000, 0), bad]).nodes.length).toBe(1);
  });

  it('a replaced incarnation is a change, a duplicate leave of an old one is not', () => {
    const before = nodeSetOf([member('a1', 7000, 0), member('b1', 7001, 1)]);
    const restarted = nodeSetOf([member('a1', 7000, 0), member('b1', 7001, 1), member('a2', 7000, 9)]);
    expect(nodeSetChanged(before, restarted)).toBe(true);
    const oldGone = nodeSetOf([member('b1', 7001, 1), member('a2', 7000, 9)]);
    expect(nodeSetChanged(restarted, oldGone)).toBe(false);
    expect(nodeSetChanged(oldGone, nodeSetOf([member('a2', 7000, 9)]))).toBe(true);
  });
});

describe('EpochHistory', () => {
  it('finds the last epoch a node was a member of', () => {
    const h = new EpochHistory();
    const all = nodeSetOf([member('a', 7000, 0), member('b', 7001, 1), member('c', 7002, 2)]).nodes;
    const two = all.filter((n) => n.nid.port !== 7002);
    h.add(1, all, 0n);
    h.add(2, two, 0n);
    h.add(3, all, 0n);
    const c = makeNodeId('127.0.0.1', 7002);
    expect(h.lastWith(c, 3)).toBe(1);
    expect(h.lastWith(c, 4)).toBe(3);
    expect(h.lastWith(makeNodeId('127.0.0.1', 7009), 4)).toBe(0);
    expect(h.get(2)?.ring.nrZones).toBe(2);
  });
});
