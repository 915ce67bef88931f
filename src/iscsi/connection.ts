// One iSCSI connection (RFC 7143): login (security + operational negotiation), then the full feature phase —
// SCSI commands with immediate/unsolicited/solicited (R2T) data, Data-In with phase collapse, NOP pings both
// ways, task management, text (SendTargets), logout and Reject. PDUs are handled strictly in arrival order
// and synchronously; only SCSI execution and TMF waits are asynchronous. ErrorRecoveryLevel is 0: any framing
// or sequence error closes the connection (and with it the session).
import type { Socket } from 'node:net';
import type { Logger } from '../obs/log.js';
import * as I from '../proto/iscsi/constants.js';
import { FrameError, PduCodec, frameBuffers, rawPdu, type PduHeader, type RawPdu } from '../proto/iscsi/framer.js';
import { FrameEngine } from '../proto/frame.js';
import type { ClockTimer } from '../util/clock.js';
import {
  PduError,
  decodePdu,
  encodeBhs,
  lunNumber,
  type DataOut,
  type LoginRequest,
  type LogoutRequest,
  type NopOut,
  type ScsiCommand,
  type TargetPdu,
  type TaskMgmtRequest,
  type TextRequest,
} from '../proto/iscsi/pdu.js';
import { TextError, encodeText, parseText, type TextPairs } from '../proto/iscsi/text.js';
import * as S from '../proto/scsi/constants.js';
import { SENSE, senseBytes } from './scsi/sense-table.js';
import { ChapExchange, CHAP_MD5, type ChapAccount } from './chap.js';
import { defaultParams, negotiate, type SessionParams, type TargetPreferences } from './params.js';
import type { ScsiResult } from './scsi/lu.js';
import { BufferPool } from '../nbd/pool.js';
import { copyUnlessInPlace } from '../util/bytes.js';
import type { Session, TargetRuntime, TargetRegistry } from './session.js';

const LOGIN_MAX_DATA = 8192;
const MAX_TEXT_BYTES = 64 * 1024;
/** Largest Expected Data Transfer Length accepted for a write (twice MAXIMUM TRANSFER LENGTH, for COMPARE AND WRITE). */
export const MAX_WRITE_EDTL = 64 * 1024 * 1024;
/** Data-Out bytes a connection may have solicited but not yet executed; beyond it new writes get BUSY. */
export const MAX_PENDING_WRITE_BYTES = 256 * 1024 * 1024;
/** Output queued on the socket above which the connection stops reading new PDUs until it drains. */
export const MAX_QUEUED_OUTPUT_BYTES = 64 * 1024 * 1024;

/** Idle Data-Out buffers of WRITE commands kept for reuse by every connection of the process (bytes). */
export const WRITE_BUFFER_POOL_BYTES = 64 * 1024 * 1024;
const writePool = new BufferPool(WRITE_BUFFER_POOL_BYTES);
/** Commands whose Data-Out only goes to the device (nothing keeps a view of it after they complete). */
const POOLED_WRITE_OPCODES = new Set([S.WRITE_6, S.WRITE_10, S.WRITE_12, S.WRITE_16]);

/** Serial number arithmetic (RFC 1982, 32 bits): a < b. */
export function snLess(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < 0x80000000;
}

interface PendingR2T {
  ttt: number;
  offset: number;
  length: number;
  received: number;
  nextDataSN: number;
}

/** A SCSI command from arrival to its response. */
interface Task {
  itt: number;
  lun: number;
  cdb: Buffer;
  edtl: number;
  read: boolean;
  /** Bytes of Data-Out expected (EDTL for writes, else 0). */
  wantOut: number;
  buf: Buffer | undefined;
  received: number;
  unsolicitedOpen: boolean;
  unsolicitedDataSN: number;
  /** Offset up to which data has been requested (immediate + unsolicited + R2Ts sent). */
  requested: number;
  r2ts: PendingR2T[];
  r2tSN: number;
  executing: boolean;
  aborted: boolean;
  unbudgeted?: boolean;
  done: Promise<void>;
  finish: () => void;
}

type LoginStage = 'security' | 'operational' | 'full';

export class Connection {
  readonly id: number;
  /** PDU framing: data segments land where placeData() says (read in place), else in fresh buffers. */
  private readonly framing = new PduCodec({ maxDataSegmentLength: LOGIN_MAX_DATA }, (bhs, n) => this.placeData(bhs, n));
  private readonly receiver = new FrameEngine<PduHeader>(this.framing, {
    payload: 'copy',
    onFrame: (f) => {
      try {
        this.handle(rawPdu(f));
      } finally {
        this.placedWrite = undefined;
      }
    },
  });
  /** The pooled Data-Out buffer placeData() gave a write command's immediate data (see onScsiCommand). */
  private placedWrite: { itt: number; buf: Buffer } | undefined;
  private closed = false;
  private stage: LoginStage = 'security';
  private statSN = 0;
  params: SessionParams = defaultParams();
  private readonly prefs: TargetPreferences;
  session: Session | undefined;
  private readonly tasks = new Map<number, Task>();
  private outq: Buffer[] = [];
  /** Release functions of pooled Data-In buffers queued in outq: run once the socket has written them. */
  private outDone: (() => void)[] = [];
  private flushScheduled = false;
  private pendingWriteBytes = 0;
  private nextTtt = 1;
  // login state
  private loginText: Buffer[] = [];
  private loginPairs = new Map<string, string>();
  private initiatorName = '';
  private targetName = '';
  private sessionType: 'Normal' | 'Discovery' = 'Normal';
  private target: TargetRuntime | undefined;
  private authDone = false;
  private chap: ChapExchange | undefined;
  private chapStep: 'none' | 'method' | 'challenge' = 'none';
  private isid = 0;
  private tsih = 0;
  private cid = 0;
  private loginExpCmdSN = 0;
  private sentTargetParams = false;
  // text continuation
  private textPending: { ttt: number; rest: Buffer } | undefined;
  private textIn: Buffer[] = [];
  // keep-alive
  private lastHeardMs: number;
  private pingTtt: number | undefined;
  private pingSentMs = 0;
  private timer: ClockTimer | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly registry: TargetRegistry,
    public log: Logger,
    id: number,
  ) {
    this.id = id;
    this.prefs = registry.preferences;
    this.lastHeardMs = registry.clock.now();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.log.debug({ err: err.message }, 'iscsi.conn.socket_error');
      this.close('socket error');
    });
    socket.on('close', () => this.close('peer closed'));
    const interval = registry.nopInIntervalMs;
    if (interval > 0) {
      this.timer = registry.clock.setInterval(() => this.keepAlive(), Math.max(100, Math.floor(interval / 2)));
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Close the connection; the session (ERL 0) goes with it. Idempotent. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.registry.clock.clear(this.timer);
    this.log.debug({ reason }, 'iscsi.conn.close');
    for (const t of this.tasks.values()) {
      t.aborted = true;
      if (!t.executing) t.finish();
    }
    this.tasks.clear();
    this.receiver.reset();
    this.socket.destroy();
    if (this.session) this.registry.connectionClosed(this.session, this);
  }

  // ---- input ---------------------------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    this.receive(chunk, chunk.length);
  }

  /**
   * For a socket created with Node's `onread` option (the server does so): the buffer its next read goes into,
   * the receiver's reused receive buffer or the rest of a large data segment (read in place).
   */
  nextReadBuffer(): Buffer {
    return this.receiver.nextBuffer();
  }

  /**
   * The `onread` callback: `n` bytes were read into `buf` (from nextReadBuffer). Reading goes on after a refused
   * login too (bytes are ignored), so the peer's FIN is seen and the half-closed socket closes.
   */
  userRead(n: number, buf: Buffer): boolean {
    this.receive(buf, n);
    return true;
  }

  /** Parse and handle every PDU completed by `n` bytes at the start of `buf`. */
  private receive(buf: Buffer, n: number): void {
    if (this.closed) return;
    this.lastHeardMs = this.registry.clock.now();
    try {
      this.receiver.consume(buf, n);
    } catch (e) {
      if (this.closed) return;
      if (e instanceof FrameError && e.code === 'EDATADIGEST' && e.bhs && this.stage === 'full') {
        // §7.8: a data digest error on a command or Data-Out is rejected; at ERL 0 we then drop the connection.
        this.sendReject(I.ISCSI_REASON_DATA_DIGEST_ERROR, e.bhs);
      }
      this.log.info({ err: e instanceof Error ? e.message : String(e) }, 'iscsi.conn.protocol_error');
      this.close('protocol error');
    }
  }

  /**
   * Choose where a data segment is read to, from its BHS: a Data-Out goes straight into its task's buffer at its
   * offset, a pooled write's immediate data into a new pooled buffer for the command. The PDU is checked as
   * usual once in; a bad one fails its task (or the connection), so bytes placed early are never used.
   */
  private placeData(bhs: Buffer, dataLen: number): Buffer | undefined {
    this.placedWrite = undefined;
    if (this.stage !== 'full' || this.closed) return undefined;
    const op = (bhs[0] ?? 0) & 0x3f;
    const itt = bhs.readUInt32BE(16);
    if (op === I.ISCSI_OP_SCSI_DATA_OUT) {
      const t = this.tasks.get(itt);
      const off = bhs.readUInt32BE(40);
      if (!t || t.executing || t.aborted || !t.buf || off + dataLen > t.wantOut || off + dataLen > t.buf.length) return undefined;
      return t.buf.subarray(off, off + dataLen);
    }
    if (op === I.ISCSI_OP_SCSI_CMD && ((bhs[1] ?? 0) & I.ISCSI_FLAG_CMD_WRITE) !== 0) {
      const edtl = bhs.readUInt32BE(20);
      if (dataLen > edtl || edtl > MAX_WRITE_EDTL || this.tasks.has(itt) || !POOLED_WRITE_OPCODES.has(bhs[32] ?? -1)) return undefined;
      const buf = writePool.get(edtl);
      this.placedWrite = { itt, buf };
      return buf.subarray(0, dataLen);
    }
    return undefined;
  }

  private handle(raw: RawPdu): void {
    let pdu;
    try {
      pdu = decodePdu(raw.bhs, raw.ahs, raw.data);
    } catch (e) {
      if (e instanceof PduError && this.stage === 'full') {
        this.sendReject(I.ISCSI_REASON_CMD_NOT_SUPPORTED, raw.bhs);
        return;
      }
      throw e;
    }
    if (this.stage !== 'full') {
      if (pdu.kind !== 'login-req') throw new Error(`${pdu.kind} during login`);
      this.onLogin(pdu);
      return;
    }
    switch (pdu.kind) {
      case 'scsi-cmd':
        this.onScsiCommand(pdu, raw);
        return;
      case 'data-out':
        this.onDataOut(pdu);
        return;
      case 'nop-out':
        this.onNopOut(pdu);
        return;
      case 'tmf-req':
        this.onTaskMgmt(pdu);
        return;
      case 'text-req':
        this.onText(pdu, raw);
        return;
      case 'logout-req':
        this.onLogout(pdu);
        return;
      case 'login-req':
        this.sendReject(I.ISCSI_REASON_PROTOCOL_ERROR, raw.bhs);
        return;
      case 'snack':
        this.sendReject(I.ISCSI_REASON_PROTOCOL_ERROR, raw.bhs);
        return;
      default:
        // a target-only opcode sent by the initiator
        this.sendReject(I.ISCSI_REASON_PROTOCOL_ERROR, raw.bhs);
    }
  }

  // ---- output --------------------------------------------------------------------------------------

  private seq(advance: boolean): { statSN: number; expCmdSN: number; maxCmdSN: number } {
    const s = this.session;
    const statSN = this.statSN;
    if (advance) this.statSN = (this.statSN + 1) >>> 0;
    const expCmdSN = s ? s.expCmdSN : this.loginExpCmdSN;
    const maxCmdSN = s ? s.maxCmdSN() : this.loginExpCmdSN;
    return { statSN, expCmdSN, maxCmdSN };
  }

  /**
   * Queue PDUs for the socket. Everything queued during one event-loop turn (e.g. all the commands that
   * completed in one poll phase) goes out in a single corked writev from a setImmediate, which saves a syscall
   * per response under load. When the initiator does not read, stop reading its commands (socket pause) until
   * the output drains, so queued responses stay bounded.
   */
  private send(pdus: Array<{ pdu: TargetPdu; data?: Buffer }>): void {
    if (this.closed) return;
    const digests = this.stage === 'full' ? this.params : { headerDigest: false, dataDigest: false };
    for (const { pdu } of pdus) {
      // The data segment always comes from the PDU itself, so the BHS length and the bytes sent agree.
      const data = 'data' in pdu ? pdu.data : undefined;
      for (const b of frameBuffers(encodeBhs(pdu), data, digests)) this.outq.push(b);
    }
    // Nothing else in flight (QD1, login, pings): no batch to wait for, so write now and save the latency.
    if (this.tasks.size === 0) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Write the queued output now (before ending the socket, and from the scheduled flush). */
  private flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.outq.length === 0) {
      // Buffers whose release is dropped here are left to the GC (the pool simply makes new ones).
      this.outq = [];
      this.outDone = [];
      return;
    }
    const q = this.outq;
    this.outq = [];
    const done = this.outDone;
    this.outDone = [];
    this.socket.cork();
    const last = q.length - 1;
    for (let i = 0; i < last; i++) this.socket.write(q[i] as Buffer);
    // Write callbacks run in order: the last one means every queued buffer has been written.
    if (done.length === 0) this.socket.write(q[last] as Buffer);
    else this.socket.write(q[last] as Buffer, () => { for (const f of done) f(); });
    this.socket.uncork();
    if (this.socket.writableLength > MAX_QUEUED_OUTPUT_BYTES && !this.socket.isPaused()) {
      this.socket.pause();
      this.socket.once('drain', () => {
        if (!this.closed) this.socket.resume();
      });
    }
  }

  /** Flush queued output, then half-close the socket; `then` runs once the FIN is sent. */
  private endSocket(then?: () => void): void {
    this.flush();
    this.socket.end(then);
  }

  private sendReject(reason: number, bhs: Buffer): void {
    this.send([{ pdu: { kind: 'reject', reason, ...this.seq(true), dataSN: 0, data: Buffer.from(bhs.subarray(0, I.BHS_SIZE)) } }]);
  }

  // ---- login ---------------------------------------------------------------------------------------

  private loginReply(req: LoginRequest, cls: number, detail: number, pairs: TextPairs, transit: boolean, nsg: number): void {
    const data = encodeText(pairs);
    this.send([
      {
        pdu: {
          kind: 'login-rsp',
          transit,
          cont: false,
          csg: req.csg,
          nsg: transit ? nsg : 0,
          versionMax: 0,
          versionActive: 0,
          isid: req.isid,
          tsih: cls === I.ISCSI_STATUS_CLS_SUCCESS ? this.tsih : 0,
          itt: req.itt,
          ...this.seq(true),
          statusClass: cls,
          statusDetail: detail,
          data,
        },
        data,
      },
    ]);
  }

  private loginFail(req: LoginRequest, cls: number, detail: number, why: string): void {
    this.log.info({ initiator: this.initiatorName, target: this.targetName, why }, 'iscsi.login.refused');
    this.loginReply(req, cls, detail, [], false, 0);
    this.endSocket();
    this.closed = true;
    this.registry.clock.clear(this.timer);
  }

  private onLogin(req: LoginRequest): void {
    const first = this.initiatorName === '' && this.loginPairs.size === 0 && this.loginText.length === 0;
    if (first) {
      this.statSN = req.expStatSN;
      this.isid = req.isid;
      this.tsih = req.tsih;
      this.cid = req.cid;
      this.loginExpCmdSN = req.cmdSN;
      if (req.versionMin > 0) {
        this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_NO_VERSION, 'version');
        return;
      }
    }
    // Text may span several PDUs (C bit): collect until the last one, answering empty meanwhile.
    this.loginText.push(Buffer.from(req.data));
    if (this.loginText.reduce((n, b) => n + b.length, 0) > MAX_TEXT_BYTES) {
      this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_INIT_ERR, 'login text too long');
      return;
    }
    if (req.cont) {
      this.loginReply(req, 0, 0, [], false, 0);
      return;
    }
    let pairs: TextPairs;
    try {
      pairs = parseText(Buffer.concat(this.loginText));
    } catch (e) {
      this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_INIT_ERR, e instanceof TextError ? e.message : 'text');
      return;
    }
    this.loginText = [];
    for (const [k, v] of pairs) this.loginPairs.set(k, v);

    if (first || this.initiatorName === '') {
      const ini = this.loginPairs.get('InitiatorName');
      if (!ini) {
        this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_MISSING_FIELDS, 'no InitiatorName');
        return;
      }
      this.initiatorName = ini;
      const st = this.loginPairs.get('SessionType') ?? 'Normal';
      if (st !== 'Normal' && st !== 'Discovery') {
        this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_NO_SESSION_TYPE, 'session type');
        return;
      }
      this.sessionType = st;
      if (st === 'Normal') {
        const tn = this.loginPairs.get('TargetName');
        if (!tn) {
          this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_MISSING_FIELDS, 'no TargetName');
          return;
        }
        this.targetName = tn;
        const t = this.registry.findTarget(tn);
        if (!t) {
          this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_TGT_NOT_FOUND, 'no such target');
          return;
        }
        if (!t.admits(ini)) {
          this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_TGT_FORBIDDEN, 'ACL');
          return;
        }
        this.target = t;
      }
      this.log = this.log.child({ initiator: ini, target: this.targetName || 'discovery' });
    }

    const accounts = this.sessionType === 'Discovery' ? this.registry.discoveryChap : (this.target?.config.chap ?? []);
    const out: TextPairs = [];
    if (req.csg === I.ISCSI_SECURITY_NEGOTIATION_STAGE) {
      const r = this.security(req, pairs, accounts, out);
      if (r === 'failed') return;
    } else if (!this.authDone) {
      if (accounts.length > 0) {
        this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_AUTH_FAILED, 'skipped security');
        return;
      }
      this.authDone = true;
    }
    if (req.csg === I.ISCSI_OP_PARMS_NEGOTIATION_STAGE || req.csg === I.ISCSI_SECURITY_NEGOTIATION_STAGE) {
      out.push(...negotiate(pairs, this.params, this.prefs, this.sessionType === 'Discovery'));
    }
    // Operational keys go out in the operational stage, or when security transits straight to full feature:
    // open-iscsi refuses MaxRecvDataSegmentLength in a security-stage reply that moves to operational.
    if (req.csg === I.ISCSI_OP_PARMS_NEGOTIATION_STAGE || (req.transit && this.authDone && req.nsg === I.ISCSI_FULL_FEATURE_PHASE)) {
      if (!this.sentTargetParams) {
        this.sentTargetParams = true;
        this.params.targetMaxRecvDataSegmentLength = this.prefs.maxRecvDataSegmentLength;
        out.push(['MaxRecvDataSegmentLength', String(this.prefs.maxRecvDataSegmentLength)]);
        if (this.target) {
          out.push(['TargetPortalGroupTag', String(this.registry.portalGroupTag ?? 1)]);
          if (this.target.config.alias) out.push(['TargetAlias', this.target.config.alias]);
        }
      }
    }
    let transit = req.transit;
    let nsg = req.nsg;
    if (req.csg === I.ISCSI_SECURITY_NEGOTIATION_STAGE && !this.authDone) transit = false;
    if (transit && nsg === I.ISCSI_FULL_FEATURE_PHASE) {
      const res = this.registry.completeLogin(this, {
        initiatorName: this.initiatorName,
        isid: this.isid,
        tsih: this.tsih,
        cid: this.cid,
        discovery: this.sessionType === 'Discovery',
        target: this.target,
        cmdSN: this.loginExpCmdSN,
      });
      if (typeof res === 'number') {
        this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, res, 'session');
        return;
      }
      this.session = res;
      this.tsih = res.tsih;
      this.loginReply(req, 0, 0, out, true, nsg);
      this.stage = 'full';
      this.framing.opts = {
        headerDigest: this.params.headerDigest,
        dataDigest: this.params.dataDigest,
        maxDataSegmentLength: this.params.targetMaxRecvDataSegmentLength,
      };
      this.log.info({ tsih: res.tsih, discovery: this.sessionType === 'Discovery', params: this.params }, 'iscsi.login.ok');
      return;
    }
    if (transit && nsg === I.ISCSI_OP_PARMS_NEGOTIATION_STAGE) this.stage = 'operational';
    if (transit && nsg <= req.csg) nsg = req.csg;
    this.loginReply(req, 0, 0, out, transit, nsg);
  }

  /** Security stage: AuthMethod choice and the CHAP exchange. */
  private security(req: LoginRequest, pairs: TextPairs, accounts: ChapAccount[], out: TextPairs): 'ok' | 'failed' {
    const get = (k: string): string | undefined => pairs.find(([kk]) => kk === k)?.[1];
    const methods = get('AuthMethod');
    const needChap = accounts.length > 0;
    if (methods !== undefined && this.chapStep === 'none') {
      const list = methods.split(',');
      if (needChap) {
        if (!list.includes('CHAP')) {
          this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_AUTH_FAILED, 'CHAP required');
          return 'failed';
        }
        out.push(['AuthMethod', 'CHAP']);
        this.chapStep = 'method';
        return 'ok';
      }
      if (!list.includes('None')) {
        out.push(['AuthMethod', 'Reject']);
        this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_AUTH_FAILED, 'no common auth');
        return 'failed';
      }
      out.push(['AuthMethod', 'None']);
      this.authDone = true;
      return 'ok';
    }
    if (!needChap) {
      this.authDone = true;
      return 'ok';
    }
    if (this.chapStep === 'none') {
      this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_AUTH_FAILED, 'no AuthMethod');
      return 'failed';
    }
    if (this.chapStep === 'method') {
      const algs = get('CHAP_A');
      if (algs === undefined) return 'ok';
      if (!algs.split(',').includes(CHAP_MD5)) {
        out.push(['CHAP_A', 'Reject']);
        this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_AUTH_FAILED, 'CHAP_A');
        return 'failed';
      }
      this.chap = new ChapExchange(accounts);
      out.push(['CHAP_A', CHAP_MD5], ['CHAP_I', String(this.chap.id)], ['CHAP_C', `0x${this.chap.challenge.toString('hex')}`]);
      this.chapStep = 'challenge';
      return 'ok';
    }
    const name = get('CHAP_N');
    const resp = get('CHAP_R');
    const chap = this.chap;
    if (!chap || name === undefined || resp === undefined) {
      this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_AUTH_FAILED, 'CHAP response missing');
      return 'failed';
    }
    const account = chap.verify(name, resp);
    if (!account) {
      this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_AUTH_FAILED, 'CHAP mismatch');
      return 'failed';
    }
    const mi = get('CHAP_I');
    const mc = get('CHAP_C');
    if (mi !== undefined || mc !== undefined) {
      const ans = mi !== undefined && mc !== undefined ? chap.mutualAnswer(account, mi, mc) : undefined;
      if (!ans) {
        this.loginFail(req, I.ISCSI_STATUS_CLS_INITIATOR_ERR, I.ISCSI_LOGIN_STATUS_AUTH_FAILED, 'mutual CHAP');
        return 'failed';
      }
      out.push(['CHAP_N', ans.name], ['CHAP_R', ans.response]);
    }
    this.authDone = true;
    this.chapStep = 'none';
    return 'ok';
  }

  // ---- full feature phase: command sequencing -----------------------------------------------------

  /** Check and consume a CmdSN; false if the PDU must be silently dropped (outside the window). */
  private acceptCmdSN(immediate: boolean, cmdSN: number): boolean {
    const s = this.session as Session;
    if (immediate) return true;
    if (snLess(cmdSN, s.expCmdSN) || snLess(s.maxCmdSN(), cmdSN)) {
      this.log.debug({ cmdSN, expCmdSN: s.expCmdSN }, 'iscsi.cmdsn.out_of_window');
      return false;
    }
    if (cmdSN === s.expCmdSN) s.expCmdSN = (s.expCmdSN + 1) >>> 0;
    else s.expCmdSN = (cmdSN + 1) >>> 0; // single connection: a gap can only mean a dropped PDU
    return true;
  }

  private onScsiCommand(p: ScsiCommand, raw: RawPdu): void {
    const s = this.session as Session;
    if (s.discovery) {
      this.sendReject(I.ISCSI_REASON_PROTOCOL_ERROR, raw.bhs);
      return;
    }
    if (!this.acceptCmdSN(p.immediate, p.cmdSN)) return;
    if (this.tasks.has(p.itt)) {
      this.sendReject(I.ISCSI_REASON_TASK_IN_PROGRESS, raw.bhs);
      return;
    }
    if (p.data.length > 0 && (!p.write || !this.params.immediateData || p.data.length > this.params.firstBurstLength)) {
      this.sendReject(I.ISCSI_REASON_PROTOCOL_ERROR, raw.bhs);
      return;
    }
    let cdb = p.cdb;
    if (p.ahs.length > 0) {
      // extended CDB AHS (type 1): length(2) type(1) reserved(1) then CDB bytes 16..
      const len = p.ahs.readUInt16BE(0);
      if (p.ahs[2] === 1 && len >= 1 && 4 + len - 1 <= p.ahs.length) {
        cdb = Buffer.concat([p.cdb, p.ahs.subarray(4, 4 + len - 1)]);
      }
    }
    const wantOut = p.write ? p.expectedDataTransferLength : 0;
    if (wantOut > MAX_WRITE_EDTL || this.pendingWriteBytes + wantOut > MAX_PENDING_WRITE_BYTES) {
      // Refuse before allocating anything; later Data-Out for this ITT is dropped as unknown.
      this.respondStatus(p.itt, p.expectedDataTransferLength, wantOut > MAX_WRITE_EDTL ? S.SAM_STAT_CHECK_CONDITION : S.SAM_STAT_BUSY);
      return;
    }
    let finish: () => void = () => undefined;
    const done = new Promise<void>((r) => (finish = r));
    const t: Task = {
      itt: p.itt,
      lun: lunNumber(p.lun),
      cdb: Buffer.from(cdb),
      edtl: p.expectedDataTransferLength,
      read: p.read,
      wantOut,
      buf: undefined,
      received: 0,
      unsolicitedOpen: false,
      unsolicitedDataSN: 0,
      requested: 0,
      r2ts: [],
      r2tSN: 0,
      executing: false,
      aborted: false,
      done,
      finish,
    };
    this.tasks.set(p.itt, t);
    const placed = this.placedWrite;
    this.placedWrite = undefined;
    if (wantOut > 0) {
      this.pendingWriteBytes += wantOut;
      if (placed !== undefined && placed.itt === p.itt && placed.buf.length === wantOut) t.buf = placed.buf;
      else if (p.data.length === wantOut) t.buf = p.data;
      else {
        t.buf = POOLED_WRITE_OPCODES.has(t.cdb[0] ?? -1) ? writePool.get(wantOut) : Buffer.allocUnsafe(wantOut);
        p.data.copy(t.buf, 0);
      }
      t.received = Math.min(p.data.length, wantOut);
      t.requested = t.received;
      if (!this.params.initialR2T && !p.final) {
        t.unsolicitedOpen = true;
        t.requested = Math.min(wantOut, this.params.firstBurstLength);
      }
    }
    this.advance(t);
  }

  /** Move a task on: request more data (R2T) or execute once all Data-Out is in. */
  private advance(t: Task): void {
    if (t.aborted || t.executing) return;
    if (t.received >= t.wantOut) {
      void this.execute(t);
      return;
    }
    if (t.unsolicitedOpen) return;
    const pdus: Array<{ pdu: TargetPdu }> = [];
    while (t.requested < t.wantOut && t.r2ts.length < this.params.maxOutstandingR2T) {
      const length = Math.min(this.params.maxBurstLength, t.wantOut - t.requested);
      const r: PendingR2T = { ttt: this.allocTtt(), offset: t.requested, length, received: 0, nextDataSN: 0 };
      t.r2ts.push(r);
      t.requested += length;
      pdus.push({
        pdu: {
          kind: 'r2t',
          lun: 0n,
          itt: t.itt,
          ttt: r.ttt,
          ...this.seq(false),
          r2tSN: t.r2tSN++,
          bufferOffset: r.offset,
          desiredDataTransferLength: length,
        },
      });
    }
    if (pdus.length) this.send(pdus);
  }

  private allocTtt(): number {
    const t = this.nextTtt;
    this.nextTtt = this.nextTtt >= 0x7fffffff ? 1 : this.nextTtt + 1;
    return t;
  }

  private onDataOut(d: DataOut): void {
    const t = this.tasks.get(d.itt);
    if (!t || t.executing) return; // aborted, failed or unknown task: drop the data
    const buf = t.buf;
    const bad = (why: string): void => this.failTask(t, why);
    if (!buf || d.bufferOffset + d.data.length > t.wantOut) return bad('Data-Out beyond expected length');
    if (d.ttt === I.RESERVED_TAG) {
      if (!t.unsolicitedOpen) return bad('unexpected unsolicited Data-Out');
      if (d.dataSN !== t.unsolicitedDataSN) return bad(`unsolicited DataSN ${d.dataSN} != ${t.unsolicitedDataSN}`);
      if (d.bufferOffset + d.data.length > this.params.firstBurstLength) return bad('unsolicited data beyond FirstBurstLength');
      t.unsolicitedDataSN++;
      // The receiver may have read it there already (placeData).
      copyUnlessInPlace(d.data, buf, d.bufferOffset);
      t.received += d.data.length;
      if (d.final) t.unsolicitedOpen = false;
    } else {
      const r = t.r2ts.find((x) => x.ttt === d.ttt);
      if (!r) return bad('Data-Out for unknown TTT');
      if (d.dataSN !== r.nextDataSN) return bad(`DataSN ${d.dataSN} != ${r.nextDataSN}`);
      if (d.bufferOffset < r.offset || d.bufferOffset + d.data.length > r.offset + r.length) {
        return bad('Data-Out outside its R2T');
      }
      r.nextDataSN++;
      // The receiver may have read it there already (placeData).
      copyUnlessInPlace(d.data, buf, d.bufferOffset);
      r.received += d.data.length;
      t.received += d.data.length;
      if (d.final) {
        if (r.received !== r.length) return bad('R2T sequence ended short');
        t.r2ts.splice(t.r2ts.indexOf(r), 1);
      }
    }
    this.advance(t);
  }

  /**
   * A Data-Out sequence error (RFC 7143 §7.1.4, at ERL 0): the command ends with CHECK CONDITION, ABORTED COMMAND
   * / DATA PHASE ERROR; its remaining Data-Out PDUs are dropped, and the connection stays up.
   */
  private failTask(t: Task, why: string): void {
    this.log.info({ itt: t.itt, why }, 'iscsi.data_out.sequence_error');
    this.tasks.delete(t.itt);
    this.unbudget(t);
    t.aborted = true;
    t.finish();
    this.respond(t, {
      status: S.SAM_STAT_CHECK_CONDITION,
      sense: senseBytes(SENSE.dataPhaseError),
    });
  }

  /** Release a task's share of the pending-write budget (once). */
  private unbudget(t: Task): void {
    if (t.wantOut > 0 && !t.unbudgeted) {
      t.unbudgeted = true;
      this.pendingWriteBytes -= t.wantOut;
    }
  }

  /** Answer a command that was never queued (limit hit) with a bare status. */
  private respondStatus(itt: number, edtl: number, status: number): void {
    const sense =
      status === S.SAM_STAT_CHECK_CONDITION ? senseBytes(SENSE.invalidFieldInCdb()) : undefined;
    const t = { itt, edtl, read: false, r2tSN: 0 } as Task;
    this.respond(t, sense ? { status, sense } : { status });
  }

  private async execute(t: Task): Promise<void> {
    t.executing = true;
    this.unbudget(t);
    const s = this.session as Session;
    let result: ScsiResult;
    try {
      result = await s.execute(t.lun, {
        cdb: t.cdb,
        dataOut: t.buf && t.wantOut > 0 ? t.buf.subarray(0, t.received) : undefined,
        expectedLength: t.edtl,
        nexus: s.nexus,
      });
    } catch (e) {
      this.log.error({ err: e instanceof Error ? e.message : String(e) }, 'iscsi.scsi.internal_error');
      result = {
        status: S.SAM_STAT_CHECK_CONDITION,
        sense: senseBytes(SENSE.internalTargetFailure),
      };
    }
    this.tasks.delete(t.itt);
    t.finish();
    // A pooled Data-Out buffer is reused only after a write that completed (a failed one may still be held).
    if (t.buf !== undefined && result.status === S.SAM_STAT_GOOD) writePool.release(t.buf);
    if (t.aborted || this.closed) return;
    this.respond(t, result);
  }

  /** Data-In (with phase collapse when possible) and/or SCSI Response, with residuals. */
  private respond(t: Task, r: ScsiResult): void {
    let flags = 0;
    let residual = 0;
    let data = r.data;
    if (data && data.length > 0) {
      const allowed = t.read ? t.edtl : 0;
      if (data.length > allowed) {
        flags = I.ISCSI_FLAG_CMD_OVERFLOW;
        residual = data.length - allowed;
        data = data.subarray(0, allowed);
      } else if (data.length < t.edtl) {
        flags = I.ISCSI_FLAG_CMD_UNDERFLOW;
        residual = t.edtl - data.length;
      }
    } else if (r.dataOutWanted !== undefined) {
      if (r.dataOutWanted > t.edtl) {
        flags = I.ISCSI_FLAG_CMD_OVERFLOW;
        residual = r.dataOutWanted - t.edtl;
      } else if (r.dataOutWanted < t.edtl) {
        flags = I.ISCSI_FLAG_CMD_UNDERFLOW;
        residual = t.edtl - r.dataOutWanted;
      }
    } else if (t.edtl > 0) {
      flags = I.ISCSI_FLAG_CMD_UNDERFLOW;
      residual = t.edtl;
    }
    const pdus: Array<{ pdu: TargetPdu; data?: Buffer }> = [];
    const collapse = !r.sense && (r.status === S.SAM_STAT_GOOD || r.status === S.SAM_STAT_CONDITION_MET);
    let dataSN = 0;
    if (data && data.length > 0) {
      const mrdsl = this.params.initiatorMaxRecvDataSegmentLength;
      const burst = this.params.maxBurstLength;
      for (let off = 0; off < data.length; ) {
        const inBurst = burst - (off % burst);
        const n = Math.min(mrdsl, data.length - off, inBurst);
        const last = off + n === data.length;
        const endOfBurst = n === inBurst;
        const withStatus = last && collapse;
        const piece = data.subarray(off, off + n);
        pdus.push({
          pdu: {
            kind: 'data-in',
            flags:
              (last || endOfBurst ? I.ISCSI_FLAG_FINAL : 0) | (withStatus ? I.ISCSI_FLAG_DATA_STATUS | flags : 0),
            status: withStatus ? r.status : 0,
            lun: 0n,
            itt: t.itt,
            ttt: I.RESERVED_TAG,
            ...this.seq(withStatus),
            dataSN: dataSN++,
            bufferOffset: off,
            residualCount: withStatus ? residual : 0,
            data: piece,
          },
          data: piece,
        });
        off += n;
      }
      if (collapse) {
        if (r.release) this.outDone.push(r.release);
        this.send(pdus);
        return;
      }
    }
    let senseData = Buffer.alloc(0);
    if (r.sense) {
      senseData = Buffer.alloc(2 + r.sense.length);
      senseData.writeUInt16BE(r.sense.length, 0);
      r.sense.copy(senseData, 2);
    }
    pdus.push({
      pdu: {
        kind: 'scsi-rsp',
        flags,
        response: I.ISCSI_STATUS_CMD_COMPLETED,
        status: r.status,
        itt: t.itt,
        snackTag: 0,
        ...this.seq(true),
        expDataSN: dataSN + t.r2tSN,
        bidiResidualCount: 0,
        residualCount: residual,
        data: senseData,
      },
      data: senseData,
    });
    if (r.release) this.outDone.push(r.release);
    this.send(pdus);
  }

  // ---- NOP, TMF, text, logout --------------------------------------------------------------------

  private onNopOut(p: NopOut): void {
    if (p.ttt !== I.RESERVED_TAG) {
      if (p.ttt === this.pingTtt) this.pingTtt = undefined;
      return; // answer to our ping; it carries no CmdSN
    }
    if (!this.acceptCmdSN(p.immediate, p.cmdSN)) return;
    if (p.itt === I.RESERVED_TAG) return;
    const data = Buffer.from(p.data.subarray(0, Math.min(p.data.length, this.params.initiatorMaxRecvDataSegmentLength)));
    this.send([{ pdu: { kind: 'nop-in', lun: p.lun, itt: p.itt, ttt: I.RESERVED_TAG, ...this.seq(true), data }, data }]);
  }

  private keepAlive(): void {
    if (this.closed || this.stage !== 'full') return;
    const now = this.registry.clock.now();
    if (this.pingTtt !== undefined) {
      if (now - this.pingSentMs > this.registry.nopInTimeoutMs) {
        this.log.warn({ tsih: this.session?.tsih }, 'iscsi.conn.ping_timeout');
        this.close('ping timeout');
      }
      return;
    }
    if (now - this.lastHeardMs >= this.registry.nopInIntervalMs) {
      this.pingTtt = this.allocTtt();
      this.pingSentMs = now;
      this.send([{ pdu: { kind: 'nop-in', lun: 0n, itt: I.RESERVED_TAG, ttt: this.pingTtt, ...this.seq(false), data: Buffer.alloc(0) } }]);
    }
  }

  private onTaskMgmt(p: TaskMgmtRequest): void {
    if (!this.acceptCmdSN(p.immediate, p.cmdSN)) return;
    const s = this.session as Session;
    const reply = (response: number): void => {
      this.send([{ pdu: { kind: 'tmf-rsp', response, itt: p.itt, ...this.seq(true) } }]);
    };
    if (s.discovery) {
      reply(I.ISCSI_TMF_RSP_REJECTED);
      return;
    }
    const lun = lunNumber(p.lun);
    switch (p.func) {
      case I.ISCSI_TM_FUNC_ABORT_TASK: {
        const t = this.tasks.get(p.referencedTaskTag);
        if (!t) {
          reply(I.ISCSI_TMF_RSP_NO_TASK);
          return;
        }
        void this.abortTasks([t]).then(() => reply(I.ISCSI_TMF_RSP_COMPLETE));
        return;
      }
      case I.ISCSI_TM_FUNC_ABORT_TASK_SET:
      case I.ISCSI_TM_FUNC_CLEAR_TASK_SET: {
        if (!s.hasLun(lun)) {
          reply(I.ISCSI_TMF_RSP_NO_LUN);
          return;
        }
        const ts = [...this.tasks.values()].filter((t) => t.lun === lun && t.itt !== p.itt);
        void this.abortTasks(ts).then(() => reply(I.ISCSI_TMF_RSP_COMPLETE));
        return;
      }
      case I.ISCSI_TM_FUNC_LOGICAL_UNIT_RESET: {
        if (!s.hasLun(lun)) {
          reply(I.ISCSI_TMF_RSP_NO_LUN);
          return;
        }
        const ts = [...this.tasks.values()].filter((t) => t.lun === lun);
        void this.abortTasks(ts)
          .then(() => this.registry.lunReset(s, lun))
          .then(() => reply(I.ISCSI_TMF_RSP_COMPLETE));
        return;
      }
      case I.ISCSI_TM_FUNC_TARGET_WARM_RESET:
      case I.ISCSI_TM_FUNC_TARGET_COLD_RESET: {
        const cold = p.func === I.ISCSI_TM_FUNC_TARGET_COLD_RESET;
        void this.abortTasks([...this.tasks.values()])
          .then(() => this.registry.targetReset(s, cold))
          .then(() => {
            reply(I.ISCSI_TMF_RSP_COMPLETE);
            if (cold) this.endSocket(() => this.close('target cold reset'));
          });
        return;
      }
      case I.ISCSI_TM_FUNC_CLEAR_ACA:
      case I.ISCSI_TM_FUNC_TASK_REASSIGN:
        reply(I.ISCSI_TMF_RSP_NOT_SUPPORTED);
        return;
      default:
        reply(I.ISCSI_TMF_RSP_REJECTED);
    }
  }

  /** Abort tasks of this connection: drop those waiting for data, wait for those executing. */
  async abortTasks(ts: Task[]): Promise<void> {
    for (const t of ts) {
      t.aborted = true;
      if (!t.executing) {
        this.tasks.delete(t.itt);
        this.unbudget(t);
        t.finish();
      }
    }
    await Promise.all(ts.map((t) => t.done));
  }

  /** Resolves once every command already executing has answered (or after `timeoutMs`); for a graceful stop. */
  async drain(timeoutMs: number): Promise<void> {
    const running = [...this.tasks.values()].filter((t) => t.executing).map((t) => t.done);
    let timer: ClockTimer | undefined;
    await Promise.race([Promise.all(running), new Promise<void>((r) => (timer = this.registry.clock.setTimeout(r, timeoutMs)))]);
    this.registry.clock.clear(timer);
    await new Promise<void>((r) => setImmediate(r)); // let the last responses be flushed
    this.flush();
  }

  /** Abort every task on one LUN (LU reset requested through another session). */
  abortLun(lun: number): Promise<void> {
    return this.abortTasks([...this.tasks.values()].filter((t) => t.lun === lun));
  }

  private onText(p: TextRequest, raw: RawPdu): void {
    if (!this.acceptCmdSN(p.immediate, p.cmdSN)) return;
    const reply = (data: Buffer, final: boolean, ttt: number): void => {
      this.send([{ pdu: { kind: 'text-rsp', final, cont: !final, lun: p.lun, itt: p.itt, ttt, ...this.seq(true), data }, data }]);
    };
    if (p.ttt !== I.RESERVED_TAG) {
      const pend = this.textPending;
      if (!pend || pend.ttt !== p.ttt) {
        this.sendReject(I.ISCSI_REASON_PROTOCOL_ERROR, raw.bhs);
        return;
      }
      this.sendTextPiece(pend.rest, reply);
      return;
    }
    this.textPending = undefined;
    this.textIn.push(Buffer.from(p.data));
    const total = this.textIn.reduce((a, b) => a + b.length, 0);
    if (total > MAX_TEXT_BYTES) {
      this.textIn = [];
      this.sendReject(I.ISCSI_REASON_PROTOCOL_ERROR, raw.bhs);
      return;
    }
    if (p.cont) {
      reply(Buffer.alloc(0), false, this.allocTtt());
      return;
    }
    let pairs: TextPairs;
    try {
      pairs = parseText(Buffer.concat(this.textIn));
    } catch {
      this.textIn = [];
      this.sendReject(I.ISCSI_REASON_PROTOCOL_ERROR, raw.bhs);
      return;
    }
    this.textIn = [];
    const out: TextPairs = [];
    for (const [k, v] of pairs) {
      if (k === 'SendTargets') {
        out.push(...this.registry.sendTargets(this.session as Session, v, this.socket.localAddress, this.socket.localPort));
      } else if (k.startsWith('X-') || k.startsWith('X#')) out.push([k, 'NotUnderstood']);
      else out.push([k, 'NotUnderstood']);
    }
    this.sendTextPiece(encodeText(out), reply);
  }

  private sendTextPiece(all: Buffer, reply: (d: Buffer, final: boolean, ttt: number) => void): void {
    const max = this.params.initiatorMaxRecvDataSegmentLength;
    if (all.length <= max) {
      this.textPending = undefined;
      reply(all, true, I.RESERVED_TAG);
      return;
    }
    const ttt = this.allocTtt();
    this.textPending = { ttt, rest: all.subarray(max) };
    reply(all.subarray(0, max), false, ttt);
  }

  private onLogout(p: LogoutRequest): void {
    if (!this.acceptCmdSN(p.immediate, p.cmdSN)) return;
    let response = I.ISCSI_LOGOUT_SUCCESS;
    if (p.reason === I.ISCSI_LOGOUT_REASON_RECOVERY) response = I.ISCSI_LOGOUT_RECOVERY_UNSUPPORTED;
    else if (p.reason === I.ISCSI_LOGOUT_REASON_CLOSE_CONNECTION && p.cid !== this.cid) response = I.ISCSI_LOGOUT_CID_NOT_FOUND;
    const session = this.session;
    void this.abortTasks([...this.tasks.values()])
      .then(() => (response === I.ISCSI_LOGOUT_SUCCESS && session ? this.registry.releaseNexus?.(session) : undefined))
      .catch((err: unknown) => this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'iscsi.logout_release_failed'))
      .then(() => {
        this.send([{ pdu: { kind: 'logout-rsp', response, itt: p.itt, ...this.seq(true), time2Wait: 0, time2Retain: 0 } }]);
        if (response === I.ISCSI_LOGOUT_SUCCESS) {
          this.log.info({ tsih: this.session?.tsih }, 'iscsi.logout');
          this.endSocket(() => this.close('logout'));
        }
      });
  }
}
