// A scriptable fake iSCSI target built from the project's PDU codecs, for initiator behaviour the real targets
// cannot be made to show on demand: a CmdSN window of one, UNIT ATTENTION, Async Messages, Reject, split
// Data-In with residuals, continued Text responses, malformed PDUs. Login accepts anything (no auth, no
// digests, MaxRecvDataSegmentLength 8192); full-feature PDUs go to the test's handler.
import net from 'node:net';
import * as I from '../../../src/proto/iscsi/constants.js';
import { PduFramer, frameBuffers } from '../../../src/proto/iscsi/framer.js';
import { decodePdu, encodeBhs, type InitiatorPdu, type Pdu, type TargetPdu } from '../../../src/proto/iscsi/pdu.js';
import { encodeText, parseText } from '../../../src/proto/iscsi/text.js';

export class FakeConn {
  statSN = 1;
  expCmdSN = 1;
  /** Window size: MaxCmdSN = ExpCmdSN + window - 1. */
  window = 32;
  /** The highest MaxCmdSN told to the initiator so far. */
  advertisedMax = 0;
  logins = 0;
  constructor(readonly sock: net.Socket) {}
  seq(advance = true): { statSN: number; expCmdSN: number; maxCmdSN: number } {
    const s = this.statSN;
    if (advance) this.statSN++;
    const maxCmdSN = (this.expCmdSN + this.window - 1) >>> 0;
    this.advertisedMax = Math.max(this.advertisedMax, maxCmdSN);
    return { statSN: s, expCmdSN: this.expCmdSN, maxCmdSN };
  }
  send(pdu: TargetPdu, data?: Buffer): void {
    for (const b of frameBuffers(encodeBhs(pdu), data, { headerDigest: false, dataDigest: false })) this.sock.write(b);
  }
}

export type Handler = (c: FakeConn, p: InitiatorPdu) => void;

export class FakeTarget {
  port = 0;
  readonly conns: FakeConn[] = [];
  logins = 0;
  /** CmdSN window given to new connections. */
  window = 32;
  /** Answer every login with a redirection to this TargetAddress (detail 1 temporary, 2 permanent). */
  redirect: { address: string; detail: number } | undefined;
  private server: net.Server | undefined;
  constructor(public handler: Handler) {}

  async start(): Promise<number> {
    const srv = net.createServer((sock) => this.accept(sock));
    this.server = srv;
    await new Promise<void>((r) => srv.listen({ host: '127.0.0.1', port: 0 }, r));
    const a = srv.address();
    this.port = typeof a === 'object' && a ? a.port : 0;
    return this.port;
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.sock.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private accept(sock: net.Socket): void {
    const c = new FakeConn(sock);
    c.window = this.window;
    this.conns.push(c);
    const framer = new PduFramer({ maxDataSegmentLength: 1 << 20 });
    sock.on('error', () => undefined);
    sock.on('data', (chunk: Buffer) => {
      framer.push(chunk);
      for (let raw = framer.next(); raw; raw = framer.next()) {
        const p = decodePdu(raw.bhs, raw.ahs, Buffer.from(raw.data)) as Pdu;
        if (p.kind === 'login-req') this.login(c, p);
        else if (p.kind === 'nop-out' && p.ttt !== I.RESERVED_TAG) continue;
        else if (p.kind === 'logout-req') {
          c.send({ kind: 'logout-rsp', response: 0, itt: p.itt, ...c.seq(), time2Wait: 0, time2Retain: 0 });
          sock.end();
        } else this.handler(c, p as InitiatorPdu);
      }
    });
  }

  private login(c: FakeConn, p: Extract<Pdu, { kind: 'login-req' }>): void {
    if (this.redirect) {
      const data = encodeText([['TargetAddress', this.redirect.address]]);
      c.send(
        {
          kind: 'login-rsp',
          transit: false,
          cont: false,
          csg: p.csg,
          nsg: 0,
          versionMax: 0,
          versionActive: 0,
          isid: p.isid,
          tsih: 0,
          itt: p.itt,
          ...c.seq(),
          statusClass: I.ISCSI_STATUS_CLS_REDIRECT,
          statusDetail: this.redirect.detail,
          data,
        },
        data,
      );
      c.sock.end();
      return;
    }
    if (c.logins === 0) {
      c.expCmdSN = p.cmdSN;
      this.logins++;
    }
    c.logins++;
    const offers = parseText(p.data);
    const out: Array<[string, string]> = [];
    for (const [k, v] of offers) {
      if (['InitiatorName', 'SessionType', 'TargetName', 'MaxRecvDataSegmentLength'].includes(k)) continue;
      if (k === 'AuthMethod') out.push([k, 'None']);
      else if (k === 'HeaderDigest' || k === 'DataDigest') out.push([k, 'None']);
      else out.push([k, v]);
    }
    if (p.csg === I.ISCSI_OP_PARMS_NEGOTIATION_STAGE) out.push(['MaxRecvDataSegmentLength', '8192']);
    const data = encodeText(out);
    c.send(
      {
        kind: 'login-rsp',
        transit: p.transit,
        cont: false,
        csg: p.csg,
        nsg: p.nsg,
        versionMax: 0,
        versionActive: 0,
        isid: p.isid,
        tsih: 7,
        itt: p.itt,
        ...c.seq(),
        statusClass: 0,
        statusDetail: 0,
        data,
      },
      data,
    );
  }
}

/** A GOOD SCSI Response for a command (optionally with residual flags). */
export function goodResponse(c: FakeConn, itt: number, flags = 0, residual = 0): TargetPdu {
  return {
    kind: 'scsi-rsp',
    flags,
    response: 0,
    status: 0,
    itt,
    snackTag: 0,
    ...c.seq(),
    expDataSN: 0,
    bidiResidualCount: 0,
    residualCount: residual,
    data: Buffer.alloc(0),
  };
}

/** State shared by fake ALUA ports of one LU: the data, and each target port group's ALUA state code. */
export interface FakeLu {
  data: Buffer;
  naa: Buffer;
  serial: string;
  /** TPG id → ALUA state code (0 AO, 1 ANO, 2 standby, 3 unavailable, 0xf transitioning). */
  tpgStates: Map<number, number>;
  /** Ports that must report UNIT ATTENTION 2A/06 on their next command. */
  pendingUa: Set<FakeConn>;
  conns: Set<FakeConn>;
}

/** Change ALUA states and raise ASYMMETRIC ACCESS STATE CHANGED on every connection of the LU. */
export function setAlua(lu: FakeLu, states: Array<[number, number]>): void {
  for (const [tpg, st] of states) lu.tpgStates.set(tpg, st);
  for (const c of lu.conns) lu.pendingUa.add(c);
}

/**
 * A disk behind one ALUA target port (relative port `port` in target port group `tpg`): TEST UNIT READY, INQUIRY
 * (standard, VPD 0x80/0x83), READ CAPACITY (16), REPORT TARGET PORT GROUPS, READ/WRITE (16) with immediate data,
 * SYNCHRONIZE CACHE; NOT READY 04/0B|0C|0A for media access on standby/unavailable/transitioning ports.
 */
export function fakeAluaDisk(lu: FakeLu, port: number, tpg: number): Handler {
  return (c, p) => {
    if (p.kind !== 'scsi-cmd') return;
    lu.conns.add(c);
    c.expCmdSN++;
    const reply = (status: number, data?: Buffer, senseKey?: number, ascq?: number): void => {
      if (status === 2) {
        const s = Buffer.alloc(20);
        s.writeUInt16BE(18, 0);
        s[2] = 0x70;
        s[4] = senseKey ?? 0;
        s[9] = 10;
        s[14] = (ascq ?? 0) >> 8;
        s[15] = (ascq ?? 0) & 0xff;
        c.send({ kind: 'scsi-rsp', flags: 0, response: 0, status, itt: p.itt, snackTag: 0, ...c.seq(), expDataSN: 0, bidiResidualCount: 0, residualCount: 0, data: s }, s);
        return;
      }
      if (data && data.length > 0) {
        const d = data.subarray(0, Math.min(data.length, p.expectedDataTransferLength));
        c.send({ kind: 'data-in', flags: 0x80 | 0x01, status: 0, lun: 0n, itt: p.itt, ttt: I.RESERVED_TAG, ...c.seq(), dataSN: 0, bufferOffset: 0, residualCount: 0, data: d }, d);
      } else c.send(goodResponse(c, p.itt));
    };
    if (lu.pendingUa.delete(c)) return reply(2, undefined, 6, 0x2a06);
    const cdb = p.cdb;
    const op = cdb[0] ?? 0;
    const state = lu.tpgStates.get(tpg) ?? 0;
    const media = op === 0x88 || op === 0x8a || op === 0x91;
    if (media && state >= 2) return reply(2, undefined, 2, state === 2 ? 0x040b : state === 3 ? 0x040c : 0x040a);
    switch (op) {
      case 0x00:
        return reply(0);
      case 0x12: {
        if (((cdb[1] ?? 0) & 1) === 0) {
          const b = Buffer.alloc(36, 0x20);
          b[0] = 0;
          b[2] = 6;
          b[3] = 2;
          b[4] = 31;
          b[5] = 0x10; // TPGS = implicit ALUA
          b[7] = 2;
          return reply(0, b);
        }
        if (cdb[2] === 0x80) return reply(0, Buffer.concat([Buffer.from([0, 0x80, 0, lu.serial.length]), Buffer.from(lu.serial)]));
        if (cdb[2] === 0x83) {
          const naa = Buffer.concat([Buffer.from([1, 3, 0, lu.naa.length]), lu.naa]);
          const rel = Buffer.from([0x51, 0x94, 0, 4, 0, 0, port >> 8, port & 0xff]);
          const grp = Buffer.from([0x51, 0x95, 0, 4, 0, 0, tpg >> 8, tpg & 0xff]);
          const body = Buffer.concat([naa, rel, grp]);
          return reply(0, Buffer.concat([Buffer.from([0, 0x83, body.length >> 8, body.length & 0xff]), body]));
        }
        return reply(2, undefined, 5, 0x2400);
      }
      case 0x9e: {
        const b = Buffer.alloc(32);
        b.writeBigUInt64BE(BigInt(lu.data.length / 512 - 1), 0);
        b.writeUInt32BE(512, 8);
        return reply(0, b);
      }
      case 0xa3: {
        const groups = [...lu.tpgStates.entries()].map(([id, st]) => {
          const d = Buffer.alloc(12);
          d[0] = st;
          d[1] = 0x8f;
          d.writeUInt16BE(id, 2);
          d[7] = 1;
          d.writeUInt16BE(id, 10); // relative port id == tpg id in this fake
          return d;
        });
        const body = Buffer.concat(groups);
        const h = Buffer.alloc(8);
        h.writeUInt32BE(body.length + 4, 0);
        h[4] = 0x10;
        return reply(0, Buffer.concat([h, body]));
      }
      case 0x88: {
        const lba = Number(cdb.readBigUInt64BE(2));
        const n = cdb.readUInt32BE(10);
        return reply(0, Buffer.from(lu.data.subarray(lba * 512, (lba + n) * 512)));
      }
      case 0x8a: {
        const lba = Number(cdb.readBigUInt64BE(2));
        p.data.copy(lu.data, lba * 512);
        return reply(0);
      }
      case 0x91:
        return reply(0);
      default:
        return reply(2, undefined, 5, 0x2000);
    }
  };
}
