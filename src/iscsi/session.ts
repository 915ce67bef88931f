// iSCSI sessions and targets at run time: a Session is one I_T nexus (initiator name + ISID on one target)
// with its CmdSN window; a TargetRuntime is one configured target with its LUs and ACL. The TargetRegistry is
// what a Connection needs from the server (target lookup, session creation and reinstatement, resets).
import type { ChapAccount } from './chap.js';
import type { Clock } from '../util/clock.js';
import type { IscsiTargetConfig } from './config.js';
import type { TargetPreferences } from './params.js';
import * as S from '../proto/scsi/constants.js';
import { SENSE, checkCondition, senseBytes } from './scsi/sense-table.js';
import type { LogicalUnit, ScsiRequest, ScsiResult } from './scsi/lu.js';
import type { TextPairs } from '../proto/iscsi/text.js';

/** One configured target with its logical units. */
export class TargetRuntime {
  constructor(
    readonly config: IscsiTargetConfig,
    readonly lus: Map<number, LogicalUnit>,
  ) {}

  /** Initiator ACL by IQN; an empty list admits everyone. */
  admits(initiatorName: string): boolean {
    const acl = this.config.initiators;
    return !acl || acl.length === 0 || acl.includes(initiatorName);
  }
}

export interface LoginIdentity {
  initiatorName: string;
  isid: number;
  tsih: number;
  cid: number;
  discovery: boolean;
  target: TargetRuntime | undefined;
  cmdSN: number;
}

/** What a session and the server need of the session's connection (a Connection). */
export interface SessionConnection {
  readonly isClosed: boolean;
  close(reason: string): void;
  /** Abort this connection's tasks on one LU (another nexus reset it). */
  abortLun(lun: number): Promise<void>;
}

/** What connections need from the server. */
export interface TargetRegistry {
  readonly preferences: TargetPreferences;
  readonly discoveryChap: ChapAccount[];
  readonly nopInIntervalMs: number;
  readonly nopInTimeoutMs: number;
  /** Time source of the connections' keep-alive and drain timers. */
  readonly clock: Clock;
  /** Target portal group tag of this server's portal (login TargetPortalGroupTag, SendTargets); default 1. */
  readonly portalGroupTag?: number;
  findTarget(name: string): TargetRuntime | undefined;
  /** Create (or reinstate) the session for a completed login; a number is a login status detail to fail with. */
  completeLogin(conn: SessionConnection, who: LoginIdentity): Session | number;
  connectionClosed(session: Session, conn: SessionConnection): void;
  sendTargets(session: Session, value: string, localAddress: string | undefined, localPort: number | undefined): TextPairs;
  lunReset(session: Session, lun: number): Promise<void>;
  targetReset(session: Session, cold: boolean): Promise<void>;
  /**
   * A session is logging out: release what its I_T nexus holds on every LU (the SCSI-2 reservation, kept in the
   * cluster for shared exports) before the Logout Response, so another initiator may reserve as soon as it sees it.
   */
  releaseNexus?(session: Session): Promise<void>;
}

/** An iSCSI session (one connection: MaxConnections=1). */
export class Session {
  expCmdSN: number;
  /** Initiator port name: the I_T nexus id used for reservations. */
  readonly nexus: string;
  conn: SessionConnection | undefined;

  constructor(
    readonly tsih: number,
    readonly initiatorName: string,
    readonly isid: number,
    readonly target: TargetRuntime | undefined,
    readonly discovery: boolean,
    cmdSN: number,
    private readonly queueDepth: number,
  ) {
    this.expCmdSN = cmdSN >>> 0;
    this.nexus = `${initiatorName},i,0x${isid.toString(16).padStart(12, '0')}`;
  }

  maxCmdSN(): number {
    return (this.expCmdSN + this.queueDepth - 1) >>> 0;
  }

  hasLun(lun: number): boolean {
    return this.target?.lus.has(lun) ?? false;
  }

  /** Run a SCSI command on a LUN; REPORT LUNS and commands to absent LUNs are answered here (SPC-4 §4.6.21). */
  async execute(lun: number, req: ScsiRequest): Promise<ScsiResult> {
    const op = req.cdb[0] ?? 0;
    const lus = this.target?.lus ?? new Map<number, LogicalUnit>();
    if (op === S.REPORT_LUNS) return reportLuns(lus, req.cdb);
    const lu = lus.get(lun);
    if (lu) return lu.execute(req);
    if (op === S.INQUIRY) {
      const b = Buffer.alloc(36);
      b[0] = 0x7f; // peripheral qualifier 011b: no LU at this LUN
      b[4] = 31;
      const alloc = req.cdb.readUInt16BE(3);
      return { status: S.SAM_STAT_GOOD, data: b.subarray(0, Math.min(36, alloc)) };
    }
    if (op === S.REQUEST_SENSE) {
      const s = senseBytes(SENSE.lunNotSupported);
      return { status: S.SAM_STAT_GOOD, data: s.subarray(0, Math.min(s.length, req.cdb[4] ?? 0)) };
    }
    return checkCondition(SENSE.lunNotSupported);
  }
}

/** REPORT LUNS parameter data (SPC-4 §6.33). */
function reportLuns(lus: Map<number, LogicalUnit>, cdb: Buffer): ScsiResult {
  const select = cdb[2] ?? 0;
  const alloc = cdb.readUInt32BE(6);
  if (select > 2 && select !== 0x10 && select !== 0x11 && select !== 0x12) {
    return checkCondition(SENSE.invalidFieldInCdb(2));
  }
  if (alloc < 16) {
    return checkCondition(SENSE.invalidFieldInCdb(6));
  }
  const luns = select === 1 ? [] : [...lus.keys()].sort((a, b) => a - b);
  const b = Buffer.alloc(8 + 8 * luns.length);
  b.writeUInt32BE(8 * luns.length, 0);
  luns.forEach((n, i) => {
    const first = n < 256 ? n : 0x4000 | (n & 0x3fff);
    b.writeUInt16BE(first, 8 + 8 * i);
  });
  return { status: S.SAM_STAT_GOOD, data: b.length > alloc ? b.subarray(0, alloc) : b };
}
