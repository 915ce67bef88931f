// Test helpers for the initiator unit tests: an in-process Sheepfold iSCSI target (IscsiServer) on an ephemeral
// loopback port over MemoryDevices, and random data.
import { randomBytes } from 'node:crypto';
import { MemoryDevice } from '../../../src/block/memory.js';
import type { ChapAccount } from '../../../src/iscsi/chap.js';
import type { IscsiServerOptions } from '../../../src/iscsi/config.js';
import { IscsiServer } from '../../../src/iscsi/server.js';

export const IQN = 'iqn.2026-11.org.sheepfold:unit';

export interface TestTarget {
  server: IscsiServer;
  port: number;
  device: MemoryDevice;
  stop(): Promise<void>;
}

/** Start an in-process target exporting one memory LU (LUN 0) as `name`. */
export async function startTarget(
  opts: { sizeBytes?: number; chap?: ChapAccount[]; device?: MemoryDevice; name?: string; server?: Partial<IscsiServerOptions> } = {},
): Promise<TestTarget> {
  const device = opts.device ?? new MemoryDevice({ name: 'unit', size: opts.sizeBytes ?? 8 * 1024 * 1024 });
  const server = new IscsiServer({
    host: '127.0.0.1',
    port: 0,
    targets: [{ name: opts.name ?? IQN, luns: [{ lun: 0, device }], chap: opts.chap }],
    ...opts.server,
  });
  const addr = await server.start();
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  return { server, port, device, stop: () => server.stop() };
}

export const rand = (n: number): Buffer => randomBytes(n);
