// RequestReceiver: requests are parsed from a reused read buffer whatever the read boundaries, large WRITE
// payloads are read in place (nextBuffer hands out the payload region), oversize payloads are drained, bad
// magic throws. Request bytes are built here from the spec's layout (magic, flags, type, cookie, offset, length).
import { describe, it, expect } from 'vitest';
import { BufferPool } from '../../../src/nbd/pool.js';
import { RequestReceiver, NBD_DIRECT_PAYLOAD_MIN_BYTES, type ReceivedRequest } from '../../../src/nbd/receiver.js';

const MAGIC = 0x25609513;
const WRITE = 1;
const READ = 0;

function req(type: number, cookie: number, offset: number, length: number, flags = 0): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(BigInt(cookie), 8);
  b.writeBigUInt64BE(BigInt(offset), 16);
  b.writeUInt32BE(length, 24);
  return b;
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Feed `stream` the way a socket with user buffers would: each read fills at most `step` bytes of nextBuffer(). */
function feed(r: RequestReceiver, stream: Buffer, step: number): void {
  let at = 0;
  while (at < stream.length) {
    const into = r.nextBuffer();
    const n = Math.min(step, into.length, stream.length - at);
    stream.copy(into, 0, at, at + n);
    r.consume(into, n);
    at += n;
  }
}

function collect(maxPayload = 1 << 20): { r: RequestReceiver; got: ReceivedRequest[]; pool: BufferPool } {
  const pool = new BufferPool(64 << 20);
  const got: ReceivedRequest[] = [];
  // Payloads are copied at once: the receiver's buffers may be reused after emit in a real connection.
  const r = new RequestReceiver(pool, maxPayload, (x) => got.push({ ...x, payload: x.payload && Buffer.from(x.payload) }));
  return { r, got, pool };
}

describe('RequestReceiver', () => {
  const small = pattern(4096, 1);
  const big = pattern(NBD_DIRECT_PAYLOAD_MIN_BYTES * 3 + 17, 2);
  const stream = Buffer.concat([
    req(READ, 1, 0, 4096),
    req(WRITE, 2, 4096, small.length, 1),
    small,
    req(WRITE, 3, 8192, big.length),
    big,
    req(WRITE, 4, 0, 0),
    req(READ, 5, 512, 512),
  ]);

  function check(got: ReceivedRequest[]): void {
    expect(got.map((g) => Number(g.request.cookie))).toEqual([1, 2, 3, 4, 5]);
    expect(got[1]?.request.flags).toBe(1);
    expect(got[1]?.payload?.equals(small)).toBe(true);
    expect(got[2]?.payload?.equals(big)).toBe(true);
    expect(got[2]?.request.offset).toBe(8192n);
    expect(got[3]?.payload).toBeUndefined();
    expect(got.every((g) => !g.oversize)).toBe(true);
  }

  it('parses the same bytes split at every read size', () => {
    for (const step of [1, 2, 7, 27, 28, 29, 100, 4095, 4096 + 28, 65536, 1 << 20]) {
      const { r, got } = collect();
      feed(r, stream, step);
      check(got);
      expect(r.idle).toBe(true);
    }
  });

  it('reads a large payload in place: nextBuffer is the payload region while enough of it is missing', () => {
    const { r, got } = collect();
    const h = req(WRITE, 9, 0, big.length);
    const first = r.nextBuffer();
    h.copy(first);
    big.copy(first, 28, 0, 100);
    r.consume(first, 128);
    const direct = r.nextBuffer();
    expect(direct.length).toBe(big.length - 100);
    expect(direct).not.toBe(first);
    big.copy(direct, 0, 100);
    r.consume(direct, direct.length);
    expect(got).toHaveLength(1);
    expect(got[0]?.payload?.equals(big)).toBe(true);
    expect(r.nextBuffer()).toBe(first);
  });

  it('drains an oversize payload and stays in sync', () => {
    const { r, got } = collect(8192);
    const s = Buffer.concat([req(WRITE, 1, 0, 10000), pattern(10000, 3), req(READ, 2, 0, 512)]);
    feed(r, s, 3000);
    expect(got.map((g) => [Number(g.request.cookie), g.oversize])).toEqual([
      [1, true],
      [2, false],
    ]);
  });

  it('throws on bad magic', () => {
    const { r } = collect();
    const bad = req(READ, 1, 0, 512);
    bad.writeUInt32BE(0xdeadbeef, 0);
    expect(() => feed(r, bad, 28)).toThrow(/magic/);
  });
});
