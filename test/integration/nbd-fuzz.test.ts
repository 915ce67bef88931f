// Fuzz a live target process over TCP with at least 100 000 mutated handshake options and transmission
// requests (seeded; the seed is printed on failure). The target must not crash, must keep its memory bounded
// (its limits are per connection and checked before allocating), and a sentinel client on another export must
// be served correctly throughout.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import crypto from 'node:crypto';
import net from 'node:net';
import { killAll, run, lacking } from '../helpers/proc.js';
import * as C from '../../src/proto/nbd/constants.js';
import { rssBytes, startTarget, tcpClient, type RunningTarget } from './nbd-harness.js';

const MESSAGES = 100_000;
const CONCURRENCY = 6;
const FUZZ_EXPORT_BYTES = 16 * 1024 * 1024;
/** Generous: 6 fuzz connections, each bounded by maxInFlightBytes and the reply backlog limit. */
const RSS_LIMIT_BYTES = 1536 * 1024 * 1024;

/** mulberry32: small seeded PRNG so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  constructor(readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  /** Flip a few random bits. */
  mutate(b: Buffer, flips: number): Buffer {
    for (let i = 0; i < flips && b.length > 0; i++) {
      const at = this.int(b.length);
      b[at] = (b[at] ?? 0) ^ (1 << this.int(8));
    }
    return b;
  }
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

function nameBytes(g: Gen): Buffer {
  return g.chance(0.7) ? Buffer.from('f') : g.chance(0.5) ? g.bytes(g.int(12)) : Buffer.from('nope');
}

/** One option frame (header + data), valid-looking then mutated. */
function option(g: Gen, opt: number): Buffer {
  let data: Buffer;
  switch (opt) {
    case C.NBD_OPT_INFO:
    case C.NBD_OPT_GO: {
      const n = nameBytes(g);
      const reqs = Array.from({ length: g.int(4) }, () => g.int(6));
      data = Buffer.concat([u32(n.length), n, Buffer.from([0, reqs.length]), ...reqs.map((q) => Buffer.from([0, q]))]);
      break;
    }
    case C.NBD_OPT_LIST_META_CONTEXT:
    case C.NBD_OPT_SET_META_CONTEXT: {
      const n = nameBytes(g);
      const qs = Array.from({ length: g.int(3) }, () =>
        Buffer.from(g.pick(['base:allocation', 'base:', 'qemu:dirty-bitmap:x', 'x-y:z', ''])),
      );
      data = Buffer.concat([u32(n.length), n, u32(qs.length), ...qs.flatMap((q) => [u32(q.length), q])]);
      break;
    }
    case C.NBD_OPT_EXPORT_NAME:
      data = nameBytes(g);
      break;
    default:
      data = g.chance(0.7) ? Buffer.alloc(0) : g.bytes(g.int(64));
  }
  if (g.chance(0.3)) g.mutate(data, 1 + g.int(3));
  const h = Buffer.alloc(16);
  h.write('IHAVEOPT', 0, 'latin1');
  h.writeUInt32BE(opt >>> 0, 8);
  let len = data.length;
  if (g.chance(0.05)) len = g.chance(0.5) ? Math.max(0, len + g.int(9) - 4) : g.int(2 ** 32);
  h.writeUInt32BE(len >>> 0, 12);
  if (g.chance(0.02)) g.mutate(h, 1);
  return Buffer.concat([h, data]);
}

/** One transmission request (header + payload for writes), mostly plausible, sometimes hostile. */
function request(g: Gen): Buffer {
  const type = g.chance(0.9)
    ? g.pick([C.NBD_CMD_READ, C.NBD_CMD_WRITE, C.NBD_CMD_FLUSH, C.NBD_CMD_TRIM, C.NBD_CMD_CACHE, C.NBD_CMD_WRITE_ZEROES, C.NBD_CMD_BLOCK_STATUS])
    : g.chance(0.05)
      ? C.NBD_CMD_DISC
      : g.int(0x10000);
  const flags = g.chance(0.7) ? g.int(32) & g.pick([0, 1, 2, 4, 8, 16, 31]) : g.int(0x10000);
  const offset = g.chance(0.75) ? BigInt(g.int(FUZZ_EXPORT_BYTES / 512) * 512) : (BigInt(g.int(2 ** 32)) << 32n) | BigInt(g.int(2 ** 32));
  let length: number;
  const k = g.r();
  if (k < 0.85) length = g.int(65536 + 1);
  else if (k < 0.9) length = g.pick([C.NBD_DEFAULT_MAX_PAYLOAD, C.NBD_DEFAULT_MAX_PAYLOAD + 1, 2 ** 32 - 1, 0]);
  else length = g.int(2 ** 32);
  const h = Buffer.alloc(28);
  h.writeUInt32BE(C.NBD_REQUEST_MAGIC, 0);
  h.writeUInt16BE(flags, 4);
  h.writeUInt16BE(type, 6);
  h.writeBigUInt64BE(BigInt(g.int(2 ** 32)), 8);
  h.writeBigUInt64BE(offset, 16);
  h.writeUInt32BE(length >>> 0, 24);
  if (g.chance(0.01)) g.mutate(h, 1 + g.int(4));
  // Writes carry their payload when it is small; a large declared length desynchronises the stream on purpose.
  const payload = type === C.NBD_CMD_WRITE && length <= 262144 ? Buffer.alloc(length, g.int(256)) : Buffer.alloc(0);
  return Buffer.concat([h, payload]);
}

/** Build one fuzz connection's bytes; returns them with the number of messages they contain. */
function session(g: Gen): { bytes: Buffer; messages: number } {
  const parts: Buffer[] = [u32(g.chance(0.9) ? g.pick([1, 3]) : g.int(2 ** 32))];
  let messages = 1;
  const opts = g.int(12);
  for (let i = 0; i < opts; i++) {
    const opt = g.chance(0.85)
      ? g.pick([C.NBD_OPT_INFO, C.NBD_OPT_LIST, C.NBD_OPT_STRUCTURED_REPLY, C.NBD_OPT_LIST_META_CONTEXT, C.NBD_OPT_SET_META_CONTEXT, C.NBD_OPT_STARTTLS, C.NBD_OPT_PEEK_EXPORT, C.NBD_OPT_EXTENDED_HEADERS])
      : g.chance(0.1)
        ? C.NBD_OPT_ABORT
        : g.int(2 ** 32);
    parts.push(option(g, opt));
    messages++;
  }
  if (g.chance(0.85)) {
    parts.push(option(g, g.chance(0.8) ? C.NBD_OPT_GO : C.NBD_OPT_EXPORT_NAME));
    messages++;
    const n = 20 + g.int(200);
    for (let i = 0; i < n; i++) parts.push(request(g));
    messages += n;
  }
  return { bytes: Buffer.concat(parts), messages };
}

/** Send one session and wait until the server closes or we give up; replies are read and dropped. */
function play(t: RunningTarget, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host: t.host, port: t.port });
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve();
    };
    const timer = setTimeout(done, 3000);
    s.on('data', () => undefined);
    s.on('error', done);
    s.on('close', done);
    s.write(bytes, () => s.end());
  });
}

describe.skipIf(lacking(['nbdinfo']))('NBD fuzz against a live target', () => {
  let t: RunningTarget;

  beforeAll(async () => {
    t = await startTarget(['--export', `f=mem:${FUZZ_EXPORT_BYTES}`, '--export', 'sentinel=mem:8M'], {
      SHEEPFOLD_LOG_LEVEL: 'silent',
    });
  });

  afterAll(async () => {
    await killAll();
  });

  it(`survives ${MESSAGES} mutated handshakes and requests while a sentinel is served`, async () => {
    const seed = Number(process.env.NBD_FUZZ_SEED ?? crypto.randomInt(2 ** 31));
    const g = new Gen(prng(seed));
    const failMsg = `fuzz seed ${seed} (replay with NBD_FUZZ_SEED=${seed})`;

    let fuzzing = true;
    let sentinelOps = 0;
    const sentinel = (async () => {
      const c = await tcpClient(t, { exportName: 'sentinel' });
      const model = new Map<number, number>();
      let i = 0;
      while (fuzzing) {
        const block = (i * 7919) % 2048;
        const fill = (i % 250) + 1;
        await c.write(block * 4096, Buffer.alloc(4096, fill));
        model.set(block, fill);
        const check = (i * 104729) % 2048;
        const got = await c.read(check * 4096, 4096);
        expect(got.equals(Buffer.alloc(4096, model.get(check) ?? 0)), failMsg).toBe(true);
        sentinelOps++;
        i++;
      }
      c.disconnect();
    })();

    let maxRss = 0;
    const sampler = setInterval(() => {
      maxRss = Math.max(maxRss, rssBytes(t.proc.pid));
    }, 100);

    let sent = 0;
    let sessions = 0;
    const worker = async (): Promise<void> => {
      while (sent < MESSAGES) {
        const s = session(g);
        sent += s.messages;
        sessions++;
        await play(t, s.bytes);
        expect(t.proc.child.exitCode, `${failMsg}: target exited`).toBeNull();
      }
    };
    try {
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    } finally {
      fuzzing = false;
      clearInterval(sampler);
    }
    await sentinel;
    expect(sent).toBeGreaterThanOrEqual(MESSAGES);
    expect(sessions).toBeGreaterThan(100);
    expect(sentinelOps, failMsg).toBeGreaterThan(10);
    expect(t.proc.child.exitCode, failMsg).toBeNull();
    expect(maxRss, `${failMsg}: RSS peaked at ${maxRss}`).toBeLessThan(RSS_LIMIT_BYTES);
    // A real peer still gets served afterwards.
    const r = await run('nbdinfo', ['--json', t.uri('sentinel')]);
    expect(r.code, `${failMsg}\n${r.stderr}`).toBe(0);
    t.proc.kill('SIGTERM');
    expect(await t.proc.exited).toBe(0);
  });
});
