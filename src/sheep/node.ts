// One sheep node: its persistent state (config, epoch), object store, VDI namespace, lock table, gateway and
// cluster membership. Cluster ops are split like sheepdog's "block" ops (fact sheet §2.1, pitfall 20): the
// requesting node does the work (lookup, inode I/O) under the namespace mutex, then broadcasts a ClusterMsg;
// every node applies it in the driver's total order (applyMsg) and the requester returns the applied result.
import { EventEmitter } from 'node:events';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  LOCK_TYPE_NORMAL,
  SD_CLUSTER_FLAG_USE_LOCK,
  SD_DEFAULT_BLOCK_SIZE_SHIFT,
  SD_DEFAULT_COPIES,
  SD_DEFAULT_VNODES,
  SD_INODE_HEADER_SIZE,
  SD_MAX_BLOCK_SIZE_SHIFT,
  SD_MAX_COPIES,
  SD_MIN_BLOCK_SIZE_SHIFT,
  SD_RES_BASE_VDI_READ,
  SD_RES_INVALID_PARMS,
  SD_RES_NO_VDI,
  SD_RES_SUCCESS,
  SD_RES_VDI_EXIST,
  SD_STATUS_KILLED,
  SD_STATUS_OK,
  SD_STATUS_SHUTDOWN,
  SD_STATUS_WAIT,
  STORE_POLICY_FLAT,
  MAX_DATA_OBJS,
  TGT_INODE_SIZE,
} from '../proto/sheepdog/constants.js';
import {
  INODE_OFF_SNAP_CTIME,
  INODE_OFF_VDI_SIZE,
  decodeInode,
  decodeInodeHeader,
  emptyInode,
  encodeInode,
  encodeInodeHeader,
  sdTimestamp,
  type Inode,
} from '../proto/sheepdog/inode.js';
import { addrBytes, compareNodeId, encodeNodes, makeNodeId, nodeAddr, nodeIdEquals, type NodeId, type SdNode } from '../proto/sheepdog/node.js';
import { isVdiOid, oidToVid, vidToVdiOid } from '../proto/sheepdog/oid.js';
import { componentLogger, type Logger } from '../obs/log.js';
import { Ring } from '../proto/sheepdog/ring.js';
import { ClientStore } from './client-store.js';
import type { ClusterDriver, ClusterEvent, ClusterMember } from './cluster/local.js';
import { EpochHistory, nodeSetChanged, nodeSetOf, type MemberInfo, type NodeSet } from './epoch.js';
import { PeerPool } from './peer-pool.js';
import { RingPlacement } from './peer-replica.js';
import { Recovery, type RecoveryStatus } from './recovery.js';
import { fromWireNodeId, isClusterMsg, toWireNodeId, type ClusterMsg } from './cluster/messages.js';
import { SingleClusterDriver } from './cluster/single.js';
import { decodeTagged, encodeTagged } from './cluster/snapshot.js';
import { NodeStateFiles, type SheepConfig } from './config.js';
import { SdError } from './errors.js';
import { Gateway, SinglePlacement, type Placement } from './gateway.js';
import { SerialIo } from './serial.js';
import { LockTable, type TargetIdentity } from './lock.js';
import { Mutex } from './mutex.js';
import { PlainStore } from './store/plain.js';
import type { ObjectStore } from './store/store.js';
import { VdiNamespace, type LookupResult } from './vdi.js';

export interface SheepNodeOptions {
  /** Store directory (objects, config, epochs, the unix socket). */
  dir: string;
  /** Address and port this node is known by (its node_id). */
  addr: string;
  port: number;
  /** Zone (default: the IPv4 address as LE u32, §9.5). */
  zone?: number;
  driver?: ClusterDriver;
  store?: ObjectStore;
  placement?: (node: SheepNode) => Placement;
  /** A filter around the placement the node chose (fault injection composed by the CLI or a test). */
  placementFilter?: (p: Placement) => Placement;
  log?: Logger;
  /** Address other sheep reach this node's I/O at (node_id io_addr/io_port), e.g. a proxy; identity is unchanged. */
  advertise?: { host: string; port: number };
}

export interface VdiReply {
  result: number;
  vid: number;
  copies: number;
  blockSizeShift: number;
}

/** The target identity of a lock message, if it has one. */
function targetOf(m: Extract<ClusterMsg, { t: 'lock' | 'release' }>): TargetIdentity | undefined {
  if (!m.target || !/^\d+$/.test(m.target.inc)) return undefined;
  return { targetId: m.target.id, incarnation: BigInt(m.target.inc), nid: fromWireNodeId(m.sender) };
}

/** The `target` field of a lock message. */
function wireTarget(t: TargetIdentity | undefined): { target?: { id: string; inc: string } } {
  return t ? { target: { id: t.targetId, inc: t.incarnation.toString() } } : {};
}

/** Sees every delivered cluster event around its application (events are applied one at a time). */
export interface ClusterEventObserver {
  before(e: ClusterEvent): void;
  after(e: ClusterEvent): void;
}

/** exportClusterState's value after decoding. */
interface ClusterStateSnapshot {
  v: number;
  config: SheepConfig | null;
  epoch: number;
  history: { epoch: number; nodes: SdNode[]; time: bigint }[];
  vdis: ReturnType<VdiNamespace['exportState']>;
  locks: ReturnType<LockTable['exportState']>;
  tombstones: bigint[];
  recoveryDone: [number, string[]][];
  /** Waiting after a shutdown for the last epoch's nodes (absent in snapshots that predate it: false). */
  halted?: boolean;
}

export class SheepNode extends EventEmitter {
  readonly dir: string;
  readonly files: NodeStateFiles;
  readonly store: ClientStore;
  readonly vdis = new VdiNamespace();
  readonly locks = new LockTable();
  readonly namespaceMutex = new Mutex();
  readonly driver: ClusterDriver;
  readonly nid: NodeId;
  readonly zone: number;
  readonly log: Logger;
  readonly gateway: Gateway;
  /** Object I/O serialized at each object's primary replica (CREATE_EXCL, CMP_WRITE, WRITE_SERIAL). */
  readonly serial: SerialIo;
  config: SheepConfig | null = null;
  epoch = 0;
  status = SD_STATUS_WAIT;
  space = 0n;
  private readonly results = new Map<string, number>();
  /** Cluster mode (a driver with a replayed log, e.g. `local`): ring placement, epochs, recovery. */
  readonly clustered: boolean;
  /** The store without dirty tracking (recovery, cleanup); `store` records client-path changes. */
  readonly rawStore: ObjectStore;
  /** Epoch of this node's last deletion of copies, durable before the deletion (currency.ts). */
  purgeEpoch = 0;
  private purgeWrites: Promise<void> = Promise.resolve();
  readonly peers: PeerPool;
  readonly recovery: Recovery;
  /** Called before and after this node applies each delivered cluster event (the event feed, feed.ts). */
  eventObserver: ClusterEventObserver | null = null;
  readonly history = new EpochHistory();
  /** Node set of the current epoch (cluster mode). */
  private nodeSet: NodeSet = { nodes: [], reps: new Map() };
  private ringNow: Ring | null = null;
  /** Oids of deleted VDIs' objects (seed 003): never recovered, removed wherever they are found. */
  readonly tombstones = new Set<bigint>();
  /** Objects the gateway reclaimed since the last VDI deletion broadcast them. */
  private readonly reclaimed: bigint[] = [];
  private readonly recoveryDone = new Map<number, Set<string>>();
  /**
   * After `dog cluster shutdown` (as in sheepdog): leaving nodes do not move the epoch, and the cluster waits
   * (WAIT_FOR_JOIN) until every node of the last epoch is back — then one new epoch with all of them — or until
   * `dog cluster recover force`. Derived from the log, so a replaying node reaches the same state.
   */
  private halted = false;
  private replaying = true;
  private diskConfig: SheepConfig | null = null;
  private epochWaiters: (() => void)[] = [];
  private tokenCounter = 0;
  private readonly tokenPrefix = `${process.pid}-${Date.now().toString(36)}`;

  constructor(opts: SheepNodeOptions) {
    super();
    this.dir = opts.dir;
    this.files = new NodeStateFiles(opts.dir);
    this.log = opts.log ?? componentLogger('sheep', { node: `${opts.addr}:${opts.port}` });
    this.driver = opts.driver ?? new SingleClusterDriver();
    this.clustered = this.driver.name !== 'single';
    this.rawStore = opts.store ?? new PlainStore(opts.dir, this.log.child({ component: 'store' }));
    this.store = new ClientStore(this.rawStore, () => this.epoch, (epoch) => this.raisePurgeEpoch(epoch));
    this.nid = makeNodeId(opts.addr, opts.port);
    if (opts.advertise) this.nid = { ...this.nid, ioAddr: addrBytes(opts.advertise.host), ioPort: opts.advertise.port };
    this.zone = opts.zone ?? this.nid.addr.readUInt32LE(12);
    this.peers = new PeerPool(this.log.child({ component: 'peer' }));
    this.recovery = new Recovery({
      self: this.nid,
      store: this.rawStore,
      peers: this.peers,
      epoch: () => this.epoch,
      ring: () => this.ring(),
      ringOf: (e) => this.history.get(e)?.ring ?? null,
      copiesOf: (oid) => this.copiesOf(oid),
      objectSize: (oid) => this.gateway.objectSize(oid),
      tombstoned: (oid) => this.tombstones.has(oid),
      purgeEpoch: () => this.purgeEpoch,
      announceDone: (epoch) => this.clusterOp({ t: 'recovery_done', token: '', epoch, node: nodeAddr(this.nid) }).then(() => undefined),
      log: this.log.child({ component: 'recovery' }),
    });
    const ringPlacement = new RingPlacement({
      self: this.nid,
      store: this.store,
      peers: this.peers,
      recovery: this.recovery,
      ring: () => this.ring(),
      epoch: () => this.epoch,
    });
    this.gateway = new Gateway({
      placement: (opts.placementFilter ?? ((p: Placement) => p))(
        opts.placement ? opts.placement(this) : this.clustered ? ringPlacement : new SinglePlacement(this.store),
      ),
      waitEpoch: this.clustered ? (seen, ms) => this.waitEpoch(seen, ms) : undefined,
      onReclaimed: this.clustered ? (oid) => this.reclaimed.push(oid) : undefined,
      syncCluster: this.clustered && this.driver.sync ? () => this.driver.sync!() : undefined,
      vdis: this.vdis,
      locks: this.locks,
      self: this.nid,
      epoch: () => this.epoch,
      defaults: () => ({
        copies: this.config?.copies || SD_DEFAULT_COPIES,
        blockSizeShift: this.config?.blockSizeShift || SD_DEFAULT_BLOCK_SIZE_SHIFT,
      }),
      coherence: (vid, validate, sender = this.nid) => this.clusterOp({ t: 'coherence', token: '', vid, validate, sender: toWireNodeId(sender) }),
      namespaceMutex: this.namespaceMutex,
      log: this.log.child({ component: 'gateway' }),
    });
    this.serial = new SerialIo({
      gateway: this.gateway,
      primary: (oid) => {
        if (!this.clustered) return null;
        const first = this.ring().oidToNodes(oid, 1)[0];
        return first === undefined || nodeIdEquals(first.nid, this.nid) ? null : first.nid;
      },
      peers: this.peers,
      epoch: () => this.epoch,
      waitEpoch: this.clustered ? (seen, ms) => this.waitEpoch(seen, ms) : undefined,
      waitEpochAtLeast: this.clustered ? (e, ms) => this.waitEpochAtLeast(e, ms) : undefined,
      sync: this.driver.sync ? () => this.driver.sync!() : undefined,
      log: this.log.child({ component: 'serial' }),
    });
  }

  get formatted(): boolean {
    return this.config !== null && this.config.ctime !== 0n;
  }

  get useLock(): boolean {
    return ((this.config?.flags ?? 0) & SD_CLUSTER_FLAG_USE_LOCK) !== 0;
  }

  /** This node as an sd_node (nr_vnodes from the auto strategy of a one-node ring). */
  selfNode(): SdNode {
    return { nid: this.nid, nrVnodes: SD_DEFAULT_VNODES, zone: this.zone, space: this.space };
  }

  /** The ring of the current epoch (cluster mode), or of this node alone. */
  ring(): Ring {
    if (!this.ringNow) this.ringNow = new Ring(this.nodes());
    return this.ringNow;
  }

  /** Copies an object is stored with: its VDI's, else the cluster default. */
  copiesOf(oid: bigint): number {
    return this.vdis.get(oidToVid(oid))?.nrCopies || this.config?.copies || SD_DEFAULT_COPIES;
  }

  /** Resolve once the epoch is past `seen`, or after `ms`. */
  waitEpoch(seen: number, ms: number): Promise<void> {
    if (this.epoch > seen) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.epochWaiters.push(done);
    });
  }

  /** Wait until the epoch is at least `epoch` (a peer request from a node that saw it first, §1.8). */
  async waitEpochAtLeast(epoch: number, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (this.epoch < epoch && Date.now() < deadline) await this.waitEpoch(this.epoch, deadline - Date.now());
    return this.epoch >= epoch;
  }

  /** Current members as sd_nodes, in node order (§9.1). */
  nodes(): SdNode[] {
    if (this.clustered) return this.nodeSet.nodes.length > 0 ? this.nodeSet.nodes : [this.selfNode()];
    const out: SdNode[] = [];
    for (const m of this.driver.members()) {
      const info = m.info as Partial<MemberInfo> | null;
      if (!info || typeof info.addr !== 'string' || typeof info.port !== 'number') continue;
      out.push({
        nid: { addr: Buffer.from(info.addr, 'hex'), port: info.port, ioAddr: Buffer.alloc(16), ioPort: 0 },
        nrVnodes: SD_DEFAULT_VNODES,
        zone: info.zone ?? 0,
        space: BigInt(info.space ?? '0'),
      });
    }
    if (out.length === 0) out.push(this.selfNode());
    return out.sort((a, b) => compareNodeId(a.nid, b.nid));
  }

  /** Open the store, load the persistent state, rebuild the namespace, join the cluster. */
  async start(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    await this.lockStoreDir();
    await this.rawStore.open();
    this.purgeEpoch = await this.files.loadPurgeEpoch();
    this.space = (await this.rawStore.space()).size;
    this.config = await this.files.loadConfig();
    const epochs = await this.files.epochs();
    this.epoch = epochs.at(-1) ?? 0;
    if (this.clustered) {
      // The cluster log is the authority: config, epochs, VDIs and locks are rebuilt by replaying it.
      this.diskConfig = this.config;
      this.config = null;
      this.epoch = 0;
    } else if (this.formatted) {
      if (this.epoch === 0) {
        this.epoch = 1;
        await this.files.saveEpoch({ epoch: 1, nodes: [this.selfNode()], time: BigInt(Math.floor(Date.now() / 1000)) });
      }
      if (this.config?.shutdown) await this.files.saveConfig({ ...this.config, shutdown: false });
      await this.rebuildNamespace();
      this.status = SD_STATUS_OK;
    }
    this.driver.onEvent((e) => this.onClusterEvent(e));
    if (this.clustered) this.driver.setSnapshotter?.({ export: () => this.exportClusterState() });
    const io = this.nid.ioPort > 0 ? { ioAddr: this.nid.ioAddr.toString('hex'), ioPort: this.nid.ioPort } : {};
    const info: MemberInfo = { addr: this.nid.addr.toString('hex'), port: this.nid.port, zone: this.zone, space: this.space.toString(), ...io };
    await this.driver.join(nodeAddr(this.nid), info);
    this.log.info({ epoch: this.epoch, formatted: this.formatted, vdis: this.vdis.all().length }, 'sheep_started');
  }

  async stop(): Promise<void> {
    this.peers.close();
    await this.driver.leave().catch(() => undefined);
    await this.driver.close().catch(() => undefined);
    await this.rawStore.close();
    await fsp.rm(path.join(this.dir, 'sheep.pid'), { force: true });
  }

  /** One sheep per store directory: `sheep.pid` names the owner; a stale one (dead pid) is taken over. */
  private async lockStoreDir(): Promise<void> {
    const file = path.join(this.dir, 'sheep.pid');
    try {
      const pid = Number((await fsp.readFile(file, 'utf8')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
        let alive = true;
        try {
          process.kill(pid, 0);
        } catch (err) {
          alive = (err as NodeJS.ErrnoException).code === 'EPERM';
        }
        if (alive) throw new Error(`store ${this.dir} is in use by pid ${pid}`);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await fsp.writeFile(file, `${process.pid}\n`);
  }

  /**
   * Rebuild the VDI namespace from the inode objects in the store. A crash between creating a snapshot's new
   * working inode and stamping the old one leaves two working VDIs of one name: the parent is re-stamped.
   */
  private async rebuildNamespace(): Promise<void> {
    const headers = [];
    for (const oid of this.store.list()) {
      if (!isVdiOid(oid)) continue;
      const h = decodeInodeHeader(await this.store.read(oid, 0, SD_INODE_HEADER_SIZE));
      if (h.vdiId !== oidToVid(oid)) continue;
      headers.push(h);
    }
    const byVid = new Map(headers.map((h) => [h.vdiId, h]));
    for (const h of headers) {
      const p = byVid.get(h.parentVdiId);
      if (p && p.vdiId !== h.vdiId && p.name !== '' && p.name === h.name && p.snapCtime === 0n && h.snapCtime === 0n && h.snapId === p.snapId + 1) {
        const stamp = h.createTime || sdTimestamp(Date.now());
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(stamp);
        await this.store.write(vidToVdiOid(p.vdiId), b, INODE_OFF_SNAP_CTIME);
        p.snapCtime = stamp;
        this.log.warn({ vdi: p.vdiId.toString(16) }, 'snapshot_stamp_repaired');
      }
    }
    this.vdis.rebuild(headers);
  }

  /** Delivered cluster events, with this node's observer (the event feed) called around each application. */
  private async onClusterEvent(e: ClusterEvent): Promise<void> {
    const observer = this.eventObserver;
    observer?.before(e);
    try {
      await this.applyClusterEvent(e);
    } finally {
      observer?.after(e);
    }
  }

  private async applyClusterEvent(e: ClusterEvent): Promise<void> {
    if (e.type === 'snapshot') {
      this.importClusterState(e.state, e.members);
      return;
    }
    if (this.clustered) {
      if (e.type === 'expelled') {
        // Removed while alive (stopped or hung past the failure timeout): come back as a new incarnation, which
        // is an epoch change like a restart; a driver that cannot rejoin ends the process.
        const rejoin = this.driver.rejoin?.bind(this.driver);
        if (!rejoin) {
          this.log.error({}, 'cluster_expelled_exiting');
          this.kill();
          return;
        }
        this.log.warn({}, 'cluster_expelled_rejoining');
        // Our removal is an epoch change for everyone: advance with them before the new incarnation joins.
        await this.membershipChanged(this.driver.members(), false, null);
        void rejoin().catch((err: unknown) => {
          this.log.error({ err }, 'cluster_rejoin_failed');
          this.kill();
        });
        return;
      }
      if (!e.historical && this.replaying) await this.finishReplay();
      if (e.type === 'join' || e.type === 'leave') {
        await this.membershipChanged(e.members, e.historical, e.type === 'leave' ? e.member : null);
        return;
      }
    }
    if (e.type === 'leave') {
      const info = e.member.info as Partial<MemberInfo> | null;
      if (info && typeof info.addr === 'string' && typeof info.port === 'number') {
        this.locks.removeNode(fromWireNodeId({ addr: info.addr, port: info.port }));
      }
      return;
    }
    if (e.type !== 'message' || !isClusterMsg(e.payload)) return;
    try {
      this.results.set(e.payload.token, await this.applyMsg(e.payload, e.historical));
    } catch (err) {
      this.log.error({ err, msg: e.payload.t }, 'cluster_apply_failed');
      this.results.set(e.payload.token, (err as Partial<SdError>).result ?? SD_RES_INVALID_PARMS);
    }
  }

  /** Broadcast a cluster message and return the result its application produced on this node. */
  async clusterOp(msg: ClusterMsg): Promise<number> {
    const token = `${this.tokenPrefix}-${++this.tokenCounter}`;
    await this.driver.broadcast({ ...msg, token });
    const r = this.results.get(token) ?? SD_RES_SUCCESS;
    this.results.delete(token);
    return r;
  }

  /** Apply one ordered cluster message (runs on every node, in the same order). */
  private async applyMsg(m: ClusterMsg, historical = false): Promise<number> {
    switch (m.t) {
      case 'make_fs': {
        if (this.clustered) return this.applyMakeFsClustered(m, historical);
        await this.wipeStore();
        this.vdis.clear();
        this.locks.clear();
        this.config = this.configOf(m);
        await this.files.saveConfig(this.config);
        await this.files.clearEpochs();
        this.epoch = 1;
        await this.files.saveEpoch({ epoch: 1, nodes: this.nodes(), time: BigInt(Math.floor(Date.now() / 1000)) });
        this.status = SD_STATUS_OK;
        this.log.info({ copies: m.copies, flags: m.flags, shift: m.blockSizeShift }, 'cluster_formatted');
        return SD_RES_SUCCESS;
      }
      case 'shutdown':
        if (this.clustered) this.halted = true;
        if (historical) return SD_RES_SUCCESS;
        this.status = SD_STATUS_SHUTDOWN;
        if (this.config) await this.files.saveConfig({ ...this.config, shutdown: true });
        setImmediate(() => this.emit('shutdown'));
        return SD_RES_SUCCESS;
      case 'vdi_add':
        for (const oid of this.tombstones) if (oidToVid(oid) === m.vid) this.tombstones.delete(oid);
        this.vdis.applyAdd(
          {
            vid: m.vid,
            nrCopies: m.copies,
            copyPolicy: m.copyPolicy,
            blockSizeShift: m.blockSizeShift,
            snapshot: false,
            deleted: false,
            parentVid: m.parentVid,
          },
          m.oldVid,
        );
        return SD_RES_SUCCESS;
      case 'vdi_del':
        this.vdis.applyDelete(m.vid);
        return SD_RES_SUCCESS;
      case 'force_recover':
        if (!this.halted) return SD_RES_SUCCESS;
        this.halted = false;
        if (!historical && !this.replaying && this.status === SD_STATUS_WAIT) this.status = SD_STATUS_OK;
        this.log.warn({ nodes: this.nodeSet.nodes.map((n) => nodeAddr(n.nid)) }, 'cluster_recover_forced');
        await this.advanceEpoch(this.nodeSet, historical);
        return SD_RES_SUCCESS;
      case 'lock':
        return this.locks.lock(m.vid, m.type, fromWireNodeId(m.sender), targetOf(m));
      case 'release':
        if (!this.locks.release(m.vid, m.type, fromWireNodeId(m.sender), targetOf(m))) {
          this.log.warn({ vdi: m.vid.toString(16), type: m.type, target: m.target?.id }, 'release_without_lock');
        }
        return SD_RES_SUCCESS;
      case 'break_lock':
        this.locks.breakLock(m.vid);
        return SD_RES_SUCCESS;
      case 'coherence':
        return this.locks.coherence(m.vid, m.validate, fromWireNodeId(m.sender));
      case 'alter_cluster_copy':
        if (!this.config) return SD_RES_INVALID_PARMS;
        this.config = { ...this.config, copies: m.copies };
        await this.files.saveConfig(this.config);
        return SD_RES_SUCCESS;
      case 'alter_vdi_copy': {
        const r = this.vdis.get(m.vid);
        if (r) r.nrCopies = m.copies;
        return SD_RES_SUCCESS;
      }
      case 'objs_removed':
        await this.applyObjsRemoved(m.oids);
        return SD_RES_SUCCESS;
      case 'recovery_done':
        this.applyRecoveryDone(m.epoch, m.node);
        return SD_RES_SUCCESS;
    }
  }

  /** The on-disk config a MAKE_FS message describes. */
  private configOf(m: Extract<ClusterMsg, { t: 'make_fs' }>): SheepConfig {
    return {
      ctime: BigInt(m.ctime),
      flags: m.flags,
      copies: m.copies,
      defaultStore: m.store,
      shutdown: false,
      copyPolicy: m.copyPolicy,
      blockSizeShift: m.blockSizeShift,
      space: this.space,
    };
  }

  // ---- cluster mode: replay, epochs, recovery, deletion (docs/cluster.md) ----

  /** MAKE_FS in cluster mode: live, wipe and start epoch 1; replayed, only rebuild (finishReplay reconciles). */
  private async applyMakeFsClustered(m: Extract<ClusterMsg, { t: 'make_fs' }>, historical: boolean): Promise<number> {
    this.vdis.clear();
    this.locks.clear();
    this.tombstones.clear();
    this.recoveryDone.clear();
    this.history.clear();
    this.recovery.reset();
    this.halted = false;
    this.config = this.configOf(m);
    this.setEpoch(1, this.nodeSet);
    if (historical) return SD_RES_SUCCESS;
    await this.wipeStore();
    await this.files.saveConfig(this.config);
    this.diskConfig = this.config;
    await this.files.clearEpochs();
    await this.saveEpochFile(1);
    this.status = SD_STATUS_OK;
    this.log.info({ copies: m.copies, flags: m.flags, shift: m.blockSizeShift, nodes: this.nodeSet.nodes.length }, 'cluster_formatted');
    return SD_RES_SUCCESS;
  }

  /**
   * Compaction (docs/cluster.md): everything the applied cluster log has built — config, epoch and its history,
   * VDI table, locks, tombstones, recovery_done reports, the wait after a shutdown — as one JSON-safe value. Whatever applyMsg and
   * membershipChanged derive from the log belongs here, and in importClusterState.
   */
  exportClusterState(): unknown {
    return encodeTagged({
      v: 1,
      config: this.config,
      epoch: this.epoch,
      history: this.history.all().map((r) => ({ epoch: r.epoch, nodes: r.nodes, time: r.time })),
      vdis: this.vdis.exportState(),
      locks: this.locks.exportState(),
      tombstones: [...this.tombstones],
      recoveryDone: [...this.recoveryDone].map(([epoch, nodes]) => [epoch, [...nodes]]),
      halted: this.halted,
    });
  }

  /** Replace the replayed state with a snapshot's (only before our own join: the history is replayed). */
  private importClusterState(state: unknown, members: ClusterMember[]): void {
    if (!this.replaying) throw new Error('a cluster snapshot arrived after this node joined');
    const s = decodeTagged(state) as ClusterStateSnapshot;
    if (s.v !== 1) throw new Error(`unknown cluster snapshot version ${String(s.v)}`);
    this.config = s.config;
    this.history.clear();
    for (const r of s.history) this.history.add(r.epoch, r.nodes, r.time);
    this.epoch = s.epoch;
    this.vdis.importState(s.vdis);
    this.locks.importState(s.locks);
    this.tombstones.clear();
    for (const oid of s.tombstones) this.tombstones.add(oid);
    this.recoveryDone.clear();
    for (const [epoch, nodes] of s.recoveryDone) this.recoveryDone.set(epoch, new Set(nodes));
    this.halted = s.halted === true;
    this.nodeSet = nodeSetOf(members);
    this.ringNow = null;
    this.log.info({ epoch: this.epoch, vdis: s.vdis.records.length, members: members.length }, 'cluster_snapshot_imported');
  }

  /** End of the replayed history (our own join is next): reconcile the store and epoch files with the log. */
  private async finishReplay(): Promise<void> {
    this.replaying = false;
    if (this.config === null) {
      this.status = SD_STATUS_WAIT;
      return;
    }
    if (this.diskConfig?.ctime !== this.config.ctime) {
      // Formatted (again) while this store was away: its objects belong to an older cluster.
      await this.wipeStore();
      await this.files.saveConfig(this.config);
      this.diskConfig = this.config;
      this.log.warn({}, 'store_wiped_for_new_format');
    }
    // Rewrite the epoch files from the log, keeping the recorded start time of epochs this node saw live.
    for (const r of this.history.all()) {
      const old = await this.files.loadEpoch(r.epoch).catch(() => null);
      if (old && encodeNodes(old.nodes).equals(encodeNodes(r.nodes))) r.time = old.time;
    }
    await this.files.clearEpochs();
    for (const r of this.history.all()) await this.saveEpochFile(r.epoch);
    for (const oid of this.tombstones) if (this.rawStore.exists(oid)) await this.rawStore.remove(oid).catch(() => undefined);
    this.status = this.halted ? SD_STATUS_WAIT : SD_STATUS_OK;
  }

  /** Nodes of the last epoch missing from `set` while the cluster waits after a shutdown (empty: none). */
  missingAfterShutdown(set: NodeSet = this.nodeSet): string[] {
    if (!this.halted) return [];
    const have = new Set(set.nodes.map((n) => nodeAddr(n.nid)));
    return (this.history.get(this.epoch)?.nodes ?? []).map((n) => nodeAddr(n.nid)).filter((n) => !have.has(n));
  }

  /** `dog cluster recover force`: stop waiting for the missing nodes of the last epoch. */
  forceRecover(): Promise<number> {
    return this.clusterOp({ t: 'force_recover', token: '' });
  }

  private async saveEpochFile(epoch: number): Promise<void> {
    const r = this.history.get(epoch);
    if (r) await this.files.saveEpoch({ epoch, nodes: r.nodes, time: r.time });
  }

  private setEpoch(epoch: number, set: NodeSet): void {
    this.epoch = epoch;
    this.history.add(epoch, set.nodes, BigInt(Math.floor(Date.now() / 1000)));
    this.ringNow = null;
    for (const w of this.epochWaiters.splice(0)) w();
  }

  /** A join or leave: advance the epoch if the node set changed; live changes start recovery. */
  private async membershipChanged(members: ClusterMember[], historical: boolean, left: ClusterMember | null): Promise<void> {
    const next = nodeSetOf(members);
    const prev = this.nodeSet;
    if (!nodeSetChanged(prev, next)) return;
    this.nodeSet = next;
    this.ringNow = null;
    // Locks of a node that is gone, or whose process was replaced, go with it (§6.4, §7.6).
    for (const [name, id] of prev.reps) {
      if (next.reps.get(name) === id) continue;
      const info = left?.node === name ? left.info : members.find((m) => m.id === id)?.info;
      const gone = prev.nodes.find((n) => nodeAddr(n.nid) === name)?.nid;
      if (gone) this.locks.removeNode(gone);
      else if (info) this.log.debug({ node: name }, 'lock_owner_unknown');
    }
    for (const n of prev.nodes) if (!next.nodes.some((x) => nodeAddr(x.nid) === nodeAddr(n.nid))) this.peers.drop(n.nid);
    if (this.config === null) return;
    // No epoch without nodes (the last member's leave, seen by the next one to start), and none while the
    // cluster waits after a shutdown for the nodes of its last epoch.
    if (next.nodes.length === 0) return;
    if (this.halted) {
      const missing = this.missingAfterShutdown(next);
      if (missing.length > 0) {
        if (!historical && !this.replaying) this.log.info({ missing }, 'cluster_waiting_for_nodes');
        return;
      }
      this.halted = false;
      if (!historical && !this.replaying && this.status === SD_STATUS_WAIT) this.status = SD_STATUS_OK;
    }
    await this.advanceEpoch(next, historical);
  }

  /** A new epoch with node set `next`; a live one starts recovery on its members. */
  private async advanceEpoch(next: NodeSet, historical: boolean): Promise<void> {
    const epoch = this.epoch + 1;
    this.setEpoch(epoch, next);
    if (historical || this.replaying) return;
    this.log.info({ epoch, nodes: next.nodes.map((n) => nodeAddr(n.nid)) }, 'epoch_changed');
    // Recovery starts in the same tick as the epoch, so STAT_RECOVERY never shows a new epoch as recovered.
    const selfName = nodeAddr(this.nid);
    if (next.nodes.some((n) => nodeAddr(n.nid) === selfName)) this.recovery.start(epoch);
    await this.saveEpochFile(epoch);
  }

  /** Objects of a deleted VDI (seed 003): out of every node's object list and store, now and on replay. */
  private async applyObjsRemoved(oids: string[]): Promise<void> {
    for (const text of oids) {
      if (!/^\d+$/.test(text)) continue;
      const oid = BigInt(text);
      this.tombstones.add(oid);
      if (this.rawStore.exists(oid)) await this.rawStore.remove(oid).catch(() => undefined);
    }
  }

  /** COMPLETE_RECOVERY: once every node of the epoch is done, copies this node no longer owns go. */
  private applyRecoveryDone(epoch: number, node: string): void {
    let done = this.recoveryDone.get(epoch);
    if (!done) this.recoveryDone.set(epoch, (done = new Set()));
    done.add(node);
    if (this.replaying || epoch !== this.epoch) return;
    // Only a member cleans up: a node outside the epoch (expelled, about to rejoin) owns nothing in its ring,
    // and its copies are exactly what its rejoin will verify instead of fetching.
    if (!this.nodeSet.nodes.some((n) => nodeAddr(n.nid) === nodeAddr(this.nid))) return;
    if (!this.nodeSet.nodes.every((n) => done.has(nodeAddr(n.nid)))) return;
    this.recovery.onProgress?.(this.recoveryState());
    for (const e of [...this.recoveryDone.keys()]) if (e < epoch) this.recoveryDone.delete(e);
    void this.removeStaleCopies(epoch).catch((err: unknown) => this.log.warn({ err }, 'stale_cleanup_failed'));
  }

  private async removeStaleCopies(epoch: number): Promise<void> {
    const ring = this.ring();
    let removed = 0;
    const gone = this.rawStore.list().filter((oid) => !ring.oidToNodes(oid, this.copiesOf(oid)).some((n) => nodeAddr(n.nid) === nodeAddr(this.nid)));
    if (gone.length > 0) await this.raisePurgeEpoch(epoch);
    for (const oid of gone) {
      if (this.epoch !== epoch) return;
      await this.rawStore.remove(oid).catch(() => undefined);
      removed++;
    }
    this.log.info({ epoch, removed }, 'stale_copies_removed');
  }

  /**
   * STAT_RECOVERY as the cluster stands: this node's own run, and after it — until every member of the epoch
   * announced `recovery_done`, i.e. every object of the epoch has its copies where the ring puts them — still
   * "in recovery" (notifying), so no node reports an epoch as recovered while another is not.
   */
  recoveryState(): RecoveryStatus {
    const st = this.recovery.status();
    if (st.inRecovery || !this.clustered || this.config === null || this.epoch <= 1) return st;
    const done = this.recoveryDone.get(this.epoch);
    if (this.nodeSet.nodes.every((n) => done?.has(nodeAddr(n.nid)) ?? false)) return st;
    return { ...st, epoch: this.epoch, inRecovery: true, state: 2, finished: st.total };
  }

  /**
   * Record, durably and before any copy goes, that this node deleted copies in `epoch`: from then on it no
   * longer vouches (without a copy) that an object was not written in an epoch up to this one.
   */
  raisePurgeEpoch(epoch: number): Promise<void> {
    const next = this.purgeWrites.then(async () => {
      if (epoch <= this.purgeEpoch) return;
      await this.files.savePurgeEpoch(epoch);
      this.purgeEpoch = epoch;
    });
    this.purgeWrites = next.catch(() => undefined);
    return next;
  }

  /** Remove every object (a new format): epochs restart, so the purge epoch does too. */
  private async wipeStore(): Promise<void> {
    await this.rawStore.wipe();
    await this.purgeWrites;
    await this.files.savePurgeEpoch(0);
    this.purgeEpoch = 0;
  }

  /** Kill (KILL_NODE): stop serving; the process exits. */
  kill(): void {
    this.status = SD_STATUS_KILLED;
    setImmediate(() => this.emit('killed'));
  }

  private readInode = (vid: number, offset: number, length: number): Promise<Buffer> =>
    this.gateway.readReplicas(vidToVdiOid(vid), offset, length, 0);

  /** Name lookup without taking the namespace mutex (caller holds it or accepts a racy read). */
  lookup(name: string, tag: string, snapid: number): Promise<LookupResult> {
    return this.vdis.lookup(name, tag, snapid, this.readInode);
  }

  private vdiReply(result: number, vid: number): VdiReply {
    const r = this.vdis.get(vid);
    return { result, vid, copies: r?.nrCopies ?? 0, blockSizeShift: r?.blockSizeShift ?? 0 };
  }

  /** GET_VDI_INFO (§4.2): serialized with namespace changes, never changes state. */
  getVdiInfo(name: string, tag: string, snapid: number): Promise<VdiReply> {
    return this.namespaceMutex.run(async () => {
      const r = await this.lookup(name, tag, snapid);
      return r.result === SD_RES_SUCCESS ? this.vdiReply(SD_RES_SUCCESS, r.vid) : this.vdiReply(r.result, 0);
    });
  }

  /**
   * LOCK_VDI (§6.3): the lookup here, the state change as an ordered cluster op. The holder is this gateway
   * sheep, or the target the connection said HELLO for (docs/fencing.md §3).
   */
  async lockVdi(name: string, tag: string, snapid: number, type: number, target?: TargetIdentity): Promise<VdiReply> {
    const info = await this.getVdiInfo(name, tag, snapid);
    if (info.result !== SD_RES_SUCCESS || !this.useLock) return info;
    const sender = toWireNodeId(target?.nid ?? this.nid);
    const result = await this.clusterOp({ t: 'lock', token: '', vid: info.vid, type, sender, ...wireTarget(target) });
    return result === SD_RES_SUCCESS ? info : this.vdiReply(result, 0);
  }

  /** RELEASE_VDI (§6.3): always SUCCESS. */
  async releaseVdi(vid: number, type: number, sender: NodeId = this.nid, target?: TargetIdentity): Promise<number> {
    if (!this.useLock) return SD_RES_SUCCESS;
    await this.clusterOp({ t: 'release', token: '', vid, type, sender: toWireNodeId(sender), ...wireTarget(target) });
    return SD_RES_SUCCESS;
  }

  /** SF_OP_BREAK_LOCK (`dog vdi lock unlock`): release every holder; NO_VDI for an unknown vid. */
  async breakLock(vid: number): Promise<number> {
    if (!this.vdis.get(vid)) return SD_RES_NO_VDI;
    if (!this.useLock) return SD_RES_SUCCESS;
    return this.clusterOp({ t: 'break_lock', token: '', vid });
  }

  /** Break a lock whatever its holder (dog vdi lock unlock): NORMAL owner, or every SHARED participant. */
  async forceUnlock(vid: number): Promise<void> {
    const l = this.locks.get(vid);
    if (l.owner) await this.releaseVdi(vid, LOCK_TYPE_NORMAL);
    for (const p of l.participants) await this.releaseVdi(vid, 1, p.nid);
  }

  /**
   * NEW_VDI (§5.5): a fresh VDI (snapid 0, base 0), a clone (base = snapshot), a snapshot (snapid != 0: the
   * working VDI becomes a snapshot and a new working VDI takes its index) or a rollback/rebase.
   */
  newVdi(req: {
    name: string;
    vdiSize: bigint;
    baseVid: number;
    copies: number;
    copyPolicy: number;
    storePolicy: number;
    blockSizeShift: number;
    snapid: number;
  }): Promise<VdiReply> {
    return this.namespaceMutex.run(async () => {
      const cfg = this.config;
      if (!cfg) throw new SdError(SD_RES_INVALID_PARMS, 'not formatted');
      if (req.name === '') throw new SdError(SD_RES_INVALID_PARMS, 'empty VDI name');
      if (req.storePolicy !== STORE_POLICY_FLAT) throw new SdError(SD_RES_INVALID_PARMS, 'hyper volumes are not supported');
      const snapshot = req.snapid !== 0;
      const cur = await this.lookup(req.name, '', 0);
      if (!snapshot && cur.result === SD_RES_SUCCESS) return this.vdiReply(SD_RES_VDI_EXIST, 0);
      if (snapshot && cur.result !== SD_RES_SUCCESS) return this.vdiReply(cur.result === SD_RES_SUCCESS ? SD_RES_NO_VDI : cur.result, 0);
      const baseVid = snapshot && req.baseVid === 0 ? cur.vid : req.baseVid;
      let inode: Inode = emptyInode();
      let copies = req.copies || cfg.copies;
      let copyPolicy = req.copies ? req.copyPolicy : cfg.copyPolicy;
      let shift = req.blockSizeShift || cfg.blockSizeShift;
      let size = req.vdiSize;
      if (baseVid !== 0) {
        try {
          inode = decodeInode(await this.readInode(baseVid, 0, TGT_INODE_SIZE));
        } catch {
          return this.vdiReply(SD_RES_BASE_VDI_READ, 0);
        }
        if (inode.vdiId !== baseVid) return this.vdiReply(SD_RES_BASE_VDI_READ, 0);
        shift = inode.blockSizeShift;
        if (snapshot) {
          copies = inode.nrCopies;
          copyPolicy = inode.copyPolicy;
        }
        if (size === 0n) size = inode.vdiSize;
      }
      if (copies < 1 || copies > SD_MAX_COPIES) throw new SdError(SD_RES_INVALID_PARMS, `bad copies ${copies}`);
      if (shift < SD_MIN_BLOCK_SIZE_SHIFT || shift > SD_MAX_BLOCK_SIZE_SHIFT) throw new SdError(SD_RES_INVALID_PARMS, `bad block_size_shift ${shift}`);
      if (size > (1n << BigInt(shift)) * BigInt(MAX_DATA_OBJS)) throw new SdError(SD_RES_INVALID_PARMS, `VDI size ${size} too big`);
      const alloc = this.vdis.allocateVid(req.name);
      if (alloc.result !== SD_RES_SUCCESS) return this.vdiReply(alloc.result, 0);
      const vid = alloc.vid;
      const now = sdTimestamp(Date.now());
      const snapId = snapshot ? (cur.header?.snapId ?? 0) + 1 : cur.nextSnapId;
      inode = {
        ...inode,
        name: req.name,
        tag: '',
        createTime: now,
        snapCtime: 0n,
        vmClockNsec: 0n,
        vdiSize: size,
        vmStateSize: 0n,
        copyPolicy,
        storePolicy: STORE_POLICY_FLAT,
        nrCopies: copies,
        blockSizeShift: shift,
        snapId,
        vdiId: vid,
        parentVdiId: baseVid,
        btreeCounter: 0,
      };
      const body = baseVid !== 0 ? encodeInode(inode, TGT_INODE_SIZE) : encodeInodeHeader(inode);
      await this.gateway.createInode(vid, body, copies);
      const oldVid = snapshot ? cur.vid : 0;
      if (oldVid !== 0) {
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(now);
        await this.gateway.writeRaw(vidToVdiOid(oldVid), b, INODE_OFF_SNAP_CTIME);
      }
      await this.clusterOp({ t: 'vdi_add', token: '', vid, oldVid, copies, copyPolicy, blockSizeShift: shift, parentVid: baseVid });
      this.log.info({ vdi: vid.toString(16), name: req.name, snapshot, base: baseVid.toString(16) }, 'vdi_created');
      return this.vdiReply(SD_RES_SUCCESS, vid);
    });
  }

  /**
   * DEL_VDI (§5.5): unmap every index entry (which reclaims the objects nothing else references), clear the
   * name and size, and mark the VDI deleted everywhere. The inode object stays (snapshots may depend on it).
   */
  async delVdi(name: string, tag: string, snapid: number): Promise<VdiReply> {
    const found = await this.getVdiInfo(name, tag, snapid);
    if (found.result !== SD_RES_SUCCESS) return found;
    const vid = found.vid;
    const oid = vidToVdiOid(vid);
    const index = await this.readInode(vid, SD_INODE_HEADER_SIZE, 4 * MAX_DATA_OBJS);
    for (let i = 0; i < MAX_DATA_OBJS; ) {
      if (index.readUInt32LE(4 * i) === 0) {
        i++;
        continue;
      }
      let j = i;
      while (j < MAX_DATA_OBJS && j - i < 1024 && index.readUInt32LE(4 * j) !== 0) j++;
      await this.gateway.write({ oid, cowOid: 0n, copies: 0, offset: SD_INODE_HEADER_SIZE + 4 * i, flags: 0 }, Buffer.alloc(4 * (j - i)));
      i = j;
    }
    return this.namespaceMutex.run(async () => {
      const again = await this.lookup(name, tag, snapid);
      if (again.result !== SD_RES_SUCCESS || again.vid !== vid) return this.vdiReply(again.result === SD_RES_SUCCESS ? SD_RES_NO_VDI : again.result, 0);
      await this.gateway.writeRaw(oid, Buffer.alloc(256), 0);
      await this.gateway.writeRaw(oid, Buffer.alloc(8), INODE_OFF_VDI_SIZE);
      if (this.clustered && this.reclaimed.length > 0) {
        const oids = this.reclaimed.splice(0).map((o) => o.toString());
        await this.clusterOp({ t: 'objs_removed', token: '', oids });
      }
      await this.clusterOp({ t: 'vdi_del', token: '', vid });
      this.log.info({ vdi: vid.toString(16), name, tag, snapid }, 'vdi_deleted');
      return this.vdiReply(SD_RES_SUCCESS, vid);
    });
  }

  /** Cluster defaults for dog (GET_CLUSTER_DEFAULT). */
  clusterDefaults(): { copies: number; copyPolicy: number; blockSizeShift: number } {
    return {
      copies: this.config?.copies ?? 0,
      copyPolicy: this.config?.copyPolicy ?? 0,
      blockSizeShift: this.config?.blockSizeShift ?? 0,
    };
  }

  /** MAKE_FS (§10.4): default copies 3, shift 22; AUTO_VNODES is kept as given. */
  makeFs(req: { ctime: bigint; flags: number; copies: number; copyPolicy: number; blockSizeShift: number; store: string }): Promise<number> {
    const shift = req.blockSizeShift || SD_DEFAULT_BLOCK_SIZE_SHIFT;
    if (shift < SD_MIN_BLOCK_SIZE_SHIFT || shift > SD_MAX_BLOCK_SIZE_SHIFT) return Promise.resolve(SD_RES_INVALID_PARMS);
    const copies = req.copies || SD_DEFAULT_COPIES;
    if (copies > SD_MAX_COPIES) return Promise.resolve(SD_RES_INVALID_PARMS);
    const store = req.store || 'plain';
    return this.namespaceMutex.run(() =>
      this.clusterOp({
        t: 'make_fs',
        token: '',
        ctime: (req.ctime || sdTimestamp(Date.now())).toString(),
        flags: req.flags & 0xffff,
        copies,
        copyPolicy: req.copyPolicy,
        blockSizeShift: shift,
        store,
      }),
    );
  }

  shutdown(): Promise<number> {
    return this.clusterOp({ t: 'shutdown', token: '' });
  }
}
