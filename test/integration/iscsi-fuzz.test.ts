// Fuzzing a live Sheepfold iSCSI target (the built CLI): more than 100 000 mutated Login and full-feature
// PDUs over many connections, while a sentinel session on another target keeps writing and reading back
// its own blocks. The target must not crash and the sentinel must be served throughout. Seeded; a failure
// prints the seed (FUZZ_SEED=... reproduces the PDU stream).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ephemeralPort } from '../helpers/ports.js';
import { SHEEPFOLD_BIN, cleanupTempDirs, killAll, run, start, tempDir, waitForOutput, haveCommand, type Proc } from '../helpers/proc.js';
import { encodeBhs, decodePdu, type Pdu } from '../../src/proto/iscsi/pdu.js';
import { PduFramer, frameBuffers } from '../../src/proto/iscsi/framer.js';
import { encodeText } from '../../src/proto/iscsi/text.js';

const PREFIX = 'iqn.2026-11.org.sheepfold:';
const INITIATOR = 'iqn.2026-11.test:fuzzer';
const TARGET_PDUS = Number(process.env.FUZZ_PDUS ?? 100_000);

/** xorshift32: deterministic PDU stream per seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

function wire(p: Pdu): Buffer {
  const data = 'data' in p ? p.data : undefined;
  return Buffer.concat(frameBuffers(encodeBhs(p), data, { headerDigest: false, dataDigest: false }));
}

function loginPdu(target: string, isid: number, itt: number): Pdu {
  return {
    kind: 'login-req',
    transit: true,
    cont: false,
    csg: 1,
    nsg: 3,
    versionMax: 0,
    versionMin: 0,
    isid,
    tsih: 0,
    itt,
    cid: 0,
    cmdSN: 1,
    expStatSN: 0,
    data: encodeText([
      ['InitiatorName', INITIATOR],
      ['TargetName', target],
      ['SessionType', 'Normal'],
      ['ImmediateData', 'Yes'],
      ['InitialR2T', 'No'],
      ['MaxRecvDataSegmentLength', '262144'],
    ]),
  };
}

/** A minimal initiator: one session, one outstanding command at a time. */
class MiniSession {
  private framer = new PduFramer({ maxDataSegmentLength: 1 << 24 });
  private waiters = new Map<number, (p: Pdu[]) => void>();
  private partial = new Map<number, Pdu[]>();
  private cmdSN = 1;
  private itt = 1;
  closed = false;
  constructor(private readonly sock: net.Socket) {
    sock.on('data', (c: Buffer) => {
      this.framer.push(c);
      for (let r = this.framer.next(); r; r = this.framer.next()) this.onPdu(decodePdu(Buffer.from(r.bhs), r.ahs, Buffer.from(r.data)));
    });
    sock.on('close', () => (this.closed = true));
    sock.on('error', () => undefined);
  }
  static async open(port: number, target: string, isid: number): Promise<MiniSession> {
    const sock = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((res, rej) => {
      sock.once('connect', () => res());
      sock.once('error', rej);
    });
    const s = new MiniSession(sock);
    const [rsp] = await s.request(0, loginPdu(target, isid, 0));
    if (!rsp || rsp.kind !== 'login-rsp' || rsp.statusClass !== 0) throw new Error('sentinel login failed');
    s.cmdSN = rsp.expCmdSN;
    return s;
  }
  private onPdu(p: Pdu): void {
    if (p.kind === 'nop-in' && p.ttt !== 0xffffffff) {
      this.sock.write(wire({ kind: 'nop-out', immediate: true, lun: 0n, itt: 0xffffffff, ttt: p.ttt, cmdSN: this.cmdSN, expStatSN: p.statSN, data: Buffer.alloc(0) }));
      return;
    }
    if (!('itt' in p)) return;
    const list = this.partial.get(p.itt) ?? [];
    list.push(p);
    const done = p.kind !== 'data-in' || (p.flags & 0x01) !== 0;
    if (!done) {
      this.partial.set(p.itt, list);
      return;
    }
    this.partial.delete(p.itt);
    this.waiters.get(p.itt)?.(list);
    this.waiters.delete(p.itt);
  }
  request(itt: number, p: Pdu): Promise<Pdu[]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to ${p.kind} itt ${itt}`)), 30_000);
      this.waiters.set(itt, (l) => {
        clearTimeout(timer);
        resolve(l);
      });
      this.sock.write(wire(p));
    });
  }
  /** WRITE(10) or READ(10) of `blocks` 512-byte blocks at `lba`; resolves to status and read data. */
  async rw(write: boolean, lba: number, blocks: number, data?: Buffer): Promise<{ status: number; data: Buffer }> {
    const cdb = Buffer.alloc(16);
    cdb[0] = write ? 0x2a : 0x28;
    cdb.writeUInt32BE(lba, 2);
    cdb.writeUInt16BE(blocks, 7);
    const itt = this.itt++;
    const pdus = await this.request(itt, {
      kind: 'scsi-cmd',
      immediate: false,
      final: true,
      read: !write,
      write,
      attr: 1,
      lun: 0n,
      itt,
      expectedDataTransferLength: blocks * 512,
      cmdSN: this.cmdSN++,
      expStatSN: 0,
      cdb,
      ahs: Buffer.alloc(0),
      data: write ? (data ?? Buffer.alloc(0)) : Buffer.alloc(0),
    });
    const last = pdus[pdus.length - 1];
    const status = last?.kind === 'scsi-rsp' ? last.status : last?.kind === 'data-in' ? last.status : -1;
    const ins = pdus.filter((x) => x.kind === 'data-in').map((x) => (x as { data: Buffer }).data);
    return { status, data: Buffer.concat(ins) };
  }
  close(): void {
    this.sock.destroy();
  }
}

const OPCODES = [0x00, 0x03, 0x08, 0x0a, 0x12, 0x15, 0x16, 0x17, 0x1a, 0x1b, 0x25, 0x28, 0x2a, 0x2e, 0x2f, 0x34, 0x35, 0x41, 0x42, 0x55, 0x5a, 0x5e, 0x5f, 0x88, 0x89, 0x8a, 0x8b, 0x8f, 0x93, 0x9c, 0x9e, 0xa0, 0xa3, 0xa8, 0xaa, 0xff];

/** One mutated full-feature PDU (valid template, then 0-3 byte mutations in the BHS or data). */
function mutatedFfPdu(r: () => number, cmdSN: number): Buffer {
  const pick = <T,>(a: T[]): T => a[Math.floor(r() * a.length)] as T;
  const n = (max: number): number => Math.floor(r() * max);
  const kind = n(10);
  let p: Pdu;
  const cdb = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) cdb[i] = n(256);
  cdb[0] = pick(OPCODES);
  if (r() < 0.98) {
    // keep LBAs and transfer lengths small so the fuzzer exercises logic, not memory bandwidth
    cdb.fill(0, 2, 6);
    cdb[7] = 0;
    cdb[8] = n(8);
    cdb.fill(0, 9, 13);
    cdb[13] = n(8);
  }
  const data = Buffer.alloc(r() < 0.5 ? 0 : n(1024), n(256));
  switch (kind) {
    case 0:
    case 1:
    case 2:
    case 3:
      p = { kind: 'scsi-cmd', immediate: r() < 0.1, final: r() < 0.9, read: r() < 0.5, write: r() < 0.5, attr: n(8), lun: BigInt(n(3)) << 48n, itt: n(2 ** 32), expectedDataTransferLength: r() < 0.98 ? n(4096) : n(2 ** 32), cmdSN, expStatSN: 0, cdb, ahs: Buffer.alloc(0), data };
      break;
    case 4:
      p = { kind: 'data-out', final: r() < 0.7, lun: 0n, itt: n(64), ttt: r() < 0.5 ? 0xffffffff : n(64), expStatSN: 0, dataSN: n(4), bufferOffset: n(8192), data };
      break;
    case 5:
      p = { kind: 'nop-out', immediate: r() < 0.5, lun: 0n, itt: r() < 0.5 ? 0xffffffff : n(2 ** 32), ttt: r() < 0.8 ? 0xffffffff : n(2 ** 32), cmdSN, expStatSN: 0, data };
      break;
    case 6:
      p = { kind: 'tmf-req', immediate: true, func: r() < 0.01 ? 7 : 1 + n(6), lun: BigInt(n(3)) << 48n, itt: n(2 ** 32), referencedTaskTag: n(64), cmdSN, expStatSN: 0, refCmdSN: cmdSN, expDataSN: 0 };
      break;
    case 7:
      p = { kind: 'text-req', immediate: r() < 0.5, final: r() < 0.8, cont: r() < 0.2, lun: 0n, itt: n(2 ** 32), ttt: r() < 0.8 ? 0xffffffff : n(8), cmdSN, expStatSN: 0, data: r() < 0.5 ? encodeText([['SendTargets', 'All']]) : data };
      break;
    case 8:
      p = { kind: 'snack', type: n(16), lun: 0n, itt: n(64), ttt: 0, expStatSN: 0, begRun: n(8), runLength: n(8) };
      break;
    default:
      p = r() < 0.002
        ? { kind: 'logout-req', immediate: true, reason: n(3), itt: n(2 ** 32), cid: 0, cmdSN, expStatSN: 0 }
        : { kind: 'scsi-cmd', immediate: false, final: true, read: true, write: false, attr: 1, lun: 0n, itt: n(2 ** 32), expectedDataTransferLength: 512, cmdSN, expStatSN: 0, cdb, ahs: Buffer.alloc(0), data: Buffer.alloc(0) };
  }
  const b = wire(p);
  const muts = n(4);
  for (let i = 0; i < muts; i++) {
    // mostly inside the BHS; the length fields (4..7) rarely, since they desynchronise the stream
    let pos = n(Math.min(b.length, 48));
    if (pos >= 4 && pos <= 7 && r() < 0.998) pos = 8 + n(40);
    b[pos] = r() < 0.5 ? n(256) : (b[pos] ?? 0) ^ (1 << n(8));
  }
  if (r() < 0.003) b[0] = n(256); // unknown opcodes
  return b;
}

function mutatedLoginPdu(r: () => number): Buffer {
  const n = (max: number): number => Math.floor(r() * max);
  const p = loginPdu(r() < 0.7 ? `${PREFIX}fuzz` : `${PREFIX}nope${n(9)}`, n(2 ** 32), n(2 ** 32));
  if (p.kind === 'login-req') {
    p.csg = n(4);
    p.nsg = n(4);
    p.transit = r() < 0.7;
    p.cont = r() < 0.1;
    p.tsih = r() < 0.8 ? 0 : n(65536);
    p.versionMin = r() < 0.9 ? 0 : n(256);
    const extra: Array<[string, string]> = [
      ['AuthMethod', r() < 0.5 ? 'None' : 'CHAP,None'],
      ['CHAP_A', String(n(10))],
      ['MaxBurstLength', String(n(2 ** 25))],
      ['HeaderDigest', r() < 0.5 ? 'CRC32C' : 'Bogus'],
      ['X-foo', 'bar'],
    ];
    p.data = Buffer.concat([p.data, encodeText(extra.filter(() => r() < 0.5))]);
  }
  const b = wire(p);
  const muts = n(5);
  for (let i = 0; i < muts; i++) {
    const pos = n(b.length);
    b[pos] = r() < 0.5 ? n(256) : (b[pos] ?? 0) ^ (1 << n(8));
  }
  return r() < 0.1 ? b.subarray(0, n(b.length)) : b;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Send login-phase fuzz on fresh connections (1–3 PDUs each) until `budget` PDUs are sent; returns that count. */
async function fuzzLogins(port: number, r: () => number, budget: number): Promise<number> {
  let sent = 0;
  while (sent < budget) {
    const s = await connect(port);
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    const k = 1 + Math.floor(r() * 3);
    for (let j = 0; j < k; j++) s.write(mutatedLoginPdu(r));
    sent += k;
    await new Promise<void>((res) => {
      s.once('close', () => res());
      s.end();
      setTimeout(() => {
        s.destroy();
        res();
      }, 200);
    });
  }
  return sent;
}

/**
 * Log in properly, then pour mutated full-feature PDUs in batches, each followed by a valid NOP-Out ping. The
 * target handles PDUs in order, so the ping's NOP-In proves the whole batch was processed; only confirmed
 * batches count. A batch that desynchronised the stream (or got the connection closed) counts for nothing.
 */
export const stats = { lost: 0, timeouts: 0 };
async function fuzzFullFeature(port: number, r: () => number, budget: number): Promise<number> {
  let confirmed = 0;
  let pingItt = 0x7f000000;
  while (confirmed < budget) {
    const s = await connect(port);
    const framer = new PduFramer({ maxDataSegmentLength: 1 << 24 });
    let open = true;
    let waiting: { itt: number; done: (ok: boolean) => void } | undefined;
    s.on('data', (c: Buffer) => {
      framer.push(c);
      try {
        for (let raw = framer.next(); raw; raw = framer.next()) {
          const p = decodePdu(raw.bhs, raw.ahs, raw.data);
          if (p.kind === 'nop-in' && waiting && p.itt === waiting.itt) waiting.done(true);
        }
      } catch {
        s.destroy();
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      open = false;
      waiting?.done(false);
    });
    s.write(wire(loginPdu(`${PREFIX}fuzz`, Math.floor(r() * 2 ** 32), 1)));
    let cmdSN = 1;
    while (open && confirmed < budget) {
      const batch: Buffer[] = [];
      for (let i = 0; i < 100; i++) batch.push(mutatedFfPdu(r, cmdSN++));
      const itt = pingItt++;
      batch.push(wire({ kind: 'nop-out', immediate: true, lun: 0n, itt, ttt: 0xffffffff, cmdSN, expStatSN: 0, data: Buffer.alloc(0) }));
      const ok = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 1000);
        waiting = {
          itt,
          done: (v) => {
            clearTimeout(timer);
            resolve(v);
          },
        };
        s.write(Buffer.concat(batch));
      });
      waiting = undefined;
      if (!ok) {
        stats.lost++;
        if (open) {
          stats.timeouts++;
          if (process.env.FUZZ_DUMP) fs.writeFileSync(`${process.env.FUZZ_DUMP}/stall-${stats.timeouts}.bin`, Buffer.concat(batch));
        }
        break;
      }
      confirmed += batch.length - 1;
    }
    s.destroy();
  }
  return confirmed;
}

describe('iSCSI fuzzing a live target', () => {
  let target: Proc;
  let port = 0;
  beforeAll(async () => {
    const dir = tempDir('sheepfold-iscsi-fuzz-');
    port = await ephemeralPort();
    const cfg = path.join(dir, 'fuzz.toml');
    fs.writeFileSync(cfg, ['[nbd]', 'enabled = false', '[iscsi]', 'enabled = true', `listen = "127.0.0.1:${port}"`, ''].join('\n'));
    target = start('node', [SHEEPFOLD_BIN, 'target', '--config', cfg, '--log-level', process.env.FUZZ_LOG ?? 'error', '--export', 'fuzz=mem:64M', '--export', 'sentinel=mem:16M']);
    await waitForOutput(target, /target ready/);
  });
  afterAll(async () => {
    await killAll();
    cleanupTempDirs();
  });

  it(`survives ${TARGET_PDUS} mutated PDUs while a sentinel session keeps being served`, async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
    const sentinel = await MiniSession.open(port, `${PREFIX}sentinel`, 0x5e57);
    let sentinelOps = 0;
    let stop = false;
    const sentinelLoop = (async (): Promise<void> => {
      let round = 0;
      while (!stop) {
        const lba = (round * 8) % 30000;
        const pattern = Buffer.alloc(8 * 512, (round % 251) + 1);
        const w = await sentinel.rw(true, lba, 8, pattern);
        if (w.status !== 0) throw new Error(`sentinel write status ${w.status} (seed ${seed})`);
        const rd = await sentinel.rw(false, lba, 8);
        if (rd.status !== 0 || !rd.data.equals(pattern)) throw new Error(`sentinel read mismatch (seed ${seed})`);
        sentinelOps += 2;
        round++;
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    const loginBudget = Number(process.env.FUZZ_LOGINS ?? 6000);
    const [loginSent, ...ffSent] = await Promise.all([
      Promise.all(Array.from({ length: 10 }, (_, i) => fuzzLogins(port, rng(seed + 10 + i), loginBudget / 10))).then((a) => a.reduce((x, y) => x + y, 0)),
      fuzzFullFeature(port, rng(seed + 1), (TARGET_PDUS - loginBudget) / 2),
      fuzzFullFeature(port, rng(seed + 2), (TARGET_PDUS - loginBudget) / 2),
    ]);
    stop = true;
    await sentinelLoop;
    const total = (loginSent ?? 0) + ffSent.reduce((a, b) => a + b, 0);
    console.log(`iscsi fuzz seed ${seed}: ${total} PDUs (${loginSent} login), sentinel ${sentinelOps} ops, ${stats.lost} batches lost (${stats.timeouts} by timeout)`);
    if (process.env.FUZZ_LOG) fs.writeFileSync('/tmp/isc/fuzz-target.log', target.output());
    expect(total).toBeGreaterThanOrEqual(TARGET_PDUS);
    expect(sentinelOps).toBeGreaterThan(0);
    expect(sentinel.closed, `sentinel session dropped (seed ${seed})`).toBe(false);
    // still served after the storm, and the process is alive
    const last = await sentinel.rw(false, 0, 1);
    expect(last.status).toBe(0);
    expect(target.child.exitCode).toBeNull();
    sentinel.close();
    if (haveCommand('iscsi-ls')) {
      const ls = await run('iscsi-ls', [`iscsi://127.0.0.1:${port}`]);
      expect(ls.stdout).toContain(`${PREFIX}sentinel`);
    }
  });
});
