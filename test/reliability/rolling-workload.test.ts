// Rolling node replacement (Sheepdog test 028's sequence: start a new sheep, wait for it, SIGKILL an old one,
// wait until `dog node recovery` is idle) under a running verifying workload, with copies 2 (2 sheep, 3 during
// each step) and copies 3 (3 sheep, 4 during each step): every original sheep is replaced by a fresh one, then
// the fresh ones are replaced by the originals again, which come back with the old objects still on disk.
// The workload writes stamped blocks through our target's NBD export (its gateway list names every sheep,
// present and future); at the end every touched block is re-read and the history checker must find
// 0 lost, 0 stale, 0 corrupt (a mixed block is corrupt). A third case drives the same replacement with fio
// (crc32c verify, distinct data every pass) through the NBD export, and verifies the last pass once the old
// sheep are back. Logs of a failing run are kept under test-results/rolling-workload-*/.
import { describe, expect, it } from 'vitest';
import { Workload } from '../../src/drill/workload.js';
import type { LocalCluster } from '../helpers/cluster.js';
import { run, start } from '../helpers/proc.js';
import { finishWorkload, reportReliability } from '../helpers/reliability.js';
import { clusterStarter, keepEvidence, replaceNode } from '../helpers/rolling.js';
import { nbdIo, vdiTarget, type TargetWithIscsi } from './harness.js';

const MiB = 1024 * 1024;
const BS = 4096;

const startCluster = clusterStarter();

/** k sheep formatted with k copies, k more planned (not started), a VDI and a target naming all 2k sheep. */
async function setup(k: number): Promise<{ c: LocalCluster; t: TargetWithIscsi }> {
  const c = await startCluster(k, { logLevel: 'info' });
  const f = await c.dog(['cluster', 'format', '-c', String(k)]);
  expect(f.code, f.stderr).toBe(0);
  const v = await c.dog(['vdi', 'create', 'roll', '64M']);
  expect(v.code, v.stderr).toBe(0);
  for (let i = 0; i < k; i++) await c.planNode();
  const t = await vdiTarget(c.nodes.map((n) => `127.0.0.1:${n.port}`).join(','), ['roll=roll']);
  return { c, t };
}

/** Every original sheep replaced by a fresh one, then every fresh one by its original again. */
async function rollForwardAndBack(c: LocalCluster, k: number, steps: string[]): Promise<void> {
  for (let j = 0; j < k; j++) {
    await replaceNode(c, j, k + j);
    steps.push(`replaced node ${j} by node ${k + j}`);
  }
  for (let j = 0; j < k; j++) {
    await replaceNode(c, k + j, j);
    steps.push(`replaced node ${k + j} by node ${j}`);
  }
}

describe('rolling replacement under a verifying workload', () => {
  for (const k of [2, 3]) {
    it(`copies ${k} (${k} sheep, ${k + 1} during each step): 0 lost, 0 stale, 0 corrupt`, async () => {
      const { c, t } = await setup(k);
      const nbd = await nbdIo(t, 'roll');
      const seed = Number(process.env.SHEEPFOLD_FUZZ_SEED ?? Date.now() % 1_000_000);
      // 12 MiB: three objects, so several replica sets change hands.
      const wl = new Workload(nbd, { blocks: (12 * MiB) / BS, blockSize: BS, workers: 3, writeRatio: 0.6, opTimeoutMs: 120_000, thinkMs: 5, seed });
      wl.start();
      const steps: string[] = [];
      let failure: unknown = null;
      try {
        await new Promise((r) => setTimeout(r, 2000));
        await rollForwardAndBack(c, k, steps);
        await new Promise((r) => setTimeout(r, 2000));
      } catch (err) {
        failure = err;
      }
      const { check, fields } = await finishWorkload(wl);
      await nbd.close();
      reportReliability(`rolling-workload-copies${k}`, { sheep: k, copies: k, steps: steps.length, seed, ...fields }, { steps, violations: check.violations.slice(0, 50) });
      if (failure !== null || check.violations.length > 0 || check.lostWrites + check.staleReads + check.corrupt > 0) {
        const dir = keepEvidence(c, `rolling-workload-copies${k}`, { seed, steps, failure: String(failure), fields, violations: check.violations.slice(0, 200) });
        console.log(`rolling workload copies ${k} FAILED, evidence in ${dir}: ${String(failure)} ${JSON.stringify(fields)}`);
      }
      expect(failure).toBeNull();
      expect(check.violations, `seed ${seed}`).toEqual([]);
      expect(check.lostWrites).toBe(0);
      expect(check.staleReads).toBe(0);
      expect(check.corrupt).toBe(0);
      expect(check.acknowledgedWrites).toBeGreaterThan(0);
    }, 900_000);
  }

  it('copies 2 under fio with crc32c verify through the NBD export', async () => {
    const k = 2;
    const { c, t } = await setup(k);
    const job = (seed: number, extra: string[]): string[] => [
      '--name=roll',
      '--ioengine=nbd',
      `--uri=${t.uri('roll')}`,
      '--rw=randwrite',
      '--bs=4k',
      '--size=16M',
      '--iodepth=4',
      `--randseed=${seed}`,
      '--verify=crc32c',
      '--verify_fatal=1',
      '--verify_backlog=64',
      '--output-format=json',
      ...extra,
    ];
    const passes: { seed: number; code: number; out: string }[] = [];
    let stop = false;
    // fio passes back to back while the sheep are replaced; each writes the 16 MiB with data of its own seed and
    // verifies what it wrote (interleaved, and all of it at the end of the pass).
    const loop = (async () => {
      for (let seed = 1; !stop; seed++) {
        const p = start('fio', job(seed, []));
        const code = await p.exited;
        passes.push({ seed, code: typeof code === 'number' ? code : -1, out: p.output().slice(-4000) });
      }
    })();
    const steps: string[] = [];
    let failure: unknown = null;
    try {
      await rollForwardAndBack(c, k, steps);
    } catch (err) {
      failure = err;
    }
    stop = true;
    await loop;
    // The last pass's data, read back through the original sheep now that they are back.
    const last = passes[passes.length - 1]!;
    const final = await run('fio', job(last.seed, ['--verify_only']), { timeoutMs: 240_000 });
    const bad = passes.filter((p) => p.code !== 0);
    reportReliability('rolling-workload-fio', { sheep: k, copies: k, passes: passes.length, failed_passes: bad.length, final_verify: final.code });
    if (failure !== null || bad.length > 0 || final.code !== 0) {
      const dir = keepEvidence(c, 'rolling-workload-fio', { steps, failure: String(failure), bad, final: final.stdout.slice(-4000) + final.stderr });
      console.log(`rolling workload fio FAILED, evidence in ${dir}`);
    }
    expect(failure).toBeNull();
    expect(bad.map((p) => `pass ${p.seed}: exit ${p.code}\n${p.out}`)).toEqual([]);
    expect(final.code, final.stdout.slice(-4000) + final.stderr).toBe(0);
    expect(passes.length).toBeGreaterThan(0);
  }, 900_000);
});
