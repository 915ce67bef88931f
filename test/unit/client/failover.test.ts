// Gateway failover on a silent gateway: a fake sheep behind a blackholing fault proxy is found by the probe
// (or a request timeout), marked suspect, and the request in flight is re-sent on the next gateway; a
// single-gateway (sheep-to-sheep) client fails fast while its gateway is suspect and recovers after healing.
// Also: peers are reached at their advertised io address.
import { afterEach, describe, expect, it } from 'vitest';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { SheepClient, SheepNetError } from '../../../src/client/index.js';
import { FaultProxy } from '../../../src/drill/faultproxy.js';
import { addrBytes, makeNodeId, vidToDataOid } from '../../../src/proto/sheepdog/index.js';
import { peerIoAddr } from '../../../src/sheep/peer-pool.js';
import { ManualClock } from '../../../src/util/clock.js';
import { settle, state, until } from '../../helpers/manual-time.js';
import { FakeSheep } from './fake-sheep.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function fake(): Promise<FakeSheep> {
  const s = new FakeSheep();
  await s.start();
  cleanups.push(() => s.stop());
  return s;
}

async function proxyTo(s: FakeSheep): Promise<{ proxy: FaultProxy; addr: string }> {
  const proxy = new FaultProxy({ targetHost: '127.0.0.1', targetPort: s.port });
  const port = await proxy.start();
  cleanups.push(() => proxy.stop());
  return { proxy, addr: `127.0.0.1:${port}` };
}

function client(gateways: string, extra: Partial<ConstructorParameters<typeof SheepClient>[0]> = {}): SheepClient {
  const c = new SheepClient({ gateways, connectTimeoutMs: 1000, reconnectTimeoutMs: 5000, probeAfterMs: 200, probeTimeoutMs: 300, ...extra });
  cleanups.push(() => c.close());
  return c;
}

describe('failover from a silent gateway', () => {
  it('probes a gateway that stopped answering, marks it suspect and re-sends on the next gateway', async () => {
    const a = await fake();
    const b = await fake();
    const pa = await proxyTo(a);
    const clock = new ManualClock();
    const c = client(`${pa.addr},${b.addr}`, { requestTimeoutMs: 600_000, clock });
    const events: string[] = [];
    c.transport.on('suspect', (e) => events.push(`suspect ${e.gateway}`));
    c.transport.on('failover', (e) => events.push(`failover ${e.from} ${e.to}`));
    const oid = vidToDataOid(7, 0);
    await c.createAndWriteObj(oid, Buffer.alloc(4096, 1));
    b.objects.set(oid, Buffer.from(a.objects.get(oid) ?? Buffer.alloc(0)));
    pa.proxy.set({ blackhole: true });
    const w = c.writeObj(oid, Buffer.alloc(512, 2), { offset: 512 });
    // Probing starts once the request has waited probeAfterMs (200) and a probe gets probeTimeoutMs (300).
    // Small steps: real I/O (the probe's connection) gets many event-loop turns per probe timeout.
    const took = await settle(clock, w, 10_000, 5);
    await w;
    expect(took).toBeGreaterThanOrEqual(200 + 300);
    expect(c.gatewayLabel).toBe(b.addr);
    expect(events).toEqual([`suspect ${pa.addr}`, `failover ${pa.addr} ${b.addr}`]);
    expect(c.transport.suspectGateways).toEqual([pa.addr]);
    expect(b.objects.get(oid)?.subarray(512, 1024)).toEqual(Buffer.alloc(512, 2));
    // Healed: the background probe clears the suspicion.
    pa.proxy.heal();
    const alive = new Promise<string[]>((resolve) => c.transport.once('alive', () => resolve(c.transport.suspectGateways)));
    await settle(clock, alive, 10_000, 5);
    expect(await alive).toEqual([]);
  });

  it('treats a request timeout as a dead gateway even without probes', async () => {
    const a = await fake();
    const b = await fake();
    const pa = await proxyTo(a);
    const clock = new ManualClock();
    const c = client(`${pa.addr},${b.addr}`, { requestTimeoutMs: 300, probeAfterMs: 0, clock });
    await c.statSheep();
    pa.proxy.set({ drop: 'down' });
    const p = c.statSheep();
    // The request is on the wire with its timeout armed; without time passing nothing happens.
    await until(() => clock.pending > 0);
    expect(await state(p)).toBe('pending');
    await clock.advance(299);
    expect(await state(p)).toBe('pending');
    expect(c.gatewayLabel).toBe(pa.addr);
    // At the timeout the gateway counts as dead and the request is re-sent on the next one.
    await settle(clock, p);
    expect((await p).storeSize).toBe(1n << 40n);
    expect(c.gatewayLabel).toBe(b.addr);
  });

  it('fails fast with ECONNECT while its only gateway is suspect (one-pass client), and recovers', async () => {
    const a = await fake();
    const pa = await proxyTo(a);
    const c = client(pa.addr, { reconnectTimeoutMs: 0, maxResends: 0, requestTimeoutMs: 600_000 });
    await c.statSheep();
    pa.proxy.set({ blackhole: true });
    const first = await c.statSheep().catch((e: unknown) => e);
    expect(first).toBeInstanceOf(SheepNetError);
    const second = await c.statSheep().catch((e: unknown) => e);
    expect(second).toMatchObject({ code: 'ECONNECT' });
    expect((second as Error).message).toMatch(/suspect/);
    pa.proxy.heal();
    await new Promise<void>((resolve) => c.transport.once('alive', () => resolve()));
    expect((await c.statSheep()).storeSize).toBe(1n << 40n);
  });

  it('never re-sends a fenced write past its deadline on the next gateway', async () => {
    const a = await fake();
    const b = await fake();
    const pa = await proxyTo(a);
    const clock = new ManualClock();
    const c = client(`${pa.addr},${b.addr}`, { requestTimeoutMs: 600_000, clock });
    const oid = vidToDataOid(7, 1);
    await c.createAndWriteObj(oid, Buffer.alloc(4096, 1));
    pa.proxy.set({ blackhole: true });
    const w = c.writeObj(oid, Buffer.alloc(512, 3), { notAfter: clock.now() + 100 });
    w.catch(() => undefined);
    await until(() => clock.pending > 0);
    const took = await settle(clock, w, 10_000, 10);
    const err = await w.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SheepNetError);
    expect(took).toBe(100);
    expect(b.log.filter((r) => r.opcode === C.SD_OP_WRITE_OBJ)).toHaveLength(0);
  });
});

describe('peer io address', () => {
  it('uses the advertised io address when there is one, else the identity address', () => {
    const nid = makeNodeId('127.0.0.1', 7000);
    expect(peerIoAddr(nid)).toEqual({ host: '127.0.0.1', port: 7000 });
    expect(peerIoAddr({ ...nid, ioAddr: addrBytes('127.0.0.2'), ioPort: 9001 })).toEqual({ host: '127.0.0.2', port: 9001 });
  });
});
