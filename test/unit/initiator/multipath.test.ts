import { afterEach, describe, expect, it } from 'vitest';
import { MemoryDevice } from '../../../src/block/memory.js';
import { FaultProxy } from '../../../src/drill/faultproxy.js';
import { MultipathDevice, type MultipathEvent } from '../../../src/initiator/multipath.js';
import { discoverPaths } from '../../../src/initiator/discovery.js';
import { IscsiServer } from '../../../src/iscsi/server.js';
import { ephemeralPort } from '../../helpers/ports.js';
import { IscsiSession } from '../../../src/initiator/scsi.js';
import { ScsiStatusError } from '../../../src/initiator/errors.js';
import type { AluaState, TargetPortGroup } from '../../../src/proto/scsi/pages.js';
import { encodeSense } from '../../../src/proto/scsi/sense.js';
import { IQN, startTarget, VerifyLoop, waitFor, type TestTarget } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SIZE = 16 * 1024 * 1024;

/** Two in-process targets exporting the same memory device: two paths to one LU. */
async function twoTargets(): Promise<{ device: MemoryDevice; a: TestTarget; b: TestTarget }> {
  const device = new MemoryDevice({ name: 'shared', size: SIZE });
  const a = await startTarget({ device });
  const b = await startTarget({ device });
  cleanups.push(() => a.stop(), () => b.stop());
  return { device, a, b };
}

function mp(ports: number[], extra: Partial<ConstructorParameters<typeof MultipathDevice>[0]> = {}): MultipathDevice {
  const dev = new MultipathDevice({
    paths: ports.map((port, i) => ({ name: `p${i}`, priority: i, session: { host: '127.0.0.1', port, targetName: IQN } })),
    ioTimeoutMs: 1500,
    probeIntervalMs: 100,
    nopIntervalMs: 300,
    ...extra,
  });
  cleanups.push(() => dev.close());
  return dev;
}

const types = (evs: MultipathEvent[]): string[] => evs.map((e) => `${e.type}:${e.path}`);

describe('MultipathDevice', () => {
  it('opens two paths to one LU and presents it as a BlockDevice', async () => {
    const { device, a, b } = await twoTargets();
    const dev = mp([a.port, b.port]);
    await dev.open();
    expect(dev.size).toBe(SIZE);
    expect(dev.blockSize).toBe(512);
    expect(dev.identity.naaId).toBe(device.identity.naaId);
    expect(dev.status().map((p) => p.state)).toEqual(['active', 'active']);
    const data = Buffer.alloc(12345, 7);
    await dev.write(4096, Buffer.concat([data, Buffer.alloc(512 * 25 - data.length)]));
    expect((await dev.read(4096 + 100, 1000)).equals(data.subarray(100, 1100))).toBe(true);
    await dev.flush();
    await dev.writeZeroes(4096, 8192);
    expect((await dev.read(4096, 8192)).equals(Buffer.alloc(8192))).toBe(true);
    await expect(dev.write(1, Buffer.alloc(512))).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(dev.read(SIZE - 512, 1024)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it.each(['naa', 't10', 'serial'] as const)('refuses paths that reach different LUs (identity by %s)', async (identityBy) => {
    const a = await startTarget({ device: new MemoryDevice({ name: 'one', size: SIZE }) });
    const b = await startTarget({ device: new MemoryDevice({ name: 'two', size: SIZE }) });
    cleanups.push(() => a.stop(), () => b.stop());
    const dev = mp([a.port, b.port], { identityBy });
    await dev.open();
    const st = dev.status();
    expect(st.map((p) => p.state)).toEqual(['active', 'failed']); // the first listed path defines the LU
    expect(st[1]?.lastError).toMatch(/differs/);
  });

  it('fails over when a path dies under load, with no error to the caller, then fails back', async () => {
    const { a, b } = await twoTargets();
    const dev = mp([a.port, b.port]);
    await dev.open();
    const loop = new VerifyLoop(dev, { workers: 4, blocksPerWorker: 16, blockBytes: 4096 });
    await waitFor(() => loop.ops > 50, 'I/O on the first path');
    await a.stop();
    await waitFor(() => dev.failovers().length > 0, 'failover');
    const after = loop.ops;
    await waitFor(() => loop.ops > after + 50, 'I/O on the second path');
    // Bring path 0 back on the same port: it is probed, reinstated, and I/O fails back to it.
    const a2 = await startTarget({ device: a.device, server: { port: a.port } });
    cleanups.push(() => a2.stop());
    await waitFor(() => dev.events.some((e) => e.type === 'switch' && e.path === 'p0' && e.from === 'p1'), 'failback');
    const back = dev.status()[0]?.ios ?? 0;
    await waitFor(() => (dev.status()[0]?.ios ?? 0) > back + 50, 'I/O on the first path again');
    await loop.stop();
    expect(loop.errors).toEqual([]);
    expect(loop.mismatches).toBe(0);
    expect(await loop.verifyAll()).toBe(0);
    const evs = types(dev.events);
    expect(evs).toContain('fail:p0');
    expect(evs).toContain('switch:p1');
    expect(evs).toContain('failover:p1');
    expect(evs).toContain('reinstate:p0');
    const f = dev.failovers()[0] as MultipathEvent;
    expect(f.from).toBe('p0');
    expect(f.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('fails over on a timeout (blackholed path) and reinstates it when the network heals', async () => {
    const { a, b } = await twoTargets();
    const proxy = new FaultProxy({ targetHost: '127.0.0.1', targetPort: a.port });
    const pport = await proxy.start();
    cleanups.push(() => proxy.stop());
    const dev = mp([pport, b.port]);
    await dev.open();
    const loop = new VerifyLoop(dev, { workers: 2, blocksPerWorker: 16, blockBytes: 4096 });
    await waitFor(() => loop.ops > 20, 'I/O on the first path');
    proxy.set({ blackhole: true });
    await waitFor(() => dev.failovers().length > 0, 'failover after timeout');
    const after = loop.ops;
    await waitFor(() => loop.ops > after + 20, 'I/O on the second path');
    proxy.heal();
    await waitFor(() => dev.events.some((e) => e.type === 'reinstate' && e.path === 'p0'), 'reinstatement');
    await loop.stop();
    expect(loop.errors).toEqual([]);
    expect(loop.mismatches).toBe(0);
    expect(dev.events.find((e) => e.type === 'fail' && e.path === 'p0')?.reason).toMatch(/timed out|ping/);
  });

  it('prefers active/optimized over active/non-optimized and follows ALUA changes on unit attention', async () => {
    const { a, b } = await twoTargets();
    /** A session whose REPORT TARGET PORT GROUPS answer is set by the test. */
    class AluaSession extends IscsiSession {
      alua: AluaState = 'active/optimized';
      override reportTargetPortGroups(): Promise<TargetPortGroup[]> {
        return Promise.resolve([{ preferred: false, state: this.alua, stateCode: 0, supported: 0xff, id: 1, statusCode: 0, relativeTargetPorts: [1] }]);
      }
    }
    const sa = new AluaSession({ host: '127.0.0.1', port: a.port, targetName: IQN, name: 'A', nopIntervalMs: 0 });
    const sb = new AluaSession({ host: '127.0.0.1', port: b.port, targetName: IQN, name: 'B', nopIntervalMs: 0 });
    sa.alua = 'active/non-optimized';
    const dev = new MultipathDevice({ paths: [{ session: sa }, { session: sb }], aluaRefreshMs: 0, probeIntervalMs: 100 });
    cleanups.push(() => dev.close());
    await dev.open();
    await dev.write(0, Buffer.alloc(4096, 1));
    expect(dev.status().map((p) => p.ios)).toEqual([0, 1]);
    // The target flips the states and raises UNIT ATTENTION 2A/06 on the path that served I/O.
    sa.alua = 'active/optimized';
    sb.alua = 'standby';
    sb.emit('unit-attention', new ScsiStatusError(2, encodeSense({ key: 6, ascq: 0x2a06 }), 'test'));
    await waitFor(() => dev.status()[1]?.alua === 'standby', 'ALUA refresh');
    await dev.write(0, Buffer.alloc(4096, 2));
    expect(dev.status().map((p) => p.ios)).toEqual([1, 1]);
    expect(types(dev.events)).toContain('alua:B');
    expect(dev.events.some((e) => e.type === 'switch' && e.path === 'A' && e.from === 'B')).toBe(true);
  });

  it('builds its paths from SendTargets', async () => {
    const device = new MemoryDevice({ name: 'shared', size: SIZE });
    const ports = [await ephemeralPort(), await ephemeralPort()];
    const portals = ports.map((p) => `127.0.0.1:${p}`);
    for (const port of ports) {
      const srv = new IscsiServer({ host: '127.0.0.1', port, targets: [{ name: IQN, luns: [{ lun: 0, device }], portals }] });
      await srv.start();
      cleanups.push(() => srv.stop());
    }
    const paths = await discoverPaths({ host: '127.0.0.1', port: ports[0], targetName: IQN, session: { nopIntervalMs: 0 } });
    expect(paths.map((p) => p.name)).toEqual(portals);
    const dev = new MultipathDevice({ paths, probeIntervalMs: 100 });
    cleanups.push(() => dev.close());
    await dev.open();
    expect(dev.status().map((p) => p.state)).toEqual(['active', 'active']);
    await expect(discoverPaths({ host: '127.0.0.1', port: ports[0], targetName: 'iqn.none:x' })).rejects.toThrow(/does not list/);
  });

  it('takes a path out of service by hand and gives it back', async () => {
    const { a, b } = await twoTargets();
    const dev = mp([a.port, b.port]);
    await dev.open();
    await dev.write(0, Buffer.alloc(4096, 1));
    dev.setPathEnabled('p0', false);
    await dev.write(0, Buffer.alloc(4096, 2));
    await new Promise((r) => setTimeout(r, 300)); // several probe rounds: a disabled path stays out
    expect(dev.status().map((p) => [p.state, p.ios])).toEqual([['failed', 1], ['active', 1]]);
    dev.setPathEnabled('p0', true);
    await waitFor(() => dev.status()[0]?.state === 'active', 'reinstated');
    expect((await dev.read(0, 4096)).equals(Buffer.alloc(4096, 2))).toBe(true);
    expect(dev.status()[0]?.ios).toBe(2);
    expect(dev.events.find((e) => e.type === 'fail')?.reason).toBe('disabled by the operator');
  });

  it('maps discard, write-zeroes and extents to UNMAP, WRITE SAME and GET LBA STATUS on a thin LU', async () => {
    const { a, b } = await twoTargets();
    const dev = mp([a.port, b.port]);
    await dev.open();
    expect(dev.thin).toBe(true);
    const chunk = 64 * 1024; // the memory device's allocation unit
    await dev.write(0, Buffer.alloc(4 * chunk, 9));
    expect(await dev.extents(0, 8 * chunk)).toEqual([
      { offset: 0, length: 4 * chunk, allocated: true, zero: false },
      { offset: 4 * chunk, length: 4 * chunk, allocated: false, zero: true },
    ]);
    await dev.discard(chunk, chunk);
    expect((await dev.read(chunk, chunk)).equals(Buffer.alloc(chunk))).toBe(true);
    expect((await dev.extents(0, 4 * chunk)).map((e) => e.allocated)).toEqual([true, false, true]);
    await dev.writeZeroes(2 * chunk, chunk, { mayTrim: true });
    expect((await dev.read(0, 4 * chunk)).equals(Buffer.concat([Buffer.alloc(chunk, 9), Buffer.alloc(2 * chunk), Buffer.alloc(chunk, 9)]))).toBe(true);
    await expect(dev.discard(100, 512)).rejects.toMatchObject({ code: 'EINVAL' });
  });
});
