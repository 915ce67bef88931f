import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../../src/drill/faultproxy.js';
import { IscsiSession, discoverTargets } from '../../../src/initiator/scsi.js';
import { IscsiTransportError, ScsiStatusError } from '../../../src/initiator/errors.js';
import * as I from '../../../src/proto/iscsi/constants.js';
import * as C from '../../../src/proto/scsi/constants.js';
import { read16Cdb } from '../../../src/proto/scsi/cdbs.js';
import { GatedDevice, IQN, rand, startTarget, waitFor, type TestTarget } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SIZE = 8 * 1024 * 1024;

async function setup(opts: Parameters<typeof startTarget>[0] = {}): Promise<TestTarget> {
  const t = await startTarget(opts);
  cleanups.push(() => t.stop());
  return t;
}
function session(port: number, extra: Partial<ConstructorParameters<typeof IscsiSession>[0]> = {}): IscsiSession {
  const s = new IscsiSession({ host: '127.0.0.1', port, targetName: IQN, nopIntervalMs: 0, ...extra });
  cleanups.push(() => s.close());
  return s;
}
async function roundTrip(s: IscsiSession, t: TestTarget, lba: number, bytes: number): Promise<void> {
  const data = rand(bytes);
  await s.write(lba, data);
  expect((await s.read(lba, bytes / 512)).equals(data)).toBe(true);
  expect((await t.device.read(lba * 512, bytes)).equals(data)).toBe(true);
}

describe('IscsiSession login', () => {
  it('logs in without authentication and round-trips data', async () => {
    const t = await setup();
    const s = session(t.port);
    await s.connect();
    expect(s.state).toBe('up');
    expect(s.tsih).toBeGreaterThan(0);
    expect((await s.readCapacity16()).sizeBytes).toBe(SIZE);
    await roundTrip(s, t, 8, 64 * 1024);
  });

  it('authenticates with one-way and mutual CHAP, and fails on a wrong secret either way', async () => {
    const t = await setup({ chap: [{ user: 'alice', secret: 'alice-secret-12', mutualUser: 'tgt', mutualSecret: 'target-secret-12' }] });
    const one = session(t.port, { chap: { user: 'alice', secret: 'alice-secret-12' } });
    await one.connect();
    await roundTrip(one, t, 0, 4096);
    const mutual = session(t.port, { chap: { user: 'alice', secret: 'alice-secret-12', mutualUser: 'tgt', mutualSecret: 'target-secret-12' } });
    await mutual.connect();
    await roundTrip(mutual, t, 16, 4096);
    const bad = session(t.port, { chap: { user: 'alice', secret: 'wrong-secret-123' }, reconnect: false });
    await expect(bad.connect()).rejects.toMatchObject({ code: 'EAUTH' });
    const badTarget = session(t.port, { chap: { user: 'alice', secret: 'alice-secret-12', mutualSecret: 'not-the-target-1' }, reconnect: false });
    await expect(badTarget.connect()).rejects.toMatchObject({ code: 'EAUTH' });
    const none = session(t.port, { reconnect: false });
    await expect(none.connect()).rejects.toMatchObject({ code: 'EAUTH' });
  });

  it('reports a refused login with its status class and detail', async () => {
    const t = await setup();
    const s = session(t.port, { targetName: 'iqn.2026-11.org.sheepfold:nope', reconnect: false });
    const err = (await s.connect().catch((e: unknown) => e)) as IscsiTransportError;
    expect(err.code).toBe('ELOGIN');
    expect(err.statusClass).toBe(I.ISCSI_STATUS_CLS_INITIATOR_ERR);
    expect(err.statusDetail).toBe(I.ISCSI_LOGIN_STATUS_TGT_NOT_FOUND);
  });

  it('negotiates CRC32C header and data digests', async () => {
    const t = await setup();
    const s = session(t.port, { headerDigest: true, dataDigest: true });
    await s.connect();
    expect(s.negotiated?.headerDigest).toBe(true);
    expect(s.negotiated?.dataDigest).toBe(true);
    await roundTrip(s, t, 100, 300 * 1024);
  });

  it('uses R2T and several Data-In/Data-Out PDUs with small segments, InitialR2T=Yes, ImmediateData=No', async () => {
    const t = await setup({
      server: { preferences: { maxRecvDataSegmentLength: 4096, initialR2T: true, immediateData: false, maxBurstLength: 16384, firstBurstLength: 8192, maxOutstandingR2T: 1, headerDigest: true, dataDigest: true } },
    });
    const s = session(t.port, { maxRecvDataSegmentLength: 2048, dataDigest: true });
    await s.connect();
    const n = s.negotiated;
    expect([n?.initialR2T, n?.immediateData, n?.targetMaxRecvDataSegmentLength, n?.maxBurstLength]).toEqual([true, false, 4096, 16384]);
    await roundTrip(s, t, 0, 100 * 1024);
  });

  it('sends immediate and unsolicited data (InitialR2T=No)', async () => {
    const t = await setup({ server: { preferences: { maxRecvDataSegmentLength: 8192, initialR2T: false, immediateData: true, firstBurstLength: 32768 } } });
    const s = session(t.port);
    await s.connect();
    expect([s.negotiated?.initialR2T, s.negotiated?.immediateData, s.negotiated?.firstBurstLength]).toEqual([false, true, 32768]);
    await roundTrip(s, t, 0, 4096);
    await roundTrip(s, t, 64, 24 * 1024);
    await roundTrip(s, t, 256, 200 * 1024);
  });

  it('discovers targets with SendTargets', async () => {
    const t = await setup();
    const found = await discoverTargets({ host: '127.0.0.1', port: t.port });
    expect(found).toEqual([{ name: IQN, addresses: [{ host: '127.0.0.1', port: t.port, portalGroupTag: 1 }] }]);
  });
});

describe('IscsiSession commands', () => {
  it('keeps many commands outstanding and respects a small CmdSN window', async () => {
    const t = await setup({ server: { queueDepth: 2 } });
    const s = session(t.port);
    await s.connect();
    const blocks = Array.from({ length: 40 }, (_, i) => ({ lba: i * 8, data: rand(4096) }));
    await Promise.all(blocks.map((b) => s.write(b.lba, b.data)));
    const back = await Promise.all(blocks.map((b) => s.read(b.lba, 8)));
    back.forEach((d, i) => expect(d.equals((blocks[i] as { data: Buffer }).data)).toBe(true));
  });

  it('decodes CHECK CONDITION sense into typed errors', async () => {
    const t = await setup();
    const s = session(t.port);
    await s.connect();
    const beyond = await s.read(BigInt(SIZE / 512), 1).catch((e: unknown) => e);
    expect(beyond).toBeInstanceOf(ScsiStatusError);
    expect((beyond as ScsiStatusError).kind).toBe('lba-out-of-range');
    const bad = await s.command(Buffer.from([0xfd, 0, 0, 0, 0, 0])).catch((e: unknown) => e);
    expect((bad as ScsiStatusError).kind).toBe('invalid-opcode');
    const r = await s.execute(read16Cdb(BigInt(SIZE / 512) + 5n, 1), { dataInLength: 512 });
    expect(r.status).toBe(C.SAM_STAT_CHECK_CONDITION);
    expect(r.sense?.length).toBeGreaterThan(0);
  });

  it('answers SCSI helpers: inquiry, VPD identity, TUR, REQUEST SENSE, UNMAP, PR', async () => {
    const t = await setup();
    const s = session(t.port);
    await s.connect();
    const inq = await s.inquiry();
    expect(inq.peripheralDeviceType).toBe(0);
    const id = await s.deviceIdentification();
    expect(id.naaId).toBe(t.device.identity.naaId);
    expect(await s.unitSerialNumber()).toBe(t.device.identity.serial);
    await s.testUnitReady();
    expect((await s.requestSense())?.key ?? 0).toBe(0);
    await s.write(0, rand(8192));
    await s.unmap([{ lba: 0, blocks: 16 }]);
    expect((await s.read(0, 16)).equals(Buffer.alloc(8192))).toBe(true);
    await s.persistentReserveOut(C.PROUT_REGISTER, 0, { reservationKey: 0n, serviceActionReservationKey: 0x1234n });
    await s.persistentReserveOut(C.PROUT_RESERVE, C.PR_TYPE_WRITE_EXCLUSIVE, { reservationKey: 0x1234n, serviceActionReservationKey: 0n });
    expect((await s.readKeys()).keys).toEqual([0x1234n]);
    expect((await s.readReservation()).reservation).toEqual({ key: 0x1234n, scope: 0, type: C.PR_TYPE_WRITE_EXCLUSIVE });
    await s.persistentReserveOut(C.PROUT_CLEAR, 0, { reservationKey: 0x1234n, serviceActionReservationKey: 0n });
  });

  it('pings with NOP-Out and answers the target NOP-In pings', async () => {
    const t = await setup({ server: { nopInIntervalMs: 100, nopInTimeoutMs: 5000 } });
    const s = session(t.port);
    let downs = 0;
    s.on('down', () => downs++);
    await s.connect();
    expect((await s.ping(Buffer.from('hello'))).toString()).toBe('hello');
    await waitFor(() => s.nopInsAnswered >= 3, 'target pings answered');
    expect(downs).toBe(0);
    expect(s.state).toBe('up');
    await s.testUnitReady();
  });

  it('aborts an outstanding command with ABORT TASK and resets the LU', async () => {
    const device = new GatedDevice({ name: 'gated', size: SIZE });
    const t = await setup({ device });
    const s = session(t.port);
    await s.connect();
    device.holdReads();
    const pending = s.read(0, 8);
    await waitFor(() => s.outstandingItts().length === 1, 'command outstanding');
    const itt = s.outstandingItts()[0] as number;
    const aborted = s.abortTask(itt);
    device.releaseReads();
    await aborted;
    await expect(pending).rejects.toMatchObject({ code: 'EABORTED' });
    device.holdReads();
    const p2 = s.read(8, 8);
    await waitFor(() => s.outstandingItts().length === 1, 'command outstanding');
    const reset = s.lunReset();
    device.releaseReads();
    await reset;
    await expect(p2).rejects.toMatchObject({ code: 'EABORTED' });
    await s.testUnitReady(); // the reset's UNIT ATTENTION is absorbed by the helper's retry
  });

  it('times out a stuck command, drops the connection when the abort hangs too, and reconnects', async () => {
    const device = new GatedDevice({ name: 'gated', size: SIZE });
    const t = await setup({ device });
    const s = session(t.port, { tmfTimeoutMs: 300, reconnectDelayMs: 50 });
    await s.connect();
    let ups = 0;
    s.on('up', () => ups++);
    device.holdReads();
    await expect(s.read(0, 8, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    await waitFor(() => ups > 0, 'reconnect after the failed abort');
    device.releaseReads();
    await roundTrip(s, t, 0, 4096);
  });

  it('reconnects with the same ISID after the TCP connection is reset and the target reinstates the session', async () => {
    const t = await setup();
    const proxy = new FaultProxy({ targetHost: '127.0.0.1', targetPort: t.port });
    const port = await proxy.start();
    cleanups.push(() => proxy.stop());
    const s = session(port, { reconnectDelayMs: 50 });
    await s.connect();
    const tsih = s.tsih;
    const isid = s.isid;
    await roundTrip(s, t, 0, 4096);
    const downs: string[] = [];
    s.on('down', (e) => downs.push(e.code));
    proxy.reset();
    await waitFor(() => downs.length > 0, 'connection loss');
    await roundTrip(s, t, 8, 4096); // waits for the reconnect
    expect(s.state).toBe('up');
    expect(s.isid).toBe(isid);
    expect(s.tsih).not.toBe(tsih);
    expect(downs).toEqual(['ECONNRESET']);
  });

  it('logs out and can log in again; closed sessions refuse commands', async () => {
    const t = await setup();
    const s = session(t.port);
    await s.connect();
    await s.logout();
    expect(s.state).toBe('idle');
    await s.connect();
    await roundTrip(s, t, 0, 4096);
    await s.close();
    await expect(s.testUnitReady()).rejects.toMatchObject({ code: 'ESHUTDOWN' });
  });

  it('fails commands at once when down and queueWhileDown is off', async () => {
    const t = await setup();
    const s = session(t.port, { reconnect: false, queueWhileDown: false });
    await s.connect();
    s.dropConnection();
    await waitFor(() => s.state === 'down', 'down');
    await expect(s.testUnitReady()).rejects.toBeInstanceOf(IscsiTransportError);
  });
});
