// SCSI sense data (SPC-4 §4.5): fixed format (response code 0x70) and descriptor format (0x72), built from a
// sense key and an ASC/ASCQ pair, with the optional INFORMATION field and sense-key-specific field pointer.

export interface Sense {
  key: number;
  /** ASC << 8 | ASCQ */
  ascq: number;
  /** INFORMATION field (e.g. the miscompare offset), if valid. */
  information?: bigint;
  /** Sense-key-specific field pointer: byte (and bit) in the CDB or parameter list that is in error. */
  fieldPointer?: { cd: boolean; byte: number; bit?: number };
}

export const FIXED_SENSE_LENGTH = 18;

/** Encode sense data; descriptor format when `descriptor` is set (D_SENSE in the Control mode page). */
export function encodeSense(s: Sense, descriptor = false): Buffer {
  const sks = s.fieldPointer ? sksBytes(s.fieldPointer) : undefined;
  if (!descriptor) {
    const b = Buffer.alloc(FIXED_SENSE_LENGTH);
    b[0] = 0x70 | (s.information !== undefined ? 0x80 : 0);
    b[2] = s.key & 0x0f;
    if (s.information !== undefined) b.writeUInt32BE(Number(s.information & 0xffffffffn), 3);
    b[7] = FIXED_SENSE_LENGTH - 8;
    b[12] = s.ascq >> 8;
    b[13] = s.ascq & 0xff;
    if (sks) sks.copy(b, 15);
    return b;
  }
  const descs: Buffer[] = [];
  if (s.information !== undefined) {
    const d = Buffer.alloc(12);
    d[0] = 0x00;
    d[1] = 0x0a;
    d[2] = 0x80;
    d.writeBigUInt64BE(s.information, 4);
    descs.push(d);
  }
  if (sks) {
    const d = Buffer.alloc(8);
    d[0] = 0x02;
    d[1] = 0x06;
    sks.copy(d, 4);
    descs.push(d);
  }
  const body = Buffer.concat(descs);
  const b = Buffer.alloc(8 + body.length);
  b[0] = 0x72;
  b[1] = s.key & 0x0f;
  b[2] = s.ascq >> 8;
  b[3] = s.ascq & 0xff;
  b[7] = body.length;
  body.copy(b, 8);
  return b;
}

function sksBytes(fp: { cd: boolean; byte: number; bit?: number }): Buffer {
  const b = Buffer.alloc(3);
  b[0] = 0x80 | (fp.cd ? 0x40 : 0) | (fp.bit !== undefined ? 0x08 | (fp.bit & 7) : 0);
  b.writeUInt16BE(fp.byte & 0xffff, 1);
  return b;
}

/** Decode the key and ASC/ASCQ of fixed or descriptor sense (for tests and our initiator). */
export function decodeSense(b: Buffer): Sense | undefined {
  const rc = (b[0] ?? 0) & 0x7f;
  if ((rc === 0x70 || rc === 0x71) && b.length >= 14) {
    const s: Sense = { key: (b[2] ?? 0) & 0x0f, ascq: ((b[12] ?? 0) << 8) | (b[13] ?? 0) };
    if ((b[0] ?? 0) & 0x80) s.information = BigInt(b.readUInt32BE(3));
    return s;
  }
  if ((rc === 0x72 || rc === 0x73) && b.length >= 8) {
    const s: Sense = { key: (b[1] ?? 0) & 0x0f, ascq: ((b[2] ?? 0) << 8) | (b[3] ?? 0) };
    let off = 8;
    const end = Math.min(b.length, 8 + (b[7] ?? 0));
    while (off + 2 <= end) {
      const type = b[off] ?? 0;
      const len = b[off + 1] ?? 0;
      if (type === 0 && off + 12 <= end) s.information = b.readBigUInt64BE(off + 4);
      off += 2 + len;
    }
    return s;
  }
  return undefined;
}
