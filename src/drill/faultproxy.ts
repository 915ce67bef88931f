// A TCP fault proxy for drills and reliability tests: placed between a target and a sheep, or between sheep,
// it forwards bytes and injects network faults that can be changed while connections are open:
// delay with jitter (order preserved), a bandwidth cap, a blackhole (bytes silently dropped both ways,
// connections stay open — the peer sees a hang, not an error), a one-way partition, and RST of every open
// connection. Binds 127.0.0.1 by default.
import net from 'node:net';

export interface FaultSpec {
  /** Added one-way delay per chunk. */
  delayMs?: number;
  /** Uniform random extra delay in [0, jitterMs); order is preserved. */
  jitterMs?: number;
  /** Bytes per second per direction per connection; 0 or undefined = unlimited. */
  bandwidthBps?: number;
  /** Drop every byte in both directions. */
  blackhole?: boolean;
  /** Drop bytes in one direction only: 'up' = client→server, 'down' = server→client. */
  drop?: 'up' | 'down' | null;
}

export interface FaultProxyOptions {
  listenHost?: string;
  listenPort?: number;
  targetHost: string;
  targetPort: number;
  /** Bytes queued per direction before the source socket is paused. */
  maxQueuedBytes?: number;
}

interface Queued {
  chunk: Buffer;
  at: number;
}

/** One direction of one proxied connection. */
class Pipe {
  private q: Queued[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | null = null;
  private lastAt = 0;
  private sentWindowStart = Date.now();
  private sentInWindow = 0;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly dir: 'up' | 'down',
    private readonly proxy: FaultProxy,
    private readonly maxQueued: number,
  ) {
    src.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  private onData(chunk: Buffer): void {
    const f = this.proxy.faults;
    if (f.blackhole || f.drop === this.dir) {
      this.proxy.droppedBytes += chunk.length;
      return;
    }
    const delay = (f.delayMs ?? 0) + (f.jitterMs ? Math.random() * f.jitterMs : 0);
    const at = Math.max(Date.now() + delay, this.lastAt);
    this.lastAt = at;
    this.q.push({ chunk, at });
    this.queued += chunk.length;
    if (this.queued > this.maxQueued) this.src.pause();
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.q.length === 0) return;
    const wait = Math.max(0, (this.q[0]?.at ?? 0) - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, wait);
  }

  private flush(): void {
    const bps = this.proxy.faults.bandwidthBps ?? 0;
    const now = Date.now();
    if (now - this.sentWindowStart >= 100) {
      this.sentWindowStart = now;
      this.sentInWindow = 0;
    }
    while (this.q.length > 0 && this.q[0]!.at <= Date.now()) {
      const f = this.proxy.faults;
      if (f.blackhole || f.drop === this.dir) {
        // The fault began while bytes were queued: they are lost too.
        for (const x of this.q) this.proxy.droppedBytes += x.chunk.length;
        this.q = [];
        this.queued = 0;
        break;
      }
      if (bps > 0) {
        const budget = Math.floor(bps / 10) - this.sentInWindow;
        if (budget <= 0) {
          this.timer = setTimeout(() => {
            this.timer = null;
            this.flush();
          }, 100 - (Date.now() - this.sentWindowStart));
          return;
        }
        const head = this.q[0]!;
        if (head.chunk.length > budget) {
          this.dst.write(head.chunk.subarray(0, budget));
          head.chunk = head.chunk.subarray(budget);
          this.queued -= budget;
          this.sentInWindow += budget;
          continue;
        }
      }
      const item = this.q.shift()!;
      this.queued -= item.chunk.length;
      this.sentInWindow += item.chunk.length;
      if (!this.dst.destroyed) this.dst.write(item.chunk);
    }
    if (this.queued <= this.maxQueued / 2 && this.src.isPaused()) this.src.resume();
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.q = [];
  }
}

export class FaultProxy {
  faults: FaultSpec = {};
  droppedBytes = 0;
  connectionsAccepted = 0;
  private server: net.Server | null = null;
  private readonly conns = new Set<{ client: net.Socket; upstream: net.Socket; pipes: Pipe[]; end: () => void }>();

  constructor(private readonly opts: FaultProxyOptions) {}

  /** Start listening; resolves with the port. */
  start(): Promise<number> {
    const server = net.createServer((client) => this.onClient(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.listenHost ?? '127.0.0.1', port: this.opts.listenPort ?? 0 }, () => {
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : 0);
      });
    });
  }

  /** Replace the active faults (applies to open connections at once). */
  set(spec: FaultSpec): void {
    this.faults = { ...spec };
  }

  /** Remove every fault. */
  heal(): void {
    this.faults = {};
  }

  /** Reset (RST) every open connection. */
  reset(): void {
    for (const c of [...this.conns]) {
      c.client.resetAndDestroy();
      c.upstream.resetAndDestroy();
      c.end();
    }
  }

  get openConnections(): number {
    return this.conns.size;
  }

  async stop(): Promise<void> {
    for (const c of [...this.conns]) {
      c.client.destroy();
      c.upstream.destroy();
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private onClient(client: net.Socket): void {
    this.connectionsAccepted++;
    client.setNoDelay(true);
    const upstream = net.connect({ host: this.opts.targetHost, port: this.opts.targetPort });
    upstream.setNoDelay(true);
    const max = this.opts.maxQueuedBytes ?? 8 * 1024 * 1024;
    const end = (): void => {
      if (!this.conns.delete(entry)) return;
      entry.pipes.forEach((p) => p.stop());
      client.destroy();
      upstream.destroy();
    };
    const entry = { client, upstream, pipes: [] as Pipe[], end };
    entry.pipes.push(new Pipe(client, upstream, 'up', this, max), new Pipe(upstream, client, 'down', this, max));
    this.conns.add(entry);
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  }
}
