// `dog vdi ...` against a real sheep process: create/list (dog's column layout), write/read round trips of
// random data at unaligned offsets spanning several objects (streamed through stdin/stdout), snapshot and
// clone with copy-on-write, delete, resize, object map/location, and clear errors for unknown VDIs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';
import { dog, dogBinary, dogOk, startSheep, type SheepProc } from './dog-harness.js';

const MiB = 2 ** 20;
let sheep: SheepProc;
let p: number;
beforeAll(async () => {
  sheep = await startSheep();
  p = sheep.port;
  await dogOk(p, ['cluster', 'format', '-c', '1']);
});
afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

/** Seeded pseudo-random bytes, so a failure can be reproduced from the printed seed. */
function bytes(n: number, seed: string): Buffer {
  const out = Buffer.alloc(n);
  let ctr = 0;
  for (let off = 0; off < n; off += 32) crypto.createHash('sha256').update(`${seed}:${ctr++}`).digest().copy(out, off);
  return out;
}

describe('dog vdi (real sheep)', () => {
  it('creates VDIs and lists them with dog columns', async () => {
    await dogOk(p, ['vdi', 'create', 'alpha', '64M']);
    await dogOk(p, ['vdi', 'create', 'pre', '8M', '-P']);
    const out = await dogOk(p, ['vdi', 'list']);
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe('  Name        Id    Size    Used  Shared    Creation time   VDI id  Copies  Tag   Block Size Shift');
    expect(lines.find((l) => l.startsWith('  alpha'))).toMatch(/^ {2}alpha {8}1 {3}64 MB {2}0\.0 MB {2}0\.0 MB \d{4}-\d\d-\d\d \d\d:\d\d {3}ed202b {6}1 {16}22$/);
    expect(lines.find((l) => l.startsWith('  pre'))).toMatch(/^ {2}pre {10}1 {2}8\.0 MB {2}8\.0 MB {2}0\.0 MB /);
    const r = await dog(p, ['vdi', 'create', 'alpha', '1G']);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('Failed to create VDI alpha: VDI exists already\n');
  });

  it('round-trips random data at unaligned offsets across object boundaries', async () => {
    const seed = `rt-${Date.now()}`;
    const data = bytes(9 * MiB + 4321, seed);
    const off = 3 * MiB + 12345;
    await dogOk(p, ['vdi', 'write', 'alpha', String(off)], data);
    const r = await dogBinary(p, ['vdi', 'read', 'alpha', String(off), String(data.length)]);
    expect(r.code).toBe(0);
    expect(r.stdout.equals(data), `seed ${seed}`).toBe(true);
    const whole = await dogBinary(p, ['vdi', 'read', 'alpha']);
    expect(whole.stdout.length).toBe(64 * MiB);
    expect(whole.stdout.subarray(0, off).equals(Buffer.alloc(off))).toBe(true);
    expect(whole.stdout.subarray(off, off + data.length).equals(data)).toBe(true);
    expect(whole.stdout.subarray(off + data.length).equals(Buffer.alloc(64 * MiB - off - data.length))).toBe(true);
    // An unaligned overwrite inside one object, bounded by LEN.
    await dogOk(p, ['vdi', 'write', 'alpha', String(off + 7), '5'], Buffer.from('HELLO, world'));
    const small = await dogBinary(p, ['vdi', 'read', 'alpha', String(off), '16']);
    const want = Buffer.from(data.subarray(0, 16));
    Buffer.from('HELLO').copy(want, 7);
    expect(small.stdout.equals(want)).toBe(true);
    const map = await dogOk(p, ['vdi', 'object', 'map', 'alpha']);
    expect(map.split('\n')[0]).toBe('Index       VID');
    expect(map.trimEnd().split('\n')).toHaveLength(1 + 4); // objects 0..3 (3 MiB+12345 .. 12.x MiB)
    const loc = await dogOk(p, ['vdi', 'object', 'location', 'alpha', '1']);
    expect(loc).toContain(`127.0.0.1:${p} has the object`);
    expect(loc).toContain(`According to sheepdog algorithm, the object should be located at:\n127.0.0.1:${p}\n`);
  });

  it('snapshots and clones with copy-on-write; each keeps its own bytes', async () => {
    const base = bytes(6 * MiB, 'snap');
    await dogOk(p, ['vdi', 'create', 'cow', '16M']);
    await dogOk(p, ['vdi', 'write', 'cow', '1000'], base);
    await dogOk(p, ['vdi', 'snapshot', '-s', 'before', 'cow']);
    const patch = bytes(MiB + 77, 'patch');
    await dogOk(p, ['vdi', 'write', 'cow', String(2 * MiB - 10)], patch);
    await dogOk(p, ['vdi', 'clone', '-s', 'before', 'cow', 'cowclone']);
    const cur = (await dogBinary(p, ['vdi', 'read', 'cow', '1000', String(base.length)])).stdout;
    const want = Buffer.from(base);
    patch.copy(want, 2 * MiB - 10 - 1000);
    expect(cur.equals(want)).toBe(true);
    const snap = (await dogBinary(p, ['vdi', 'read', '-s', 'before', 'cow', '1000', String(base.length)])).stdout;
    expect(snap.equals(base)).toBe(true);
    const clone = (await dogBinary(p, ['vdi', 'read', 'cowclone', '1000', String(base.length)])).stdout;
    expect(clone.equals(base)).toBe(true);
    await dogOk(p, ['vdi', 'write', 'cowclone', '0'], Buffer.from('clone-only'));
    expect((await dogBinary(p, ['vdi', 'read', '-s', 'before', 'cow', '0', '10'])).stdout.equals(Buffer.alloc(10))).toBe(true);
    const list = await dogOk(p, ['vdi', 'list']);
    expect(list).toMatch(/^s cow {10}1 {3}16 MB .* {6}1 {8}before {2}22$/m);
    expect(list).toMatch(/^ {2}cow {10}2 {3}16 MB /m);
    expect(list).toMatch(/^c cowclone {5}1 {3}16 MB /m);
    const tree = await dogOk(p, ['vdi', 'tree']);
    expect(tree).toMatch(/^cow---\[\d{4}-\d\d-\d\d \d\d:\d\d\]---\(you are here\)$/m);
  });

  it('rolls a VDI back to a snapshot', async () => {
    const before = bytes(3 * MiB, 'rb');
    await dogOk(p, ['vdi', 'create', 'rb', '8M']);
    await dogOk(p, ['vdi', 'write', 'rb', '0'], before);
    await dogOk(p, ['vdi', 'snapshot', '-s', 'good', 'rb']);
    await dogOk(p, ['vdi', 'write', 'rb', '100'], bytes(5 * MiB, 'bad'));
    const refused = await dog(p, ['vdi', 'rollback', '-s', 'good', 'rb']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('not rolling back rb (use -f to do it without asking)\n');
    await dogOk(p, ['vdi', 'rollback', '-s', 'good', 'rb', '-f']);
    const now = (await dogBinary(p, ['vdi', 'read', 'rb', '0', String(6 * MiB)])).stdout;
    expect(now.subarray(0, 3 * MiB).equals(before)).toBe(true);
    expect(now.subarray(3 * MiB).equals(Buffer.alloc(3 * MiB))).toBe(true);
    expect(await dogOk(p, ['vdi', 'list'])).toMatch(/^s rb {11}1 .* good {2}22\n {2}rb {11}\d /m);
  });

  it('resizes (grow only) and deletes VDIs and snapshots', async () => {
    await dogOk(p, ['vdi', 'create', 'gone', '8M']);
    await dogOk(p, ['vdi', 'write', 'gone', '0'], bytes(5 * MiB, 'gone'));
    await dogOk(p, ['vdi', 'resize', 'gone', '32M']);
    const j = JSON.parse(await dogOk(p, ['vdi', 'list', 'gone', '--json'])) as { size: number }[];
    expect(j[0]!.size).toBe(32 * MiB);
    const shrink = await dog(p, ['vdi', 'resize', 'gone', '16M']);
    expect(shrink.code).not.toBe(0);
    expect(shrink.stderr).toBe('Shrinking VDIs is not implemented\n');
    await dogOk(p, ['vdi', 'delete', 'gone']);
    expect(await dogOk(p, ['vdi', 'list'])).not.toMatch(/ gone /);
    const r = await dog(p, ['vdi', 'read', 'gone']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toBe('Failed to open VDI gone: No VDI found\n');
    await dogOk(p, ['vdi', 'delete', '-s', 'before', 'cow']);
    expect(await dogOk(p, ['vdi', 'list'])).not.toMatch(/^s cow/m);
  });

  it('reports unknown VDIs and snapshot tags clearly', async () => {
    const a = await dog(p, ['vdi', 'read', 'nosuch']);
    expect(a.stderr).toBe('Failed to open VDI nosuch: No VDI found\n');
    const b = await dog(p, ['vdi', 'read', '-s', 'nosuchtag', 'alpha']);
    expect(b.stderr).toBe('Failed to open VDI alpha (tag=nosuchtag): Failed to find requested tag\n');
    const c = await dog(p, ['vdi', 'check', 'nosuch']);
    expect(c.code).not.toBe(0);
    expect(c.stderr).toBe('Failed to open VDI nosuch: No VDI found\n');
  });

  it('checks a VDI and prints a summary', async () => {
    const out = await dogOk(p, ['vdi', 'check', 'alpha']);
    expect(out).toBe('finish check&repair alpha\nalpha: checked 5 object(s), fixed 0 replica(s), re-created 0 missing replica(s), all consistent\n');
  });
});
