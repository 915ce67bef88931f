// The deliberately broken build, as a real process: a sheep started with `--fault ack-early` acknowledges writes before its replicas have them (the real write starts 250 ms
// later). A verifying NBD workload runs through the target, the sheep is SIGKILLed and restarted, every block
// is re-read: the history checker must report lost writes. (The in-process variant over crash states is in
// crash-states.test.ts; the healthy build under the same kind of SIGKILL is the thrasher.)
import { afterAll, describe, expect, it } from 'vitest';
import { Workload } from '../../src/drill/workload.js';
import { ephemeralPort } from '../helpers/ports.js';
import { SHEEPFOLD_BIN, cleanupTempDirs, killAll, start, tempDir, waitForOutput, type Proc } from '../helpers/proc.js';
import { reportReliability } from '../helpers/reliability.js';
import { dogOk, nbdIo, vdiTarget, waitFor } from './harness.js';

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe('ack-early fault in a real sheep', () => {
  it('is caught: SIGKILL after early acknowledgements loses writes the checker reports', async () => {
    const dir = tempDir('sheepfold-ack-early-');
    const port = await ephemeralPort();
    const sheep = (): Proc =>
      start(process.execPath, [SHEEPFOLD_BIN, 'sheep', '--store', dir, '--port', String(port), '--log-level', 'warn', '--fault', 'ack-early']);
    let p = sheep();
    await waitForOutput(p, /sheep ready/, 60_000);
    await dogOk(port, ['cluster', 'format', '-c', '1']);
    await dogOk(port, ['vdi', 'create', 'ae', '16M']);
    const t = await vdiTarget(`127.0.0.1:${port}`, ['ae=ae']);
    const nbd = await nbdIo(t, 'ae');
    // Allocate the objects first, then overwrite: lost overwrites show up as stale final reads.
    for (let i = 0; i < 4; i++) await nbd.write(i * 4 * 1024 * 1024, Buffer.alloc(4096));
    await new Promise((r) => setTimeout(r, 1000));
    const wl = new Workload(nbd, { blocks: 64, blockSize: 4096, workers: 4, writeRatio: 1, seed: 11, opTimeoutMs: 5000 });
    wl.start();
    await waitFor(() => wl.stats.acknowledgedWrites > 200, 'acknowledged writes');
    p.kill('SIGKILL');
    await p.exited;
    await wl.stop();
    p = sheep();
    await waitForOutput(p, /sheep ready/, 60_000);
    await wl.verify();
    const r = wl.check();
    await nbd.close();
    reportReliability('ack-early-process', { acked_writes: r.acknowledgedWrites, lost: r.lostWrites, stale_reads: r.staleReads, corrupt: r.corrupt, caught: r.lostWrites > 0 });
    expect(r.lostWrites).toBeGreaterThan(0);
  });
});
