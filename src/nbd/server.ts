// NbdServer: accepts TCP connections (or any Duplex via serve(), for fuzzing and in-memory tests) and runs one
// NbdConnection per client over a shared ExportTable. TLS: 'off' refuses STARTTLS, 'on' offers it, 'require'
// answers every option but STARTTLS/ABORT with NBD_REP_ERR_TLS_REQD (FORCEDTLS mode of the spec).
// Limits: maxConnections here, the per-connection ones in NbdLimits.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { componentLogger, type Logger } from '../obs/log.js';
import type { ExportTable, Frontend } from '../block/export-table.js';
import { DEFAULT_NBD_LIMITS, NbdConnection, type NbdLimits, type TlsMode } from './connection.js';
import { BufferPool } from './pool.js';
import { acceptWithUserBuffers } from '../util/user-buffers.js';
import { systemClock, type Clock } from '../util/clock.js';

export interface NbdTlsOptions {
  mode: TlsMode;
  /** PEM certificate chain file (required unless mode is 'off'). */
  certFile?: string;
  /** PEM private key file (required unless mode is 'off'). */
  keyFile?: string;
}

export interface NbdServerOptions {
  exports: ExportTable;
  host?: string;
  port?: number;
  tls?: NbdTlsOptions;
  limits?: Partial<NbdLimits>;
  /** Simultaneous connections; further ones are closed at once. */
  maxConnections?: number;
  logger?: Logger;
  /** Time source of the handshake and drain timeouts (default: the system clock). */
  clock?: Clock;
}

export const NBD_DEFAULT_PORT = 10809;
export const NBD_DEFAULT_MAX_CONNECTIONS = 256;
/** Bytes of idle read buffers the server keeps for reuse. */
export const NBD_DEFAULT_MAX_POOLED_BYTES = 64 * 1024 * 1024;

export class NbdServer implements Frontend {
  readonly name = 'nbd';
  private readonly log: Logger;
  private readonly limits: NbdLimits;
  private readonly conns = new Set<NbdConnection>();
  private readonly secureContext: tls.SecureContext | undefined;
  private readonly tlsMode: TlsMode;
  private readonly pool = new BufferPool(NBD_DEFAULT_MAX_POOLED_BYTES);
  private server: net.Server | undefined;
  private stopping = false;
  private nextId = 1;

  constructor(private readonly opts: NbdServerOptions) {
    this.log = opts.logger ?? componentLogger('nbd');
    this.limits = { ...DEFAULT_NBD_LIMITS, ...opts.limits };
    this.tlsMode = opts.tls?.mode ?? 'off';
    if (this.tlsMode !== 'off') {
      const { certFile, keyFile } = opts.tls ?? {};
      if (certFile === undefined || keyFile === undefined) {
        throw new Error(`NBD TLS mode '${this.tlsMode}' needs a certificate and a key file`);
      }
      this.secureContext = tls.createSecureContext({
        cert: fs.readFileSync(certFile),
        key: fs.readFileSync(keyFile),
      });
    }
  }

  /** Listen on host:port; resolves with the bound HOST:PORT. */
  start(): Promise<string> {
    const host = this.opts.host ?? '127.0.0.1';
    const port = this.opts.port ?? NBD_DEFAULT_PORT;
    // Plain TCP connections are re-created on their handle with `onread` (see acceptWithUserBuffers): paused until then.
    const server = net.createServer({ noDelay: true, pauseOnConnect: this.tlsMode === 'off' }, (s) => this.accept(s));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.removeListener('error', reject);
        server.on('error', (err) => this.log.error({ err: err.message }, 'nbd.server_error'));
        const a = server.address();
        const bound = typeof a === 'object' && a !== null ? `${a.address}:${a.port}` : `${host}:${port}`;
        this.log.info({ address: bound, tls: this.tlsMode }, 'nbd.listening');
        resolve(bound);
      });
    });
  }

  /** Stop accepting, let every connection finish its in-flight requests, close them. */
  async stop(): Promise<void> {
    this.stopping = true;
    const closed = this.server
      ? new Promise<void>((r) => this.server?.close(() => r()))
      : Promise.resolve();
    await Promise.all([...this.conns].map((c) => c.shutdown()));
    await closed;
    this.log.info('nbd.stopped');
  }

  /** Number of open connections. */
  get connections(): number {
    return this.conns.size;
  }

  /** Serve one client over any Duplex (a socket, or an in-memory stream in tests and fuzzing). */
  serve(stream: Duplex): NbdConnection {
    const conn = this.connection(stream);
    conn.start();
    return conn;
  }

  private connection(stream: Duplex): NbdConnection {
    const id = this.nextId++;
    const conn = new NbdConnection(
      stream,
      {
        exports: this.opts.exports,
        limits: this.limits,
        tlsMode: this.tlsMode,
        secureContext: this.secureContext,
        pool: this.pool,
        shuttingDown: () => this.stopping,
        clock: this.opts.clock ?? systemClock,
      },
      this.log.child({ conn: id }),
    );
    this.conns.add(conn);
    void conn.closed.then(() => this.conns.delete(conn));
    return conn;
  }

  private accept(s: net.Socket): void {
    const max = this.opts.maxConnections ?? NBD_DEFAULT_MAX_CONNECTIONS;
    if (this.stopping || this.conns.size >= max) {
      this.log.warn({ connections: this.conns.size, max }, 'nbd.connection_refused');
      s.destroy();
      return;
    }
    this.log.debug({ remote: `${s.remoteAddress}:${s.remotePort}` }, 'nbd.accept');
    if (this.tlsMode !== 'off') {
      s.setNoDelay(true);
      this.serve(s);
      return;
    }
    const { conn } = acceptWithUserBuffers(s, (sock) => {
      sock.setNoDelay(true);
      return this.connection(sock);
    });
    conn.start();
  }
}
