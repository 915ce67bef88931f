// Corrupt replicas in a cluster (issue 8, test 5): 3 sheep, copies 3. One replica of each of three objects is
// damaged on a different node (bit flip, zeroed block, deleted file). Every block still reads correctly
// through the target (the bad replica answers EIO / NO_OBJ and the gateway reads another one); the damage is
// found (read-time detection, scrub) and `dog vdi check` repairs it from a good copy, after which all three
// replicas of every object are byte-identical again.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { classifyBlock, makeStampedBlock } from '../../src/drill/stamp.js';
import { isDataOid, oidToIndex, parseOidHex } from '../../src/proto/sheepdog/oid.js';
import { startLocalCluster, type LocalCluster } from '../helpers/cluster.js';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';
import { reportReliability } from '../helpers/reliability.js';
import { nbdIo, vdiTarget, waitFor } from './harness.js';

const MiB = 1024 * 1024;
const OBJ = 4 * MiB;
const BS = 4096;
const PER_OBJ = 8;

let cluster: LocalCluster | null = null;
afterAll(async () => {
  await cluster?.stopAll().catch(() => undefined);
  await killAll();
  cleanupTempDirs();
});

const off = (obj: number, k: number): number => obj * OBJ + k * 512 * 1024;

/** Data object files of node `store`, by object index. */
function dataFiles(store: string): Map<number, string> {
  const out = new Map<number, string>();
  const dir = path.join(store, 'obj');
  for (const name of fs.readdirSync(dir)) {
    const oid = parseOidHex(name);
    if (oid !== null && isDataOid(oid)) out.set(oidToIndex(oid), path.join(dir, name));
  }
  return out;
}

describe('corrupt replicas (cluster)', () => {
  it('serves good data from another replica, detects the damage and repairs it from a good copy', async () => {
    const c = (cluster = await startLocalCluster(3, { extraArgs: ['--scrub-interval', '1'], logLevel: 'info' }));
    expect((await c.dog(['cluster', 'format', '-c', '3'])).code).toBe(0);
    await c.waitSettled(3);
    expect((await c.dog(['vdi', 'create', 'cc', '64M'])).code).toBe(0);
    const t = await vdiTarget(c.nodes.map((n) => `127.0.0.1:${n.port}`).join(','), ['cc=cc']);
    const nbd = await nbdIo(t, 'cc');
    for (let obj = 0; obj < 3; obj++) {
      for (let k = 0; k < PER_OBJ; k++) await nbd.write(off(obj, k), makeStampedBlock({ writer: 2, seq: obj * 100 + k, lba: off(obj, k) / BS }, BS));
    }
    const files = c.nodes.map((n) => dataFiles(n.store));
    for (const f of files) expect([...f.keys()].sort()).toEqual([0, 1, 2]);

    // Node 0: bit flip in object 0 block k=1; node 1: object 1 deleted; node 2: object 2 block k=3 zeroed.
    const f0 = files[0]!.get(0)!;
    const b = fs.readFileSync(f0);
    b[512 * 1024 + 77] = b[512 * 1024 + 77]! ^ 0x01;
    fs.writeFileSync(f0, b);
    fs.rmSync(files[1]!.get(1)!);
    const fd = fs.openSync(files[2]!.get(2)!, 'r+');
    fs.writeSync(fd, Buffer.alloc(BS), 0, BS, 3 * 512 * 1024);
    fs.closeSync(fd);

    let good = 0;
    let bad = 0;
    for (let round = 0; round < 2; round++) {
      for (let obj = 0; obj < 3; obj++) {
        for (let k = 0; k < PER_OBJ; k++) {
          const cl = classifyBlock(await nbd.read(off(obj, k), BS), off(obj, k) / BS);
          if (cl.kind === 'stamp' && cl.stamp.seq === obj * 100 + k) good++;
          else bad++;
        }
      }
    }
    const logs = (): string => c.nodes.map((n) => n.proc?.output() ?? '').join('\n');
    await waitFor(() => /"scrub_done"[^\n]*"corrupt":[1-9]/.test(logs()) || /"corrupt":[1-9][^\n]*"scrub_done"/.test(logs()), 'a scrub that finds corruption');
    const detected = (logs().match(/"object_corrupt"/g) ?? []).length;
    const missing = (logs().match(/"object_missing"/g) ?? []).length;

    const check = await c.dog(['vdi', 'check', 'cc']);
    const repairedMatch = /fixed (\d+) replica\(s\), re-created (\d+) missing/.exec(check.stdout);
    const repaired = repairedMatch ? Number(repairedMatch[1]) + Number(repairedMatch[2]) : 0;
    const after = c.nodes.map((n) => dataFiles(n.store));
    let identical = 0;
    for (let obj = 0; obj < 3; obj++) {
      const copies = after.map((m) => (m.get(obj) ? fs.readFileSync(m.get(obj)!) : null));
      if (copies.every((x) => x !== null && x.equals(copies[0]!))) identical++;
    }
    await nbd.close();
    reportReliability(
      'corrupt-replicas-cluster',
      { nodes: 3, copies: 3, damaged_replicas: 3, reads_good: good, bad_bytes_served: bad, detected_events: detected, missing_events: missing, repaired, objects_identical_after: identical },
      { check: check.stdout, stderr: check.stderr },
    );
    expect(bad).toBe(0);
    expect(good).toBe(2 * 3 * PER_OBJ);
    expect(detected).toBeGreaterThan(0);
    expect(check.code, check.stderr).toBe(0);
    expect(repaired).toBe(3);
    expect(identical).toBe(3);
  });
});
