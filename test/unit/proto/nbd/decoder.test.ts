// Frame decoders: streams built by an independent test builder are re-fed split at every byte offset (and one
// byte at a time) and must decode to the same frames; property round-trips through the encoders; limits are
// enforced before allocation and oversize payloads are drained.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import * as C from '../../../../src/proto/nbd/constants.js';
import * as M from '../../../../src/proto/nbd/messages.js';
import {
  NbdClientDecoder,
  NbdServerDecoder,
  type ClientFrame,
  type ServerFrame,
} from '../../../../src/proto/nbd/decoder.js';

/** Independent big-endian builder (does not use the production encoders). */
class B {
  private parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v >>> 8).u8(v);
  }
  u32(v: number): this {
    return this.u16(Math.floor(v / 65536)).u16(v % 65536);
  }
  u64(v: bigint): this {
    return this.u32(Number(v >> 32n)).u32(Number(v & 0xffffffffn));
  }
  bytes(b: Buffer | string): this {
    for (const x of Buffer.from(b)) this.parts.push(x);
    return this;
  }
  build(): Buffer {
    return Buffer.from(this.parts);
  }
}

const LIMITS = { maxOptionLength: 4096, maxPayload: 65536 };

function clientStream(): { bytes: Buffer; frames: ClientFrame[] } {
  const b = new B()
    .u32(3) // client flags
    .bytes('IHAVEOPT').u32(C.NBD_OPT_STRUCTURED_REPLY).u32(0)
    .bytes('IHAVEOPT').u32(C.NBD_OPT_GO).u32(10).u32(4).bytes('disk').u16(0);
  const frames: ClientFrame[] = [
    { kind: 'clientFlags', flags: 3 },
    { kind: 'option', option: 8, data: Buffer.alloc(0), oversize: false },
    { kind: 'option', option: 7, data: new B().u32(4).bytes('disk').u16(0).build(), oversize: false },
  ];
  return { bytes: b.build(), frames };
}

function requestStream(): { bytes: Buffer; frames: ClientFrame[] } {
  const payload = Buffer.alloc(300, 0x61);
  const b = new B()
    .u32(0x25609513).u16(0).u16(C.NBD_CMD_READ).u64(1n).u64(0n).u32(4096)
    .u32(0x25609513).u16(1).u16(C.NBD_CMD_WRITE).u64(2n).u64(512n).u32(payload.length).bytes(payload)
    .u32(0x25609513).u16(0).u16(C.NBD_CMD_FLUSH).u64(3n).u64(0n).u32(0);
  const frames: ClientFrame[] = [
    { kind: 'request', request: { flags: 0, type: 0, cookie: 1n, offset: 0n, length: 4096 }, payload: undefined, oversize: false },
    { kind: 'request', request: { flags: 1, type: 1, cookie: 2n, offset: 512n, length: 300 }, payload, oversize: false },
    { kind: 'request', request: { flags: 0, type: 3, cookie: 3n, offset: 0n, length: 0 }, payload: undefined, oversize: false },
  ];
  return { bytes: b.build(), frames };
}

/** Feed `pieces` to a fresh server decoder; switch to transmission after `handshakeFrames` frames. */
function decodeClient(pieces: Buffer[], handshakeFrames: number): ClientFrame[] {
  const d = new NbdServerDecoder(LIMITS);
  const out: ClientFrame[] = [];
  for (const p of pieces) {
    d.push(p);
    for (let f = d.next(); f !== undefined; f = d.next()) {
      out.push(f);
      if (out.length === handshakeFrames) d.startTransmission();
    }
  }
  return out;
}

function splits(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [];
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  out.push([...bytes].map((x) => Buffer.from([x])));
  return out;
}

describe('NbdServerDecoder', () => {
  it('decodes a handshake + requests stream identically at every split', () => {
    const h = clientStream();
    const r = requestStream();
    const all = Buffer.concat([h.bytes, r.bytes]);
    const expected = [...h.frames, ...r.frames];
    for (const pieces of splits(all)) expect(decodeClient(pieces, h.frames.length)).toEqual(expected);
  });

  it('reports an oversize WRITE at once and drains its payload without buffering it', () => {
    const d = new NbdServerDecoder(LIMITS);
    d.startTransmission();
    const huge = 0xfffffff0;
    d.push(new B().u32(0x25609513).u16(0).u16(1).u64(7n).u64(0n).u32(huge).build());
    const f = d.next();
    expect(f).toMatchObject({ kind: 'request', oversize: true, request: { length: huge } });
    expect(d.draining).toBe(huge);
    let left = huge;
    const junk = Buffer.alloc(1 << 20, 0x25);
    while (left > 0) {
      const n = Math.min(left, junk.length);
      d.push(junk.subarray(0, n));
      left -= n;
      expect(d.next()).toBeUndefined();
      expect(d.buffered).toBe(0);
    }
    d.push(new B().u32(0x25609513).u16(0).u16(3).u64(8n).u64(0n).u32(0).build());
    expect(d.next()).toMatchObject({ kind: 'request', request: { type: 3, cookie: 8n } });
  });

  it('reports an oversize option and drains it', () => {
    const d = new NbdServerDecoder(LIMITS);
    d.push(new B().u32(1).bytes('IHAVEOPT').u32(3).u32(10000).build());
    d.next();
    expect(d.next()).toMatchObject({ kind: 'option', option: 3, oversize: true });
    d.push(Buffer.alloc(10000));
    d.push(new B().bytes('IHAVEOPT').u32(3).u32(0).build());
    expect(d.next()).toMatchObject({ kind: 'option', option: 3, oversize: false });
  });

  it('throws BAD_MAGIC on a bad request or option magic', () => {
    const d = new NbdServerDecoder(LIMITS);
    d.startTransmission();
    d.push(Buffer.alloc(28, 1));
    expect(() => d.next()).toThrow(/magic/);
    const o = new NbdServerDecoder(LIMITS);
    o.push(new B().u32(1).bytes('IHAVEOPX').u32(1).u32(0).build());
    o.next();
    expect(() => o.next()).toThrow(/IHAVEOPT/);
  });

  it('round-trips arbitrary requests through encodeRequest', () => {
    fc.assert(
      fc.property(
        fc.record({
          flags: fc.integer({ min: 0, max: 0xffff }),
          type: fc.integer({ min: 0, max: 0xffff }).filter((t) => t !== C.NBD_CMD_WRITE),
          cookie: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          offset: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          length: fc.integer({ min: 0, max: 0xffffffff }),
        }),
        fc.integer({ min: 0, max: 27 }),
        (req, cut) => {
          const bytes = M.encodeRequest(req);
          const d = new NbdServerDecoder(LIMITS);
          d.startTransmission();
          d.push(bytes.subarray(0, cut));
          expect(d.next()).toBeUndefined();
          d.push(bytes.subarray(cut));
          expect(d.next()).toEqual({ kind: 'request', request: req, payload: undefined, oversize: false });
        },
      ),
    );
  });
});

describe('codec round trips', () => {
  const str = fc.string({ maxLength: 40 }).filter((s) => !s.includes('\0'));
  it('info and meta-context requests', () => {
    fc.assert(
      fc.property(str, fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 8 }), (name, requests) => {
        expect(M.decodeInfoRequest(M.encodeInfoRequest({ name, requests }))).toEqual({ name, requests });
      }),
    );
    fc.assert(
      fc.property(str, fc.array(str, { maxLength: 6 }), (name, queries) => {
        expect(M.decodeMetaContextRequest(M.encodeMetaContextRequest({ name, queries }))).toEqual({ name, queries });
      }),
    );
  });

  it('structured chunks', () => {
    const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    fc.assert(
      fc.property(u64, u64, fc.integer({ min: 1, max: 0xffffffff }), (cookie, offset, size) => {
        const b = M.encodeOffsetHole(1, cookie, offset, size);
        const h = M.decodeStructuredReplyHeader(b);
        expect(h).toEqual({ flags: 1, type: 2, cookie, length: 12 });
        expect(M.decodeStructuredChunk(h.type, b.subarray(20))).toEqual({ type: 2, offset, holeSize: size });
      }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.record({ length: fc.integer({ min: 1, max: 0xffffffff }), flags: fc.integer({ min: 0, max: 3 }) }), {
          minLength: 1,
          maxLength: 20,
        }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (descs, id) => {
          const b = M.encodeBlockStatus(1, 1n, id, descs);
          expect(M.decodeStructuredChunk(5, b.subarray(20))).toEqual({ type: 5, contextId: id, descriptors: descs });
        },
      ),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0xffffffff }), fc.string({ maxLength: 100 }), u64, (errno, msg, off) => {
        const clean = Buffer.from(msg, 'utf8').toString('utf8');
        const e = M.encodeReplyError(1, 1n, errno, clean);
        expect(M.decodeStructuredChunk(0x8001, e.subarray(20))).toEqual({ type: 0x8001, error: errno, message: clean });
        const eo = M.encodeReplyErrorOffset(1, 1n, errno, clean, off);
        expect(M.decodeStructuredChunk(0x8002, eo.subarray(20))).toEqual({
          type: 0x8002,
          error: errno,
          message: clean,
          offset: off,
        });
      }),
    );
  });

  it('caps error messages at 4096 bytes on a UTF-8 boundary', () => {
    const e = M.encodeReplyError(1, 1n, 5, 'é'.repeat(3000));
    const c = M.decodeStructuredChunk(0x8001, e.subarray(20));
    expect(c.type === 0x8001 && Buffer.byteLength(c.message)).toBe(4096);
  });
});

describe('NbdClientDecoder', () => {
  function serverStream(): { bytes: Buffer; frames: ServerFrame[] } {
    const data = Buffer.alloc(700, 0x33);
    const b = new B()
      .bytes('NBDMAGICIHAVEOPT').u16(3)
      .u64(0x3e889045565a9n).u32(7).u32(3).u32(12).u16(0).u64(1n << 20n).u16(1)
      .u64(0x3e889045565a9n).u32(7).u32(1).u32(0);
    const t = new B()
      .u32(0x67446698).u32(0).u64(5n).bytes(data)
      .u32(0x67446698).u32(22).u64(6n)
      .u32(0x668e33ef).u16(1).u16(2).u64(7n).u32(12).u64(0n).u32(4096);
    const frames: ServerFrame[] = [
      { kind: 'greeting', handshakeFlags: 3 },
      { kind: 'optionReply', option: 7, type: 3, data: new B().u16(0).u64(1n << 20n).u16(1).build() },
      { kind: 'optionReply', option: 7, type: 1, data: Buffer.alloc(0) },
      { kind: 'simpleReply', error: 0, cookie: 5n, payload: data },
      { kind: 'simpleReply', error: 22, cookie: 6n, payload: Buffer.alloc(0) },
      { kind: 'structuredChunk', flags: 1, type: 2, cookie: 7n, payload: new B().u64(0n).u32(4096).build() },
    ];
    return { bytes: Buffer.concat([b.build(), t.build()]), frames };
  }

  it('decodes a server stream identically at every split', () => {
    const s = serverStream();
    for (const pieces of splits(s.bytes)) {
      const d = new NbdClientDecoder({ maxOptionReplyLength: 1024, maxReplyPayload: 4096 }, (c) => (c === 5n ? 700 : 0));
      const out: ServerFrame[] = [];
      for (const p of pieces) {
        d.push(p);
        for (let f = d.next(); f !== undefined; f = d.next()) {
          out.push(f);
          if (out.length === 3) d.startTransmission();
        }
      }
      expect(out).toEqual(s.frames);
    }
  });

  it('rejects an oversize structured chunk before buffering it', () => {
    const d = new NbdClientDecoder({ maxOptionReplyLength: 1024, maxReplyPayload: 4096 });
    d.startTransmission();
    d.push(new B().u32(0x668e33ef).u16(1).u16(1).u64(1n).u32(0x7fffffff).build());
    expect(() => d.next()).toThrow(/exceeds limit/);
  });
});
