// IscsiSession: the SCSI command helpers (SPC-4 / SBC-3) on top of IscsiSessionCore — INQUIRY and VPD pages,
// READ CAPACITY (16), READ/WRITE (16) with FUA, SYNCHRONIZE CACHE, UNMAP, WRITE SAME, GET LBA STATUS,
// REPORT TARGET PORT GROUPS (ALUA), PERSISTENT RESERVE IN/OUT, TEST UNIT READY and REQUEST SENSE. Non-GOOD status
// throws ScsiStatusError (typed kind); UNIT ATTENTION is retried (and emitted) by IscsiSessionCore.command().
import * as B from '../proto/scsi/cdbs.js';
import * as C from '../proto/scsi/constants.js';
import * as P from '../proto/scsi/pages.js';
import { decodeSense, type Sense } from '../proto/scsi/sense.js';
import { IscsiSessionCore, type ExecuteOptions } from './session.js';

export interface Capacity {
  /** Number of logical blocks. */
  blocks: bigint;
  blockSize: number;
  sizeBytes: number;
  thin: boolean;
  lbprz: boolean;
  physicalBlockExponent: number;
}

export class IscsiSession extends IscsiSessionCore {
  /** Logical block size from the last READ CAPACITY (512 until read). */
  blockSize = 512;

  testUnitReady(opts: ExecuteOptions = {}): Promise<void> {
    return this.command(B.testUnitReadyCdb(), opts, 'TEST UNIT READY').then(() => undefined);
  }

  /** REQUEST SENSE: the pending sense (undefined when the target reports none). */
  async requestSense(): Promise<Sense | undefined> {
    const data = await this.command(B.requestSenseCdb(252), { dataInLength: 252 }, 'REQUEST SENSE');
    return decodeSense(data);
  }

  async inquiry(): Promise<P.StandardInquiry> {
    return P.decodeStandardInquiry(await this.command(B.inquiryCdb(255), { dataInLength: 255 }, 'INQUIRY'));
  }

  /** A raw VPD page. */
  inquiryVpd(page: number, allocationLength = 1024): Promise<Buffer> {
    return this.command(B.inquiryCdb(allocationLength, page), { dataInLength: allocationLength }, `INQUIRY VPD 0x${page.toString(16)}`);
  }

  /** VPD 0x83 decoded into the LU identity (NAA) and this port's relative port / port group ids. */
  async deviceIdentification(): Promise<P.LuIdentity> {
    return P.luIdentity(P.decodeDeviceIdentification(await this.inquiryVpd(C.VPD_DEVICE_IDENTIFICATION)));
  }

  async unitSerialNumber(): Promise<string> {
    return P.decodeUnitSerial(await this.inquiryVpd(C.VPD_UNIT_SERIAL_NUMBER, 255));
  }

  async blockLimits(): Promise<P.BlockLimits> {
    return P.decodeBlockLimits(await this.inquiryVpd(C.VPD_BLOCK_LIMITS, 64));
  }

  async readCapacity16(): Promise<Capacity> {
    const c = P.decodeCapacity16(await this.command(B.readCapacity16Cdb(32), { dataInLength: 32 }, 'READ CAPACITY (16)'));
    this.blockSize = c.blockLength;
    const blocks = c.lastLba + 1n;
    return {
      blocks,
      blockSize: c.blockLength,
      sizeBytes: Number(blocks * BigInt(c.blockLength)),
      thin: c.lbpme,
      lbprz: c.lbprz,
      physicalBlockExponent: c.lbppbe,
    };
  }

  /** READ (16) of `blocks` logical blocks at `lba`. */
  read(lba: bigint | number, blocks: number, opts: ExecuteOptions & { fua?: boolean } = {}): Promise<Buffer> {
    const len = blocks * this.blockSize;
    return this.command(B.read16Cdb(BigInt(lba), blocks, opts), { ...opts, dataInLength: len }, 'READ (16)');
  }

  /** WRITE (16) of `data` (a whole number of blocks) at `lba`. */
  async write(lba: bigint | number, data: Buffer, opts: ExecuteOptions & { fua?: boolean } = {}): Promise<void> {
    if (data.length % this.blockSize !== 0) throw new RangeError(`write of ${data.length} bytes is not a multiple of ${this.blockSize}`);
    await this.command(B.write16Cdb(BigInt(lba), data.length / this.blockSize, opts), { ...opts, dataOut: data }, 'WRITE (16)');
  }

  async synchronizeCache(lba: bigint | number = 0n, blocks = 0, opts: ExecuteOptions = {}): Promise<void> {
    await this.command(B.synchronizeCache16Cdb(BigInt(lba), blocks), opts, 'SYNCHRONIZE CACHE (16)');
  }

  /** UNMAP one or more ranges. */
  async unmap(ranges: Array<{ lba: bigint | number; blocks: number }>, opts: ExecuteOptions = {}): Promise<void> {
    const list = B.unmapParameterList(ranges.map((r) => ({ lba: BigInt(r.lba), blocks: r.blocks })));
    await this.command(B.unmapCdb(list.length), { ...opts, dataOut: list }, 'UNMAP');
  }

  /** WRITE SAME (16) of one block of `pattern` (zeros by default) over `blocks`; `unmap` may deallocate. */
  async writeSame(lba: bigint | number, blocks: number, opts: ExecuteOptions & { unmap?: boolean; pattern?: Buffer } = {}): Promise<void> {
    const block = opts.pattern ?? Buffer.alloc(this.blockSize);
    await this.command(B.writeSame16Cdb(BigInt(lba), blocks, opts), { ...opts, dataOut: block }, 'WRITE SAME (16)');
  }

  async getLbaStatus(lba: bigint | number, allocationLength = 4096): Promise<P.LbaStatus[]> {
    const data = await this.command(B.getLbaStatusCdb(BigInt(lba), allocationLength), { dataInLength: allocationLength }, 'GET LBA STATUS');
    return P.decodeLbaStatus(data);
  }

  /** REPORT TARGET PORT GROUPS with decoded ALUA states. */
  async reportTargetPortGroups(opts: ExecuteOptions = {}): Promise<P.TargetPortGroup[]> {
    const data = await this.command(B.reportTargetPortGroupsCdb(1024), { ...opts, dataInLength: 1024 }, 'REPORT TARGET PORT GROUPS');
    return P.decodeTargetPortGroups(data);
  }

  async reportLuns(): Promise<bigint[]> {
    return P.decodeReportLuns(await this.command(B.reportLunsCdb(4096), { dataInLength: 4096 }, 'REPORT LUNS'));
  }

  /** PERSISTENT RESERVE IN: raw parameter data for a service action (see the decoders below). */
  persistentReserveIn(serviceAction: number, allocationLength = 1024): Promise<Buffer> {
    return this.command(B.persistentReserveInCdb(serviceAction, allocationLength), { dataInLength: allocationLength }, 'PERSISTENT RESERVE IN');
  }

  async readKeys(): Promise<P.PrKeys> {
    return P.decodePrReadKeys(await this.persistentReserveIn(C.PRIN_READ_KEYS));
  }

  async readReservation(): Promise<P.PrReservation> {
    return P.decodePrReadReservation(await this.persistentReserveIn(C.PRIN_READ_RESERVATION));
  }

  /** PERSISTENT RESERVE OUT with the basic parameter list (REGISTER, RESERVE, RELEASE, CLEAR, PREEMPT...). */
  async persistentReserveOut(serviceAction: number, type: number, params: B.ProutParameters): Promise<void> {
    const list = B.persistentReserveOutParameters(params);
    await this.command(B.persistentReserveOutCdb(serviceAction, type, list.length), { dataOut: list }, 'PERSISTENT RESERVE OUT');
  }

  /** MODE SENSE (6) header: is the LU write-protected? */
  async writeProtected(): Promise<boolean> {
    const data = await this.command(B.modeSense6Cdb(C.MODE_PAGE_ALL, 255), { dataInLength: 255 }, 'MODE SENSE (6)');
    return P.decodeModeSense6Header(data).writeProtected;
  }
}

export { discoverTargets, type DiscoveredTarget } from './session.js';
