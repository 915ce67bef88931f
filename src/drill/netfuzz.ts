// Socket fuzzing of a live server (issue 8, test 7): many short connections each send an optional valid
// prefix (e.g. a handshake) and then a mutated golden input; meanwhile a sentinel client keeps doing real work
// on its own connection. A crash is the server process ending (or the sentinel failing), a hang is a sentinel
// operation that does not finish within its timeout. Memory is sampled to report the peak growth per fuzz
// connection.
import net from 'node:net';
import { Rng, mutate } from './fuzz.js';

export interface NetFuzzTarget {
  name: string;
  host: string;
  port: number;
  seeds: readonly Buffer[];
  /** Sent unmutated before each mutated input (gets the server past its handshake). */
  prefix?: () => Buffer;
}

export interface NetFuzzOptions {
  durationMs: number;
  concurrency: number;
  seed: number;
  /** How long one execution waits for the server's answer or close after sending. */
  settleMs?: number;
  /** Real work on a separate connection; must resolve with correct results. */
  sentinel: () => Promise<void>;
  sentinelEveryMs?: number;
  sentinelTimeoutMs?: number;
  /** False once the server process has ended. */
  alive: () => boolean;
  /** Resident memory of the server process in bytes. */
  rss: () => number;
}

export interface NetFuzzReport {
  name: string;
  seed: number;
  execs: number;
  execsPerSec: number;
  /** Executions the server ended by closing the connection (protocol error). */
  closedByServer: number;
  crashes: number;
  hangs: number;
  sentinelOps: number;
  sentinelErrors: string[];
  baselineRssBytes: number;
  peakRssBytes: number;
  peakPerConnBytes: number;
}

/** One execution: connect, send, wait for the answer or the close, then end. Resolves true if the server closed. */
function execute(host: string, port: number, data: Buffer, settleMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let closedByServer = false;
    let timer: NodeJS.Timeout | null = null;
    const finish = (): void => {
      if (timer) clearTimeout(timer);
      s.destroy();
      resolve(closedByServer);
    };
    s.setNoDelay(true);
    s.on('connect', () => {
      s.write(data, () => {
        timer = setTimeout(finish, settleMs);
      });
    });
    s.on('data', () => undefined);
    s.on('end', () => {
      closedByServer = true;
      finish();
    });
    s.on('error', () => {
      closedByServer = true;
      finish();
    });
    s.on('close', finish);
  });
}

export async function netFuzz(t: NetFuzzTarget, o: NetFuzzOptions): Promise<NetFuzzReport> {
  const rep: NetFuzzReport = {
    name: t.name,
    seed: o.seed,
    execs: 0,
    execsPerSec: 0,
    closedByServer: 0,
    crashes: 0,
    hangs: 0,
    sentinelOps: 0,
    sentinelErrors: [],
    baselineRssBytes: o.rss(),
    peakRssBytes: 0,
    peakPerConnBytes: 0,
  };
  rep.peakRssBytes = rep.baselineRssBytes;
  const start = Date.now();
  const end = start + o.durationMs;
  const settle = o.settleMs ?? 30;
  const worker = async (w: number): Promise<void> => {
    const rng = new Rng(o.seed * 100 + w);
    while (Date.now() < end && rep.crashes === 0) {
      const seed = t.seeds[rng.int(t.seeds.length)];
      if (!seed) return;
      let input = mutate(rng, seed, t.seeds);
      if (rng.int(4) === 0) input = mutate(rng, input, t.seeds);
      const data = t.prefix ? Buffer.concat([t.prefix(), input]) : input;
      if (await execute(t.host, t.port, data, settle)) rep.closedByServer++;
      rep.execs++;
    }
  };
  const sentinel = async (): Promise<void> => {
    const timeout = o.sentinelTimeoutMs ?? 10_000;
    while (Date.now() < end && rep.crashes === 0) {
      let timer: NodeJS.Timeout | null = null;
      const hang = new Promise<'hang'>((r) => (timer = setTimeout(() => r('hang'), timeout)));
      const res = await Promise.race([o.sentinel().then(() => 'ok' as const, (e: unknown) => (e instanceof Error ? e.message : String(e))), hang]);
      if (timer) clearTimeout(timer);
      if (res === 'hang') rep.hangs++;
      else if (res !== 'ok') rep.sentinelErrors.push(res);
      else rep.sentinelOps++;
      await new Promise((r) => setTimeout(r, o.sentinelEveryMs ?? 250));
    }
  };
  const sampler = setInterval(() => {
    if (!o.alive()) rep.crashes = 1;
    else rep.peakRssBytes = Math.max(rep.peakRssBytes, o.rss());
  }, 100);
  try {
    await Promise.all([...Array.from({ length: o.concurrency }, (_, w) => worker(w)), sentinel()]);
  } finally {
    clearInterval(sampler);
  }
  if (!o.alive()) rep.crashes = 1;
  rep.execsPerSec = Math.round(rep.execs / ((Date.now() - start) / 1000));
  rep.peakPerConnBytes = Math.max(0, Math.round((rep.peakRssBytes - rep.baselineRssBytes) / o.concurrency));
  return rep;
}
