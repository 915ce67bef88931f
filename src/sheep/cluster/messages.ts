// Cluster messages of the sheep (fact sheet §2.1 CLUSTER class): the state changes every node applies in the
// one total order the cluster driver delivers. JSON-safe (the `local` driver stores JSON records): node ids
// travel as {addr hex, port}, 64-bit values as decimal strings.
import type { NodeId } from '../../proto/sheepdog/node.js';

export interface WireNodeId {
  addr: string;
  port: number;
}

/** A target identity (HELLO) in a lock message. */
export interface WireTarget {
  id: string;
  inc: string;
}

export type ClusterMsg =
  | {
      t: 'make_fs';
      token: string;
      ctime: string;
      flags: number;
      copies: number;
      copyPolicy: number;
      blockSizeShift: number;
      store: string;
    }
  | { t: 'shutdown'; token: string }
  /** `dog cluster recover force`: end the wait for the last epoch's nodes after a shutdown. */
  | { t: 'force_recover'; token: string }
  | {
      t: 'vdi_add';
      token: string;
      vid: number;
      oldVid: number;
      copies: number;
      copyPolicy: number;
      blockSizeShift: number;
      parentVid: number;
    }
  | { t: 'vdi_del'; token: string; vid: number }
  /** `target`: the sender is a target bound by HELLO (sender = its synthetic node id; inc = decimal incarnation). */
  | { t: 'lock'; token: string; vid: number; type: number; sender: WireNodeId; target?: WireTarget }
  | { t: 'release'; token: string; vid: number; type: number; sender: WireNodeId; target?: WireTarget }
  /** SF_OP_BREAK_LOCK (`dog vdi lock unlock`): every holder of the VDI's lock is released. */
  | { t: 'break_lock'; token: string; vid: number }
  | { t: 'coherence'; token: string; vid: number; validate: boolean; sender: WireNodeId }
  | { t: 'alter_vdi_copy'; token: string; vid: number; copies: number; blockSizeShift: number }
  /** ALTER_CLUSTER_COPY: the cluster's default copies (persisted in every node's config). */
  | { t: 'alter_cluster_copy'; token: string; copies: number }
  /** Objects a VDI deletion reclaimed (decimal oids): removed from every store and never recovered. */
  | { t: 'objs_removed'; token: string; oids: string[] }
  /** COMPLETE_RECOVERY: `node` (addr:port) finished recovering `epoch`. */
  | { t: 'recovery_done'; token: string; epoch: number; node: string };

export function toWireNodeId(nid: NodeId): WireNodeId {
  return { addr: nid.addr.toString('hex'), port: nid.port };
}

export function fromWireNodeId(w: WireNodeId): NodeId {
  return { addr: Buffer.from(w.addr, 'hex'), port: w.port, ioAddr: Buffer.alloc(16), ioPort: 0 };
}

/** Structural check of a delivered payload (it crossed a process boundary). */
export function isClusterMsg(p: unknown): p is ClusterMsg {
  return typeof p === 'object' && p !== null && 't' in p && typeof p.t === 'string' && 'token' in p && typeof p.token === 'string';
}
