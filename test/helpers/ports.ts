// Free-port helpers for tests: ephemeral ports by default, or a port in a range (real tgtd cannot reach
// sheep TCP ports >= 10000, so sheep ports used with tgtd come from 7000–9999).
import net from 'node:net';

/** Resolve true if 127.0.0.1:port can be bound right now. */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** An ephemeral port the kernel picks (free at the time of the call). */
export function ephemeralPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ port: 0, host }, () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const handedOut = new Set<number>();

/** A free port in [lo, hi], randomised so parallel runs rarely collide; never the same twice per process. */
export async function portInRange(lo = 7000, hi = 9999, host = '127.0.0.1'): Promise<number> {
  for (let tries = 0; tries < 500; tries++) {
    const p = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (handedOut.has(p)) continue;
    if (await portFree(p, host)) {
      handedOut.add(p);
      return p;
    }
  }
  throw new Error(`no free port in ${lo}-${hi}`);
}

/** N distinct free ports in [lo, hi]. */
export async function portsInRange(n: number, lo = 7000, hi = 9999): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await portInRange(lo, hi));
  return out;
}

/** Wait until host:port accepts TCP connections (or throw after timeoutMs). */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${host}:${port} did not open within ${timeoutMs} ms`);
}
