// Rolling node replacement the way Sheepdog's functional tests drive it (tests/functional/common.rc): start a
// new sheep, wait until `dog node list` on it shows one node more, SIGKILL an old one, wait until the list is
// back, then wait until `dog node recovery` prints exactly its two header lines (no node in recovery). Plus the
// evidence kept when a run fails: every node's log (over all its processes) and a JSON report, under
// test-results/<name>/.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll } from 'vitest';
import { SheepClient } from '../../src/client/index.js';
import { oidHex, vidToDataOid, vidToVdiOid } from '../../src/proto/sheepdog/index.js';
import { startLocalCluster, type LocalCluster } from './cluster.js';
import { REPO_ROOT, cleanupTempDirs, killAll } from './proc.js';

/** Local clusters started through the returned function are stopped (and every process and temp dir is gone)
 * after the file's tests; call once at the top level of a test file. */
export function clusterStarter(): (...args: Parameters<typeof startLocalCluster>) => Promise<LocalCluster> {
  const clusters: LocalCluster[] = [];
  afterAll(async () => {
    for (const c of clusters) await c.stopAll().catch(() => undefined);
    await killAll();
    cleanupTempDirs();
  }, 120_000);
  return async (...args) => {
    const c = await startLocalCluster(...args);
    clusters.push(c);
    return c;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** _wait_for_sheep N NODE: `dog node list` on the node lists exactly n sheep (header line not counted). */
export async function waitForSheep(c: LocalCluster, n: number, node: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await c.dog(['node', 'list'], { node, timeoutMs: 30_000 });
    if (r.code === 0) {
      const lines = r.stdout.replace(/\n+$/, '').split('\n').length - 1;
      if (lines === n) return;
      last = r.stdout;
    } else last = r.stderr;
    await sleep(1000);
  }
  throw new Error(`node ${node} never listed ${n} sheep; last: ${last}`);
}

/** _wait_for_sheep_recovery NODE: every 2 s `dog node recovery` on the node, until its output is exactly two
 * lines; a failing `dog node recovery` fails the wait, as in Sheepdog's helper. */
export async function waitForRecovery(c: LocalCluster, node: number, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    await sleep(2000);
    const r = await c.dog(['node', 'recovery'], { node, timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`dog node recovery failed on node ${node} (${r.code}): ${r.stderr}`);
    // $(...) drops trailing newlines, then `wc -l` counts lines.
    const lines = r.stdout.replace(/\n+$/, '').split('\n').length;
    if (lines === 2) return;
    last = r.stdout;
  }
  throw new Error(`node ${node} never showed an idle recovery; last:\n${last}`);
}

/** One step of 028's loops: start `fresh`, wait for count+1 on it, SIGKILL `old`, wait for count, wait for
 * recovery on `fresh`. */
export async function replaceNode(c: LocalCluster, old: number, fresh: number): Promise<void> {
  const count = c.live().length;
  await c.startNode(fresh);
  await waitForSheep(c, count + 1, fresh);
  await c.killNode(old);
  await waitForSheep(c, count, fresh);
  await waitForRecovery(c, fresh);
}

/** Save every node's log and a JSON report under test-results/<dirName>/; returns the directory. */
export function keepEvidence(c: LocalCluster, dirName: string, report: unknown): string {
  const dir = path.join(REPO_ROOT, 'test-results', dirName);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const n of c.nodes) fs.writeFileSync(path.join(dir, `node${n.index}-port${n.port}.log`), c.logOf(n.index));
  fs.writeFileSync(path.join(dir, 'report.json'), JSON.stringify(report, null, 2));
  return dir;
}

/** The first `length` bytes of an object file in a node's store, or null if the node has no such object. */
export function storeBytes(c: LocalCluster, node: number, oidHex: string, length: number): Buffer | null {
  const file = path.join(c.nodes[node]!.store, 'obj', oidHex);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const buf = Buffer.alloc(length);
    const n = fs.readSync(fd, buf, 0, length, 0);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** For a failure report: per node (down ones marked), what its store holds at the start of each of the VDI's
 * first `objects` data objects (as `classify` names it, null = no such object) and whether it has the inode. */
export async function storeReport(
  c: LocalCluster,
  vdi: string,
  objects: number,
  headBytes: number,
  classify: (head: Buffer | null, index: number) => string,
): Promise<Record<string, string[]>> {
  const live = c.live()[0];
  if (!live) return {};
  const client = new SheepClient({ gateways: `127.0.0.1:${live.port}`, reconnectTimeoutMs: 0 });
  try {
    const { vid } = await client.getVdiInfo(vdi);
    const out: Record<string, string[]> = {};
    for (const n of c.nodes) {
      const row: string[] = [];
      for (let i = 0; i < objects; i++) row.push(`${i}:${classify(storeBytes(c, n.index, oidHex(vidToDataOid(vid, i)), headBytes), i)}`);
      row.push(`inode:${storeBytes(c, n.index, oidHex(vidToVdiOid(vid)), 1) === null ? 'absent' : 'present'}`);
      out[`node${n.index}:${n.port}${n.proc ? '' : '(down)'}`] = row;
    }
    return out;
  } catch (err) {
    return { error: [String(err)] };
  } finally {
    client.close();
  }
}
