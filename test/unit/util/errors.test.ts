// One error hierarchy: every error class of the front ends, the client, the codecs and the target configuration
// is a SheepfoldError with a stable E-code and its class name; every BlockError code has its NBD errno and its
// SCSI sense for both directions, so no device failure can reach a wire unmapped.
import { describe, expect, it } from 'vitest';
import { SheepfoldError, isSheepfoldError } from '../../../src/util/errors.js';
import { SizeError } from '../../../src/util/size.js';
import { TomlError } from '../../../src/target/toml.js';
import { ExportSpecError } from '../../../src/target/exports.js';
import { PduError } from '../../../src/proto/iscsi/pdu.js';
import { TextError } from '../../../src/proto/iscsi/text.js';
import { FrameError } from '../../../src/proto/iscsi/framer.js';
import { SdProtocolError } from '../../../src/proto/sheepdog/frame.js';
import { NbdProtocolError } from '../../../src/proto/nbd/errors.js';
import { BlockError, type BlockErrorCode } from '../../../src/block/device.js';
import { SheepError, SheepNetError } from '../../../src/client/errors.js';
import { NbdRequestError } from '../../../src/nbd/client.js';
import { LoginError } from '../../../src/initiator/login.js';
import { IscsiTransportError, ScsiStatusError } from '../../../src/initiator/errors.js';
import { NBD_ERRNO_BY_CODE, nbdErrno } from '../../../src/nbd/errors.js';
import { BLOCK_ERROR_SENSE, senseForError } from '../../../src/iscsi/scsi/sense-table.js';
import * as N from '../../../src/proto/nbd/constants.js';
import * as S from '../../../src/proto/scsi/constants.js';

const ALL_BLOCK_CODES: BlockErrorCode[] = ['EIO', 'ENOSPC', 'EROFS', 'EINVAL', 'ENOTSUP', 'ESHUTDOWN', 'ECONFLICT'];

describe('error hierarchy', () => {
  it('every error class is a SheepfoldError with a stable code and its own name', () => {
    const cases: [SheepfoldError, string, string][] = [
      [new SizeError('x'), 'EBADSIZE', 'SizeError'],
      [new TomlError('f', 1, 'x'), 'ECONFIG', 'TomlError'],
      [new ExportSpecError('x'), 'EBADEXPORT', 'ExportSpecError'],
      [new PduError('EBADPDU', 'x'), 'EBADPDU', 'PduError'],
      [new TextError('x'), 'EBADTEXT', 'TextError'],
      [new FrameError('EHDRDIGEST', 'x'), 'EHDRDIGEST', 'FrameError'],
      [new SdProtocolError('EOVERSIZE', 'x'), 'EOVERSIZE', 'SdProtocolError'],
      [new NbdProtocolError('BAD_MAGIC', 'x'), 'BAD_MAGIC', 'NbdProtocolError'],
      [new BlockError('ECONFLICT', 'x'), 'ECONFLICT', 'BlockError'],
      [new SheepError(4, 2), 'ESHEEP', 'SheepError'],
      [new SheepNetError('ETIMEDOUT', 'h:1', 'x'), 'ETIMEDOUT', 'SheepNetError'],
      [new NbdRequestError(5, 'x'), 'ENBDREQ', 'NbdRequestError'],
      [new LoginError('x', true), 'EAUTH', 'LoginError'],
      [new IscsiTransportError('ELOGIN', 'x'), 'ELOGIN', 'IscsiTransportError'],
      [new ScsiStatusError(0x18, undefined, 'x'), 'ESCSI', 'ScsiStatusError'],
    ];
    for (const [e, code, name] of cases) {
      expect(e).toBeInstanceOf(SheepfoldError);
      expect(e).toBeInstanceOf(Error);
      expect([e.code, e.name]).toEqual([code, name]);
      expect(isSheepfoldError(e, code)).toBe(true);
    }
    expect(isSheepfoldError(new Error('plain'))).toBe(false);
    expect(new BlockError('EIO', 'x', { cause: 'why' }).cause).toBe('why');
  });

  it('every BlockError code has an NBD errno and a SCSI sense for reads and writes', () => {
    for (const code of ALL_BLOCK_CODES) {
      expect(NBD_ERRNO_BY_CODE[code]).toBeGreaterThan(0);
      expect(nbdErrno(new BlockError(code, 'x'))).toBe(NBD_ERRNO_BY_CODE[code]);
      for (const writing of [false, true]) {
        const s = senseForError(new BlockError(code, 'x'), writing);
        expect(s).toBe(BLOCK_ERROR_SENSE[code][writing ? 'write' : 'read']);
        expect(s.key).toBeGreaterThan(0);
      }
    }
    expect(Object.keys(NBD_ERRNO_BY_CODE).sort()).toEqual([...ALL_BLOCK_CODES].sort());
    expect(Object.keys(BLOCK_ERROR_SENSE).sort()).toEqual([...ALL_BLOCK_CODES].sort());
    // Anything else is EIO on NBD and an internal target failure on SCSI.
    expect(nbdErrno(new Error('x'))).toBe(N.NBD_EIO);
    expect(senseForError(new Error('x'), true)).toEqual({ key: S.HARDWARE_ERROR, ascq: S.ASC_INTERNAL_TARGET_FAILURE });
  });
});
