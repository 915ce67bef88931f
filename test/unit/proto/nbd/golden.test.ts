// Golden byte vectors written by hand from proto.md (field by field, big-endian), never produced by our
// encoder: each encoder must produce them and each decoder must read them back.
import { describe, it, expect } from 'vitest';
import * as C from '../../../../src/proto/nbd/constants.js';
import * as M from '../../../../src/proto/nbd/messages.js';

/** Hex with spaces/newlines ignored. */
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const cat = (...b: Buffer[]): Buffer => Buffer.concat(b);

describe('NBD golden vectors', () => {
  it('greeting: NBDMAGIC IHAVEOPT flags', () => {
    const g = hex('4e42444d41474943 49484156454f5054 0003');
    expect(Buffer.from('NBDMAGICIHAVEOPT').equals(g.subarray(0, 16))).toBe(true);
    expect(M.encodeGreeting(C.NBD_FLAG_FIXED_NEWSTYLE | C.NBD_FLAG_NO_ZEROES).equals(g)).toBe(true);
    expect(M.decodeGreeting(g)).toEqual({ handshakeFlags: 3 });
  });

  it('client flags', () => {
    expect(M.encodeClientFlags(3).equals(hex('00000003'))).toBe(true);
  });

  it('option request header: IHAVEOPT, NBD_OPT_GO (7), length 12', () => {
    const h = hex('49484156454f5054 00000007 0000000c');
    expect(M.encodeOptionHeader(C.NBD_OPT_GO, 12).equals(h)).toBe(true);
    expect(M.decodeOptionHeader(h)).toEqual({ option: 7, length: 12 });
  });

  it('NBD_OPT_GO data: name "disk", two info requests (NAME, BLOCK_SIZE)', () => {
    const d = hex('00000004 6469736b 0002 0001 0003');
    expect(M.encodeInfoRequest({ name: 'disk', requests: [1, 3] }).equals(d)).toBe(true);
    expect(M.decodeInfoRequest(d)).toEqual({ name: 'disk', requests: [1, 3] });
  });

  it('NBD_OPT_SET_META_CONTEXT data: name "", one query "base:allocation"', () => {
    const d = cat(hex('00000000 00000001 0000000f'), Buffer.from('base:allocation'));
    expect(M.encodeMetaContextRequest({ name: '', queries: ['base:allocation'] }).equals(d)).toBe(true);
    expect(M.decodeMetaContextRequest(d)).toEqual({ name: '', queries: ['base:allocation'] });
  });

  it('option reply header: magic 0x3e889045565a9, option 3, NBD_REP_SERVER (2), length 5', () => {
    const h = hex('0003e889045565a9 00000003 00000002 00000005');
    expect(M.encodeOptionReplyHeader(C.NBD_OPT_LIST, C.NBD_REP_SERVER, 5).equals(h)).toBe(true);
    expect(M.decodeOptionReplyHeader(h)).toEqual({ option: 3, type: 2, length: 5 });
  });

  it('error reply types have bit 31 set', () => {
    expect(C.NBD_REP_ERR_UNSUP).toBe(2 ** 31 + 1);
    expect(C.NBD_REP_ERR_TLS_REQD).toBe(2 ** 31 + 5);
    expect(C.NBD_REP_ERR_TOO_BIG).toBe(2 ** 31 + 9);
    expect(M.encodeOptionReplyHeader(5, C.NBD_REP_ERR_TLS_REQD, 0).subarray(12, 16).equals(hex('80000005'))).toBe(
      true,
    );
  });

  it('NBD_REP_SERVER data: name "a" and description "x"', () => {
    const d = hex('00000001 61 78');
    expect(M.encodeRepServer('a', 'x').equals(d)).toBe(true);
    expect(M.decodeRepServer(d)).toEqual({ name: 'a', description: 'x' });
  });

  it('NBD_INFO_EXPORT: type 0, size 1 GiB, flags 0x0d6d', () => {
    const d = hex('0000 0000000040000000 0d6d');
    expect(M.encodeInfoReply({ type: C.NBD_INFO_EXPORT, size: 1n << 30n, transmissionFlags: 0x0d6d }).equals(d)).toBe(
      true,
    );
    expect(M.decodeInfoReply(d)).toEqual({ type: 0, size: 1n << 30n, transmissionFlags: 0x0d6d });
  });

  it('NBD_INFO_BLOCK_SIZE: 1, 4096, 32 MiB', () => {
    const d = hex('0003 00000001 00001000 02000000');
    expect(M.encodeInfoReply({ type: C.NBD_INFO_BLOCK_SIZE, minimum: 1, preferred: 4096, maximum: 1 << 25 }).equals(d)).toBe(
      true,
    );
    expect(M.decodeInfoReply(d)).toEqual({ type: 3, minimum: 1, preferred: 4096, maximum: 1 << 25 });
  });

  it('NBD_REP_META_CONTEXT: id 1, "base:allocation"', () => {
    const d = cat(hex('00000001'), Buffer.from('base:allocation'));
    expect(M.encodeRepMetaContext(1, 'base:allocation').equals(d)).toBe(true);
    expect(M.decodeRepMetaContext(d)).toEqual({ id: 1, name: 'base:allocation' });
  });

  it('EXPORT_NAME reply: size, flags, then 124 zeroes unless NO_ZEROES', () => {
    const short = hex('0000000000100000 0003');
    expect(M.encodeExportNameReply(1n << 20n, 3, true).equals(short)).toBe(true);
    expect(M.encodeExportNameReply(1n << 20n, 3, false).equals(cat(short, Buffer.alloc(124)))).toBe(true);
  });

  it('request: magic 0x25609513, FUA, WRITE, cookie, offset 4096, length 512', () => {
    const r = hex('25609513 0001 0001 0102030405060708 0000000000001000 00000200');
    const req = { flags: 1, type: 1, cookie: 0x0102030405060708n, offset: 4096n, length: 512 };
    expect(M.encodeRequest(req).equals(r)).toBe(true);
    expect(M.decodeRequest(r)).toEqual(req);
  });

  it('simple reply: magic 0x67446698, error EIO, cookie', () => {
    const r = hex('67446698 00000005 00000000000000ff');
    expect(M.encodeSimpleReply(C.NBD_EIO, 255n).equals(r)).toBe(true);
    expect(M.decodeSimpleReply(r)).toEqual({ error: 5, cookie: 255n });
  });

  it('structured NONE: magic 0x668e33ef, DONE, type 0, length 0', () => {
    const r = hex('668e33ef 0001 0000 0000000000000009 00000000');
    expect(M.encodeReplyNone(9n).equals(r)).toBe(true);
    expect(M.decodeStructuredReplyHeader(r)).toEqual({ flags: 1, type: 0, cookie: 9n, length: 0 });
  });

  it('structured OFFSET_DATA header: length = 8 + data, then the offset', () => {
    const r = hex('668e33ef 0001 0001 0000000000000002 00000018 0000000000000200');
    expect(M.encodeOffsetDataHeader(C.NBD_REPLY_FLAG_DONE, 2n, 512n, 16).equals(r)).toBe(true);
    const chunk = M.decodeStructuredChunk(1, cat(hex('0000000000000200'), Buffer.alloc(16, 0xaa)));
    expect(chunk).toEqual({ type: 1, offset: 512n, data: Buffer.alloc(16, 0xaa) });
  });

  it('structured OFFSET_HOLE: length 12, offset, hole size', () => {
    const r = hex('668e33ef 0000 0002 0000000000000003 0000000c 0000000000100000 00010000');
    expect(M.encodeOffsetHole(0, 3n, 1n << 20n, 65536).equals(r)).toBe(true);
    expect(M.decodeStructuredChunk(2, r.subarray(20))).toEqual({ type: 2, offset: 1n << 20n, holeSize: 65536 });
  });

  it('structured BLOCK_STATUS: context 1, two descriptors', () => {
    const r = hex('668e33ef 0001 0005 0000000000000004 00000014 00000001 00010000 00000003 00020000 00000000');
    const descs = [
      { length: 65536, flags: C.NBD_STATE_HOLE | C.NBD_STATE_ZERO },
      { length: 131072, flags: 0 },
    ];
    expect(M.encodeBlockStatus(1, 4n, 1, descs).equals(r)).toBe(true);
    expect(M.decodeStructuredChunk(5, r.subarray(20))).toEqual({ type: 5, contextId: 1, descriptors: descs });
  });

  it('structured ERROR: type 2^15+1, errno, message length, message', () => {
    const r = cat(hex('668e33ef 0001 8001 0000000000000005 00000008 00000016 0002'), Buffer.from('no'));
    expect(M.encodeReplyError(1, 5n, C.NBD_EINVAL, 'no').equals(r)).toBe(true);
    expect(M.decodeStructuredChunk(0x8001, r.subarray(20))).toEqual({ type: 0x8001, error: 22, message: 'no' });
  });

  it('structured ERROR_OFFSET: errno, message, then offset', () => {
    const r = cat(
      hex('668e33ef 0001 8002 0000000000000006 0000000f 00000005 0001'),
      Buffer.from('x'),
      hex('0000000000000400'),
    );
    expect(M.encodeReplyErrorOffset(1, 6n, C.NBD_EIO, 'x', 1024n).equals(r)).toBe(true);
    expect(M.decodeStructuredChunk(0x8002, r.subarray(20))).toEqual({
      type: 0x8002,
      error: 5,
      message: 'x',
      offset: 1024n,
    });
  });

  it('errno values are the spec numbers', () => {
    expect([C.NBD_EPERM, C.NBD_EIO, C.NBD_ENOMEM, C.NBD_EINVAL, C.NBD_ENOSPC, C.NBD_EOVERFLOW, C.NBD_ENOTSUP, C.NBD_ESHUTDOWN]).toEqual([
      1, 5, 12, 22, 28, 75, 95, 108,
    ]);
  });

  it('rejects bad magic and malformed content', () => {
    expect(() => M.decodeRequest(Buffer.alloc(28))).toThrow(/magic/);
    expect(() => M.decodeGreeting(Buffer.alloc(18))).toThrow(/NBDMAGIC/);
    expect(() => M.decodeInfoRequest(hex('00000009 61 0000'))).toThrow(/name length/);
    expect(() => M.decodeInfoRequest(hex('00000001 61 0002 0001'))).toThrow(/count/);
    expect(() => M.decodeMetaContextRequest(hex('00000000 ffffffff'))).toThrow(/too many/);
    expect(() => M.decodeInfoRequest(hex('00000001 00 0000'))).toThrow(/NUL/);
    expect(() => M.decodeStructuredChunk(5, hex('00000001'))).toThrow(/BLOCK_STATUS/);
  });
});
