// The iSCSI server in process, over real loopback sockets, driven by a tiny test initiator: login and
// negotiation answers, discovery with SendTargets and configured portals, discovery CHAP, session
// reinstatement, NOP-In keep-alive and dead-initiator detection, task management answers and Reject.
import { describe, it, expect, afterEach } from 'vitest';
import { MemoryDevice } from '../../../src/block/memory.js';
import { IscsiServer } from '../../../src/iscsi/server.js';
import type { IscsiServerOptions } from '../../../src/iscsi/config.js';
import { chapResponse } from '../../../src/iscsi/chap.js';
import { encodeText } from '../../../src/proto/iscsi/text.js';
import { encodeBhs } from '../../../src/proto/iscsi/pdu.js';
import { TestInitiator, loginRequest, pairsOf } from './client.js';
import { ManualClock } from '../../../src/util/clock.js';
import { settle, state } from '../../helpers/manual-time.js';

const T1 = 'iqn.2026-11.org.sheepfold:one';
const T2 = 'iqn.2026-11.org.sheepfold:two';
const INI = 'iqn.2026-11.test:ini';

const servers: IscsiServer[] = [];
const conns: TestInitiator[] = [];
afterEach(async () => {
  for (const c of conns.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.stop();
});

async function serve(extra: Partial<IscsiServerOptions> = {}): Promise<number> {
  const dev = new MemoryDevice({ name: 'one', size: 1024 * 1024 });
  const s = new IscsiServer({
    host: '127.0.0.1',
    port: 0,
    targets: [
      { name: T1, luns: [{ lun: 0, device: dev }], portals: ['10.0.0.1:3260', '10.0.0.2:3260'] },
      { name: T2, luns: [{ lun: 0, device: new MemoryDevice({ name: 'two', size: 1024 * 1024 }) }], initiators: ['iqn.other'] },
    ],
    ...extra,
  });
  servers.push(s);
  const addr = await s.start();
  return Number(addr.slice(addr.lastIndexOf(':') + 1));
}
async function connect(port: number): Promise<TestInitiator> {
  const c = await TestInitiator.connect(port);
  conns.push(c);
  return c;
}
async function login(port: number, isid = 0x400000000001): Promise<TestInitiator> {
  const c = await connect(port);
  c.send(loginRequest([['InitiatorName', INI], ['TargetName', T1]], { isid }));
  const r = await c.next('login-rsp');
  expect(r.statusClass).toBe(0);
  return c;
}

describe('IscsiServer', () => {
  it('answers operational keys with negotiated values and declares its MaxRecvDataSegmentLength', async () => {
    const port = await serve();
    const c = await connect(port);
    c.send(
      loginRequest([
        ['InitiatorName', INI],
        ['TargetName', T1],
        ['MaxBurstLength', '16776192'],
        ['FirstBurstLength', '262144'],
        ['InitialR2T', 'Yes'],
        ['ImmediateData', 'Yes'],
        ['ErrorRecoveryLevel', '1'],
        ['X-vendor.key', 'x'],
      ]),
    );
    const r = await c.next('login-rsp');
    expect(r).toMatchObject({ statusClass: 0, transit: true, nsg: 3 });
    expect(r.tsih).not.toBe(0);
    expect(pairsOf(r)).toMatchObject({
      MaxBurstLength: '1048576',
      FirstBurstLength: '262144',
      InitialR2T: 'Yes',
      ImmediateData: 'Yes',
      ErrorRecoveryLevel: '0',
      'X-vendor.key': 'NotUnderstood',
      MaxRecvDataSegmentLength: '262144',
      TargetPortalGroupTag: '1',
    });
    expect(r.maxCmdSN - r.expCmdSN).toBe(127);
  });

  it('refuses an unknown target (0203), a missing InitiatorName (0207) and an initiator outside the ACL (0202)', async () => {
    const port = await serve();
    const cases: Array<[Array<[string, string]>, number]> = [
      [[['InitiatorName', INI], ['TargetName', 'iqn.nope']], 0x03],
      [[['TargetName', T1]], 0x07],
      [[['InitiatorName', INI], ['TargetName', T2]], 0x02],
    ];
    for (const [pairs, detail] of cases) {
      const c = await connect(port);
      c.send(loginRequest(pairs));
      const r = await c.next('login-rsp');
      expect([r.statusClass, r.statusDetail]).toEqual([2, detail]);
      await c.waitClosed();
    }
  });

  it('discovery SendTargets=All lists the admitted targets with every configured portal', async () => {
    const port = await serve();
    const c = await connect(port);
    c.send(loginRequest([['InitiatorName', INI], ['SessionType', 'Discovery']]));
    const r = await c.next('login-rsp');
    expect(r.statusClass).toBe(0);
    c.send({ kind: 'text-req', immediate: true, final: true, cont: false, lun: 0n, itt: 2, ttt: 0xffffffff, cmdSN: r.expCmdSN, expStatSN: r.statSN + 1, data: encodeText([['SendTargets', 'All']]) });
    const t = await c.next('text-rsp');
    const text = t.data.toString('latin1').split('\0').filter((x) => x !== '');
    expect(text).toEqual([`TargetName=${T1}`, 'TargetAddress=10.0.0.1:3260,1', 'TargetAddress=10.0.0.2:3260,1']);
  });

  it('discovery requires CHAP when discovery accounts are configured', async () => {
    const port = await serve({ discoveryChap: [{ user: 'disc', secret: 'discsecret12' }] });
    const bad = await connect(port);
    bad.send(loginRequest([['InitiatorName', INI], ['SessionType', 'Discovery'], ['AuthMethod', 'None']], { csg: 0, nsg: 1 }));
    const r = await bad.next('login-rsp');
    expect([r.statusClass, r.statusDetail]).toEqual([2, 1]);

    const c = await connect(port);
    c.send(loginRequest([['InitiatorName', INI], ['SessionType', 'Discovery'], ['AuthMethod', 'CHAP,None']], { csg: 0, nsg: 1, transit: false }));
    expect(pairsOf(await c.next('login-rsp'))).toMatchObject({ AuthMethod: 'CHAP' });
    c.send(loginRequest([['CHAP_A', '5']], { csg: 0, nsg: 1, transit: false }));
    const ch = pairsOf(await c.next('login-rsp'));
    const resp = chapResponse(Number(ch.CHAP_I), 'discsecret12', Buffer.from((ch.CHAP_C ?? '').slice(2), 'hex'));
    c.send(loginRequest([['CHAP_N', 'disc'], ['CHAP_R', `0x${resp.toString('hex')}`]], { csg: 0, nsg: 1 }));
    const ok = await c.next('login-rsp');
    expect(ok).toMatchObject({ statusClass: 0, transit: true, nsg: 1 });
  });

  it('reinstates a session: a new login with the same initiator name and ISID closes the old connection', async () => {
    const port = await serve();
    const first = await login(port, 0x400000000009);
    const second = await login(port, 0x400000000009);
    await first.waitClosed();
    expect(second.closed).toBe(false);
  });

  it('pings an idle initiator with NOP-In and drops one that never answers (on the server clock)', async () => {
    const clock = new ManualClock();
    const port = await serve({ nopInIntervalMs: 200, nopInTimeoutMs: 400, clock });
    const alive = await login(port, 0x400000000011);
    const first = alive.next('nop-in', (p) => p.itt === 0xffffffff);
    await clock.advance(100);
    expect(await state(first)).toBe('pending');
    // Idle for nopInIntervalMs: pinged.
    expect(await settle(clock, first, 10_000, 10)).toBeGreaterThanOrEqual(100);
    const ping = await first;
    expect(ping.ttt).not.toBe(0xffffffff);
    alive.send({ kind: 'nop-out', immediate: true, lun: 0n, itt: 0xffffffff, ttt: ping.ttt, cmdSN: 1, expStatSN: ping.statSN, data: Buffer.alloc(0) });
    const second = alive.next('nop-in', (p) => p.itt === 0xffffffff);
    await settle(clock, second, 10_000, 10);
    const again = await second;
    expect(again.ttt).not.toBe(ping.ttt);
    expect(alive.closed).toBe(false);
    // One that never answers is dropped nopInTimeoutMs after its ping.
    const dead = await login(port, 0x400000000012);
    const deadPing = dead.next('nop-in', (p) => p.itt === 0xffffffff);
    await settle(clock, deadPing, 10_000, 10);
    await deadPing;
    const closed = dead.waitClosed();
    await clock.advance(300);
    expect(await state(closed)).toBe('pending');
    const rest = await settle(clock, closed, 10_000, 10);
    expect(rest).toBeLessThanOrEqual(200);
  });

  it('answers NOP-Out pings, task management (unsupported → 5, no task → 1) and rejects SNACK', async () => {
    const port = await serve();
    const c = await login(port);
    c.send({ kind: 'nop-out', immediate: true, lun: 0n, itt: 7, ttt: 0xffffffff, cmdSN: 1, expStatSN: 0, data: Buffer.from('ping') });
    const n = await c.next('nop-in', (p) => p.itt === 7);
    expect(n.data.toString()).toBe('ping');
    const tmf = (func: number, itt: number): void =>
      c.send({ kind: 'tmf-req', immediate: true, func, lun: 0n, itt, referencedTaskTag: 999, cmdSN: 1, expStatSN: 0, refCmdSN: 1, expDataSN: 0 });
    tmf(8, 20);
    expect((await c.next('tmf-rsp', (p) => p.itt === 20)).response).toBe(5);
    tmf(1, 21);
    expect((await c.next('tmf-rsp', (p) => p.itt === 21)).response).toBe(1);
    tmf(5, 22);
    expect((await c.next('tmf-rsp', (p) => p.itt === 22)).response).toBe(0);
    c.send({ kind: 'snack', type: 0, lun: 0n, itt: 1, ttt: 0, expStatSN: 0, begRun: 0, runLength: 0 });
    const rej = await c.next('reject');
    expect(rej.reason).toBe(4);
    expect(rej.data.length).toBe(48);
    expect(rej.data[0]).toBe(0x10);
  });

  it('silently drops a command outside the CmdSN window and serves the next one in it', async () => {
    const port = await serve();
    const c = await login(port);
    const tur = (itt: number, cmdSN: number): void =>
      c.send({ kind: 'scsi-cmd', immediate: false, final: true, read: false, write: false, attr: 1, lun: 0n, itt, expectedDataTransferLength: 0, cmdSN, expStatSN: 0, cdb: Buffer.alloc(16), ahs: Buffer.alloc(0), data: Buffer.alloc(0) });
    tur(30, 1 + 500);
    tur(31, 1);
    const r = await c.next('scsi-rsp');
    expect(r.itt).toBe(31);
    expect(r.expCmdSN).toBe(2);
  });

  it('carries header and data digests (CRC32C) once negotiated, and drops a connection on a bad header digest', async () => {
    const port = await serve();
    const c = await connect(port);
    c.send(loginRequest([['InitiatorName', INI], ['TargetName', T1], ['HeaderDigest', 'CRC32C'], ['DataDigest', 'CRC32C'], ['ImmediateData', 'Yes'], ['InitialR2T', 'No']]));
    const r = await c.next('login-rsp');
    expect(pairsOf(r)).toMatchObject({ HeaderDigest: 'CRC32C', DataDigest: 'CRC32C' });
    c.useDigests(true, true);
    const data = Buffer.alloc(1024, 0x5a);
    const cdb = (op: number): Buffer => Buffer.from([op, 0, 0, 0, 0, 4, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    c.send({ kind: 'scsi-cmd', immediate: false, final: true, read: false, write: true, attr: 1, lun: 0n, itt: 40, expectedDataTransferLength: 1024, cmdSN: 1, expStatSN: 0, cdb: cdb(0x2a), ahs: Buffer.alloc(0), data });
    expect((await c.next('scsi-rsp', (p) => p.itt === 40)).status).toBe(0);
    c.send({ kind: 'scsi-cmd', immediate: false, final: true, read: true, write: false, attr: 1, lun: 0n, itt: 41, expectedDataTransferLength: 1024, cmdSN: 2, expStatSN: 0, cdb: cdb(0x28), ahs: Buffer.alloc(0), data: Buffer.alloc(0) });
    const din = await c.next('data-in', (p) => p.itt === 41);
    expect(din.data).toEqual(data);
    expect(din.flags & 0x01).toBe(0x01);
    const bad = Buffer.concat([encodeBhs({ kind: 'nop-out', immediate: true, lun: 0n, itt: 42, ttt: 0xffffffff, cmdSN: 3, expStatSN: 0, data: Buffer.alloc(0) }), Buffer.alloc(4)]);
    c.sendRaw(bad);
    await c.waitClosed();
  });
});
