// SIGKILL thrasher (issue 8, test 2): 4 sheep with copies 3, one target exporting a VDI over NBD and iSCSI
// with every sheep in its failover list, and verifying workers on both protocols (separate regions). Every few
// seconds a random sheep is SIGKILLed (or frozen with SIGSTOP), then restarted (or SIGCONTed) and the cluster
// is waited on to settle; at most one sheep is down at a time (≤ copies − 1). At the end every touched block is
// re-read and the history checker runs: lost writes = 0, stale reads = 0, corrupt = 0.
import { afterAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/drill/fuzz.js';
import { Workload, type IoTarget } from '../../src/drill/workload.js';
import { startLocalCluster, type LocalCluster } from '../helpers/cluster.js';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';
import { reliabilitySeconds, reportReliability } from '../helpers/reliability.js';
import { iscsiSession, nbdIo, procStats, vdiTarget } from './harness.js';

const MiB = 1024 * 1024;
const BS = 4096;

let cluster: LocalCluster | null = null;
afterAll(async () => {
  await cluster?.stopAll().catch(() => undefined);
  await killAll();
  cleanupTempDirs();
});

/** waitSettled, with the tail of every node's log in the error (a node that died says why). */
async function settle(c: LocalCluster): Promise<void> {
  try {
    await c.waitSettled(4, 180_000);
  } catch (err) {
    const tails = c.nodes.map((n) => `node ${n.index} (${n.proc ? 'running' : 'down'}):\n${(n.proc?.output() ?? '').slice(-3000)}`);
    throw new Error(`${String(err)}\n${tails.join('\n')}`, { cause: err });
  }
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

describe('SIGKILL thrasher', () => {
  it('loses no acknowledged write and serves no stale read while sheep are killed and frozen', async () => {
    const seconds = reliabilitySeconds(45);
    const seed = Number(process.env.SHEEPFOLD_FUZZ_SEED ?? Date.now() % 1_000_000);
    const rng = new Rng(seed);
    const c = (cluster = await startLocalCluster(4));
    const f = await c.dog(['cluster', 'format', '-c', '3']);
    expect(f.code, f.stderr).toBe(0);
    await c.waitSettled(4);
    const v = await c.dog(['vdi', 'create', 'thr', '64M']);
    expect(v.code, v.stderr).toBe(0);
    const t = await vdiTarget(c.nodes.map((n) => `127.0.0.1:${n.port}`).join(','), ['thr=thr']);
    const nbd = await nbdIo(t, 'thr');
    const iscsi = await iscsiSession(t, 'thr', { reconnect: true, commandTimeoutMs: 120_000 });
    const iscsiIo: IoTarget = {
      read: (offset, length) => iscsi.read(BigInt(offset / 512), length / 512),
      write: (offset, data) => iscsi.write(BigInt(offset / 512), data),
    };
    // 3 objects per region so several replica sets are involved.
    const wlOpts = { blocks: (12 * MiB) / BS / 8, blockSize: BS, workers: 3, writeRatio: 0.6, opTimeoutMs: 120_000, thinkMs: 5 };
    const wNbd = new Workload(nbd, { ...wlOpts, seed, baseOffset: 0 });
    const wIscsi = new Workload(iscsiIo, { ...wlOpts, seed: seed + 1, baseOffset: 32 * MiB });
    const targetStart = procStats(t.proc.pid);
    const sheepFds = (): number => c.nodes.reduce((a, n) => a + (n.proc ? procStats(n.proc.pid).fds : 0), 0);
    const sheepRss = (): number => c.nodes.reduce((a, n) => a + (n.proc ? procStats(n.proc.pid).rssBytes : 0), 0);
    const sheepStart = { fds: sheepFds(), rss: sheepRss() };
    wNbd.start();
    wIscsi.start();

    const recoveryMs: number[] = [];
    let kills = 0;
    let freezes = 0;
    const end = Date.now() + seconds * 1000;
    for (let cycle = 0; Date.now() < end; cycle++) {
      await new Promise((r) => setTimeout(r, 1000 + rng.int(2000)));
      const victim = c.nodes[rng.int(c.nodes.length)]!;
      const freeze = cycle % 3 === 2;
      const downMs = 1000 + rng.int(3000);
      if (freeze && victim.proc) {
        freezes++;
        victim.proc.kill('SIGSTOP');
        await new Promise((r) => setTimeout(r, downMs));
        victim.proc.kill('SIGCONT');
      } else {
        kills++;
        await c.killNode(victim.index);
        await new Promise((r) => setTimeout(r, downMs));
        await c.startNode(victim.index);
      }
      const t0 = Date.now();
      await settle(c);
      recoveryMs.push(Date.now() - t0);
    }
    await wNbd.stop();
    await wIscsi.stop();
    await settle(c);
    await wNbd.verify();
    await wIscsi.verify();
    const targetEnd = procStats(t.proc.pid);
    const sheepEnd = { fds: sheepFds(), rss: sheepRss() };
    const rNbd = wNbd.check();
    const rIscsi = wIscsi.check();
    const unavailable = [...wNbd.timeline, ...wIscsi.timeline].filter((b) => b.reads + b.writes === 0 && b.errors > 0).length * 0.25;
    await iscsi.close();
    await nbd.close();
    reportReliability(
      'thrasher',
      {
        sheep: 4,
        copies: 3,
        seconds,
        kills,
        freezes,
        acked_writes: rNbd.acknowledgedWrites + rIscsi.acknowledgedWrites,
        lost: rNbd.lostWrites + rIscsi.lostWrites,
        stale_reads: rNbd.staleReads + rIscsi.staleReads,
        corrupt: rNbd.corrupt + rIscsi.corrupt,
        nonlinearizable: rNbd.nonlinearizable + rIscsi.nonlinearizable,
        write_errors: wNbd.stats.writeErrors + wIscsi.stats.writeErrors,
        recovery_p50_ms: pct(recoveryMs, 50),
        recovery_max_ms: Math.max(0, ...recoveryMs),
        longest_stall_ms: Math.round(Math.max(wNbd.stats.longestStallMs, wIscsi.stats.longestStallMs)),
        unavailable_s: unavailable,
        target_rss_growth_mb: Math.round((targetEnd.rssBytes - targetStart.rssBytes) / MiB),
        target_fd_growth: targetEnd.fds - targetStart.fds,
        sheep_rss_growth_mb: Math.round((sheepEnd.rss - sheepStart.rss) / MiB),
        sheep_fd_growth: sheepEnd.fds - sheepStart.fds,
        seed,
      },
      { nbd: rNbd, iscsi: rIscsi, recoveryMs },
    );
    expect(rNbd.violations.concat(rIscsi.violations), `seed ${seed}`).toEqual([]);
    expect(rNbd.lostWrites + rIscsi.lostWrites).toBe(0);
    expect(rNbd.staleReads + rIscsi.staleReads).toBe(0);
    expect(rNbd.acknowledgedWrites).toBeGreaterThan(0);
    expect(rIscsi.acknowledgedWrites).toBeGreaterThan(0);
  });
});
