// Persistent reservations (SPC-4 §5.13, PERSISTENT RESERVE IN/OUT) and SCSI-2 RESERVE/RELEASE state for one
// logical unit. Behind the ReservationStore interface so a cluster-wide store (multipath targets sharing a
// VDI) can replace this in-process one. Nexus ids are initiator port names ("iqn...,i,0x<isid>").
import * as C from '../../proto/scsi/constants.js';
import type { Sense } from '../../proto/scsi/sense.js';

/** How a command touches the medium, for the reservation access table (SPC-4 table 41). */
export type AccessKind = 'read' | 'write' | 'allowed';

export type PrOutcome = { ok: true } | { ok: false; conflict: true } | { ok: false; conflict: false; sense: Sense };

export interface ReservationStore {
  /** True if `nexus` may run a command of this kind under the current reservations. */
  permits(nexus: string, kind: AccessKind): boolean | Promise<boolean>;
  /** SCSI-2 RESERVE(6/10) / RELEASE(6/10). */
  reserve2(nexus: string): boolean | Promise<boolean>;
  release2(nexus: string): void | Promise<void>;
  /** Drop the SCSI-2 reservation if `nexus` holds it (I_T nexus loss, logout, LU reset: pass undefined = any). */
  clearReserve2(nexus?: string): void | Promise<void>;
  /** A cluster-wide store answers asynchronously (it reads and writes the shared state first). */
  prIn(sa: number, allocationLength: number): Buffer | Sense | Promise<Buffer | Sense>;
  prOut(nexus: string, sa: number, type: number, params: Buffer): PrOutcome | Promise<PrOutcome>;
}

/** The persistent part of a LocalReservationStore (registrations and the PR reservation), as JSON-safe data. */
export interface PrState {
  generation: number;
  keys: Array<[string, string]>;
  res: { holder: string; key: string; type: number } | null;
  /** Holder of the SCSI-2 reservation, if any. */
  scsi2?: string;
}

interface Reservation {
  holder: string;
  key: bigint;
  type: number;
}

const INVALID_FIELD_CDB: Sense = { key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_FIELD_IN_CDB };
const INVALID_FIELD_PARAM: Sense = { key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_FIELD_IN_PARAMETER_LIST };
const PARAM_LIST_LENGTH: Sense = { key: C.ILLEGAL_REQUEST, ascq: C.ASC_PARAMETER_LIST_LENGTH_ERROR };
const INVALID_RELEASE: Sense = { key: C.ILLEGAL_REQUEST, ascq: 0x2604 };
const VALID_TYPES = new Set([
  C.PR_TYPE_WRITE_EXCLUSIVE,
  C.PR_TYPE_EXCLUSIVE_ACCESS,
  C.PR_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY,
  C.PR_TYPE_EXCLUSIVE_ACCESS_REGISTRANTS_ONLY,
  C.PR_TYPE_WRITE_EXCLUSIVE_ALL_REGISTRANTS,
  C.PR_TYPE_EXCLUSIVE_ACCESS_ALL_REGISTRANTS,
]);
const allRegistrants = (t: number): boolean =>
  t === C.PR_TYPE_WRITE_EXCLUSIVE_ALL_REGISTRANTS || t === C.PR_TYPE_EXCLUSIVE_ACCESS_ALL_REGISTRANTS;

/** In-process reservation state of one LU. */
export class LocalReservationStore implements ReservationStore {
  private generation = 0;
  private readonly keys = new Map<string, bigint>();
  private res: Reservation | undefined;
  private scsi2: string | undefined;

  /** Registrations, PR and SCSI-2 reservations, for a cluster-wide copy. */
  exportState(): PrState {
    const r = this.res;
    return {
      generation: this.generation,
      keys: [...this.keys].map(([n, k]) => [n, k.toString(16)]),
      res: r ? { holder: r.holder, key: r.key.toString(16), type: r.type } : null,
      ...(this.scsi2 !== undefined ? { scsi2: this.scsi2 } : {}),
    };
  }

  importState(s: PrState): void {
    this.generation = s.generation;
    this.keys.clear();
    for (const [n, k] of s.keys) this.keys.set(n, BigInt(`0x${k}`));
    this.res = s.res ? { holder: s.res.holder, key: BigInt(`0x${s.res.key}`), type: s.res.type } : undefined;
    this.scsi2 = s.scsi2;
  }

  permits(nexus: string, kind: AccessKind): boolean {
    if (kind === 'allowed') return true;
    if (this.scsi2 !== undefined && this.scsi2 !== nexus) return false;
    const r = this.res;
    if (!r) return true;
    if (this.isHolder(nexus)) return true;
    const registered = this.keys.has(nexus);
    switch (r.type) {
      case C.PR_TYPE_WRITE_EXCLUSIVE:
        return kind === 'read';
      case C.PR_TYPE_EXCLUSIVE_ACCESS:
        return false;
      case C.PR_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY:
      case C.PR_TYPE_WRITE_EXCLUSIVE_ALL_REGISTRANTS:
        return registered || kind === 'read';
      default:
        return registered;
    }
  }

  private isHolder(nexus: string): boolean {
    const r = this.res;
    if (!r) return false;
    if (allRegistrants(r.type)) return this.keys.has(nexus);
    return r.holder === nexus;
  }

  reserve2(nexus: string): boolean {
    if (this.scsi2 !== undefined && this.scsi2 !== nexus) return false;
    if (this.res && !this.isHolder(nexus)) return false;
    this.scsi2 = nexus;
    return true;
  }
  release2(nexus: string): void {
    if (this.scsi2 === nexus) this.scsi2 = undefined;
  }
  clearReserve2(nexus?: string): void {
    if (nexus === undefined || this.scsi2 === nexus) this.scsi2 = undefined;
  }

  prIn(sa: number, alloc: number): Buffer | Sense {
    let out: Buffer;
    switch (sa) {
      case C.PRIN_READ_KEYS: {
        out = Buffer.alloc(8 + 8 * this.keys.size);
        out.writeUInt32BE(this.generation, 0);
        out.writeUInt32BE(8 * this.keys.size, 4);
        let o = 8;
        for (const k of this.keys.values()) {
          out.writeBigUInt64BE(k, o);
          o += 8;
        }
        break;
      }
      case C.PRIN_READ_RESERVATION: {
        const r = this.res;
        out = Buffer.alloc(r ? 24 : 8);
        out.writeUInt32BE(this.generation, 0);
        if (r) {
          out.writeUInt32BE(16, 4);
          out.writeBigUInt64BE(allRegistrants(r.type) ? 0n : r.key, 8);
          out[21] = r.type & 0x0f;
        }
        break;
      }
      case C.PRIN_REPORT_CAPABILITIES:
        out = Buffer.alloc(8);
        out.writeUInt16BE(8, 0);
        out[2] = 0x10; // CRH: RESERVE/RELEASE handled per SPC-4 5.13.3
        out[3] = 0x80 | (0x1 << 4); // TMV, ALLOW COMMANDS = 001b
        out[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
        out[5] = 0x01; // EX_AC_AR
        break;
      case C.PRIN_READ_FULL_STATUS: {
        const descs: Buffer[] = [];
        for (const [nexus, key] of this.keys) {
          const tid = transportId(nexus);
          const d = Buffer.alloc(24 + tid.length);
          d.writeBigUInt64BE(key, 0);
          if (this.isHolder(nexus) && this.res) {
            d[12] = 0x01;
            d[13] = this.res.type & 0x0f;
          }
          d.writeUInt16BE(1, 18);
          d.writeUInt32BE(tid.length, 20);
          tid.copy(d, 24);
          descs.push(d);
        }
        const body = Buffer.concat(descs);
        out = Buffer.alloc(8 + body.length);
        out.writeUInt32BE(this.generation, 0);
        out.writeUInt32BE(body.length, 4);
        body.copy(out, 8);
        break;
      }
      default:
        return { ...INVALID_FIELD_CDB, fieldPointer: { cd: true, byte: 1, bit: 4 } };
    }
    return out.length > alloc ? out.subarray(0, alloc) : out;
  }

  prOut(nexus: string, sa: number, type: number, params: Buffer): PrOutcome {
    if (params.length !== 24) return { ok: false, conflict: false, sense: PARAM_LIST_LENGTH };
    const key = params.readBigUInt64BE(0);
    const saKey = params.readBigUInt64BE(8);
    const flags = params[20] ?? 0;
    const mine = this.keys.get(nexus);
    const conflict: PrOutcome = { ok: false, conflict: true };
    const ok: PrOutcome = { ok: true };
    switch (sa) {
      case C.PROUT_REGISTER:
      case C.PROUT_REGISTER_AND_IGNORE_EXISTING_KEY: {
        if (flags & 0x0c) return { ok: false, conflict: false, sense: INVALID_FIELD_PARAM };
        if (sa === C.PROUT_REGISTER) {
          if (mine === undefined ? key !== 0n : key !== mine) return conflict;
        }
        if (saKey === 0n) {
          if (mine !== undefined) this.unregister(nexus);
        } else this.keys.set(nexus, saKey);
        if (mine !== undefined || saKey !== 0n) this.generation++;
        if (this.res && !allRegistrants(this.res.type) && this.res.holder === nexus && saKey !== 0n) {
          this.res.key = saKey;
        }
        return ok;
      }
      case C.PROUT_RESERVE: {
        if (mine === undefined || mine !== key) return conflict;
        if (!VALID_TYPES.has(type)) return { ok: false, conflict: false, sense: INVALID_FIELD_CDB };
        if (this.res) {
          if (this.isHolder(nexus) && this.res.type === type) return ok;
          return conflict;
        }
        this.res = { holder: nexus, key, type };
        return ok;
      }
      case C.PROUT_RELEASE: {
        if (mine === undefined || mine !== key) return conflict;
        if (!this.res || !this.isHolder(nexus)) return ok;
        if (this.res.type !== type) return { ok: false, conflict: false, sense: INVALID_RELEASE };
        this.res = undefined;
        return ok;
      }
      case C.PROUT_CLEAR:
        if (mine === undefined || mine !== key) return conflict;
        this.keys.clear();
        this.res = undefined;
        this.generation++;
        return ok;
      case C.PROUT_PREEMPT:
      case C.PROUT_PREEMPT_AND_ABORT: {
        if (mine === undefined || mine !== key) return conflict;
        const r = this.res;
        if (r && allRegistrants(r.type)) {
          if (saKey === 0n) {
            for (const n of [...this.keys.keys()]) if (n !== nexus) this.keys.delete(n);
            this.res = { holder: nexus, key, type };
          } else {
            this.dropKey(saKey);
          }
        } else if (r && r.key === saKey) {
          this.dropKey(saKey, nexus);
          if (!VALID_TYPES.has(type)) return { ok: false, conflict: false, sense: INVALID_FIELD_CDB };
          this.res = { holder: nexus, key, type };
        } else {
          if (saKey === 0n) return { ok: false, conflict: false, sense: INVALID_FIELD_PARAM };
          if (![...this.keys.values()].includes(saKey)) return conflict;
          this.dropKey(saKey);
        }
        this.generation++;
        return ok;
      }
      default:
        return { ok: false, conflict: false, sense: { ...INVALID_FIELD_CDB, fieldPointer: { cd: true, byte: 1, bit: 4 } } };
    }
  }

  /** Remove every registration holding `key` (except `keep`); a removed holder loses the reservation. */
  private dropKey(key: bigint, keep?: string): void {
    for (const [n, k] of [...this.keys]) {
      if (k === key && n !== keep) this.unregister(n);
    }
  }

  private unregister(nexus: string): void {
    this.keys.delete(nexus);
    const r = this.res;
    if (!r) return;
    if (allRegistrants(r.type)) {
      if (this.keys.size === 0) this.res = undefined;
    } else if (r.holder === nexus) this.res = undefined;
  }
}

/** iSCSI TransportID (SPC-4 §7.6.4.6, format 01b: initiator port name with ISID). */
function transportId(nexus: string): Buffer {
  const name = Buffer.from(`${nexus}\0`);
  const len = (name.length + 3) & ~3;
  const b = Buffer.alloc(4 + len);
  b[0] = 0x40 | 0x05;
  b.writeUInt16BE(len, 2);
  name.copy(b, 4);
  return b;
}
