// The sheep's event feed (docs/cluster.md "Event feed"): a WebSocket served on the sheep's own port that pushes
// inode-coherence invalidations to subscribed targets and cluster events (node join/leave, epoch, recovery
// progress, lock and VDI changes) to operators (`dog event watch`).
// - Routing: a new connection whose first bytes are `GET ` goes to an internal, never-listening http.Server
//   (upgrade on FEED_PATH, anything else 404); everything else is a Sheepdog connection (sniffConnection).
// - Events come from this sheep's OWN application of each cluster event (SheepNode.eventObserver): every node
//   applies the same ops, so a subscriber of any one sheep sees each event exactly once. Replayed history
//   (`historical`) is never published. Lock events are the diff of the lock table around one applied event.
// - Limits: subscribers (extra upgrades get 503), bytes buffered per subscriber (a slow one is closed with
//   FEED_CLOSE_SLOW and gets nothing more), a ping every heartbeat (a subscriber that missed a pong is ended),
//   and an idle timeout for HTTP exchanges that never complete.
import http from 'node:http';
import type net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  LOCK_STATE_LOCKED,
  LOCK_STATE_SHARED,
  SHARED_LOCK_STATE_INVALIDATED,
  SHARED_LOCK_STATE_MODIFIED,
  SHARED_LOCK_STATE_SHARED,
} from '../proto/sheepdog/constants.js';
import {
  FEED_PATH,
  FEED_VERSION,
  encodeFeedEvent,
  matchesQuery,
  parseFeedQuery,
  sniffConnection,
  type FeedEvent,
  type FeedParticipant,
  type FeedQuery,
  type ParticipantState,
} from '../proto/feed.js';
import { nodeAddr, type NodeId } from '../proto/sheepdog/node.js';
import type { Logger } from '../obs/log.js';
import type { ProcessMetrics } from '../obs/metrics.js';
import type { ClusterEvent } from './cluster/local.js';
import { isClusterMsg } from './cluster/messages.js';
import type { VdiLock } from './lock.js';
import type { ClusterEventObserver, SheepNode } from './node.js';
import type { RecoveryStatus } from './recovery.js';

/** Close code for a subscriber that did not keep up (private-use range). */
export const FEED_CLOSE_SLOW = 4008;

export interface FeedLimits {
  /** Open subscriptions; further upgrades get HTTP 503. */
  maxSubscribers: number;
  /** Bytes queued to one subscriber beyond which it is dropped. */
  maxBufferedBytes: number;
  /** Ping interval; a subscriber that did not answer the previous ping is ended. */
  heartbeatMs: number;
  /** Recovery progress is published at most this often (state changes at once). */
  progressIntervalMs: number;
  /** An HTTP connection must complete its request (upgrade or not) within this time of becoming idle. */
  httpTimeoutMs: number;
}

export const DEFAULT_FEED_LIMITS: FeedLimits = {
  maxSubscribers: 256,
  maxBufferedBytes: 1024 * 1024,
  heartbeatMs: 15_000,
  progressIntervalMs: 500,
  httpTimeoutMs: 30_000,
};

/** An event before the feed stamps it with seq, epoch and ts. */
export type FeedEventBody = FeedEvent extends infer E ? (E extends FeedEvent ? Omit<E, 'seq' | 'epoch' | 'ts'> : never) : never;

const PSTATE: Record<number, ParticipantState> = {
  [SHARED_LOCK_STATE_MODIFIED]: 'modified',
  [SHARED_LOCK_STATE_SHARED]: 'shared',
  [SHARED_LOCK_STATE_INVALIDATED]: 'invalidated',
};

/** Names a lock participant: its node text and, for a target's synthetic id, the target id. */
export type ParticipantNamer = (nid: NodeId) => { node: string; target?: string };

/** The `lock` event body of one VDI's lock state. */
export function lockEventBody(vid: number, l: VdiLock, name: ParticipantNamer): Extract<FeedEventBody, { type: 'lock' }> {
  const state = l.state === LOCK_STATE_LOCKED ? 'locked' : l.state === LOCK_STATE_SHARED ? 'shared' : 'unlocked';
  const participants: FeedParticipant[] = l.participants.map((p) => ({ ...name(p.nid), state: PSTATE[p.state] ?? 'shared' }));
  return { type: 'lock', vid, state, ...(l.owner && state === 'locked' ? { owner: name(l.owner).node } : {}), participants };
}

function lockKey(l: VdiLock | undefined): string {
  if (!l) return 'unlocked';
  const owner = l.owner ? `${l.owner.addr.toString('hex')}:${l.owner.port}` : '';
  return `${l.state}|${owner}|${l.participants.map((p) => `${p.nid.addr.toString('hex')}:${p.nid.port}=${p.state}`).join(',')}`;
}

function nidKey(nid: NodeId): string {
  return `${nid.addr.toString('hex')}:${nid.port}`;
}

/**
 * The events one applied cluster event caused in the lock table: a `lock` event per VDI whose lock changed
 * (by vid), then an `invalidate` event per participant that became INVALIDATED (was absent or in another state).
 */
export function diffLocks(before: ReadonlyMap<number, VdiLock>, after: ReadonlyMap<number, VdiLock>, name: ParticipantNamer): FeedEventBody[] {
  const vids = [...new Set([...before.keys(), ...after.keys()])].sort((a, b) => a - b);
  const locks: FeedEventBody[] = [];
  const invalidations: FeedEventBody[] = [];
  for (const vid of vids) {
    const b = before.get(vid);
    const a = after.get(vid);
    if (lockKey(b) === lockKey(a)) continue;
    locks.push(lockEventBody(vid, a ?? { state: 1, owner: null, participants: [] }, name));
    const was = new Map((b?.participants ?? []).map((p) => [nidKey(p.nid), p.state]));
    for (const p of a?.participants ?? []) {
      if (p.state !== SHARED_LOCK_STATE_INVALIDATED || was.get(nidKey(p.nid)) === SHARED_LOCK_STATE_INVALIDATED) continue;
      const n = name(p.nid);
      invalidations.push({ type: 'invalidate', vid, participant: n.node, ...(n.target !== undefined ? { target: n.target } : {}) });
    }
  }
  return [...locks, ...invalidations];
}

interface Subscriber {
  ws: WebSocket;
  query: FeedQuery;
  alive: boolean;
  dropped: boolean;
}

export interface EventFeedOptions {
  log: Logger;
  metrics?: ProcessMetrics;
  limits?: Partial<FeedLimits>;
}

export class EventFeed {
  readonly limits: FeedLimits;
  private readonly http: http.Server;
  private readonly wss: WebSocketServer;
  private readonly subs = new Set<Subscriber>();
  private readonly log: Logger;
  private seq = 0;
  private heartbeat: NodeJS.Timeout | null = null;
  /** Lock table and epoch before the cluster event being applied (only while someone listens). */
  private before: { locks: Map<number, VdiLock>; epoch: number } | null = null;
  private applying = false;
  /** Recovery events raised while a cluster event is applied: published after that event's own events. */
  private heldRecovery: FeedEventBody[] = [];
  private lastRecovery: { state: string; at: number } | null = null;
  private recoveryTimer: NodeJS.Timeout | null = null;
  private pendingProgress: RecoveryStatus | null = null;
  private closed = false;
  private readonly observer: ClusterEventObserver = { before: (e) => this.beforeEvent(e), after: (e) => this.afterEvent(e) };

  constructor(
    private readonly node: SheepNode,
    private readonly opts: EventFeedOptions,
  ) {
    this.limits = { ...DEFAULT_FEED_LIMITS, ...opts.limits };
    this.log = opts.log.child({ component: 'feed' });
    this.http = http.createServer((req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found (the event feed is at ${FEED_PATH})\n`);
    });
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
    this.http.on('upgrade', (req: http.IncomingMessage, sock: net.Socket, head: Buffer) => this.upgrade(req, sock, head));
    this.http.on('clientError', (_err, sock: net.Socket) => {
      if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else sock.destroy();
    });
  }

  get subscribers(): number {
    return this.subs.size;
  }

  /** Subscribers dropped for not keeping up, since start. */
  droppedSlow = 0;

  /** Change the ping interval (restarts the heartbeat timer). */
  setHeartbeat(ms: number): void {
    this.limits.heartbeatMs = ms;
    if (this.heartbeat) {
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => this.beat(), ms).unref();
    }
  }

  /** Hook into the node: applied cluster events and recovery progress. */
  attach(): void {
    this.node.eventObserver = this.observer;
    // The cluster's view, not only this node's run: "done" only once every node of the epoch is.
    this.node.recovery.onProgress = () => this.onProgress(this.node.recoveryState());
  }

  /** Unhook, end every subscriber. */
  close(): void {
    this.closed = true;
    if (this.node.eventObserver === this.observer) this.node.eventObserver = null;
    this.node.recovery.onProgress = null;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.recoveryTimer) clearTimeout(this.recoveryTimer);
    this.heartbeat = null;
    for (const s of this.subs) s.ws.terminate();
    this.subs.clear();
    this.wss.close();
  }

  /** Take over a new connection whose first bytes `head` were an HTTP request (the internal http.Server). */
  handleHttp(sock: net.Socket, head: Buffer): void {
    // The internal server never listens, so it runs no header timers: an HTTP exchange that stalls is ended here.
    sock.setTimeout(this.limits.httpTimeoutMs, () => sock.destroy());
    sock.pause();
    if (head.length > 0) sock.unshift(head);
    this.http.emit('connection', sock);
    sock.resume();
  }

  private upgrade(req: http.IncomingMessage, sock: net.Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://sheep');
    const refuse = (status: number, text: string): void => {
      sock.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${text}\n`);
    };
    if (url.pathname !== FEED_PATH) return refuse(404, `not found (the event feed is at ${FEED_PATH})`);
    if (this.closed) return refuse(503, 'sheep is stopping');
    if (this.subs.size >= this.limits.maxSubscribers) {
      this.log.warn({ limit: this.limits.maxSubscribers }, 'feed_subscriber_rejected');
      return refuse(503, `too many subscribers (limit ${this.limits.maxSubscribers})`);
    }
    let query: FeedQuery;
    try {
      query = parseFeedQuery(url.search.slice(1));
    } catch (err) {
      return refuse(400, (err as Error).message);
    }
    sock.setTimeout(0);
    this.wss.handleUpgrade(req, sock, head, (ws) => this.subscribe(ws, query));
  }

  private subscribe(ws: WebSocket, query: FeedQuery): void {
    const sub: Subscriber = { ws, query, alive: true, dropped: false };
    this.subs.add(sub);
    this.opts.metrics?.feedSubscribers.set(this.subs.size);
    this.log.debug({ query, subscribers: this.subs.size }, 'feed_subscribed');
    ws.on('pong', () => (sub.alive = true));
    ws.on('message', () => undefined);
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'feed_subscriber_error'));
    ws.on('close', () => {
      this.subs.delete(sub);
      this.opts.metrics?.feedSubscribers.set(this.subs.size);
      if (this.subs.size === 0 && this.heartbeat) {
        clearInterval(this.heartbeat);
        this.heartbeat = null;
      }
    });
    this.heartbeat ??= setInterval(() => this.beat(), this.limits.heartbeatMs).unref();
    this.sendTo(sub, encodeFeedEvent(this.stamp({ type: 'hello', node: nodeAddr(this.node.nid), version: FEED_VERSION })));
    if (query.snapshot === true) {
      const vids = query.vids ?? this.node.locks.lockedVids();
      const name = this.namer();
      for (const vid of vids) {
        const e = this.stamp({ ...lockEventBody(vid, this.node.locks.get(vid), name), snapshot: true });
        if (matchesQuery(query, e)) this.sendTo(sub, encodeFeedEvent(e));
      }
    }
  }

  private beat(): void {
    for (const s of this.subs) {
      if (!s.alive) {
        this.log.debug({}, 'feed_subscriber_dead');
        s.ws.terminate();
        continue;
      }
      s.alive = false;
      s.ws.ping();
    }
  }

  private stamp(body: FeedEventBody): FeedEvent {
    return { ...body, seq: ++this.seq, epoch: this.node.epoch, ts: Date.now() } as FeedEvent;
  }

  /** Send to one subscriber unless it is too far behind (then it is closed and gets nothing more). */
  private sendTo(sub: Subscriber, text: string): void {
    if (sub.dropped || sub.ws.readyState !== sub.ws.OPEN) return;
    if (sub.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      sub.dropped = true;
      this.droppedSlow++;
      this.log.warn({ buffered: sub.ws.bufferedAmount, limit: this.limits.maxBufferedBytes }, 'feed_subscriber_slow');
      sub.ws.close(FEED_CLOSE_SLOW, 'subscriber too slow');
      // The close frame waits behind the backlog; a peer that never reads is ended outright.
      setTimeout(() => sub.ws.terminate(), 5_000).unref();
      return;
    }
    sub.ws.send(text);
  }

  /** Publish one event to every matching subscriber. */
  publish(body: FeedEventBody): void {
    if (this.subs.size === 0) return;
    const e = this.stamp(body);
    const text = encodeFeedEvent(e);
    this.opts.metrics?.feedEvents.inc({ type: e.type });
    for (const s of this.subs) if (matchesQuery(s.query, e)) this.sendTo(s, text);
  }

  /**
   * Names participants; a target's synthetic id (docs/fencing.md §3) also carries its target id, from the lock
   * table's per-target records when it keeps them.
   */
  private namer(): ParticipantNamer {
    let targets: Map<string, string> | null = null;
    return (nid) => {
      const node = nodeAddr(nid);
      if (targets === null) {
        const records = (this.node.locks as { targetLocks?: () => { nid: NodeId; targetId: string }[] }).targetLocks?.() ?? [];
        targets = new Map(records.map((r) => [nidKey(r.nid), r.targetId]));
      }
      const target = targets.get(nidKey(nid));
      return target !== undefined ? { node, target } : { node };
    };
  }

  private lockMap(): Map<number, VdiLock> {
    const m = new Map<number, VdiLock>();
    for (const vid of this.node.locks.lockedVids()) m.set(vid, this.node.locks.get(vid));
    return m;
  }

  private beforeEvent(_e: ClusterEvent): void {
    this.applying = true;
    this.before = this.subs.size > 0 ? { locks: this.lockMap(), epoch: this.node.epoch } : null;
  }

  private afterEvent(e: ClusterEvent): void {
    const before = this.before;
    this.before = null;
    this.applying = false;
    const held = this.heldRecovery;
    this.heldRecovery = [];
    if (before === null || e.historical) return;
    const nodes = (): string[] => this.node.nodes().map((n) => nodeAddr(n.nid));
    if (e.type === 'join') this.publish({ type: 'node-join', node: e.member.node, nodes: e.members.map((m) => m.node).sort() });
    if (e.type === 'leave') this.publish({ type: 'node-leave', node: e.member.node, reason: e.reason, nodes: e.members.map((m) => m.node).sort() });
    if (this.node.epoch !== before.epoch) this.publish({ type: 'epoch', nodes: nodes() });
    if (e.type === 'message' && isClusterMsg(e.payload)) {
      const m = e.payload;
      if (m.t === 'vdi_add') {
        this.publish({ type: 'vdi', vid: m.vid, action: m.oldVid !== 0 ? 'snapshot' : 'create', ...(m.parentVid !== 0 ? { parent: m.parentVid } : {}) });
      } else if (m.t === 'vdi_del') this.publish({ type: 'vdi', vid: m.vid, action: 'delete' });
    }
    for (const body of diffLocks(before.locks, this.lockMap(), this.namer())) this.publish(body);
    for (const body of held) this.publish(body);
  }

  private recoveryBody(s: RecoveryStatus): FeedEventBody {
    const state = !s.inRecovery ? 'done' : s.state === 0 ? 'preparing' : 'recovering';
    return { type: 'recovery', node: nodeAddr(this.node.nid), state, done: s.finished, total: s.total, recoveryEpoch: s.epoch };
  }

  /** Recovery progress: state changes at once, object counts at most every progressIntervalMs. */
  private onProgress(s: RecoveryStatus): void {
    if (this.subs.size === 0) return;
    const body = this.recoveryBody(s);
    const state = (body as { state: string }).state;
    const now = Date.now();
    const changed = this.lastRecovery === null || this.lastRecovery.state !== state;
    if (!changed && this.lastRecovery !== null && now - this.lastRecovery.at < this.limits.progressIntervalMs) {
      this.pendingProgress = s;
      this.recoveryTimer ??= setTimeout(() => {
        this.recoveryTimer = null;
        const p = this.pendingProgress;
        this.pendingProgress = null;
        if (p) this.onProgress(p);
      }, this.limits.progressIntervalMs).unref();
      return;
    }
    this.pendingProgress = null;
    if (changed && this.recoveryTimer) {
      clearTimeout(this.recoveryTimer);
      this.recoveryTimer = null;
    }
    this.lastRecovery = { state, at: now };
    if (this.applying) this.heldRecovery.push(body);
    else this.publish(body);
  }
}

/**
 * Route a new connection by its first bytes: `onHttp(head)` for `GET `, else `onSheep` gets every chunk from
 * the first one on (so partial first chunks, even of one byte, are fine).
 */
export function routeConnection(sock: net.Socket, onSheep: (chunk: Buffer) => void, onHttp: (head: Buffer) => void): void {
  let head: Buffer = Buffer.alloc(0);
  const sniff = (chunk: Buffer): void => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    const kind = sniffConnection(head);
    if (kind === 'more') return;
    sock.off('data', sniff);
    if (kind === 'http') {
      onHttp(head);
      return;
    }
    sock.on('data', onSheep);
    onSheep(head);
  };
  sock.on('data', sniff);
}
