// Mode parameters (SPC-4 §7.5, SBC-3 §6.5) of one logical unit: MODE SENSE(6/10) with current, changeable and
// default values, and MODE SELECT(6/10) that changes only the changeable bits (WCE, D_SENSE, SWP, DEXCPT,
// MRIE). Saved values are not supported (SAVING PARAMETERS NOT SUPPORTED).
import type { BlockDevice } from '../../block/device.js';
import * as C from '../../proto/scsi/constants.js';
import type { Sense } from '../../proto/scsi/sense.js';

interface PageDef {
  code: number;
  /** Default value of the whole page (2-byte header included). */
  defaults: Buffer;
  /** Changeable-bit mask, same layout. */
  changeable: Buffer;
}

function page(code: number, len: number, set: Array<[number, number]>, mask: Array<[number, number]>): PageDef {
  const d = Buffer.alloc(len + 2);
  d[0] = code;
  d[1] = len;
  for (const [i, v] of set) d[i] = v;
  const m = Buffer.alloc(len + 2);
  m[0] = code;
  m[1] = len;
  for (const [i, v] of mask) m[i] = v;
  return { code, defaults: d, changeable: m };
}

const PAGES: PageDef[] = [
  page(C.MODE_PAGE_RW_ERROR_RECOVERY, 0x0a, [[2, 0xc0]], []),
  // Caching: WCE=1 (writes complete before stable storage unless FUA; SYNCHRONIZE CACHE flushes).
  page(C.MODE_PAGE_CACHING, 0x12, [[2, 0x04]], [[2, 0x04]]),
  // Control: QUEUE ALGORITHM MODIFIER=1 (unrestricted reordering); D_SENSE and SWP changeable.
  page(C.MODE_PAGE_CONTROL, 0x0a, [[3, 0x10], [8, 0xff], [9, 0xff]], [[2, 0x04], [4, 0x08]]),
  // Informational exceptions: DEXCPT=1 by default; DEXCPT, EWASC, PERF and MRIE changeable.
  page(C.MODE_PAGE_INFORMATIONAL_EXCEPTIONS, 0x0a, [[2, 0x08]], [[2, 0x98], [3, 0x0f]]),
];

export class ModePages {
  private readonly current = new Map<number, Buffer>();

  constructor(private readonly device: BlockDevice) {
    for (const p of PAGES) this.current.set(p.code, Buffer.from(p.defaults));
  }

  get writeCacheEnabled(): boolean {
    return ((this.current.get(C.MODE_PAGE_CACHING)?.[2] ?? 0) & 0x04) !== 0;
  }
  get descriptorSense(): boolean {
    return ((this.current.get(C.MODE_PAGE_CONTROL)?.[2] ?? 0) & 0x04) !== 0;
  }
  get softwareWriteProtect(): boolean {
    return ((this.current.get(C.MODE_PAGE_CONTROL)?.[4] ?? 0) & 0x08) !== 0;
  }

  /** MODE SENSE(6) or (10): the full parameter data (caller cuts to the allocation length), or sense. */
  sense(cdb: Buffer): Buffer | Sense {
    const six = cdb[0] === C.MODE_SENSE_6;
    const dbd = ((cdb[1] ?? 0) & 0x08) !== 0;
    const llbaa = !six && ((cdb[1] ?? 0) & 0x10) !== 0;
    const pc = (cdb[2] ?? 0) >> 6;
    const code = (cdb[2] ?? 0) & 0x3f;
    const sub = cdb[3] ?? 0;
    const bad = (byte: number): Sense => ({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_FIELD_IN_CDB, fieldPointer: { cd: true, byte } });
    if (pc === 3) return { key: C.ILLEGAL_REQUEST, ascq: C.ASC_SAVING_PARAMETERS_NOT_SUPPORTED };
    if (sub !== 0 && sub !== 0xff) return bad(3);
    const defs = code === C.MODE_PAGE_ALL ? PAGES : PAGES.filter((p) => p.code === code);
    if (defs.length === 0) return bad(2);
    const pages = defs.map((p) =>
      pc === 1 ? p.changeable : pc === 2 ? p.defaults : (this.current.get(p.code) as Buffer),
    );
    let bd = Buffer.alloc(0);
    if (!dbd) {
      const blocks = BigInt(Math.floor(this.device.size / this.device.blockSize));
      if (llbaa) {
        bd = Buffer.alloc(16);
        bd.writeBigUInt64BE(blocks, 0);
        bd.writeUInt32BE(this.device.blockSize, 12);
      } else {
        bd = Buffer.alloc(8);
        bd.writeUInt32BE(blocks > 0xffffffffn ? 0xffffffff : Number(blocks), 0);
        bd.writeUIntBE(this.device.blockSize, 5, 3);
      }
    }
    const wp = this.device.readOnly || this.softwareWriteProtect ? 0x80 : 0;
    const devSpecific = wp | 0x10; // DPOFUA
    const body = Buffer.concat([bd, ...pages]);
    if (six) {
      const h = Buffer.alloc(4);
      h[0] = Math.min(255, 3 + body.length);
      h[2] = devSpecific;
      h[3] = bd.length;
      return Buffer.concat([h, body]);
    }
    const h = Buffer.alloc(8);
    h.writeUInt16BE(6 + body.length, 0);
    h[3] = devSpecific;
    h[4] = llbaa && !dbd ? 1 : 0;
    h.writeUInt16BE(bd.length, 6);
    return Buffer.concat([h, body]);
  }

  /** MODE SELECT(6) or (10) with its parameter list; undefined on success, else the sense to report. */
  select(cdb: Buffer, params: Buffer): Sense | undefined {
    const six = cdb[0] === C.MODE_SELECT_6;
    const badCdb = (byte: number): Sense => ({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_FIELD_IN_CDB, fieldPointer: { cd: true, byte } });
    const badParam = (byte: number): Sense => ({
      key: C.ILLEGAL_REQUEST,
      ascq: C.ASC_INVALID_FIELD_IN_PARAMETER_LIST,
      fieldPointer: { cd: false, byte },
    });
    if ((cdb[1] ?? 0) & 0x01) return badCdb(1); // SP: saving not supported
    if (params.length === 0) return undefined;
    const hlen = six ? 4 : 8;
    if (params.length < hlen) return { key: C.ILLEGAL_REQUEST, ascq: C.ASC_PARAMETER_LIST_LENGTH_ERROR };
    const bdLen = six ? (params[3] ?? 0) : params.readUInt16BE(6);
    let off = hlen + bdLen;
    if (off > params.length) return { key: C.ILLEGAL_REQUEST, ascq: C.ASC_PARAMETER_LIST_LENGTH_ERROR };
    const staged = new Map<number, Buffer>();
    while (off + 2 <= params.length) {
      const code = (params[off] ?? 0) & 0x3f;
      if ((params[off] ?? 0) & 0x40) return badParam(off);
      const len = params[off + 1] ?? 0;
      const def = PAGES.find((p) => p.code === code);
      if (!def) return badParam(off);
      if (len !== def.defaults[1]) return badParam(off + 1);
      if (off + 2 + len > params.length) return { key: C.ILLEGAL_REQUEST, ascq: C.ASC_PARAMETER_LIST_LENGTH_ERROR };
      const cur = this.current.get(code) as Buffer;
      const next = Buffer.from(cur);
      for (let i = 2; i < len + 2; i++) {
        const want = params[off + i] ?? 0;
        const mask = def.changeable[i] ?? 0;
        if ((want & ~mask & 0xff) !== ((cur[i] ?? 0) & ~mask & 0xff)) return badParam(off + i);
        next[i] = ((cur[i] ?? 0) & ~mask) | (want & mask);
      }
      staged.set(code, next);
      off += 2 + len;
    }
    for (const [code, b] of staged) this.current.set(code, b);
    return undefined;
  }
}
