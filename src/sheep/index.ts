// Start one sheep: node state + listeners (TCP, `<dir>/sock`, optional extra unix socket). Used by the CLI,
// `scripts/up` and the in-process tests.
import path from 'node:path';
import { componentLogger, type Logger } from '../obs/log.js';
import type { ClusterDriver } from './cluster/local.js';
import type { Placement } from './gateway.js';
import { SheepNode } from './node.js';
import { addrBytes } from '../proto/sheepdog/node.js';
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
  /** A filter around the gateway's placement (a fault the CLI composes). */
  placementFilter?: (p: Placement) => Placement;
}

/** A host's zone: its IPv4 address as sheep derives zones (the last four address bytes, little-endian). */
export function hostZone(host: string): number {
  return addrBytes(host).readUInt32LE(12);
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
  // Copies go to distinct zones. With `local` every sheep is on one host, so its zone is its port; with etcd the
  // sheep are on many hosts and a zone is a host: the IPv4 address others reach it at (advertised, else bound).
  const zoneHost = opts.advertise?.host ?? (host === '0.0.0.0' ? '127.0.0.1' : host);
  const zoneFor = (port: number): number | undefined => {
    if (opts.zone !== undefined) return opts.zone;
    if (opts.driver?.name === 'etcd') return hostZone(zoneHost);
    return opts.driver && opts.driver.name !== 'single' ? port : undefined;
  };
  let node = new SheepNode({ dir: opts.dir, addr: host === '0.0.0.0' ? '127.0.0.1' : host, port: probe, zone: zoneFor(probe), driver: opts.driver, store: opts.store, log, advertise: opts.advertise, placementFilter: opts.placementFilter });
  let server = new SheepServer(node, { host, port: probe, unixPaths, limits: opts.limits, log, metrics: opts.metrics });
  if (probe === 0) {
    await server.listen();
    const port = server.port;
    await server.close();
    node = new SheepNode({ dir: opts.dir, addr: host === '0.0.0.0' ? '127.0.0.1' : host, port, zone: zoneFor(port), driver: opts.driver, store: opts.store, log, advertise: opts.advertise, placementFilter: opts.placementFilter });
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
