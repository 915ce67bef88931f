// The fault proxy forwards bytes intact, drops them in a blackhole or one-way partition, keeps order under
// jitter, caps bandwidth, and resets connections.
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { FaultProxy } from '../../../src/drill/faultproxy.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An echo server plus a proxy in front of it. */
async function setup(): Promise<{ proxy: FaultProxy; port: number }> {
  const echo = net.createServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const a = echo.address();
  const proxy = new FaultProxy({ targetHost: '127.0.0.1', targetPort: typeof a === 'object' && a ? a.port : 0 });
  const port = await proxy.start();
  cleanups.push(() => new Promise<void>((r) => echo.close(() => r())));
  cleanups.push(() => proxy.stop());
  return { proxy, port };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
    cleanups.push(() => void s.destroy());
  });
}

function collect(s: net.Socket, n: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let got = 0;
    const t = setTimeout(() => reject(new Error(`only ${got}/${n} bytes`)), timeoutMs);
    s.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= n) {
        clearTimeout(t);
        resolve(Buffer.concat(parts));
      }
    });
  });
}

describe('fault proxy', () => {
  it('forwards 4 MiB intact and in order under delay and jitter', async () => {
    const { proxy, port } = await setup();
    proxy.set({ delayMs: 2, jitterMs: 5 });
    const s = await connect(port);
    const data = Buffer.alloc(4 << 20);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
    const back = collect(s, data.length);
    for (let i = 0; i < data.length; i += 65536) s.write(data.subarray(i, i + 65536));
    expect((await back).equals(data)).toBe(true);
  });

  it('blackhole drops bytes silently both ways; healing restores flow on the same connection', async () => {
    const { proxy, port } = await setup();
    const s = await connect(port);
    proxy.set({ blackhole: true });
    s.write(Buffer.from('lost'));
    await new Promise((r) => setTimeout(r, 100));
    expect(proxy.droppedBytes).toBe(4);
    proxy.heal();
    const back = collect(s, 5);
    s.write(Buffer.from('alive'));
    expect((await back).toString()).toBe('alive');
  });

  it('one-way partition drops only the server→client direction', async () => {
    const { proxy, port } = await setup();
    const s = await connect(port);
    proxy.set({ drop: 'down' });
    let received = 0;
    s.on('data', (d: Buffer) => (received += d.length));
    s.write(Buffer.from('ping'));
    const until = Date.now() + 5000;
    while (proxy.droppedBytes < 4 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(proxy.droppedBytes).toBe(4); // reached the echo server, its reply was dropped
    expect(received).toBe(0);
  });

  it('bandwidth cap slows but delivers everything', async () => {
    const { proxy, port } = await setup();
    proxy.set({ bandwidthBps: 2_000_000 });
    const s = await connect(port);
    const data = Buffer.alloc(300_000, 7);
    const back = collect(s, data.length);
    s.write(data);
    expect((await back).equals(data)).toBe(true);
  });

  it('reset destroys open connections with an error on the client', async () => {
    const { proxy, port } = await setup();
    const s = await connect(port);
    const closed = new Promise<string>((resolve) => {
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.on('close', () => resolve('close'));
    });
    await new Promise((r) => setTimeout(r, 20));
    proxy.reset();
    expect(['ECONNRESET', 'close']).toContain(await closed);
    expect(proxy.openConnections).toBe(0);
  });
});
