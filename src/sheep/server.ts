// The sheep's listeners (fact sheet §1.1, §1.7, §12): TCP and unix-domain stream sockets carrying 48-byte
// headers and payloads. Per connection: an incremental decoder (payload limit checked before allocation),
// pipelined dispatch, and replies written in completion order, matched by id. A reply never carries more
// payload than the client asked for (tgt and dog do not drain). Limits: payload size, requests in flight per
// connection (reading pauses at the limit), connections (extra ones are closed at accept). A connection whose
// first bytes are `GET ` is the WebSocket event feed instead (feed.ts), on the same port.
import fs from 'node:fs';
import net from 'node:net';
import {
  SD_FLAG_CMD_PIGGYBACK,
  SD_FLAG_CMD_WRITE,
  SD_INODE_SIZE,
  opName,
  resultName,
} from '../proto/sheepdog/constants.js';
import { SdRequestDecoder } from '../proto/sheepdog/frame.js';
import { emptyRspArgs, encodeResponseHeader, makeResponse, responseVariant, type SdRequest } from '../proto/sheepdog/header.js';
import type { Logger } from '../obs/log.js';
import type { SheepNode } from './node.js';
import { dispatch, type ConnContext, type OpResult } from './ops.js';
import type { ProcessMetrics } from '../obs/metrics.js';
import { EventFeed, routeConnection, type FeedLimits } from './feed.js';

export interface ServerLimits {
  /** Largest request payload and largest reply buffer a client may ask for (bytes). */
  maxPayloadBytes: number;
  /** Requests decoded and not yet answered, per connection; reading pauses at this count. */
  maxInflightPerConn: number;
  /** Open client connections; further ones are closed at accept. */
  maxConnections: number;
  /** Payload and reply bytes of requests in flight, over all connections; reading pauses beyond it. */
  maxInflightBytes: number;
}

/** Default limits: whole 64 MiB objects (shift 26) and full inode reads fit; 2^31-byte objects must be split. */
export const DEFAULT_LIMITS: ServerLimits = {
  maxPayloadBytes: Math.max(64 * 1024 * 1024, SD_INODE_SIZE),
  maxInflightPerConn: 64,
  maxConnections: 1024,
  maxInflightBytes: 512 * 1024 * 1024,
};

export interface SheepServerOptions {
  host: string;
  port: number;
  /** Unix socket paths to listen on (the store's `sock` is always one of them). */
  unixPaths: string[];
  limits?: Partial<ServerLimits>;
  log: Logger;
  /** Prometheus instruments (requests and latency per op, bytes, connections); optional. */
  metrics?: ProcessMetrics;
  /** The event feed on the same port (feed.ts): on unless `false`; limits may be given. */
  feed?: false | Partial<FeedLimits>;
}

let connCounter = 0;

export class SheepServer {
  readonly limits: ServerLimits;
  private readonly servers: net.Server[] = [];
  private readonly conns = new Set<net.Socket>();
  private readonly log: Logger;
  private closing = false;
  /** Bytes held by requests in flight (payloads received + reply buffers asked for), all connections. */
  private inflightBytes = 0;
  /** Connections waiting for the global byte budget. */
  private readonly budgetWaiters = new Set<() => void>();
  /** WebSocket event feed; connections starting with `GET ` are handed to it (after listen()). */
  feed: EventFeed | null = null;

  constructor(
    private readonly node: SheepNode,
    private readonly opts: SheepServerOptions,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.log = opts.log;
  }

  /** Bound TCP port (after listen). */
  get port(): number {
    const a = this.servers[0]?.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  get connections(): number {
    return this.conns.size;
  }

  /** Bytes currently held by requests in flight (for tests and metrics). */
  get bytesInFlight(): number {
    return this.inflightBytes;
  }

  private releaseBytes(n: number): void {
    this.inflightBytes -= n;
    const waiters = [...this.budgetWaiters];
    this.budgetWaiters.clear();
    for (const w of waiters) w();
  }

  async listen(): Promise<void> {
    if (this.opts.feed !== false && this.feed === null) {
      this.feed = new EventFeed(this.node, { log: this.log, ...(this.opts.metrics ? { metrics: this.opts.metrics } : {}), ...(this.opts.feed ? { limits: this.opts.feed } : {}) });
      this.feed.attach();
    }
    const tcp = net.createServer((s) => this.accept(s));
    await listenOn(tcp, { host: this.opts.host, port: this.opts.port });
    this.servers.push(tcp);
    for (const p of this.opts.unixPaths) {
      try {
        if (fs.statSync(p).isSocket()) fs.unlinkSync(p);
      } catch {
        // absent: fine
      }
      const srv = net.createServer((s) => this.accept(s));
      await listenOn(srv, { path: p });
      this.servers.push(srv);
    }
  }

  /** Stop accepting (KILL_NODE, shutdown); existing connections stay until close(). */
  stopAccepting(): void {
    for (const s of this.servers) s.close();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.feed?.close();
    const closed = Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const c of this.conns) c.destroy();
    this.conns.clear();
    await closed;
  }

  private accept(sock: net.Socket): void {
    const conn = ++connCounter;
    const log = this.log.child({ conn });
    if (this.closing || this.conns.size >= this.limits.maxConnections) {
      log.warn({ open: this.conns.size, limit: this.limits.maxConnections }, 'conn_rejected');
      sock.destroy();
      return;
    }
    this.conns.add(sock);
    this.opts.metrics?.connections.inc({ proto: 'sheepdog' });
    if (sock.remoteAddress !== undefined) sock.setNoDelay(true);
    const dec = new SdRequestDecoder({ maxPayload: this.limits.maxPayloadBytes });
    /** Connection state shared by its requests (the target identity a HELLO binds). */
    const ctx: ConnContext = {};
    let inflight = 0;
    let waitingDrain = false;
    let waitingBudget = false;
    const flow = (): void => {
      if (sock.destroyed) return;
      if (inflight >= this.limits.maxInflightPerConn || waitingDrain || waitingBudget) sock.pause();
      else sock.resume();
    };
    const reply = (req: SdRequest, res: OpResult): void => {
      if (sock.destroyed) return;
      const asked = (req.flags & SD_FLAG_CMD_WRITE) === 0 || (req.flags & SD_FLAG_CMD_PIGGYBACK) !== 0 ? req.dataLength : 0;
      let data = res.data ?? null;
      if (data && data.length > asked) data = data.subarray(0, asked);
      const rsp = makeResponse(req, res.result, {
        epoch: this.node.epoch,
        dataLength: data?.length ?? 0,
        args: res.args ?? emptyRspArgs(responseVariant(req.opcode)),
      });
      sock.cork();
      sock.write(encodeResponseHeader(rsp));
      if (data && data.length > 0) sock.write(data);
      sock.uncork();
      if (sock.writableNeedDrain && !waitingDrain) {
        waitingDrain = true;
        sock.once('drain', () => {
          waitingDrain = false;
          flow();
          pump();
        });
      }
    };
    const pump = (): void => {
      while (!sock.destroyed && inflight < this.limits.maxInflightPerConn && !waitingBudget) {
        let m;
        try {
          m = dec.next();
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'conn_protocol_error');
          sock.destroy();
          return;
        }
        if (!m) break;
        const req = m.header;
        const expectsReply = (req.flags & SD_FLAG_CMD_WRITE) === 0 || (req.flags & SD_FLAG_CMD_PIGGYBACK) !== 0;
        if (expectsReply && req.dataLength > this.limits.maxPayloadBytes) {
          log.warn({ op: opName(req.opcode), dataLength: req.dataLength, limit: this.limits.maxPayloadBytes }, 'conn_oversize_read');
          sock.destroy();
          return;
        }
        if (!admit(req, m.payload)) break;
      }
      flow();
    };
    /** Start the request if the global byte budget allows it, else hold it until some request finishes. */
    const admit = (req: SdRequest, data: Buffer | null): boolean => {
      const cost = req.dataLength;
      if (this.inflightBytes + cost > this.limits.maxInflightBytes && this.inflightBytes > 0) {
        waitingBudget = true;
        this.budgetWaiters.add(() => {
          if (sock.destroyed) return;
          waitingBudget = false;
          if (admit(req, data)) pump();
          else flow();
        });
        flow();
        return false;
      }
      this.inflightBytes += cost;
      inflight++;
      log.debug({ op: opName(req.opcode), id: req.id, len: req.dataLength }, 'req');
      const metrics = this.opts.metrics;
      const done = metrics?.time('sheepdog', opName(req.opcode));
      if (metrics && data) metrics.bytes.inc({ proto: 'sheepdog', dir: 'write' }, data.length);
      void dispatch(this.node, req, data, ctx)
        .then(
          (res) => {
            done?.(resultName(res.result));
            if (metrics && res.data) metrics.bytes.inc({ proto: 'sheepdog', dir: 'read' }, res.data.length);
            if (res.result !== 0) log.debug({ op: opName(req.opcode), id: req.id, result: resultName(res.result) }, 'rsp');
            reply(req, res);
          },
          (err: unknown) => log.error({ err }, 'dispatch_failed'),
        )
        .finally(() => {
          inflight--;
          this.releaseBytes(cost);
          flow();
          pump();
        });
      return true;
    };
    const onData = (chunk: Buffer): void => {
      dec.push(chunk);
      pump();
    };
    const feed = this.feed;
    if (feed) routeConnection(sock, onData, (head) => feed.handleHttp(sock, head));
    else sock.on('data', onData);
    sock.on('error', (err) => log.debug({ err: err.message }, 'conn_error'));
    sock.on('close', () => {
      this.conns.delete(sock);
      this.opts.metrics?.connections.dec({ proto: 'sheepdog' });
    });
  }
}

function listenOn(srv: net.Server, opts: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(opts, () => {
      srv.off('error', reject);
      resolve();
    });
  });
}
