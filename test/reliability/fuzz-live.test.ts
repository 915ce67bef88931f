// Socket fuzzing of live servers (issue 8, test 7): the built target (NBD handshake, NBD transmission after a
// valid handshake, iSCSI login, iSCSI full-feature phase after a valid login) and a sheep (Sheepdog requests)
// get short connections carrying mutated golden inputs, while a sentinel client on a separate connection
// writes and reads back real data through the same process. Crashes = 0, hangs = 0 (sentinel answered within
// 10 s), and the report gives executions/s and peak memory growth per fuzz connection. The 100k-message socket
// fuzz tests of each server live in test/integration/*fuzz*; this is the time-boxed, reported variant.
import { afterAll, describe, expect, it } from 'vitest';
import { SheepClient } from '../../src/client/index.js';
import { netFuzz, type NetFuzzReport, type NetFuzzTarget } from '../../src/drill/netfuzz.js';
import { discoverTargets } from '../../src/initiator/index.js';
import { cleanupTempDirs, killAll, type Proc } from '../helpers/proc.js';
import { reliabilitySeconds, reportReliability } from '../helpers/reliability.js';
import { iscsiSession, nbdIo, procStats, sheepWithVdis, vdiTarget } from './harness.js';
import { IHAVEOPT, ISCSI_SEEDS, NBD_CLIENT_SEEDS, TGT_SEEDS, bhs, hex, kv } from './seeds.js';

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

function alive(p: Proc): () => boolean {
  let ended = false;
  void p.exited.then(() => (ended = true));
  return () => !ended;
}

describe('live-server socket fuzzing', () => {
  it('no server crashes or hangs; the sentinel is served throughout', async () => {
    const perTargetMs = (reliabilitySeconds(25) * 1000) / 5;
    const seed = Number(process.env.SHEEPFOLD_FUZZ_SEED ?? Date.now() % 1_000_000);
    const sheep = await sheepWithVdis([['fz', '16M']]);
    const t = await vdiTarget(sheep.addr, ['fz=fz', 'm=mem:16M']);
    const nbd = await nbdIo(t, 'fz');
    const iscsi = await iscsiSession(t, 'fz', { commandTimeoutMs: 10_000 });
    const sheepClient = new SheepClient({ gateways: sheep.addr, requestTimeoutMs: 10_000 });
    await sheepClient.connect();
    const iqnM = (await discoverTargets({ host: '127.0.0.1', port: t.iscsiPort })).map((d) => d.name).find((n) => n.endsWith('m'));
    expect(iqnM).toBeDefined();

    let n = 0;
    const nbdSentinel = async (): Promise<void> => {
      const data = Buffer.alloc(4096, ++n & 0xff);
      const off = (n % 64) * 4096;
      await nbd.write(off, data);
      if (!(await nbd.read(off, 4096)).equals(data)) throw new Error('NBD sentinel read back wrong data');
    };
    const iscsiSentinel = async (): Promise<void> => {
      const data = Buffer.alloc(4096, ++n & 0xff);
      const lba = 1024 + (n % 64) * 8;
      await iscsi.write(BigInt(lba), data);
      if (!(await iscsi.read(BigInt(lba), 8)).equals(data)) throw new Error('iSCSI sentinel read back wrong data');
    };
    const sheepSentinel = async (): Promise<void> => {
      const info = await sheepClient.getNodeList();
      if (info.nodes.length !== 1) throw new Error('sheep sentinel: wrong node list');
      await nbdSentinel();
    };

    const nameM = Buffer.from('m');
    const optGo = Buffer.concat([hex('00000003' + IHAVEOPT + '00000007'), hex((4 + nameM.length + 2).toString(16).padStart(8, '0')), hex('00000001'), nameM, hex('0000')]);
    const login = bhs(
      [[0, '4387'], [8, '00023d0000000000'], [16, '00000001'], [24, '00000001'], [28, '00000000']],
      kv(`InitiatorName=iqn.2026-11.fuzz:live SessionType=Normal TargetName=${iqnM ?? ''}`),
    );
    const targets: Array<[NetFuzzTarget, () => Promise<void>, Proc]> = [
      [{ name: 'nbd-handshake', host: t.host, port: t.port, seeds: NBD_CLIENT_SEEDS.slice(0, 3) }, nbdSentinel, t.proc],
      [{ name: 'nbd-transmission', host: t.host, port: t.port, seeds: NBD_CLIENT_SEEDS.slice(3), prefix: () => optGo }, nbdSentinel, t.proc],
      [{ name: 'iscsi-login', host: '127.0.0.1', port: t.iscsiPort, seeds: ISCSI_SEEDS }, iscsiSentinel, t.proc],
      [{ name: 'iscsi-full-feature', host: '127.0.0.1', port: t.iscsiPort, seeds: ISCSI_SEEDS.slice(1), prefix: () => login }, iscsiSentinel, t.proc],
      [{ name: 'sheep', host: '127.0.0.1', port: sheep.port, seeds: TGT_SEEDS }, sheepSentinel, sheep.proc],
    ];
    const reports: NetFuzzReport[] = [];
    for (const [target, sentinel, proc] of targets) {
      reports.push(
        await netFuzz(target, {
          durationMs: perTargetMs,
          concurrency: 4,
          seed,
          sentinel,
          alive: alive(proc),
          rss: () => procStats(proc.pid).rssBytes,
        }),
      );
    }
    await iscsi.close();
    await nbd.close();
    sheepClient.close();
    const sum = (f: (r: NetFuzzReport) => number): number => reports.reduce((a, r) => a + f(r), 0);
    reportReliability(
      'fuzz-live',
      {
        servers: reports.length,
        execs: sum((r) => r.execs),
        execs_per_s: Math.round(sum((r) => r.execsPerSec) / reports.length),
        crashes: sum((r) => r.crashes),
        hangs: sum((r) => r.hangs),
        sentinel_ops: sum((r) => r.sentinelOps),
        sentinel_errors: sum((r) => r.sentinelErrors.length),
        peak_kb_per_conn: Math.round(Math.max(...reports.map((r) => r.peakPerConnBytes)) / 1024),
        seed,
      },
      reports,
    );
    for (const r of reports) {
      expect(r.crashes, `${r.name} seed ${seed}`).toBe(0);
      expect(r.hangs, `${r.name} seed ${seed}`).toBe(0);
      expect(r.sentinelErrors, `${r.name} seed ${seed}`).toEqual([]);
      expect(r.sentinelOps, r.name).toBeGreaterThan(0);
      expect(r.execs, r.name).toBeGreaterThan(0);
    }
  });
});
