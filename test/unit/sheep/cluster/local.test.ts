// The local cluster driver: the ClusterDriver contract (total order, history replay, read barrier, graceful leave,
// compaction) and failure detection through stale heartbeats (a stopped member). SIGKILL detection of a
// separate process is in test/integration/cluster-local.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalClusterDriver, type ClusterEvent } from '../../../../src/sheep/cluster/local.js';
import { driverContract, until } from '../../../helpers/cluster-driver-contract.js';

const dirs: string[] = [];
const drivers: LocalClusterDriver[] = [];
afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.close()));
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sf-cluster-'));
  dirs.push(d);
  return d;
}

function driver(dir: string, opts: { failTimeoutMs?: number; compactEvery?: number } = {}): { d: LocalClusterDriver; events: ClusterEvent[] } {
  const d = new LocalClusterDriver({ dir, heartbeatMs: 50, failTimeoutMs: opts.failTimeoutMs ?? 400, compactEvery: opts.compactEvery });
  const events: ClusterEvent[] = [];
  d.onEvent((e) => {
    events.push(e);
  });
  drivers.push(d);
  return { d, events };
}

/** Records in the segments that exist now. */
function retainedRecords(dir: string): number {
  let n = 0;
  for (const f of fs.readdirSync(dir)) {
    if (!/^cluster\.log(\.\d+)?$/.test(f)) continue;
    const b = fs.readFileSync(path.join(dir, f));
    for (let off = 0; off + 16 <= b.length; off += 16 + b.readUInt32LE(off + 4)) n++;
  }
  return n;
}

describe('local cluster driver', () => {
  let dir = '';
  driverContract(() => {
    dir = tmp();
    return {
      // A generous failure timeout: heartbeat touches queue behind slow fdatasyncs in libuv's thread pool on a
      // loaded machine, and these checks do not rejoin an expelled member.
      make: (o = {}) => driver(dir, { failTimeoutMs: 30_000, ...o }).d,
      retained: () => Promise.resolve(retainedRecords(dir)),
    };
  }, { compaction: false });

  it('a member whose heartbeat stops is removed as failed, and sees itself expelled', async () => {
    const dir = tmp();
    const a = driver(dir);
    const b = driver(dir);
    await a.d.join('A', {});
    await b.d.join('B', {});
    // Simulate a hung process: B stops heartbeating (its timers stop) but keeps reading the log.
    (b.d as unknown as { timers: NodeJS.Timeout[] }).timers.slice(0, 2).forEach((t) => clearInterval(t));
    await until(() => a.events.some((e) => e.type === 'leave'));
    const ev = a.events.find((e) => e.type === 'leave');
    expect(ev?.type === 'leave' && ev.reason).toBe('failed');
    expect(a.d.members().map((m) => m.node)).toEqual(['A']);
    await until(() => b.events.some((e) => e.type === 'expelled'));
    await expect(b.d.broadcast('x')).rejects.toThrow(/not a cluster member/);
  });
});
