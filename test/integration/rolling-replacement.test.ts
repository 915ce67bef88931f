// Sheepdog's functional test 028 (rolling node replacement) against real `sheepfold sheep` processes and the
// real `dog` CLI, step for step: 2 sheep, `cluster format -c 2`, a 100M VDI, `echo $i | dog vdi write test
// $((i*4M)) 512` for its 25 objects; twice "start a new sheep, wait for 3, SIGKILL an old one, wait for 2,
// wait until `dog node recovery` is its two header lines"; new bytes (`echo $((i+1))`) written through the
// new sheep; the same replacement back to the two old sheep, which still hold their old objects on disk.
// Every read afterwards (through both sheep) must be the new bytes — the md5 sums are the ones in Sheepdog's
// 028.out — and `dog vdi object location` must show both copies where the ring puts them.
// 3 runs in the normal suite, 20 in soak mode (SHEEPFOLD_RELIABILITY_SECONDS set). A failing run prints, per
// object, what the gateways read and what each node's store holds (old / new / other), and keeps every
// node's log under test-results/rolling-replacement/run-N/.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import type { LocalCluster } from '../helpers/cluster.js';
import { longMode } from '../helpers/reliability.js';
import { clusterStarter, keepEvidence, replaceNode, storeReport } from '../helpers/rolling.js';

const MiB = 1024 * 1024;
const OBJ = 4 * MiB;
const OBJECTS = 25;
const VDI_SIZE = 100 * MiB;
/** md5 of `dog vdi read test` before and after the rewrite, from Sheepdog's tests/functional/028.out. */
const OLD_MD5 = '9c7766570b3be3aff2724f587c2f4107';
const NEW_MD5 = 'a6c5d562057d0b8e7c90df17e5ea9450';
const RUNS = longMode() ? 20 : 3;

const startCluster = clusterStarter();

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

/** What `echo $v | dog vdi write test OFF 512` leaves in a fresh object: "$v\n" then zeros. */
function stamp(v: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(`${v}\n`);
  return b;
}

function image(delta: number): Buffer {
  const b = Buffer.alloc(VDI_SIZE);
  for (let i = 0; i < OBJECTS; i++) stamp(i + delta).copy(b, i * OBJ);
  return b;
}

/** old / new / zero / other for the first 512 bytes of object i (the rest of the object must be zeros). */
function classify(head: Buffer | null, i: number, tailZero = true): string {
  if (head === null) return 'absent';
  const h = head.subarray(0, 512);
  let what = 'other';
  if (h.equals(stamp(i))) what = 'old';
  else if (h.equals(stamp(i + 1))) what = 'new';
  else if (h.every((x) => x === 0)) what = 'zero';
  if (what === 'other') what = `other(${JSON.stringify(h.subarray(0, 16).toString('latin1'))})`;
  return tailZero ? what : `${what}+nonzero-tail`;
}

/** Per object: what a full read through a gateway shows. */
function classifyImage(img: Buffer): string[] {
  const out: string[] = [];
  for (let i = 0; i < OBJECTS; i++) {
    const obj = img.subarray(i * OBJ, (i + 1) * OBJ);
    if (obj.length < 512) {
      out.push('short');
      continue;
    }
    out.push(classify(obj.subarray(0, 512), i, obj.subarray(512).every((x) => x === 0)));
  }
  return out;
}

interface Location {
  oid: string;
  nodes: { node: string; has: boolean }[];
  expected: string[];
}

async function readVdi(c: LocalCluster, node: number): Promise<{ code: number; stderr: string; data: Buffer }> {
  const r = await c.dogBinary(['vdi', 'read', 'test'], { node });
  return { code: r.code, stderr: r.stderr, data: r.stdout };
}

async function run028(runNo: number): Promise<void> {
  const c = await startCluster(2, { logLevel: 'info' });
  const report: Record<string, unknown> = { run: runNo, ports: c.nodes.map((n) => n.port) };
  const problems: string[] = [];
  const reads: Record<string, { code: number; md5: string; objects: string[]; stderr: string }> = {};
  const read = async (label: string, node: number, want: Buffer): Promise<void> => {
    const r = await readVdi(c, node);
    reads[label] = { code: r.code, md5: md5(r.data), objects: classifyImage(r.data), stderr: r.stderr.trim() };
    if (r.code !== 0) problems.push(`${label}: dog vdi read failed (${r.code}): ${r.stderr.trim()}`);
    else if (!r.data.equals(want)) {
      const bad = reads[label]!.objects.map((o, i) => `${i}:${o}`).filter((_, i) => reads[label]!.objects[i] !== (want === newImage ? 'new' : 'old'));
      problems.push(`${label}: md5 ${md5(r.data)} (want ${md5(want)}); objects not as expected: ${bad.join(' ')}`);
    }
  };
  const oldImage = image(0);
  const newImage = image(1);
  try {
    const f = await c.dog(['cluster', 'format', '-c', '2']);
    expect(f.code, f.stderr).toBe(0);
    const v = await c.dog(['vdi', 'create', 'test', '100M']);
    expect(v.code, v.stderr).toBe(0);
    for (let i = 0; i < OBJECTS; i++) {
      const w = await c.dog(['vdi', 'write', 'test', String(i * OBJ), '512'], { input: Buffer.from(`${i}\n`) });
      expect(w.code, `write ${i}: ${w.stderr}`).toBe(0);
    }
    await read('first read (node 0)', 0, oldImage);

    const n2 = (await c.planNode()).index;
    const n3 = (await c.planNode()).index;
    await replaceNode(c, 0, n2);
    await replaceNode(c, 1, n3);

    const writeErrors: string[] = [];
    for (let i = 0; i < OBJECTS; i++) {
      const w = await c.dog(['vdi', 'write', 'test', String(i * OBJ), '512'], { node: n2, input: Buffer.from(`${i + 1}\n`) });
      if (w.code !== 0) writeErrors.push(`object ${i}: exit ${w.code}: ${w.stderr.trim()}`);
    }
    report.writeErrors = writeErrors;
    if (writeErrors.length > 0) problems.push(`rewrite through the new sheep failed: ${writeErrors.join('; ')}`);
    await read('read after the rewrite (node 2)', n2, newImage);

    await replaceNode(c, n2, 0);
    await replaceNode(c, n3, 1);

    await read('final read (node 0)', 0, newImage);
    await read('final read (node 1)', 1, newImage);

    const liveAddrs = c.live().map((n) => `127.0.0.1:${n.port}`).sort();
    const locations: string[] = [];
    for (const idx of [undefined, ...Array.from({ length: OBJECTS }, (_, i) => i)]) {
      const args = ['vdi', 'object', 'location', 'test', ...(idx === undefined ? [] : ['-i', String(idx)])];
      const r = await c.dog([...args, '--json']);
      if (r.code !== 0) {
        problems.push(`dog ${args.join(' ')} failed: ${r.stderr.trim()}`);
        continue;
      }
      const loc = JSON.parse(r.stdout) as Location;
      const has = loc.nodes.filter((n) => n.has).map((n) => n.node).sort();
      const expected = [...loc.expected].sort();
      const line = `${idx === undefined ? 'inode' : `idx ${idx}`} ${loc.oid}: has ${has.join(' ')}; ring ${loc.expected.join(' ')}`;
      locations.push(line);
      if (JSON.stringify(has) !== JSON.stringify(expected) || JSON.stringify(expected) !== JSON.stringify(liveAddrs)) problems.push(`location ${line}`);
    }
    report.locations = locations;
    // The human form as 028.out shows it: both sheep have the inode, and the ring names both.
    const human = await c.dog(['vdi', 'object', 'location', 'test']);
    for (const a of liveAddrs) expect(human.stdout).toContain(`${a} has the object\n`);
    expect(human.stdout).toMatch(/According to sheepdog algorithm, the object should be located at:\n127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+\n$/);
  } catch (err) {
    problems.push(`aborted: ${err instanceof Error ? err.message : String(err)}`);
  }
  report.reads = reads;
  if (problems.length > 0) {
    report.problems = problems;
    report.stores = await storeReport(c, 'test', OBJECTS, 512, classify);
    const dir = keepEvidence(c, `rolling-replacement/run-${runNo}`, report);
    console.log(`rolling replacement run ${runNo} FAILED (logs and report in ${dir}):\n${problems.join('\n')}\nstores:\n${JSON.stringify(report.stores, null, 1)}`);
  }
  await c.stopAll();
  expect(problems).toEqual([]);
  for (const [label, r] of Object.entries(reads)) expect(r.md5, label).toBe(label.startsWith('first') ? OLD_MD5 : NEW_MD5);
}

describe('rolling node replacement (Sheepdog test 028)', () => {
  for (let runNo = 1; runNo <= RUNS; runNo++) {
    it(`run ${runNo}/${RUNS}: every read after two rolling replacements is the newest data`, () => run028(runNo), 900_000);
  }
});
