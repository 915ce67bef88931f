// A tiny in-test iSCSI initiator for driving an in-process IscsiServer: raw PDUs out, decoded PDUs in, with
// waits on a predicate. Built on the project's codec; tests assert on the decoded fields.
import net from 'node:net';
import { encodeBhs, decodePdu, type Pdu, type LoginRequest } from '../../../src/proto/iscsi/pdu.js';
import { PduFramer, frameBuffers } from '../../../src/proto/iscsi/framer.js';
import { encodeText, parseText, type TextPairs } from '../../../src/proto/iscsi/text.js';

export class TestInitiator {
  readonly received: Pdu[] = [];
  closed = false;
  private framer = new PduFramer({ maxDataSegmentLength: 1 << 24 });
  private waiters: Array<() => void> = [];
  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (c: Buffer) => {
      this.framer.push(c);
      for (let r = this.framer.next(); r; r = this.framer.next()) {
        this.received.push(decodePdu(Buffer.from(r.bhs), Buffer.from(r.ahs), Buffer.from(r.data)));
      }
      this.wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    sock.on('error', () => undefined);
  }
  static connect(port: number): Promise<TestInitiator> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new TestInitiator(s)));
      s.once('error', reject);
    });
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  /** Digests in force for both directions (switch on after a login that negotiated them). */
  digests = { headerDigest: false, dataDigest: false };
  useDigests(headerDigest: boolean, dataDigest: boolean): void {
    this.digests = { headerDigest, dataDigest };
    this.framer.opts = { ...this.framer.opts, headerDigest, dataDigest };
  }
  send(p: Pdu): void {
    const data = 'data' in p ? p.data : undefined;
    this.sock.write(Buffer.concat(frameBuffers(encodeBhs(p), data, this.digests)));
  }
  sendRaw(b: Buffer): void {
    this.sock.write(b);
  }
  /** Wait until a received PDU matches (consumed from the list), or the timeout passes. */
  async next<K extends Pdu['kind']>(kind: K, pred: (p: Extract<Pdu, { kind: K }>) => boolean = () => true, timeoutMs = 10_000): Promise<Extract<Pdu, { kind: K }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex((p) => p.kind === kind && pred(p as Extract<Pdu, { kind: K }>));
      if (i >= 0) return this.received.splice(i, 1)[0] as Extract<Pdu, { kind: K }>;
      if (this.closed) throw new Error(`connection closed while waiting for ${kind}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${kind}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }
  async waitClosed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection did not close');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }
  close(): void {
    this.sock.destroy();
  }
}

export function loginRequest(pairs: TextPairs, o: Partial<LoginRequest> = {}): LoginRequest {
  return {
    kind: 'login-req',
    transit: true,
    cont: false,
    csg: 1,
    nsg: 3,
    versionMax: 0,
    versionMin: 0,
    isid: 0x400000000001,
    tsih: 0,
    itt: 1,
    cid: 0,
    cmdSN: 1,
    expStatSN: 0,
    data: encodeText(pairs),
    ...o,
  };
}

export const pairsOf = (p: { data: Buffer }): Record<string, string> => Object.fromEntries(parseText(p.data));
