// The one FrameEngine under the three protocols, in both feeding modes. Streams are built here from the wire
// layouts (not with the product encoders), re-fed split at every byte offset and in random reads, and must
// decode to the frames they were built from. Also: payload placement (views of owned chunks, fresh copies,
// pooled buffers, a caller's buffer read in place), nothing kept from a reused receive buffer, drains,
// limits checked from the header alone, digests, and a codec change between frames.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameEngine, type Frame, type FrameCodec, type PayloadMode } from '../../../src/proto/frame.js';
import { sdRequestCodec, sdResponseCodec, SdProtocolError } from '../../../src/proto/sheepdog/frame.js';
import { nbdRequestCodec } from '../../../src/proto/nbd/decoder.js';
import { NbdProtocolError } from '../../../src/proto/nbd/errors.js';
import { FrameError, PduCodec, type PduHeader } from '../../../src/proto/iscsi/framer.js';
import { crc32c } from '../../helpers/crc32c-oracle.js';

// ---------------------------------------------------------------- independent wire builders

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + 1) & 0xff;
  return b;
}

/** Sheepdog request/response header (§1.1): little-endian; flags bit 0 = WRITE; data_length at 12. */
function sheepHeader(opcode: number, flags: number, id: number, dataLength: number): Buffer {
  const h = Buffer.alloc(48);
  h[0] = 0x02;
  h[1] = opcode;
  h.writeUInt16LE(flags, 2);
  h.writeUInt32LE(id, 8);
  h.writeUInt32LE(dataLength, 12);
  return h;
}

/** NBD request (proto.md): magic, flags, type, cookie, offset, length, big-endian. */
function nbdRequest(type: number, cookie: number, length: number): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32BE(0x25609513, 0);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(BigInt(cookie), 8);
  b.writeBigUInt64BE(BigInt(cookie) * 512n, 16);
  b.writeUInt32BE(length, 24);
  return b;
}

interface Digests {
  hd: boolean;
  dd: boolean;
}

/** iSCSI PDU (RFC 7143 §11.2): BHS (TotalAHSLength at 4, DataSegmentLength at 5..7), AHS, HD, data, pad, DD. */
function iscsiPdu(ahsWords: number, data: Buffer, tag: number, d: Digests): Buffer {
  const bhs = Buffer.alloc(48);
  bhs[0] = 0x01;
  bhs[1] = 0x80;
  bhs[4] = ahsWords;
  bhs.writeUIntBE(data.length, 5, 3);
  bhs.writeUInt32BE(tag, 16);
  const head = Buffer.concat([bhs, pattern(ahsWords * 4, tag + 99)]);
  const parts: Buffer[] = [head];
  if (d.hd) parts.push(u32le(crc32c(head)));
  if (data.length > 0) {
    const padded = Buffer.concat([data, Buffer.alloc((4 - (data.length % 4)) % 4)]);
    parts.push(padded);
    if (d.dd) parts.push(u32le(crc32c(padded)));
  }
  return Buffer.concat(parts);
}

function u32le(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
}

// ---------------------------------------------------------------- the protocols as test cases

/** One frame as built: its wire bytes and what decoding it must give. */
interface Built {
  bytes: Buffer;
  want: string;
}

interface Proto<H> {
  name: string;
  codec: () => FrameCodec<H>;
  /** A frame spec → bytes + expected summary. */
  arb: fc.Arbitrary<Built>;
  summary: (f: Frame<H>) => string;
}

const hex = (b: Buffer | undefined): string => (b === undefined ? '-' : b.toString('hex'));
/** Payload lengths: mostly small, sometimes large enough to be read in place (over 32 KiB). */
const len = (max: number): fc.Arbitrary<number> => fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max }) }, { weight: 1, arbitrary: fc.integer({ min: 33_000, max: 70_000 }) });

const SHEEP_MAX = 1 << 20;
const sheepReq: Proto<{ id: number; dataLength: number }> = {
  name: 'sheepdog requests',
  codec: () => sdRequestCodec(SHEEP_MAX),
  arb: fc.record({ write: fc.boolean(), id: fc.nat(), n: len(300), op: fc.integer({ min: 1, max: 0x30 }) }).map(({ write, id, n, op }) => {
    const payload = write && n > 0 ? pattern(n, id) : undefined;
    const head = sheepHeader(op, write ? 1 : 0, id, n);
    return { bytes: Buffer.concat([head, payload ?? Buffer.alloc(0)]), want: `${hex(head)}|${id}/${n}|${hex(payload)}|false` };
  }),
  summary: (f) => `${hex(f.head)}|${f.header.id}/${f.header.dataLength}|${hex(f.payload)}|${f.drained}`,
};

const sheepRsp: Proto<{ id: number }> = {
  name: 'sheepdog responses',
  codec: () => sdResponseCodec(SHEEP_MAX),
  arb: fc.record({ id: fc.nat(), n: len(300) }).map(({ id, n }) => {
    const payload = n > 0 ? pattern(n, id) : undefined;
    const head = sheepHeader(0x02, 0, id, n);
    return { bytes: Buffer.concat([head, payload ?? Buffer.alloc(0)]), want: `${hex(head)}|${id}|${hex(payload)}|false` };
  }),
  summary: (f) => `${hex(f.head)}|${f.header.id}|${hex(f.payload)}|${f.drained}`,
};

const NBD_MAX = 40_000;
const nbdReq: Proto<{ cookie: bigint }> = {
  name: 'NBD requests',
  codec: () => nbdRequestCodec(NBD_MAX),
  arb: fc.record({ type: fc.constantFrom(0, 1, 1, 3), cookie: fc.nat(), n: len(300) }).map(({ type, cookie, n }) => {
    const carries = type === 1 && n > 0;
    const payload = carries ? pattern(n, cookie) : undefined;
    const drained = carries && n > NBD_MAX;
    const head = nbdRequest(type, cookie, n);
    return { bytes: Buffer.concat([head, payload ?? Buffer.alloc(0)]), want: `${hex(head)}|${cookie}|${drained ? '-' : hex(payload)}|${drained}` };
  }),
  summary: (f) => `${hex(f.head)}|${f.header.cookie}|${hex(f.payload)}|${f.drained}`,
};

function iscsiProto(d: Digests): Proto<PduHeader> {
  return {
    name: `iSCSI PDUs (header digest ${d.hd}, data digest ${d.dd})`,
    codec: () => new PduCodec({ headerDigest: d.hd, dataDigest: d.dd, maxDataSegmentLength: 1 << 17 }),
    arb: fc.record({ ahs: fc.integer({ min: 0, max: 3 }), tag: fc.nat(), n: len(300) }).map(({ ahs, tag, n }) => {
      const data = pattern(n, tag);
      const bhs = iscsiPdu(ahs, data, tag, d).subarray(0, 48);
      return { bytes: iscsiPdu(ahs, data, tag, d), want: `${hex(bhs)}|${hex(pattern(ahs * 4, tag + 99))}|${n > 0 ? hex(data) : '-'}|false` };
    }),
    summary: (f) => `${hex(f.header.bhs)}|${hex(f.header.ahs)}|${hex(f.payload)}|${f.drained}`,
  };
}

const PROTOS: Proto<unknown>[] = [sheepReq, sheepRsp, nbdReq, iscsiProto({ hd: false, dd: false }), iscsiProto({ hd: true, dd: true }), iscsiProto({ hd: true, dd: false })] as unknown as Proto<unknown>[];

// ---------------------------------------------------------------- feeding

/** Owned chunks, pulled one frame at a time; summaries taken when all is fed (views must stay valid). */
function pull<H>(p: Proto<H>, chunks: Buffer[], mode: PayloadMode = 'view'): { got: string[]; frames: Frame<H>[] } {
  const e = new FrameEngine(p.codec(), { payload: mode });
  const frames: Frame<H>[] = [];
  for (const c of chunks) {
    e.push(c);
    for (let f = e.next(); f !== undefined; f = e.next()) frames.push(f);
  }
  expect(e.buffered).toBe(0);
  return { got: frames.map(p.summary), frames };
}

/**
 * A socket reading into the engine's buffers, at most `sizes[i % n]` bytes per read. After every read the
 * reused receive buffer is scribbled over: nothing handed out may still point into it.
 */
function consume<H>(p: Proto<H>, stream: Buffer, sizes: number[], mode: PayloadMode = 'copy'): { got: string[]; late: string[]; direct: number } {
  const got: string[] = [];
  const payloads: { f: Frame<H>; hex: string }[] = [];
  const e = new FrameEngine(p.codec(), {
    payload: mode,
    onFrame: (f) => {
      got.push(p.summary(f));
      payloads.push({ f, hex: hex(f.payload) });
    },
  });
  let at = 0;
  let i = 0;
  let direct = 0;
  let recv: Buffer | undefined;
  while (at < stream.length) {
    const into = e.nextBuffer();
    const n = Math.min(sizes[i++ % sizes.length] as number, into.length, stream.length - at);
    stream.copy(into, 0, at, at + n);
    e.consume(into, n);
    at += n;
    if (into.length === 256 * 1024) {
      recv ??= into;
      expect(into).toBe(recv);
      into.fill(0xee);
    } else direct++;
  }
  expect(e.idle).toBe(true);
  return { got, late: payloads.map((x) => `${x.hex === hex(x.f.payload)}`), direct };
}

function splitAtEveryOffset(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [];
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

// ---------------------------------------------------------------- the suite

describe('FrameEngine', () => {
  for (const proto of PROTOS) {
    const p = proto;
    describe(p.name, () => {
      it('re-fed split at every byte offset, pulled or consumed, gives the frames the bytes were built from', () => {
        const built = fc.sample(p.arb.filter((b) => b.bytes.length < 400), { numRuns: 6, seed: 7 });
        const stream = Buffer.concat(built.map((b) => b.bytes));
        const want = built.map((b) => b.want);
        for (const pieces of splitAtEveryOffset(stream)) {
          expect(pull(p, pieces).got).toEqual(want);
          expect(consume(p, stream, [pieces[0]?.length || 1, stream.length]).got).toEqual(want);
        }
        expect(pull(p, [...stream].map((x) => Buffer.from([x]))).got).toEqual(want);
      });

      it('property: any frames, any chunking, both modes, every placement', () => {
        fc.assert(
          fc.property(
            fc.array(p.arb, { minLength: 1, maxLength: 8 }),
            fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 6 }),
            (built, sizes) => {
              const stream = Buffer.concat(built.map((b) => b.bytes));
              const want = built.map((b) => b.want);
              const chunks: Buffer[] = [];
              for (let at = 0, i = 0; at < stream.length; i++) {
                const n = Math.min(sizes[i % sizes.length] as number, stream.length - at);
                chunks.push(stream.subarray(at, at + n));
                at += n;
              }
              expect(pull(p, chunks).got).toEqual(want);
              expect(pull(p, chunks, 'copy').got).toEqual(want);
              for (const mode of ['copy', pool()] as PayloadMode[]) {
                const r = consume(p, stream, sizes, mode);
                expect(r.got).toEqual(want);
                expect(r.late.every((x) => x === 'true')).toBe(true);
              }
            },
          ),
          { numRuns: 60, seed: 42 },
        );
      });
    });
  }

  it('hands out views of an owned chunk when a payload lies in it, one copy when it spans chunks', () => {
    const a = Buffer.concat([nbdRequest(1, 1, 100), pattern(100, 1), nbdRequest(1, 2, 100), pattern(40, 2)]);
    const b = pattern(100, 2).subarray(40);
    const { frames } = pull(nbdReq, [a, b]);
    expect(within(frames[0]?.payload, a)).toBe(true);
    expect(within(frames[0]?.head, a)).toBe(true);
    expect(within(frames[1]?.payload, a) || within(frames[1]?.payload, b)).toBe(false);
    expect(frames[1]?.payload).toEqual(pattern(100, 2));
  });

  it('reads a large payload in place: into a pooled buffer, or into the buffer the codec names', () => {
    const big = pattern(200_000, 3);
    const stream = Buffer.concat([nbdRequest(1, 9, big.length), big]);
    const given: Buffer[] = [];
    const p = { get: (n: number) => (given.push(Buffer.alloc(n)), given.at(-1) as Buffer) };
    const frames: Frame<{ cookie: bigint }>[] = [];
    const e = new FrameEngine(nbdRequestCodec(1 << 20), { payload: p, onFrame: (f) => frames.push(f) });
    let at = 0;
    let inPlace = 0;
    while (at < stream.length) {
      const into = e.nextBuffer();
      if (into.buffer === given[0]?.buffer) inPlace++;
      const n = Math.min(65536, into.length, stream.length - at);
      stream.copy(into, 0, at, at + n);
      e.consume(into, n);
      at += n;
    }
    expect(frames).toHaveLength(1);
    expect(frames[0]?.payload).toBe(given[0]);
    expect(frames[0]?.payload).toEqual(big);
    expect(inPlace).toBeGreaterThan(1);

    // A caller's buffer (a sheep client reading an object into a front end's buffer): a view of it at any offset.
    const dest = Buffer.alloc(big.length + 10, 0xaa);
    const seen: Frame<{ id: number }>[] = [];
    const r = new FrameEngine(sdResponseCodec(1 << 20, (h) => (h.id === 5 ? dest.subarray(3) : undefined)), { onFrame: (f) => seen.push(f) });
    const rs = Buffer.concat([sheepHeader(2, 0, 5, big.length), big, sheepHeader(2, 0, 6, 3), pattern(3, 6)]);
    for (let i = 0; i < rs.length; ) {
      const into = r.nextBuffer();
      const n = Math.min(50_000, into.length, rs.length - i);
      rs.copy(into, 0, i, i + n);
      r.consume(into, n);
      i += n;
    }
    expect(seen[0]?.payload?.buffer).toBe(dest.buffer);
    expect(dest.subarray(3, 3 + big.length)).toEqual(big);
    expect(dest[2]).toBe(0xaa);
    expect(seen[1]?.payload?.buffer).not.toBe(dest.buffer);
    expect(seen[1]?.payload).toEqual(pattern(3, 6));
  });

  it('drains an oversize payload unbuffered and stays in sync; buffered/draining/idle account for every byte', () => {
    const e = new FrameEngine(nbdRequestCodec(100), { payload: 'view' });
    e.push(nbdRequest(1, 1, 5000).subarray(0, 20));
    expect(e.next()).toBeUndefined();
    expect(e.buffered).toBe(20);
    expect(e.idle).toBe(false);
    e.push(nbdRequest(1, 1, 5000).subarray(20));
    const f = e.next();
    expect(f?.drained).toBe(true);
    expect(f?.payload).toBeUndefined();
    expect(e.draining).toBe(5000);
    e.push(Buffer.alloc(4999));
    expect(e.next()).toBeUndefined();
    expect(e.draining).toBe(1);
    e.push(Buffer.concat([Buffer.alloc(1), nbdRequest(3, 2, 0)]));
    expect(e.next()?.header.cookie).toBe(2n);
    expect(e.idle).toBe(true);
  });

  it('refuses an oversize length from the header alone, before the payload arrives', () => {
    const sheep = new FrameEngine(sdRequestCodec(1000));
    sheep.push(sheepHeader(4, 1, 1, 0xfffffff0));
    expect(() => sheep.next()).toThrow(SdProtocolError);
    const iscsi = new FrameEngine(new PduCodec({ maxDataSegmentLength: 8192 }));
    const bhs = Buffer.alloc(48);
    bhs.writeUIntBE(8193, 5, 3);
    expect(() => iscsi.consume(bhs, 48)).toThrow(FrameError);
    const nbd = new FrameEngine(nbdRequestCodec(1000));
    const bad = nbdRequest(0, 1, 0);
    bad[0] = 0;
    expect(() => nbd.consume(bad, 28)).toThrow(NbdProtocolError);
  });

  it('checks iSCSI digests; a data digest error names the PDU', () => {
    const d = { hd: true, dd: true };
    const good = iscsiPdu(1, pattern(10, 1), 77, d);
    const badHd = Buffer.from(good);
    badHd[52] = (badHd[52] as number) ^ 1;
    const badDd = Buffer.from(good);
    badDd[badDd.length - 1] = (badDd[badDd.length - 1] as number) ^ 1;
    const codec = (): PduCodec => new PduCodec({ headerDigest: true, dataDigest: true });
    expect(() => new FrameEngine(codec()).consume(badHd, badHd.length)).toThrow(expect.objectContaining({ code: 'EHDRDIGEST' }));
    try {
      new FrameEngine(codec()).consume(badDd, badDd.length);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(FrameError);
      expect((err as FrameError).code).toBe('EDATADIGEST');
      expect((err as FrameError).bhs).toEqual(good.subarray(0, 48));
    }
  });

  it('a codec change made while a frame is handed out applies from the next header (iSCSI digests after login)', () => {
    const login = iscsiPdu(0, pattern(8, 1), 1, { hd: false, dd: false });
    const next = iscsiPdu(0, pattern(9, 2), 2, { hd: true, dd: true });
    const codec = new PduCodec();
    const tags: number[] = [];
    const e = new FrameEngine(codec, {
      onFrame: (f) => {
        tags.push(f.header.bhs.readUInt32BE(16));
        codec.opts = { headerDigest: true, dataDigest: true, maxDataSegmentLength: 8192 };
      },
    });
    const both = Buffer.concat([login, next]);
    e.consume(both, both.length);
    expect(tags).toEqual([1, 2]);
  });
});

function pool(): PayloadMode {
  return { get: (n: number) => Buffer.allocUnsafe(n) };
}

/** True if `x` is a view of bytes inside `of`. */
function within(x: Buffer | undefined, of: Buffer): boolean {
  return x !== undefined && x.buffer === of.buffer && x.byteOffset >= of.byteOffset && x.byteOffset + x.length <= of.byteOffset + of.length;
}
