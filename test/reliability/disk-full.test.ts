// Disk full (issue 8, test 4): a sheep whose store has a capacity limit (`--store-capacity`) serves a VDI
// through our target. Writes that need a new object beyond the limit fail explicitly — NBD_ENOSPC over NBD,
// DATA PROTECT / SPACE ALLOCATION FAILED over iSCSI — nothing of a failed write becomes visible, the data
// already there stays intact, and writes resume once space is freed (a discard releases an object).
// (Injected ENOSPC from the file system itself is covered in test/unit/sheep/store/integrity.test.ts.)
import { afterAll, describe, expect, it } from 'vitest';
import { NbdRequestError } from '../../src/nbd/client.js';
import { ScsiStatusError } from '../../src/initiator/index.js';
import { NBD_ENOSPC } from '../../src/proto/nbd/constants.js';
import { ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT, DATA_PROTECT } from '../../src/proto/scsi/constants.js';
import { SD_INODE_SIZE } from '../../src/proto/sheepdog/constants.js';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';
import { reportReliability } from '../helpers/reliability.js';
import { iscsiSession, nbdIo, sheepWithVdis, vdiTarget } from './harness.js';

const MiB = 1024 * 1024;
const OBJ = 4 * MiB;

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe('disk full', () => {
  it('answers ENOSPC / SPACE ALLOCATION FAILED, shows nothing half-written, resumes when space is freed', async () => {
    // Room for the inode and three 4 MiB data objects, not four.
    const capacity = SD_INODE_SIZE + 3 * OBJ + MiB;
    const sheep = await sheepWithVdis([['full', '64M']], ['--store-capacity', String(capacity)]);
    const t = await vdiTarget(sheep.addr, ['full=full']);
    const nbd = await nbdIo(t, 'full');
    const block = (tag: number): Buffer => Buffer.alloc(4096, tag);

    for (let i = 0; i < 3; i++) await nbd.write(i * OBJ, block(i + 1));
    let nbdErrno = 0;
    await nbd.write(3 * OBJ, block(9)).catch((e: unknown) => {
      if (e instanceof NbdRequestError) nbdErrno = e.errno;
      else throw e;
    });
    expect(nbdErrno).toBe(NBD_ENOSPC);
    expect((await nbd.read(3 * OBJ, 4096)).equals(Buffer.alloc(4096))).toBe(true);

    const s = await iscsiSession(t, 'full');
    let senseKey = -1;
    let ascq = -1;
    try {
      await s.write(BigInt((4 * OBJ) / 512), Buffer.alloc(4096, 7));
    } catch (e) {
      if (!(e instanceof ScsiStatusError)) throw e;
      senseKey = e.sense?.key ?? -1;
      ascq = e.sense?.ascq ?? -1;
    }
    expect(senseKey).toBe(DATA_PROTECT);
    expect(ascq).toBe(ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT);
    expect((await s.read(BigInt((4 * OBJ) / 512), 8)).equals(Buffer.alloc(4096))).toBe(true);

    // Existing data is intact; a write into an allocated object still works while the store is full.
    for (let i = 0; i < 3; i++) expect((await nbd.read(i * OBJ, 4096)).equals(block(i + 1))).toBe(true);
    await nbd.write(2 * OBJ + 8192, block(0x33));

    // Free one object (discard of a whole object), then the failed write goes through.
    await nbd.client.trim(OBJ, OBJ);
    let resumed = false;
    for (let attempt = 0; attempt < 100 && !resumed; attempt++) {
      resumed = await nbd.write(3 * OBJ, block(9)).then(
        () => true,
        () => new Promise<boolean>((r) => setTimeout(() => r(false), 100)),
      );
    }
    expect(resumed).toBe(true);
    expect((await nbd.read(3 * OBJ, 4096)).equals(block(9))).toBe(true);
    expect((await nbd.read(OBJ, 4096)).equals(Buffer.alloc(4096))).toBe(true);
    expect((await nbd.read(2 * OBJ + 8192, 4096)).equals(block(0x33))).toBe(true);
    await s.close();
    await nbd.close();

    reportReliability('disk-full', {
      capacity_bytes: capacity,
      nbd_enospc: nbdErrno === NBD_ENOSPC ? 1 : 0,
      scsi_space_alloc_failed: senseKey === DATA_PROTECT && ascq === ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT ? 1 : 0,
      half_written_visible: 0,
      resumed_after_free: resumed,
    });
  });
});
