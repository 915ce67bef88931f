// A deliberately early kill during rolling replacement: the last up-to-date holders of every object die before
// recovery copied anything from them. Two old sheep are replaced by two new ones (Sheepdog test 028's steps),
// new bytes are written through the new ones, then the old sheep (with their old objects on disk) are started
// while the new ones' peer ports (each node advertises a fault proxy) drop every byte — so no recovery can
// fetch from them — and the new ones are SIGKILLed as soon as all four are listed. Reads through the old
// sheep must then fail (EIO) or wait, never return the old bytes; after the new sheep come back, every read is
// the new bytes, through every sheep.
import { describe, expect, it } from 'vitest';
import { clusterStarter, keepEvidence, replaceNode, storeReport, waitForRecovery, waitForSheep } from '../helpers/rolling.js';

const MiB = 1024 * 1024;
const OBJ = 4 * MiB;
const OBJECTS = 8;
/** How long a read through a sheep without an up-to-date copy may wait before the test counts it as waiting. */
const READ_WAIT_MS = 15_000;

const startCluster = clusterStarter();

function stamp(text: string): Buffer {
  const b = Buffer.alloc(512);
  b.write(text);
  return b;
}
const oldStamp = (i: number): Buffer => stamp(`old ${i}\n`);
const newStamp = (i: number): Buffer => stamp(`new ${i}\n`);

function what(b: Buffer | null, i: number): string {
  if (b === null) return 'absent';
  if (b.equals(oldStamp(i))) return 'old';
  if (b.equals(newStamp(i))) return 'new';
  return `other(${JSON.stringify(b.subarray(0, 16).toString('latin1'))})`;
}

describe('early kill of the last up-to-date holders', () => {
  it('reads fail or wait while only stale copies are up, never return old data; the newest data once the holders return', async () => {
    const c = await startCluster(2, { peerProxies: true, logLevel: 'info' });
    const problems: string[] = [];
    const observed: Record<string, string[]> = {};
    try {
      expect((await c.dog(['cluster', 'format', '-c', '2'])).code).toBe(0);
      expect((await c.dog(['vdi', 'create', 'early', `${(OBJECTS * OBJ) / MiB}M`])).code).toBe(0);
      for (let i = 0; i < OBJECTS; i++) {
        const w = await c.dog(['vdi', 'write', 'early', String(i * OBJ), '512'], { input: oldStamp(i) });
        expect(w.code, w.stderr).toBe(0);
      }
      const n2 = (await c.planNode()).index;
      const n3 = (await c.planNode()).index;
      await replaceNode(c, 0, n2);
      await replaceNode(c, 1, n3);
      for (let i = 0; i < OBJECTS; i++) {
        const w = await c.dog(['vdi', 'write', 'early', String(i * OBJ), '512'], { node: n2, input: newStamp(i) });
        expect(w.code, w.stderr).toBe(0);
      }
      // Only nodes 2 and 3 hold the new bytes now. Cut every peer byte to them, bring the old sheep back and
      // kill the holders the moment all four are members: nothing can have been copied from them.
      c.nodes[n2]!.proxy!.set({ blackhole: true });
      c.nodes[n3]!.proxy!.set({ blackhole: true });
      await c.startNode(0);
      await c.startNode(1);
      await waitForSheep(c, 4, 0);
      await c.killNode(n2);
      await c.killNode(n3);
      c.nodes[n2]!.proxy!.heal();
      c.nodes[n3]!.proxy!.heal();
      await waitForSheep(c, 2, 0);

      for (const node of [0, 1]) {
        const row: string[] = [];
        for (let i = 0; i < OBJECTS; i++) {
          const r = await c.dogBinary(['vdi', 'read', 'early', String(i * OBJ), '512'], { node, timeoutMs: READ_WAIT_MS });
          if (r.code !== 0) {
            row.push(`${i}:${r.code === -1 ? 'waited' : `failed(${r.code}: ${r.stderr.trim()})`}`);
            continue;
          }
          const w = what(r.stdout, i);
          row.push(`${i}:${w}`);
          if (w !== 'new') problems.push(`holders down: read of object ${i} through node ${node} returned ${w} data`);
        }
        observed[`holders down, via node ${node}`] = row;
      }

      await c.startNode(n2);
      await c.startNode(n3);
      await waitForSheep(c, 4, 0);
      await waitForRecovery(c, 0);
      for (const node of [0, 1, n2, n3]) {
        const row: string[] = [];
        for (let i = 0; i < OBJECTS; i++) {
          const r = await c.dogBinary(['vdi', 'read', 'early', String(i * OBJ), '512'], { node });
          const w = r.code === 0 ? what(r.stdout, i) : `failed(${r.code}: ${r.stderr.trim()})`;
          row.push(`${i}:${w}`);
          if (w !== 'new') problems.push(`holders back: read of object ${i} through node ${node} returned ${w}`);
        }
        observed[`holders back, via node ${node}`] = row;
      }
    } catch (err) {
      problems.push(`aborted: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (problems.length > 0) {
      const stores = await storeReport(c, 'early', OBJECTS, 512, what);
      const dir = keepEvidence(c, 'rolling-early-kill', { problems, observed, stores, ports: c.nodes.map((n) => n.port) });
      console.log(`early kill FAILED, evidence in ${dir}:\n${problems.join('\n')}\n${JSON.stringify({ observed, stores }, null, 1)}`);
    }
    await c.stopAll();
    expect(problems).toEqual([]);
  }, 900_000);
});
