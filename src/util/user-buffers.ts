// Accepted sockets that read into buffers their connection chooses (Node's `onread` option), shared by the NBD
// and iSCSI servers: a reused receive buffer, or a payload's final place, instead of a fresh 64 KiB allocation
// per read. net.Server has no such option, so the accepted (paused) socket is re-created on its handle.
import net from 'node:net';

/** A connection that chooses where each read goes and consumes what was read there. */
export interface UserBufferReader {
  /** The buffer the socket's next read goes into. */
  nextReadBuffer(): Buffer;
  /** `n` bytes were read into `buf` (from nextReadBuffer); false pauses reading. */
  userRead(n: number, buf: Buffer): boolean;
}

/** Placeholder read buffer for the instant between re-creating a socket and creating its connection. */
const FIRST_READ = Buffer.alloc(1);

/**
 * Re-create an accepted socket (the server must pause on connect) on the same handle with `onread`, and create
 * its connection on the new socket with `make`; every read then goes through the connection's nextReadBuffer /
 * userRead. The original socket is left without a handle and destroyed when the new one closes, which keeps the
 * server's connection count (and server.close()) right. Falls back to the socket itself (resumed, reading as
 * usual) if it has no handle.
 */
export function acceptWithUserBuffers<R extends UserBufferReader>(s: net.Socket, make: (sock: net.Socket) => R): { sock: net.Socket; conn: R } {
  const shell = s as unknown as { _handle: object | null };
  const handle = shell._handle;
  if (handle === null || handle === undefined) {
    s.resume();
    return { sock: s, conn: make(s) };
  }
  shell._handle = null;
  // The socket asks for its first buffer before the connection exists.
  const ref: { conn?: R } = {};
  const onread = {
    buffer: (): Buffer => ref.conn?.nextReadBuffer() ?? FIRST_READ,
    callback: (n: number, buf: Uint8Array): boolean => ref.conn?.userRead(n, buf as Buffer) ?? false,
  };
  const sock = new net.Socket({ handle, onread } as unknown as net.SocketConstructorOpts);
  sock.once('close', () => s.destroy());
  ref.conn = make(sock);
  return { sock, conn: ref.conn };
}
