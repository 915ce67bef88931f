// SheepClient and SheepTransport against the in-process fake sheep: typed helpers, pipelining with
// out-of-order replies, timeouts, bounded in-flight, reconnect with idempotent re-send, LOCK never re-sent,
// gateway failover with events, and the "cannot connect" message.
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { SheepClient, SheepError, SheepNetError, parseGateway, parseGatewayList } from '../../../src/client/index.js';
import { makeRequest, vidToDataOid, vidToVdiOid, sdHashVdi } from '../../../src/proto/sheepdog/index.js';
import { FakeSheep } from './fake-sheep.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function fake(opts = {}): Promise<FakeSheep> {
  const s = new FakeSheep(opts);
  await s.start();
  cleanups.push(() => s.stop());
  return s;
}

function client(gateways: string, extra = {}): SheepClient {
  const c = new SheepClient({ gateways, reconnectTimeoutMs: 2000, ...extra });
  cleanups.push(() => c.close());
  return c;
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen({ host: '127.0.0.1', port: 0 }, r));
  const a = s.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('gateway addresses', () => {
  it('parses host:port, bare host, unix paths and lists', () => {
    expect(parseGateway('10.0.0.1:7001')).toEqual({ kind: 'tcp', host: '10.0.0.1', port: 7001 });
    expect(parseGateway('localhost')).toEqual({ kind: 'tcp', host: 'localhost', port: 7000 });
    expect(parseGateway('[::1]:7002')).toEqual({ kind: 'tcp', host: '::1', port: 7002 });
    expect(parseGateway('unix:/tmp/s/sock')).toEqual({ kind: 'unix', path: '/tmp/s/sock' });
    expect(parseGateway('/tmp/s/sock')).toEqual({ kind: 'unix', path: '/tmp/s/sock' });
    expect(parseGatewayList('a:1,b:2')).toHaveLength(2);
    expect(() => parseGateway('a:99999')).toThrow(/invalid port/);
    expect(() => parseGateway('a b')).toThrow(/invalid gateway/);
  });
});

describe('SheepClient ops', () => {
  it('creates a VDI, writes and reads objects, reports NO_OBJ as a SheepError', async () => {
    const s = await fake();
    const c = client(s.addr);
    const info = await c.newVdi({ name: 'alpha', size: 64n << 20n });
    expect(info.vid).toBe(sdHashVdi('alpha'));
    expect((await c.getVdiInfo('alpha')).vid).toBe(info.vid);
    const oid = vidToDataOid(info.vid, 3);
    await c.createAndWriteObj(oid, Buffer.from('hello'), { offset: 100 });
    await c.writeObj(oid, Buffer.from('HE'), { offset: 100 });
    expect((await c.readObj(oid, 5, { offset: 100 })).toString()).toBe('HEllo');
    const err = await c.readObj(vidToDataOid(info.vid, 4), 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SheepError);
    expect((err as SheepError).result).toBe(C.SD_RES_NO_OBJ);
    expect((err as SheepError).message).toMatch(/No object found/);
    const ino = await c.readInode(info.vid);
    expect(ino.name).toBe('alpha');
    expect(ino.vdiSize).toBe(64n << 20n);
    expect(await c.exist(oid)).toBe(true);
    expect(await c.oidsExist([oid, vidToDataOid(info.vid, 9)])).toEqual([vidToDataOid(info.vid, 9)]);
    expect((await c.getHash(oid)).length).toBe(20);
    await c.removeObj(oid);
    expect(await c.exist(oid)).toBe(false);
    await c.removeObj(oid, { missingOk: true });
  });

  it('sends exactly the header fields dog sends for NEW_VDI, GET_VDI_INFO and COW creates', async () => {
    const s = await fake();
    const c = client(s.addr);
    const base = await c.newVdi({ name: 'b', size: 8n << 20n, copies: 2, blockSizeShift: 22 });
    const nv = s.log.find((r) => r.opcode === C.SD_OP_NEW_VDI)!;
    expect(nv.dataLength).toBe(256);
    expect(nv.flags).toBe(C.SD_FLAG_CMD_WRITE);
    expect(nv.protoVer).toBe(C.SD_PROTO_VER);
    expect(nv.args).toMatchObject({ kind: 'vdi', vdiSize: 8n << 20n, copies: 2, blockSizeShift: 22, snapid: 0 });
    await c.createAndWriteObj(vidToDataOid(base.vid, 0), Buffer.from('x'), { cowOid: vidToDataOid(base.vid, 1) }).catch(() => undefined);
    const cr = s.log.find((r) => r.opcode === C.SD_OP_CREATE_AND_WRITE_OBJ)!;
    expect(cr.flags).toBe(C.SD_FLAG_CMD_WRITE | C.SD_FLAG_CMD_COW);
    expect(cr.args).toMatchObject({ kind: 'obj', cowOid: vidToDataOid(base.vid, 1) });
    await c.getVdiInfo('b', { tag: 'snap1' }).catch(() => undefined);
    const gi = s.log.find((r) => r.opcode === C.SD_OP_GET_VDI_INFO)!;
    expect(gi.dataLength).toBe(512);
    const ns = s.log.find((r) => r.opcode === C.SD_OP_GET_NODE_LIST);
    expect(ns).toBeUndefined();
    await c.getNodeList();
    expect(s.log.at(-1)!.protoVer).toBe(C.SD_SHEEP_PROTO_VER);
  });

  it('decodes node list, cluster stat, cluster info, vdi copies and bitmaps', async () => {
    const s = await fake();
    const c = client(s.addr);
    const { vid } = await c.newVdi({ name: 'v1', size: 1n << 30n });
    const nl = await c.getNodeList();
    expect(nl.nodes).toHaveLength(1);
    expect(nl.nodes[0]!.nid.port).toBe(s.port);
    expect(nl.epoch).toBe(1);
    const st = await c.statCluster(1, 1);
    expect(st.status).toBe(C.SD_RES_SUCCESS);
    expect(st.logs[0]!.drvName).toBe('plain');
    const ci = await c.clusterInfo();
    expect(ci.ctime).toBe(s.ctime);
    expect((await c.readVdis()).test(vid)).toBe(true);
    expect((await c.readDelVdis()).test(vid)).toBe(false);
    const lk = await c.lockVdi('v1');
    expect(lk.vid).toBe(vid);
    const states = await c.getVdiCopies();
    expect(states.find((x) => x.vid === vid)!.lockState).toBe(C.LOCK_STATE_LOCKED);
    await expect(c.lockVdi('v1')).rejects.toMatchObject({ result: C.SD_RES_VDI_LOCKED });
    await c.releaseVdi(vid);
    expect((await c.getVdiCopies()).find((x) => x.vid === vid)!.lockState).toBe(C.LOCK_STATE_UNLOCKED);
    await expect(c.getVdiInfo('nope')).rejects.toMatchObject({ result: C.SD_RES_NO_VDI, message: 'nope: No VDI found' });
  });
});

describe('SheepTransport', () => {
  it('pipelines requests over one connection and matches out-of-order replies by id', async () => {
    const s = await fake();
    const c = client(s.addr, { poolSize: 1 });
    const { vid } = await c.newVdi({ name: 'p', size: 64n << 20n });
    for (let i = 0; i < 8; i++) await c.createAndWriteObj(vidToDataOid(vid, i), Buffer.from(`obj${i}`));
    // Delay replies in reverse order of arrival.
    let n = 0;
    s.hook = async (req) => {
      if (req.opcode !== C.SD_OP_READ_OBJ) return undefined;
      const k = n++;
      await new Promise((r) => setTimeout(r, (8 - k) * 15));
      return undefined;
    };
    const got = await Promise.all([...Array(8).keys()].map((i) => c.readObj(vidToDataOid(vid, i), 4)));
    expect(got.map((b) => b.toString())).toEqual([...Array(8).keys()].map((i) => `obj${i}`));
    const ids = s.log.filter((r) => r.opcode === C.SD_OP_READ_OBJ).map((r) => r.id);
    expect(new Set(ids).size).toBe(8);
  });

  it('bounds requests in flight', async () => {
    const s = await fake();
    const c = client(s.addr, { maxInFlight: 3 });
    const { vid } = await c.newVdi({ name: 'b', size: 64n << 20n });
    await c.createAndWriteObj(vidToDataOid(vid, 0), Buffer.from('z'));
    let inServer = 0;
    let peak = 0;
    s.hook = async (req) => {
      if (req.opcode !== C.SD_OP_READ_OBJ) return undefined;
      inServer++;
      peak = Math.max(peak, inServer);
      await new Promise((r) => setTimeout(r, 10));
      inServer--;
      return undefined;
    };
    await Promise.all([...Array(20).keys()].map(() => c.readObj(vidToDataOid(vid, 0), 1)));
    expect(peak).toBe(3);
  });

  it('fails a silent request with ETIMEDOUT and recovers on a new connection', async () => {
    const s = await fake();
    const c = client(s.addr, { maxResends: 0 });
    s.hook = (req) => (req.opcode === C.SD_OP_STAT_SHEEP ? { action: 'hang' } : undefined);
    const err = await c.transport.request(makeRequest(C.SD_OP_STAT_SHEEP), { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SheepNetError);
    expect((err as SheepNetError).code).toBe('ETIMEDOUT');
    s.hook = null;
    expect((await c.statSheep()).storeSize).toBe(1n << 40n);
  });

  it('re-sends idempotent requests after the connection drops, emitting disconnect and reconnect', async () => {
    const s = await fake();
    const c = client(s.addr);
    const events: string[] = [];
    c.transport.on('disconnect', () => events.push('disconnect'));
    c.transport.on('reconnect', () => events.push('reconnect'));
    const { vid } = await c.newVdi({ name: 'r', size: 64n << 20n });
    let dropped = false;
    s.hook = (req) => {
      if (req.opcode === C.SD_OP_CREATE_AND_WRITE_OBJ && !dropped) {
        dropped = true;
        return { action: 'drop' };
      }
      return undefined;
    };
    await c.createAndWriteObj(vidToDataOid(vid, 0), Buffer.from('data'));
    expect((await c.readObj(vidToDataOid(vid, 0), 4)).toString()).toBe('data');
    expect(s.log.filter((r) => r.opcode === C.SD_OP_CREATE_AND_WRITE_OBJ)).toHaveLength(2);
    expect(events).toEqual(['disconnect', 'reconnect']);
  });

  it('never re-sends a LOCK_VDI whose reply was lost and reports the lock state it found', async () => {
    const s = await fake();
    const c = client(s.addr);
    await c.newVdi({ name: 'l', size: 64n << 20n });
    s.hook = (req, payload) => {
      if (req.opcode === C.SD_OP_LOCK_VDI) {
        s.process(req, payload); // the lock is taken...
        return { action: 'drop' }; // ...but the reply is lost
      }
      return undefined;
    };
    const err = await c.lockVdi('l').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SheepNetError);
    expect((err as SheepNetError).code).toBe('EUNCERTAIN');
    expect((err as Error).message).toMatch(/not re-sent; the VDI is now locked/);
    expect(s.log.filter((r) => r.opcode === C.SD_OP_LOCK_VDI)).toHaveLength(1);
  });

  it('fails over to the next gateway when the current one dies', async () => {
    const a = await fake();
    const b = await fake();
    const c = client(`${a.addr},${b.addr}`);
    const events: string[] = [];
    c.transport.on('disconnect', (e) => events.push(`disconnect ${e.gateway}`));
    c.transport.on('failover', (e) => events.push(`failover ${e.from} ${e.to}`));
    c.transport.on('reconnect', (e) => events.push(`reconnect ${e.gateway}`));
    await c.statSheep();
    await a.stop();
    const st = await c.statSheep();
    expect(st.storeSize).toBe(1n << 40n);
    expect(c.gatewayLabel).toBe(b.addr);
    expect(events).toEqual([`disconnect ${a.addr}`, `failover ${a.addr} ${b.addr}`, `reconnect ${b.addr}`]);
  });

  it('says "cannot connect to H:P: connection refused" when no sheep listens', async () => {
    const port = await closedPort();
    const c = client(`127.0.0.1:${port}`, { reconnectTimeoutMs: 0 });
    await expect(c.statSheep()).rejects.toMatchObject({
      code: 'ECONNECT',
      message: `cannot connect to 127.0.0.1:${port}: connection refused`,
    });
  });

  it('talks over a unix socket', async () => {
    const s = new FakeSheep();
    await s.start(true);
    cleanups.push(() => s.stop());
    const c = client(`unix:${s.sockPath}`);
    expect((await c.getNodeList()).nodes).toHaveLength(1);
    expect(vidToVdiOid(1) > 0n).toBe(true);
  });
});
