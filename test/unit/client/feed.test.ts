// FeedClient against real in-process sheep: hello and events decoded, the subscription query honoured, and the
// connection followed through a sheep restart on the same port (reconnect with backoff, a second hello).
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FeedClient, feedUrl, type FeedEvent } from '../../../src/client/feed.js';
import { startSheep, type RunningSheep } from '../../../src/sheep/index.js';
import { ephemeralPort } from '../../helpers/ports.js';

const dirs: string[] = [];
const running: RunningSheep[] = [];
const clients: FeedClient[] = [];

async function sheepOn(port: number): Promise<RunningSheep> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feed-client-'));
  dirs.push(dir);
  const s = await startSheep({ dir, port });
  running.push(s);
  return s;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of running.splice(0)) await s.stop();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('FeedClient', () => {
  it('builds tcp, IPv6 and unix URLs with the query', () => {
    expect(feedUrl({ kind: 'tcp', host: '127.0.0.1', port: 7000 }, { types: ['lock'], vids: [255] })).toBe('ws://127.0.0.1:7000/events?types=lock&vid=ff');
    expect(feedUrl({ kind: 'tcp', host: '::1', port: 7000 })).toBe('ws://[::1]:7000/events');
    expect(feedUrl({ kind: 'unix', path: '/run/sheep/sock' }, { snapshot: true })).toBe('ws+unix:///run/sheep/sock:/events?snapshot=1');
  });

  it('receives hello and filtered events, and follows the sheep through a restart on the same port', async () => {
    const first = await sheepOn(0);
    const port = first.port;
    const events: FeedEvent[] = [];
    const hellos: string[] = [];
    const c = new FeedClient({ gateway: { kind: 'tcp', host: '127.0.0.1', port }, query: { types: ['epoch'] }, minBackoffMs: 20, maxBackoffMs: 200 });
    clients.push(c);
    c.on('event', (e) => events.push(e));
    c.on('connected', (h) => hellos.push(h.node));
    c.start();
    await until(() => hellos.length === 1, 'first hello');
    expect(hellos[0]).toBe(`127.0.0.1:${port}`);
    expect(c.node).toBe(`127.0.0.1:${port}`);
    first.server.feed?.publish({ type: 'vdi', vid: 1, action: 'create' }); // not subscribed
    first.server.feed?.publish({ type: 'epoch', nodes: ['x:1'] });
    await until(() => events.some((e) => e.type === 'epoch'), 'epoch event');
    expect(events.map((e) => e.type)).toEqual(['hello', 'epoch']);
    await first.stop();
    running.splice(running.indexOf(first), 1);
    await until(() => !c.connected, 'disconnect');
    const second = await sheepOn(port);
    await until(() => hellos.length === 2, 'second hello');
    second.server.feed?.publish({ type: 'epoch', nodes: ['y:2'] });
    await until(() => events.filter((e) => e.type === 'epoch').length === 2, 'epoch after reconnect');
    const last = events.at(-1);
    expect(last?.type === 'epoch' ? last.nodes : null).toEqual(['y:2']);
  });

  it('reports failed attempts (retry) while nothing listens, then connects once a sheep does', async () => {
    const port = await ephemeralPort();
    const retries: { error: string; delayMs: number }[] = [];
    const c = new FeedClient({ gateway: { kind: 'tcp', host: '127.0.0.1', port }, minBackoffMs: 20, maxBackoffMs: 80 });
    clients.push(c);
    c.on('retry', (r) => retries.push(r));
    c.start();
    await until(() => retries.length >= 3, 'three retries');
    expect(retries[0]?.error).toMatch(/ECONNREFUSED/);
    expect(retries.slice(0, 3).map((r) => r.delayMs)).toEqual([20, 40, 80]);
    await sheepOn(port);
    await until(() => c.connected, 'connection');
    expect(c.node).toBe(`127.0.0.1:${port}`);
  });
});
