// Our initiator against the real tgtd (rdwr file LU 1): login with and without CHAP (one-way and mutual), CRC32C
// digests, random-data round trips byte-compared with the LU file, SendTargets, NOP, ABORT TASK, LUN RESET,
// reconnect after tgtd drops the connection, and a 2-path MultipathDevice across two tgtd portals of the same LU:
// one path is killed under a read/write loop (zero errors surfaced), then comes back and I/O fails back to it;
// a blackholed path (timeout → ABORT TASK → connection drop → failover, heal → failback); and a mixed group —
// our target and tgtd exporting one file, matched by unit serial — across a SIGKILL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { ephemeralPort } from '../helpers/ports.js';
import { cleanupTempDirs, killAll, lacking } from '../helpers/proc.js';
import { FaultProxy } from '../../src/drill/faultproxy.js';
import { MultipathDevice } from '../../src/initiator/multipath.js';
import { IscsiSession, discoverTargets } from '../../src/initiator/scsi.js';
import { VerifyLoop, waitFor } from '../unit/initiator/helpers.js';
import { fileBytes, startOurTarget, startTgtd, tgtdDropSession, tgtdSessions, type Tgtd } from './initiator-harness.js';

const MiB = 1024 * 1024;
const INI_A = 'iqn.2026-11.org.sheepfold.test:initiator-a';
const INI_B = 'iqn.2026-11.org.sheepfold.test:initiator-b';
const have = !lacking(['tgtd', 'tgtadm']);

describe.skipIf(!have)('initiator vs tgtd', () => {
  let tgt: Tgtd;
  let chapTgt: Tgtd;
  const sessions: Array<IscsiSession | MultipathDevice> = [];
  const open = (t: Tgtd, extra: Partial<ConstructorParameters<typeof IscsiSession>[0]> = {}): IscsiSession => {
    const s = new IscsiSession({ host: '127.0.0.1', port: t.port, targetName: t.iqn, lun: 1, nopIntervalMs: 0, ...extra });
    sessions.push(s);
    return s;
  };

  beforeAll(async () => {
    tgt = await startTgtd({ sizeBytes: 64 * MiB });
    chapTgt = await startTgtd({
      sizeBytes: 16 * MiB,
      chap: { user: 'ini-user', secret: 'ini-secret-123', mutualUser: 'tgt-user', mutualSecret: 'tgt-secret-456' },
    });
  });
  afterAll(async () => {
    for (const s of sessions) await s.close().catch(() => undefined);
    await tgt?.stop();
    await chapTgt?.stop();
    await killAll();
    cleanupTempDirs();
  });

  it('logs in without CHAP and round-trips random data, byte-compared with the LU file', async () => {
    const s = open(tgt);
    await s.connect();
    const cap = await s.readCapacity16();
    expect(cap.sizeBytes).toBe(64 * MiB);
    expect(cap.blockSize).toBe(512);
    for (const [lba, bytes] of [[0, 512], [2048, MiB + 4096], [9000, 8192 * 3 + 512]] as const) {
      const data = randomBytes(bytes);
      await s.write(lba, data, { fua: lba === 0 });
      expect((await s.read(lba, bytes / 512)).equals(data)).toBe(true);
      await s.synchronizeCache();
      expect(fileBytes(tgt.lunFile, lba * 512, bytes).equals(data)).toBe(true);
    }
    // And what tgtd's file holds is what we read.
    const planted = randomBytes(4096);
    const fd = fs.openSync(tgt.lunFile, 'r+');
    fs.writeSync(fd, planted, 0, planted.length, 100 * 512);
    fs.closeSync(fd);
    expect((await s.read(100, 8)).equals(planted)).toBe(true);
  });

  it('negotiates digests and runs many outstanding commands', async () => {
    for (const name of ['HeaderDigest', 'DataDigest']) {
      await tgt.adm(['--lld', 'iscsi', '--mode', 'target', '--op', 'update', '--tid', '1', '--name', name, '--value', 'CRC32C,None']);
    }
    const s = open(tgt, { headerDigest: true, dataDigest: true, maxRecvDataSegmentLength: 8192 });
    await s.connect();
    expect([s.negotiated?.headerDigest, s.negotiated?.dataDigest]).toEqual([true, true]);
    const blocks = Array.from({ length: 32 }, (_, i) => ({ lba: 20000 + i * 64, data: randomBytes(32 * 1024) }));
    await Promise.all(blocks.map((b) => s.write(b.lba, b.data)));
    const back = await Promise.all(blocks.map((b) => s.read(b.lba, 64)));
    back.forEach((d, i) => expect(d.equals((blocks[i] as { data: Buffer }).data)).toBe(true));
  });

  it('logs in with one-way and mutual CHAP, and is refused with a wrong secret', async () => {
    const one = open(chapTgt, { chap: { user: 'ini-user', secret: 'ini-secret-123' } });
    await one.connect();
    const data = randomBytes(64 * 1024);
    await one.write(0, data);
    expect((await one.read(0, 128)).equals(data)).toBe(true);
    const mutual = open(chapTgt, { chap: { user: 'ini-user', secret: 'ini-secret-123', mutualUser: 'tgt-user', mutualSecret: 'tgt-secret-456' } });
    await mutual.connect();
    expect((await mutual.read(0, 128)).equals(data)).toBe(true);
    const wrong = open(chapTgt, { chap: { user: 'ini-user', secret: 'not-the-secret' }, reconnect: false });
    await expect(wrong.connect()).rejects.toMatchObject({ code: 'EAUTH' });
    const wrongTarget = open(chapTgt, { chap: { user: 'ini-user', secret: 'ini-secret-123', mutualSecret: 'bad-target-sec' }, reconnect: false });
    await expect(wrongTarget.connect()).rejects.toMatchObject({ code: 'EAUTH' });
    const none = open(chapTgt, { reconnect: false });
    await expect(none.connect()).rejects.toMatchObject({ code: 'EAUTH' });
  });

  it('discovers the target with SendTargets and reads the LU identity', async () => {
    const found = await discoverTargets({ host: '127.0.0.1', port: tgt.port });
    expect(found.map((f) => f.name)).toContain(tgt.iqn);
    const s = open(tgt);
    const id = await s.deviceIdentification();
    expect(id.naa).toMatch(/^[0-9a-f]{16,32}$/);
    expect((await s.inquiry()).peripheralDeviceType).toBe(0);
  });

  it('pings with NOP-Out, aborts a command, resets the LU and keeps working', async () => {
    const s = open(tgt);
    await s.connect();
    expect((await s.ping(Buffer.from('ping-data'))).toString()).toBe('ping-data');
    const pending = s.read(0, (8 * MiB) / 512).then(
      (d) => ({ ok: true as const, d }),
      (e: unknown) => ({ ok: false as const, e }),
    );
    const itt = s.outstandingItts()[0];
    if (itt !== undefined) await s.abortTask(itt); // tgtd answers "complete" or "no such task" (already done)
    const r = await pending;
    if (!r.ok) expect(r.e).toMatchObject({ code: 'EABORTED' });
    else expect(r.d.length).toBe(8 * MiB);
    await s.lunReset();
    await s.testUnitReady();
    const data = randomBytes(4096);
    await s.write(50, data);
    expect((await s.read(50, 8)).equals(data)).toBe(true);
  });

  it('reconnects (same ISID, session reinstated) after tgtd drops the connection', async () => {
    const s = open(tgt, { reconnectDelayMs: 50 });
    await s.connect();
    const isid = s.isid;
    const before = await tgtdSessions(tgt);
    expect(before.length).toBeGreaterThan(0);
    let downs = 0;
    s.on('down', () => downs++);
    for (const { sid } of before) await tgtdDropSession(tgt, sid);
    await waitFor(() => downs > 0, 'connection loss');
    const data = randomBytes(8192);
    await s.write(300, data); // queued until the reconnect
    expect((await s.read(300, 16)).equals(data)).toBe(true);
    expect(s.state).toBe('up');
    expect(s.isid).toBe(isid);
  });

  it('multipath across two tgtd portals: a path dies under load with zero errors, then I/O fails back', async () => {
    for (const s of sessions.splice(0)) await s.close().catch(() => undefined);
    const port2 = await ephemeralPort();
    await tgt.addPortal(port2);
    const dev = new MultipathDevice({
      paths: [
        { name: 'portal-a', priority: 0, session: { host: '127.0.0.1', port: tgt.port, targetName: tgt.iqn, lun: 1, initiatorName: INI_A } },
        { name: 'portal-b', priority: 1, session: { host: '127.0.0.1', port: port2, targetName: tgt.iqn, lun: 1, initiatorName: INI_B } },
      ],
      ioTimeoutMs: 5000,
      probeIntervalMs: 200,
      nopIntervalMs: 500,
    });
    sessions.push(dev);
    await dev.open();
    expect(dev.status().map((p) => [p.state, p.alua])).toEqual([
      ['active', 'active/optimized'],
      ['active', 'active/optimized'],
    ]);
    const loop = new VerifyLoop(dev, { workers: 4, blocksPerWorker: 32, blockBytes: 4096, baseOffset: 32 * MiB });
    await waitFor(() => loop.ops > 100, 'I/O on portal-a');
    // Kill path A: remove its portal (no relogin possible) and drop its session from the target side.
    await tgt.removePortal(tgt.port);
    const nexus = (await tgtdSessions(tgt)).filter((n) => n.initiator === INI_A);
    expect(nexus).toHaveLength(1);
    await tgtdDropSession(tgt, (nexus[0] as { sid: number }).sid);
    await waitFor(() => dev.status()[0]?.state === 'failed', 'path A failed');
    expect(dev.status()[1]?.state).toBe('active');
    await waitFor(() => dev.status()[1]?.ios !== undefined && (dev.status()[1]?.ios ?? 0) > 100, 'I/O on portal-b');
    await tgt.addPortal(tgt.port);
    await waitFor(() => dev.events.some((e) => e.type === 'switch' && e.path === 'portal-a' && e.from === 'portal-b'), 'failback');
    const aIos = dev.status()[0]?.ios ?? 0;
    await waitFor(() => (dev.status()[0]?.ios ?? 0) > aIos + 50, 'I/O on portal-a again');
    await loop.stop();
    expect(loop.errors).toEqual([]);
    expect(loop.mismatches).toBe(0);
    expect(await loop.verifyAll(dev, 4096, 32 * MiB)).toBe(0);
    const kinds = dev.events.map((e) => `${e.type}:${e.path}`);
    expect(kinds).toContain('fail:portal-a');
    expect(kinds).toContain('switch:portal-b');
    expect(kinds).toContain('reinstate:portal-a');
    expect(kinds).toContain('failover:portal-b');
    await dev.flush();
  });
  it('mixed multipath: our target and tgtd on one file (same unit serial), our target SIGKILLed and restarted', async () => {
    const ours = await startOurTarget({ name: 'mixed', file: tgt.lunFile, sizeBytes: 64 * MiB });
    const probe = new IscsiSession({ host: '127.0.0.1', port: ours.port, targetName: ours.iqn, nopIntervalMs: 0 });
    const serial = await probe.unitSerialNumber();
    await probe.close();
    await tgt.adm(['--lld', 'iscsi', '--mode', 'logicalunit', '--op', 'update', '--tid', '1', '--lun', '1', '--params', `scsi_sn=${serial}`]);
    const dev = new MultipathDevice({
      identityBy: 'serial',
      paths: [
        { name: 'sheepfold', priority: 0, session: { host: '127.0.0.1', port: ours.port, targetName: ours.iqn } },
        { name: 'tgtd', priority: 1, session: { host: '127.0.0.1', port: tgt.port, targetName: tgt.iqn, lun: 1, initiatorName: INI_A } },
      ],
      ioTimeoutMs: 5000,
      probeIntervalMs: 200,
    });
    sessions.push(dev);
    await dev.open();
    expect(dev.status().map((p) => p.state)).toEqual(['active', 'active']);
    const loop = new VerifyLoop(dev, { workers: 4, blocksPerWorker: 32, blockBytes: 4096, baseOffset: 48 * MiB });
    await waitFor(() => loop.ops > 100, 'I/O through our target');
    await ours.stop();
    await waitFor(() => dev.failovers().length > 0, 'failover to tgtd');
    const t0 = dev.status()[1]?.ios ?? 0;
    await waitFor(() => (dev.status()[1]?.ios ?? 0) > t0 + 100, 'I/O through tgtd');
    await startOurTarget({ name: 'mixed', file: tgt.lunFile, sizeBytes: 64 * MiB, port: ours.port });
    await waitFor(() => dev.events.some((e) => e.type === 'switch' && e.path === 'sheepfold' && e.from === 'tgtd'), 'failback to our target');
    const s0 = dev.status()[0]?.ios ?? 0;
    await waitFor(() => (dev.status()[0]?.ios ?? 0) > s0 + 50, 'I/O through our target again');
    await loop.stop();
    expect(loop.errors).toEqual([]);
    expect(loop.mismatches).toBe(0);
    expect(await loop.verifyAll(dev, 4096, 48 * MiB)).toBe(0);
  });

  it('multipath over tgtd fails over on a timeout when one path is blackholed, and fails back when it heals', async () => {
    const proxy = new FaultProxy({ targetHost: '127.0.0.1', targetPort: tgt.port });
    const pport = await proxy.start();
    const dev = new MultipathDevice({
      paths: [
        { name: 'via-proxy', priority: 0, session: { host: '127.0.0.1', port: pport, targetName: tgt.iqn, lun: 1, initiatorName: INI_A } },
        { name: 'direct', priority: 1, session: { host: '127.0.0.1', port: tgt.port, targetName: tgt.iqn, lun: 1, initiatorName: INI_B } },
      ],
      ioTimeoutMs: 2000,
      probeIntervalMs: 200,
      nopIntervalMs: 500,
    });
    sessions.push(dev);
    try {
      await dev.open();
      const loop = new VerifyLoop(dev, { workers: 4, blocksPerWorker: 16, blockBytes: 4096, baseOffset: 56 * MiB });
      await waitFor(() => loop.ops > 50, 'I/O through the proxy');
      proxy.set({ blackhole: true });
      await waitFor(() => dev.failovers().length > 0, 'failover after the timeout');
      const d0 = dev.status()[1]?.ios ?? 0;
      await waitFor(() => (dev.status()[1]?.ios ?? 0) > d0 + 50, 'I/O on the direct path');
      proxy.heal();
      await waitFor(() => dev.events.some((e) => e.type === 'switch' && e.path === 'via-proxy' && e.from === 'direct'), 'failback');
      const p0 = dev.status()[0]?.ios ?? 0;
      await waitFor(() => (dev.status()[0]?.ios ?? 0) > p0 + 50, 'I/O through the proxy again');
      await loop.stop();
      expect(loop.errors).toEqual([]);
      expect(loop.mismatches).toBe(0);
      expect(await loop.verifyAll(dev, 4096, 56 * MiB)).toBe(0);
      expect(dev.events.find((e) => e.type === 'fail' && e.path === 'via-proxy')?.reason).toMatch(/timed out|ping/);
    } finally {
      await dev.close();
      await proxy.stop();
    }
  });
});
