// Sheep-to-sheep requests (fact sheet §2.4 peer ops, §1.8): one pipelined client transport per peer node,
// created on first use and dropped when the node leaves. Every failure is turned into an SdError so the
// gateway and recovery see one error family: a non-success reply keeps its SD_RES code, any transport
// failure (refused, lost, timed out) becomes SD_RES_NETWORK_ERROR, which the gateway retries.
import * as C from '../proto/sheepdog/constants.js';
import { makeRequest, type ReqArgs, type SdRequest, type SdResponse } from '../proto/sheepdog/header.js';
import { addrText, nodeAddr, type NodeId } from '../proto/sheepdog/node.js';
import { SheepTransport } from '../client/transport.js';
import type { Logger } from '../obs/log.js';
import { SdError } from './errors.js';

/** Timeout of one peer request: a hung peer is also removed by failure detection within ~2 s. */
export const PEER_REQUEST_TIMEOUT_MS = 20_000;
const PEER_CONNECT_TIMEOUT_MS = 2_000;
const PEER_POOL_SIZE = 4;

export interface PeerReply {
  result: number;
  epoch: number;
  data: Buffer | null;
  rsp: SdResponse;
}

export class PeerPool {
  private readonly peers = new Map<string, SheepTransport>();
  private closed = false;

  constructor(private readonly log: Logger) {}

  private transport(nid: NodeId): SheepTransport {
    const key = nodeAddr(nid);
    let t = this.peers.get(key);
    if (!t) {
      t = new SheepTransport({
        gateways: [{ kind: 'tcp', host: addrText(nid.addr), port: nid.port }],
        poolSize: PEER_POOL_SIZE,
        maxInFlight: 256,
        requestTimeoutMs: PEER_REQUEST_TIMEOUT_MS,
        connectTimeoutMs: PEER_CONNECT_TIMEOUT_MS,
        reconnectTimeoutMs: 0,
        maxResends: 0,
        logger: this.log,
      });
      this.peers.set(key, t);
    }
    return t;
  }

  /** Send one request; resolves with the reply whatever its result; rejects only with NETWORK_ERROR. */
  async send(nid: NodeId, req: SdRequest, payload: Buffer | null = null, timeoutMs = PEER_REQUEST_TIMEOUT_MS): Promise<PeerReply> {
    if (this.closed) throw new SdError(C.SD_RES_NETWORK_ERROR, 'peer pool closed');
    try {
      const r = await this.transport(nid).request(req, { payload, timeoutMs, idempotent: true });
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
    this.peers.get(key)?.close();
    this.peers.delete(key);
  }

  close(): void {
    this.closed = true;
    for (const t of this.peers.values()) t.close();
    this.peers.clear();
  }
}
