// Epochs of a sheep cluster (fact sheet §10.1): the node set derived from the cluster driver's membership,
// and the history of (epoch, nodes) with their rings. The epoch is a counter every node advances in the
// same place of the total order — at each join or leave that changes the node set (or replaces a node's
// incarnation) after format — so all nodes agree on it without exchanging it, also when a restarting node
// replays the log. One node = one `addr:port`; its newest incarnation represents it.
import { SD_MAX_NODES } from '../proto/sheepdog/constants.js';
import { compareNodeId, nodeIdEquals, type NodeId, type SdNode } from '../proto/sheepdog/node.js';
import { Ring, autoVnodes } from '../proto/sheepdog/ring.js';
import type { ClusterMember } from './cluster/local.js';

/** What a sheep publishes about itself when it joins (JSON-safe). */
export interface MemberInfo {
  addr: string;
  port: number;
  zone: number;
  space: string;
  /** Advertised I/O address (hex, 16 bytes) and port peers use for this node's peer traffic (`--advertise`). */
  ioAddr?: string;
  ioPort?: number;
}

/** The node id a member's info describes (the io address only when it is well-formed). */
export function memberNodeId(i: MemberInfo): NodeId {
  const io = typeof i.ioAddr === 'string' && /^[0-9a-f]{32}$/.test(i.ioAddr) && typeof i.ioPort === 'number' && i.ioPort > 0 && i.ioPort < 65536;
  return { addr: Buffer.from(i.addr, 'hex'), port: i.port, ioAddr: io ? Buffer.from(i.ioAddr ?? '', 'hex') : Buffer.alloc(16), ioPort: io ? (i.ioPort ?? 0) : 0 };
}

export function isMemberInfo(x: unknown): x is MemberInfo {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Partial<MemberInfo>;
  return typeof o.addr === 'string' && /^[0-9a-f]{32}$/.test(o.addr) && typeof o.port === 'number' && typeof o.zone === 'number' && typeof o.space === 'string' && /^\d+$/.test(o.space);
}

export interface NodeSet {
  /** Nodes in node order (§9.1), vnodes from the auto strategy (§9.3). */
  nodes: SdNode[];
  /** node name → id of the incarnation representing it. */
  reps: Map<string, string>;
}

/** The node set of a membership: one entry per node name, its newest incarnation. */
export function nodeSetOf(members: readonly ClusterMember[]): NodeSet {
  const newest = new Map<string, ClusterMember>();
  for (const m of members) {
    if (!isMemberInfo(m.info)) continue;
    const cur = newest.get(m.node);
    if (!cur || m.joinedAt > cur.joinedAt) newest.set(m.node, m);
  }
  const picked = [...newest.values()].slice(0, SD_MAX_NODES);
  const infos = picked.map((m) => m.info as MemberInfo);
  const vnodes = autoVnodes(infos.map((i) => BigInt(i.space)));
  const nodes: SdNode[] = infos.map((i, k) => ({
    nid: memberNodeId(i),
    nrVnodes: vnodes[k] ?? 0,
    zone: i.zone >>> 0,
    space: BigInt(i.space),
  }));
  nodes.sort((a, b) => compareNodeId(a.nid, b.nid));
  return { nodes, reps: new Map(picked.map((m) => [m.node, m.id])) };
}

/** True if two node sets differ in nodes or in the incarnation representing a node. */
export function nodeSetChanged(a: NodeSet, b: NodeSet): boolean {
  if (a.reps.size !== b.reps.size) return true;
  for (const [name, id] of a.reps) if (b.reps.get(name) !== id) return true;
  return false;
}

export interface EpochRecord {
  epoch: number;
  nodes: SdNode[];
  time: bigint;
  ring: Ring;
}

/** Epoch history as derived from the log (kept in memory, mirrored to `<dir>/epoch/%08u`). */
export class EpochHistory {
  private readonly records = new Map<number, EpochRecord>();

  add(epoch: number, nodes: SdNode[], time: bigint): EpochRecord {
    const rec = { epoch, nodes, time, ring: new Ring(nodes) };
    this.records.set(epoch, rec);
    return rec;
  }

  get(epoch: number): EpochRecord | undefined {
    return this.records.get(epoch);
  }

  all(): EpochRecord[] {
    return [...this.records.values()].sort((a, b) => a.epoch - b.epoch);
  }

  clear(): void {
    this.records.clear();
  }

  /** The newest epoch < `before` whose node set contains `nid` (0 if none). */
  lastWith(nid: NodeId, before: number): number {
    let best = 0;
    for (const r of this.records.values()) {
      if (r.epoch < before && r.epoch > best && r.nodes.some((n) => nodeIdEquals(n.nid, nid))) best = r.epoch;
    }
    return best;
  }
}
