// The consistent-hash ring (§9.3–9.4): vnodes per node (auto strategy from advertised space), placement of an
// object on `copies` nodes in distinct zones. Pure and deterministic, so every sheep and dog computes the same.
import { SD_DEFAULT_VNODES, SD_MAX_COPIES } from './constants.js';
import { sdHash, sdHashNext, sdHashOid } from './hash.js';
import { nodeHashKey, type SdNode } from './node.js';

/** round-half-to-even of a float32 value, as C's rintf in the default rounding mode. */
function rintf(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The "auto" vnode strategy: nr_vnodes = rintf(128 * (float)space / (float)avg), avg = integer mean of the
 * spaces of nodes with space > 0; a node with space 0 is a gateway and gets 0 vnodes.
 */
export function autoVnodes(spaces: readonly bigint[]): number[] {
  const withSpace = spaces.filter((s) => s > 0n);
  if (withSpace.length === 0) return spaces.map(() => 0);
  const avg = withSpace.reduce((a, b) => a + b, 0n) / BigInt(withSpace.length);
  const favg = Math.fround(Number(avg));
  return spaces.map((s) => {
    if (s === 0n) return 0;
    const num = Math.fround(SD_DEFAULT_VNODES * Math.fround(Number(s)));
    return rintf(Math.fround(num / favg));
  });
}

interface Vnode {
  hash: bigint;
  node: number; // index into Ring.nodes
}

/** A built ring for one membership (one epoch). */
export class Ring {
  readonly nodes: readonly SdNode[];
  private readonly vnodes: Vnode[];
  /** Distinct zones among nodes that store data (nr_vnodes > 0), capped at SD_MAX_COPIES. */
  readonly nrZones: number;

  constructor(nodes: readonly SdNode[]) {
    this.nodes = nodes;
    const vnodes: Vnode[] = [];
    nodes.forEach((n, i) => {
      let h = sdHash(nodeHashKey(n.nid));
      for (let k = 0; k < n.nrVnodes; k++) {
        h = sdHashNext(h);
        vnodes.push({ hash: h, node: i });
      }
    });
    vnodes.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : a.node - b.node));
    this.vnodes = vnodes;
    const zones = new Set(nodes.filter((n) => n.nrVnodes > 0).map((n) => n.zone));
    this.nrZones = Math.min(zones.size, SD_MAX_COPIES);
  }

  /** Copies actually used for a requested number: min(copies, nr_zones). */
  effectiveCopies(copies: number): number {
    return Math.min(copies, this.nrZones);
  }

  /** Index of the first vnode with hash >= h (wrapping to 0). */
  private firstVnode(h: bigint): number {
    let lo = 0;
    let hi = this.vnodes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.vnodes[mid]!.hash < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.vnodes.length ? 0 : lo;
  }

  /**
   * The replica nodes of an object, in order (index i = EC strip i): the first vnode clockwise from the oid's
   * hash, then the next vnodes whose zones differ from every replica chosen so far.
   */
  oidToNodes(oid: bigint, copies: number): SdNode[] {
    return this.oidToNodeIndexes(oid, copies).map((i) => this.nodes[i]!);
  }

  /** Like oidToNodes, as indexes into `nodes`. */
  oidToNodeIndexes(oid: bigint, copies: number): number[] {
    const want = this.effectiveCopies(copies);
    const out: number[] = [];
    if (want <= 0 || this.vnodes.length === 0) return out;
    const zones = new Set<number>();
    const start = this.firstVnode(sdHashOid(oid));
    for (let k = 0; k < this.vnodes.length && out.length < want; k++) {
      const v = this.vnodes[(start + k) % this.vnodes.length]!;
      const zone = this.nodes[v.node]!.zone;
      if (zones.has(zone)) continue;
      zones.add(zone);
      out.push(v.node);
    }
    return out;
  }
}
