// Rolling node replacement (Sheepdog test 028's sequence: start a new sheep, wait for it, SIGKILL an old one,
// wait until `dog node recovery` is idle) under a running verifying workload, with copies 2 (2 sheep, 3 during
// each step) and copies 3 (3 sheep, 4 during each step): every original sheep is replaced by a fresh one, then
// the fresh ones are replaced by the originals again, which come back with the old objects still on disk.
// The workload writes stamped blocks through our target's NBD export (its gateway list names every sheep,
// present and future); at the end every touched block is re-read and the history checker must find
// 0 lost, 0 stale, 0 corrupt (a mixed block is corrupt). A third case drives the same replacement with fio
// through the NBD export (pattern verify: each pass writes its own number and the block's offset), writes one
// more pass while only the new sheep are up and verifies it once the old sheep are back. Logs of a failing run are kept under
// test-results/rolling-workload-*/.
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
  const v = await c.dog(['vdi', 'create', 'roll', '100M']);
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
      // The whole VDI (25 objects, as in test 028): many blocks are written while the old sheep are away and
      // only read again (by verify) after they are back, which is when a stale copy would show.
      const wl = new Workload(nbd, { blocks: (100 * MiB) / BS, blockSize: BS, workers: 3, writeRatio: 0.6, opTimeoutMs: 120_000, thinkMs: 5, seed });
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

  it('copies 2 under fio with verify through the NBD export: no block of an older pass after the old sheep are back', async () => {
    const k = 2;
    const { c, t } = await setup(k);
    const job = (seed: number, extra: string[]): string[] => [
      '--name=roll',
      '--ioengine=nbd',
      `--uri=${t.uri('roll')}`,
      '--rw=randwrite',
      '--bs=64k',
      '--size=100M',
      '--iodepth=4',
      `--randseed=${seed}`,
      // A pattern of the pass and the block's offset: a block left from another pass, or from another place,
      // fails verification (crc32c would not tell: a stale block is a consistent block).
      '--verify=pattern',
      `--verify_pattern="pass${String(seed).padStart(4, '0')}"%o`,
      '--verify_fatal=1',
      '--verify_backlog=64',
      '--output-format=json',
      ...extra,
    ];
    const passes: { seed: number; code: number; out: string }[] = [];
    const pass = async (seed: number, extra: string[] = []): Promise<number> => {
      const p = start('fio', job(seed, extra));
      const code = await p.exited;
      passes.push({ seed, code: typeof code === 'number' ? code : -1, out: p.output().slice(-4000) });
      return seed;
    };
    let stop = false;
    let seed = 0;
    // fio passes back to back while the original sheep are replaced; each writes the whole VDI (25 objects) with
    // its own pattern and verifies what it wrote (interleaved, and all of it at the end of the pass).
    const loop = (async () => {
      while (!stop) await pass(++seed);
    })();
    const steps: string[] = [];
    let failure: unknown = null;
    let final = { code: -1, stdout: '', stderr: 'not run' };
    try {
      for (let j = 0; j < k; j++) {
        await replaceNode(c, j, k + j);
        steps.push(`replaced node ${j} by node ${k + j}`);
      }
      stop = true;
      await loop;
      // As test 028: one more pass while only the new sheep are up, then the originals (with the data of older
      // passes on disk) replace them, and that pass's data is verified through them.
      const last = await pass(++seed);
      for (let j = 0; j < k; j++) {
        await replaceNode(c, k + j, j);
        steps.push(`replaced node ${k + j} by node ${j}`);
      }
      final = await run('fio', job(last, ['--verify_only']), { timeoutMs: 240_000 });
    } catch (err) {
      failure = err;
    }
    stop = true;
    await loop;
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
