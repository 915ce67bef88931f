// Replays the request headers real tgtd 1.0.85 sent (shared/notes/tgtd-transcript.md §2, scenario §4.1) byte for
// byte and compares the sheep's reply headers with the transcript's golden replies (§3): no field of ours may
// differ from what sheep 1.0 sends, and no reply may carry bytes tgtd did not ask for.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startSheep, type RunningSheep } from '../../../src/sheep/index.js';
import { SheepWire, okReply } from '../../helpers/sheep-wire.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const R1 = '011201000000000000000000000200000000000000000000000000000000000000000000010000000000000000000000';
const R2 = '01022000000000000000000038124000000000005b9ce480000000000000000000000000000000000000000000000000';
const R7 = '01012500000000000000000000200000000000005b9ce400000000000000000001000000000000000000000000000000';
const R13 = '01032100000000000000000004000000000000005b9ce480000000000000000001000000000000003812000000000000';
const R6 = '01022000000000000000000000200000000000005b9ce400000000000000000001000000000000000000000000000000';
const R4 = '01022000000000000000000001000000000000005b9ce480000000000000000001000000000000000000000000000000';
const R15 = '01160000000000000000000000000000000000005b9ce480000000000000000000000000000000000000000000000000';
const R16 = '0013000000000000000000000000000000000000000000005b9ce4000000000000000000010000000000000000000000';

const LOCK_OK = '0012000001000000000000000000000000000000000000005b9ce4000000000001160000000000000000000000000000';
const LOCK_LOCKED = '001200000100000000000000000000000700000000000000000000000000000000000000000000000000000000000000';
const READ_4198968 = '000200000100000000000000381240000000000000000000000000000000000000000000000000000000000000000000';
const READ_1 = '000200000100000000000000010000000000000000000000000000000000000000000000000000000000000000000000';
const READ_8192 = '000200000100000000000000002000000000000000000000000000000000000000000000000000000000000000000000';
const CREATE_OK = '000100000100000000000000000000000000000000000000000000000000000000000000000000000000000000000000';
const WRITE_OK = '000300000100000000000000000000000000000000000000000000000000000000000000000000000000000000000000';
const FLUSH_INVALID = '001600000100000000000000000000000500000000000000000000000000000000000000000000000000000000000000';
const RELEASE_OK = '001300000100000000000000000000000000000000000000000000000000000000000000000000000000000000000000';

let dir: string;
let sheep: RunningSheep;

/** One tgt-style connection: send a request, read exactly header + expected payload, like tgt (no draining). */
class TgtConn {
  private buf = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private constructor(private readonly s: net.Socket) {
    s.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiter?.();
    });
  }
  static open(port: number): Promise<TgtConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(new TgtConn(s)));
      s.once('error', reject);
    });
  }
  async call(req: string, payload: Buffer | null, expectBytes: number): Promise<{ header: string; data: Buffer }> {
    this.s.write(payload ? Buffer.concat([hex(req), payload]) : hex(req));
    while (this.buf.length < 48 + expectBytes) await new Promise<void>((r) => (this.waiter = r));
    const header = this.buf.subarray(0, 48).toString('hex');
    const data = this.buf.subarray(48, 48 + expectBytes);
    this.buf = this.buf.subarray(48 + expectBytes);
    return { header, data };
  }
  /** Bytes received beyond what was asked for (must stay 0). */
  get leftover(): number {
    return this.buf.length;
  }
  close(): void {
    this.s.destroy();
  }
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sheep-golden-'));
  sheep = await startSheep({ dir, port: 0 });
  const w = await SheepWire.connect({ port: sheep.port });
  okReply(await w.makeFs({ copies: 1 }));
  expect((okReply(await w.newVdi('cap', 64n << 20n)).rsp.args as { vdiId: number }).vdiId).toBe(0xe49c5b);
  w.close();
});

afterAll(async () => {
  await sheep.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('golden tgtd exchange (transcript §4.1)', () => {
  it('answers every request with the golden reply header and exactly the bytes tgtd reads', async () => {
    // The probe connection: open and close without a byte.
    (await TgtConn.open(sheep.port)).close();
    const main = await TgtConn.open(sheep.port);
    const name = Buffer.alloc(512);
    name.write('cap');
    expect((await main.call(R1, name, 0)).header).toBe(LOCK_OK);
    const open = await main.call(R2, null, 4198968);
    expect(open.header).toBe(READ_4198968);
    expect(open.data.subarray(0, 4).toString()).toBe('cap\0');
    const io = await TgtConn.open(sheep.port);
    expect((await io.call(R7, Buffer.alloc(8192, 0x5a), 0)).header).toBe(CREATE_OK);
    expect((await io.call(R13, hex('5b9ce400'), 0)).header).toBe(WRITE_OK);
    const rd = await io.call(R6, null, 8192);
    expect(rd.header).toBe(READ_8192);
    expect(rd.data.equals(Buffer.alloc(8192, 0x5a))).toBe(true);
    expect((await io.call(R4, null, 1)).header).toBe(READ_1);
    expect((await io.call(R15, null, 0)).header).toBe(FLUSH_INVALID);
    // A second shared LOCK through the same sheep (transcript §4.2).
    const other = await TgtConn.open(sheep.port);
    expect((await other.call(R1, name, 0)).header).toBe(LOCK_LOCKED);
    expect((await main.call(R16, null, 0)).header).toBe(RELEASE_OK);
    // Any stray reply byte would now sit in front of the next reply header.
    for (const c of [main, io, other]) expect((await c.call(R15, null, 0)).header).toBe(FLUSH_INVALID);
    expect([main.leftover, io.leftover, other.leftover]).toEqual([0, 0, 0]);
    for (const c of [main, io, other]) c.close();
  });
});
