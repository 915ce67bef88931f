// Our initiator against our own target process (`sheepfold target --config`, iSCSI front end, file export):
// login with and without CHAP (one-way, mutual, refused), digests, random-data round trips byte-compared with the
// backing file, NOP both ways, ABORT TASK / LUN RESET, reconnect after the target is SIGKILLed and restarted, and a
// 2-path MultipathDevice over two target processes exporting one shared file: one is SIGKILLed under a read/write
// loop (no error reaches the caller), then restarted, and I/O fails back to it.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { cleanupTempDirs, killAll, tempDir } from '../helpers/proc.js';
import { MultipathDevice } from '../../src/initiator/multipath.js';
import { IscsiSession, discoverTargets } from '../../src/initiator/scsi.js';
import { Workload } from '../../src/drill/workload.js';
import { VerifyLoop, waitFor } from '../unit/initiator/helpers.js';
import { fileBytes, startOurTarget, type OurTarget } from './initiator-harness.js';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;

describe('initiator vs our target', () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  });
  afterAll(async () => {
    await killAll();
    cleanupTempDirs();
  });

  async function target(opts: Partial<Parameters<typeof startOurTarget>[0]> = {}): Promise<OurTarget & { file: string }> {
    const dir = opts.dir ?? tempDir('sheepfold-initiator-ours-');
    const file = opts.file ?? path.join(dir, 'disk.img');
    const t = await startOurTarget({ name: 'disk1', file, sizeBytes: SIZE, dir, ...opts });
    closers.push(() => t.stop());
    return { ...t, file };
  }
  function session(t: OurTarget, extra: Partial<ConstructorParameters<typeof IscsiSession>[0]> = {}): IscsiSession {
    const s = new IscsiSession({ host: '127.0.0.1', port: t.port, targetName: t.iqn, nopIntervalMs: 0, ...extra });
    closers.push(() => s.close());
    return s;
  }

  it('logs in, negotiates digests and round-trips random data byte-compared with the backing file', async () => {
    const t = await target();
    const plain = session(t);
    await plain.connect();
    expect((await plain.readCapacity16()).sizeBytes).toBe(SIZE);
    const s = session(t, { headerDigest: true, dataDigest: true });
    await s.connect();
    expect([s.negotiated?.headerDigest, s.negotiated?.dataDigest]).toEqual([true, true]);
    for (const [lba, bytes] of [[0, 512], [4096, 2 * MiB + 512], [60000, 96 * 1024]] as const) {
      const data = randomBytes(bytes);
      await s.write(lba, data, { fua: true });
      expect((await plain.read(lba, bytes / 512)).equals(data)).toBe(true);
      await s.synchronizeCache();
      expect(fileBytes(t.file, lba * 512, bytes).equals(data)).toBe(true);
    }
    const found = await discoverTargets({ host: '127.0.0.1', port: t.port });
    expect(found.map((f) => f.name)).toEqual([t.iqn]);
  });

  it('authenticates with one-way and mutual CHAP and is refused with wrong secrets', async () => {
    const t = await target({
      iscsi: { 'chap-user': 'ini', 'chap-secret': 'ini-secret-1234', 'chap-mutual-user': 'tgt', 'chap-mutual-secret': 'tgt-secret-5678' },
    });
    const one = session(t, { chap: { user: 'ini', secret: 'ini-secret-1234' } });
    await one.connect();
    const data = randomBytes(8192);
    await one.write(10, data);
    const mutual = session(t, { chap: { user: 'ini', secret: 'ini-secret-1234', mutualUser: 'tgt', mutualSecret: 'tgt-secret-5678' } });
    await mutual.connect();
    expect((await mutual.read(10, 16)).equals(data)).toBe(true);
    await expect(session(t, { chap: { user: 'ini', secret: 'wrong-secret-00' }, reconnect: false }).connect()).rejects.toMatchObject({ code: 'EAUTH' });
    await expect(
      session(t, { chap: { user: 'ini', secret: 'ini-secret-1234', mutualSecret: 'wrong-target-00' }, reconnect: false }).connect(),
    ).rejects.toMatchObject({ code: 'EAUTH' });
    await expect(session(t, { reconnect: false }).connect()).rejects.toMatchObject({ code: 'EAUTH' });
  });

  it('answers target NOP-In pings, pings back, aborts and resets', async () => {
    const t = await target({ iscsi: { 'nop-interval-ms': 100, 'nop-timeout-ms': 5000 } });
    const s = session(t);
    let downs = 0;
    s.on('down', () => downs++);
    await s.connect();
    expect((await s.ping(Buffer.from('abc'))).toString()).toBe('abc');
    await waitFor(() => s.nopInsAnswered >= 3, 'target pings answered'); // idle: the target pings us
    expect(downs).toBe(0);
    const pending = s.read(0, (4 * MiB) / 512).then(
      (d) => ({ ok: true as const, d }),
      (e: unknown) => ({ ok: false as const, e }),
    );
    const itt = s.outstandingItts()[0];
    if (itt !== undefined) await s.abortTask(itt);
    const r = await pending;
    if (!r.ok) expect(r.e).toMatchObject({ code: 'EABORTED' });
    else expect(r.d.length).toBe(4 * MiB);
    await s.lunReset();
    await s.testUnitReady();
    expect(downs).toBe(0);
  });

  it('reconnects with the same ISID after the target process is killed and restarted', async () => {
    const dir = tempDir('sheepfold-initiator-ours-');
    const file = path.join(dir, 'disk.img');
    const t = await target({ dir, file });
    const s = session(t, { reconnectDelayMs: 50, reconnectMaxDelayMs: 200, commandTimeoutMs: 60_000 });
    await s.connect();
    const data = randomBytes(64 * 1024);
    await s.write(1000, data, { fua: true });
    let downs = 0;
    s.on('down', () => downs++);
    await t.stop();
    await waitFor(() => downs > 0, 'connection loss');
    await target({ dir, file, port: t.port });
    expect((await s.read(1000, 128)).equals(data)).toBe(true); // queued until the session is back
    expect(s.state).toBe('up');
  });

  it('multipath over two target processes sharing one file: SIGKILL one under load, zero errors, failback', async () => {
    const dir = tempDir('sheepfold-initiator-mp-');
    const file = path.join(dir, 'shared.img');
    const a = await target({ dir, file });
    const b = await target({ dir, file });
    const dev = new MultipathDevice({
      name: 'shared',
      paths: [
        { name: 'target-a', priority: 0, session: { host: '127.0.0.1', port: a.port, targetName: a.iqn } },
        { name: 'target-b', priority: 1, session: { host: '127.0.0.1', port: b.port, targetName: b.iqn } },
      ],
      ioTimeoutMs: 5000,
      probeIntervalMs: 200,
      nopIntervalMs: 500,
    });
    closers.push(() => dev.close());
    await dev.open();
    expect(dev.status().map((p) => p.state)).toEqual(['active', 'active']);
    const loop = new VerifyLoop(dev, { workers: 4, blocksPerWorker: 32, blockBytes: 4096 });
    await waitFor(() => loop.ops > 100, 'I/O through target-a');
    await a.stop();
    await waitFor(() => dev.failovers().length > 0, 'failover to target-b');
    const bIos = dev.status()[1]?.ios ?? 0;
    await waitFor(() => (dev.status()[1]?.ios ?? 0) > bIos + 100, 'I/O through target-b');
    await target({ dir, file, port: a.port });
    await waitFor(() => dev.events.some((e) => e.type === 'switch' && e.path === 'target-a' && e.from === 'target-b'), 'failback');
    const aIos = dev.status()[0]?.ios ?? 0;
    await waitFor(() => (dev.status()[0]?.ios ?? 0) > aIos + 50, 'I/O through target-a again');
    await loop.stop();
    expect(loop.errors).toEqual([]);
    expect(loop.mismatches).toBe(0);
    expect(await loop.verifyAll()).toBe(0);
    const kinds = dev.events.map((e) => `${e.type}:${e.path}`);
    expect(kinds).toEqual(expect.arrayContaining(['fail:target-a', 'switch:target-b', 'failover:target-b', 'reinstate:target-a', 'switch:target-a']));
    const f = dev.failovers()[0];
    expect(f?.from).toBe('target-a');
  });

  it('runs the drill verifying workload on the multipath device across a target SIGKILL: history checks clean', async () => {
    const dir = tempDir('sheepfold-initiator-wl-');
    const file = path.join(dir, 'shared.img');
    const a = await target({ dir, file });
    const b = await target({ dir, file });
    const dev = new MultipathDevice({
      paths: [
        { name: 'a', session: { host: '127.0.0.1', port: a.port, targetName: a.iqn } },
        { name: 'b', priority: 1, session: { host: '127.0.0.1', port: b.port, targetName: b.iqn } },
      ],
      ioTimeoutMs: 5000,
      probeIntervalMs: 200,
    });
    closers.push(() => dev.close());
    await dev.open();
    const wl = new Workload(dev, { blocks: 64, workers: 4, writeRatio: 0.5, seed: 7, opTimeoutMs: 120_000, baseOffset: MiB });
    wl.start();
    await waitFor(() => wl.stats.acknowledgedWrites > 100, 'writes through path a');
    await a.stop();
    await waitFor(() => dev.failovers().length > 0, 'failover');
    const acked = wl.stats.acknowledgedWrites;
    await waitFor(() => wl.stats.acknowledgedWrites > acked + 100, 'writes through path b');
    await target({ dir, file, port: a.port });
    await waitFor(() => dev.status()[0]?.state === 'active', 'path a reinstated');
    const again = wl.stats.acknowledgedWrites;
    await waitFor(() => wl.stats.acknowledgedWrites > again + 50, 'writes after failback');
    await wl.stop();
    await wl.verify();
    const r = wl.check();
    expect(wl.stats.readErrors + wl.stats.writeErrors).toBe(0);
    expect([r.corrupt, r.staleReads, r.lostWrites, r.nonlinearizable]).toEqual([0, 0, 0, 0]);
    expect(r.acknowledgedWrites).toBeGreaterThan(250);
  });
});
