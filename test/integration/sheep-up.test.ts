// scripts/up (issue 2 version): starts a formatted sheep with a demo VDI, prints the tgtadm lines, is
// idempotent across restarts of the same directory, and Ctrl-C (SIGINT) stops the sheep.
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { portInRange } from '../helpers/ports.js';
import { DOG_BIN, REPO_ROOT, SHEEPFOLD_BIN, cleanupTempDirs, killAll, run, start, tempDir, waitForOutput } from '../helpers/proc.js';

const built = fs.existsSync(SHEEPFOLD_BIN) && fs.existsSync(DOG_BIN);

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe.skipIf(!built)('scripts/up', () => {
  it('serves a demo VDI, prints the tgtadm lines, survives a restart and stops on Ctrl-C', async () => {
    const dir = tempDir('sheep-up-');
    const port = await portInRange(7000, 9999);
    const env = { ...process.env, SHEEPFOLD_SKIP_BUILD: '1' };
    const args = ['--dir', dir, '--port', String(port), '--vdi', 'demo', '--size', '64M'];
    for (let round = 0; round < 2; round++) {
      const up = start(path.join(REPO_ROOT, 'scripts', 'up'), args, { env, detached: false });
      await waitForOutput(up, /Ctrl-C stops the sheep/, 60_000);
      expect(up.output()).toContain(`--backing-store tcp:127.0.0.1:${port}:demo`);
      expect(up.output()).toContain(`unix:${path.join(dir, 'sheep', 'sock')}:demo`);
      const list = await run(process.execPath, [DOG_BIN, 'vdi', 'list', '-r', '-p', String(port)]);
      expect(list.stdout.split('\n').filter((l) => /\bdemo\b/.test(l))).toHaveLength(1);
      up.kill('SIGINT');
      expect(await up.exited).toBe(0);
      expect(fs.existsSync(path.join(dir, 'sheep', 'sheep.pid'))).toBe(false);
    }
  });
});
