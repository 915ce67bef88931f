// SCSI sense data: fixed and descriptor format bytes as laid out in SPC-4 §4.5.2 and §4.5.3.
import { describe, it, expect } from 'vitest';
import { decodeSense, encodeSense } from '../../../../src/proto/scsi/sense.js';
import { ILLEGAL_REQUEST, MISCOMPARE, ASC_INVALID_FIELD_IN_CDB, ASC_MISCOMPARE_DURING_VERIFY } from '../../../../src/proto/scsi/constants.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('sense data', () => {
  it('fixed format: ILLEGAL REQUEST, INVALID FIELD IN CDB, field pointer byte 1 bit 4', () => {
    const b = encodeSense({ key: ILLEGAL_REQUEST, ascq: ASC_INVALID_FIELD_IN_CDB, fieldPointer: { cd: true, byte: 1, bit: 4 } });
    expect(b).toEqual(hex('70 00 05 00 00 00 00 0a 00 00 00 00 24 00 00 cc 00 01'));
  });
  it('fixed format with INFORMATION (miscompare offset)', () => {
    const b = encodeSense({ key: MISCOMPARE, ascq: ASC_MISCOMPARE_DURING_VERIFY, information: 27n });
    expect(b).toEqual(hex('f0 00 0e 00 00 00 1b 0a 00 00 00 00 1d 00 00 00 00 00'));
  });
  it('descriptor format with information and sense-key-specific descriptors', () => {
    const b = encodeSense({ key: MISCOMPARE, ascq: ASC_MISCOMPARE_DURING_VERIFY, information: 27n, fieldPointer: { cd: false, byte: 2 } }, true);
    expect(b).toEqual(
      hex(`72 0e 1d 00 00 00 00 14
           00 0a 80 00 00 00 00 00 00 00 00 1b
           02 06 00 00 80 00 02 00`),
    );
  });
  it('decodes what it encodes in both formats', () => {
    for (const d of [false, true]) {
      expect(decodeSense(encodeSense({ key: 5, ascq: 0x2100, information: 9n }, d))).toEqual({ key: 5, ascq: 0x2100, information: 9n });
    }
  });
});
