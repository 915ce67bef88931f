// Object I/O that two target hosts (VdiDevices with SHARED locks behind different gateway sheep) must agree
// on, decided by each object's primary replica (src/sheep/serial.ts):
// - both hosts write different blocks of one not-yet-allocated object at the same moment; both create it, and
//   the second creation must land in the first one's object instead of replacing it (a replacement silently
//   zeroes the first host's acknowledged write). Every byte of both writes reads back through both hosts and
//   through a fresh device.
// - COMPARE AND WRITE is atomic across the hosts: concurrent compare-and-increment loops on one counter through
//   both hosts lose no increment, also when the counter's object starts unallocated.
// - persistent-reservation changes made through both hosts at the same instant (REGISTER of many I_T nexuses)
//   are all kept in the cluster-wide PR attribute.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { VdiDevice } from '../../src/block/vdi.js';
import { ClusterReservationStore } from '../../src/iscsi/scsi/pr-cluster.js';
import * as SCSI from '../../src/proto/scsi/constants.js';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';
import { dogOk, startCluster, type SheepProc } from './dog-harness.js';

const MiB = 2 ** 20;
const OBJ = 4 * MiB;
const ROUNDS = 12;

let nodes: SheepProc[];
beforeAll(async () => {
  nodes = await startCluster(3);
  await dogOk(nodes[0]!.port, ['cluster', 'format', '-c', '3']);
  await dogOk(nodes[0]!.port, ['vdi', 'create', 'race', `${ROUNDS * 4}M`]);
  await dogOk(nodes[0]!.port, ['vdi', 'create', 'caw', '16M']);
  await dogOk(nodes[0]!.port, ['vdi', 'create', 'pr', '16M']);
});
afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe('object I/O serialized across two target hosts', () => {
  it('keeps both hosts\' writes when both create the object at once', async () => {
    const a = await VdiDevice.open({ gateways: nodes[0]!.addr, vdi: 'race', shared: true });
    const b = await VdiDevice.open({ gateways: nodes[1]!.addr, vdi: 'race', shared: true });
    const written: { off: number; data: Buffer }[] = [];
    try {
      for (let i = 0; i < ROUNDS; i++) {
        // Both hosts cache "unallocated" for object i before either writes.
        expect((await a.read(i * OBJ, 512)).equals(Buffer.alloc(512))).toBe(true);
        expect((await b.read(i * OBJ + MiB, 512)).equals(Buffer.alloc(512))).toBe(true);
        const x = { off: i * OBJ + 4096, data: crypto.randomBytes(8192) };
        const y = { off: i * OBJ + 2 * MiB, data: crypto.randomBytes(8192) };
        await Promise.all([a.write(x.off, x.data), b.write(y.off, y.data)]);
        written.push(x, y);
      }
      for (const w of written) {
        expect((await a.read(w.off, w.data.length)).equals(w.data), `host A at ${w.off}`).toBe(true);
        expect((await b.read(w.off, w.data.length)).equals(w.data), `host B at ${w.off}`).toBe(true);
      }
    } finally {
      await a.close();
      await b.close();
    }
    const fresh = await VdiDevice.open({ gateways: nodes[2]!.addr, vdi: 'race' });
    try {
      for (const w of written) expect((await fresh.read(w.off, w.data.length)).equals(w.data), `fresh at ${w.off}`).toBe(true);
    } finally {
      await fresh.close();
    }
  });

  it('COMPARE AND WRITE through both hosts loses no increment of a shared counter', async () => {
    const a = await VdiDevice.open({ gateways: nodes[0]!.addr, vdi: 'caw', shared: true });
    const b = await VdiDevice.open({ gateways: nodes[1]!.addr, vdi: 'caw', shared: true });
    const PER_HOST = 20;
    const counter = (v: number): Buffer => {
      const blk = Buffer.alloc(512);
      blk.writeUInt32LE(v, 0);
      return blk;
    };
    /** Increment the counter at `off` `n` times with compare-and-write; returns the miscompares seen. */
    const incr = async (dev: VdiDevice, off: number, n: number): Promise<number> => {
      let misses = 0;
      for (let done = 0; done < n; ) {
        const cur = await dev.read(off, 512);
        const at = await dev.compareAndWrite(off, cur, counter(cur.readUInt32LE(0) + 1));
        if (at === null) done++;
        else misses++;
      }
      return misses;
    };
    try {
      // 8 MiB: an unallocated object, so the first increments race to create it; 512: then an allocated one.
      for (const off of [8 * MiB, 512]) {
        const misses = await Promise.all([incr(a, off, PER_HOST), incr(b, off, PER_HOST), incr(a, off, PER_HOST), incr(b, off, PER_HOST)]);
        expect((await a.read(off, 512)).readUInt32LE(0), `counter at ${off} (miscompares ${misses.join('/')})`).toBe(4 * PER_HOST);
        expect((await b.read(off, 512)).readUInt32LE(0)).toBe(4 * PER_HOST);
      }
      // A miscompare names the first differing byte and writes nothing.
      const before = await a.read(512, 512);
      const wrong = Buffer.from(before);
      wrong[100] = (wrong[100] ?? 0) ^ 0xff;
      expect(await b.compareAndWrite(512, wrong, Buffer.alloc(512, 0x55))).toBe(100);
      expect((await a.read(512, 512)).equals(before)).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('keeps every persistent-reservation change two hosts make at the same instant', async () => {
    const a = await VdiDevice.open({ gateways: nodes[0]!.addr, vdi: 'pr', shared: true });
    const b = await VdiDevice.open({ gateways: nodes[1]!.addr, vdi: 'pr', shared: true });
    try {
      const register = (key: number): Buffer => {
        const p = Buffer.alloc(24);
        p.writeBigUInt64BE(BigInt(key), 8);
        return p;
      };
      const storeA = new ClusterReservationStore(a.sharedRef()!.client, 'pr');
      expect(await storeA.prOut('iqn.a,i,0x100', SCSI.PROUT_REGISTER, 0, register(0x100))).toEqual({ ok: true });
      // B finds the attribute only after A changed its value (the lookup matches name, tag and key).
      const storeB = new ClusterReservationStore(b.sharedRef()!.client, 'pr');
      const PER_HOST = 12;
      const jobs: Promise<unknown>[] = [];
      for (let i = 0; i < PER_HOST; i++) {
        jobs.push(storeA.prOut(`iqn.a,i,0x${i}`, SCSI.PROUT_REGISTER, 0, register(0x1000 + i)));
        jobs.push(storeB.prOut(`iqn.b,i,0x${i}`, SCSI.PROUT_REGISTER, 0, register(0x2000 + i)));
      }
      const outcomes = await Promise.all(jobs);
      expect(outcomes.every((o) => (o as { ok: boolean }).ok)).toBe(true);
      const keys = await storeB.prIn(SCSI.PRIN_READ_KEYS, 8192);
      if (!Buffer.isBuffer(keys)) throw new Error('READ KEYS failed');
      expect(keys.readUInt32BE(4)).toBe(8 * (2 * PER_HOST + 1));
      expect(keys.readUInt32BE(0)).toBe(2 * PER_HOST + 1); // PRgeneration: one per registration
      const seen = new Set<bigint>();
      for (let o = 8; o < keys.length; o += 8) seen.add(keys.readBigUInt64BE(o));
      expect(seen.has(0x100n)).toBe(true);
      for (let i = 0; i < PER_HOST; i++) {
        expect(seen.has(BigInt(0x1000 + i))).toBe(true);
        expect(seen.has(BigInt(0x2000 + i))).toBe(true);
      }
    } finally {
      await a.close();
      await b.close();
    }
  });
});
