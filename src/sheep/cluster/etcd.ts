// The `etcd` cluster driver: sheep on any number of hosts agree on one total order of cluster events through an
// existing etcd cluster (consensus is etcd's; nothing here votes).
//
// Keys under PREFIX:
//   PREFIX/log        every broadcast (and every graceful leave) is one put of this key: each put is a new etcd
//                     revision, so the key's MVCC history *is* the ordered log, read back with a watch that starts
//                     at a revision.
//   PREFIX/m/<id>     one key per member incarnation, bound to that sheep's lease: its creation is the `join`,
//                     its deletion without a preceding graceful leave (lease expired: process killed, host down,
//                     cut off from the etcd majority) is a `failed` leave.
//   PREFIX/snap       the compaction snapshot: applied cluster state, membership and the revision they describe.
//
// Every member watches PREFIX from one revision on and delivers the events in revision order, each handler
// awaited before the next, exactly as `local` does: events before our own member key are `historical`; the
// deletion of our own key is `expelled`; `rejoin` is a new lease and a new member key.
//
// Compaction: the oldest member writes a snapshot every `compactEvery` log records (taken between two delivered
// revisions, so the state is exactly that of the revision) and then compacts etcd's history up to the previous
// snapshot, so a member a little behind can still catch up and a joiner reading the older snapshot still finds
// everything after it. A joiner delivers the snapshot first and replays from the revision after it.
import { Etcd3, type IOptions, type IKeyValue, type IWatchResponse, type Lease, type Watcher } from 'etcd3';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from '../../obs/log.js';
import { componentLogger } from '../../obs/log.js';
import type { ClusterDriver, ClusterEvent, ClusterMember, ClusterSnapshotter } from './driver.js';
import { deliverMessage, GroupCommit, oldestMember } from './delivery.js';

export interface EtcdTlsOptions {
  /** PEM files. */
  ca: string;
  cert?: string;
  key?: string;
}

export interface EtcdDriverOptions {
  endpoints: string[];
  /** Key prefix, e.g. "/sheepfold" (no trailing slash). */
  prefix: string;
  /** Lease TTL in seconds: how long a dead or cut-off sheep stays a member. */
  ttlSeconds?: number;
  /** Log records between two snapshots. */
  compactEvery?: number;
  tls?: EtcdTlsOptions;
  /** Wall clock (ms) for join timestamps. */
  now?: () => number;
  log?: Logger;
}

export const ETCD_DEFAULT_PREFIX = '/sheepfold';
export const ETCD_DEFAULT_TTL_S = 3;
export const ETCD_DEFAULT_COMPACT_EVERY = 10_000;
/**
 * Self-fencing margin: a member stops acknowledging this long before the lease could have expired on the
 * server (timer and scheduling slack), i.e. at TTL − margin after the last keepalive that etcd confirmed.
 */
export const FENCE_MARGIN_MS = 500;
/** Event seqs are revision·SEQ_PER_REV + index within the revision (a batched put holds fewer records). */
const SEQ_PER_REV = 1024;

/**
 * `etcd:ENDPOINTS[/PREFIX]`, ENDPOINTS a comma-separated list of http(s) URLs; a path on the last one is the
 * key prefix (default /sheepfold).
 */
export function parseEtcdSpec(spec: string): { endpoints: string[]; prefix: string } {
  if (!spec.startsWith('etcd:')) throw new Error(`bad --cluster ${spec} (expected etcd:ENDPOINTS[/PREFIX])`);
  const parts = spec.slice(5).split(',');
  const endpoints: string[] = [];
  let prefix = ETCD_DEFAULT_PREFIX;
  parts.forEach((p, i) => {
    let u: URL;
    try {
      u = new URL(p);
    } catch {
      throw new Error(`bad etcd endpoint "${p}" in ${spec} (expected http://HOST:PORT)`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`bad etcd endpoint "${p}": only http:// and https://`);
    if (!u.port) throw new Error(`etcd endpoint "${p}" needs a port (etcd listens on 2379 by default)`);
    if (u.search || u.hash || u.username) throw new Error(`bad etcd endpoint "${p}"`);
    const path = u.pathname.replace(/\/+$/, '');
    if (path !== '') {
      if (i !== parts.length - 1) throw new Error(`only the last etcd endpoint may carry the /PREFIX (${p})`);
      if (!/^(\/[A-Za-z0-9._-]+)+$/.test(path)) throw new Error(`bad etcd key prefix "${path}"`);
      prefix = path;
    }
    endpoints.push(`${u.protocol}//${u.host}`);
  });
  if (endpoints.length === 0) throw new Error(`no etcd endpoint in ${spec}`);
  return { endpoints, prefix };
}

type LogRecord = { t: 'msg'; from: string; n: number; payload: unknown } | { t: 'leave'; id: string; reason: 'graceful' };

interface MemberValue {
  node: string;
  pid: number;
  info: unknown;
  ts: number;
}

/** What PREFIX/snap holds. */
interface Snapshot {
  v: 1;
  /**
   * The revision the state describes: replay resumes after it. A new cluster's first member writes a `genesis`
   * snapshot (no state; rev 0): the history starts right after that put, so a joiner never needs revisions
   * from before its cluster existed (which etcd may have compacted for other users of the same etcd).
   */
  rev: number;
  genesis?: true;
  members: ClusterMember[];
  /** Per sender incarnation, the last message number applied (duplicates from client retries are dropped). */
  lastN: [string, number][];
  state: unknown;
}

function prefixEnd(key: Buffer): Buffer {
  const end = Buffer.from(key);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export class EtcdClusterDriver implements ClusterDriver {
  readonly name = 'etcd';
  readonly prefix: string;
  private readonly client: Etcd3;
  private readonly ttl: number;
  private readonly compactEvery: number;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly logKey: Buffer;
  private readonly memberPrefix: string;
  private readonly snapKey: Buffer;
  private handler: (e: ClusterEvent) => void | Promise<void> = () => undefined;
  private snapshotter: ClusterSnapshotter | null = null;
  private watcher: Watcher | null = null;
  private lease: Lease | null = null;
  private current = new Map<string, ClusterMember>();
  private self: ClusterMember | null = null;
  private selfId = randomUUID();
  private readonly ownIds = new Set<string>([this.selfId]);
  private selfNode = '';
  private selfInfo: unknown = null;
  private msgCounter = 0;
  private readonly waiters = new Map<number, (seq: number) => void>();
  private joinWaiter: { id: string; resolve: (m: ClusterMember) => void; reject: (e: Error) => void } | null = null;
  private readonly lastN = new Map<string, number>();
  private readonly gracefulLeft = new Set<string>();
  /** Watch responses not yet delivered, in order. */
  private readonly queue: IWatchResponse[] = [];
  private pumping: Promise<void> | null = null;
  /** Revision of the last fully delivered event. */
  private appliedRev = 0;
  private readonly appliedWaiters: (() => void)[] = [];
  private recordsSinceSnap = 0;
  private lastSnapRev = 0;
  /** mod_revision of PREFIX/snap as last seen (a snapshot write only succeeds over the one we saw). */
  private snapModRev = 0;
  private snapshotting = false;
  /** This member's broadcasts, in order; those queued during a put go out together as one put (one revision). */
  private readonly appends = new GroupCommit<LogRecord>(
    (recs) => this.client.kv.put({ key: this.logKey, value: Buffer.from(JSON.stringify(recs.length === 1 ? recs[0] : recs)) }).then(() => undefined),
    SEQ_PER_REV - 1,
    512 * 1024,
    (r) => JSON.stringify(r).length,
  );
  private syncing: { started: number; done: Promise<void> } | null = null;
  private closed = false;
  private expelled = false;
  private leaseLost = false;
  /** When the last keepalive etcd confirmed was sent: the lease lives at least until then + TTL. */
  private aliveSince = 0;
  private fenceLogged = false;
  private fenceTimer: NodeJS.Timeout | null = null;
  private fatal: Error | null = null;

  constructor(opts: EtcdDriverOptions) {
    this.prefix = opts.prefix;
    this.ttl = opts.ttlSeconds ?? ETCD_DEFAULT_TTL_S;
    if (!Number.isInteger(this.ttl) || this.ttl < 1) throw new Error(`etcd lease TTL must be a whole number of seconds ≥ 1 (got ${this.ttl})`);
    this.compactEvery = opts.compactEvery ?? ETCD_DEFAULT_COMPACT_EVERY;
    if (!Number.isInteger(this.compactEvery) || this.compactEvery < 1) throw new Error(`bad compaction interval ${this.compactEvery}`);
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? componentLogger('cluster', { driver: 'etcd' });
    this.logKey = Buffer.from(`${opts.prefix}/log`);
    this.memberPrefix = `${opts.prefix}/m/`;
    this.snapKey = Buffer.from(`${opts.prefix}/snap`);
    const options: IOptions = { hosts: opts.endpoints, dialTimeout: 3000 };
    if (opts.tls) {
      options.credentials = {
        rootCertificate: fs.readFileSync(opts.tls.ca),
        ...(opts.tls.cert ? { certChain: fs.readFileSync(opts.tls.cert) } : {}),
        ...(opts.tls.key ? { privateKey: fs.readFileSync(opts.tls.key) } : {}),
      };
    }
    this.client = new Etcd3(options);
  }

  onEvent(handler: (e: ClusterEvent) => void | Promise<void>): void {
    this.handler = handler;
  }

  setSnapshotter(s: ClusterSnapshotter): void {
    this.snapshotter = s;
  }

  members(): ClusterMember[] {
    return [...this.current.values()];
  }

  get member(): ClusterMember | null {
    return this.self;
  }

  /**
   * Self-fencing: true unless etcd confirmed a keepalive of our lease sent less than TTL − margin ago (and we
   * are a member). A sheep cut off from the etcd majority is fenced before the others can remove it.
   */
  fenced(): boolean {
    if (!this.self || this.expelled || this.leaseLost || this.fatal) return true;
    return this.now() >= this.aliveSince + this.ttl * 1000 - FENCE_MARGIN_MS;
  }

  private logFence(): void {
    if (!this.self || this.closed) return;
    const f = this.fenced();
    if (f === this.fenceLogged) return;
    this.fenceLogged = f;
    const sinceMs = this.now() - this.aliveSince;
    if (f) this.log.error({ sinceConfirmedMs: sinceMs }, 'cluster_fenced');
    else this.log.warn({ sinceConfirmedMs: sinceMs }, 'cluster_unfenced');
  }

  async join(node: string, info: unknown): Promise<ClusterMember> {
    this.selfNode = node;
    this.selfInfo = info;
    const kv = await this.snapshotOrGenesis();
    let start: number;
    const s = JSON.parse(kv.value.toString('utf8')) as Snapshot;
    if (s.v !== 1 || !Number.isInteger(s.rev)) throw new Error(`unknown snapshot format in ${this.snapKey.toString()}`);
    this.snapModRev = Number(kv.mod_revision);
    if (s.genesis) {
      start = Number(kv.mod_revision) + 1;
      this.lastSnapRev = Number(kv.mod_revision);
      this.appliedRev = this.lastSnapRev;
    } else {
      this.lastSnapRev = s.rev;
      for (const m of s.members) this.current.set(m.id, m);
      for (const [id, n] of s.lastN) this.lastN.set(id, n);
      await this.handler({ type: 'snapshot', seq: s.rev * SEQ_PER_REV, historical: true, state: s.state, members: this.members() });
      this.appliedRev = s.rev;
      start = s.rev + 1;
      this.log.info({ rev: s.rev, members: s.members.length }, 'cluster_snapshot_loaded');
    }
    await this.startWatch(start);
    return this.putMember();
  }

  /** The snapshot key's current value; on an empty prefix, the genesis snapshot this call writes. */
  private async snapshotOrGenesis(): Promise<IKeyValue> {
    const genesis: Snapshot = { v: 1, rev: 0, genesis: true, members: [], lastN: [], state: null };
    const value = Buffer.from(JSON.stringify(genesis));
    const res = await this.client.kv.txn({
      compare: [{ key: this.snapKey, target: 'Version', result: 'Equal', version: 0 }],
      success: [{ request_put: { key: this.snapKey, value } }],
      failure: [{ request_range: { key: this.snapKey } }],
    });
    if (!res.succeeded) {
      const kv = res.responses[0]?.response_range.kvs[0];
      if (!kv) throw new Error(`${this.snapKey.toString()} vanished`);
      return kv;
    }
    this.log.info({ prefix: this.prefix, rev: res.header.revision }, 'cluster_genesis');
    const rev = String(res.header.revision);
    return { key: this.snapKey, value, mod_revision: rev, create_revision: rev, version: '1', lease: '0' };
  }

  private async startWatch(start: number): Promise<void> {
    const w = await this.client.watch().prefix(`${this.prefix}/`).startRevision(String(start)).create();
    this.watcher = w;
    w.on('data', (res) => {
      this.queue.push(res);
      this.kick();
    });
    // The client resumes from the last *header* revision, which during a catch-up can be past events not yet
    // sent: resume from what we delivered instead.
    w.on('disconnected', (err) => {
      this.log.warn({ err: err.message }, 'cluster_watch_disconnected');
      (w.request as { start_revision?: string }).start_revision = String(this.lastQueuedRev() + 1);
    });
    w.on('error', (err) => this.fail(new Error(`etcd watch ended: ${err.message}`)));
  }

  private lastQueuedRev(): number {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const evs = this.queue[i]!.events;
      if (evs.length > 0) return Number(evs[evs.length - 1]!.kv.mod_revision);
    }
    return this.appliedRev;
  }

  /** A lease and a member key bound to it: resolves once our join has been delivered. */
  private async putMember(): Promise<ClusterMember> {
    const lease = this.client.lease(this.ttl, { autoKeepAlive: true });
    this.lease = lease;
    let firedAt = 0;
    lease.on('keepaliveFired', () => (firedAt = this.now()));
    lease.on('keepaliveSucceeded', () => {
      if (this.lease === lease) this.aliveSince = Math.max(this.aliveSince, firedAt);
    });
    lease.on('lost', (err) => {
      if (this.lease !== lease || this.closed) return;
      this.leaseLost = true;
      this.log.error({ err: err.message }, 'cluster_lease_lost');
    });
    const id = this.selfId;
    const joined = new Promise<ClusterMember>((resolve, reject) => (this.joinWaiter = { id, resolve, reject }));
    if (this.fatal) throw this.fatal;
    const asked = this.now();
    const leaseId = await lease.grant();
    this.aliveSince = asked;
    this.leaseLost = false;
    this.fenceTimer ??= setInterval(() => this.logFence(), 100);
    const value: MemberValue = { node: this.selfNode, pid: process.pid, info: this.selfInfo, ts: this.now() };
    await this.client.put(`${this.memberPrefix}${id}`).value(JSON.stringify(value)).lease(leaseId).exec();
    return joined;
  }

  async broadcast(payload: unknown): Promise<number> {
    if (this.fatal) throw this.fatal;
    if (!this.self || this.expelled) throw new Error('not a cluster member');
    if (this.leaseLost) throw new Error('cluster lease lost (etcd unreachable)');
    const n = ++this.msgCounter;
    const delivered = new Promise<number>((resolve) => this.waiters.set(n, resolve));
    const rec: LogRecord = { t: 'msg', from: this.selfId, n, payload };
    try {
      await this.appends.add(rec);
    } catch (err) {
      this.waiters.delete(n);
      throw err;
    }
    return delivered;
  }

  async rejoin(): Promise<ClusterMember> {
    if (!this.self || !this.expelled || this.closed) throw new Error('rejoin is only for an expelled member');
    if (this.fatal) throw this.fatal;
    const old = this.lease;
    this.lease = null;
    await old?.revoke().catch(() => undefined);
    this.selfId = randomUUID();
    this.ownIds.add(this.selfId);
    this.expelled = false;
    this.log.warn({ member: this.selfId }, 'cluster_rejoin');
    return this.putMember();
  }

  /**
   * Read barrier: one linearizable read of the log key and the member keys (shared by concurrent callers that
   * arrive before it is sent), then wait until every log record and membership change it shows is delivered.
   */
  async sync(): Promise<void> {
    if (this.closed || !this.self) return;
    if (this.fatal) throw this.fatal;
    const called = Date.now();
    const cur = this.syncing;
    if (cur && cur.started >= called) return cur.done;
    const done = (cur ? cur.done.catch(() => undefined) : Promise.resolve()).then(() => this.barrier());
    const entry = { started: Date.now(), done };
    this.syncing = entry;
    void done.finally(() => {
      if (this.syncing === entry) this.syncing = null;
    }).catch(() => undefined);
    return done;
  }

  private async barrier(): Promise<void> {
    const mkey = Buffer.from(this.memberPrefix);
    const res = await this.client.kv.txn({
      compare: [],
      success: [
        { request_range: { key: this.logKey, keys_only: true } },
        { request_range: { key: mkey, range_end: prefixEnd(mkey), keys_only: true } },
      ],
      failure: [],
    });
    const logKvs = res.responses[0]?.response_range.kvs ?? [];
    const memberKvs = res.responses[1]?.response_range.kvs ?? [];
    let need = logKvs[0] ? Number(logKvs[0].mod_revision) : 0;
    const present = new Set<string>();
    for (const kv of memberKvs) {
      present.add(kv.key.toString('utf8').slice(this.memberPrefix.length));
      need = Math.max(need, Number(kv.mod_revision));
    }
    const deadline = Date.now() + 10_000;
    const caughtUp = (): boolean =>
      this.appliedRev >= need && [...this.current.keys()].every((id) => present.has(id) || this.gracefulLeft.has(id));
    while (!caughtUp()) {
      if (this.closed) return;
      if (this.fatal) throw this.fatal;
      if (Date.now() > deadline) throw new Error(`cluster sync stuck at revision ${this.appliedRev} of ${need}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.appliedWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async leave(): Promise<void> {
    if (!this.self || this.expelled || this.closed) return;
    const rec: LogRecord = { t: 'leave', id: this.selfId, reason: 'graceful' };
    await this.appends.idle();
    await this.client.kv.txn({
      compare: [],
      success: [
        { request_put: { key: this.logKey, value: Buffer.from(JSON.stringify(rec)) } },
        { request_delete_range: { key: Buffer.from(`${this.memberPrefix}${this.selfId}`) } },
      ],
      failure: [],
    });
    const lease = this.lease;
    this.lease = null;
    await lease?.revoke().catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.fenceTimer) clearInterval(this.fenceTimer);
    const lease = this.lease;
    this.lease = null;
    // A closed member's lease is left to expire unless it left: a crash and a close without leave look alike.
    lease?.release();
    await this.watcher?.cancel().catch(() => undefined);
    await this.pumping?.catch(() => undefined);
    this.joinWaiter?.reject(new Error('cluster driver closed'));
    this.client.close();
  }

  private fail(err: Error): void {
    if (this.fatal || this.closed) return;
    this.fatal = err;
    this.log.error({ err: err.message }, 'cluster_driver_failed');
    this.joinWaiter?.reject(err);
    this.joinWaiter = null;
    // Our view of the order is gone (e.g. compacted past while we were away): as for an expulsion, the sheep
    // must stop being a member; rejoin refuses, so it ends.
    if (this.self && !this.expelled) {
      this.expelled = true;
      void this.handler({ type: 'expelled', seq: this.appliedRev * SEQ_PER_REV, historical: false });
    }
  }

  private kick(): void {
    if (this.pumping || this.closed) return;
    this.pumping = this.pump()
      .catch((err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))))
      .finally(() => {
        this.pumping = null;
        if (this.queue.length > 0 && !this.fatal) this.kick();
      });
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0 && !this.closed) {
      const res = this.queue.shift()!;
      let rev = 0;
      let sub = 0;
      // Events delivered in a revision get seq rev·1024 + i (a batch of records shares one revision).
      const nextSeq = (): number => rev * SEQ_PER_REV + sub++;
      for (const ev of res.events) {
        const r = Number(ev.kv.mod_revision);
        if (r <= this.appliedRev) continue; // resent after a reconnect
        if (r !== rev) {
          rev = r;
          sub = 0;
        }
        await this.apply(ev.type === 'Put' ? 'put' : 'delete', ev.kv, rev, nextSeq);
        if (this.closed) return;
      }
      // A revision's events all come in one response: this one is now fully delivered.
      if (rev > this.appliedRev) this.appliedRev = rev;
      for (const w of this.appliedWaiters.splice(0)) w();
      // Between two watch responses no revision is half delivered (a transaction's events come in one response).
      if (this.recordsSinceSnap >= this.compactEvery) await this.maybeSnapshot();
    }
  }

  private async apply(type: 'put' | 'delete', kv: IKeyValue, rev: number, nextSeq: () => number): Promise<void> {
    const key = kv.key.toString('utf8');
    if (kv.key.equals(this.snapKey)) {
      if (type === 'put') {
        this.snapModRev = rev;
        const s = JSON.parse(kv.value.toString('utf8')) as Snapshot;
        if (s.rev > this.lastSnapRev) {
          this.lastSnapRev = s.rev;
          this.recordsSinceSnap = Math.max(0, this.recordsSinceSnap - this.compactEvery);
        }
      }
      return;
    }
    const historical = this.self === null;
    if (key.startsWith(this.memberPrefix)) {
      const seq = nextSeq();
      const id = key.slice(this.memberPrefix.length);
      if (type === 'put') {
        if (this.current.has(id)) return; // only the creation is a join
        const v = JSON.parse(kv.value.toString('utf8')) as MemberValue;
        const m: ClusterMember = { id, node: v.node, pid: v.pid, info: v.info, joinedAt: seq, joinedMs: v.ts };
        this.current.set(id, m);
        const mine = this.joinWaiter?.id === id;
        if (mine) this.self = m;
        await this.handler({ type: 'join', seq, historical: historical && !mine, member: m, members: this.members() });
        if (mine && this.joinWaiter) {
          this.joinWaiter.resolve(m);
          this.joinWaiter = null;
        }
        return;
      }
      const m = this.current.get(id);
      if (!m) return; // after a graceful leave record, or never seen
      this.current.delete(id);
      if (this.ownIds.has(id) && this.self?.id === id && !this.expelled) {
        this.expelled = true;
        this.log.warn({ seq }, 'cluster_expelled');
        await this.handler({ type: 'expelled', seq, historical: false });
        return;
      }
      if (!historical) this.log.warn({ node: m.node, member: id }, 'cluster_member_failed');
      await this.handler({ type: 'leave', seq, historical, member: m, members: this.members(), reason: 'failed' });
      return;
    }
    if (!kv.key.equals(this.logKey) || type !== 'put') return;
    const parsed = JSON.parse(kv.value.toString('utf8')) as LogRecord | LogRecord[];
    for (const rec of Array.isArray(parsed) ? parsed : [parsed]) await this.applyRecord(rec, nextSeq(), historical);
  }

  private async applyRecord(rec: LogRecord, seq: number, historical: boolean): Promise<void> {
    this.recordsSinceSnap++;
    if (rec.t === 'leave') {
      const m = this.current.get(rec.id);
      if (!m) return;
      this.current.delete(rec.id);
      this.gracefulLeft.add(rec.id);
      await this.handler({ type: 'leave', seq, historical, member: m, members: this.members(), reason: 'graceful' });
      return;
    }
    if ((this.lastN.get(rec.from) ?? 0) >= rec.n) return; // a client retry appended it twice
    this.lastN.set(rec.from, rec.n);
    await deliverMessage(this.handler, rec, seq, historical, this.ownIds, this.waiters);
  }

  /** The oldest live member writes a snapshot of the state at `appliedRev`, then compacts etcd's history. */
  private async maybeSnapshot(): Promise<void> {
    if (!this.snapshotter || !this.self || this.expelled || this.snapshotting) return;
    const oldest = oldestMember(this.current.values());
    if (oldest?.id !== this.self.id) return;
    this.snapshotting = true;
    try {
      const rev = this.appliedRev;
      const prev = this.lastSnapRev;
      const snap: Snapshot = { v: 1, rev, members: this.members(), lastN: [...this.lastN], state: this.snapshotter.export() };
      const body = Buffer.from(JSON.stringify(snap));
      const res = await this.client.kv.txn({
        compare: [{ key: this.snapKey, target: 'Mod', result: 'Equal', mod_revision: this.snapModRev }],
        success: [{ request_put: { key: this.snapKey, value: body } }],
        failure: [],
      });
      if (!res.succeeded) return;
      this.lastSnapRev = rev;
      this.recordsSinceSnap = 0;
      if (prev > 0) await this.client.kv.compact({ revision: prev, physical: false });
      this.log.info({ rev, bytes: body.length, compactedTo: prev }, 'cluster_snapshot_written');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cluster_snapshot_failed');
    } finally {
      this.snapshotting = false;
    }
  }

  /** Oldest retained revision and snapshot position, for `dog`-side diagnostics and tests. */
  async logStatus(): Promise<{ revision: number; compacted: number; snapshotRev: number; snapshotBytes: number }> {
    const r = await this.client.kv.range({ key: this.snapKey });
    const kv = r.kvs[0];
    const snap = kv ? (JSON.parse(kv.value.toString('utf8')) as Snapshot) : null;
    return { revision: Number(r.header.revision), compacted: 0, snapshotRev: snap?.rev ?? 0, snapshotBytes: kv?.value.length ?? 0 };
  }
}
