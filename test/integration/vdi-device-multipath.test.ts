// VdiDevice on a real three-sheep cluster: two devices open the same VDI with SHARED locks through two
// different gateway sheep (multipath) and stay coherent (each one's allocations are seen by the other through
// INODE_INVALIDATED and a reload; dog shows the MSI states); and a device with a gateway list fails over to
// the next sheep when its gateway is SIGKILLed, emitting disconnect/failover/reconnect, with no I/O error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { VdiDevice } from '../../src/block/vdi.js';
import { SheepClient } from '../../src/client/index.js';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';
import { dogOk, startCluster, type SheepProc } from './dog-harness.js';

const MiB = 2 ** 20;

/** Poll until `cond` holds (generous deadline for a loaded CI machine). */
async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * INODE_COHERENCE is acknowledged once the writer's own sheep applied it; the reader's sheep applies it from
 * the cluster log a moment later. Wait until the reader's sheep shows the reader INVALIDATED.
 */
async function invalidatedOn(node: SheepProc): Promise<void> {
  await waitFor(`invalidation on ${node.addr}`, async () =>
    (await dogOk(node.port, ['vdi', 'lock', 'list'])).includes(`port:${node.port}(invalidated)`),
  );
}
let nodes: SheepProc[];
beforeAll(async () => {
  nodes = await startCluster(3);
  await dogOk(nodes[0]!.port, ['cluster', 'format', '-c', '3']);
  await dogOk(nodes[0]!.port, ['vdi', 'create', 'mp', '64M']);
  await dogOk(nodes[0]!.port, ['vdi', 'create', 'fo', '16M']);
});
afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe('VdiDevice multipath and failover (real three-sheep cluster)', () => {
  it('keeps two shared-lock devices behind different sheep coherent', async () => {
    const a = await VdiDevice.open({ gateways: nodes[0]!.addr, vdi: 'mp', shared: true });
    const b = await VdiDevice.open({ gateways: nodes[1]!.addr, vdi: 'mp', shared: true });
    try {
      expect(await b.read(8 * MiB, 4096)).toEqual(Buffer.alloc(4096)); // b caches "unallocated"
      const x = crypto.randomBytes(MiB);
      await a.write(8 * MiB + 512, x); // a allocates object 2: b becomes INVALIDATED
      await invalidatedOn(nodes[1]!);
      const locks = await dogOk(nodes[1]!.port, ['vdi', 'lock', 'list']);
      expect(locks).toContain(`IPv4 ip:127.0.0.1 port:${nodes[0]!.port}(modified)`);
      expect(locks).toContain(`IPv4 ip:127.0.0.1 port:${nodes[1]!.port}(invalidated)`);
      expect((await b.read(8 * MiB + 512, MiB)).equals(x)).toBe(true);
      const y = crypto.randomBytes(3 * MiB);
      await b.write(20 * MiB, y); // and back the other way
      await invalidatedOn(nodes[0]!);
      expect((await a.read(20 * MiB, 3 * MiB)).equals(y)).toBe(true);
      // Interleaved allocations of different objects by both: the index keeps every entry.
      const parts = [...Array(6).keys()].map((i) => crypto.randomBytes(64 * 1024 + i));
      for (const [i, p] of parts.entries()) {
        await (i % 2 === 0 ? a : b).write((32 + 4 * i) * MiB, p);
        await invalidatedOn(nodes[i % 2 === 0 ? 1 : 0]!); // the other one's sheep knows before it acts
      }
      for (const [i, p] of parts.entries()) {
        expect((await a.read((32 + 4 * i) * MiB, p.length)).equals(p)).toBe(true);
        expect((await b.read((32 + 4 * i) * MiB, p.length)).equals(p)).toBe(true);
      }
    } finally {
      await a.close();
      await b.close();
    }
    const fresh = await VdiDevice.open({ gateways: nodes[2]!.addr, vdi: 'mp' });
    expect(fresh.indexSnapshot().filter((v) => v !== 0)).toHaveLength(2 + 6);
    await fresh.close();
  });

  it('fails over to the next gateway when its sheep is SIGKILLed, without an I/O error', async () => {
    const client = new SheepClient({ gateways: [nodes[0]!.addr, nodes[1]!.addr].join(','), reconnectTimeoutMs: 60_000 });
    const events: string[] = [];
    client.transport.on('disconnect', (e) => events.push(`disconnect ${e.gateway}`));
    client.transport.on('failover', (e) => events.push(`failover ${e.from} ${e.to}`));
    client.transport.on('reconnect', (e) => events.push(`reconnect ${e.gateway}`));
    const dev = await VdiDevice.open({ client, vdi: 'fo' });
    const data = crypto.randomBytes(2 * MiB);
    await dev.write(MiB, data);
    nodes[0]!.proc.kill('SIGKILL');
    await nodes[0]!.proc.exited;
    expect((await dev.read(MiB, 2 * MiB)).equals(data)).toBe(true);
    const more = crypto.randomBytes(MiB);
    await dev.write(8 * MiB, more);
    expect((await dev.read(8 * MiB, MiB)).equals(more)).toBe(true);
    expect(events).toEqual([`disconnect ${nodes[0]!.addr}`, `failover ${nodes[0]!.addr} ${nodes[1]!.addr}`, `reconnect ${nodes[1]!.addr}`]);
    await dev.close();
    client.close();
  });
});
