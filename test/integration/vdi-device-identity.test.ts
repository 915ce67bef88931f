// The identity of a VDI export (SCSI unit serial, VPD 0x80, and NAA-6 designator, VPD 0x83) derives from the
// cluster ctime and the vid, so two target processes exporting the same VDI present the same disk to a
// multipath initiator, and a different VDI a different one. Checked over iSCSI with libiscsi's iscsi-inq.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ephemeralPort } from '../helpers/ports.js';
import { SHEEPFOLD_BIN, cleanupTempDirs, killAll, run, start, waitForOutput, lacking } from '../helpers/proc.js';
import { dogOk, startSheep, type SheepProc } from './dog-harness.js';

const PREFIX = 'iqn.2026-11.org.sheepfold:';
const have = !lacking(['iscsi-inq'], { 'the built sheepfold CLI': SHEEPFOLD_BIN });
let sheep: SheepProc;

async function target(exports: string[]): Promise<number> {
  const port = await ephemeralPort();
  const p = start(process.execPath, [
    SHEEPFOLD_BIN,
    'target',
    '--nbd',
    '127.0.0.1:0',
    '--iscsi',
    `127.0.0.1:${port}`,
    '--sheep',
    sheep.addr,
    '--log-level',
    'warn',
    ...exports.flatMap((e) => ['--export', e]),
  ]);
  await waitForOutput(p, /target ready/, 60_000);
  return port;
}

async function vpd(port: number, name: string, page: number): Promise<string> {
  const r = await run('iscsi-inq', ['-e', '1', '-c', String(page), `iscsi://127.0.0.1:${port}/${PREFIX}${name}/0`]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  if (!have) return;
  sheep = await startSheep();
  await dogOk(sheep.port, ['cluster', 'format', '-c', '1']);
  await dogOk(sheep.port, ['vdi', 'create', 'disk', '16M']);
  await dogOk(sheep.port, ['vdi', 'snapshot', '-s', 'gold', 'disk']);
  await dogOk(sheep.port, ['vdi', 'create', 'other', '16M']);
});
afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe.skipIf(!have)('VDI export identity (real sheep, two targets, iscsi-inq)', () => {
  it('is the same on two target hosts for the same VDI and differs for another VDI', async () => {
    const a = await target(['img=disk:gold', 'other=other']);
    const b = await target(['img=disk:gold']);
    const serialA = /Unit Serial Number:\[([0-9a-f]{16})\]/.exec(await vpd(a, 'img', 128))?.[1];
    const serialB = /Unit Serial Number:\[([0-9a-f]{16})\]/.exec(await vpd(b, 'img', 128))?.[1];
    expect(serialA).toMatch(/^[0-9a-f]{16}$/);
    expect(serialB).toBe(serialA);
    // The logical-unit designators (T10 vendor id with the serial, and the binary NAA-6 id) are identical.
    const lu = (text: string): string => text.slice(text.indexOf('Association:(0) LOGICAL_UNIT'));
    const idsA = lu(await vpd(a, 'img', 131));
    expect(idsA).toContain('Designator Type:(3) NAA');
    expect(idsA).toContain(`Designator:[SHEEPFLD${serialA}]`);
    expect(lu(await vpd(b, 'img', 131))).toBe(idsA);
    expect(lu(await vpd(a, 'other', 131))).not.toBe(idsA);
    const serialOther = /Unit Serial Number:\[([0-9a-f]{16})\]/.exec(await vpd(a, 'other', 128))?.[1];
    expect(serialOther).toMatch(/^[0-9a-f]{16}$/);
    expect(serialOther).not.toBe(serialA);
  });
});
