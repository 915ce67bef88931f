// MultipathDevice: one logical unit reached through several IscsiSessions (paths), exposed as a BlockDevice.
// - Identity: every path must report the same LU NAA designator in VPD 0x83, checked at open and on reinstatement.
// - Path choice (ALUA-aware): usable paths ranked active/optimized, then active/non-optimized (then transitioning
//   as a last resort); ties broken by the PREF bit, the configured priority, then list order. 'failover' uses the
//   first best path, 'round-robin' rotates over all equally good ones. REPORT TARGET PORT GROUPS is re-read on
//   UNIT ATTENTION 2A/06 (and 2A/07, 3F/0E), on ALUA NOT READY sense, and every aluaRefreshMs.
// - Failover: an I/O that fails with a transport error (timeout, connection loss, login refused) or a path-local
//   SCSI error fails its path and is retried on the next one; callers see an error only when no path can do it
//   within noPathTimeoutMs, or when the error belongs to the command itself (bad range, reservation conflict).
// - Failed paths are probed in the background (relogin, TEST UNIT READY, identity, ALUA) and reinstated; the path
//   choice is recomputed, so the I/O fails back to the optimized path when it returns.
// - Every path event (fail, reinstate, switch, alua, failover) is emitted with a wall-clock timestamp; a failover
//   event carries the time from the first failed I/O attempt to the first success on another path.
import { EventEmitter } from 'node:events';
import { BlockError, checkRange, type BlockDevice, type BlockErrorCode, type BlockIdentity, type Extent, type WriteOptions, type ZeroOptions } from '../block/device.js';
import { componentLogger, type Logger } from '../obs/log.js';
import type { AluaState } from '../proto/scsi/pages.js';
import {
  ASC_ASYMMETRIC_ACCESS_STATE_CHANGED,
  ASC_IMPLICIT_ALUA_TRANSITION_FAILED,
  ASC_REPORTED_LUNS_DATA_CHANGED,
  IscsiTransportError,
  ScsiStatusError,
} from './errors.js';
import { IscsiSession } from './scsi.js';
import type { IscsiSessionOptions } from './session.js';

export interface PathSpec {
  /** Name in events and logs (default host:port). */
  name?: string;
  /** A session to use as is, or options to build one (multipath defaults are applied to those). */
  session: IscsiSession | IscsiSessionOptions;
  /** Lower is preferred among paths in the same ALUA state. */
  priority?: number;
}

export interface MultipathOptions {
  paths: PathSpec[];
  name?: string;
  policy?: 'failover' | 'round-robin';
  /** Per-attempt command timeout on one path. */
  ioTimeoutMs?: number;
  /** How long an I/O waits for some path to come back when all are failed. */
  noPathTimeoutMs?: number;
  /** How often failed paths are probed. */
  probeIntervalMs?: number;
  /** Periodic REPORT TARGET PORT GROUPS refresh (0: only on unit attention). */
  aluaRefreshMs?: number;
  /** Attempts per I/O across paths before giving up. */
  maxAttempts?: number;
  /** Largest single SCSI transfer (I/O is split); capped by the LU's Block Limits. */
  maxTransferBytes?: number;
  /** Keep-alive ping interval of sessions built from options (detects dead idle paths). */
  nopIntervalMs?: number;
  /**
   * What makes two paths the same LU: the NAA designator of VPD 0x83 (default), the T10 vendor designator
   * (tgtd's scsi_id), or the VPD 0x80 unit serial (tgtd's scsi_sn) — the latter two let a group mix targets whose
   * NAA schemes differ (tgtd derives its NAA from the tid).
   */
  identityBy?: 'naa' | 't10' | 'serial';
}

export type MultipathEventType = 'fail' | 'reinstate' | 'switch' | 'alua' | 'failover';

export interface MultipathEvent {
  type: MultipathEventType;
  /** Wall-clock time (Date.now()). */
  atMs: number;
  path: string;
  /** switch / failover: the path I/O moved away from. */
  from?: string;
  reason?: string;
  alua?: AluaState | 'unknown';
  /** failover: first failed attempt start → first success on the new path. */
  durationMs?: number;
  /** failover: failure detected → first success on the new path. */
  recoveryMs?: number;
}

export interface PathStatus {
  name: string;
  state: 'active' | 'failed';
  alua: AluaState | 'unknown';
  preferred: boolean;
  targetPortGroup: number | undefined;
  priority: number;
  ios: number;
  errors: number;
  lastError: string | undefined;
}

class Path {
  state: 'active' | 'failed' = 'failed';
  alua: AluaState | 'unknown' = 'unknown';
  preferred = false;
  aluaSupported = true;
  targetPortGroup: number | undefined;
  relativeTargetPort: number | undefined;
  ios = 0;
  errors = 0;
  lastError: string | undefined;
  probing = false;
  /** Taken out of service by setPathEnabled(false): not probed, not used. */
  disabled = false;
  /** Writes since the last SYNCHRONIZE CACHE on this path. */
  dirty = false;
  /** READ CAPACITY (16) as seen on this path: bytes / block size. */
  sizeBytes = 0;
  blockSize = 0;
  constructor(
    readonly name: string,
    readonly session: IscsiSession,
    readonly priority: number,
    readonly index: number,
  ) {}
}

const ALUA_RANK: Record<string, number> = {
  'active/optimized': 0,
  'active/non-optimized': 1,
  'lba-dependent': 1,
  unknown: 0,
  transitioning: 3,
};
const MAX_EVENTS = 10_000;

type Disposition = 'path' | 'alua' | 'retry' | 'busy' | 'fatal';

/** What a failed attempt means for the I/O (one table; see the file header). */
export function dispositionOf(e: unknown): { d: Disposition; code: BlockErrorCode } {
  if (e instanceof IscsiTransportError) {
    if (e.code === 'EABORTED') return { d: 'retry', code: 'EIO' };
    return { d: 'path', code: e.code === 'ESHUTDOWN' ? 'ESHUTDOWN' : 'EIO' };
  }
  if (e instanceof ScsiStatusError) {
    switch (e.kind) {
      case 'alua-transitioning':
      case 'alua-standby':
      case 'alua-unavailable':
        return { d: 'alua', code: 'EIO' };
      case 'not-ready':
      case 'hardware-error':
        return { d: 'path', code: 'EIO' };
      case 'aborted-command':
      case 'task-aborted':
      case 'unit-attention':
        return { d: 'retry', code: 'EIO' };
      case 'busy':
      case 'task-set-full':
        return { d: 'busy', code: 'EIO' };
      case 'reservation-conflict':
        return { d: 'fatal', code: 'ECONFLICT' };
      case 'illegal-request':
      case 'lba-out-of-range':
        return { d: 'fatal', code: 'EINVAL' };
      case 'invalid-opcode':
        return { d: 'fatal', code: 'ENOTSUP' };
      case 'data-protect':
        return { d: 'fatal', code: 'EROFS' };
      case 'space-allocation-failed':
        return { d: 'fatal', code: 'ENOSPC' };
      default:
        return { d: 'fatal', code: 'EIO' };
    }
  }
  return { d: 'fatal', code: 'EIO' };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface MultipathDeviceEvents {
  event: [MultipathEvent];
}

export class MultipathDevice extends EventEmitter<MultipathDeviceEvents> implements BlockDevice {
  size = 0;
  blockSize = 512;
  preferredBlockSize = 4096;
  readOnly = false;
  identity: BlockIdentity = { name: '', serial: '', naaId: 0n, description: '' };
  readonly multiConn = true;
  thin = false;
  /** The LU identity every path must report (NAA hex, T10 id or serial, per identityBy). */
  naa: string | undefined;
  readonly events: MultipathEvent[] = [];
  private readonly paths: Path[];
  private readonly log: Logger;
  private readonly o: Required<Omit<MultipathOptions, 'paths' | 'name'>> & { name: string | undefined };
  private lbprz = false;
  private maxTransfer = 1024 * 1024;
  private maxUnmapBlocks = 0;
  private maxWriteSameBlocks = 65535;
  private rr = 0;
  private selection = '';
  private closed = false;
  /** Path choices are only reported once open() has finished. */
  private opened = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private aluaTimer: NodeJS.Timeout | undefined;
  private pathWaiters: Array<() => void> = [];
  /** An I/O failure not yet followed by a success elsewhere. */
  private pendingFailover: { from: string; startedMs: number; detectedMs: number } | undefined;

  constructor(opts: MultipathOptions) {
    super();
    if (opts.paths.length === 0) throw new Error('multipath: no paths');
    this.o = {
      policy: opts.policy ?? 'failover',
      ioTimeoutMs: opts.ioTimeoutMs ?? 10_000,
      noPathTimeoutMs: opts.noPathTimeoutMs ?? 60_000,
      probeIntervalMs: opts.probeIntervalMs ?? 500,
      aluaRefreshMs: opts.aluaRefreshMs ?? 30_000,
      maxAttempts: opts.maxAttempts ?? 50,
      maxTransferBytes: opts.maxTransferBytes ?? 1024 * 1024,
      nopIntervalMs: opts.nopIntervalMs ?? 1_000,
      identityBy: opts.identityBy ?? 'naa',
      name: opts.name,
    };
    this.log = componentLogger('multipath', { dev: opts.name });
    this.paths = opts.paths.map((spec, i) => {
      const session =
        spec.session instanceof IscsiSession
          ? spec.session
          : new IscsiSession({
              reconnect: false,
              queueWhileDown: false,
              commandTimeoutMs: this.o.ioTimeoutMs,
              tmfTimeoutMs: Math.min(5_000, this.o.ioTimeoutMs),
              loginTimeoutMs: Math.min(10_000, this.o.ioTimeoutMs),
              nopIntervalMs: this.o.nopIntervalMs,
              ...spec.session,
            });
      const name = spec.name ?? session.opts.name;
      const p = new Path(name, session, spec.priority ?? 0, i);
      session.on('down', (err) => this.failPath(p, err, undefined));
      session.on('unit-attention', (ua) => this.onUnitAttention(p, ua));
      return p;
    });
  }

  // ---- open / close --------------------------------------------------------------------------------

  /** Log in on every path, check they reach one LU, read its geometry and ALUA states. */
  async open(): Promise<void> {
    try {
      await this.openPaths();
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  private async openPaths(): Promise<void> {
    // Probe every path at once; the LU identity is that of the first path (in list order) that answered, so
    // which path "wins" does not depend on timing.
    const probes = await Promise.allSettled(this.paths.map((p) => this.probePath(p)));
    for (const r of probes) {
      if (r.status === 'fulfilled') {
        this.naa = r.value;
        break;
      }
    }
    const ref = this.paths[probes.findIndex((r) => r.status === 'fulfilled')];
    if (ref) {
      this.size = ref.sizeBytes;
      this.blockSize = ref.blockSize;
    }
    const results = await Promise.allSettled(
      this.paths.map((p, i) => {
        const r = probes[i];
        return r?.status === 'fulfilled' ? this.admit(p, r.value, true) : Promise.reject(r?.reason);
      }),
    );
    results.forEach((r, i) => {
      if (r.status === 'rejected' && this.paths[i]) this.paths[i].lastError = r.reason instanceof Error ? r.reason.message : String(r.reason);
    });
    const up = this.paths.filter((_, i) => results[i]?.status === 'fulfilled');
    if (up.length === 0) {
      const why = results.map((r, i) => `${this.paths[i]?.name}: ${r.status === 'rejected' ? String(r.reason) : 'ok'}`);
      throw new BlockError('EIO', `multipath: no path could be opened (${why.join('; ')})`);
    }
    const first = up[0] as Path;
    const s = first.session;
    const cap = await s.readCapacity16();
    this.blockSize = cap.blockSize;
    this.size = cap.sizeBytes;
    this.thin = cap.thin;
    this.lbprz = cap.lbprz;
    let serial = this.naa ?? '';
    try {
      serial = await s.unitSerialNumber();
    } catch {
      // VPD 0x80 is optional
    }
    try {
      const bl = await s.blockLimits();
      if (bl.maxTransferBlocks > 0) this.maxTransfer = Math.min(this.maxTransfer, bl.maxTransferBlocks * this.blockSize);
      if (bl.optimalTransferGranularityBlocks > 0) this.preferredBlockSize = bl.optimalTransferGranularityBlocks * this.blockSize;
      this.maxUnmapBlocks = bl.maxUnmapBlocks;
      if (bl.maxWriteSameBlocks > 0n) this.maxWriteSameBlocks = Number(bl.maxWriteSameBlocks < 65535n ? bl.maxWriteSameBlocks : 65535n);
    } catch {
      // Block Limits is optional
    }
    this.maxTransfer = Math.max(this.blockSize, Math.min(this.maxTransfer, this.o.maxTransferBytes));
    this.maxTransfer -= this.maxTransfer % this.blockSize;
    try {
      this.readOnly = await s.writeProtected();
    } catch {
      this.readOnly = false;
    }
    const naaId = (await s.deviceIdentification()).naaId ?? 0n;
    const target = s.opts.targetName ?? '';
    this.identity = {
      name: this.o.name ?? target,
      serial,
      naaId,
      description: `iSCSI multipath LU ${this.naa ?? '?'} via ${this.paths.map((p) => p.name).join(', ')}`,
    };
    this.paths.forEach((p, i) => {
      if (results[i]?.status === 'rejected') this.emitEvent({ type: 'fail', path: p.name, reason: p.lastError ?? 'not opened' });
    });
    this.opened = true;
    this.recompute();
    this.probeTimer = setInterval(() => this.probeFailed(), this.o.probeIntervalMs);
    this.probeTimer.unref();
    if (this.o.aluaRefreshMs > 0) {
      this.aluaTimer = setInterval(() => void this.refreshAllAlua(), this.o.aluaRefreshMs);
      this.aluaTimer.unref();
    }
    this.log.info({ paths: this.paths.map((p) => p.name), naa: this.naa, size: this.size }, 'multipath.open');
  }

  /** Log in on a path and read what identifies the LU behind it (and its capacity). */
  private async probePath(p: Path): Promise<string> {
    const s = p.session;
    await s.connect();
    await s.testUnitReady({ timeoutMs: this.o.ioTimeoutMs });
    const id = await s.deviceIdentification();
    const by = this.o.identityBy;
    const key = by === 'naa' ? id.naa : by === 't10' ? id.t10 : await s.unitSerialNumber();
    if (key === undefined || key === '') throw new BlockError('EIO', `path ${p.name}: LU has no ${by} identity`);
    const cap = await s.readCapacity16(); // also sets the session's block size for READ/WRITE
    p.sizeBytes = cap.sizeBytes;
    p.blockSize = cap.blockSize;
    p.targetPortGroup = id.targetPortGroup;
    p.relativeTargetPort = id.relativeTargetPort;
    return key;
  }

  /** Check a probed path against the LU identity and geometry, read its ALUA state, and put it in service. */
  private async admit(p: Path, key: string, initial: boolean): Promise<void> {
    if (key !== this.naa) {
      throw new BlockError('EIO', `path ${p.name}: LU ${this.o.identityBy} ${key} differs from ${this.naa ?? '?'} (a different LU)`);
    }
    if (this.size !== 0 && (p.sizeBytes !== this.size || p.blockSize !== this.blockSize)) {
      throw new BlockError('EIO', `path ${p.name}: capacity ${p.sizeBytes}/${p.blockSize} differs from ${this.size}/${this.blockSize}`);
    }
    await this.refreshAlua(p);
    if (this.closed || p.disabled) return;
    p.state = 'active';
    p.lastError = undefined;
    if (!initial) this.emitEvent({ type: 'reinstate', path: p.name, alua: p.alua });
    this.recompute();
    this.wakePathWaiters();
  }

  /** Probe a failed path and reinstate it. */
  private async bringUp(p: Path): Promise<void> {
    await this.admit(p, await this.probePath(p), false);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    if (this.aluaTimer) clearInterval(this.aluaTimer);
    this.wakePathWaiters();
    await Promise.all(this.paths.map((p) => p.session.close().catch(() => undefined)));
  }

  // ---- path state ----------------------------------------------------------------------------------

  /** Current state of every path. */
  status(): PathStatus[] {
    return this.paths.map((p) => ({
      name: p.name,
      state: p.state,
      alua: p.alua,
      preferred: p.preferred,
      targetPortGroup: p.targetPortGroup,
      priority: p.priority,
      ios: p.ios,
      errors: p.errors,
      lastError: p.lastError,
    }));
  }

  /**
   * Take a path out of service by hand (like `multipathd fail path`; it is not probed while disabled), or give
   * it back (it is probed and reinstated as usual).
   */
  setPathEnabled(name: string, enabled: boolean): void {
    const p = this.paths.find((x) => x.name === name);
    if (!p) throw new Error(`multipath: no path named ${name}`);
    p.disabled = !enabled;
    if (!enabled) this.failPath(p, new Error('disabled by the operator'), undefined);
  }

  /** Failover events recorded so far. */
  failovers(): MultipathEvent[] {
    return this.events.filter((e) => e.type === 'failover');
  }

  /** The sessions (for tests and drills that inject faults on one path). */
  sessions(): IscsiSession[] {
    return this.paths.map((p) => p.session);
  }

  private emitEvent(e: Omit<MultipathEvent, 'atMs'>): void {
    const ev: MultipathEvent = { atMs: Date.now(), ...e };
    this.events.push(ev);
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
    this.log.info(ev, `multipath.${e.type}`);
    this.emit('event', ev);
  }

  private failPath(p: Path, err: unknown, attemptStartedMs: number | undefined): void {
    const reason = err instanceof Error ? err.message : String(err);
    p.lastError = reason;
    if (attemptStartedMs !== undefined && !this.pendingFailover) {
      this.pendingFailover = { from: p.name, startedMs: attemptStartedMs, detectedMs: Date.now() };
    }
    if (p.state === 'failed' || this.closed) return;
    p.state = 'failed';
    p.errors++;
    this.emitEvent({ type: 'fail', path: p.name, reason });
    this.recompute();
  }

  private usable(p: Path): boolean {
    return p.state === 'active' && ALUA_RANK[p.alua] !== undefined;
  }

  /** The paths I/O goes to now, best first (all equally good ones for round-robin). */
  private bestGroup(): Path[] {
    const cands = this.paths.filter((p) => this.usable(p));
    if (cands.length === 0) return [];
    const key = (p: Path): number[] => [ALUA_RANK[p.alua] ?? 9, p.preferred ? 0 : 1, p.priority];
    const cmp = (a: number[], b: number[]): number => {
      for (let i = 0; i < a.length; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
      return 0;
    };
    cands.sort((a, b) => cmp(key(a), key(b)) || a.index - b.index);
    const best = key(cands[0] as Path);
    const group = cands.filter((p) => cmp(key(p), best) === 0);
    return this.o.policy === 'failover' ? group.slice(0, 1) : group;
  }

  /** Recompute the selection; a change is a 'switch' event (failover or failback). */
  private recompute(): void {
    const group = this.bestGroup();
    const sel = group.map((p) => p.name).join(',');
    if (sel !== this.selection && this.opened) {
      if (sel !== '') this.emitEvent({ type: 'switch', path: sel, from: this.selection === '' ? undefined : this.selection });
      this.selection = sel;
    }
  }

  private choose(): Path | undefined {
    const group = this.bestGroup();
    if (group.length === 0) return undefined;
    this.rr = (this.rr + 1) % group.length;
    return group[this.rr % group.length];
  }

  private wakePathWaiters(): void {
    for (const w of this.pathWaiters.splice(0)) w();
  }

  /** Wait until some path is reinstated, or the deadline passes (false). */
  private waitForPath(deadlineMs: number): Promise<boolean> {
    const left = deadlineMs - Date.now();
    if (left <= 0 || this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pathWaiters = this.pathWaiters.filter((w) => w !== wake);
        resolve(false);
      }, left);
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.pathWaiters.push(wake);
    });
  }

  private probeFailed(): void {
    if (this.closed) return;
    for (const p of this.paths) {
      if (p.state !== 'failed' || p.probing || p.disabled || p.session.state === 'closed') continue;
      p.probing = true;
      this.bringUp(p)
        .catch((e: unknown) => {
          p.lastError = e instanceof Error ? e.message : String(e);
          this.log.debug({ path: p.name, err: p.lastError }, 'multipath.probe.failed');
        })
        .finally(() => (p.probing = false));
    }
  }

  // ---- ALUA ----------------------------------------------------------------------------------------

  /** Read REPORT TARGET PORT GROUPS on a path; a target without ALUA counts as active/optimized. */
  private async refreshAlua(p: Path): Promise<void> {
    if (!p.aluaSupported) {
      p.alua = 'active/optimized';
      return;
    }
    let groups;
    try {
      groups = await p.session.reportTargetPortGroups({ timeoutMs: this.o.ioTimeoutMs });
    } catch (e) {
      if (e instanceof ScsiStatusError && (e.kind === 'invalid-opcode' || e.kind === 'illegal-request')) {
        p.aluaSupported = false;
        p.alua = 'active/optimized';
        return;
      }
      throw e;
    }
    const mine =
      groups.find((g) => p.relativeTargetPort !== undefined && g.relativeTargetPorts.includes(p.relativeTargetPort)) ??
      groups.find((g) => g.id === p.targetPortGroup) ??
      (groups.length === 1 ? groups[0] : undefined);
    p.preferred = mine?.preferred ?? false;
    this.setAluaState(p, mine ? mine.state : 'active/optimized', 'REPORT TARGET PORT GROUPS');
  }

  /** Record a path's ALUA state; a change (after the first reading) is an 'alua' event. */
  private setAluaState(p: Path, state: AluaState, source: string): void {
    const before = p.alua;
    p.alua = state;
    if (before !== state && before !== 'unknown') {
      this.emitEvent({ type: 'alua', path: p.name, alua: state, reason: `${source}; was ${before}` });
    }
    this.recompute();
  }

  private async refreshAllAlua(): Promise<void> {
    for (const p of this.paths) {
      if (p.state !== 'active' || this.closed) continue;
      try {
        await this.refreshAlua(p);
      } catch (e) {
        this.failPath(p, e, undefined);
      }
    }
  }

  private onUnitAttention(_p: Path, ua: ScsiStatusError): void {
    const ascq = ua.sense?.ascq;
    if (ascq === ASC_ASYMMETRIC_ACCESS_STATE_CHANGED || ascq === ASC_IMPLICIT_ALUA_TRANSITION_FAILED || ascq === ASC_REPORTED_LUNS_DATA_CHANGED) {
      // A state change is usually target-wide: re-read every path, not just the one that reported it.
      void this.refreshAllAlua();
    }
  }

  // ---- I/O -------------------------------------------------------------------------------------------

  /** Run one SCSI operation with path selection, failover and retries. */
  private async io<T>(what: string, fn: (s: IscsiSession) => Promise<T>): Promise<T> {
    if (this.closed) throw new BlockError('ESHUTDOWN', 'multipath device closed');
    let attempts = 0;
    let lastErr: unknown;
    let noPathDeadline: number | undefined;
    for (;;) {
      const p = this.choose();
      if (!p) {
        noPathDeadline ??= Date.now() + this.o.noPathTimeoutMs;
        if (this.closed) throw new BlockError('ESHUTDOWN', 'multipath device closed');
        if (this.paths.some((x) => x.state === 'active')) {
          // Paths are up but none is in a usable ALUA state (standby, transitioning...): re-read the groups.
          await this.refreshAllAlua();
          if (this.choose()) continue;
          if (Date.now() >= noPathDeadline) {
            throw new BlockError('EIO', `${what}: no path in an active ALUA state within ${this.o.noPathTimeoutMs} ms`, { cause: lastErr });
          }
          await this.waitForPath(Math.min(noPathDeadline, Date.now() + this.o.probeIntervalMs));
          continue;
        }
        if (!(await this.waitForPath(noPathDeadline))) {
          throw new BlockError('EIO', `${what}: no usable path within ${this.o.noPathTimeoutMs} ms (last error: ${String(lastErr)})`, { cause: lastErr });
        }
        continue;
      }
      noPathDeadline = undefined;
      const started = Date.now();
      try {
        const r = await fn(p.session);
        p.ios++;
        this.noteSuccess(p);
        return r;
      } catch (e) {
        lastErr = e;
        if (this.closed) throw new BlockError('ESHUTDOWN', 'multipath device closed', { cause: e });
        const { d, code } = dispositionOf(e);
        attempts++;
        this.log.debug({ path: p.name, op: what, err: String(e), d, attempts }, 'multipath.io.error');
        if (d === 'fatal' || attempts >= this.o.maxAttempts) {
          throw new BlockError(d === 'fatal' ? code : 'EIO', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
        if (d === 'path') this.failPath(p, e, started);
        else if (d === 'alua') {
          const sensed: Record<string, AluaState> = { 'alua-standby': 'standby', 'alua-unavailable': 'unavailable', 'alua-transitioning': 'transitioning' };
          const st = e instanceof ScsiStatusError ? sensed[e.kind] : undefined;
          if (st) this.setAluaState(p, st, 'NOT READY sense');
          // RTPG reports every group: a state change here usually means another group became active.
          await this.refreshAllAlua();
          if (p.alua === 'transitioning') await sleep(100);
        } else if (d === 'busy') await sleep(Math.min(200, 10 * attempts));
      }
    }
  }

  private noteSuccess(p: Path): void {
    const f = this.pendingFailover;
    if (f && f.from !== p.name) {
      const now = Date.now();
      this.pendingFailover = undefined;
      this.emitEvent({ type: 'failover', path: p.name, from: f.from, durationMs: now - f.startedMs, recoveryMs: now - f.detectedMs });
    } else if (f && p.state === 'active') {
      // The failed path came back before any other path served I/O: nothing was failed over.
      this.pendingFailover = undefined;
    }
  }

  /** Split [offset, offset+length) into block-aligned transfers of at most maxTransfer bytes. */
  private chunks(offset: number, length: number): Array<{ off: number; len: number }> {
    const out: Array<{ off: number; len: number }> = [];
    for (let off = offset; off < offset + length; off += this.maxTransfer) out.push({ off, len: Math.min(this.maxTransfer, offset + length - off) });
    return out;
  }

  private requireAligned(offset: number, length: number, what: string): void {
    if (offset % this.blockSize !== 0 || length % this.blockSize !== 0) {
      throw new BlockError('EINVAL', `${what} ${offset}+${length} is not aligned to ${this.blockSize}-byte blocks`);
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    if (length === 0) return Buffer.alloc(0);
    const bs = this.blockSize;
    const start = offset - (offset % bs);
    const end = Math.ceil((offset + length) / bs) * bs;
    const parts = await Promise.all(
      this.chunks(start, end - start).map(({ off, len }) =>
        this.io('read', async (s) => {
          const data = await s.read(BigInt(off / bs), len / bs);
          if (data.length !== len) throw new IscsiTransportError('EPROTO', `short read: ${data.length} of ${len} bytes`);
          return data;
        }),
      ),
    );
    const all = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    return start === offset && end === offset + length ? all : all.subarray(offset - start, offset - start + length);
  }

  async write(offset: number, data: Buffer, opts: WriteOptions = {}): Promise<void> {
    checkRange(this, offset, data.length);
    if (this.readOnly) throw new BlockError('EROFS', 'multipath LU is write-protected');
    this.requireAligned(offset, data.length, 'write');
    const bs = this.blockSize;
    await Promise.all(
      this.chunks(offset, data.length).map(({ off, len }) =>
        this.io('write', async (s) => {
          await s.write(BigInt(off / bs), data.subarray(off - offset, off - offset + len), { fua: opts.fua });
          if (!opts.fua) this.pathOf(s).dirty = true;
        }),
      ),
    );
  }

  private pathOf(s: IscsiSession): Path {
    return this.paths.find((p) => p.session === s) as Path;
  }

  /** SYNCHRONIZE CACHE on every live path that took writes since its last flush, and at least one path. */
  async flush(): Promise<void> {
    const dirty = this.paths.filter((p) => p.dirty && p.state === 'active');
    await Promise.all(
      dirty.map(async (p) => {
        try {
          p.dirty = false;
          await p.session.synchronizeCache();
        } catch (e) {
          p.dirty = true;
          const { d } = dispositionOf(e);
          if (d === 'fatal') throw new BlockError(dispositionOf(e).code, `flush: ${String(e)}`, { cause: e });
          this.failPath(p, e, undefined);
        }
      }),
    );
    await this.io('flush', async (s) => {
      await s.synchronizeCache();
      this.pathOf(s).dirty = false;
    });
  }

  async discard(offset: number, length: number, opts: WriteOptions = {}): Promise<void> {
    checkRange(this, offset, length);
    this.requireAligned(offset, length, 'discard');
    if (!this.thin || !this.lbprz) {
      await this.writeZeroes(offset, length, { fua: opts.fua });
      return;
    }
    const bs = this.blockSize;
    const maxBlocks = this.maxUnmapBlocks > 0 ? Math.min(this.maxUnmapBlocks, 0x7fffffff) : 65536;
    for (let lba = offset / bs; lba < (offset + length) / bs; lba += maxBlocks) {
      const n = Math.min(maxBlocks, (offset + length) / bs - lba);
      await this.io('discard', (s) => s.unmap([{ lba, blocks: n }]));
    }
    if (opts.fua) await this.flush();
  }

  async writeZeroes(offset: number, length: number, opts: ZeroOptions = {}): Promise<void> {
    checkRange(this, offset, length);
    this.requireAligned(offset, length, 'write-zeroes');
    if (this.readOnly) throw new BlockError('EROFS', 'multipath LU is write-protected');
    const bs = this.blockSize;
    const step = Math.max(1, this.maxWriteSameBlocks);
    try {
      for (let lba = offset / bs; lba < (offset + length) / bs; lba += step) {
        const n = Math.min(step, (offset + length) / bs - lba);
        await this.io('write-zeroes', (s) => s.writeSame(lba, n, { unmap: opts.mayTrim === true && this.thin }));
      }
    } catch (e) {
      if (!(e instanceof BlockError) || e.code !== 'ENOTSUP' || opts.fastOnly) throw e;
      for (const { off, len } of this.chunks(offset, length)) await this.write(off, Buffer.alloc(len));
    }
    if (opts.fua) await this.flush();
  }

  /** Allocation map from GET LBA STATUS on a thin LU; a thick LU is one allocated extent. */
  async extents(offset: number, length: number): Promise<Extent[]> {
    checkRange(this, offset, length);
    if (length === 0) return [];
    if (!this.thin) return [{ offset, length, allocated: true, zero: false }];
    const bs = this.blockSize;
    const out: Extent[] = [];
    let pos = offset;
    try {
      while (pos < offset + length) {
        const lba = Math.floor(pos / bs);
        const descs = await this.io('extents', (s) => s.getLbaStatus(lba));
        const d = descs.find((x) => x.lba <= BigInt(lba) && BigInt(lba) < x.lba + BigInt(x.blocks));
        if (!d || d.blocks === 0) break;
        for (const x of descs) {
          const xs = Math.max(Number(x.lba) * bs, pos);
          const xe = Math.min((Number(x.lba) + x.blocks) * bs, offset + length);
          if (xe <= xs || xs !== pos) continue;
          const hole = x.provisioningStatus !== 0;
          out.push({ offset: xs, length: xe - xs, allocated: !hole, zero: hole && this.lbprz });
          pos = xe;
        }
        if (pos < (Number(d.lba) + d.blocks) * bs && pos < offset + length) break;
      }
    } catch (e) {
      if (!(e instanceof BlockError) || (e.code !== 'ENOTSUP' && e.code !== 'EINVAL')) throw e;
    }
    if (pos < offset + length) out.push({ offset: pos, length: offset + length - pos, allocated: true, zero: false });
    return mergeExtents(out);
  }
}

/** Merge adjacent extents of the same kind. */
function mergeExtents(xs: Extent[]): Extent[] {
  const out: Extent[] = [];
  for (const x of xs) {
    const last = out[out.length - 1];
    if (last && last.offset + last.length === x.offset && last.allocated === x.allocated && last.zero === x.zero) last.length += x.length;
    else out.push({ ...x });
  }
  return out;
}
