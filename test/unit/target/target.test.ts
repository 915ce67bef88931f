// Target: opens exports once into a table, starts its front ends, and on stop drains, flushes and closes.
import { describe, it, expect } from 'vitest';
import net from 'node:net';
import { Target } from '../../../src/target/target.js';
import { defaultTargetConfig } from '../../../src/target/config.js';
import { BlockError } from '../../../src/block/device.js';
import { NbdClient } from '../../../src/nbd/client.js';
import type { Frontend } from '../../../src/block/export-table.js';

describe('Target', () => {
  it('serves the export table over NBD and stops cleanly', async () => {
    const cfg = defaultTargetConfig();
    cfg.nbd.listen = '127.0.0.1:0';
    cfg.exports.push({ kind: 'mem', name: 'm', size: 1 << 20, readOnly: false });
    const t = await Target.open(cfg);
    const bound = await t.start();
    const addr = bound.get('nbd') ?? '';
    const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
    const s = net.connect({ host: '127.0.0.1', port });
    const c = new NbdClient(s);
    await c.connect({ exportName: 'm' });
    await c.write(0, Buffer.alloc(512, 1));
    expect((await c.read(0, 512))[0]).toBe(1);
    const dev = t.exports.get('m')?.device;
    await t.stop();
    await expect(dev?.read(0, 1)).rejects.toBeInstanceOf(BlockError);
  });

  it('hands the same table to every front end and closes devices if opening fails', async () => {
    const cfg = defaultTargetConfig();
    cfg.exports.push({ kind: 'mem', name: 'm', size: 1 << 20, readOnly: false });
    const seen: string[][] = [];
    const fake = (name: string): Frontend => ({ name, start: async () => `${name}:1`, stop: async () => undefined });
    const t = await Target.open(cfg, [
      (_c, table) => (seen.push([...table.keys()]), fake('one')),
      (_c, table) => (seen.push([...table.keys()]), fake('two')),
    ]);
    expect(seen).toEqual([['m'], ['m']]);
    expect([...(await t.start())]).toEqual([
      ['one', 'one:1'],
      ['two', 'two:1'],
    ]);
    await t.stop();
    cfg.exports.push({ kind: 'vdi', name: 'v', vdi: 'v', readOnly: false });
    await expect(Target.open(cfg)).rejects.toThrow(/VDI exports need --sheep/);
  });
});
