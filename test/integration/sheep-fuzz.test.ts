// Bad input against a live sheep process: at least 100 000 mutated and random requests (bad opcodes, huge
// data_length, short headers, garbage, early close) over many connections. The sheep must never crash, never
// hold more memory than its limits allow, and a sentinel client on its own connection must be answered
// correctly throughout. Seeded: a failure prints the seed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import * as C from '../../src/proto/sheepdog/constants.js';
import { SdResponseDecoder } from '../../src/proto/sheepdog/frame.js';
import { emptyReqArgs, encodeRequestHeader, requestVariant, type ReqArgs, type SdRequest } from '../../src/proto/sheepdog/header.js';
import { fixedString } from '../../src/proto/sheepdog/hash.js';
import { vidToDataOid, vidToVdiOid } from '../../src/proto/sheepdog/oid.js';
import { Rng, mutate } from '../../src/drill/fuzz.js';
import { ephemeralPort, waitForPort } from '../helpers/ports.js';
import { SHEEPFOLD_BIN, cleanupTempDirs, killAll, start, tempDir, waitForOutput, type Proc, lacking } from '../helpers/proc.js';
import { SheepWire, okReply } from '../helpers/sheep-wire.js';

const TOTAL = Number(process.env.SHEEP_FUZZ_REQUESTS ?? 100_000);
const SEED = Number(process.env.SHEEP_FUZZ_SEED ?? Date.now() % 1_000_000);
const MAX_PAYLOAD = 16 * 1024 * 1024;
const MAX_INFLIGHT_BYTES = 128 * 1024 * 1024;
const built = !lacking([], { 'the built sheepfold CLI': SHEEPFOLD_BIN });

let sheep: Proc;
let port: number;
let vid = 0;
let sentinelVid = 0;
const SENTINEL_DATA = Buffer.alloc(4096, 0x5e);

function frame(opcode: number, args: Partial<ReqArgs>, fields: Partial<SdRequest> = {}, payload?: Buffer): Buffer {
  const req: SdRequest = {
    protoVer: opcode >= 0x80 ? C.SD_SHEEP_PROTO_VER : 1,
    opcode,
    flags: fields.flags ?? (payload ? C.SD_FLAG_CMD_WRITE : 0),
    epoch: 0,
    id: fields.id ?? 0,
    dataLength: fields.dataLength ?? payload?.length ?? 0,
    args: { ...emptyReqArgs(requestVariant(opcode)), ...args } as ReqArgs,
  };
  return payload ? Buffer.concat([encodeRequestHeader(req), payload]) : encodeRequestHeader(req);
}

/** Valid requests of every kind the sheep serves, as mutation seeds. */
function seeds(): Buffer[] {
  const ino = vidToVdiOid(vid);
  const dat = vidToDataOid(vid, 1);
  const name = Buffer.concat([fixedString('fuzz', 256), Buffer.alloc(256)]);
  return [
    frame(C.SD_OP_READ_OBJ, { oid: ino }, { dataLength: C.TGT_INODE_SIZE, flags: C.SD_FLAG_CMD_TGT }),
    frame(C.SD_OP_READ_OBJ, { oid: ino }, { dataLength: 1, flags: C.SD_FLAG_CMD_TGT }),
    frame(C.SD_OP_READ_OBJ, { oid: dat, offset: 4096 }, { dataLength: 4096 }),
    frame(C.SD_OP_WRITE_OBJ, { oid: dat, offset: 512 }, { flags: 0x25 }, Buffer.alloc(512, 7)),
    frame(C.SD_OP_CREATE_AND_WRITE_OBJ, { oid: vidToDataOid(vid, 9), offset: 0 }, { flags: 0x25 }, Buffer.alloc(1024, 9)),
    frame(C.SD_OP_CREATE_AND_WRITE_OBJ, { oid: vidToDataOid(vid, 10), cowOid: dat }, { flags: 0x27 }, Buffer.alloc(256, 1)),
    frame(C.SD_OP_WRITE_OBJ, { oid: ino, offset: C.SD_INODE_HEADER_SIZE + 36 }, { flags: 0x21 }, Buffer.from([0, 0, 0, 0])),
    frame(C.SD_OP_LOCK_VDI, { type: 1 }, {}, name),
    frame(C.SD_OP_RELEASE_VDI, { baseVdiId: vid, type: 1 }, {}),
    frame(C.SD_OP_GET_VDI_INFO, {}, {}, name),
    frame(C.SD_OP_NEW_VDI, { vdiSize: 1n << 22n }, {}, fixedString('fz', 256)),
    frame(C.SD_OP_DEL_VDI, {}, {}, Buffer.concat([fixedString('fz', 256), Buffer.alloc(256)])),
    frame(C.SD_OP_READ_VDIS, {}, { dataLength: C.SD_VDI_BITMAP_SIZE }),
    frame(C.SD_OP_FLUSH_VDI, { oid: ino }, {}),
    frame(C.SD_OP_DISCARD_OBJ, { oid: vidToDataOid(vid, 10) }, {}),
    frame(C.SD_OP_GET_CLUSTER_DEFAULT, {}, {}),
    frame(C.SD_OP_GET_NODE_LIST, {}, { dataLength: 800 }),
    frame(C.SD_OP_STAT_CLUSTER, { nodesNr: 1 }, { dataLength: 128 }),
    frame(C.SD_OP_CLUSTER_INFO, {}, { dataLength: C.SD_CLUSTER_INFO_SIZE }),
    frame(C.SD_OP_GET_VDI_COPIES, {}, { dataLength: 1428 * 8 }),
    frame(C.SD_OP_GET_HASH, { oid: dat }, {}),
    frame(C.SD_OP_EXIST, { oid: dat }, {}),
    frame(C.SD_OP_OIDS_EXIST, {}, { flags: C.SD_FLAG_CMD_WRITE | C.SD_FLAG_CMD_PIGGYBACK }, Buffer.alloc(16, 1)),
    frame(C.SD_OP_READ_PEER, { oid: dat }, { dataLength: 512, epoch: 1 } as Partial<SdRequest>),
    frame(C.SD_OP_GET_VDI_ATTR, {}, { flags: C.SD_FLAG_CMD_WRITE | C.SD_FLAG_CMD_CREAT }, Buffer.concat([fixedString('fuzz', 512), Buffer.alloc(C.SD_ATTR_OBJ_SIZE - 512)])),
    frame(C.SD_OP_REPAIR_REPLICA, { oid: dat }, {}),
  ];
}

/** Opcodes the fuzzer must not send: they legitimately end or wipe the node under test. */
const FORBIDDEN = new Set([C.SD_OP_SHUTDOWN, C.SD_OP_KILL_NODE, C.SD_OP_MAKE_FS]);

function oneInput(rng: Rng, pool: Buffer[]): Buffer {
  const k = rng.int(20);
  let b: Buffer;
  if (k === 0) b = rng.bytes(rng.int(200));
  else if (k === 1) b = rng.bytes(rng.int(48));
  else {
    b = pool[rng.int(pool.length)]!;
    for (let n = 1 + rng.int(3); n > 0; n--) b = mutate(rng, b, pool);
  }
  if (b.length >= 2 && FORBIDDEN.has(b[1]!)) b[1] = 0x7f;
  return b;
}

let replies = 0;

/** One fuzz connection: write `n` inputs, then close early, half-close, or wait for the server to end it. */
function fuzzConnection(rng: Rng, pool: Buffer[], n: number): Promise<void> {
  return new Promise((resolve) => {
    const dec = new SdResponseDecoder({ maxPayload: 64 * 1024 * 1024 });
    const s = net.connect({ port, host: '127.0.0.1' });
    const mode = rng.int(3);
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve();
    };
    const timer = setTimeout(done, 3000);
    s.on('error', done);
    s.on('close', done);
    s.on('data', (chunk: Buffer) => {
      dec.push(chunk);
      while (dec.next()) replies++;
    });
    s.once('connect', () => {
      const chunks: Buffer[] = [];
      for (let i = 0; i < n; i++) chunks.push(oneInput(rng, pool));
      const all = Buffer.concat(chunks);
      if (mode === 0) {
        s.write(all.subarray(0, rng.int(all.length + 1)), () => s.destroy());
      } else {
        s.write(all);
        s.end();
      }
    });
  });
}

function vmHwmKb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

beforeAll(async () => {
  if (!built) return;
  const dir = tempDir('sheep-fuzz-');
  port = await ephemeralPort();
  sheep = start(process.execPath, [
    SHEEPFOLD_BIN, 'sheep', '--store', path.join(dir, 'store'), '--port', String(port), '--log-level', 'error',
    '--max-payload', String(MAX_PAYLOAD), '--max-inflight-bytes', String(MAX_INFLIGHT_BYTES),
  ]);
  await waitForOutput(sheep, /sheep ready/);
  await waitForPort(port);
  const w = await SheepWire.connect({ port });
  okReply(await w.makeFs({ copies: 1, flags: C.SD_CLUSTER_FLAG_USE_LOCK }));
  vid = (okReply(await w.newVdi('fuzz', 64n << 20n)).rsp.args as { vdiId: number }).vdiId;
  okReply(await w.create(vidToDataOid(vid, 1), 0, Buffer.alloc(8192, 0xab)));
  okReply(await w.setIndex(vid, 1, vid));
  sentinelVid = (okReply(await w.newVdi('sentinel', 8n << 20n)).rsp.args as { vdiId: number }).vdiId;
  okReply(await w.create(vidToDataOid(sentinelVid, 0), 0, SENTINEL_DATA));
  okReply(await w.setIndex(sentinelVid, 0, sentinelVid));
  w.close();
});

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe.skipIf(!built)('sheep under bad input', () => {
  it(`survives ${TOTAL} mutated and random requests while a sentinel client is served (seed ${SEED})`, async () => {
    const pool = seeds();
    const sentinel = await SheepWire.connect({ port });
    let sentinelOk = 0;
    let stop = false;
    const sentinelLoop = (async () => {
      while (!stop) {
        const nl = await sentinel.request(C.SD_OP_GET_NODE_LIST, { dataLength: 800 });
        expect(nl.rsp.result).toBe(0);
        expect(nl.data.length).toBe(80);
        const def = await sentinel.request(C.SD_OP_GET_CLUSTER_DEFAULT);
        expect(def.rsp.result).toBe(0);
        expect(def.rsp.args).toMatchObject({ nrCopies: 1 });
        const rd = await sentinel.read(vidToDataOid(sentinelVid, 0), 0, 4096);
        expect(rd.rsp.result).toBe(0);
        expect(rd.data.equals(SENTINEL_DATA)).toBe(true);
        sentinelOk++;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    let sent = 0;
    const workers = 6;
    await Promise.all(
      Array.from({ length: workers }, async (_, wi) => {
        const wrng = new Rng(SEED * 31 + wi);
        while (sent < TOTAL) {
          const n = 20 + wrng.int(200);
          sent += n;
          await fuzzConnection(wrng, pool, n);
          expect(sheep.child.exitCode, `sheep exited (seed ${SEED}):\n${sheep.output().slice(-3000)}`).toBeNull();
        }
      }),
    );
    stop = true;
    await sentinelLoop;
    // The sheep is alive, still serves its data, and its peak memory stayed within its limits.
    const w = await SheepWire.connect({ port });
    const ino = okReply(await w.read(vidToVdiOid(sentinelVid), 0, 4664));
    expect(ino.data.subarray(0, 9).toString()).toBe('sentinel\0');
    expect(okReply(await w.read(vidToDataOid(sentinelVid, 0), 0, 4096)).data.equals(SENTINEL_DATA)).toBe(true);
    w.close();
    sentinel.close();
    const hwmMb = vmHwmKb(sheep.pid) / 1024;
    console.log(`RELIABILITY sheep-fuzz requests=${sent} replies=${replies} sentinel_rounds=${sentinelOk} seed=${SEED} peak_rss_mb=${hwmMb.toFixed(0)}`);
    expect(sent).toBeGreaterThanOrEqual(TOTAL);
    expect(sentinelOk).toBeGreaterThan(0);
    expect(replies).toBeGreaterThan(TOTAL / 10);
    expect(hwmMb).toBeLessThan(1024);
    expect(sheep.child.exitCode).toBeNull();
    // Every failure was a clean protocol error: no handler threw an unexpected exception.
    const crashes = sheep.output().split('\n').filter((l) => l.includes('op_crashed') || l.includes('dispatch_failed'));
    expect(crashes.slice(0, 3).join('\n')).toBe('');
  });
});
