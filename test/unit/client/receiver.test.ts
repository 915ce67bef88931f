// ReplyReceiver: sheep replies (48-byte header + data_length bytes) are parsed from a reused read buffer whatever
// the read boundaries, large payloads are read in place (nextBuffer hands out the payload region), and an
// oversize data_length is refused before allocating. Headers are built here byte by byte from the fact sheet.
import { describe, it, expect } from 'vitest';
import { ReplyReceiver, SHEEP_DIRECT_PAYLOAD_MIN_BYTES } from '../../../src/client/receiver.js';
import { SD_OP_READ_OBJ, type SdResponse } from '../../../src/proto/sheepdog/index.js';

function rsp(id: number, dataLength: number, result = 0): Buffer {
  const b = Buffer.alloc(48);
  b[0] = 0x02; // proto_ver
  b[1] = SD_OP_READ_OBJ;
  b.writeUInt32LE(7, 4); // epoch
  b.writeUInt32LE(id, 8);
  b.writeUInt32LE(dataLength, 12);
  b.writeUInt32LE(result, 16);
  return b;
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + seed) & 0xff;
  return b;
}

function feed(r: ReplyReceiver, stream: Buffer, step: number): void {
  let at = 0;
  while (at < stream.length) {
    const into = r.nextBuffer();
    const n = Math.min(step, into.length, stream.length - at);
    stream.copy(into, 0, at, at + n);
    r.consume(into, n);
    at += n;
  }
}

describe('ReplyReceiver', () => {
  const small = pattern(100, 1);
  const big = pattern(SHEEP_DIRECT_PAYLOAD_MIN_BYTES * 4 + 3, 2);
  const stream = Buffer.concat([rsp(1, 0, 3), rsp(2, small.length), small, rsp(3, big.length), big, rsp(4, 0)]);

  it('parses the same bytes split at every read size, payloads in their own buffers', () => {
    for (const step of [1, 3, 47, 48, 49, 148, 4096, 65536, 1 << 20]) {
      const r = new ReplyReceiver(1 << 30);
      const got: Array<{ rsp: SdResponse; data: Buffer | null }> = [];
      r.onReply = (h, data) => got.push({ rsp: h, data });
      feed(r, stream, step);
      expect(got.map((g) => g.rsp.id)).toEqual([1, 2, 3, 4]);
      expect(got[0]?.rsp.result).toBe(3);
      expect(got[0]?.data).toBeNull();
      expect(got[1]?.data?.equals(small)).toBe(true);
      expect(got[2]?.data?.equals(big)).toBe(true);
      expect(got[2]?.rsp.epoch).toBe(7);
      // The receive buffer is reused: payloads handed out must not be views of it.
      const recv = r.nextBuffer();
      for (const g of got) if (g.data) expect(g.data.buffer).not.toBe(recv.buffer);
    }
  });

  it('reads a large payload in place', () => {
    const r = new ReplyReceiver(1 << 30);
    let data: Buffer | null = null;
    r.onReply = (_h, d) => (data = d);
    const first = r.nextBuffer();
    rsp(9, big.length).copy(first);
    r.consume(first, 48);
    const direct = r.nextBuffer();
    expect(direct.length).toBe(big.length);
    big.copy(direct);
    r.consume(direct, direct.length);
    expect((data as Buffer | null)?.equals(big)).toBe(true);
    expect((data as Buffer | null)?.buffer).toBe(direct.buffer);
  });

  it('reads a payload into the buffer its request brought, whatever the read sizes; falls back when it does not fit', () => {
    for (const step of [1, 47, 4096, 65536, 1 << 20]) {
      const r = new ReplyReceiver(1 << 30);
      const dests = new Map<number, Buffer>([
        [2, Buffer.alloc(small.length + 10, 0xee)],
        [3, Buffer.alloc(big.length, 0xee)],
        [4, Buffer.alloc(1)],
      ]);
      r.destination = (h) => dests.get(h.id);
      const got: Array<{ rsp: SdResponse; data: Buffer | null }> = [];
      r.onReply = (h, data) => got.push({ rsp: h, data });
      const tooBig = pattern(10, 3);
      feed(r, Buffer.concat([rsp(2, small.length), small, rsp(3, big.length), big, rsp(4, tooBig.length), tooBig]), step);
      expect(got.map((g) => g.rsp.id)).toEqual([2, 3, 4]);
      const d2 = dests.get(2) as Buffer;
      expect(got[0]?.data?.buffer).toBe(d2.buffer);
      expect(d2.subarray(0, small.length).equals(small)).toBe(true);
      expect(d2.subarray(small.length).equals(Buffer.alloc(10, 0xee))).toBe(true);
      expect(got[1]?.data?.buffer).toBe(dests.get(3)?.buffer);
      expect(dests.get(3)?.equals(big)).toBe(true);
      // A payload larger than the request's buffer gets its own, the small buffer is untouched.
      expect(got[2]?.data?.equals(tooBig)).toBe(true);
      expect(dests.get(4)?.[0]).toBe(0);
    }
  });

  it('refuses an oversize data_length', () => {
    const r = new ReplyReceiver(1000);
    expect(() => feed(r, rsp(1, 1001), 48)).toThrow(/exceeds limit/);
  });
});
