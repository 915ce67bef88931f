// Every server limit at limit + 1 (style rule 8): connections, payload size (write and read), requests in
// flight per connection, bytes in flight over all connections.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { vidToDataOid } from '../../../src/proto/sheepdog/oid.js';
import { startSheep, type RunningSheep } from '../../../src/sheep/index.js';
import { SheepWire, okReply } from '../../helpers/sheep-wire.js';

const KiB = 1024;
let dir: string;
let sheep: RunningSheep;
let oid = 0n;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sheep-limits-'));
  sheep = await startSheep({
    dir,
    port: 0,
    limits: { maxConnections: 3, maxPayloadBytes: 1024 * KiB, maxInflightPerConn: 2, maxInflightBytes: 1024 * KiB },
  });
  const w = await SheepWire.connect({ port: sheep.port });
  okReply(await w.makeFs());
  const vid = (okReply(await w.newVdi('lim', 64n << 20n)).rsp.args as { vdiId: number }).vdiId;
  oid = vidToDataOid(vid, 0);
  okReply(await w.create(oid, 0, Buffer.alloc(1024 * KiB, 0x42)));
  w.close();
  await w.whenClosed();
});

afterAll(async () => {
  await sheep.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

describe('sheep server limits', () => {
  it('closes the connection beyond maxConnections', async () => {
    await waitFor(() => sheep.server.connections === 0);
    const a = await SheepWire.connect({ port: sheep.port });
    const b = await SheepWire.connect({ port: sheep.port });
    const c = await SheepWire.connect({ port: sheep.port });
    await waitFor(() => sheep.server.connections === 3);
    const d = await SheepWire.connect({ port: sheep.port });
    await d.whenClosed();
    expect((await c.request(C.SD_OP_GET_NODE_LIST, { dataLength: 80 })).rsp.result).toBe(0);
    for (const x of [a, b, c]) x.close();
    await waitFor(() => sheep.server.connections === 0);
  });

  it('serves a payload of maxPayloadBytes and closes at one byte more (write and read)', async () => {
    const w = await SheepWire.connect({ port: sheep.port });
    expect((await w.write(oid, 0, Buffer.alloc(1024 * KiB, 1))).rsp.result).toBe(0);
    expect((await w.read(oid, 0, 1024 * KiB)).data.length).toBe(1024 * KiB);
    const big = await SheepWire.connect({ port: sheep.port });
    const p = big.write(oid, 0, Buffer.alloc(1024 * KiB + 1, 1));
    await expect(p).rejects.toThrow(/closed/);
    const rd = await SheepWire.connect({ port: sheep.port });
    await expect(rd.read(oid, 0, 1024 * KiB + 1)).rejects.toThrow(/closed/);
    w.close();
  });

  it('answers more pipelined requests than maxInflightPerConn, and keeps bytes in flight within budget', async () => {
    const w = await SheepWire.connect({ port: sheep.port });
    const w2 = await SheepWire.connect({ port: sheep.port });
    let maxSeen = 0;
    let polling = true;
    const poll = (): void => {
      maxSeen = Math.max(maxSeen, sheep.server.bytesInFlight);
      if (polling) setImmediate(poll);
    };
    poll();
    const reqs = [];
    for (let i = 0; i < 10; i++) reqs.push(w.read(oid, 0, 512 * KiB), w2.read(oid, 512 * KiB, 512 * KiB));
    const rs = await Promise.all(reqs);
    polling = false;
    expect(rs.every((r) => r.rsp.result === 0 && r.data.length === 512 * KiB)).toBe(true);
    expect(maxSeen).toBeLessThanOrEqual(1024 * KiB);
    w.close();
    w2.close();
  });
});
