// Sheep-to-sheep requests (fact sheet §2.4 peer ops, §1.8): one pipelined client transport per peer node,
// created on first use and dropped when the node leaves. Every failure is turned into an SdError so the
// gateway and recovery see one error family: a non-success reply keeps its SD_RES code, any transport
// failure (refused, lost, timed out) becomes SD_RES_NETWORK_ERROR, which the gateway retries.
//
// Peers are reached at their advertised I/O address (node_id io_addr/io_port, `sheep --advertise`) when they
// have one, else at their identity address. A peer that stops answering (blackhole, one-way partition, frozen
// process) is declared dead by the transport's probe (docs/cluster.md "Unreachable peers"): once a request
// has waited PEER_PROBE_AFTER_MS, a fresh connection asks for GET_NODE_LIST; no answer within
// PEER_PROBE_TIMEOUT_MS makes the peer suspect: replica requests in flight fail with NETWORK_ERROR and new
// ones fail at once until a probe succeeds again. Requests forwarded to an object's primary (serial ops) use
// their own connections, are never cut short by a probe, and end only at their request timeout.
import * as C from '../proto/sheepdog/constants.js';
import { makeRequest, type ReqArgs, type SdRequest, type SdResponse } from '../proto/sheepdog/header.js';
import { addrText, nodeAddr, type NodeId } from '../proto/sheepdog/node.js';
import { SheepTransport } from '../client/transport.js';
import type { Logger } from '../obs/log.js';
import { SdError } from './errors.js';

/** Timeout of one peer request (a backstop: an unreachable peer is found by the probe much sooner). */
export const PEER_REQUEST_TIMEOUT_MS = 20_000;
/** A peer request waiting this long makes the pool probe the peer. */
export const PEER_PROBE_AFTER_MS = 1_000;
/** A probe unanswered this long declares the peer dead (suspect) until a later probe succeeds. */
export const PEER_PROBE_TIMEOUT_MS = 2_000;
const PEER_CONNECT_TIMEOUT_MS = 2_000;
const PEER_POOL_SIZE = 4;

/** Where peer traffic for `nid` goes: its advertised io address if it has one, else its identity address. */
export function peerIoAddr(nid: NodeId): { host: string; port: number } {
  return nid.ioPort > 0 ? { host: addrText(nid.ioAddr), port: nid.ioPort } : { host: addrText(nid.addr), port: nid.port };
}

interface Peer {
  /** Replica I/O, recovery and admin requests (probed). */
  io: SheepTransport;
  /** Requests forwarded to the object's primary (SD_FLAG_CMD_FWD): not probed, never cut short. */
  fwd: SheepTransport | null;
  target: string;
}

export interface PeerReply {
  result: number;
  epoch: number;
  data: Buffer | null;
  rsp: SdResponse;
}

export class PeerPool {
  private readonly peers = new Map<string, Peer>();
  private closed = false;

  constructor(private readonly log: Logger) {}

  private makeTransport(nid: NodeId, probe: boolean): SheepTransport {
    const a = peerIoAddr(nid);
    const t = new SheepTransport({
      gateways: [{ kind: 'tcp', host: a.host, port: a.port }],
      poolSize: PEER_POOL_SIZE,
      maxInFlight: 256,
      requestTimeoutMs: PEER_REQUEST_TIMEOUT_MS,
      connectTimeoutMs: PEER_CONNECT_TIMEOUT_MS,
      reconnectTimeoutMs: 0,
      maxResends: 0,
      probeAfterMs: probe ? PEER_PROBE_AFTER_MS : 0,
      probeTimeoutMs: PEER_PROBE_TIMEOUT_MS,
      logger: this.log,
    });
    if (probe) {
      const peer = nodeAddr(nid);
      t.on('suspect', (e) => this.log.warn({ peer, via: e.gateway, reason: e.reason, ms: e.ms }, 'peer_suspect'));
      t.on('alive', (e) => this.log.warn({ peer, via: e.gateway }, 'peer_alive'));
    }
    return t;
  }

  private peer(nid: NodeId): Peer {
    const key = nodeAddr(nid);
    const a = peerIoAddr(nid);
    const target = `${a.host}:${a.port}`;
    let p = this.peers.get(key);
    if (p && p.target !== target) {
      // The node came back advertising another address.
      p.io.close();
      p.fwd?.close();
      p = undefined;
    }
    if (!p) {
      p = { io: this.makeTransport(nid, true), fwd: null, target };
      this.peers.set(key, p);
    }
    return p;
  }

  private transport(nid: NodeId, req: SdRequest): SheepTransport {
    const p = this.peer(nid);
    if ((req.flags & C.SD_FLAG_CMD_FWD) === 0) return p.io;
    p.fwd ??= this.makeTransport(nid, false);
    return p.fwd;
  }

  /** Send one request; resolves with the reply whatever its result; rejects only with NETWORK_ERROR. */
  async send(nid: NodeId, req: SdRequest, payload: Buffer | null = null, timeoutMs = PEER_REQUEST_TIMEOUT_MS): Promise<PeerReply> {
    if (this.closed) throw new SdError(C.SD_RES_NETWORK_ERROR, 'peer pool closed');
    try {
      const r = await this.transport(nid, req).request(req, { payload, timeoutMs, idempotent: true });
      return { result: r.rsp.result, epoch: r.rsp.epoch, data: r.data, rsp: r.rsp };
    } catch (err) {
      throw new SdError(C.SD_RES_NETWORK_ERROR, `peer ${nodeAddr(nid)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Like send, but a non-success result rejects with an SdError carrying it. */
  async call(nid: NodeId, req: SdRequest, payload: Buffer | null = null, timeoutMs?: number): Promise<PeerReply> {
    const r = await this.send(nid, req, payload, timeoutMs);
    if (r.result !== C.SD_RES_SUCCESS) throw new SdError(r.result, `peer ${nodeAddr(nid)}: ${C.resultName(r.result)}`);
    return r;
  }

  /** Build an internal request (proto_ver 0x0a for opcodes >= 0x80). */
  static request(opcode: number, args: ReqArgs, epoch: number, dataLength: number, flags = 0): SdRequest {
    return makeRequest(opcode, args, { epoch, dataLength, flags });
  }

  /** Forget a peer (it left the cluster): its connections are closed. */
  drop(nid: NodeId): void {
    const key = nodeAddr(nid);
    const p = this.peers.get(key);
    p?.io.close();
    p?.fwd?.close();
    this.peers.delete(key);
  }

  close(): void {
    this.closed = true;
    for (const p of this.peers.values()) {
      p.io.close();
      p.fwd?.close();
    }
    this.peers.clear();
  }
}
