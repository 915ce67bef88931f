// NBD server over an in-memory duplex, driven by our client: handshake, commands, errors, limits, ordering.
import { describe, it, expect, afterEach } from 'vitest';
import { MemoryDevice } from '../../../src/block/memory.js';
import { BlockError, type BlockDevice } from '../../../src/block/device.js';
import { NbdServer } from '../../../src/nbd/server.js';
import { NbdClient, NbdRequestError } from '../../../src/nbd/client.js';
import { NBD_ERRNO_BY_CODE } from '../../../src/nbd/errors.js';
import * as C from '../../../src/proto/nbd/constants.js';
import { encodeRequest } from '../../../src/proto/nbd/messages.js';
import type { ExportEntry } from '../../../src/block/export-table.js';
import type { NbdLimits } from '../../../src/nbd/connection.js';
import { duplexPair } from './pair.js';
import { ManualClock } from '../../../src/util/clock.js';
import { state } from '../../helpers/manual-time.js';

const MiB = 1024 * 1024;
const servers: NbdServer[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

function entry(name: string, device: BlockDevice, readOnly = false): ExportEntry {
  return { name, device, readOnly, description: `test ${name}` };
}

/** Distinct bytes everywhere, so a reply from the wrong place cannot pass. */
function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + (i >>> 12)) & 0xff;
  return b;
}

function setup(exports: ExportEntry[], limits: Partial<NbdLimits> = {}, clock?: ManualClock): { server: NbdServer; connect: () => NbdClient } {
  const server = new NbdServer({ exports: new Map(exports.map((e) => [e.name, e])), limits, ...(clock ? { clock } : {}) });
  servers.push(server);
  return {
    server,
    connect: () => {
      const [a, b] = duplexPair();
      server.serve(a);
      return new NbdClient(b);
    },
  };
}

async function errnoOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    if (err instanceof NbdRequestError) return err.errno;
    throw err;
  }
  return 0;
}

/** A device wrapper whose operations wait until released, to observe concurrency. */
class GatedDevice {
  active = 0;
  maxActive = 0;
  private gates: (() => void)[] = [];
  constructor(readonly inner: BlockDevice) {}
  release(): void {
    for (const g of this.gates.splice(0)) g();
  }
  get waiting(): number {
    return this.gates.length;
  }
  wrap(): BlockDevice {
    const gate = async <T>(fn: () => Promise<T>): Promise<T> => {
      this.active++;
      this.maxActive = Math.max(this.maxActive, this.active);
      await new Promise<void>((r) => this.gates.push(r));
      this.active--;
      return fn();
    };
    const d = this.inner;
    return {
      size: d.size,
      blockSize: d.blockSize,
      preferredBlockSize: d.preferredBlockSize,
      readOnly: d.readOnly,
      identity: d.identity,
      multiConn: d.multiConn,
      thin: false,
      read: (o, l) => gate(() => d.read(o, l)),
      write: (o, b, opt) => gate(() => d.write(o, b, opt)),
      flush: () => d.flush(),
      discard: (o, l) => d.discard(o, l),
      writeZeroes: (o, l, opt) => d.writeZeroes(o, l, opt),
      extents: (o, l) => d.extents(o, l),
      close: () => d.close(),
    };
  }
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
}

describe('NbdServer handshake', () => {
  it('lists exports and negotiates GO with structured replies and base:allocation', async () => {
    const { connect } = setup([entry('a', new MemoryDevice({ name: 'a', size: 4 * MiB })), entry('b', new MemoryDevice({ name: 'b', size: MiB }))]);
    const c = connect();
    const hs = await c.greet();
    expect(hs).toBe(C.NBD_FLAG_FIXED_NEWSTYLE | C.NBD_FLAG_NO_ZEROES);
    expect(await c.list()).toEqual([
      { name: 'a', description: 'test a' },
      { name: 'b', description: 'test b' },
    ]);
    const c2 = connect();
    const info = await c2.connect({ exportName: 'b' });
    expect(info.size).toBe(MiB);
    const f = info.transmissionFlags;
    for (const flag of [
      C.NBD_FLAG_HAS_FLAGS,
      C.NBD_FLAG_SEND_FLUSH,
      C.NBD_FLAG_SEND_FUA,
      C.NBD_FLAG_SEND_TRIM,
      C.NBD_FLAG_SEND_WRITE_ZEROES,
      C.NBD_FLAG_SEND_FAST_ZERO,
      C.NBD_FLAG_SEND_DF,
      C.NBD_FLAG_SEND_CACHE,
      C.NBD_FLAG_CAN_MULTI_CONN,
    ]) {
      expect(f & flag).toBe(flag);
    }
    expect(f & C.NBD_FLAG_READ_ONLY).toBe(0);
    expect(c2.structured).toBe(true);
    expect(c2.metaContextId).toBe(1);
    expect(info.maximumPayload).toBe(C.NBD_DEFAULT_MAX_PAYLOAD);
  });

  it('answers unknown exports with ERR_UNKNOWN and unknown options with ERR_UNSUP', async () => {
    const { connect } = setup([entry('a', new MemoryDevice({ name: 'a', size: MiB }))]);
    const c = connect();
    await c.greet();
    const r = await c.option(C.NBD_OPT_INFO, Buffer.from([0, 0, 0, 1, 0x7a, 0, 0]));
    expect(r.final).toBe(C.NBD_REP_ERR_UNKNOWN);
    expect((await c.option(99, Buffer.alloc(3))).final).toBe(C.NBD_REP_ERR_UNSUP);
    expect((await c.option(C.NBD_OPT_LIST, Buffer.alloc(1))).final).toBe(C.NBD_REP_ERR_INVALID);
    // SET_META_CONTEXT before structured replies is invalid.
    expect((await c.option(C.NBD_OPT_SET_META_CONTEXT, Buffer.alloc(8))).final).toBe(C.NBD_REP_ERR_INVALID);
    // STARTTLS on a TLS-off server: policy.
    expect((await c.option(C.NBD_OPT_STARTTLS, Buffer.alloc(0))).final).toBe(C.NBD_REP_ERR_POLICY);
    // Still usable after all the errors.
    expect((await c.list()).map((e) => e.name)).toEqual(['a']);
  });

  it('reports an oversize option with ERR_TOO_BIG and stays in sync', async () => {
    const { connect } = setup([entry('a', new MemoryDevice({ name: 'a', size: MiB }))], { maxOptionLength: 1024 });
    const c = connect();
    await c.greet();
    expect((await c.option(C.NBD_OPT_LIST, Buffer.alloc(5000))).final).toBe(C.NBD_REP_ERR_TOO_BIG);
    expect((await c.list()).length).toBe(1);
  });

  it('the empty name selects the first export', async () => {
    const { connect } = setup([entry('first', new MemoryDevice({ name: 'first', size: 2 * MiB }))]);
    const c = connect();
    expect((await c.connect()).size).toBe(2 * MiB);
  });
});

describe('NbdServer transmission', () => {
  it('writes, reads back, flushes, trims and zeroes', async () => {
    const dev = new MemoryDevice({ name: 'a', size: 8 * MiB });
    const { connect } = setup([entry('a', dev)]);
    const c = connect();
    await c.connect({ exportName: 'a' });
    const data = Buffer.alloc(256 * 1024, 0x5a);
    await c.write(MiB, data, C.NBD_CMD_FLAG_FUA);
    expect((await c.read(MiB, data.length)).equals(data)).toBe(true);
    await c.flush();
    await c.trim(MiB, 64 * 1024);
    expect((await c.read(MiB, 64 * 1024)).equals(Buffer.alloc(64 * 1024))).toBe(true);
    await c.writeZeroes(MiB + 64 * 1024, 64 * 1024, C.NBD_CMD_FLAG_NO_HOLE);
    expect((await c.read(MiB + 64 * 1024, 64 * 1024)).equals(Buffer.alloc(64 * 1024))).toBe(true);
    await c.cache(0, MiB);
    // A sparse read spanning a hole and data reassembles to the right bytes.
    const r = await c.read(MiB - 4096, 256 * 1024);
    expect(r.subarray(0, 4096 + 128 * 1024).equals(Buffer.alloc(4096 + 128 * 1024))).toBe(true);
    expect(r.subarray(4096 + 128 * 1024).equals(Buffer.alloc(256 * 1024 - 4096 - 128 * 1024, 0x5a))).toBe(true);
  });

  it('reports block status with holes and data, and REQ_ONE returns one extent', async () => {
    const dev = new MemoryDevice({ name: 'a', size: 4 * MiB });
    const { connect } = setup([entry('a', dev)]);
    const c = connect();
    await c.connect({ exportName: 'a' });
    await c.write(MiB, Buffer.alloc(MiB, 1));
    const d = await c.blockStatus(0, 4 * MiB);
    expect(d).toEqual([
      { length: MiB, flags: C.NBD_STATE_HOLE | C.NBD_STATE_ZERO },
      { length: MiB, flags: 0 },
      { length: 2 * MiB, flags: C.NBD_STATE_HOLE | C.NBD_STATE_ZERO },
    ]);
    expect(await c.blockStatus(512, 2 * MiB, C.NBD_CMD_FLAG_REQ_ONE)).toEqual([
      { length: MiB - 512, flags: C.NBD_STATE_HOLE | C.NBD_STATE_ZERO },
    ]);
  });

  it('answers invalid requests with errors and keeps serving; writes are not applied', async () => {
    const dev = new MemoryDevice({ name: 'a', size: MiB });
    const { connect } = setup([entry('a', dev)], { maxPayload: 64 * 1024 });
    const c = connect();
    await c.connect({ exportName: 'a' });
    expect(await errnoOf(c.read(MiB - 512, 1024))).toBe(C.NBD_EINVAL);
    expect(await errnoOf(c.write(MiB - 512, Buffer.alloc(1024, 7)))).toBe(C.NBD_ENOSPC);
    expect(await errnoOf(c.request(42, 0, 0, 0))).toBe(C.NBD_EINVAL);
    expect(await errnoOf(c.request(C.NBD_CMD_READ, C.NBD_CMD_FLAG_REQ_ONE, 0, 512))).toBe(C.NBD_EINVAL);
    expect(await errnoOf(c.read(0, 128 * 1024))).toBe(C.NBD_EOVERFLOW);
    expect(await errnoOf(c.request(C.NBD_CMD_READ, 0, 2n ** 63n, 512))).toBe(C.NBD_EINVAL);
    // An oversize write: the payload is drained, the request fails, the stream stays in sync.
    expect(await errnoOf(c.write(0, Buffer.alloc(128 * 1024, 9)))).toBe(C.NBD_EINVAL);
    expect(dev.allocated).toBe(0);
    await c.write(0, Buffer.alloc(512, 3));
    expect((await c.read(0, 512)).equals(Buffer.alloc(512, 3))).toBe(true);
  });

  it('refuses writes on a read-only export with EPERM', async () => {
    const dev = new MemoryDevice({ name: 'ro', size: MiB });
    const { connect } = setup([entry('ro', dev, true)]);
    const c = connect();
    const info = await c.connect({ exportName: 'ro' });
    expect(info.transmissionFlags & C.NBD_FLAG_READ_ONLY).toBe(C.NBD_FLAG_READ_ONLY);
    expect(await errnoOf(c.write(0, Buffer.alloc(512, 1)))).toBe(C.NBD_EPERM);
    expect(await errnoOf(c.trim(0, 512))).toBe(C.NBD_EPERM);
    expect(await errnoOf(c.writeZeroes(0, 512))).toBe(C.NBD_EPERM);
    expect((await c.read(0, 512)).equals(Buffer.alloc(512))).toBe(true);
  });

  it('uses simple replies when structured replies were not negotiated', async () => {
    const dev = new MemoryDevice({ name: 'a', size: MiB });
    const { connect } = setup([entry('a', dev)]);
    const c = connect();
    const info = await c.connect({ exportName: 'a', structured: false });
    expect(info.transmissionFlags & C.NBD_FLAG_SEND_DF).toBe(0);
    await c.write(4096, Buffer.alloc(4096, 0xee));
    expect((await c.read(0, 8192)).subarray(4096).equals(Buffer.alloc(4096, 0xee))).toBe(true);
    expect(await errnoOf(c.read(MiB, 1))).toBe(C.NBD_EINVAL);
    expect(await errnoOf(c.blockStatus(0, 512))).toBe(C.NBD_EINVAL);
  });

  it('handles requests concurrently, replies out of order, and bounds in-flight requests', async () => {
    const gated = new GatedDevice(new MemoryDevice({ name: 'g', size: MiB }));
    const { connect } = setup([entry('g', gated.wrap())], { maxInFlight: 4 });
    const c = connect();
    await c.connect({ exportName: 'g' });
    const order: number[] = [];
    const ps = Array.from({ length: 10 }, (_, i) => c.read(i * 4096, 4096).then(() => order.push(i)));
    await until(() => gated.waiting === 4);
    // Reading paused at the limit: no more than 4 reached the device.
    expect(gated.maxActive).toBe(4);
    for (let k = 0; k < 3; k++) {
      gated.release();
      await until(() => gated.waiting > 0 || order.length === 10);
    }
    gated.release();
    await until(() => order.length >= 8);
    gated.release();
    await Promise.all(ps);
    expect(gated.maxActive).toBeLessThanOrEqual(4);
    expect(order.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('answers a fast request before a slow one sent earlier', async () => {
    const mem = new MemoryDevice({ name: 'g', size: MiB });
    const gated = new GatedDevice(mem);
    const dev = gated.wrap();
    dev.flush = () => Promise.resolve();
    const { connect } = setup([entry('g', dev)]);
    const c = connect();
    await c.connect({ exportName: 'g' });
    const order: string[] = [];
    const slow = c.read(0, 512).then(() => order.push('read'));
    await until(() => gated.waiting === 1);
    await c.flush().then(() => order.push('flush'));
    gated.release();
    await slow;
    expect(order).toEqual(['flush', 'read']);
  });

  it('maps device errors through the one table', async () => {
    const mem = new MemoryDevice({ name: 'e', size: MiB });
    let code: keyof typeof NBD_ERRNO_BY_CODE = 'EIO';
    const dev: BlockDevice = Object.create(mem) as BlockDevice;
    dev.write = () => Promise.reject(new BlockError(code, 'injected'));
    const { connect } = setup([entry('e', dev)]);
    const c = connect();
    await c.connect({ exportName: 'e' });
    for (const [k, errno] of Object.entries(NBD_ERRNO_BY_CODE)) {
      code = k as typeof code;
      expect(await errnoOf(c.write(0, Buffer.alloc(512)))).toBe(errno);
    }
    expect(NBD_ERRNO_BY_CODE.EROFS).toBe(C.NBD_EPERM);
  });

  it('ends a handshake that does not finish within handshakeTimeoutMs (on the server clock), not before', async () => {
    const clock = new ManualClock();
    const { server } = setup([entry('a', new MemoryDevice({ name: 'a', size: MiB }))], { handshakeTimeoutMs: 5000 }, clock);
    const [a, b] = duplexPair();
    const conn = server.serve(a);
    b.resume();
    await clock.advance(4999);
    expect(await state(conn.closed)).toBe('pending');
    await clock.advance(1);
    expect(await state(conn.closed)).toBe('resolved');
    expect(a.destroyed).toBe(true);
    // A client that completes its handshake in time is not ended by the timer.
    const [a2, b2] = duplexPair();
    const conn2 = server.serve(a2);
    await new NbdClient(b2).connect({ exportName: 'a' });
    await clock.advance(60_000);
    expect(await state(conn2.closed)).toBe('pending');
  });

  it('closes the connection on bad request magic', async () => {
    const { server, connect } = setup([entry('a', new MemoryDevice({ name: 'a', size: MiB }))]);
    const [a, b] = duplexPair();
    const conn = server.serve(a);
    const c = new NbdClient(b);
    await c.connect({ exportName: 'a' });
    const bad = encodeRequest({ flags: 0, type: 0, cookie: 1n, offset: 0n, length: 512 });
    bad.writeUInt32BE(0xdeadbeef, 0);
    b.write(bad);
    await conn.closed;
    // Other clients are unaffected.
    const c2 = connect();
    await c2.connect({ exportName: 'a' });
    expect((await c2.read(0, 512)).length).toBe(512);
  });

  it('drains in-flight requests on stop, then closes', async () => {
    const gated = new GatedDevice(new MemoryDevice({ name: 'g', size: MiB }));
    const { server, connect } = setup([entry('g', gated.wrap())]);
    servers.splice(servers.indexOf(server), 1);
    const c = connect();
    await c.connect({ exportName: 'g' });
    const p = c.write(0, Buffer.alloc(512, 1));
    await until(() => gated.waiting === 1);
    const stopped = server.stop();
    gated.release();
    await p;
    await stopped;
    expect(server.connections).toBe(0);
  });
});

describe('NbdServer limits at limit + 1', () => {
  it('refuses the connection beyond maxConnections and drops a handshake beyond maxOptions', async () => {
    const net = await import('node:net');
    const dev = new MemoryDevice({ name: 'a', size: MiB });
    const server = new NbdServer({
      exports: new Map([['a', entry('a', dev)]]),
      host: '127.0.0.1',
      port: 0,
      maxConnections: 2,
      limits: { maxOptions: 3 },
    });
    servers.push(server);
    const addr = await server.start();
    const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
    const open = async (): Promise<NbdClient> => {
      const s = net.connect({ host: '127.0.0.1', port });
      await new Promise((r) => s.once('connect', r));
      return new NbdClient(s);
    };
    const c1 = await open();
    await c1.greet();
    const c2 = await open();
    await c2.greet();
    // The third is closed at once: no greeting arrives.
    const c3 = await open();
    await expect(c3.greet()).rejects.toThrow(/closed/);
    // maxOptions = 3: the fourth option ends the connection.
    for (let i = 0; i < 3; i++) expect((await c1.option(C.NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0))).final).toBeGreaterThan(0);
    await expect(c1.option(C.NBD_OPT_LIST, Buffer.alloc(0))).rejects.toThrow(/closed/);
    await until(() => server.connections === 1);
    // A slot is free again.
    const c4 = await open();
    expect(await c4.greet()).toBe(C.NBD_FLAG_FIXED_NEWSTYLE | C.NBD_FLAG_NO_ZEROES);
  });

  it('pauses at maxInFlightBytes: one request over the byte budget waits', async () => {
    const gated = new GatedDevice(new MemoryDevice({ name: 'g', size: 4 * MiB }));
    const { connect } = setup([entry('g', gated.wrap())], { maxInFlightBytes: 2 * MiB, maxInFlight: 64 });
    const c = connect();
    await c.connect({ exportName: 'g' });
    const ps = Array.from({ length: 4 }, (_, i) => c.read(i * MiB, MiB));
    // 1 MiB + 1 MiB reaches the budget, the third one passes (it is over the limit only after dispatch).
    await until(() => gated.waiting === 3);
    await new Promise((r) => setTimeout(r, 50));
    expect(gated.waiting).toBe(3);
    gated.release();
    await until(() => gated.waiting === 1);
    gated.release();
    await Promise.all(ps);
  });
});

describe('NbdServer reply backlog', () => {
  it('pauses while replies are not read and resumes when the client drains them', async () => {
    const dev = new MemoryDevice({ name: 'a', size: 8 * MiB });
    const bytes = pattern(8 * MiB);
    await dev.write(0, bytes);
    const { server } = setup([entry('a', dev)], { maxReplyBacklogBytes: 256 * 1024, maxInFlight: 4 });
    const [a, b] = duplexPair();
    server.serve(a);
    const c = new NbdClient(b);
    await c.connect({ exportName: 'a' });
    // Requests the server has taken off its socket (the client writes each 28-byte request on its own).
    let taken = 0;
    a.on('data', (chunk: Buffer) => (taken += chunk.length / 28));
    // Stop reading replies: the server's socket backlog grows past the limit and it stops taking requests.
    b.pause();
    let answered = 0;
    const reads = Array.from({ length: 40 }, (_, i) => c.read((i % 8) * MiB, MiB).then((x) => (answered++, x)));
    // Let the in-memory pair run until nothing moves (each step is one event-loop turn; no timers).
    for (let still = 0; still < 50; ) {
      const last = taken;
      await new Promise((r) => setImmediate(r));
      still = taken === last ? still + 1 : 0;
    }
    // Stalled: what was in flight when the backlog went over its limit, far from all 40; nothing answered.
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThanOrEqual(4 + 1);
    expect(answered).toBe(0);
    b.resume();
    const got = await Promise.all(reads);
    expect(taken).toBe(40);
    expect(got.every((x, i) => x.equals(bytes.subarray((i % 8) * MiB, (i % 8 + 1) * MiB)))).toBe(true);
  });
});
