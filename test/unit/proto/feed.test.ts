// The event feed's pure parts: the first-bytes sniff (every split of `GET ` and of Sheepdog headers), the JSON
// codec (round trip of every event type, golden text written by hand, rejection of malformed input), and the
// subscription query (encode/parse, filtering).
import { describe, expect, it } from 'vitest';
import {
  decodeFeedEvent,
  encodeFeedEvent,
  encodeFeedQuery,
  matchesQuery,
  parseFeedQuery,
  parseFeedTypes,
  sniffConnection,
  type FeedEvent,
} from '../../../src/proto/feed.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('sniffConnection', () => {
  it('needs more bytes exactly while the bytes seen are a proper prefix of "GET "', () => {
    expect(sniffConnection(Buffer.alloc(0))).toBe('more');
    expect(sniffConnection(b('G'))).toBe('more');
    expect(sniffConnection(b('GE'))).toBe('more');
    expect(sniffConnection(b('GET'))).toBe('more');
    expect(sniffConnection(b('GET '))).toBe('http');
    expect(sniffConnection(b('GET /events HTTP/1.1\r\n'))).toBe('http');
  });

  it('is Sheepdog for every proto_ver byte and for anything that diverges from "GET "', () => {
    for (const v of [0x00, 0x01, 0x02, 0x0a]) expect(sniffConnection(Buffer.from([v, 0x11, 0, 0]))).toBe('sheep');
    expect(sniffConnection(b('GEX'))).toBe('sheep');
    expect(sniffConnection(b('GETX'))).toBe('sheep');
    expect(sniffConnection(b('get '))).toBe('sheep');
    expect(sniffConnection(b('POST /events'))).toBe('sheep');
    // A 48-byte Sheepdog header (proto_ver 0x02, opcode READ_OBJ 0x02) decides on its first byte.
    const hdr = Buffer.alloc(48);
    hdr[0] = 0x02;
    hdr[1] = 0x02;
    expect(sniffConnection(hdr.subarray(0, 1))).toBe('sheep');
  });
});

const samples: FeedEvent[] = [
  { type: 'hello', seq: 1, epoch: 3, ts: 1700000000000, node: '127.0.0.1:7000', version: 1 },
  {
    type: 'lock',
    seq: 2,
    epoch: 3,
    ts: 1700000000001,
    vid: 0x7c2b25,
    state: 'shared',
    participants: [
      { node: '127.0.0.1:7000', state: 'modified' },
      { node: '[fd53:4674:1:2:3:4:5:6]:0', target: 'host-b', state: 'invalidated' },
    ],
  },
  { type: 'lock', seq: 3, epoch: 3, ts: 1, vid: 5, state: 'locked', owner: '127.0.0.1:7001', participants: [], snapshot: true },
  { type: 'invalidate', seq: 4, epoch: 3, ts: 2, vid: 5, participant: '127.0.0.1:7001' },
  { type: 'invalidate', seq: 5, epoch: 3, ts: 2, vid: 5, participant: '[fd53::1]:0', target: 't1' },
  { type: 'node-join', seq: 6, epoch: 4, ts: 3, node: '127.0.0.1:7002', nodes: ['127.0.0.1:7000', '127.0.0.1:7002'] },
  { type: 'node-leave', seq: 7, epoch: 5, ts: 4, node: '127.0.0.1:7002', reason: 'failed', nodes: ['127.0.0.1:7000'] },
  { type: 'epoch', seq: 8, epoch: 5, ts: 5, nodes: ['127.0.0.1:7000'] },
  { type: 'recovery', seq: 9, epoch: 5, ts: 6, node: '127.0.0.1:7000', state: 'recovering', done: 3, total: 10, recoveryEpoch: 5 },
  { type: 'vdi', seq: 10, epoch: 5, ts: 7, vid: 6, action: 'snapshot', parent: 5 },
  { type: 'vdi', seq: 11, epoch: 5, ts: 7, vid: 6, action: 'delete' },
];

describe('event codec', () => {
  it('round-trips every event type', () => {
    for (const e of samples) expect(decodeFeedEvent(encodeFeedEvent(e))).toEqual(e);
  });

  it('decodes hand-written golden lines', () => {
    const line = '{"type":"invalidate","vid":8139557,"participant":"127.0.0.1:7001","seq":12,"epoch":2,"ts":99}';
    expect(decodeFeedEvent(line)).toEqual({ type: 'invalidate', vid: 8139557, participant: '127.0.0.1:7001', seq: 12, epoch: 2, ts: 99 });
    const lock = '{"type":"lock","vid":1,"state":"shared","participants":[{"node":"a:1","state":"shared"}],"seq":1,"epoch":1,"ts":1}';
    expect(decodeFeedEvent(lock)).toEqual({ type: 'lock', vid: 1, state: 'shared', participants: [{ node: 'a:1', state: 'shared' }], seq: 1, epoch: 1, ts: 1 });
  });

  it('encodes to the documented field names', () => {
    const text = encodeFeedEvent({ type: 'node-leave', seq: 7, epoch: 5, ts: 4, node: 'n:1', reason: 'graceful', nodes: [] });
    expect(JSON.parse(text)).toEqual({ type: 'node-leave', seq: 7, epoch: 5, ts: 4, node: 'n:1', reason: 'graceful', nodes: [] });
  });

  it('rejects malformed messages with a RangeError naming the problem', () => {
    expect(() => decodeFeedEvent('not json')).toThrow(/not JSON/);
    expect(() => decodeFeedEvent('[1]')).toThrow(/not an object/);
    expect(() => decodeFeedEvent('{"type":"bogus","seq":1,"epoch":1,"ts":1}')).toThrow(/unknown feed event type/);
    expect(() => decodeFeedEvent('{"type":"invalidate","vid":"5","participant":"x","seq":1,"epoch":1,"ts":1}')).toThrow(/'vid'/);
    expect(() => decodeFeedEvent('{"type":"invalidate","vid":-1,"participant":"x","seq":1,"epoch":1,"ts":1}')).toThrow(/'vid'/);
    expect(() => decodeFeedEvent('{"type":"lock","vid":1,"state":"shared","participants":[{"node":"a","state":"weird"}],"seq":1,"epoch":1,"ts":1}')).toThrow(/weird/);
    expect(() => decodeFeedEvent('{"type":"epoch","nodes":[1],"seq":1,"epoch":1,"ts":1}')).toThrow(/'nodes'/);
  });
});

describe('subscription query', () => {
  it('encodes and parses types, hex vids and snapshot', () => {
    const q = { types: parseFeedTypes('lock,invalidate'), vids: [0x7c2b25, 1], snapshot: true };
    const text = encodeFeedQuery(q);
    expect(text).toBe('types=lock,invalidate&vid=7c2b25,1&snapshot=1');
    expect(parseFeedQuery(text)).toEqual(q);
    expect(parseFeedQuery('')).toEqual({});
    expect(encodeFeedQuery({})).toBe('');
  });

  it('rejects unknown types and bad vids', () => {
    expect(() => parseFeedTypes('lock,nodes')).toThrow(/unknown event type 'nodes'/);
    expect(() => parseFeedQuery('vid=xyz')).toThrow(/bad vid 'xyz'/);
    expect(() => parseFeedQuery('vid=1000000')).toThrow(/bad vid/);
  });

  it('filters by type class and by vid only for events that carry one', () => {
    const [hello, lock, , inv, , join, leave, epoch] = samples as [FeedEvent, FeedEvent, FeedEvent, FeedEvent, FeedEvent, FeedEvent, FeedEvent, FeedEvent];
    const q = { types: parseFeedTypes('lock,invalidate,node'), vids: [5] };
    expect(matchesQuery(q, hello)).toBe(true);
    expect(matchesQuery(q, lock)).toBe(false); // vid 0x7c2b25
    expect(matchesQuery(q, inv)).toBe(true);
    expect(matchesQuery(q, join)).toBe(true);
    expect(matchesQuery(q, leave)).toBe(true);
    expect(matchesQuery(q, epoch)).toBe(false);
    expect(matchesQuery({}, epoch)).toBe(true);
  });
});
