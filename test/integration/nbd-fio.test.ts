// fio's nbd engine against our target: 4 jobs, iodepth 16, mixed 4k–1M random read/write with crc32c verify,
// on a memory and a file export (each job owns a 32 MiB slice so verification is well defined).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { cleanupTempDirs, killAll, run, tempDir, lacking } from '../helpers/proc.js';
import { startTarget, type RunningTarget } from './nbd-harness.js';

const MiB = 1024 * 1024;

interface FioJob {
  error: number;
  read: { io_bytes: number };
  write: { io_bytes: number };
}

describe.skipIf(lacking(['fio']))('NBD target under fio with verify', () => {
  let t: RunningTarget;

  beforeAll(async () => {
    const img = path.join(tempDir('sheepfold-fio-'), 'disk.img');
    fs.writeFileSync(img, '');
    fs.truncateSync(img, 128 * MiB);
    t = await startTarget(['--export', 'mem=mem:128M', '--export', `file=file:${img}`]);
  });

  afterAll(async () => {
    await killAll();
    cleanupTempDirs();
  });

  for (const name of ['mem', 'file']) {
    it(`randrw bssplit 4k-1M, 4 jobs x QD16, crc32c verify on the ${name} export`, async () => {
      const r = await run(
        'fio',
        [
          '--name=verify',
          '--ioengine=nbd',
          `--uri=${t.uri(name)}`,
          '--rw=randrw',
          '--bssplit=4k/40:64k/30:256k/20:1m/10',
          '--iodepth=16',
          '--numjobs=4',
          '--size=32M',
          '--offset_increment=32M',
          '--verify=crc32c',
          '--verify_fatal=1',
          '--verify_backlog=256',
          '--group_reporting',
          '--output-format=json',
        ],
        { timeoutMs: 240_000 },
      );
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const json = r.stdout.slice(r.stdout.indexOf('{'));
      const job = (JSON.parse(json) as { jobs: FioJob[] }).jobs[0]!;
      expect(job.error).toBe(0);
      expect(job.write.io_bytes).toBeGreaterThan(16 * MiB);
      // Verification reads every block written, on top of the workload's own reads.
      expect(job.read.io_bytes).toBeGreaterThan(job.write.io_bytes);
      expect(r.stdout + r.stderr).not.toMatch(/verify: bad|crc32c: verify failed/i);
    });
  }
});
