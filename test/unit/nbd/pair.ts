// An in-memory connected pair of Duplex streams (Node 20 has no stream.duplexPair): what one side writes, the
// other reads, with backpressure (a write completes only once the reader wants more). Chunks are copied so a
// writer reusing its buffer cannot change bytes in flight.
import { Duplex } from 'node:stream';

export function duplexPair(): [Duplex, Duplex] {
  const wake = new Map<Duplex, () => void>();
  const make = (peer: () => Duplex): Duplex => {
    const self: Duplex = new Duplex({
      highWaterMark: 64 * 1024,
      read() {
        const cb = wake.get(self);
        if (cb !== undefined) {
          wake.delete(self);
          cb();
        }
      },
      write(chunk: Buffer, _enc, cb) {
        const p = peer();
        if (p.destroyed) return cb();
        if (p.push(Buffer.from(chunk))) cb();
        else wake.set(p, () => cb());
      },
      final(cb) {
        const p = peer();
        if (!p.destroyed) p.push(null);
        cb();
      },
      destroy(err, cb) {
        const p = peer();
        if (!p.destroyed) p.destroy();
        wake.get(p)?.();
        cb(err);
      },
    });
    return self;
  };
  const a: Duplex = make(() => b);
  const b: Duplex = make(() => a);
  return [a, b];
}
