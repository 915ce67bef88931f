// A SCSI logical unit (SBC-3 direct-access block device, SPC-4 primary commands) on a BlockDevice.
// validate → handle → reply: each CDB is parsed once, checked (range, reserved fields, reservations, write
// protection), executed on the device, and answered with status + sense (fixed or descriptor format, per the
// Control mode page D_SENSE bit). BlockError codes map to sense in one table (./sense-table.ts).
import type { BlockDevice } from '../../block/device.js';
import { BufferPool } from '../../nbd/pool.js';
import * as C from '../../proto/scsi/constants.js';
import { parseCdb, type BlockCdb, type OtherCdb } from '../../proto/scsi/cdb.js';
import type { Sense } from '../../proto/scsi/sense.js';
import { checkCondition, senseBytes, senseForError } from './sense-table.js';
import { LocalRangeLock, type RangeLock } from './rangelock.js';
import { LocalReservationStore, type AccessKind, type ReservationStore } from './pr.js';
import { ModePages } from './mode.js';
import { buildInquiry, type InquiryContext } from './inquiry.js';
import { firstDifference } from '../../util/bytes.js';
import { TPGS_IMPLICIT_EXPLICIT, type AluaPort } from './alua.js';
import { reportSupportedOpcodes, reportSupportedTmf } from './opcodes.js';
import { copyOperatingParameters, copyStatusData, cscdDesignator, extendedCopy, type CopyStatus, type CopyTarget } from './xcopy.js';

export interface ScsiRequest {
  cdb: Buffer;
  /** Data-Out received for this command (at most the iSCSI expected transfer length). */
  dataOut: Buffer | undefined;
  /** iSCSI Expected Data Transfer Length. */
  expectedLength: number;
  /** Initiator port name (I_T nexus) the command came from. */
  nexus: string;
  /** When the LU accepted the command (set by execute); writes pass it to the device's write fence. */
  issuedAt?: number;
}

export interface ScsiResult {
  status: number;
  sense?: Buffer;
  /** Data-In (already cut to the allocation length). */
  data?: Buffer;
  /** Bytes of Data-Out the command asked for (for iSCSI residuals on writes). */
  dataOutWanted?: number;
  /** Gives `data`'s pooled buffer back; the front end calls it once the transport is done with the bytes. */
  release?: () => void;
}

/** Idle READ buffers kept for reuse across every LU of the process (bytes). */
export const LU_READ_POOL_BYTES = 64 * 1024 * 1024;
const readPool = new BufferPool(LU_READ_POOL_BYTES);

export interface LogicalUnitOptions {
  /** Range lock shared by all sessions on this device (default: a new in-process one). */
  lock?: RangeLock;
  reservations?: ReservationStore;
  /** Target IQN and port identity for VPD 0x83. */
  targetName?: string;
  relativePortId?: number;
  vendor?: string;
  product?: string;
  revision?: string;
  /** Present a removable medium (RMB=1): START STOP UNIT can eject and load it, PREVENT ALLOW can pin it. */
  removable?: boolean;
  /** EXTENDED COPY: find another LU by its CSCD designator (default: only this LU). */
  resolveCopyTarget?: (designator: Buffer) => CopyTarget | undefined;
  /** ALUA port of this target host (multipath across hosts): TPGS, port identity, REPORT/SET TARGET PORT GROUPS. */
  alua?: AluaPort;
}

/** Thrown inside handlers to end a command with CHECK CONDITION. */
class CheckCondition extends Error {
  constructor(
    readonly sense: Sense,
    readonly dataOutWanted?: number,
  ) {
    super('check condition');
  }
}
class Conflict extends Error {}

const invalidCdb = (byte: number, bit?: number): CheckCondition =>
  new CheckCondition({
    key: C.ILLEGAL_REQUEST,
    ascq: C.ASC_INVALID_FIELD_IN_CDB,
    fieldPointer: bit === undefined ? { cd: true, byte } : { cd: true, byte, bit },
  });
const outOfRange = (): CheckCondition => new CheckCondition({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_LBA_OUT_OF_RANGE });
const writeProtected = (): CheckCondition => new CheckCondition({ key: C.DATA_PROTECT, ascq: C.ASC_WRITE_PROTECTED });
const paramListLength = (): CheckCondition =>
  new CheckCondition({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_PARAMETER_LIST_LENGTH_ERROR });
const invalidParam = (byte: number): CheckCondition =>
  new CheckCondition({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldPointer: { cd: false, byte } });

const MAX_COMPARE_AND_WRITE_BLOCKS = 255;
const MAX_UNMAP_DESCRIPTORS = 256;
const MAX_WRITE_SAME_BYTES = 32 * 1024 * 1024;
/** MAXIMUM TRANSFER LENGTH and MAXIMUM ATOMIC TRANSFER LENGTH, in bytes. */
export const MAX_TRANSFER_BYTES = 32 * 1024 * 1024;
/** ATOMIC ALIGNMENT and ATOMIC TRANSFER LENGTH GRANULARITY (blocks): atomic writes cover whole 4 KiB units. */
export const ATOMIC_ALIGNMENT_BLOCKS = 8;

/** Commands that work with the medium ejected (everything else: NOT READY, MEDIUM NOT PRESENT). */
const WITHOUT_MEDIUM = new Set([
  C.INQUIRY,
  C.REPORT_LUNS,
  C.REQUEST_SENSE,
  C.START_STOP_UNIT,
  C.PREVENT_ALLOW_MEDIUM_REMOVAL,
  C.MODE_SENSE_6,
  C.MODE_SENSE_10,
  C.MODE_SELECT_6,
  C.MODE_SELECT_10,
  C.MAINTENANCE_IN,
  C.PERSISTENT_RESERVE_IN,
  C.PERSISTENT_RESERVE_OUT,
  C.RESERVE_6,
  C.RELEASE_6,
  C.RESERVE_10,
  C.RELEASE_10,
]);

const READS = new Set([C.READ_6, C.READ_10, C.READ_12, C.READ_16]);
const WRITES = new Set([C.WRITE_6, C.WRITE_10, C.WRITE_12, C.WRITE_16]);
const WRITE_VERIFIES = new Set([C.WRITE_VERIFY_10, C.WRITE_VERIFY_12, C.WRITE_VERIFY_16]);
const VERIFIES = new Set([C.VERIFY_10, C.VERIFY_12, C.VERIFY_16]);

/** Reservation access class of an opcode (SPC-4 table 41; unlisted commands count as writes). */
function accessKind(op: number, cdb: Buffer): AccessKind {
  switch (op) {
    case C.INQUIRY:
    case C.REPORT_LUNS:
    case C.REQUEST_SENSE:
    case C.PERSISTENT_RESERVE_IN:
    case C.PERSISTENT_RESERVE_OUT:
    case C.READ_CAPACITY_10:
    case C.TEST_UNIT_READY:
    case C.RELEASE_6:
    case C.RELEASE_10:
      return 'allowed';
    case C.SERVICE_ACTION_IN_16:
      return ((cdb[1] ?? 0) & 0x1f) === C.SAI_READ_CAPACITY_16 ? 'allowed' : 'read';
    case C.MAINTENANCE_IN:
      return 'allowed';
    case C.READ_6:
    case C.READ_10:
    case C.READ_12:
    case C.READ_16:
    case C.VERIFY_10:
    case C.VERIFY_12:
    case C.VERIFY_16:
    case C.PRE_FETCH_10:
    case C.PRE_FETCH_16:
    case C.MODE_SENSE_6:
    case C.MODE_SENSE_10:
    case C.READ_DEFECT_DATA_10:
    case C.READ_DEFECT_DATA_12:
      return 'read';
    default:
      return 'write';
  }
}

export class LogicalUnit {
  readonly device: BlockDevice;
  readonly blockSize: number;
  readonly blocks: bigint;
  readonly lock: RangeLock;
  readonly reservations: ReservationStore;
  readonly mode: ModePages;
  private readonly inquiryCtx: InquiryContext;
  /** Pending unit attentions per nexus (ASC/ASCQ), reported before any other command. */
  private readonly unitAttention = new Map<string, number[]>();
  /** Sense of the last failed command per nexus, for REQUEST SENSE. */
  private readonly lastSense = new Map<string, Sense>();
  readonly removable: boolean;
  private mediumPresent = true;
  /** I_T nexuses that sent PREVENT ALLOW MEDIUM REMOVAL with PREVENT=1. */
  private readonly preventers = new Set<string>();
  private readonly resolveCopyTarget: (designator: Buffer) => CopyTarget | undefined;
  /** Held EXTENDED COPY results by "nexus/list id". */
  private readonly copyResults = new Map<string, CopyStatus>();
  private readonly alua: AluaPort | undefined;

  constructor(device: BlockDevice, opts: LogicalUnitOptions = {}) {
    this.device = device;
    this.blockSize = device.blockSize;
    this.blocks = BigInt(Math.floor(device.size / device.blockSize));
    this.lock = opts.lock ?? new LocalRangeLock();
    this.reservations = opts.reservations ?? new LocalReservationStore();
    this.mode = new ModePages(device);
    this.removable = opts.removable ?? false;
    this.alua = opts.alua;
    this.resolveCopyTarget = opts.resolveCopyTarget ?? ((d) => (this.answersToDesignator(d) ? this.copyTarget() : undefined));
    this.inquiryCtx = {
      device,
      blocks: this.blocks,
      targetName: opts.targetName ?? 'iqn.2026-11.org.sheepfold:unknown',
      relativePortId: opts.alua?.relativePort ?? opts.relativePortId ?? 1,
      targetPortGroup: opts.alua?.group ?? 1,
      tpgs: opts.alua ? TPGS_IMPLICIT_EXPLICIT : 0,
      vendor: opts.vendor ?? 'SHEEPFLD',
      product: opts.product ?? 'VIRTUAL-DISK',
      revision: opts.revision ?? '0001',
      maxCompareAndWriteBlocks: MAX_COMPARE_AND_WRITE_BLOCKS,
      maxUnmapDescriptors: MAX_UNMAP_DESCRIPTORS,
      maxWriteSameBlocks: Math.floor(MAX_WRITE_SAME_BYTES / device.blockSize),
      maxTransferBlocks: Math.floor(MAX_TRANSFER_BYTES / device.blockSize),
      removable: this.removable,
      atomicAlignmentBlocks: ATOMIC_ALIGNMENT_BLOCKS,
    };
  }

  /** True if a CSCD designator (4-byte header + identifier) names this LU (our NAA-6 designator). */
  answersToDesignator(d: Buffer): boolean {
    const mine = cscdDesignator(this.device.identity.naaId);
    return d.length === mine.length && ((d[1] ?? 0) & 0x0f) === 3 && d.subarray(4).equals(mine.subarray(4));
  }

  copyTarget(): CopyTarget {
    return { device: this.device, blockSize: this.blockSize };
  }

  /** Queue a unit attention for every nexus except `except` (after a reset or a reservation change). */
  raiseUnitAttention(ascq: number, nexuses: Iterable<string>, except?: string): void {
    for (const n of nexuses) {
      if (n === except) continue;
      const q = this.unitAttention.get(n) ?? [];
      if (!q.includes(ascq)) q.push(ascq);
      this.unitAttention.set(n, q);
    }
  }

  /** LOGICAL UNIT RESET / target reset: SCSI-2 reservation cleared, mode pages keep their values. */
  reset(): void {
    void this.reservations.clearReserve2();
    this.preventers.clear();
  }

  /** An I_T nexus is logging out: its SCSI-2 reservation is released (and durable) before the logout answers. */
  async releaseNexus(nexus: string): Promise<void> {
    await this.reservations.clearReserve2(nexus);
  }

  /** An I_T nexus went away (logout, connection loss, session reinstatement). */
  nexusLost(nexus: string): void {
    void this.reservations.clearReserve2(nexus);
    this.preventers.delete(nexus);
    for (const k of [...this.copyResults.keys()]) if (k.startsWith(`${nexus}/`)) this.copyResults.delete(k);
    this.unitAttention.delete(nexus);
    this.lastSense.delete(nexus);
  }

  /** Execute one command; never throws. */
  async execute(req: ScsiRequest): Promise<ScsiResult> {
    const op = req.cdb[0] ?? 0;
    req.issuedAt ??= Date.now();
    try {
      if (op !== C.INQUIRY && op !== C.REPORT_LUNS && op !== C.REQUEST_SENSE) {
        const ua = this.unitAttention.get(req.nexus);
        if (ua && ua.length > 0) {
          const ascq = ua.shift() as number;
          if (ua.length === 0) this.unitAttention.delete(req.nexus);
          return this.check(req.nexus, { key: C.UNIT_ATTENTION, ascq });
        }
      }
      if (!this.mediumPresent && !WITHOUT_MEDIUM.has(op)) {
        return this.check(req.nexus, { key: C.NOT_READY, ascq: C.ASC_MEDIUM_NOT_PRESENT });
      }
      if (!(await this.reservations.permits(req.nexus, accessKind(op, req.cdb)))) {
        return { status: C.SAM_STAT_RESERVATION_CONFLICT };
      }
      const a = this.alua?.handle(req.cdb, req.dataOut);
      if (a) {
        const r = 'sense' in a ? this.check(req.nexus, a.sense) : this.good(a.data.length > 0 ? a.data : undefined);
        if (a.dataOutWanted !== undefined) r.dataOutWanted = a.dataOutWanted;
        return r;
      }
      const r = await this.dispatch(req);
      return r;
    } catch (e) {
      if (e instanceof CheckCondition) {
        const r = this.check(req.nexus, e.sense);
        if (e.dataOutWanted !== undefined) r.dataOutWanted = e.dataOutWanted;
        return r;
      }
      if (e instanceof Conflict) return { status: C.SAM_STAT_RESERVATION_CONFLICT };
      return this.check(req.nexus, senseForError(e, !READS.has(op)));
    }
  }

  private check(nexus: string, sense: Sense): ScsiResult {
    this.lastSense.set(nexus, sense);
    return checkCondition(sense, this.mode.descriptorSense);
  }

  private good(data?: Buffer, alloc?: number): ScsiResult {
    if (data === undefined) return { status: C.SAM_STAT_GOOD };
    return { status: C.SAM_STAT_GOOD, data: alloc !== undefined && data.length > alloc ? data.subarray(0, alloc) : data };
  }

  private async dispatch(req: ScsiRequest): Promise<ScsiResult> {
    const p = parseCdb(req.cdb);
    if (p.kind === 'unknown') {
      throw new CheckCondition({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_OPERATION_CODE, fieldPointer: { cd: true, byte: 0 } });
    }
    if (p.kind === 'block') return this.blockCommand(p, req);
    return this.otherCommand(p, req);
  }

  // ---- block commands -------------------------------------------------------------------------------

  private checkRange(lba: bigint, blocks: number): void {
    if (lba + BigInt(blocks) > this.blocks || lba > this.blocks) throw outOfRange();
  }
  /** MAXIMUM TRANSFER LENGTH (Block Limits VPD) applies to every data-moving command. */
  private checkTransfer(c: BlockCdb): void {
    if (c.blocks * this.blockSize > MAX_TRANSFER_BYTES) throw invalidCdb(c.opcode === C.READ_6 || c.opcode === C.WRITE_6 ? 4 : 7);
  }
  private writable(): void {
    if (this.device.readOnly || this.mode.softwareWriteProtect) throw writeProtected();
  }
  private byteRange(lba: bigint, blocks: number): [number, number] {
    return [Number(lba) * this.blockSize, blocks * this.blockSize];
  }
  /** Data-Out of exactly `want` bytes, or CHECK CONDITION (iSCSI EDTL shorter than the CDB asks). */
  private dataOut(req: ScsiRequest, want: number): Buffer {
    const d = req.dataOut ?? Buffer.alloc(0);
    if (d.length < want) {
      throw new CheckCondition({ key: C.ILLEGAL_REQUEST, ascq: 0x0e03 }, want);
    }
    return d.length === want ? d : d.subarray(0, want);
  }

  /** READ data: into a pooled buffer when the device reads into ours (no allocation per command). */
  private async readData(off: number, len: number): Promise<ScsiResult> {
    if (this.device.readInto === undefined) return { status: C.SAM_STAT_GOOD, data: await this.device.read(off, len) };
    const buf = readPool.get(len);
    try {
      await this.device.readInto(off, buf);
    } catch (err) {
      readPool.release(buf);
      throw err;
    }
    return { status: C.SAM_STAT_GOOD, data: buf, release: () => readPool.release(buf) };
  }

  private async blockCommand(c: BlockCdb, req: ScsiRequest): Promise<ScsiResult> {
    const op = c.opcode;
    const bs = this.blockSize;
    if (READS.has(op)) {
      if (c.protect) throw invalidCdb(1, 7);
      this.checkRange(c.lba, c.blocks);
      this.checkTransfer(c);
      if (c.blocks === 0) return this.good();
      const [off, len] = this.byteRange(c.lba, c.blocks);
      return this.readData(off, len);
    }
    if (WRITES.has(op) || WRITE_VERIFIES.has(op)) {
      if (c.protect) throw invalidCdb(1, 7);
      this.writable();
      this.checkRange(c.lba, c.blocks);
      this.checkTransfer(c);
      const want = c.blocks * bs;
      if (c.blocks === 0) return { status: C.SAM_STAT_GOOD, dataOutWanted: 0 };
      // FCP-4 / iSCSI: with EDTL below the CDB's length, only the whole blocks that were sent are written.
      const have = req.dataOut?.length ?? 0;
      const data = have >= want ? this.dataOut(req, want) : (req.dataOut ?? Buffer.alloc(0)).subarray(0, have - (have % bs));
      if (data.length === 0) return { status: C.SAM_STAT_GOOD, dataOutWanted: want };
      const [off] = this.byteRange(c.lba, c.blocks);
      const release = await this.lock.acquire(off, data.length, 'shared');
      try {
        await this.device.write(off, data, { fua: c.fua || WRITE_VERIFIES.has(op) || !this.mode.writeCacheEnabled, issuedAt: req.issuedAt });
      } finally {
        release();
      }
      return { status: C.SAM_STAT_GOOD, dataOutWanted: want };
    }
    if (VERIFIES.has(op)) return this.verify(c, req);
    switch (op) {
      case C.PRE_FETCH_10:
      case C.PRE_FETCH_16:
        this.checkRange(c.lba, c.blocks);
        return this.good();
      case C.SYNCHRONIZE_CACHE_10:
      case C.SYNCHRONIZE_CACHE_16:
        this.checkRange(c.lba, c.blocks);
        await this.device.flush();
        return this.good();
      case C.WRITE_SAME_10:
      case C.WRITE_SAME_16:
        return this.writeSame(c, req);
      case C.COMPARE_AND_WRITE:
        return this.compareAndWrite(c, req);
      case C.ORWRITE_16:
        return this.orWrite(c, req);
      case C.WRITE_ATOMIC_16:
        return this.writeAtomic(c, req);
    }
    throw invalidCdb(0);
  }

  private async verify(c: BlockCdb, req: ScsiRequest): Promise<ScsiResult> {
    if (c.protect) throw invalidCdb(1, 7);
    if (c.bytchk === 2) throw invalidCdb(1, 2);
    this.checkRange(c.lba, c.blocks);
    this.checkTransfer(c);
    if (c.blocks === 0) return { status: C.SAM_STAT_GOOD, dataOutWanted: 0 };
    const [off, len] = this.byteRange(c.lba, c.blocks);
    if (c.bytchk === 0) {
      await this.device.read(off, len);
      return this.good();
    }
    const want = c.bytchk === 3 ? this.blockSize : len;
    const data = this.dataOut(req, want);
    const medium = await this.device.read(off, len);
    for (let i = 0; i < len; i++) {
      const expect = c.bytchk === 3 ? data[i % this.blockSize] : data[i];
      if (medium[i] !== expect) {
        throw new CheckCondition({ key: C.MISCOMPARE, ascq: C.ASC_MISCOMPARE_DURING_VERIFY, information: BigInt(i) }, want);
      }
    }
    return { status: C.SAM_STAT_GOOD, dataOutWanted: want };
  }

  private async writeSame(c: BlockCdb, req: ScsiRequest): Promise<ScsiResult> {
    const bs = this.blockSize;
    if (c.protect) throw invalidCdb(1, 7);
    if (c.anchor) throw invalidCdb(1, 4);
    if (c.ndob && c.opcode === C.WRITE_SAME_10) throw invalidCdb(1, 0);
    this.writable();
    let blocks = c.blocks;
    if (blocks === 0) {
      if (c.lba > this.blocks) throw outOfRange();
      blocks = Number(this.blocks - c.lba);
    }
    this.checkRange(c.lba, blocks);
    if (blocks * bs > MAX_WRITE_SAME_BYTES) throw invalidCdb(c.opcode === C.WRITE_SAME_10 ? 7 : 10);
    let pattern: Buffer;
    if (c.ndob) pattern = Buffer.alloc(bs);
    else {
      const d = req.dataOut ?? Buffer.alloc(0);
      if (d.length !== bs) throw new CheckCondition({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_PARAMETER_LIST_LENGTH_ERROR }, bs);
      pattern = d;
    }
    if (blocks === 0) return { status: C.SAM_STAT_GOOD, dataOutWanted: c.ndob ? 0 : bs };
    const [off, len] = this.byteRange(c.lba, blocks);
    // With UNMAP set on a thin LU the range is deallocated whatever the pattern (it then reads as zeros, LBPRZ).
    const zero = (c.unmap && this.device.thin) || pattern.every((b) => b === 0);
    const release = await this.lock.acquire(off, len, 'shared');
    try {
      if (zero) {
        await this.device.writeZeroes(off, len, { mayTrim: c.unmap && this.device.thin });
      } else {
        const chunkBlocks = Math.max(1, Math.floor((1024 * 1024) / bs));
        const chunk = Buffer.allocUnsafe(Math.min(blocks, chunkBlocks) * bs);
        for (let i = 0; i < chunk.length; i += bs) pattern.copy(chunk, i);
        for (let done = 0; done < len; done += chunk.length) {
          const n = Math.min(chunk.length, len - done);
          await this.device.write(off + done, n === chunk.length ? chunk : chunk.subarray(0, n));
        }
      }
    } finally {
      release();
    }
    return { status: C.SAM_STAT_GOOD, dataOutWanted: c.ndob ? 0 : bs };
  }

  private async compareAndWrite(c: BlockCdb, req: ScsiRequest): Promise<ScsiResult> {
    if (c.protect) throw invalidCdb(1, 7);
    if (c.blocks > MAX_COMPARE_AND_WRITE_BLOCKS) throw invalidCdb(13);
    this.writable();
    this.checkRange(c.lba, c.blocks);
    const d = req.dataOut ?? Buffer.alloc(0);
    if (c.blocks === 0) {
      if (d.length > 0) throw invalidCdb(13);
      return this.good();
    }
    const [off, len] = this.byteRange(c.lba, c.blocks);
    if (d.length !== 2 * len) throw new CheckCondition({ key: C.ILLEGAL_REQUEST, ascq: 0x0e03 }, 2 * len);
    const release = await this.lock.acquire(off, len, 'exclusive');
    try {
      const fua = c.fua || !this.mode.writeCacheEnabled;
      let at = -1;
      if (this.device.compareAndWrite) {
        // The device makes it atomic across every target host sharing it (cluster-wide for a shared VDI).
        at = (await this.device.compareAndWrite(off, d.subarray(0, len), d.subarray(len), { fua, issuedAt: req.issuedAt })) ?? -1;
      } else {
        at = firstDifference(await this.device.read(off, len), d.subarray(0, len));
        if (at < 0) await this.device.write(off, d.subarray(len), { fua });
      }
      if (at >= 0) {
        throw new CheckCondition({ key: C.MISCOMPARE, ascq: C.ASC_MISCOMPARE_DURING_VERIFY, information: BigInt(at) }, 2 * len);
      }
    } finally {
      release();
    }
    return { status: C.SAM_STAT_GOOD, dataOutWanted: 2 * len };
  }

  /** WRITE ATOMIC(16): all-or-nothing against every other write and COMPARE AND WRITE on the range. */
  private async writeAtomic(c: BlockCdb, req: ScsiRequest): Promise<ScsiResult> {
    if (c.protect) throw invalidCdb(1, 7);
    if (c.blocks * this.blockSize > MAX_TRANSFER_BYTES) throw invalidCdb(12);
    this.writable();
    this.checkRange(c.lba, c.blocks);
    if (c.blocks === 0) return { status: C.SAM_STAT_GOOD, dataOutWanted: 0 };
    if (c.lba % BigInt(ATOMIC_ALIGNMENT_BLOCKS) !== 0n) throw invalidCdb(2);
    if (c.blocks % ATOMIC_ALIGNMENT_BLOCKS !== 0) throw invalidCdb(12);
    const [off, len] = this.byteRange(c.lba, c.blocks);
    const d = this.dataOut(req, len);
    const release = await this.lock.acquire(off, len, 'exclusive');
    try {
      await this.device.write(off, d, { fua: c.fua || !this.mode.writeCacheEnabled });
    } finally {
      release();
    }
    return { status: C.SAM_STAT_GOOD, dataOutWanted: len };
  }

  private async orWrite(c: BlockCdb, req: ScsiRequest): Promise<ScsiResult> {
    if (c.protect) throw invalidCdb(1, 7);
    this.writable();
    this.checkRange(c.lba, c.blocks);
    this.checkTransfer(c);
    if (c.blocks === 0) return { status: C.SAM_STAT_GOOD, dataOutWanted: 0 };
    const [off, len] = this.byteRange(c.lba, c.blocks);
    const d = this.dataOut(req, len);
    const release = await this.lock.acquire(off, len, 'exclusive');
    try {
      const medium = Buffer.from(await this.device.read(off, len));
      for (let i = 0; i < len; i++) medium[i] = (medium[i] ?? 0) | (d[i] ?? 0);
      await this.device.write(off, medium, { fua: c.fua || !this.mode.writeCacheEnabled });
    } finally {
      release();
    }
    return { status: C.SAM_STAT_GOOD, dataOutWanted: len };
  }

  // ---- everything else ------------------------------------------------------------------------------

  private async otherCommand(c: OtherCdb, req: ScsiRequest): Promise<ScsiResult> {
    const cdb = c.cdb;
    switch (c.opcode) {
      case C.TEST_UNIT_READY:
        // A device that cannot reach its backend (a VDI whose sheep do not answer) is NOT READY, so path
        // checkers (dm-multipath's tur, our MultipathDevice) keep the path out of service until it can.
        if (this.device.checkReady) {
          try {
            await this.device.checkReady();
          } catch {
            throw new CheckCondition({ key: C.NOT_READY, ascq: C.ASC_LUN_BECOMING_READY });
          }
        }
        return this.good();
      case C.INQUIRY: {
        const evpd = ((cdb[1] ?? 0) & 1) !== 0;
        if ((cdb[1] ?? 0) & 0xfe) throw invalidCdb(1);
        if (!evpd && cdb[2] !== 0) throw invalidCdb(2);
        const data = buildInquiry(this.inquiryCtx, evpd, cdb[2] ?? 0);
        if (!data) throw invalidCdb(2);
        return this.good(data, c.allocationLength);
      }
      case C.REQUEST_SENSE: {
        const desc = ((cdb[1] ?? 0) & 1) !== 0;
        const ua = this.unitAttention.get(req.nexus);
        let s: Sense = { key: C.NO_SENSE, ascq: C.ASC_NO_ADDITIONAL_SENSE };
        if (ua && ua.length > 0) {
          s = { key: C.UNIT_ATTENTION, ascq: ua.shift() as number };
          if (ua.length === 0) this.unitAttention.delete(req.nexus);
        }
        return this.good(senseBytes(s, desc), c.allocationLength);
      }
      case C.READ_CAPACITY_10: {
        if ((cdb[8] ?? 0) & 1 || cdb.readUInt32BE(2) !== 0) throw invalidCdb(2);
        const b = Buffer.alloc(8);
        const last = this.blocks - 1n;
        b.writeUInt32BE(last > 0xffffffffn ? 0xffffffff : Number(last), 0);
        b.writeUInt32BE(this.blockSize, 4);
        return this.good(b);
      }
      case C.SERVICE_ACTION_IN_16:
        if (c.serviceAction === C.SAI_READ_CAPACITY_16) return this.good(this.readCapacity16(), c.allocationLength);
        if (c.serviceAction === C.SAI_GET_LBA_STATUS) return this.getLbaStatus(cdb, c.allocationLength);
        throw invalidCdb(1, 4);
      case C.MODE_SENSE_6:
      case C.MODE_SENSE_10: {
        const r = this.mode.sense(cdb);
        if ('key' in r) throw new CheckCondition(r);
        return this.good(r, c.allocationLength);
      }
      case C.MODE_SELECT_6:
      case C.MODE_SELECT_10: {
        const params = req.dataOut ?? Buffer.alloc(0);
        if (params.length < c.parameterListLength) throw paramListLength();
        const s = this.mode.select(cdb, params.subarray(0, c.parameterListLength));
        if (s) throw new CheckCondition(s);
        return { status: C.SAM_STAT_GOOD, dataOutWanted: c.parameterListLength };
      }
      case C.START_STOP_UNIT:
        return this.startStop(cdb, req.nexus);
      case C.PREVENT_ALLOW_MEDIUM_REMOVAL: {
        const prevent = (cdb[4] ?? 0) & 3;
        if (!this.removable) {
          if (prevent !== 0) throw invalidCdb(4);
          return this.good();
        }
        if (prevent > 1) throw invalidCdb(4);
        if (prevent === 1) this.preventers.add(req.nexus);
        else this.preventers.delete(req.nexus);
        return this.good();
      }
      case C.UNMAP:
        return this.unmap(c, req);
      case C.SANITIZE:
        return this.sanitize(c, req);
      case C.RESERVE_6:
      case C.RESERVE_10:
        if (!(await this.reservations.reserve2(req.nexus))) throw new Conflict();
        return this.good();
      case C.RELEASE_6:
      case C.RELEASE_10:
        await this.reservations.release2(req.nexus);
        return this.good();
      case C.PERSISTENT_RESERVE_IN: {
        const r = await this.reservations.prIn(c.serviceAction, c.allocationLength);
        if (!Buffer.isBuffer(r)) throw new CheckCondition(r);
        return this.good(r);
      }
      case C.PERSISTENT_RESERVE_OUT: {
        const params = req.dataOut ?? Buffer.alloc(0);
        if (params.length < c.parameterListLength) throw paramListLength();
        const r = await this.reservations.prOut(req.nexus, c.serviceAction, (cdb[2] ?? 0) & 0x0f, params.subarray(0, c.parameterListLength));
        if (!r.ok) {
          if (r.conflict) throw new Conflict();
          throw new CheckCondition(r.sense);
        }
        return { status: C.SAM_STAT_GOOD, dataOutWanted: c.parameterListLength };
      }
      case C.MAINTENANCE_IN:
        if (c.serviceAction === C.MI_REPORT_SUPPORTED_OPERATION_CODES) {
          const r = reportSupportedOpcodes(cdb);
          if (!r) throw invalidCdb(2);
          return this.good(r, c.allocationLength);
        }
        if (c.serviceAction === C.MI_REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS) {
          return this.good(reportSupportedTmf(((cdb[2] ?? 0) & 0x80) !== 0), c.allocationLength);
        }
        throw invalidCdb(1, 4);
      case C.EXTENDED_COPY: {
        if (c.serviceAction !== C.XCOPY_LID1) throw invalidCdb(1, 4);
        const plen = c.parameterListLength;
        const params = (req.dataOut ?? Buffer.alloc(0)).subarray(0, plen);
        if (params.length < plen) throw paramListLength();
        if (plen > 0) this.writable();
        const r = await extendedCopy(params, this.resolveCopyTarget);
        if (!r.ok) throw new CheckCondition(r.sense, plen);
        if (r.hold && plen > 0) this.copyResults.set(`${req.nexus}/${r.listId}`, r.status);
        return { status: C.SAM_STAT_GOOD, dataOutWanted: plen };
      }
      case C.RECEIVE_COPY_RESULTS: {
        if (c.serviceAction === C.RCR_OPERATING_PARAMETERS) return this.good(copyOperatingParameters(), c.allocationLength);
        if (c.serviceAction === C.RCR_COPY_STATUS) {
          const st = this.copyResults.get(`${req.nexus}/${cdb[2] ?? 0}`);
          if (!st) throw invalidCdb(2);
          return this.good(copyStatusData(st), c.allocationLength);
        }
        throw invalidCdb(1, 4);
      }
      case C.READ_DEFECT_DATA_10: {
        const b = Buffer.alloc(4);
        b[1] = (cdb[2] ?? 0) & 0x1f;
        return this.good(b, c.allocationLength);
      }
      case C.READ_DEFECT_DATA_12: {
        const b = Buffer.alloc(8);
        b[1] = (cdb[1] ?? 0) & 0x1f;
        return this.good(b, c.allocationLength);
      }
    }
    throw new CheckCondition({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_OPERATION_CODE, fieldPointer: { cd: true, byte: 0 } });
  }

  /** START STOP UNIT (SBC-3 §5.25): a POWER CONDITION leaves the medium alone; LOEJ ejects or loads it. */
  private startStop(cdb: Buffer, _nexus: string): ScsiResult {
    const powerCondition = (cdb[4] ?? 0) >> 4;
    const loej = ((cdb[4] ?? 0) & 0x02) !== 0;
    const start = ((cdb[4] ?? 0) & 0x01) !== 0;
    if (powerCondition !== 0 || !loej || !this.removable) return this.good();
    // While any nexus prevents removal, neither eject nor load may change the medium.
    if (this.preventers.size > 0) {
      throw new CheckCondition({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_MEDIUM_REMOVAL_PREVENTED });
    }
    this.mediumPresent = start;
    return this.good();
  }

  private readCapacity16(): Buffer {
    const b = Buffer.alloc(32);
    b.writeBigUInt64BE(this.blocks - 1n, 0);
    b.writeUInt32BE(this.blockSize, 8);
    // LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT stays 0: every logical block is independently writable.
    if (this.device.thin) b[14] = 0x80 | 0x40; // LBPME, LBPRZ
    return b;
  }

  private async getLbaStatus(cdb: Buffer, alloc: number): Promise<ScsiResult> {
    const lba = cdb.readBigUInt64BE(2);
    if (lba >= this.blocks) throw outOfRange();
    if (alloc < 8 && alloc !== 0) throw invalidCdb(10);
    const maxDesc = Math.max(1, Math.min(512, Math.floor((alloc - 8) / 16)));
    const bs = this.blockSize;
    const start = Number(lba) * bs;
    const span = Math.min(this.device.size - start, 64 * 1024 * 1024 * 16);
    const extents = await this.device.extents(start, span);
    const descs: Buffer[] = [];
    for (const e of extents) {
      const d = Buffer.alloc(16);
      const blk = BigInt(Math.floor(e.offset / bs));
      const n = Math.ceil(e.length / bs);
      const last = descs[descs.length - 1];
      const status = e.allocated ? 0 : 1;
      if (last && last[12] === status && last.readBigUInt64BE(0) + BigInt(last.readUInt32BE(8)) === blk) {
        last.writeUInt32BE(last.readUInt32BE(8) + n, 8);
        continue;
      }
      if (descs.length >= maxDesc) break;
      d.writeBigUInt64BE(blk, 0);
      d.writeUInt32BE(n, 8);
      d[12] = status;
      descs.push(d);
    }
    const out = Buffer.alloc(8 + descs.length * 16);
    out.writeUInt32BE(4 + descs.length * 16, 0);
    descs.forEach((d, i) => d.copy(out, 8 + i * 16));
    return this.good(out, alloc);
  }

  /**
   * SANITIZE (SBC-3 §5.30): OVERWRITE fills every block with the initialization pattern; BLOCK ERASE and
   * CRYPTO ERASE deallocate the whole LU (it then reads as zeros); EXIT FAILURE MODE has nothing to leave.
   * Runs to completion before the status (IMMED is accepted but not honoured).
   */
  private async sanitize(c: OtherCdb, req: ScsiRequest): Promise<ScsiResult> {
    const cdb = c.cdb;
    if ((cdb[1] ?? 0) & 0x40) throw invalidCdb(1, 6);
    for (let i = 2; i <= 6; i++) if (cdb[i] !== 0) throw invalidCdb(i);
    const plen = c.parameterListLength;
    const sa = c.serviceAction;
    if (sa !== C.SANITIZE_OVERWRITE && sa !== C.SANITIZE_BLOCK_ERASE && sa !== C.SANITIZE_CRYPTO_ERASE && sa !== C.SANITIZE_EXIT_FAILURE_MODE) {
      throw invalidCdb(1, 4);
    }
    if (sa !== C.SANITIZE_OVERWRITE) {
      if (plen !== 0) throw invalidCdb(7);
      if (sa === C.SANITIZE_EXIT_FAILURE_MODE) return this.good();
      this.writable();
      const release = await this.lock.acquire(0, this.device.size, 'exclusive');
      try {
        const step = 64 * 1024 * 1024;
        for (let off = 0; off < this.device.size; off += step) {
          const n = Math.min(step, this.device.size - off);
          if (this.device.thin) await this.device.discard(off, n);
          else await this.device.writeZeroes(off, n);
        }
        await this.device.flush();
      } finally {
        release();
      }
      return { status: C.SAM_STAT_GOOD, dataOutWanted: 0 };
    }
    const bs = this.blockSize;
    if (plen < 5 || plen > bs + 4) throw invalidCdb(7);
    const p = req.dataOut ?? Buffer.alloc(0);
    if (p.length < plen) throw paramListLength();
    const count = (p[0] ?? 0) & 0x1f;
    const patLen = p.readUInt16BE(2);
    if (count === 0) throw invalidParam(0);
    if (patLen === 0 || patLen > bs || 4 + patLen > plen) throw invalidParam(2);
    this.writable();
    const pattern = p.subarray(4, 4 + patLen);
    const block = Buffer.alloc(bs);
    for (let i = 0; i < bs; i += patLen) pattern.copy(block, i, 0, Math.min(patLen, bs - i));
    const chunk = Buffer.alloc(Math.min(this.device.size, 1024 * 1024));
    for (let i = 0; i < chunk.length; i += bs) block.copy(chunk, i);
    const release = await this.lock.acquire(0, this.device.size, 'exclusive');
    try {
      for (let off = 0; off < this.device.size; off += chunk.length) {
        const n = Math.min(chunk.length, this.device.size - off);
        await this.device.write(off, n === chunk.length ? chunk : chunk.subarray(0, n));
      }
      await this.device.flush();
    } finally {
      release();
    }
    return { status: C.SAM_STAT_GOOD, dataOutWanted: plen };
  }

  private async unmap(c: OtherCdb, req: ScsiRequest): Promise<ScsiResult> {
    if (!this.device.thin) {
      throw new CheckCondition({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_OPERATION_CODE, fieldPointer: { cd: true, byte: 0 } });
    }
    if ((c.cdb[1] ?? 0) & 0x01) throw invalidCdb(1, 0); // ANCHOR
    this.writable();
    const plen = c.parameterListLength;
    if (plen === 0) return { status: C.SAM_STAT_GOOD, dataOutWanted: 0 };
    if (plen < 8) throw paramListLength();
    const p = req.dataOut ?? Buffer.alloc(0);
    if (p.length < plen) throw paramListLength();
    const descLen = p.readUInt16BE(2);
    if (descLen % 16 !== 0 || 8 + descLen > plen) throw paramListLength();
    const n = descLen / 16;
    if (n > MAX_UNMAP_DESCRIPTORS) throw invalidParam(2);
    const ranges: Array<[bigint, number]> = [];
    for (let i = 0; i < n; i++) {
      const lba = p.readBigUInt64BE(8 + i * 16);
      const cnt = p.readUInt32BE(16 + i * 16);
      if (lba + BigInt(cnt) > this.blocks) throw outOfRange();
      ranges.push([lba, cnt]);
    }
    for (const [lba, cnt] of ranges) {
      if (cnt === 0) continue;
      const [off, len] = this.byteRange(lba, cnt);
      const release = await this.lock.acquire(off, len, 'shared');
      try {
        await this.device.discard(off, len);
      } finally {
        release();
      }
    }
    return { status: C.SAM_STAT_GOOD, dataOutWanted: plen };
  }
}
