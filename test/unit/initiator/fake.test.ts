import { afterEach, describe, expect, it } from 'vitest';
import { IscsiSession } from '../../../src/initiator/scsi.js';
import { IscsiTransportError, ScsiStatusError } from '../../../src/initiator/errors.js';
import * as I from '../../../src/proto/iscsi/constants.js';
import { encodeText } from '../../../src/proto/iscsi/text.js';
import { encodeSense } from '../../../src/proto/scsi/sense.js';
import { MultipathDevice } from '../../../src/initiator/multipath.js';
import { FakeTarget, fakeAluaDisk, goodResponse, setAlua, type FakeConn } from './fake-target.js';
import { waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fake(handler: ConstructorParameters<typeof FakeTarget>[0]): Promise<FakeTarget> {
  const t = new FakeTarget(handler);
  await t.start();
  cleanups.push(() => t.stop());
  return t;
}
function session(t: FakeTarget, extra: Partial<ConstructorParameters<typeof IscsiSession>[0]> = {}): IscsiSession {
  const s = new IscsiSession({ host: '127.0.0.1', port: t.port, targetName: 'iqn.fake:t', nopIntervalMs: 0, reconnectDelayMs: 20, ...extra });
  cleanups.push(() => s.close());
  return s;
}
/** Sense in a SCSI Response data segment: SenseLength + sense bytes. */
function senseData(key: number, ascq: number): Buffer {
  const s = encodeSense({ key, ascq });
  const b = Buffer.alloc(2 + s.length);
  b.writeUInt16BE(s.length, 0);
  s.copy(b, 2);
  return b;
}
function checkCondition(c: FakeConn, itt: number, key: number, ascq: number): void {
  const data = senseData(key, ascq);
  c.send({ kind: 'scsi-rsp', flags: 0, response: 0, status: 2, itt, snackTag: 0, ...c.seq(), expDataSN: 0, bidiResidualCount: 0, residualCount: 0, data }, data);
}

describe('IscsiSession against a scripted fake target', () => {
  it('never sends a CmdSN beyond MaxCmdSN (window of one)', async () => {
    const violations: string[] = [];
    let maxSeenOutstanding = 0;
    let outstanding = 0;
    const t = await fake((c, p) => {
      if (p.kind !== 'scsi-cmd') return;
      if (p.cmdSN !== c.expCmdSN || p.cmdSN > c.advertisedMax) violations.push(`cmdSN ${p.cmdSN} exp ${c.expCmdSN} max ${c.advertisedMax}`);
      outstanding++;
      maxSeenOutstanding = Math.max(maxSeenOutstanding, outstanding);
      setTimeout(() => {
        outstanding--;
        c.expCmdSN++;
        c.send(goodResponse(c, p.itt));
      }, 2);
    });
    t.window = 1;
    const s = session(t);
    await s.connect();
    await Promise.all(Array.from({ length: 20 }, () => s.testUnitReady()));
    expect(violations).toEqual([]);
    expect(maxSeenOutstanding).toBe(1);
  });

  it('retries a command after UNIT ATTENTION and reports it', async () => {
    let n = 0;
    const t = await fake((c, p) => {
      if (p.kind !== 'scsi-cmd') return;
      c.expCmdSN++;
      if (n++ === 0) checkCondition(c, p.itt, 6, 0x2900);
      else c.send(goodResponse(c, p.itt));
    });
    const s = session(t);
    const uas: number[] = [];
    s.on('unit-attention', (e) => uas.push(e.sense?.ascq ?? -1));
    await s.testUnitReady();
    expect(uas).toEqual([0x2900]);
    expect(n).toBe(2);
  });

  it('decodes sense keys into typed errors', async () => {
    const answers: Array<[number, number, string]> = [
      [3, 0x1100, 'medium-error'],
      [2, 0x040b, 'alua-standby'],
      [7, 0x2700, 'data-protect'],
      [0xb, 0x4b00, 'aborted-command'],
    ];
    let i = 0;
    const t = await fake((c, p) => {
      if (p.kind !== 'scsi-cmd') return;
      c.expCmdSN++;
      const a = answers[i++] as [number, number, string];
      checkCondition(c, p.itt, a[0], a[1]);
    });
    const s = session(t);
    for (const [, , kind] of answers) {
      const e = (await s.testUnitReady().catch((x: unknown) => x)) as ScsiStatusError;
      expect(e).toBeInstanceOf(ScsiStatusError);
      expect(e.kind).toBe(kind);
    }
  });

  it('assembles split Data-In and applies the underflow residual from the SCSI Response', async () => {
    const t = await fake((c, p) => {
      if (p.kind !== 'scsi-cmd') return;
      c.expCmdSN++;
      const payload = Buffer.alloc(3000);
      for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
      for (let off = 0, sn = 0; off < payload.length; off += 1024, sn++) {
        const d = payload.subarray(off, off + 1024);
        c.send({ kind: 'data-in', flags: 0, status: 0, lun: 0n, itt: p.itt, ttt: I.RESERVED_TAG, ...c.seq(false), dataSN: sn, bufferOffset: off, residualCount: 0, data: d }, d);
      }
      c.send(goodResponse(c, p.itt, I.ISCSI_FLAG_CMD_UNDERFLOW, 4096 - 3000));
    });
    const s = session(t);
    const r = await s.execute(Buffer.from([0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]), { dataInLength: 4096 });
    expect(r.status).toBe(0);
    expect(r.underflow).toBe(true);
    expect(r.data.length).toBe(3000);
    expect(r.data[2999]).toBe(2999 & 0xff);
  });

  it('fails a rejected command with EPROTO', async () => {
    const t = await fake((c, p) => {
      if (p.kind !== 'scsi-cmd') return;
      c.expCmdSN++;
      const bhs = Buffer.alloc(48);
      bhs.writeUInt32BE(p.itt, 16);
      c.send({ kind: 'reject', reason: I.ISCSI_REASON_PROTOCOL_ERROR, ...c.seq(), dataSN: 0, data: bhs }, bhs);
    });
    const s = session(t);
    await expect(s.testUnitReady()).rejects.toMatchObject({ code: 'EPROTO' });
  });

  it('reassembles a continued Text response (SendTargets)', async () => {
    const all = encodeText(Array.from({ length: 300 }, (_, i) => [i % 2 ? 'TargetAddress' : 'TargetName', i % 2 ? `127.0.0.1:${3260 + i},1` : `iqn.fake:t${i}`] as [string, string]));
    let sent = 0;
    const t = await fake((c, p) => {
      if (p.kind !== 'text-req') return;
      c.expCmdSN++;
      const piece = all.subarray(sent, sent + 4000);
      sent += piece.length;
      const last = sent >= all.length;
      c.send({ kind: 'text-rsp', final: last, cont: !last, lun: 0n, itt: p.itt, ttt: last ? I.RESERVED_TAG : 0x55, ...c.seq(), data: piece }, piece);
    });
    const s = session(t);
    const found = await s.sendTargets();
    expect(found).toHaveLength(150);
    expect(found[149]).toEqual({ name: 'iqn.fake:t298', addresses: [{ host: '127.0.0.1', port: 3260 + 299, portalGroupTag: 1 }] });
  });

  it('reports Async SCSI events as unit attentions and logs out/in when the target asks', async () => {
    const t = await fake((c, p) => {
      if (p.kind === 'scsi-cmd') {
        c.expCmdSN++;
        c.send(goodResponse(c, p.itt));
      }
    });
    const s = session(t);
    await s.connect();
    const uas: number[] = [];
    s.on('unit-attention', (e) => uas.push(e.sense?.ascq ?? -1));
    const c = t.conns[0] as FakeConn;
    const ev = senseData(6, 0x2a06);
    c.send({ kind: 'async', lun: 0n, ...c.seq(false), asyncEvent: I.ISCSI_ASYNC_MSG_SCSI_EVENT, asyncVCode: 0, parameter1: 0, parameter2: 0, parameter3: 0, data: ev }, ev);
    await waitFor(() => uas.length === 1, 'unit attention event');
    expect(uas).toEqual([0x2a06]);
    c.send({ kind: 'async', lun: 0n, ...c.seq(false), asyncEvent: I.ISCSI_ASYNC_MSG_REQUEST_LOGOUT, asyncVCode: 0, parameter1: 0, parameter2: 0, parameter3: 0, data: Buffer.alloc(0) });
    await waitFor(() => t.logins === 2, 'second login');
    await s.testUnitReady();
  });

  it('drops the connection on a malformed PDU and reconnects', async () => {
    let first = true;
    const t = await fake((c, p) => {
      if (p.kind !== 'scsi-cmd') return;
      c.expCmdSN++;
      if (first) {
        first = false;
        const bad = Buffer.alloc(48);
        bad[0] = 0x3b; // no such opcode
        c.sock.write(bad);
      } else c.send(goodResponse(c, p.itt));
    });
    const s = session(t);
    await s.connect();
    const downs: IscsiTransportError[] = [];
    s.on('down', (e) => downs.push(e));
    await expect(s.testUnitReady()).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(downs[0]?.message).toMatch(/opcode/);
    await s.testUnitReady();
    expect(t.logins).toBe(2);
  });

  it('aborts a timed-out command before failing it; a response that beats the abort still completes it', async () => {
    const aborts: number[] = [];
    let mode: 'silent' | 'late' = 'silent';
    const t = await fake((c, p) => {
      if (p.kind === 'scsi-cmd') {
        c.expCmdSN++;
        if (mode === 'late') setTimeout(() => c.send(goodResponse(c, p.itt)), 150);
      } else if (p.kind === 'tmf-req') {
        aborts.push(p.referencedTaskTag);
        // answer the abort only after the (late) command response went out
        setTimeout(() => c.send({ kind: 'tmf-rsp', response: mode === 'late' ? I.ISCSI_TMF_RSP_NO_TASK : I.ISCSI_TMF_RSP_COMPLETE, itt: p.itt, ...c.seq() }), mode === 'late' ? 300 : 0);
      }
    });
    const s = session(t);
    await s.connect();
    const p1 = s.testUnitReady({ timeoutMs: 100 });
    const itt = s.outstandingItts()[0];
    await expect(p1).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(aborts).toEqual([itt]);
    mode = 'late';
    await s.testUnitReady({ timeoutMs: 100 }); // the GOOD status arrives while the abort is pending
    expect(aborts).toHaveLength(2);
    expect(s.state).toBe('up');
  });

  it('follows login redirections (temporary, then permanent)', async () => {
    const real = await fake((c, p) => {
      if (p.kind !== 'scsi-cmd') return;
      c.expCmdSN++;
      c.send(goodResponse(c, p.itt));
    });
    const front = await fake(() => undefined);
    front.redirect = { address: `127.0.0.1:${real.port},1`, detail: 1 };
    const s = session(front);
    await s.testUnitReady();
    expect(real.logins).toBe(1);
    expect(s.opts.port).toBe(front.port);
    s.dropConnection();
    front.redirect = { address: `127.0.0.1:${real.port},1`, detail: 2 };
    await s.testUnitReady();
    expect(real.logins).toBe(2);
    expect(s.opts.port).toBe(real.port);
  });
});

describe('MultipathDevice over fake ALUA ports', () => {
  it('follows REPORT TARGET PORT GROUPS states read from the wire, unit attentions and NOT READY sense', async () => {
    const lu = {
      data: Buffer.alloc(1024 * 1024),
      naa: Buffer.from('6001405abcdef0123456789abcdef012', 'hex'),
      serial: 'fake-serial',
      tpgStates: new Map([
        [1, 1],
        [2, 0],
      ]),
      pendingUa: new Set<FakeConn>(),
      conns: new Set<FakeConn>(),
    };
    const t1 = await fake(fakeAluaDisk(lu, 1, 1));
    const t2 = await fake(fakeAluaDisk(lu, 2, 2));
    const dev = new MultipathDevice({
      paths: [
        { name: 'tpg1', session: { host: '127.0.0.1', port: t1.port, targetName: 'iqn.fake:t' } },
        { name: 'tpg2', session: { host: '127.0.0.1', port: t2.port, targetName: 'iqn.fake:t' } },
      ],
      probeIntervalMs: 50,
      nopIntervalMs: 0,
      aluaRefreshMs: 0,
    });
    cleanups.push(() => dev.close());
    await dev.open();
    expect(dev.status().map((p) => [p.alua, p.targetPortGroup])).toEqual([
      ['active/non-optimized', 1],
      ['active/optimized', 2],
    ]);
    await dev.write(0, Buffer.alloc(4096, 1));
    expect(dev.status().map((p) => p.ios)).toEqual([0, 1]);
    // The target moves the optimized group: the next command on tpg2 gets UA 2A/06, the initiator re-reads
    // the groups on every path and moves I/O to tpg1.
    setAlua(lu, [
      [1, 0],
      [2, 2],
    ]);
    await dev.write(4096, Buffer.alloc(4096, 2));
    await waitFor(() => dev.status()[1]?.alua === 'standby', 'tpg2 standby');
    await dev.write(8192, Buffer.alloc(4096, 3));
    expect(dev.status()[0]?.alua).toBe('active/optimized');
    expect((await dev.read(0, 12288)).equals(Buffer.concat([Buffer.alloc(4096, 1), Buffer.alloc(4096, 2), Buffer.alloc(4096, 3)]))).toBe(true);
    expect(dev.status()[0]?.ios).toBeGreaterThanOrEqual(2);
    // Without a unit attention: tpg1 turns standby, a command there gets NOT READY 04/0B; tpg2 is AO again.
    lu.tpgStates.set(1, 2);
    lu.tpgStates.set(2, 0);
    await dev.write(0, Buffer.alloc(4096, 4));
    expect(dev.status().map((p) => p.alua)).toEqual(['standby', 'active/optimized']);
    expect((await dev.read(0, 4096)).equals(Buffer.alloc(4096, 4))).toBe(true);
    expect(dev.events.filter((e) => e.type === 'alua').map((e) => `${e.path}:${e.alua}`)).toEqual(
      expect.arrayContaining(['tpg1:active/optimized', 'tpg2:standby', 'tpg1:standby', 'tpg2:active/optimized']),
    );
  });
});
