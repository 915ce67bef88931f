// Start one sheep: node state + listeners (TCP, `<dir>/sock`, optional extra unix socket). Used by the CLI,
// `scripts/up` and the in-process tests.
import path from 'node:path';
import { componentLogger, type Logger } from '../obs/log.js';
import type { ClusterDriver } from './cluster/local.js';
import { SheepNode } from './node.js';
import type { ObjectStore } from './store/store.js';
import { SheepServer, type ServerLimits } from './server.js';
import type { ProcessMetrics } from '../obs/metrics.js';

export interface StartSheepOptions {
  dir: string;
  port: number;
  bind?: string;
  unixPath?: string;
  zone?: number;
  driver?: ClusterDriver;
  limits?: Partial<ServerLimits>;
  /** The object store (default: a PlainStore in `dir`). */
  store?: ObjectStore;
  log?: Logger;
  metrics?: ProcessMetrics;
  /** HOST:PORT other sheep use for this node's peer I/O (node_id io_addr/io_port), e.g. a fault proxy. */
  advertise?: { host: string; port: number };
}

export interface RunningSheep {
  node: SheepNode;
  server: SheepServer;
  port: number;
  sockPath: string;
  stop(): Promise<void>;
}

export async function startSheep(opts: StartSheepOptions): Promise<RunningSheep> {
  const host = opts.bind ?? '127.0.0.1';
  const log = opts.log ?? componentLogger('sheep');
  const sockPath = path.join(opts.dir, 'sock');
  // The node id needs the real port; with port 0 (tests) the server binds first and the node learns it after.
  const probe = opts.port;
  const unixPaths = [sockPath, ...(opts.unixPath ? [opts.unixPath] : [])];
  // In a cluster, nodes on one host get distinct zones by default (the port), so copies land on distinct nodes.
  const zoneFor = (port: number): number | undefined => opts.zone ?? (opts.driver && opts.driver.name !== 'single' ? port : undefined);
  let node = new SheepNode({ dir: opts.dir, addr: host === '0.0.0.0' ? '127.0.0.1' : host, port: probe, zone: zoneFor(probe), driver: opts.driver, store: opts.store, log, advertise: opts.advertise });
  let server = new SheepServer(node, { host, port: probe, unixPaths, limits: opts.limits, log, metrics: opts.metrics });
  if (probe === 0) {
    await server.listen();
    const port = server.port;
    await server.close();
    node = new SheepNode({ dir: opts.dir, addr: host === '0.0.0.0' ? '127.0.0.1' : host, port, zone: zoneFor(port), driver: opts.driver, store: opts.store, log, advertise: opts.advertise });
    server = new SheepServer(node, { host, port, unixPaths, limits: opts.limits, log, metrics: opts.metrics });
  }
  await node.start();
  if (opts.metrics) {
    const n = node;
    opts.metrics.recoverySource.get = () => n.recoveryState();
  }
  await server.listen();
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await server.close();
    await node.stop();
  };
  node.on('killed', () => server.stopAccepting());
  return { node, server, port: server.port, sockPath, stop };
}
