// FeedClient: a subscription to a sheep's event feed (docs/cluster.md "Event feed"), shared by the target (inode
// invalidations for its shared VDIs) and `dog event watch`. It connects to `ws://HOST:PORT/events?..` (or the
// unix socket of a `unix:` gateway), decodes every message (bad ones are logged and skipped), and reconnects with
// exponential backoff when the connection ends, when the server stops pinging, or when asked (the gateway or the
// query changed). Events can be missed between connections: users treat the feed as a hint (the target keeps the
// INODE_INVALIDATED safety net, and asks for a lock snapshot at each connect).
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { FEED_PATH, decodeFeedEvent, encodeFeedQuery, type FeedEvent, type FeedQuery } from '../proto/feed.js';
import { componentLogger, type Logger } from '../obs/log.js';
import { gatewayText, type GatewayAddr } from './address.js';

export type { FeedEvent, FeedQuery } from '../proto/feed.js';

export interface FeedClientOptions {
  /** The sheep to subscribe to, or a function returning it (read again at every connect). */
  gateway: GatewayAddr | (() => GatewayAddr);
  /** What to subscribe to, or a function returning it (read again at every connect). */
  query?: FeedQuery | (() => FeedQuery);
  /** First reconnect delay (default 200 ms), doubled per failure up to maxBackoffMs (default 5 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Reconnect when nothing (ping or event) came for this long (default 45 s; the sheep pings every 15 s). */
  silenceMs?: number;
  connectTimeoutMs?: number;
  logger?: Logger;
}

export interface FeedClientEvents {
  /** Every event, `hello` included (first on each connection). */
  event: [FeedEvent];
  /** A connection is up and said hello (`node` is the sheep's node id, `gateway` what we dialed). */
  connected: [{ gateway: string; node: string }];
  disconnected: [{ gateway: string; code: number; reason: string }];
  /** A connection attempt failed (no hello); the next one is in `delayMs`. */
  retry: [{ gateway: string; error: string; delayMs: number }];
}

/** The WebSocket URL of a gateway's feed. */
export function feedUrl(g: GatewayAddr, q: FeedQuery = {}): string {
  const search = encodeFeedQuery(q);
  const tail = `${FEED_PATH}${search ? `?${search}` : ''}`;
  if (g.kind === 'unix') return `ws+unix://${g.path}:${tail}`;
  const host = g.host.includes(':') ? `[${g.host}]` : g.host;
  return `ws://${host}:${g.port}${tail}`;
}

export class FeedClient extends EventEmitter<FeedClientEvents> {
  private ws: WebSocket | null = null;
  private closed = false;
  private backoffMs: number;
  private retryTimer: NodeJS.Timeout | null = null;
  private silenceTimer: NodeJS.Timeout | null = null;
  private helloNode: string | null = null;
  private readonly log: Logger;

  constructor(private readonly opts: FeedClientOptions) {
    super();
    this.backoffMs = opts.minBackoffMs ?? 200;
    this.log = opts.logger ?? componentLogger('feed-client');
  }

  /** The node id (`host:port`) of the sheep of the current connection, from its hello; null between connections. */
  get node(): string | null {
    return this.helloNode;
  }

  get connected(): boolean {
    return this.helloNode !== null;
  }

  start(): void {
    if (this.ws === null && this.retryTimer === null && !this.closed) this.connect();
  }

  /** Drop the current connection (if any) and connect again now: the gateway or the query changed. */
  reconnect(): void {
    if (this.closed) return;
    this.backoffMs = this.opts.minBackoffMs ?? 200;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.drop();
    this.connect();
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.retryTimer = null;
    this.silenceTimer = null;
    this.drop();
  }

  /** End the current connection without the reconnect its close would schedule. */
  private drop(): void {
    const ws = this.ws;
    this.ws = null;
    this.helloNode = null;
    if (ws) {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
    }
  }

  private gateway(): GatewayAddr {
    return typeof this.opts.gateway === 'function' ? this.opts.gateway() : this.opts.gateway;
  }

  private query(): FeedQuery {
    const q = this.opts.query;
    return typeof q === 'function' ? q() : (q ?? {});
  }

  private connect(): void {
    const g = this.gateway();
    const label = gatewayText(g);
    const ws = new WebSocket(feedUrl(g, this.query()), { handshakeTimeout: this.opts.connectTimeoutMs ?? 5_000, perMessageDeflate: false });
    this.ws = ws;
    const alive = (): void => {
      if (this.silenceTimer) clearTimeout(this.silenceTimer);
      this.silenceTimer = setTimeout(() => {
        this.log.warn({ gateway: label }, 'feed.silent');
        ws.terminate();
      }, this.opts.silenceMs ?? 45_000);
      this.silenceTimer.unref();
    };
    ws.on('open', alive);
    ws.on('ping', alive);
    ws.on('message', (data, isBinary) => {
      alive();
      if (isBinary) return;
      let e: FeedEvent;
      try {
        e = decodeFeedEvent(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8'));
      } catch (err) {
        this.log.debug({ gateway: label, err: (err as Error).message }, 'feed.bad_message');
        return;
      }
      if (e.type === 'hello') {
        this.helloNode = e.node;
        this.backoffMs = this.opts.minBackoffMs ?? 200;
        this.emit('connected', { gateway: label, node: e.node });
      }
      this.emit('event', e);
    });
    let lastError = '';
    ws.on('error', (err) => {
      lastError = err.message;
      this.log.debug({ gateway: label, err: err.message }, 'feed.error');
    });
    ws.on('close', (code, reason) => {
      if (this.silenceTimer) clearTimeout(this.silenceTimer);
      this.silenceTimer = null;
      if (this.ws !== ws) return;
      const wasUp = this.helloNode !== null;
      this.ws = null;
      this.helloNode = null;
      if (wasUp) this.emit('disconnected', { gateway: label, code, reason: reason.toString('utf8') });
      if (this.closed) return;
      const delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs ?? 5_000);
      if (!wasUp) this.emit('retry', { gateway: label, error: lastError || `closed (${code})`, delayMs: delay });
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        if (!this.closed) this.connect();
      }, delay);
    });
  }
}
