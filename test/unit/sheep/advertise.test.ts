// `sheep --advertise`: the io address a node publishes in its join info becomes node_id io_addr/io_port in
// every node's node set and epoch files, while its identity (ordering, ring position) stays addr:port; a
// malformed io address is ignored.
import { describe, expect, it } from 'vitest';
import { nodeSetOf } from '../../../src/sheep/epoch.js';
import type { ClusterMember } from '../../../src/sheep/cluster/local.js';
import { addrBytes, addrText, decodeNodes, encodeNodes, makeNodeId, nodeIdEquals } from '../../../src/proto/sheepdog/node.js';
import { Ring } from '../../../src/proto/sheepdog/ring.js';
import { peerIoAddr } from '../../../src/sheep/peer-pool.js';

function member(port: number, io?: { ioAddr: string; ioPort: number }): ClusterMember {
  const addr = makeNodeId('127.0.0.1', port).addr.toString('hex');
  return { id: `i${port}`, node: `127.0.0.1:${port}`, pid: 1, info: { addr, port, zone: port, space: '1000', ...io }, joinedAt: port, joinedMs: 0 };
}

describe('advertised io address', () => {
  it('reaches the node set and the epoch file, and leaves identity and placement unchanged', () => {
    const io = { ioAddr: addrBytes('127.0.0.1').toString('hex'), ioPort: 9100 };
    const plain = nodeSetOf([member(7000), member(7001), member(7002)]);
    const adv = nodeSetOf([member(7000, io), member(7001), member(7002)]);
    const n0 = adv.nodes[0]!;
    expect(n0.nid.ioPort).toBe(9100);
    expect(addrText(n0.nid.ioAddr)).toBe('127.0.0.1');
    expect(peerIoAddr(n0.nid)).toEqual({ host: '127.0.0.1', port: 9100 });
    expect(peerIoAddr(adv.nodes[1]!.nid)).toEqual({ host: '127.0.0.1', port: 7001 });
    expect(nodeIdEquals(n0.nid, plain.nodes[0]!.nid)).toBe(true);
    const a = new Ring(adv.nodes);
    const b = new Ring(plain.nodes);
    for (let i = 0n; i < 64n; i++) {
      const oid = (0x7c2b25n << 32n) | i;
      expect(a.oidToNodes(oid, 3).map((n) => n.nid.port)).toEqual(b.oidToNodes(oid, 3).map((n) => n.nid.port));
    }
    const back = decodeNodes(encodeNodes(adv.nodes));
    expect(back[0]!.nid.ioPort).toBe(9100);
  });

  it('ignores a malformed io address', () => {
    const set = nodeSetOf([member(7000, { ioAddr: 'zz', ioPort: 9100 }), member(7001, { ioAddr: '00'.repeat(16), ioPort: 70000 })]);
    expect(set.nodes.map((n) => n.nid.ioPort)).toEqual([0, 0]);
  });
});
