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
