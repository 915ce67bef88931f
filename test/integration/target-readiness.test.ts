// TEST UNIT READY reflects whether the target can reach its VDI: while the only sheep is frozen (SIGSTOP: its
// sockets stay open but nothing answers, like a blackholed link) the LU answers NOT READY / LOGICAL UNIT IS IN
// PROCESS OF BECOMING READY (04/01), so path checkers (dm-multipath's tur, our MultipathDevice) keep that path out
// of service instead of sending I/O that only times out; once the sheep answers again, TUR is GOOD and I/O works.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { IscsiSession, ScsiStatusError } from '../../src/initiator/index.js';
import * as S from '../../src/proto/scsi/constants.js';
import { ephemeralPort } from '../helpers/ports.js';
import { SHEEPFOLD_BIN, cleanupTempDirs, killAll, start, waitForOutput } from '../helpers/proc.js';
import { dogOk, startSheep, type SheepProc } from './dog-harness.js';

const IQN = 'iqn.2026-11.org.sheepfold:ready';
let sheep: SheepProc;
let port: number;

beforeAll(async () => {
  sheep = await startSheep();
  await dogOk(sheep.port, ['cluster', 'format', '-c', '1']);
  await dogOk(sheep.port, ['vdi', 'create', 'ready', '16M']);
  port = await ephemeralPort();
  const t = start(process.execPath, [SHEEPFOLD_BIN, 'target', '--sheep', sheep.addr, '--nbd', `127.0.0.1:${await ephemeralPort()}`, '--iscsi', `127.0.0.1:${port}`, '--export', 'ready=ready', '--log-level', 'warn', '--json']);
  await waitForOutput(t, /"ready":true/, 60_000);
});
afterAll(async () => {
  sheep?.proc.kill('SIGCONT');
  await killAll();
  cleanupTempDirs();
});

/** Poll an async condition until it holds (generous deadline for a loaded machine). */
async function until(cond: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The sense of a TEST UNIT READY, or 'good'. */
async function tur(s: IscsiSession): Promise<string> {
  try {
    await s.testUnitReady({ timeoutMs: 30_000 });
    return 'good';
  } catch (err) {
    if (err instanceof ScsiStatusError && err.sense) return `${err.sense.key.toString(16)}/${err.sense.ascq.toString(16).padStart(4, '0')}`;
    throw err;
  }
}

describe('TEST UNIT READY follows the reachability of the VDI', () => {
  it('is NOT READY (04/01) while the sheep is frozen and GOOD again once it answers', async () => {
    const s = new IscsiSession({ host: '127.0.0.1', port, targetName: IQN, nopIntervalMs: 0, reconnect: false });
    await s.connect();
    try {
      // Clear the power-on UNIT ATTENTION, then a healthy TUR.
      await until(async () => (await tur(s)) === 'good', 'a GOOD TEST UNIT READY', 30_000);
      const data = crypto.randomBytes(4096);
      await s.write(8, data);
      sheep.proc.kill('SIGSTOP');
      // The answer of a probe is reused for a second, so the change shows within a few seconds.
      const notReady = `${S.NOT_READY.toString(16)}/${S.ASC_LUN_BECOMING_READY.toString(16).padStart(4, '0')}`;
      let last = '';
      await until(async () => (last = await tur(s)) !== 'good', 'TEST UNIT READY to fail', 60_000);
      expect(last).toBe(notReady);
      sheep.proc.kill('SIGCONT');
      await until(async () => (await tur(s)) === 'good', 'TEST UNIT READY to be GOOD again', 60_000);
      expect((await s.read(8, 8)).equals(data)).toBe(true);
    } finally {
      await s.logout().catch(() => undefined);
    }
  });
});
