// An in-memory connected pair of Duplex streams (Node 20 has no stream.duplexPair): what one side writes, the
// other reads. Chunks are copied so a writer reusing its buffer cannot change bytes in flight.
import { Duplex } from 'node:stream';

export function duplexPair(): [Duplex, Duplex] {
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        const p = peer();
        if (!p.destroyed) p.push(Buffer.from(chunk));
        cb();
      },
      final(cb) {
        const p = peer();
        if (!p.destroyed) p.push(null);
        cb();
      },
      destroy(err, cb) {
        const p = peer();
        if (!p.destroyed) p.destroy();
        cb(err);
      },
    });
  const a: Duplex = make(() => b);
  const b: Duplex = make(() => a);
  return [a, b];
}
