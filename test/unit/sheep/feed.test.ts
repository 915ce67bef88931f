// The sheep's event feed on its own port: routing by first bytes (HTTP split into 1-byte chunks, a Sheepdog
// request split the same way, garbage that starts like `GET` still gets the Sheepdog handling), 404 for other
// paths, the hello and the lock/invalidate/vdi events of a walk through §7.4 (in order, with content), the lock
// diff itself, the snapshot at subscribe, and the limits: slow subscribers and dead ones are dropped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { decodeResponseHeader } from '../../../src/proto/sheepdog/header.js';
import { makeNodeId } from '../../../src/proto/sheepdog/node.js';
import { vidToDataOid } from '../../../src/proto/sheepdog/oid.js';
import { decodeFeedEvent, type FeedEvent } from '../../../src/proto/feed.js';
import { toWireNodeId } from '../../../src/sheep/cluster/messages.js';
import { diffLocks } from '../../../src/sheep/feed.js';
import { startSheep, type RunningSheep } from '../../../src/sheep/index.js';
import { SheepWire, okReply } from '../../helpers/sheep-wire.js';

const B = makeNodeId('127.0.0.2', 7001);
let dir: string;
let sheep: RunningSheep;
let w: SheepWire;
let vid = 0;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sheep-feed-'));
  sheep = await startSheep({ dir, port: 0 });
  w = await SheepWire.connect({ port: sheep.port });
  okReply(await w.makeFs({ copies: 1, flags: C.SD_CLUSTER_FLAG_USE_LOCK }));
});

afterAll(async () => {
  w.close();
  await sheep.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A subscriber collecting decoded events. */
async function subscribe(query = ''): Promise<{ ws: WebSocket; events: FeedEvent[]; next(n: number): Promise<FeedEvent[]> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${sheep.port}/events${query ? `?${query}` : ''}`);
  const events: FeedEvent[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (d) => {
    events.push(decodeFeedEvent(String(d)));
    wake?.();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let taken = 0;
  const next = async (n: number): Promise<FeedEvent[]> => {
    const deadline = Date.now() + 20_000;
    while (events.length < taken + n) {
      if (Date.now() > deadline) throw new Error(`only ${events.length - taken} of ${n} events: ${JSON.stringify(events.slice(taken))}`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 200);
      });
    }
    const out = events.slice(taken, taken + n);
    taken += n;
    return out;
  };
  return { ws, events, next };
}

/** Raw TCP: write `chunks` one by one (each its own write, flushed), collect what comes back until close or `until`. */
async function raw(chunks: Buffer[], until: (got: Buffer) => boolean): Promise<Buffer> {
  const s = net.connect(sheep.port, '127.0.0.1');
  s.setNoDelay(true);
  await new Promise<void>((r) => s.once('connect', () => r()));
  let got = Buffer.alloc(0);
  const done = new Promise<void>((resolve) => {
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (until(got)) resolve();
    });
    s.on('close', () => resolve());
  });
  for (const c of chunks) {
    await new Promise<void>((r) => s.write(c, () => r()));
    await new Promise((r) => setTimeout(r, 5));
  }
  await done;
  s.destroy();
  return got;
}

const bytes = (s: string): Buffer[] => [...Buffer.from(s, 'latin1')].map((x) => Buffer.from([x]));

describe('routing on the sheep port', () => {
  it('serves a WebSocket upgrade sent one byte per write, and 404 for another path', async () => {
    const key = Buffer.alloc(16, 7).toString('base64');
    const up = `GET /events?types=node HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    const r = await raw(bytes(up), (g) => g.includes('"type":"hello"'));
    const text = r.toString('latin1');
    expect(text.startsWith('HTTP/1.1 101 Switching Protocols\r\n')).toBe(true);
    expect(text).toContain(`"node":"127.0.0.1:${sheep.port}"`);
    const nf = await raw(bytes('GET /nope HTTP/1.1\r\nHost: x\r\n\r\n'), (g) => g.includes('\r\n\r\n'));
    expect(nf.toString('latin1').split('\r\n')[0]).toBe('HTTP/1.1 404 Not Found');
    const bad = await raw([Buffer.from('GET /events?vid=zz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' + `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`)], () => false);
    expect(bad.toString('latin1')).toMatch(/^HTTP\/1\.1 400 Bad Request[\s\S]*bad vid 'zz'/);
  });

  it('answers a Sheepdog request whose header arrives one byte per write', async () => {
    const req = Buffer.alloc(48);
    req[0] = C.SD_SHEEP_PROTO_VER; // 0x0a: an internal op
    req[1] = C.SD_OP_GET_NODE_LIST;
    req.writeUInt32LE(42, 8); // id
    req.writeUInt32LE(4096, 12); // data_length
    const r = await raw([...req].map((x) => Buffer.from([x])), (g) => g.length >= 48);
    const rsp = decodeResponseHeader(r.subarray(0, 48));
    expect(rsp.id).toBe(42);
    expect(rsp.result).toBe(C.SD_RES_SUCCESS);
  });

  it('gives bytes that only start like GET the Sheepdog error handling (VER_MISMATCH)', async () => {
    const req = Buffer.alloc(48);
    req.write('GEX', 0, 'latin1'); // proto_ver 0x47
    req.writeUInt32LE(7, 8);
    const r = await raw(bytes('GE').concat([req.subarray(2)]), (g) => g.length >= 48);
    const rsp = decodeResponseHeader(r.subarray(0, 48));
    expect(rsp.id).toBe(7);
    expect(rsp.result).toBe(C.SD_RES_VER_MISMATCH);
  });
});

describe('events', () => {
  it('pushes vdi, lock and invalidate events of a §7.4 walk in order, with participants', async () => {
    const sub = await subscribe();
    const [hello] = await sub.next(1);
    expect(hello).toMatchObject({ type: 'hello', node: `127.0.0.1:${sheep.port}`, version: 1 });
    vid = (okReply(await w.newVdi('feed', 16n << 20n)).rsp.args as { vdiId: number }).vdiId;
    expect(await sub.next(1)).toMatchObject([{ type: 'vdi', vid, action: 'create' }]);
    const A = `127.0.0.1:${sheep.port}`;
    okReply(await w.lock('feed'));
    expect(await sub.next(1)).toMatchObject([{ type: 'lock', vid, state: 'shared', participants: [{ node: A, state: 'modified' }] }]);
    // B joins the shared lock (as its own cluster op would): INVALIDATED from the start, announced.
    await sheep.node.clusterOp({ t: 'lock', token: '', vid, type: C.LOCK_TYPE_SHARED, sender: toWireNodeId(B) });
    expect(await sub.next(2)).toMatchObject([
      { type: 'lock', vid, participants: [{ node: A, state: 'modified' }, { node: '127.0.0.2:7001', state: 'invalidated' }] },
      { type: 'invalidate', vid, participant: '127.0.0.2:7001' },
    ]);
    // B's refresh read validates: everyone SHARED, no invalidation.
    await sheep.node.clusterOp({ t: 'coherence', token: '', vid, validate: true, sender: toWireNodeId(B) });
    expect(await sub.next(1)).toMatchObject([{ type: 'lock', participants: [{ state: 'shared' }, { state: 'shared' }] }]);
    // Our index write invalidates B again.
    okReply(await w.create(vidToDataOid(vid, 0), 0, Buffer.alloc(512, 1), { flags: C.SD_FLAG_CMD_TGT }));
    okReply(await w.setIndex(vid, 0, vid, C.SD_FLAG_CMD_TGT | C.SD_FLAG_CMD_WRITE));
    const evs = await sub.next(2);
    expect(evs).toMatchObject([
      { type: 'lock', participants: [{ node: A, state: 'modified' }, { node: '127.0.0.2:7001', state: 'invalidated' }] },
      { type: 'invalidate', vid, participant: '127.0.0.2:7001' },
    ]);
    // seq grows by one per event of this sheep.
    expect((evs[1] as FeedEvent).seq).toBe((evs[0] as FeedEvent).seq + 1);
    // A second index write changes nothing: no event (the next one is the release).
    okReply(await w.setIndex(vid, 0, vid, C.SD_FLAG_CMD_TGT | C.SD_FLAG_CMD_WRITE));
    okReply(await w.release(vid));
    expect(await sub.next(1)).toMatchObject([{ type: 'lock', participants: [{ node: '127.0.0.2:7001', state: 'invalidated' }] }]);
    sub.ws.close();
  });

  it('sends the current lock state at subscribe with snapshot=1, filtered by vid', async () => {
    const sub = await subscribe(`types=lock,invalidate&vid=${vid.toString(16)}&snapshot=1`);
    const [hello, snap] = await sub.next(2);
    expect(hello?.type).toBe('hello');
    expect(snap).toMatchObject({ type: 'lock', vid, snapshot: true, state: 'shared', participants: [{ node: '127.0.0.2:7001', state: 'invalidated' }] });
    sub.ws.close();
  });

  it('names a target participant by its target id', () => {
    const t = makeNodeId('fd53:4674::1', 0); // shaped like a target's synthetic id (docs/fencing.md §3)
    const name = (nid: typeof t) => (nid === t ? { node: 'T', target: 'host-a' } : { node: 'G' });
    const out = diffLocks(
      new Map([[9, { state: C.LOCK_STATE_SHARED, owner: null, participants: [{ nid: t, state: C.SHARED_LOCK_STATE_SHARED }, { nid: B, state: C.SHARED_LOCK_STATE_MODIFIED }] }]]),
      new Map([[9, { state: C.LOCK_STATE_SHARED, owner: null, participants: [{ nid: t, state: C.SHARED_LOCK_STATE_INVALIDATED }, { nid: B, state: C.SHARED_LOCK_STATE_MODIFIED }] }]]),
      name,
    );
    expect(out).toEqual([
      { type: 'lock', vid: 9, state: 'shared', participants: [{ node: 'T', target: 'host-a', state: 'invalidated' }, { node: 'G', state: 'modified' }] },
      { type: 'invalidate', vid: 9, participant: 'T', target: 'host-a' },
    ]);
    // Unchanged state: nothing; unlocked after: one unlocked lock event, no invalidation.
    const same = new Map([[9, { state: C.LOCK_STATE_LOCKED, owner: B, participants: [] }]]);
    expect(diffLocks(same, new Map([[9, { state: C.LOCK_STATE_LOCKED, owner: B, participants: [] }]]), name)).toEqual([]);
    expect(diffLocks(same, new Map(), name)).toEqual([{ type: 'lock', vid: 9, state: 'unlocked', participants: [] }]);
  });
});

describe('limits', () => {
  /** A subscriber that completes the upgrade and then never reads (nor answers pings). */
  async function stalled(): Promise<net.Socket> {
    const s = net.connect(sheep.port, '127.0.0.1');
    const key = Buffer.alloc(16, 3).toString('base64');
    s.write(`GET /events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await new Promise<void>((r) => s.once('data', () => r()));
    s.pause();
    return s;
  }

  it('drops a subscriber that does not keep up (bounded buffer), others keep receiving', async () => {
    const feed = sheep.server.feed;
    if (!feed) throw new Error('no feed');
    const limits = { ...feed.limits };
    Object.assign(feed.limits, { maxBufferedBytes: 64 * 1024 });
    try {
      const s = await stalled();
      const live = await subscribe('types=epoch');
      await live.next(1);
      const before = feed.subscribers;
      const big = 'x'.repeat(32 * 1024);
      for (let i = 0; i < 2000 && feed.droppedSlow === 0; i++) {
        feed.publish({ type: 'epoch', nodes: [big] });
        await new Promise((r) => setImmediate(r));
      }
      expect(feed.droppedSlow).toBe(1);
      // The live subscriber got events after the stalled one was dropped.
      feed.publish({ type: 'epoch', nodes: ['after'] });
      const deadline = Date.now() + 20_000;
      while (!live.events.some((e) => e.type === 'epoch' && e.nodes[0] === 'after') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(live.events.some((e) => e.type === 'epoch' && e.nodes[0] === 'after')).toBe(true);
      expect(before).toBeGreaterThanOrEqual(2);
      s.destroy();
      live.ws.close();
    } finally {
      Object.assign(feed.limits, limits);
    }
  });

  it('ends an HTTP exchange that never completes its request', async () => {
    const feed = sheep.server.feed;
    if (!feed) throw new Error('no feed');
    const saved = feed.limits.httpTimeoutMs;
    feed.limits.httpTimeoutMs = 100;
    try {
      const got = await raw(bytes('GET /events HTTP/1.1\r\nHost: x\r\n'), () => false); // resolves on close
      expect(got.length).toBe(0);
    } finally {
      feed.limits.httpTimeoutMs = saved;
    }
  });

  it('ends a subscriber that stops answering pings', async () => {
    const feed = sheep.server.feed;
    if (!feed) throw new Error('no feed');
    const deadline0 = Date.now() + 20_000;
    while (feed.subscribers > 0 && Date.now() < deadline0) await new Promise((r) => setTimeout(r, 20));
    feed.setHeartbeat(50);
    try {
      const s = await stalled();
      expect(feed.subscribers).toBe(1);
      const deadline = Date.now() + 20_000;
      while (feed.subscribers > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(feed.subscribers).toBe(0);
      s.destroy();
    } finally {
      feed.setHeartbeat(15_000);
    }
  });
});
