import { afterEach, describe, expect, it } from 'vitest';
import { IscsiSession } from '../../../src/initiator/scsi.js';
import { rand, startTarget, IQN, type TestTarget } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: Parameters<typeof startTarget>[0] = {}): Promise<TestTarget> {
  const t = await startTarget(opts);
  cleanups.push(() => t.stop());
  return t;
}
function session(t: TestTarget, extra: Partial<ConstructorParameters<typeof IscsiSession>[0]> = {}): IscsiSession {
  const s = new IscsiSession({ host: '127.0.0.1', port: t.port, targetName: IQN, nopIntervalMs: 0, ...extra });
  cleanups.push(() => s.close());
  return s;
}

describe('IscsiSession against the in-process target', () => {
  it('logs in and round-trips data', async () => {
    const t = await setup();
    const s = session(t);
    await s.connect();
    const cap = await s.readCapacity16();
    expect(cap.sizeBytes).toBe(8 * 1024 * 1024);
    const data = rand(64 * 1024);
    await s.write(8, data);
    expect((await s.read(8, 128)).equals(data)).toBe(true);
    expect((await t.device.read(8 * 512, data.length)).equals(data)).toBe(true);
  });
});
