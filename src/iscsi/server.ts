// The iSCSI front end: a TCP listener, the table of targets (IQN → LUNs on BlockDevices), the session registry
// (TSIH allocation, session reinstatement by initiator name + ISID, resets across sessions) and SendTargets.
// Implements the target process's Frontend shape: start() resolves to the bound "host:port", stop() ends all.
import net from 'node:net';
import type { BlockDevice } from '../block/device.js';
import type { Frontend } from '../block/export-table.js';
import { componentLogger, type Logger } from '../obs/log.js';
import type { TextPairs } from '../proto/iscsi/text.js';
import * as S from '../proto/scsi/constants.js';
import * as I from '../proto/iscsi/constants.js';
import type { ChapAccount } from './chap.js';
import type { IscsiServerOptions, IscsiTargetConfig } from './config.js';
import { Connection } from './connection.js';
import { acceptWithUserBuffers } from '../util/user-buffers.js';
import { DEFAULT_PREFERENCES, type TargetPreferences } from './params.js';
import { LogicalUnit } from './scsi/lu.js';
import { LocalRangeLock, type RangeLock } from './scsi/rangelock.js';
import type { CopyTarget } from './scsi/xcopy.js';
import { LocalReservationStore, type ReservationStore } from './scsi/pr.js';
import { Session, TargetRuntime, type LoginIdentity, type TargetRegistry } from './session.js';
import { ASC_ASYMMETRIC_ACCESS_STATE_CHANGED } from './scsi/alua.js';
import { systemClock, type Clock } from '../util/clock.js';

const DEFAULT_QUEUE_DEPTH = 128;
const DEFAULT_MAX_CONNECTIONS = 1024;

/** Format host:port, bracketing IPv6 literals. */
export function formatPortal(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class IscsiServer implements TargetRegistry, Frontend {
  readonly name = 'iscsi';
  readonly preferences: TargetPreferences;
  readonly discoveryChap: ChapAccount[];
  readonly nopInIntervalMs: number;
  readonly nopInTimeoutMs: number;
  readonly portalGroupTag: number;
  readonly clock: Clock;
  private readonly log: Logger;
  private readonly targets = new Map<string, TargetRuntime>();
  private readonly sessions = new Map<number, Session>();
  private readonly conns = new Set<Connection>();
  private readonly locks = new WeakMap<BlockDevice, RangeLock>();
  private readonly reservations = new WeakMap<BlockDevice, ReservationStore>();
  private server: net.Server | undefined;
  private boundHost = '';
  private boundPort = 0;
  private nextTsih = 1;
  private nextConnId = 1;

  constructor(private readonly opts: IscsiServerOptions) {
    this.preferences = { ...DEFAULT_PREFERENCES, ...opts.preferences };
    this.discoveryChap = opts.discoveryChap ?? [];
    this.nopInIntervalMs = opts.nopInIntervalMs ?? 10_000;
    this.nopInTimeoutMs = opts.nopInTimeoutMs ?? 30_000;
    this.clock = opts.clock ?? systemClock;
    this.log = componentLogger('iscsi');
    this.portalGroupTag = opts.alua?.group ?? 1;
    for (const t of opts.targets) this.addTarget(t);
    opts.alua?.on('change', () => this.aluaChanged());
  }

  /** Add (or replace) a target at run time. */
  addTarget(cfg: IscsiTargetConfig): void {
    const lus = new Map<number, LogicalUnit>();
    for (const { lun, device, removable } of cfg.luns) {
      let lock = this.locks.get(device);
      if (!lock) {
        lock = this.opts.rangeLockFor?.(device) ?? new LocalRangeLock();
        this.locks.set(device, lock);
      }
      let res = this.reservations.get(device);
      if (!res) {
        res = this.opts.reservationsFor?.(device) ?? new LocalReservationStore();
        this.reservations.set(device, res);
      }
      lus.set(
        lun,
        new LogicalUnit(device, {
          lock,
          reservations: res,
          targetName: cfg.name,
          removable: removable ?? false,
          resolveCopyTarget: (d) => this.copyTarget(d),
          ...(this.opts.alua ? { alua: this.opts.alua } : {}),
        }),
      );
    }
    this.targets.set(cfg.name, new TargetRuntime(cfg, lus));
  }

  /** EXTENDED COPY targets: any LU of any target on this server, by its designator. */
  private copyTarget(designator: Buffer): CopyTarget | undefined {
    for (const t of this.targets.values()) {
      for (const lu of t.lus.values()) if (lu.answersToDesignator(designator)) return lu.copyTarget();
    }
    return undefined;
  }

  /** Listen; resolves to the bound address as "host:port". */
  start(): Promise<string> {
    return new Promise((resolve, reject) => {
      // Connections are re-created on their handle with `onread` (see acceptWithUserBuffers): paused until then.
      const srv = net.createServer({ pauseOnConnect: true }, (sock) => this.accept(sock));
      srv.once('error', reject);
      srv.listen({ host: this.opts.host, port: this.opts.port }, () => {
        srv.off('error', reject);
        srv.on('error', (err) => this.log.error({ err: err.message }, 'iscsi.server.error'));
        const a = srv.address();
        if (a && typeof a === 'object') {
          this.boundHost = a.address;
          this.boundPort = a.port;
        }
        this.server = srv;
        this.opts.alua?.start();
        const addr = formatPortal(this.boundHost, this.boundPort);
        this.log.info({ addr, targets: [...this.targets.keys()] }, 'iscsi.listen');
        resolve(addr);
      });
    });
  }

  /** Stop accepting, let commands already executing answer (bounded wait), then close every connection. */
  async stop(drainMs = 5000): Promise<void> {
    this.opts.alua?.stop();
    const srv = this.server;
    this.server = undefined;
    const closed = srv ? new Promise<void>((r) => srv.close(() => r())) : Promise.resolve();
    await Promise.all([...this.conns].map((c) => c.drain(drainMs)));
    for (const c of [...this.conns]) c.close('server stop');
    await closed;
  }

  private accept(sock: net.Socket): void {
    if (this.conns.size >= (this.opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS)) {
      this.log.warn({ remote: sock.remoteAddress }, 'iscsi.conn.limit');
      sock.destroy();
      return;
    }
    const id = this.nextConnId++;
    const log = this.log.child({ conn: id, remote: `${sock.remoteAddress}:${sock.remotePort}` });
    // Reads go into buffers the connection chooses (a reused one, or a Data-Out's place in its task buffer).
    const { sock: s, conn: c } = acceptWithUserBuffers(sock, (s2) => new Connection(s2, this, log, id));
    this.conns.add(c);
    s.once('close', () => this.conns.delete(c));
  }

  findTarget(name: string): TargetRuntime | undefined {
    return this.targets.get(name);
  }

  completeLogin(conn: Connection, who: LoginIdentity): Session | number {
    if (who.tsih !== 0) {
      // Adding a connection to an existing session: with MaxConnections=1 only connection reinstatement fits.
      const s = this.sessions.get(who.tsih);
      if (!s || s.initiatorName !== who.initiatorName || s.isid !== who.isid) return I.ISCSI_LOGIN_STATUS_NO_SESSION;
      const old = s.conn;
      if (old && old !== conn) old.close('connection reinstatement');
      s.conn = conn;
      return s;
    }
    // Session reinstatement (RFC 7143 §6.3.5): same initiator name + ISID on the same target replaces the old one.
    for (const s of [...this.sessions.values()]) {
      if (s.initiatorName === who.initiatorName && s.isid === who.isid && s.target === who.target && s.discovery === who.discovery) {
        this.log.info({ tsih: s.tsih, nexus: s.nexus }, 'iscsi.session.reinstate');
        this.endSession(s);
      }
    }
    const tsih = this.allocTsih();
    if (tsih === 0) return I.ISCSI_LOGIN_STATUS_ISID_ERROR;
    const s = new Session(tsih, who.initiatorName, who.isid, who.target, who.discovery, who.cmdSN, this.opts.queueDepth ?? DEFAULT_QUEUE_DEPTH);
    s.conn = conn;
    this.sessions.set(tsih, s);
    return s;
  }

  private allocTsih(): number {
    for (let i = 0; i < 65535; i++) {
      const t = this.nextTsih;
      this.nextTsih = this.nextTsih >= 65535 ? 1 : this.nextTsih + 1;
      if (!this.sessions.has(t)) return t;
    }
    return 0;
  }

  private endSession(s: Session): void {
    this.sessions.delete(s.tsih);
    const c = s.conn;
    s.conn = undefined;
    if (c && !c.isClosed) c.close('session ended');
    for (const lu of s.target?.lus.values() ?? []) lu.nexusLost(s.nexus);
  }

  async releaseNexus(session: Session): Promise<void> {
    await Promise.all([...(session.target?.lus.values() ?? [])].map((lu) => lu.releaseNexus(session.nexus)));
  }

  connectionClosed(session: Session, conn: Connection): void {
    if (session.conn !== conn) return;
    // ERL 0: the session does not outlive its only connection.
    if (this.sessions.get(session.tsih) === session) this.endSession(session);
  }

  /** Sessions logged in to the same target (for resets and unit attentions). */
  private sessionsOf(t: TargetRuntime | undefined): Session[] {
    return [...this.sessions.values()].filter((s) => s.target === t && !s.discovery);
  }

  async lunReset(session: Session, lun: number): Promise<void> {
    const lu = session.target?.lus.get(lun);
    if (!lu) return;
    const others = this.sessionsOf(session.target);
    await Promise.all(others.filter((s) => s !== session).map((s) => s.conn?.abortLun(lun)));
    lu.reset();
    lu.raiseUnitAttention(S.ASC_BUS_DEVICE_RESET_FUNCTION_OCCURRED, others.map((s) => s.nexus));
  }

  async targetReset(session: Session, cold: boolean): Promise<void> {
    const all = this.sessionsOf(session.target);
    const others = all.filter((s) => s !== session);
    const lus = [...(session.target?.lus ?? new Map<number, LogicalUnit>()).entries()];
    await Promise.all(others.map((s) => Promise.all(lus.map(([n]) => s.conn?.abortLun(n)))));
    for (const [, lu] of lus) {
      lu.reset();
      lu.raiseUnitAttention(S.ASC_POWER_ON_RESET, all.map((s) => s.nexus));
    }
    if (cold) for (const s of others) s.conn?.close('target cold reset');
  }

  /** ALUA states changed: UNIT ATTENTION 2A/06 on every LU for every logged-in nexus. */
  private aluaChanged(): void {
    for (const s of this.sessions.values()) {
      if (s.discovery) continue;
      for (const lu of s.target?.lus.values() ?? []) lu.raiseUnitAttention(ASC_ASYMMETRIC_ACCESS_STATE_CHANGED, [s.nexus]);
    }
  }

  sendTargets(session: Session, value: string, localAddress: string | undefined, localPort: number | undefined): TextPairs {
    const out: TextPairs = [];
    let list: TargetRuntime[];
    if (session.discovery) {
      if (value === 'All') list = [...this.targets.values()];
      else list = [this.targets.get(value)].filter((t): t is TargetRuntime => t !== undefined);
    } else {
      list = session.target && (value === '' || value === session.target.config.name) ? [session.target] : [];
    }
    for (const t of list) {
      if (!t.admits(session.initiatorName)) continue;
      out.push(['TargetName', t.config.name]);
      for (const p of this.portalsFor(t, localAddress, localPort)) out.push(['TargetAddress', p.includes(',') ? p : `${p},${this.portalGroupTag}`]);
    }
    return out;
  }

  private portalsFor(t: TargetRuntime, localAddress: string | undefined, localPort: number | undefined): string[] {
    if (t.config.portals && t.config.portals.length > 0) return t.config.portals;
    if (this.opts.advertise && this.opts.advertise.length > 0) return this.opts.advertise;
    let host = this.boundHost;
    if (host === '0.0.0.0' || host === '::') host = localAddress?.replace(/^::ffff:/, '') ?? host;
    return [formatPortal(host, localPort ?? this.boundPort)];
  }
}
