// One TCP connection of the initiator: socket, incremental PDU framer (digests switched on after login), corked
// writes of [BHS, digest, data, pad+digest] buffers, and a single PDU callback. It knows nothing of tasks or
// sequence numbers; IscsiSession owns those. Errors (framing, digests, socket) end the connection once.
import net from 'node:net';
import { FrameError, PduFramer, frameBuffers } from '../proto/iscsi/framer.js';
import { decodePdu, encodeBhs, type InitiatorPdu, type Pdu, type TargetPdu } from '../proto/iscsi/pdu.js';
import { IscsiTransportError } from './errors.js';

/** Largest DataSegmentLength accepted during login (RFC 7143 §13.12: 8192 until negotiated). */
export const LOGIN_MAX_DATA = 8192;

const TARGET_KINDS = new Set<Pdu['kind']>([
  'nop-in',
  'scsi-rsp',
  'tmf-rsp',
  'login-rsp',
  'text-rsp',
  'data-in',
  'logout-rsp',
  'r2t',
  'async',
  'reject',
]);

/** PDUs to write in one go, each with its data segment. */
export type OutPdus = Array<{ pdu: InitiatorPdu; data?: Buffer }>;

export class InitiatorConn {
  private readonly framer = new PduFramer({ maxDataSegmentLength: LOGIN_MAX_DATA });
  private digests = { headerDigest: false, dataDigest: false };
  private ended = false;
  onPdu: (p: TargetPdu) => void = () => undefined;
  onClose: (err: IscsiTransportError) => void = () => undefined;
  /** Time (Date.now) of the last bytes received. */
  lastHeardMs = Date.now();

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.end(new IscsiTransportError('ECONNRESET', `socket error: ${err.message}`, { cause: err })));
    socket.on('close', () => this.end(new IscsiTransportError('ECONNRESET', 'connection closed by peer')));
  }

  /** Open a TCP connection within timeoutMs. */
  static connect(host: string, port: number, timeoutMs: number): Promise<InitiatorConn> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new IscsiTransportError('ETIMEDOUT', `connect to ${host}:${port} timed out`));
      }, timeoutMs);
      sock.once('error', (err) => {
        clearTimeout(timer);
        sock.destroy();
        reject(new IscsiTransportError('ECONNRESET', `connect to ${host}:${port}: ${err.message}`, { cause: err }));
      });
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(new InitiatorConn(sock));
      });
    });
  }

  get closed(): boolean {
    return this.ended;
  }

  get localPort(): number | undefined {
    return this.socket.localPort;
  }

  /** After login: digests and our receive limit take effect for the following PDUs. */
  setFullFeature(opts: { headerDigest: boolean; dataDigest: boolean; maxRecvDataSegmentLength: number }): void {
    this.digests = { headerDigest: opts.headerDigest, dataDigest: opts.dataDigest };
    this.framer.opts = { ...this.digests, maxDataSegmentLength: opts.maxRecvDataSegmentLength };
  }

  /** Write PDUs under one cork; `data` of each is the PDU's data segment. */
  send(pdus: OutPdus): void {
    if (this.ended) return;
    this.socket.cork();
    for (const { pdu, data } of pdus) {
      for (const b of frameBuffers(encodeBhs(pdu), data, this.digests)) this.socket.write(b);
    }
    this.socket.uncork();
  }

  /** Close the connection (idempotent); onClose fires with `err`. */
  end(err: IscsiTransportError): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.destroy();
    this.onClose(err);
  }

  /** Reset the TCP connection abruptly (tests and fault drills). */
  resetForTest(): void {
    this.socket.resetAndDestroy();
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    this.lastHeardMs = Date.now();
    this.framer.push(chunk);
    try {
      for (;;) {
        if (this.ended) return;
        const raw = this.framer.next();
        if (!raw) return;
        const pdu = decodePdu(raw.bhs, raw.ahs, raw.data);
        if (!TARGET_KINDS.has(pdu.kind)) throw new IscsiTransportError('EPROTO', `target sent initiator PDU ${pdu.kind}`);
        this.onPdu(pdu as TargetPdu);
      }
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const code = e instanceof FrameError ? 'EPROTO' : e instanceof IscsiTransportError ? e.code : 'EPROTO';
      this.end(new IscsiTransportError(code, `protocol error: ${msg}`, { cause: e }));
    }
  }
}
