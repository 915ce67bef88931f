// dog commands against the in-process fake sheep: request sequences, dog's output formats (vdi list, node
// list, lock list, object map, tree) and JSON, write/read round trips with COW, and one-line errors.
import { afterEach, describe, expect, it } from 'vitest';
import { PassThrough, Readable } from 'node:stream';
import crypto from 'node:crypto';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { sdHashVdi, vidToVdiOid, dataVidOffset } from '../../../src/proto/sheepdog/index.js';
import { DogContext, DogError, describeFailure } from '../../../src/dog/context.js';
import { clusterFormat, clusterInfo, clusterShutdown } from '../../../src/dog/cluster.js';
import { nodeInfo, nodeList } from '../../../src/dog/node.js';
import {
  VDI_LIST_HEADER,
  renderTree,
  vdiClone,
  vdiCreate,
  vdiDelete,
  vdiList,
  vdiLockList,
  vdiLockUnlock,
  vdiObjectMap,
  vdiResize,
  vdiSnapshot,
  vdiCheck,
  vdiTree,
} from '../../../src/dog/vdi.js';
import { pieces, vdiRead, vdiWrite } from '../../../src/dog/vdi-io.js';
import { majority, newest, progressLine } from '../../../src/dog/check.js';
import { strnumber } from '../../../src/dog/format.js';
import { FakeSheep } from '../client/fake-sheep.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function setup(opts = {}): Promise<{ s: FakeSheep; ctx: (json?: boolean) => { ctx: DogContext; text: () => string } }> {
  const s = new FakeSheep(opts);
  await s.start();
  cleanups.push(() => s.stop());
  const ctx = (json = false): { ctx: DogContext; text: () => string } => {
    let buf = '';
    const c = new DogContext({ address: '127.0.0.1', port: String(s.port), json }, { write: (t) => (buf += t), isTTY: false }, { write: () => undefined, isTTY: false });
    cleanups.push(() => c.close());
    return { ctx: c, text: () => buf };
  };
  return { s, ctx };
}

async function readAll(ctx: DogContext, name: string, off?: string, len?: string, snap?: string): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (d: Buffer) => chunks.push(d));
  await vdiRead(ctx, name, off, len, snap, out);
  return Buffer.concat(chunks);
}

describe('dog formats', () => {
  it('prints sizes as dog strnumber does', () => {
    expect(strnumber(4n << 20n)).toBe('4.0 MB');
    expect(strnumber(10n << 30n)).toBe('10 GB');
    expect(strnumber(0)).toBe('0.0 MB');
    expect(strnumber(1536n << 20n)).toBe('1.5 GB');
    expect(strnumber(12345, true)).toBe('12345');
  });

  it('draws trees like dog treeview', () => {
    const t = renderTree([
      { name: 'a', label: '[2024-01-01 00:00]', vid: 1, pvid: 0 },
      { name: 'a', label: '[2024-01-02 00:00]', vid: 2, pvid: 1 },
      { name: 'a', label: '(you are here)', vid: 3, pvid: 2 },
      { name: 'a', label: '(you are here)', vid: 4, pvid: 1 },
    ]);
    expect(t).toBe('a---[2024-01-01 00:00]-+-[2024-01-02 00:00]---(you are here)\n' + '                       `-(you are here)\n');
  });

  it('picks the copy with the single newest version where current copies disagree', () => {
    expect(newest([{ digest: 'old', ver: [3, 9] }, { digest: 'new', ver: [5, 1] }])).toBe('new');
    expect(newest([{ digest: 'a', ver: [5, 2] }, { digest: 'b', ver: [5, 1] }, null, 'unreadable'])).toBe('a');
    expect(newest([{ digest: 'a', ver: [5, 1] }, { digest: 'b', ver: [5, 1] }])).toBeNull();
    expect(newest([{ digest: 'a', ver: null }, 'down'])).toBeNull();
  });

  it('finds a Boyer-Moore majority only with more than half the copies', () => {
    expect(majority(['a', 'a', 'b'])).toBe('a');
    expect(majority(['a', 'b'])).toBeNull();
    expect(majority(['a'])).toBe('a');
    expect(majority([])).toBeNull();
  });

  it('draws the progress bar', () => {
    const l = progressLine(50, 100, 60);
    expect(l).toHaveLength(60);
    expect(l.startsWith(' 50.0 % [')).toBe(true);
  });

  it('splits ranges per object', () => {
    expect(pieces(5n, 10n, 8)).toEqual([
      { idx: 0, off: 5, len: 3 },
      { idx: 1, off: 0, len: 7 },
    ]);
    expect(pieces(0n, 0n, 8)).toEqual([]);
  });
});

describe('dog commands (fake sheep)', () => {
  it('formats with locking on by default and --no-lock off', async () => {
    const { s, ctx } = await setup({ formatted: false });
    const a = ctx();
    await clusterFormat(a.ctx, { copies: '2' }, async () => false);
    expect(a.text()).toBe('using backend plain store\n');
    const mk = s.log.find((r) => r.opcode === C.SD_OP_MAKE_FS)!;
    expect(mk.args).toMatchObject({ kind: 'cluster', copies: 2, flags: C.SD_CLUSTER_FLAG_USE_LOCK | C.SD_CLUSTER_FLAG_AUTO_VNODES });
    await clusterFormat(ctx().ctx, { lock: false }, async () => false);
    expect(s.log.filter((r) => r.opcode === C.SD_OP_MAKE_FS)[1]!.args).toMatchObject({ copies: 0, flags: C.SD_CLUSTER_FLAG_AUTO_VNODES });
  });

  it('refuses to format a non-empty cluster without -f', async () => {
    const { ctx } = await setup();
    await vdiCreate(ctx().ctx, 'x', '8M', {});
    await expect(clusterFormat(ctx().ctx, {}, async () => false)).rejects.toThrow(/not empty/);
    await clusterFormat(ctx().ctx, { force: true }, async () => false);
  });

  it('creates VDIs and lists them in dog format and JSON', async () => {
    const { s, ctx } = await setup();
    await vdiCreate(ctx().ctx, 'alpha', '10G', {});
    await vdiCreate(ctx().ctx, 'b', '512M', { copies: '1', prealloc: true });
    const l = ctx();
    await vdiList(l.ctx);
    const lines = l.text().split('\n');
    expect(lines[0] + '\n').toBe(VDI_LIST_HEADER);
    const vidB = sdHashVdi('b');
    // b is preallocated: 128 objects of 4 MiB "Used"
    const rowB = lines.find((x) => x.startsWith('  b '))!;
    // printf("%c %-8s %5d %7s %7s %7s %s  %7x %6s %13s %3u")
    expect(rowB).toMatch(new RegExp(`^  b {12}1  512 MB  512 MB  0\\.0 MB \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d  ${vidB.toString(16).padStart(7)}      1 {16}22$`));
    const j = ctx(true);
    await vdiList(j.ctx);
    const arr = JSON.parse(j.text()) as { name: string; vid: number; size: number; used: number }[];
    expect(arr.map((x) => x.name).sort()).toEqual(['alpha', 'b']);
    expect(arr.find((x) => x.name === 'alpha')!.size).toBe(10 * 2 ** 30);
    expect(arr.find((x) => x.name === 'b')!.used).toBe(512 * 2 ** 20);
    const idxWrites = s.log.filter((r) => r.opcode === C.SD_OP_WRITE_OBJ && r.args.kind === 'obj' && r.args.oid === vidToVdiOid(vidB));
    expect(idxWrites).toHaveLength(128);
    expect(idxWrites.map((r) => (r.args.kind === 'obj' ? r.args.offset : 0)).sort((x, y) => x - y)[1]).toBe(dataVidOffset(1));
  });

  it('round-trips unaligned multi-object writes and reads, with COW after a snapshot and a clone', async () => {
    const { s, ctx } = await setup();
    await vdiCreate(ctx().ctx, 'v', '16M', {});
    const data = crypto.randomBytes(6 * 2 ** 20 + 123);
    const off = 2 ** 20 * 3 + 7;
    await vdiWrite(ctx().ctx, 'v', String(off), undefined, Readable.from([data.subarray(0, 1000), data.subarray(1000)]));
    expect((await readAll(ctx().ctx, 'v', String(off), String(data.length))).equals(data)).toBe(true);
    const whole = await readAll(ctx().ctx, 'v');
    expect(whole.length).toBe(16 * 2 ** 20);
    expect(whole.subarray(0, off).equals(Buffer.alloc(off))).toBe(true);
    const vid = sdHashVdi('v');
    // objects 0..2 created (1 partially), 3 is unallocated? off = 3M+7: objects 0 (3M..4M) 1 and 2 (ends at 9M+130)
    const creates = s.log.filter((r) => r.opcode === C.SD_OP_CREATE_AND_WRITE_OBJ);
    expect(creates.every((r) => (r.flags & C.SD_FLAG_CMD_COW) === 0)).toBe(true);
    await vdiSnapshot(ctx().ctx, 'v', 'snap1');
    const patch = Buffer.from('patched!');
    await vdiWrite(ctx().ctx, 'v', String(off + 10), undefined, Readable.from([patch]));
    const cow = s.log.filter((r) => r.opcode === C.SD_OP_CREATE_AND_WRITE_OBJ).at(-1)!;
    expect(cow.flags & C.SD_FLAG_CMD_COW).toBe(C.SD_FLAG_CMD_COW);
    expect(cow.args.kind === 'obj' && cow.args.cowOid).toBe((BigInt(vid) << 32n) | 0n);
    const cur = await readAll(ctx().ctx, 'v', String(off), String(data.length));
    const expected = Buffer.from(data);
    patch.copy(expected, 10);
    expect(cur.equals(expected)).toBe(true);
    expect((await readAll(ctx().ctx, 'v', String(off), String(data.length), 'snap1')).equals(data)).toBe(true);
    await vdiClone(ctx().ctx, 'v', 'c', 'snap1');
    expect((await readAll(ctx().ctx, 'c', String(off), String(data.length))).equals(data)).toBe(true);
    const l = ctx();
    await vdiList(l.ctx);
    expect(l.text()).toMatch(/^s v +1 /m);
    expect(l.text()).toMatch(/^c c +1 /m);
    const m = ctx();
    await vdiObjectMap(m.ctx, 'v', undefined, undefined);
    expect(m.text().split('\n')[0]).toBe('Index       VID');
    expect(m.text()).toContain(`00000001 ${vid.toString(16).padStart(8)}\n`); // still inherited from the snapshot
  });

  it('writes only the bytes given (LEN caps them) and errors clearly on a bad offset', async () => {
    const { ctx } = await setup();
    await vdiCreate(ctx().ctx, 'w', '8M', {});
    await vdiWrite(ctx().ctx, 'w', '0', '3', Readable.from([Buffer.from('abcdef')]));
    expect((await readAll(ctx().ctx, 'w', '0', '6')).toString('latin1')).toBe('abc\0\0\0');
    await expect(vdiWrite(ctx().ctx, 'w', '9M', undefined, Readable.from([Buffer.from('x')]))).rejects.toThrow('Write offset is beyond the end of the VDI');
    await expect(readAll(ctx().ctx, 'nope')).rejects.toThrow('Failed to open VDI nope: No VDI found');
  });

  it('deletes by zeroing index entries in batches then DEL_VDI, and grows with resize', async () => {
    const { s, ctx } = await setup();
    await vdiCreate(ctx().ctx, 'd', '1G', { prealloc: true });
    await vdiDelete(ctx().ctx, 'd', undefined);
    const vid = sdHashVdi('d');
    const zeroWrites = s.log.filter((r) => r.opcode === C.SD_OP_WRITE_OBJ && r.args.kind === 'obj' && r.args.oid === vidToVdiOid(vid) && r.dataLength === 512);
    expect(zeroWrites).toHaveLength(2); // 256 entries in batches of 128
    expect(s.log.at(-1)!.opcode).toBe(C.SD_OP_DEL_VDI);
    await vdiCreate(ctx().ctx, 'r', '8M', {});
    await vdiResize(ctx().ctx, 'r', '16M');
    const j = ctx(true);
    await vdiList(j.ctx, 'r');
    expect((JSON.parse(j.text()) as { size: number }[])[0]!.size).toBe(16 * 2 ** 20);
    await expect(vdiResize(ctx().ctx, 'r', '8M')).rejects.toThrow('Shrinking VDIs is not implemented');
  });

  it('lists locks in dog format and unlocks after checking replicas', async () => {
    const { s, ctx } = await setup();
    await vdiCreate(ctx().ctx, 'test', '8M', {});
    await vdiWrite(ctx().ctx, 'test', '0', undefined, Readable.from([Buffer.from('x')]));
    await ctx().ctx.client.lockVdi('test');
    const l = ctx();
    await vdiLockList(l.ctx);
    // printf("%c %-8s  %5u  %6x  %-13s ") then printf(" %s\n", owner)
    expect(l.text()).toBe(`  Name         Id  VDI id  Tag            Owner node(s)\n  test          1  7c2b25                 IPv4 ip:127.0.0.1 port:${s.port}\n`);
    const u = ctx();
    await vdiLockUnlock(u.ctx, 'test', undefined);
    expect(u.text()).toContain('test: checked 2 object(s), fixed 0 replica(s), re-created 0 missing replica(s), all consistent');
    expect(u.text()).toContain('released the lock on test');
    expect(s.locks.get(0x7c2b25)).toBeUndefined();
    await expect(vdiLockUnlock(ctx().ctx, 'test', undefined)).rejects.toThrow('VDI test is not locked');
  });

  it('reports a lost object in vdi check', async () => {
    const { s, ctx } = await setup();
    await vdiCreate(ctx().ctx, 'k', '8M', {});
    await vdiWrite(ctx().ctx, 'k', '0', undefined, Readable.from([Buffer.from('x')]));
    s.objects.delete(BigInt(sdHashVdi('k')) << 32n);
    const k = ctx();
    await expect(vdiCheck(k.ctx, 'k', undefined)).rejects.toThrow(/could not be repaired/);
    expect(k.text()).toContain(`no node has ${(BigInt(sdHashVdi('k')) << 32n).toString(16).padStart(16, '0')}`);
  });

  it('prints node list and cluster info like dog', async () => {
    const { s, ctx } = await setup();
    const n = ctx();
    await nodeList(n.ctx);
    expect(n.text()).toBe(`  Id   Host:Port         V-Nodes       Zone\n   0   ${`127.0.0.1:${s.port}`.padEnd(20)}\t128          0\n`);
    const ci = ctx();
    await clusterInfo(ci.ctx);
    expect(ci.text()).toMatch(/^Cluster status: running, auto-recovery enabled\n\nCluster created at \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n\nEpoch Time {11}Version \[Host:Port:V-Nodes,,,\]\n\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {6}1 \[127\.0\.0\.1:\d+:128\]\n$/);
    const j = ctx(true);
    await clusterInfo(j.ctx);
    expect(JSON.parse(j.text())).toMatchObject({ status: 'running', lock: true, store: 'plain' });
  });

  it('maps failures to one line and dog exit codes', async () => {
    const { s, ctx } = await setup({ formatted: false });
    const err = await vdiCreate(ctx().ctx, 'x', '1G', {}).catch((e: unknown) => e);
    expect(describeFailure(err)).toEqual({ message: 'Failed to create VDI x: Waiting for cluster to be formatted', exitCode: 1 });
    s.formatted = true;
    await vdiCreate(ctx().ctx, 'x', '1G', {});
    const dup = await vdiCreate(ctx().ctx, 'x', '1G', {}).catch((e: unknown) => e);
    expect(describeFailure(dup)).toEqual({ message: 'Failed to create VDI x: VDI exists already', exitCode: 3 });
    await s.stop();
    const down = await vdiList(ctx().ctx).catch((e: unknown) => e);
    expect(describeFailure(down)).toEqual({ message: `cannot connect to 127.0.0.1:${s.port}: connection refused`, exitCode: 2 });
    expect(describeFailure(new DogError('x', 64)).exitCode).toBe(64);
  });
});

describe('vdi check with three replicas (fake nodes)', () => {
  it('repairs a differing and a missing replica from the majority and reports it', async () => {
    const nodes = [new FakeSheep({ copies: 3 }), new FakeSheep({ copies: 3 }), new FakeSheep({ copies: 3 })];
    for (const [i, n] of nodes.entries()) {
      n.zone = i;
      await n.start();
      cleanups.push(() => n.stop());
    }
    for (const n of nodes) n.cluster = nodes;
    const gw = nodes[0]!;
    // The gateway holds the VDI metadata; every node holds a replica of each object.
    const c = new DogContext({ port: String(gw.port) }, { write: () => undefined, isTTY: false }, { write: () => undefined, isTTY: false });
    cleanups.push(() => c.close());
    await vdiCreate(c, 'r3', '8M', { copies: '3' });
    await vdiWrite(c, 'r3', '0', undefined, Readable.from([Buffer.alloc(5 * 2 ** 20, 3)]));
    for (const n of nodes.slice(1)) for (const [oid, obj] of gw.objects) n.objects.set(oid, Buffer.from(obj));
    const vid = sdHashVdi('r3');
    const o0 = BigInt(vid) << 32n;
    const o1 = o0 | 1n;
    nodes[1]!.objects.get(o0)!.fill(9, 0, 10); // corrupt one replica
    nodes[2]!.objects.delete(o1); // lose another
    let out = '';
    const ctx = new DogContext({ port: String(gw.port) }, { write: (t) => (out += t), isTTY: false }, { write: () => undefined, isTTY: false });
    cleanups.push(() => ctx.close());
    await vdiCheck(ctx, 'r3', undefined);
    const hex = (o: bigint): string => o.toString(16).padStart(16, '0');
    expect(out).toContain(`fixed replica ${hex(o0)}\n`);
    expect(out).toContain(`fixed missing ${hex(o1)}\n`);
    expect(out).toContain('finish check&repair r3\nr3: checked 3 object(s), fixed 1 replica(s), re-created 1 missing replica(s), all consistent\n');
    expect(nodes[1]!.objects.get(o0)!.equals(gw.objects.get(o0)!)).toBe(true);
    expect(nodes[2]!.objects.get(o1)!.equals(gw.objects.get(o1)!)).toBe(true);
    const hashes = nodes.flatMap((n) => n.log.filter((r) => r.opcode === C.SD_OP_GET_HASH));
    expect(hashes).toHaveLength(9); // 3 objects (inode + 2 data) x 3 replicas
  });

  it('reports no majority when all replicas differ', async () => {
    const nodes = [new FakeSheep({ copies: 2 }), new FakeSheep({ copies: 2 })];
    for (const [i, n] of nodes.entries()) {
      n.zone = i;
      await n.start();
      cleanups.push(() => n.stop());
    }
    for (const n of nodes) n.cluster = nodes;
    let out = '';
    const ctx = new DogContext({ port: String(nodes[0]!.port) }, { write: (t) => (out += t), isTTY: false }, { write: () => undefined, isTTY: false });
    cleanups.push(() => ctx.close());
    await vdiCreate(ctx, 'd2', '4M', { copies: '2' });
    await vdiWrite(ctx, 'd2', '0', undefined, Readable.from([Buffer.from('x')]));
    const o0 = BigInt(sdHashVdi('d2')) << 32n;
    for (const [oid, obj] of nodes[0]!.objects) nodes[1]!.objects.set(oid, Buffer.from(obj));
    nodes[1]!.objects.get(o0)!.fill(1, 100, 200);
    await expect(vdiCheck(ctx, 'd2', undefined)).rejects.toThrow('d2: some objects could not be repaired');
    expect(out).toContain(`no majority of ${o0.toString(16).padStart(16, '0')}\n`);
  });
});

describe('dog --json on every command (fake sheep)', () => {
  it('prints exactly one JSON document per command', async () => {
    const { s, ctx } = await setup();
    const json = async (fn: (c: DogContext) => Promise<void>): Promise<unknown> => {
      const j = ctx(true);
      await fn(j.ctx);
      const lines = j.text().trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      return JSON.parse(lines[0]!) as unknown;
    };
    expect(await json((c) => clusterFormat(c, { copies: '1' }, async () => false))).toMatchObject({ formatted: true, copies: 1, lock: true });
    expect(await json((c) => vdiCreate(c, 'j', '8M', {}))).toMatchObject({ name: 'j', vid: sdHashVdi('j'), size: 8 * 2 ** 20 });
    expect(await json((c) => vdiWrite(c, 'j', '0', undefined, Readable.from([Buffer.from('abc')])))).toMatchObject({ written: 3, objectsCreated: 1 });
    expect(await json((c) => vdiSnapshot(c, 'j', 't1'))).toMatchObject({ name: 'j', tag: 't1', snapshotVid: sdHashVdi('j') });
    expect(await json((c) => vdiClone(c, 'j', 'jc', 't1'))).toMatchObject({ name: 'jc', source: 'j' });
    expect(await json((c) => vdiResize(c, 'j', '16M'))).toMatchObject({ size: 16 * 2 ** 20 });
    expect(await json((c) => vdiObjectMap(c, 'j', undefined, undefined))).toEqual([{ index: 0, vid: sdHashVdi('j') }]);
    expect(await json((c) => vdiCheck(c, 'j', undefined))).toMatchObject({ name: 'j', objects: 2, lost: [] });
    expect(await json((c) => vdiLockList(c))).toEqual([]);
    const tree = (await json((c) => vdiTree(c))) as { name: string }[];
    expect(tree.map((t) => t.name).sort()).toEqual(['j', 'j', 'jc']);
    expect(await json((c) => nodeList(c))).toHaveLength(1);
    expect(await json((c) => nodeInfo(c))).toMatchObject({ totalVdiSize: 16 * 2 ** 20 + 8 * 2 ** 20 });
    expect(await json((c) => vdiDelete(c, 'jc', undefined))).toMatchObject({ name: 'jc', deleted: true });
    expect(await json((c) => clusterShutdown(c))).toEqual({ shutdown: true });
    expect(s.log.at(-1)!.opcode).toBe(C.SD_OP_SHUTDOWN);
  });

  it('draws dog progress lines on a TTY during vdi check', async () => {
    const { s } = await setup();
    let out = '';
    const c = new DogContext({ port: String(s.port) }, { write: (t) => (out += t), isTTY: true }, { write: () => undefined, isTTY: false });
    cleanups.push(() => c.close());
    await vdiCreate(c, 'p', '12M', {});
    await vdiWrite(c, 'p', '0', undefined, Readable.from([Buffer.alloc(9 * 2 ** 20, 1)]));
    out = '';
    await vdiCheck(c, 'p', undefined);
    expect(out).toContain('\r  0.0 % [');
    expect(out).toContain('100.0 % [');
    expect(out).toMatch(/\] 12 MB \/ 12 MB +\n/);
    expect(out.endsWith('finish check&repair p\np: checked 4 object(s), fixed 0 replica(s), re-created 0 missing replica(s), all consistent\n')).toBe(true);
  });
});

describe('vdi check with unreadable or unreachable replicas (fake nodes)', () => {
  it('repairs a replica that answers EIO from the only readable copy, and reports an unreachable node', async () => {
    const nodes = [new FakeSheep({ copies: 2 }), new FakeSheep({ copies: 2 })];
    for (const [i, n] of nodes.entries()) {
      n.zone = i;
      await n.start();
      cleanups.push(() => n.stop());
    }
    for (const n of nodes) n.cluster = nodes;
    let out = '';
    const ctx = new DogContext({ port: String(nodes[0]!.port) }, { write: (t) => (out += t), isTTY: false }, { write: () => undefined, isTTY: false });
    cleanups.push(() => ctx.close());
    await vdiCreate(ctx, 'e2', '4M', { copies: '2' });
    await vdiWrite(ctx, 'e2', '0', undefined, Readable.from([Buffer.from('payload')]));
    for (const [oid, obj] of nodes[0]!.objects) nodes[1]!.objects.set(oid, Buffer.from(obj));
    const o0 = BigInt(sdHashVdi('e2')) << 32n;
    nodes[1]!.objects.get(o0)!.fill(7, 0, 4); // its bytes are bad, and it says so with EIO
    nodes[1]!.hook = (req) => (req.opcode === C.SD_OP_GET_HASH && req.args.kind === 'obj' && req.args.oid === o0 ? { action: 'reply', result: C.SD_RES_EIO } : undefined);
    out = '';
    await vdiCheck(ctx, 'e2', undefined);
    expect(out).toBe(`fixed replica ${o0.toString(16).padStart(16, '0')}\nfinish check&repair e2\ne2: checked 2 object(s), fixed 1 replica(s), re-created 0 missing replica(s), all consistent\n`);
    expect(nodes[1]!.objects.get(o0)!.equals(nodes[0]!.objects.get(o0)!)).toBe(true);
    await nodes[1]!.stop();
    out = '';
    await expect(vdiCheck(ctx, 'e2', undefined)).rejects.toThrow('e2: some objects could not be repaired');
    expect(out).toContain(`cannot reach 127.0.0.1:${nodes[1]!.port} for ${o0.toString(16).padStart(16, '0')}: cannot connect to`);
  });
});
