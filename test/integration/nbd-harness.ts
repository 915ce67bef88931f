// Shared by the nbd-*.test.ts integration tests: start the BUILT target on an ephemeral port and wait for its
// JSON ready line; connect our own client over TCP; sample a process's resident memory.
import fs from 'node:fs';
import net from 'node:net';
import { start, waitForOutput, SHEEPFOLD_BIN, type Proc } from '../helpers/proc.js';
import { NbdClient, type NbdClientOptions } from '../../src/nbd/client.js';

export interface RunningTarget {
  proc: Proc;
  host: string;
  port: number;
  /** nbd://127.0.0.1:PORT/NAME */
  uri(name: string): string;
}

/** Start `sheepfold target` with the given flags on 127.0.0.1:0; resolves once it printed its ready line. */
export async function startTarget(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunningTarget> {
  const proc = start(
    process.execPath,
    [SHEEPFOLD_BIN, 'target', '--nbd', '127.0.0.1:0', '--json', '--log-level', 'warn', ...args],
    { env: { ...process.env, ...env } },
  );
  const m = await waitForOutput(proc, /\{"ready":true[^\n]*\}/, 30_000);
  const ready = JSON.parse(m[0]) as { nbd: string };
  const i = ready.nbd.lastIndexOf(':');
  const host = ready.nbd.slice(0, i);
  const port = Number(ready.nbd.slice(i + 1));
  return { proc, host, port, uri: (name) => `nbd://${host}:${port}/${name}` };
}

/** Our client over a real TCP connection, handshake done. */
export async function tcpClient(t: RunningTarget, opts: NbdClientOptions): Promise<NbdClient> {
  const sock = net.connect({ host: t.host, port: t.port });
  sock.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const c = new NbdClient(sock);
  await c.connect(opts);
  return c;
}

/** Resident set size of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
