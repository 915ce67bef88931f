// Real Linux initiators (kernel NBD client, open-iscsi, dm-multipath) in a QEMU guest against fresh Sheepfold
// servers: each test runs one `scripts/linux-vm` scenario and checks its verdict lines. The scenarios themselves
// (and the host-side checks of the stored bytes) live in scripts/linux-vm.d/. Skipped only when
// SHEEPFOLD_SKIP_LINUX_VM=1; a scenario whose target feature does not exist yet reports SKIP (exit 3) and the
// test is marked skipped, never passed.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/proc.js';

const SKIP = process.env.SHEEPFOLD_SKIP_LINUX_VM === '1';
const SCRIPT = path.join(REPO_ROOT, 'scripts', 'linux-vm');
// One scenario: image build (first run downloads ~75 MB of .debs) + one TCG boot, on a loaded 2-core machine.
const SCENARIO_TIMEOUT_MS = 900_000;
/** Exit status of scripts/linux-vm when a scenario could not run because a target feature is missing. */
const SKIPPED_EXIT = 3;

interface ScenarioRun {
  code: number | string;
  output: string;
}

const running = new Set<number>();

/** Run `scripts/linux-vm NAME`; on timeout SIGTERM it (its trap ends the servers and QEMU it started). */
function runScenario(name: string): Promise<ScenarioRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(SCRIPT, [name], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = child.pid;
    if (pid !== undefined) running.add(pid);
    let output = '';
    const onData = (d: Buffer): void => {
      output += d.toString();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const term = setTimeout(() => child.kill('SIGTERM'), SCENARIO_TIMEOUT_MS - 30_000);
    const kill = setTimeout(() => child.kill('SIGKILL'), SCENARIO_TIMEOUT_MS - 10_000);
    child.once('error', (err) => {
      clearTimeout(term);
      clearTimeout(kill);
      reject(err);
    });
    child.once('close', (code, sig) => {
      clearTimeout(term);
      clearTimeout(kill);
      if (pid !== undefined) running.delete(pid);
      resolve({ code: code ?? sig ?? -1, output });
    });
  });
}

/** The timing lines of a run (boot, attach, MB/s, failover), for the log. */
function timings(output: string): string {
  return output
    .split('\n')
    .filter((l) => /^\[[a-z-]+\] (TIME|RATE) /.test(l))
    .join('\n');
}

/** Assert a passing run: exit 0, the overall PASS line and every expected RESULT line. */
function expectPass(name: string, run: ScenarioRun, results: string[]): void {
  if (run.code !== 0) throw new Error(`scripts/linux-vm ${name} exited ${String(run.code)}:\n${run.output.slice(-8000)}`);
  expect(run.output).toMatch(new RegExp(`^PASS ${name} `, 'm'));
  for (const r of results) expect(run.output).toMatch(new RegExp(`^\\[${name}\\] RESULT ${r} PASS`, 'm'));
  expect(run.output).not.toMatch(/ RESULT \S+ FAIL/);
}

afterAll(() => {
  for (const pid of running) process.kill(pid, 'SIGTERM');
});

describe('Linux initiators in a QEMU guest (scripts/linux-vm)', () => {
  it.skipIf(SKIP)(
    'nbd: kernel NBD client writes, reconnects, verifies and discards',
    async () => {
      const run = await runScenario('nbd');
      console.log(`linux-vm nbd timings:\n${timings(run.output)}`);
      expectPass('nbd', run, ['nbd-size', 'nbd-verify', 'nbd', 'host-map', 'host-read']);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it.skipIf(SKIP)(
    'iscsi: open-iscsi discovers, logs in with CHAP, sees the identity, writes, verifies, discards, logs out',
    async () => {
      const run = await runScenario('iscsi');
      console.log(`linux-vm iscsi timings:\n${timings(run.output)}`);
      expectPass('iscsi', run, [
        'iscsi-discovery',
        'iscsi-login',
        'iscsi-identity',
        'iscsi-verify',
        'iscsi',
        'host-map',
        'host-read',
      ]);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it.skipIf(SKIP)(
    'multipath: one map over targets A and B, ALUA grouping, I/O survives SIGKILL of A, A comes back',
    async (ctx) => {
      const run = await runScenario('multipath');
      console.log(`linux-vm multipath timings:\n${timings(run.output)}`);
      const skipped = /^SKIP multipath: (.*)$/m.exec(run.output);
      if (run.code === SKIPPED_EXIT && skipped) ctx.skip(skipped[1]);
      expectPass('multipath', run, [
        'multipath-map',
        'multipath-alua',
        'multipath-failover',
        'multipath-reinstate',
        'multipath',
      ]);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
