// The client's write fence across requests (docs/fencing.md §4): once a write with a deadline missed it
// unanswered, the initiator may re-issue every write it had sent to this path elsewhere, so no fenced write that
// entered before the sheep answered again is sent (nor re-sent) later; new writes go out once it answers.
import { afterEach, describe, expect, it } from 'vitest';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { SheepClient } from '../../../src/client/index.js';
import { vidToDataOid } from '../../../src/proto/sheepdog/index.js';
import { ManualClock } from '../../../src/util/clock.js';
import { settle, state, until } from '../../helpers/manual-time.js';
import { FakeSheep } from './fake-sheep.js';

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

describe('write fence across requests', () => {
  it('never sends a fenced write that entered before an earlier one missed its deadline, until the sheep answers', async () => {
    const s = new FakeSheep();
    await s.start();
    cleanups.push(() => s.stop());
    const clock = new ManualClock();
    const c = new SheepClient({ gateways: s.addr, connectTimeoutMs: 1000, reconnectTimeoutMs: 5000, probeAfterMs: 0, clock });
    cleanups.push(() => c.close());
    const oid = vidToDataOid(7, 0);
    await c.createAndWriteObj(oid, Buffer.alloc(4096, 1));
    let hang = true;
    s.hook = (req) => (hang && req.opcode === C.SD_OP_WRITE_OBJ ? { action: 'hang' } : undefined);
    const sentAt = (offset: number): number => s.log.filter((r) => r.opcode === C.SD_OP_WRITE_OBJ && r.args.kind === 'obj' && r.args.offset === offset).length;

    // W1 has a short deadline, W2 a long one; both reach the (silent) sheep.
    const w1 = c.writeObj(oid, Buffer.alloc(512, 2), { offset: 0, notAfter: clock.now() + 300 });
    const w2 = c.writeObj(oid, Buffer.alloc(512, 3), { offset: 512, notAfter: clock.now() + 60_000 });
    w1.catch(() => undefined);
    w2.catch(() => undefined);
    await until(() => sentAt(0) === 1 && sentAt(512) === 1);
    // W1's deadline is an instant on the client's clock: 1 ms before it nothing has happened, at it W1 fails.
    await clock.advance(299);
    expect(await state(w1)).toBe('pending');
    await clock.advance(1);
    await expect(w1).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(sentAt(512)).toBe(1);
    // The connection dies (as when a partition heals with a reset): W2 is not re-sent although its own deadline
    // is far away, and a younger fenced write is refused while the sheep has not answered.
    s.dropConnections();
    await settle(clock, w2);
    await expect(w2).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(sentAt(512)).toBe(1);
    const w4 = c.writeObj(oid, Buffer.alloc(512, 4), { offset: 1024, notAfter: clock.now() + 60_000 });
    await settle(clock, w4);
    await expect(w4).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(sentAt(1024)).toBe(0);
    expect(s.objects.get(oid)?.subarray(0, 1536)).toEqual(Buffer.alloc(1536, 1));
    // The sheep answers again (a read): new fenced writes go out.
    hang = false;
    const r = c.readObj(oid, 512);
    await settle(clock, r);
    await r;
    await c.writeObj(oid, Buffer.alloc(512, 5), { offset: 1536, notAfter: clock.now() + 60_000 });
    expect(s.objects.get(oid)?.subarray(1536, 2048)).toEqual(Buffer.alloc(512, 5));
    // Unfenced writes were never affected by any of this.
    await c.writeObj(oid, Buffer.alloc(512, 6), { offset: 2048 });
    expect(s.objects.get(oid)?.subarray(2048, 2560)).toEqual(Buffer.alloc(512, 6));
  });
});

describe('write fence stalled by any slow request (stallAfterMs)', () => {
  it('fences writes accepted while a read (a reservation check) hung on a silent sheep', async () => {
    const s = new FakeSheep();
    await s.start();
    cleanups.push(() => s.stop());
    const clock = new ManualClock();
    const c = new SheepClient({ gateways: s.addr, connectTimeoutMs: 1000, reconnectTimeoutMs: 5000, probeAfterMs: 0, stallAfterMs: 300, clock });
    cleanups.push(() => c.close());
    const oid = vidToDataOid(7, 0);
    await c.createAndWriteObj(oid, Buffer.alloc(4096, 1));
    let hang = true;
    s.hook = (req) => (hang && req.opcode === C.SD_OP_READ_OBJ ? { action: 'hang' } : undefined);
    // A command is accepted now; its write waits for a read that does not come back (the link is cut).
    const issuedAt = clock.now();
    const check = c.readObj(oid, 512);
    check.catch(() => undefined);
    const reads = (): number => s.log.filter((r) => r.opcode === C.SD_OP_READ_OBJ).length;
    await until(() => reads() === 1);
    await clock.advance(500);
    // The link comes back: the read is answered after a reconnect, then the command's write is refused although
    // its own deadline (60 s) is far away; a write accepted afterwards goes out.
    hang = false;
    s.dropConnections();
    await settle(clock, check);
    await check;
    await expect(c.writeObj(oid, Buffer.alloc(512, 2), { offset: 0, notAfter: issuedAt + 60_000, issuedAt })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(s.objects.get(oid)?.subarray(0, 512)).toEqual(Buffer.alloc(512, 1));
    await c.writeObj(oid, Buffer.alloc(512, 3), { offset: 0, notAfter: clock.now() + 60_000, issuedAt: clock.now() });
    expect(s.objects.get(oid)?.subarray(0, 512)).toEqual(Buffer.alloc(512, 3));
  });
});
