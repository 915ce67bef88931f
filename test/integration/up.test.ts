// ./scripts/up (issue 7): from the repository, `./scripts/up --dir TMP` reaches ready with 3 sheep and targets
// A and B; nbdinfo, iscsi-ls and dog node list work against the endpoints it prints; a second run reuses the
// cluster (same VDI, same data); SIGINT leaves no process behind.
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { portInRange } from '../helpers/ports.js';
import { DOG_BIN, REPO_ROOT, cleanupTempDirs, killAll, run, runBinary, start, tempDir, waitForOutput } from '../helpers/proc.js';

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

interface Ready {
  ready: boolean;
  dir: string;
  vdi: string;
  sheep: { port: number }[];
  targets: { name: string; nbd: string; iscsi: string; iqn: string }[];
}

/** PIDs of processes whose command line mentions `needle`. */
function pidsMentioning(needle: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('scripts/up', () => {
  it('starts 3 sheep and targets A/B, serves NBD/iSCSI/dog, reuses the cluster, and stops cleanly on SIGINT', async () => {
    const dir = tempDir('sf-up-');
    const env = { ...process.env, SHEEPFOLD_SKIP_BUILD: '1' };
    const base = await portInRange(7000, 9000);
    const args = ['--dir', dir, '--json', '--size', '256M', '--sheep-port', String(base), '--nbd-port', String(await portInRange(20000, 30000)), '--iscsi-port', String(await portInRange(30000, 40000))];
    const pattern = Buffer.alloc(1 << 20, 0x5a);
    for (let round = 0; round < 2; round++) {
      const up = start(path.join(REPO_ROOT, 'scripts', 'up'), args, { env });
      const line = (await waitForOutput(up, /^\{"ready":true.*\}$/m, 180_000))[0];
      const ready = JSON.parse(line) as Ready;
      expect(ready.sheep).toHaveLength(3);
      expect(ready.targets.map((t) => t.name)).toEqual(['A', 'B']);
      const [a, b] = ready.targets as [Ready['targets'][0], Ready['targets'][0]];
      const p0 = String(ready.sheep[0]!.port);

      const info = await run('nbdinfo', ['--json', `nbd://${a.nbd}/demo`]);
      expect(info.code).toBe(0);
      expect((JSON.parse(info.stdout) as { exports: { 'export-size': number }[] }).exports[0]!['export-size']).toBe(256 << 20);
      const ls = await run('iscsi-ls', ['-s', `iscsi://${b.iscsi}`]);
      expect(ls.code).toBe(0);
      expect(ls.stdout).toContain(b.iqn);
      const nodes = await run(process.execPath, [DOG_BIN, 'node', 'list', '-r', '-p', p0]);
      expect(nodes.stdout.trim().split('\n')).toHaveLength(3);

      if (round === 0) {
        const w = await run(process.execPath, [DOG_BIN, 'vdi', 'write', 'demo', '0', String(pattern.length), '-p', p0], { input: pattern });
        expect(w.code).toBe(0);
      } else {
        expect(up.output()).toMatch(/reusing the formatted cluster/);
        const r = await runBinary(process.execPath, [DOG_BIN, 'vdi', 'read', 'demo', '0', String(pattern.length), '-p', p0]);
        expect(r.stdout.equals(pattern)).toBe(true);
      }
      up.kill('SIGINT');
      expect(await up.exited).toBe(0);
      expect(pidsMentioning(dir)).toEqual([]);
    }
  });
});
