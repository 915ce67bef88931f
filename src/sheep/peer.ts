// A one-shot sheep-to-sheep request (READ_PEER) used by REPAIR_REPLICA: connect, send one request, read one
// reply. The cluster work replaces this with pooled peer connections; the wire format stays the same.
import net from 'node:net';
import { SD_OP_READ_PEER, SD_RES_NETWORK_ERROR, SD_RES_SUCCESS, SD_SHEEP_PROTO_VER } from '../proto/sheepdog/constants.js';
import { SdResponseDecoder } from '../proto/sheepdog/frame.js';
import { emptyReqArgs, encodeRequestHeader } from '../proto/sheepdog/header.js';
import { addrText } from '../proto/sheepdog/node.js';
import { SdError } from './errors.js';

export const PEER_TIMEOUT_MS = 30_000;

export function fetchFromPeer(peer: { addr: Buffer; port: number }, oid: bigint, length: number, epoch: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: addrText(peer.addr), port: peer.port });
    const dec = new SdResponseDecoder({ maxPayload: length });
    const done = (err: Error | null, data?: Buffer): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(data ?? Buffer.alloc(0));
    };
    const timer = setTimeout(() => done(new SdError(SD_RES_NETWORK_ERROR, 'peer read timed out')), PEER_TIMEOUT_MS);
    sock.once('error', (e) => done(new SdError(SD_RES_NETWORK_ERROR, e.message)));
    sock.once('close', () => done(new SdError(SD_RES_NETWORK_ERROR, 'peer closed')));
    sock.once('connect', () => {
      sock.write(
        encodeRequestHeader({
          protoVer: SD_SHEEP_PROTO_VER,
          opcode: SD_OP_READ_PEER,
          flags: 0,
          epoch,
          id: 1,
          dataLength: length,
          args: { ...emptyReqArgs('obj'), oid },
        }),
      );
    });
    sock.on('data', (chunk: Buffer) => {
      try {
        dec.push(chunk);
        const m = dec.next();
        if (!m) return;
        if (m.header.result !== SD_RES_SUCCESS) done(new SdError(m.header.result, 'peer refused read'));
        else done(null, Buffer.from(m.payload ?? Buffer.alloc(0)));
      } catch (e) {
        done(new SdError(SD_RES_NETWORK_ERROR, (e as Error).message));
      }
    });
  });
}
