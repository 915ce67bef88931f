// The target's VDI export kind: `NAME=VDI[:TAG][,shared][,ro]` parsing and opening through openExport, on
// the fake sheep: exclusive lock by default, SHARED with `,shared`, snapshots read-only without a lock, and a
// clear error for an unreachable gateway list.
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { SheepClient } from '../../../src/client/index.js';
import { openExport, parseExportArg } from '../../../src/target/exports.js';
import { FakeSheep } from '../client/fake-sheep.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

describe('VDI export specs', () => {
  it('parses tags, ,shared and ,ro in any order', () => {
    expect(parseExportArg('d=disk')).toEqual({ kind: 'vdi', name: 'd', vdi: 'disk', readOnly: false });
    expect(parseExportArg('d=disk:gold,ro')).toEqual({ kind: 'vdi', name: 'd', vdi: 'disk', tag: 'gold', readOnly: true });
    expect(parseExportArg('d=disk,shared,ro')).toEqual({ kind: 'vdi', name: 'd', vdi: 'disk', readOnly: true, shared: true });
    expect(parseExportArg('d=disk,ro,shared')).toEqual({ kind: 'vdi', name: 'd', vdi: 'disk', readOnly: true, shared: true });
    expect(() => parseExportArg('m=mem:1M,shared')).toThrow(/only VDI exports/);
  });

  it('opens VDIs exclusively, shared, or as read-only snapshots', async () => {
    const s = new FakeSheep();
    await s.start();
    cleanups.push(() => s.stop());
    const c = new SheepClient({ gateways: s.addr });
    cleanups.push(() => c.close());
    const { vid } = await c.newVdi({ name: 'disk', size: 8n << 20n });
    const e = await openExport(parseExportArg('d=disk'), { sheep: s.addr });
    expect(s.locks.get(vid)?.state).toBe(C.LOCK_STATE_LOCKED);
    expect(e.device.size).toBe(8 << 20);
    await e.device.close();
    const sh = await openExport(parseExportArg('d=disk,shared'), { sheep: `127.0.0.1:1,${s.addr}` });
    expect(s.locks.get(vid)?.state).toBe(C.LOCK_STATE_SHARED);
    await sh.device.close();
    expect(s.locks.get(vid)).toBeUndefined();
  });

  it('fails clearly when no gateway answers', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen({ host: '127.0.0.1', port: 0 }, r));
    const a = srv.address();
    const port = typeof a === 'object' && a ? a.port : 0;
    await new Promise<void>((r) => srv.close(() => r()));
    await expect(openExport(parseExportArg('d=disk'), { sheep: `127.0.0.1:${port}` })).rejects.toThrow(
      `cannot open VDI disk: cannot connect to 127.0.0.1:${port}: connection refused`,
    );
  }, 30_000);
});
