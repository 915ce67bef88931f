// dog against a real three-sheep cluster (`--cluster local:DIR`, one zone per sheep, 3 copies): node list
// and the epoch table, data written through one gateway and read through another, object location on every
// replica, and `vdi check` re-creating a replica removed from one node's store (then finding all consistent).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';
import { dogBinary, dogOk, startCluster, type SheepProc } from './dog-harness.js';

const MiB = 2 ** 20;
let nodes: SheepProc[];
beforeAll(async () => {
  nodes = await startCluster(3);
  await dogOk(nodes[0]!.port, ['cluster', 'format', '-c', '3']);
});
afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe('dog on a three-node cluster (real sheep processes)', () => {
  it('lists the three nodes and one epoch with all of them', async () => {
    const nl = (await dogOk(nodes[1]!.port, ['node', 'list'])).trimEnd().split('\n');
    expect(nl).toHaveLength(4);
    const sorted = [...nodes].sort((a, b) => a.port - b.port);
    sorted.forEach((n, i) => expect(nl[i + 1]).toMatch(new RegExp(`^ {3}${i} {3}127\\.0\\.0\\.1:${n.port} +\\t\\s*\\d+\\s+${n.port}$`)));
    const info = await dogOk(nodes[2]!.port, ['cluster', 'info']);
    expect(info).toMatch(new RegExp(`      1 \\[${sorted.map((n) => `127\\.0\\.0\\.1:${n.port}:\\d+`).join(', ')}\\]\\n$`));
  });

  it('reads through one gateway what was written through another; every replica holds the objects', async () => {
    const data = crypto.randomBytes(9 * MiB + 17);
    await dogOk(nodes[0]!.port, ['vdi', 'create', 'mn', '32M']);
    await dogOk(nodes[1]!.port, ['vdi', 'write', 'mn', '4095'], data);
    const back = await dogBinary(nodes[2]!.port, ['vdi', 'read', 'mn', '4095', String(data.length)]);
    expect(back.code, back.stderr).toBe(0);
    const diff = back.stdout.findIndex((b, i) => b !== data[i]);
    expect({ length: back.stdout.length, firstDiff: diff }).toEqual({ length: data.length, firstDiff: -1 });
    const loc = await dogOk(nodes[0]!.port, ['vdi', 'object', 'location', 'mn', '2']);
    for (const n of nodes) expect(loc, `${loc}\n${await dogOk(nodes[0]!.port, ['cluster', 'info'])}`).toContain(`127.0.0.1:${n.port} has the object\n`);
    expect(loc).toMatch(/According to sheepdog algorithm, the object should be located at:\n127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+\n$/);
  });

  it('vdi check re-creates a replica missing from one node, then finds everything consistent', async () => {
    const vid = (JSON.parse(await dogOk(nodes[0]!.port, ['vdi', 'list', 'mn', '--json'])) as { vid: number }[])[0]!.vid;
    const oid = ((BigInt(vid) << 32n) | 1n).toString(16).padStart(16, '0');
    fs.rmSync(path.join(nodes[1]!.dir, 'obj', oid));
    const first = await dogOk(nodes[2]!.port, ['vdi', 'check', 'mn']);
    expect(first).toBe(`fixed missing ${oid}\nfinish check&repair mn\nmn: checked 4 object(s), fixed 0 replica(s), re-created 1 missing replica(s), all consistent\n`);
    expect(fs.existsSync(path.join(nodes[1]!.dir, 'obj', oid))).toBe(true);
    const second = await dogOk(nodes[0]!.port, ['vdi', 'check', 'mn']);
    expect(second).toBe('finish check&repair mn\nmn: checked 4 object(s), fixed 0 replica(s), re-created 0 missing replica(s), all consistent\n');
  });
});
