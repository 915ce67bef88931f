// IscsiSessionCore: an iSCSI initiator session over one TCP connection (RFC 7143, ErrorRecoveryLevel 0). Login with
// CHAP and operational negotiation, SendTargets, SCSI commands tagged by ITT with Data-In / immediate data /
// unsolicited Data-Out / R2T, the CmdSN window (commands wait while MaxCmdSN is reached), NOP-Out keep-alive
// pings and answers to target NOP-Ins, ABORT TASK and LUN RESET, logout, per-command timeouts (a timed-out
// command is aborted; if the abort does not answer, the connection is dropped), and reconnect with the same ISID
// (the target reinstates the session). Commands outstanding when a connection dies fail with ECONNRESET; they are
// never re-sent silently (the caller or MultipathDevice decides). SCSI helpers for the commands drills need are on
// top (scsi.ts builds on execute()).
import { EventEmitter } from 'node:events';
import { componentLogger, type Logger } from '../obs/log.js';
import * as I from '../proto/iscsi/constants.js';
import { lunField, type LoginRequest, type LoginResponse, type TargetPdu } from '../proto/iscsi/pdu.js';
import { encodeText, parseText, type TextPairs } from '../proto/iscsi/text.js';
import * as S from '../proto/scsi/constants.js';
import { InitiatorConn, type OutPdus } from './conn.js';
import { IscsiTransportError, ScsiStatusError, parseTargetAddress, senseFromResponseData, type TransportErrorCode } from './errors.js';
import { LoginError, LoginNegotiator, randomIsid, type ChapCredentials, type LoginStep, type NegotiatedParams } from './login.js';

export const DEFAULT_INITIATOR_NAME = 'iqn.2026-11.org.sheepfold:initiator';

export interface IscsiSessionOptions {
  host: string;
  port?: number;
  /** Target IQN; omit for a Discovery session (SendTargets only). */
  targetName?: string;
  initiatorName?: string;
  /** 48-bit ISID; the same ISID on reconnect makes the target reinstate (replace) the old session. */
  isid?: number;
  lun?: number;
  chap?: ChapCredentials;
  headerDigest?: boolean;
  dataDigest?: boolean;
  maxRecvDataSegmentLength?: number;
  maxBurstLength?: number;
  firstBurstLength?: number;
  initialR2T?: boolean;
  immediateData?: boolean;
  /** TCP connect + login must finish within this time. */
  loginTimeoutMs?: number;
  /** Default per-command timeout (time in the queue included). */
  commandTimeoutMs?: number;
  /** Timeout of ABORT TASK / LUN RESET / logout / NOP pings. */
  tmfTimeoutMs?: number;
  /** Ping the target after this much silence (0: never). */
  nopIntervalMs?: number;
  /** Reconnect automatically after the connection is lost. */
  reconnect?: boolean;
  reconnectDelayMs?: number;
  reconnectMaxDelayMs?: number;
  /** While reconnecting, new commands wait (true) or fail at once with ENOTCONN (false; multipath wants this). */
  queueWhileDown?: boolean;
  /** Commands outstanding at once (locally; the target's CmdSN window also applies). */
  queueDepth?: number;
  /** Retries of a command that got UNIT ATTENTION in the SCSI helpers. */
  unitAttentionRetries?: number;
  /** Name for logs and events. */
  name?: string;
}

export type SessionState = 'idle' | 'connecting' | 'up' | 'down' | 'closed';

/** Outcome of one SCSI command at the transport level (any status). */
export interface ScsiResult {
  status: number;
  /** Data-In actually received (EDTL minus underflow). */
  data: Buffer;
  /** Raw sense data, if the target sent any. */
  sense: Buffer | undefined;
  residual: number;
  underflow: boolean;
  overflow: boolean;
}

export interface ExecuteOptions {
  /** Data-Out (write) payload; EDTL is its length. */
  dataOut?: Buffer;
  /** Data-In allocation (read) length. */
  dataInLength?: number;
  timeoutMs?: number;
  lun?: number;
  /** Task attribute (0 untagged, 1 simple, 2 ordered, 3 head of queue, 4 ACA); default simple. */
  attr?: number;
}

type TaskKind = 'scsi' | 'nop' | 'tmf' | 'text' | 'logout';

interface Task {
  kind: TaskKind;
  itt: number;
  cmdSN: number;
  immediate: boolean;
  sent: boolean;
  conn: InitiatorConn | undefined;
  /** Timed out: an ABORT TASK is on its way; the task fails with ETIMEDOUT once that ends. */
  timedOut: boolean;
  timer: NodeJS.Timeout | undefined;
  lun: number;
  // scsi
  cdb: Buffer;
  attr: number;
  dataOut: Buffer | undefined;
  dataIn: Buffer | undefined;
  dataInBytes: number;
  // tmf
  func: number;
  refItt: number;
  refCmdSN: number;
  // text
  textOut: Buffer;
  textIn: Buffer[];
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** The options the caller actually set (an explicit undefined keeps the default). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Serial number arithmetic (RFC 1982, 32 bits). */
export const snLt = (a: number, b: number): boolean => a !== b && ((b - a) >>> 0) < 0x80000000;
export const snLe = (a: number, b: number): boolean => a === b || snLt(a, b);

export interface SessionEvents {
  up: [{ tsih: number; reconnect: boolean }];
  down: [IscsiTransportError];
  closed: [];
  'unit-attention': [ScsiStatusError];
  async: [{ event: number; sense: Buffer | undefined; parameter1: number; parameter2: number; parameter3: number }];
}

const TMF_FUNC_NAMES: Record<number, string> = {
  [I.ISCSI_TM_FUNC_ABORT_TASK]: 'ABORT TASK',
  [I.ISCSI_TM_FUNC_ABORT_TASK_SET]: 'ABORT TASK SET',
  [I.ISCSI_TM_FUNC_LOGICAL_UNIT_RESET]: 'LOGICAL UNIT RESET',
  [I.ISCSI_TM_FUNC_TARGET_WARM_RESET]: 'TARGET WARM RESET',
};

/** The transport half of IscsiSession (scsi.ts adds the SCSI command helpers on top). */
export class IscsiSessionCore extends EventEmitter<SessionEvents> {
  readonly opts: Required<Omit<IscsiSessionOptions, 'targetName' | 'chap' | 'isid'>> & {
    targetName: string | undefined;
    chap: ChapCredentials | undefined;
  };
  readonly isid: number;
  readonly log: Logger;
  private stateValue: SessionState = 'idle';
  private conn: InitiatorConn | undefined;
  private params: NegotiatedParams | undefined;
  private tsihValue = 0;
  private cmdSN = 1;
  private expCmdSN = 1;
  private maxCmdSN = 1;
  private expStatSN = 0;
  private nextItt = 1;
  private readonly tasks = new Map<number, Task>();
  /** Tasks waiting for a connection, the CmdSN window or the queue depth, in order. */
  private readonly queue: Task[] = [];
  private connecting: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelay: number;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private pingOutstanding = false;
  private loggingOut = false;
  private loginCount = 0;
  /** Target NOP-In pings answered (all connections). */
  nopInsAnswered = 0;
  /** Last error that took the session down (for ENOTCONN messages). */
  lastError: IscsiTransportError | undefined;

  constructor(opts: IscsiSessionOptions) {
    super();
    this.opts = {
      port: 3260,
      initiatorName: DEFAULT_INITIATOR_NAME,
      lun: 0,
      headerDigest: false,
      dataDigest: false,
      maxRecvDataSegmentLength: 262144,
      maxBurstLength: 1048576,
      firstBurstLength: 262144,
      initialR2T: false,
      immediateData: true,
      loginTimeoutMs: 10_000,
      commandTimeoutMs: 30_000,
      tmfTimeoutMs: 10_000,
      nopIntervalMs: 5_000,
      reconnect: true,
      reconnectDelayMs: 200,
      reconnectMaxDelayMs: 2_000,
      queueWhileDown: true,
      queueDepth: 64,
      unitAttentionRetries: 5,
      name: `${opts.host}:${opts.port ?? 3260}`,
      ...definedOnly(opts),
      host: opts.host,
      targetName: opts.targetName,
      chap: opts.chap,
    };
    this.isid = opts.isid ?? randomIsid();
    this.reconnectDelay = this.opts.reconnectDelayMs;
    this.log = componentLogger('initiator', { path: this.opts.name, target: this.opts.targetName ?? 'discovery' });
  }

  get state(): SessionState {
    return this.stateValue;
  }
  get tsih(): number {
    return this.tsihValue;
  }
  /** Negotiated parameters of the current (or last) connection. */
  get negotiated(): NegotiatedParams | undefined {
    return this.params;
  }
  /** Commands sent and not yet answered. */
  get outstanding(): number {
    let n = 0;
    for (const t of this.tasks.values()) if (t.sent && t.kind === 'scsi') n++;
    return n;
  }

  // ---- connection lifecycle ------------------------------------------------------------------------

  /** Connect and log in (no-op when up; joins an attempt in progress). Rejects with the login error. */
  connect(): Promise<void> {
    if (this.stateValue === 'closed') return Promise.reject(new IscsiTransportError('ESHUTDOWN', 'session closed'));
    if (this.stateValue === 'up') return Promise.resolve();
    if (this.connecting) return this.connecting;
    if (this.reconnectTimer) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    }
    const wasUp = this.loginCount > 0;
    this.stateValue = 'connecting';
    const attempt = this.loginFollowingRedirects()
      .then(() => {
        if (this.stateValue === 'closed') {
          // close() ran while we were logging in: drop the new connection.
          this.conn?.end(new IscsiTransportError('ESHUTDOWN', 'session closed'));
          this.conn = undefined;
          throw new IscsiTransportError('ESHUTDOWN', 'session closed');
        }
        this.connecting = undefined;
        this.reconnectDelay = this.opts.reconnectDelayMs;
        this.stateValue = 'up';
        this.loginCount++;
        this.startKeepAlive();
        this.log.info({ tsih: this.tsihValue, params: this.params, reconnect: wasUp }, 'initiator.login.ok');
        this.emit('up', { tsih: this.tsihValue, reconnect: wasUp });
        this.pump();
      })
      .catch((e: unknown) => {
        this.connecting = undefined;
        const err = e instanceof IscsiTransportError ? e : new IscsiTransportError('ELOGIN', String(e), { cause: e });
        this.lastError = err;
        if (this.stateValue !== 'closed') {
          this.stateValue = 'down';
          this.log.info({ err: err.message, code: err.code }, 'initiator.login.failed');
          this.afterDown(err, true);
        }
        throw err;
      });
    this.connecting = attempt;
    return attempt;
  }

  /** Log in at the configured portal, following up to 3 login redirections (a permanent one is remembered). */
  private async loginFollowingRedirects(): Promise<void> {
    let host = this.opts.host;
    let port = this.opts.port;
    for (let hop = 0; ; hop++) {
      try {
        await this.loginOnce(host, port);
        return;
      } catch (e) {
        if (!(e instanceof IscsiTransportError) || !e.redirect || hop >= 3) throw e;
        this.log.info({ from: `${host}:${port}`, to: e.redirect, permanent: e.statusDetail === 2 }, 'initiator.login.redirect');
        ({ host, port } = e.redirect);
        if (e.statusDetail === 2) {
          this.opts.host = host;
          this.opts.port = port;
        }
      }
    }
  }

  /** One TCP connect + login; on success `this.conn` is the full-feature connection. */
  private async loginOnce(host: string, port: number): Promise<void> {
    const o = this.opts;
    const deadline = Date.now() + o.loginTimeoutMs;
    const conn = await InitiatorConn.connect(host, port, o.loginTimeoutMs);
    if (this.stateValue === 'closed') {
      conn.end(new IscsiTransportError('ESHUTDOWN', 'session closed'));
      throw new IscsiTransportError('ESHUTDOWN', 'session closed');
    }
    const neg = new LoginNegotiator({
      initiatorName: o.initiatorName,
      targetName: o.targetName,
      chap: o.chap,
      headerDigest: o.headerDigest,
      dataDigest: o.dataDigest,
      maxRecvDataSegmentLength: o.maxRecvDataSegmentLength,
      maxBurstLength: o.maxBurstLength,
      firstBurstLength: o.firstBurstLength,
      initialR2T: o.initialR2T,
      immediateData: o.immediateData,
    });
    // A fresh session (TSIH 0) each time: ERL 0 has no connection recovery, and the same ISID reinstates.
    this.cmdSN = 1;
    this.expStatSN = 0;
    const loginItt = this.allocItt();
    let step: LoginStep | 'done' = neg.first();
    try {
      while (step !== 'done') {
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new IscsiTransportError('ETIMEDOUT', 'login timed out');
        const rsp = await this.loginRoundTrip(conn, step, loginItt, remaining);
        step = neg.next({ csg: rsp.csg, nsg: rsp.nsg, transit: rsp.transit, pairs: parseText(rsp.data) });
        if (step === 'done') {
          this.tsihValue = rsp.tsih;
          this.expCmdSN = rsp.expCmdSN;
          this.maxCmdSN = rsp.maxCmdSN;
        }
      }
    } catch (e) {
      conn.end(new IscsiTransportError('ELOGIN', 'login failed'));
      if (e instanceof LoginError) throw new IscsiTransportError(e.auth ? 'EAUTH' : 'ELOGIN', e.message, { cause: e });
      throw e;
    }
    this.params = neg.params;
    conn.setFullFeature({
      headerDigest: neg.params.headerDigest,
      dataDigest: neg.params.dataDigest,
      maxRecvDataSegmentLength: o.maxRecvDataSegmentLength,
    });
    conn.onPdu = (p) => this.onPdu(conn, p);
    conn.onClose = (err) => this.onConnClose(conn, err);
    this.conn = conn;
  }

  /** Send one login request (with continuation if its text exceeds 8 KiB) and wait for the final answer. */
  private async loginRoundTrip(
    conn: InitiatorConn,
    step: LoginStep,
    itt: number,
    timeoutMs: number,
  ): Promise<LoginResponse> {
    const text = encodeText(step.pairs);
    const pieces: Buffer[] = [];
    for (let off = 0; off < text.length || pieces.length === 0; off += 8192) pieces.push(text.subarray(off, off + 8192));
    let rsp: LoginResponse | undefined;
    const answers: Buffer[] = [];
    for (let i = 0; i < pieces.length; i++) {
      const last = i === pieces.length - 1;
      const data = pieces[i] as Buffer;
      rsp = await this.loginExchange(conn, timeoutMs, {
        kind: 'login-req',
        transit: last ? step.transit : false,
        cont: !last,
        csg: step.csg,
        nsg: last && step.transit ? step.nsg : 0,
        versionMax: 0,
        versionMin: 0,
        isid: this.isid,
        tsih: 0,
        itt,
        cid: 0,
        cmdSN: this.cmdSN,
        expStatSN: this.expStatSN,
        data,
      });
    }
    // The target's answer may itself continue (C bit): ask for the rest with empty requests.
    for (;;) {
      const r = rsp as LoginResponse;
      answers.push(Buffer.from(r.data));
      if (!r.cont) break;
      rsp = await this.loginExchange(conn, timeoutMs, {
        kind: 'login-req',
        transit: false,
        cont: false,
        csg: step.csg,
        nsg: 0,
        versionMax: 0,
        versionMin: 0,
        isid: this.isid,
        tsih: 0,
        itt,
        cid: 0,
        cmdSN: this.cmdSN,
        expStatSN: this.expStatSN,
        data: Buffer.alloc(0),
      });
    }
    const r = rsp as LoginResponse;
    return { ...r, data: Buffer.concat(answers) };
  }

  private loginExchange(
    conn: InitiatorConn,
    timeoutMs: number,
    req: LoginRequest,
  ): Promise<LoginResponse> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new IscsiTransportError('ETIMEDOUT', 'login timed out')), timeoutMs);
      conn.onClose = (err) => {
        clearTimeout(timer);
        reject(new IscsiTransportError(err.code, `connection lost during login: ${err.message}`));
      };
      conn.onPdu = (p) => {
        clearTimeout(timer);
        if (p.kind !== 'login-rsp') {
          reject(new IscsiTransportError('EPROTO', `${p.kind} during login`));
          return;
        }
        this.expStatSN = (p.statSN + 1) >>> 0;
        if (p.statusClass === I.ISCSI_STATUS_CLS_REDIRECT) {
          const addr = parseText(p.data).find(([k]) => k === 'TargetAddress')?.[1];
          const redirect = addr !== undefined ? parseTargetAddress(addr) : undefined;
          reject(
            new IscsiTransportError('ELOGIN', `login redirected to ${addr ?? '(no TargetAddress)'}`, {
              statusClass: p.statusClass,
              statusDetail: p.statusDetail,
              redirect: redirect ? { host: redirect.host, port: redirect.port } : undefined,
            }),
          );
          return;
        }
        if (p.statusClass !== I.ISCSI_STATUS_CLS_SUCCESS) {
          const auth = p.statusClass === I.ISCSI_STATUS_CLS_INITIATOR_ERR && p.statusDetail === I.ISCSI_LOGIN_STATUS_AUTH_FAILED;
          reject(
            new IscsiTransportError(
              auth ? 'EAUTH' : 'ELOGIN',
              `login refused: status class 0x${p.statusClass.toString(16)} detail 0x${p.statusDetail.toString(16)}`,
              { statusClass: p.statusClass, statusDetail: p.statusDetail },
            ),
          );
          return;
        }
        resolve(p);
      };
      conn.send([{ pdu: req, data: req.data }]);
    });
  }

  private onConnClose(conn: InitiatorConn, err: IscsiTransportError): void {
    if (conn !== this.conn) return;
    this.conn = undefined;
    this.stopKeepAlive();
    // Outstanding commands are lost with the connection (ERL 0).
    for (const t of [...this.tasks.values()]) {
      if (t.conn !== conn) continue;
      const code = t.timedOut ? 'ETIMEDOUT' : 'ECONNRESET';
      this.failTask(t, new IscsiTransportError(code, `${t.timedOut ? 'timed out, then ' : ''}connection lost: ${err.message}`, { cause: err }));
    }
    if (this.stateValue === 'closed') return;
    if (this.loggingOut) {
      this.stateValue = 'idle';
      return;
    }
    this.stateValue = 'down';
    this.lastError = err;
    this.log.info({ err: err.message }, 'initiator.conn.down');
    this.emit('down', err);
    this.afterDown(err, false);
  }

  /** After the connection is lost or a login failed: schedule a reconnect, or fail waiting commands. */
  private afterDown(err: IscsiTransportError, loginFailed: boolean): void {
    // Only a session that has been up reconnects by itself (a first login failure is the caller's to handle).
    const willRetry = this.opts.reconnect && this.stateValue !== 'closed' && this.loginCount > 0;
    if (!willRetry || !this.opts.queueWhileDown) {
      for (const t of this.queue.splice(0)) this.failTask(t, new IscsiTransportError('ENOTCONN', `not connected: ${err.message}`));
    }
    if (!willRetry || this.reconnectTimer) return;
    const delay = loginFailed ? this.reconnectDelay : 0;
    if (loginFailed) this.reconnectDelay = Math.min(this.reconnectDelay * 2, this.opts.reconnectMaxDelayMs);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stateValue === 'down') this.connect().catch(() => undefined);
    }, delay);
    this.reconnectTimer.unref();
  }

  /** Drop the current connection as if it failed (tests, drills, and after an unanswered abort). */
  dropConnection(reason = 'dropped by initiator'): void {
    this.conn?.end(new IscsiTransportError('ECONNRESET', reason));
  }

  /** Send a TCP RST on the current connection (fault tests). */
  resetConnection(): void {
    this.conn?.resetForTest();
  }

  /** Log out (if up, waiting at most 2 s) and close; every pending command fails with ESHUTDOWN. */
  async close(): Promise<void> {
    if (this.stateValue === 'closed') return;
    if (this.stateValue === 'up') {
      try {
        await this.logout(Math.min(2_000, this.opts.tmfTimeoutMs));
      } catch {
        // best effort
      }
    }
    this.shutdown();
  }

  private shutdown(): void {
    this.stateValue = 'closed';
    this.stopKeepAlive();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const err = new IscsiTransportError('ESHUTDOWN', 'session closed');
    for (const t of this.queue.splice(0)) this.failTask(t, err);
    for (const t of [...this.tasks.values()]) this.failTask(t, err);
    this.conn?.end(err);
    this.conn = undefined;
    this.emit('closed');
  }

  /** Logout (close session), then the connection ends; the session can connect() again afterwards. */
  async logout(timeoutMs = this.opts.tmfTimeoutMs): Promise<void> {
    if (this.stateValue !== 'up') return;
    const conn = this.conn;
    const t = this.newTask('logout', true);
    this.loggingOut = true;
    let response: number;
    try {
      response = await this.submit<number>(t, timeoutMs);
    } finally {
      this.loggingOut = false;
    }
    // The target closes; make sure we do not treat that as a failure to recover from.
    if (conn === this.conn) {
      this.conn = undefined;
      this.stopKeepAlive();
      this.stateValue = 'idle';
      conn?.end(new IscsiTransportError('ESHUTDOWN', 'logged out'));
    }
    if (response !== I.ISCSI_LOGOUT_SUCCESS) throw new IscsiTransportError('EPROTO', `logout response ${response}`);
  }

  // ---- keep-alive --------------------------------------------------------------------------------------

  private startKeepAlive(): void {
    this.stopKeepAlive();
    const iv = this.opts.nopIntervalMs;
    if (iv <= 0) return;
    this.keepAliveTimer = setInterval(() => {
      const c = this.conn;
      if (!c || this.stateValue !== 'up' || this.pingOutstanding) return;
      if (Date.now() - c.lastHeardMs < iv) return;
      this.pingOutstanding = true;
      this.ping()
        .catch((e: unknown) => {
          if (c === this.conn) c.end(new IscsiTransportError('ETIMEDOUT', `keep-alive ping failed: ${String(e)}`));
        })
        .finally(() => (this.pingOutstanding = false));
    }, Math.max(50, Math.floor(iv / 2)));
    this.keepAliveTimer.unref();
  }

  private stopKeepAlive(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
  }

  // ---- tasks ---------------------------------------------------------------------------------------

  private allocItt(): number {
    for (;;) {
      const itt = this.nextItt;
      this.nextItt = this.nextItt >= 0x7fffffff ? 1 : this.nextItt + 1;
      if (!this.tasks.has(itt)) return itt;
    }
  }

  private newTask(kind: TaskKind, immediate: boolean): Task {
    return {
      kind,
      itt: this.allocItt(),
      cmdSN: 0,
      immediate,
      sent: false,
      conn: undefined,
      timedOut: false,
      timer: undefined,
      lun: this.opts.lun,
      cdb: Buffer.alloc(0),
      attr: 1,
      dataOut: undefined,
      dataIn: undefined,
      dataInBytes: 0,
      func: 0,
      refItt: I.RESERVED_TAG,
      refCmdSN: 0,
      textOut: Buffer.alloc(0),
      textIn: [],
      resolve: () => undefined,
      reject: () => undefined,
    };
  }

  /** Queue a task and return its completion; it is sent when connected and inside the CmdSN window. */
  private submit<T>(t: Task, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      t.resolve = resolve as (v: unknown) => void;
      t.reject = reject;
      if (this.stateValue === 'closed') {
        reject(new IscsiTransportError('ESHUTDOWN', 'session closed'));
        return;
      }
      if (this.stateValue !== 'up' && this.stateValue !== 'connecting' && !this.opts.queueWhileDown) {
        reject(new IscsiTransportError('ENOTCONN', `not connected${this.lastError ? `: ${this.lastError.message}` : ''}`));
        return;
      }
      this.tasks.set(t.itt, t);
      t.timer = setTimeout(() => this.onTimeout(t), timeoutMs);
      if (t.immediate) this.queue.unshift(t);
      else this.queue.push(t);
      if (this.stateValue === 'up') this.pump();
      else if (this.stateValue === 'idle' || (this.stateValue === 'down' && !this.reconnectTimer)) {
        this.connect().catch(() => undefined);
      }
    });
  }

  /** Send queued tasks while connected, within the queue depth and the CmdSN window. */
  private pump(): void {
    const conn = this.conn;
    if (!conn || this.stateValue !== 'up') return;
    while (this.queue.length > 0) {
      const t = this.queue[0] as Task;
      if (!t.immediate) {
        if (t.kind === 'scsi' && this.outstanding >= this.opts.queueDepth) return;
        if (!snLe(this.cmdSN, this.maxCmdSN)) return;
      }
      this.queue.shift();
      t.conn = conn;
      t.sent = true;
      t.cmdSN = this.cmdSN;
      if (!t.immediate) this.cmdSN = (this.cmdSN + 1) >>> 0;
      this.sendTask(conn, t);
    }
  }

  private sendTask(conn: InitiatorConn, t: Task): void {
    const lun = lunField(t.lun);
    switch (t.kind) {
      case 'scsi':
        this.sendScsi(conn, t, lun);
        return;
      case 'nop':
        conn.send([
          {
            pdu: { kind: 'nop-out', immediate: true, lun, itt: t.itt, ttt: I.RESERVED_TAG, cmdSN: t.cmdSN, expStatSN: this.expStatSN, data: t.textOut },
            data: t.textOut,
          },
        ]);
        return;
      case 'tmf':
        conn.send([
          {
            pdu: {
              kind: 'tmf-req',
              immediate: true,
              func: t.func,
              lun,
              itt: t.itt,
              referencedTaskTag: t.refItt,
              cmdSN: t.cmdSN,
              expStatSN: this.expStatSN,
              refCmdSN: t.refCmdSN,
              expDataSN: 0,
            },
          },
        ]);
        return;
      case 'text':
        conn.send([
          {
            pdu: {
              kind: 'text-req',
              immediate: false,
              final: true,
              cont: false,
              lun: 0n,
              itt: t.itt,
              ttt: I.RESERVED_TAG,
              cmdSN: t.cmdSN,
              expStatSN: this.expStatSN,
              data: t.textOut,
            },
            data: t.textOut,
          },
        ]);
        return;
      case 'logout':
        conn.send([
          {
            pdu: {
              kind: 'logout-req',
              immediate: true,
              reason: I.ISCSI_LOGOUT_REASON_CLOSE_SESSION,
              itt: t.itt,
              cid: 0,
              cmdSN: t.cmdSN,
              expStatSN: this.expStatSN,
            },
          },
        ]);
        return;
    }
  }

  /** SCSI Command with immediate data and unsolicited Data-Out as negotiated (RFC 7143 §4.2.5.2). */
  private sendScsi(conn: InitiatorConn, t: Task, lun: bigint): void {
    const p = this.params as NegotiatedParams;
    const out = t.dataOut;
    const edtl = out ? out.length : (t.dataIn?.length ?? 0);
    const maxPdu = p.targetMaxRecvDataSegmentLength;
    let imm = 0;
    let unsolicitedEnd = 0;
    if (out && out.length > 0) {
      if (p.immediateData) imm = Math.min(out.length, p.firstBurstLength, maxPdu);
      unsolicitedEnd = p.initialR2T ? imm : Math.min(out.length, p.firstBurstLength);
    }
    const immData = out ? out.subarray(0, imm) : Buffer.alloc(0);
    const pdus: OutPdus = [
      {
        pdu: {
          kind: 'scsi-cmd',
          immediate: false,
          final: unsolicitedEnd <= imm,
          read: t.dataIn !== undefined && t.dataIn.length > 0,
          write: out !== undefined && out.length > 0,
          attr: t.attr,
          lun,
          itt: t.itt,
          expectedDataTransferLength: edtl,
          cmdSN: t.cmdSN,
          expStatSN: this.expStatSN,
          cdb: t.cdb,
          ahs: Buffer.alloc(0),
          data: immData,
        },
        data: immData,
      },
    ];
    if (out && unsolicitedEnd > imm) this.pushDataOut(pdus, t, lun, I.RESERVED_TAG, imm, unsolicitedEnd - imm, maxPdu);
    conn.send(pdus);
  }

  /** Data-Out PDUs for [offset, offset+length) of a task's buffer, each at most maxPdu bytes, F on the last. */
  private pushDataOut(
    pdus: OutPdus,
    t: Task,
    lun: bigint,
    ttt: number,
    offset: number,
    length: number,
    maxPdu: number,
  ): void {
    const out = t.dataOut as Buffer;
    let dataSN = 0;
    for (let off = offset; off < offset + length; off += maxPdu) {
      const n = Math.min(maxPdu, offset + length - off);
      const data = out.subarray(off, off + n);
      pdus.push({
        pdu: {
          kind: 'data-out',
          final: off + n >= offset + length,
          lun,
          itt: t.itt,
          ttt,
          expStatSN: this.expStatSN,
          dataSN: dataSN++,
          bufferOffset: off,
          data,
        },
        data,
      });
    }
  }

  private finishTask(t: Task): void {
    if (t.timer) clearTimeout(t.timer);
    t.timer = undefined;
    this.tasks.delete(t.itt);
    const qi = this.queue.indexOf(t);
    if (qi >= 0) this.queue.splice(qi, 1);
  }

  private completeTask(t: Task, value: unknown): void {
    this.finishTask(t);
    t.resolve(value);
    this.pump();
  }

  private failTask(t: Task, err: Error): void {
    this.finishTask(t);
    t.reject(err);
  }

  /** A task timed out: fail it; if it was sent, abort it on the target (and drop the connection if that fails). */
  /**
   * A task timed out. Unsent or non-SCSI tasks fail at once. A sent SCSI command is first aborted (ABORT TASK), so
   * that when the caller sees ETIMEDOUT the command is known not to run later; if the abort is not answered, the
   * connection is dropped (the target then ends the task with the session). A response that still arrives before
   * the abort completes the command normally.
   */
  private onTimeout(t: Task): void {
    t.timer = undefined;
    const err = new IscsiTransportError('ETIMEDOUT', `${t.kind} ITT 0x${t.itt.toString(16)} timed out`);
    if (!t.sent || t.kind !== 'scsi') {
      this.failTask(t, err);
      if (t.sent && t.kind === 'nop') this.log.info({ itt: t.itt }, 'initiator.ping.timeout');
      return;
    }
    t.timedOut = true;
    this.log.info({ itt: t.itt, cmdSN: t.cmdSN }, 'initiator.cmd.timeout');
    const conn = t.conn;
    this.taskManagement(I.ISCSI_TM_FUNC_ABORT_TASK, { refItt: t.itt, refCmdSN: t.cmdSN, lun: t.lun })
      .then(() => {
        if (this.tasks.get(t.itt) === t) this.failTask(t, err);
      })
      .catch((e: unknown) => {
        this.log.info({ itt: t.itt, err: String(e) }, 'initiator.abort.failed');
        if (this.tasks.get(t.itt) === t) this.failTask(t, err);
        if (conn && conn === this.conn) conn.end(new IscsiTransportError('ETIMEDOUT', 'abort of a timed-out command failed'));
      });
  }

  // ---- input -----------------------------------------------------------------------------------------

  private onPdu(conn: InitiatorConn, p: TargetPdu): void {
    if (conn !== this.conn) return;
    if ('expCmdSN' in p && p.kind !== 'login-rsp') this.updateWindow(p.expCmdSN, p.maxCmdSN);
    switch (p.kind) {
      case 'scsi-rsp':
      case 'tmf-rsp':
      case 'text-rsp':
      case 'logout-rsp':
      case 'reject':
        this.advanceStatSN(p.statSN);
        break;
      case 'data-in':
        if (p.flags & I.ISCSI_FLAG_DATA_STATUS) this.advanceStatSN(p.statSN);
        break;
      case 'nop-in':
        if (p.itt !== I.RESERVED_TAG) this.advanceStatSN(p.statSN);
        break;
      default:
        break;
    }
    switch (p.kind) {
      case 'data-in':
        this.onDataIn(p);
        break;
      case 'scsi-rsp':
        this.onScsiResponse(p);
        break;
      case 'r2t':
        this.onR2T(conn, p);
        break;
      case 'nop-in':
        this.onNopIn(conn, p);
        break;
      case 'tmf-rsp': {
        const t = this.tasks.get(p.itt);
        if (t?.kind === 'tmf') this.completeTask(t, p.response);
        break;
      }
      case 'text-rsp':
        this.onTextResponse(conn, p);
        break;
      case 'logout-rsp': {
        const t = this.tasks.get(p.itt);
        if (t?.kind === 'logout') this.completeTask(t, p.response);
        break;
      }
      case 'async':
        this.onAsync(p);
        break;
      case 'reject':
        this.onReject(p);
        break;
      case 'login-rsp':
        throw new IscsiTransportError('EPROTO', 'login response in full feature phase');
    }
    this.pump();
  }

  private advanceStatSN(statSN: number): void {
    const next = (statSN + 1) >>> 0;
    if (snLt(this.expStatSN, next)) this.expStatSN = next;
  }

  /** RFC 7143 §4.2.2.1: ignore a window with MaxCmdSN < ExpCmdSN - 1; never move either backwards. */
  private updateWindow(exp: number, max: number): void {
    if (snLt(max, (exp - 1) >>> 0)) return;
    if (snLt(this.maxCmdSN, max)) this.maxCmdSN = max;
    if (snLt(this.expCmdSN, exp)) this.expCmdSN = exp;
  }

  private scsiTask(itt: number): Task | undefined {
    const t = this.tasks.get(itt);
    return t && t.kind === 'scsi' ? t : undefined;
  }

  private onDataIn(p: Extract<TargetPdu, { kind: 'data-in' }>): void {
    const t = this.scsiTask(p.itt);
    if (!t) return;
    const buf = t.dataIn;
    if (!buf || p.bufferOffset + p.data.length > buf.length) {
      this.failTask(t, new IscsiTransportError('EPROTO', `Data-In beyond the expected length (offset ${p.bufferOffset})`));
      return;
    }
    p.data.copy(buf, p.bufferOffset);
    t.dataInBytes = Math.max(t.dataInBytes, p.bufferOffset + p.data.length);
    if (p.flags & I.ISCSI_FLAG_DATA_STATUS) {
      this.finishScsi(t, p.status, undefined, p.flags, p.residualCount);
    }
  }

  private onScsiResponse(p: Extract<TargetPdu, { kind: 'scsi-rsp' }>): void {
    const t = this.scsiTask(p.itt);
    if (!t) return;
    if (p.response !== I.ISCSI_STATUS_CMD_COMPLETED) {
      this.failTask(t, new IscsiTransportError('EPROTO', `target failure response 0x${p.response.toString(16)}`));
      return;
    }
    this.finishScsi(t, p.status, senseFromResponseData(p.data), p.flags, p.residualCount);
  }

  private finishScsi(t: Task, status: number, sense: Buffer | undefined, flags: number, residual: number): void {
    const underflow = (flags & I.ISCSI_FLAG_CMD_UNDERFLOW) !== 0;
    const overflow = (flags & I.ISCSI_FLAG_CMD_OVERFLOW) !== 0;
    let data: Buffer = Buffer.alloc(0);
    if (t.dataIn) {
      const want = underflow ? Math.max(0, t.dataIn.length - residual) : t.dataIn.length;
      data = t.dataIn.subarray(0, Math.min(want, t.dataInBytes));
    }
    const r: ScsiResult = { status, data, sense, residual, underflow, overflow };
    this.completeTask(t, r);
  }

  private onR2T(conn: InitiatorConn, p: Extract<TargetPdu, { kind: 'r2t' }>): void {
    const t = this.scsiTask(p.itt);
    if (!t) return;
    const out = t.dataOut;
    if (!out || p.bufferOffset + p.desiredDataTransferLength > out.length || p.desiredDataTransferLength === 0) {
      this.failTask(t, new IscsiTransportError('EPROTO', `R2T outside the write (offset ${p.bufferOffset} length ${p.desiredDataTransferLength})`));
      conn.end(new IscsiTransportError('EPROTO', 'bad R2T'));
      return;
    }
    const pdus: OutPdus = [];
    const maxPdu = (this.params as NegotiatedParams).targetMaxRecvDataSegmentLength;
    this.pushDataOut(pdus, t, lunField(t.lun), p.ttt, p.bufferOffset, p.desiredDataTransferLength, maxPdu);
    conn.send(pdus);
  }

  private onNopIn(conn: InitiatorConn, p: Extract<TargetPdu, { kind: 'nop-in' }>): void {
    if (p.itt !== I.RESERVED_TAG) {
      const t = this.tasks.get(p.itt);
      if (t?.kind === 'nop') this.completeTask(t, Buffer.from(p.data));
      return;
    }
    if (p.ttt === I.RESERVED_TAG) return; // unsolicited NOP-In carrying only sequence numbers
    // The target pings us: echo its TTT and data (RFC 7143 §11.18).
    this.nopInsAnswered++;
    conn.send([
      {
        pdu: { kind: 'nop-out', immediate: true, lun: p.lun, itt: I.RESERVED_TAG, ttt: p.ttt, cmdSN: this.cmdSN, expStatSN: this.expStatSN, data: p.data },
        data: p.data,
      },
    ]);
  }

  private onTextResponse(conn: InitiatorConn, p: Extract<TargetPdu, { kind: 'text-rsp' }>): void {
    const t = this.tasks.get(p.itt);
    if (t?.kind !== 'text') return;
    t.textIn.push(Buffer.from(p.data));
    if (p.final && !p.cont) {
      this.completeTask(t, Buffer.concat(t.textIn));
      return;
    }
    // More to come: an empty Text Request with the target's TTT (same ITT, next CmdSN).
    const cmdSN = this.cmdSN;
    this.cmdSN = (this.cmdSN + 1) >>> 0;
    conn.send([
      {
        pdu: { kind: 'text-req', immediate: false, final: true, cont: false, lun: 0n, itt: t.itt, ttt: p.ttt, cmdSN, expStatSN: this.expStatSN, data: Buffer.alloc(0) },
        data: Buffer.alloc(0),
      },
    ]);
  }

  private onAsync(p: Extract<TargetPdu, { kind: 'async' }>): void {
    const sense = p.asyncEvent === I.ISCSI_ASYNC_MSG_SCSI_EVENT ? senseFromResponseData(p.data) : undefined;
    this.log.info({ event: p.asyncEvent, p1: p.parameter1, p2: p.parameter2 }, 'initiator.async');
    this.emit('async', { event: p.asyncEvent, sense, parameter1: p.parameter1, parameter2: p.parameter2, parameter3: p.parameter3 });
    if (sense) {
      const ua = new ScsiStatusError(S.SAM_STAT_CHECK_CONDITION, sense, 'async event');
      if (ua.kind === 'unit-attention') this.emit('unit-attention', ua);
    }
    if (p.asyncEvent === I.ISCSI_ASYNC_MSG_REQUEST_LOGOUT) {
      // The target wants this connection gone: log out and come back (a fresh login after Time2Wait).
      void this.logout()
        .catch(() => undefined)
        .then(() => {
          if (this.stateValue === 'idle' && this.opts.reconnect) {
            this.stateValue = 'down';
            this.afterDown(new IscsiTransportError('ECONNRESET', 'target requested logout'), true);
          }
        });
    }
  }

  private onReject(p: Extract<TargetPdu, { kind: 'reject' }>): void {
    const itt = p.data.length >= 20 ? p.data.readUInt32BE(16) : I.RESERVED_TAG;
    this.log.info({ reason: p.reason, itt }, 'initiator.reject');
    const t = this.tasks.get(itt);
    if (t) this.failTask(t, new IscsiTransportError('EPROTO', `target rejected the PDU (reason 0x${p.reason.toString(16)})`));
  }

  // ---- public command API ------------------------------------------------------------------------------

  /** Run one SCSI command; resolves with any status (no exception for CHECK CONDITION). */
  execute(cdb: Buffer, opts: ExecuteOptions = {}): Promise<ScsiResult> {
    if (this.opts.targetName === undefined) {
      return Promise.reject(new IscsiTransportError('EPROTO', 'SCSI commands need a Normal session'));
    }
    const t = this.newTask('scsi', false);
    t.cdb = cdb.length >= 16 ? cdb.subarray(0, 16) : Buffer.concat([cdb, Buffer.alloc(16 - cdb.length)]);
    t.dataOut = opts.dataOut;
    t.dataIn = opts.dataInLength ? Buffer.allocUnsafe(opts.dataInLength) : undefined;
    t.lun = opts.lun ?? this.opts.lun;
    t.attr = opts.attr ?? 1;
    return this.submit<ScsiResult>(t, opts.timeoutMs ?? this.opts.commandTimeoutMs);
  }

  /**
   * Run a command and require GOOD (or CONDITION MET); UNIT ATTENTION is reported as an event and the command
   * retried up to `unitAttentionRetries` times; any other status throws ScsiStatusError.
   */
  async command(cdb: Buffer, opts: ExecuteOptions = {}, what = `opcode 0x${(cdb[0] ?? 0).toString(16)}`): Promise<Buffer> {
    for (let attempt = 0; ; attempt++) {
      const r = await this.execute(cdb, opts);
      if (r.status === S.SAM_STAT_GOOD || r.status === S.SAM_STAT_CONDITION_MET) return r.data;
      const err = new ScsiStatusError(r.status, r.sense, what);
      if (err.kind === 'unit-attention') {
        this.emit('unit-attention', err);
        if (attempt < this.opts.unitAttentionRetries) continue;
      }
      throw err;
    }
  }

  /** NOP-Out ping (immediate); resolves with the echoed data. */
  ping(data: Buffer = Buffer.alloc(0), timeoutMs = this.opts.tmfTimeoutMs): Promise<Buffer> {
    const t = this.newTask('nop', true);
    t.textOut = data;
    return this.submit<Buffer>(t, timeoutMs);
  }

  /** A task management function; resolves on "function complete", rejects ETMF with the response otherwise. */
  async taskManagement(func: number, opts: { refItt?: number; refCmdSN?: number; lun?: number } = {}): Promise<void> {
    const t = this.newTask('tmf', true);
    t.func = func;
    t.refItt = opts.refItt ?? I.RESERVED_TAG;
    t.refCmdSN = opts.refCmdSN ?? this.cmdSN;
    t.lun = opts.lun ?? this.opts.lun;
    const response = await this.submit<number>(t, this.opts.tmfTimeoutMs);
    if (response !== I.ISCSI_TMF_RSP_COMPLETE && !(func === I.ISCSI_TM_FUNC_ABORT_TASK && response === I.ISCSI_TMF_RSP_NO_TASK)) {
      throw new IscsiTransportError('ETMF', `${TMF_FUNC_NAMES[func] ?? `TMF ${func}`} refused: response ${response}`);
    }
  }

  /** ABORT TASK for an outstanding command (see outstandingItts()); the command then fails with EABORTED. */
  async abortTask(itt: number): Promise<void> {
    const t = this.tasks.get(itt);
    await this.taskManagement(I.ISCSI_TM_FUNC_ABORT_TASK, { refItt: itt, refCmdSN: t?.cmdSN ?? this.cmdSN, lun: t?.lun });
    if (t && this.tasks.get(itt) === t) this.failTask(t, new IscsiTransportError('EABORTED', `ITT 0x${itt.toString(16)} aborted`));
  }

  /** LOGICAL UNIT RESET; this session's outstanding commands on the LUN fail with EABORTED. */
  async lunReset(lun = this.opts.lun): Promise<void> {
    const before = [...this.tasks.values()].filter((t) => t.kind === 'scsi' && t.sent && t.lun === lun);
    await this.taskManagement(I.ISCSI_TM_FUNC_LOGICAL_UNIT_RESET, { lun });
    for (const t of before) {
      if (this.tasks.get(t.itt) === t) this.failTask(t, new IscsiTransportError('EABORTED', `ITT 0x${t.itt.toString(16)} aborted by LUN RESET`));
    }
  }

  /** ITTs of commands sent and not answered (for abortTask in tests and tools). */
  outstandingItts(): number[] {
    return [...this.tasks.values()].filter((t) => t.kind === 'scsi' && t.sent).map((t) => t.itt);
  }

  /** Text request with key=value pairs; resolves with the (reassembled) answer pairs. */
  async text(pairs: TextPairs, timeoutMs = this.opts.commandTimeoutMs): Promise<TextPairs> {
    const t = this.newTask('text', false);
    t.textOut = encodeText(pairs);
    const data = await this.submit<Buffer>(t, timeoutMs);
    return parseText(data);
  }

  /** SendTargets (RFC 7143 Appendix C): target names and their addresses. */
  async sendTargets(value = 'All'): Promise<DiscoveredTarget[]> {
    const pairs = await this.text([['SendTargets', value]]);
    const out: DiscoveredTarget[] = [];
    for (const [k, v] of pairs) {
      if (k === 'TargetName') out.push({ name: v, addresses: [] });
      else if (k === 'TargetAddress' && out.length > 0) (out[out.length - 1] as DiscoveredTarget).addresses.push(parseTargetAddress(v));
    }
    return out;
  }
}

export interface DiscoveredTarget {
  name: string;
  addresses: Array<{ host: string; port: number; portalGroupTag: number | undefined }>;
}

/** Log in to a portal as a Discovery session, ask SendTargets=All, log out. */
export async function discoverTargets(opts: Omit<IscsiSessionOptions, 'targetName'>): Promise<DiscoveredTarget[]> {
  const s = new IscsiSessionCore({ ...opts, reconnect: false, nopIntervalMs: 0 });
  try {
    await s.connect();
    return await s.sendTargets('All');
  } finally {
    await s.close();
  }
}

export type { TransportErrorCode };
