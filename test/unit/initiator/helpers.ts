// Test helpers for the initiator unit tests: an in-process Sheepfold iSCSI target (IscsiServer) on an ephemeral
// loopback port over MemoryDevices, and random data.
import { randomBytes } from 'node:crypto';
import { MemoryDevice } from '../../../src/block/memory.js';
import type { LentRead } from '../../../src/block/device.js';
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

/** Poll `cond` until it holds (generous timeout; fails with `what`). */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface IoDevice {
  read(offset: number, length: number): Promise<Buffer>;
  write(offset: number, data: Buffer, opts?: { fua?: boolean }): Promise<void>;
}

/**
 * A verifying read/write loop: each worker owns its own blocks, writes random data, reads it back and compares
 * with its model. Counts operations, errors surfaced to the caller and mismatches; runs until stop().
 */
export class VerifyLoop {
  ops = 0;
  errors: string[] = [];
  mismatches = 0;
  private running = true;
  private readonly model = new Map<number, Buffer>();
  private readonly done: Promise<void>;

  constructor(
    private readonly dev: IoDevice,
    opts: { workers: number; blocksPerWorker: number; blockBytes: number; baseOffset?: number },
  ) {
    const base = opts.baseOffset ?? 0;
    const workers: Promise<void>[] = [];
    for (let w = 0; w < opts.workers; w++) {
      workers.push(
        (async () => {
          let i = 0;
          while (this.running) {
            const blk = w * opts.blocksPerWorker + (i++ % opts.blocksPerWorker);
            const off = base + blk * opts.blockBytes;
            try {
              if (i % 3 !== 0 || !this.model.has(blk)) {
                const data = randomBytes(opts.blockBytes);
                await this.dev.write(off, data, { fua: i % 5 === 0 });
                this.model.set(blk, data);
              }
              const got = await this.dev.read(off, opts.blockBytes);
              if (!got.equals(this.model.get(blk) as Buffer)) this.mismatches++;
              this.ops++;
            } catch (e) {
              this.errors.push(e instanceof Error ? e.message : String(e));
              this.model.delete(blk);
            }
          }
        })(),
      );
    }
    this.done = Promise.all(workers).then(() => undefined);
  }

  /** Stop and wait for the workers. */
  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  /** Re-read every block the loop wrote and count differences from the model. */
  async verifyAll(dev: IoDevice = this.dev, blockBytes = 4096, baseOffset = 0): Promise<number> {
    let bad = 0;
    for (const [blk, want] of this.model) {
      const got = await dev.read(baseOffset + blk * blockBytes, blockBytes);
      if (!got.equals(want)) bad++;
    }
    return bad;
  }
}

/** A MemoryDevice whose reads wait while `held` (to keep commands outstanding on the target). */
export class GatedDevice extends MemoryDevice {
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  holdReads(): void {
    this.gate = new Promise((r) => (this.openGate = r));
  }
  releaseReads(): void {
    this.openGate?.();
    this.gate = undefined;
  }
  override async read(offset: number, length: number): Promise<Buffer> {
    if (this.gate) await this.gate;
    return super.read(offset, length);
  }
  // Front ends prefer the fast paths: hold those too.
  override async readInto(offset: number, target: Buffer): Promise<void> {
    if (this.gate) await this.gate;
    return super.readInto(offset, target);
  }
  override async readLent(offset: number, length: number): Promise<LentRead> {
    if (this.gate) await this.gate;
    return super.readLent(offset, length);
  }
}
