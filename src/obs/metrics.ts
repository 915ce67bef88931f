// Prometheus metrics for every Sheepfold process (sheep, target): one registry per process, a small set of
// standard instruments (requests and latency per op, bytes, in-flight, connections, recovery, locks), and an
// HTTP endpoint serving `/metrics` in the Prometheus text format.
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Latency buckets in seconds: 50 µs .. 10 s. */
const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/**
 * Inode reloads of shared VDI devices in this process (target), by reason: `feed` (an invalidation pushed by
 * the event feed, reloaded before the next request), `invalidated` (a request refused with INODE_INVALIDATED),
 * `snapshot` (READONLY: a snapshot moved the working VDI). Process-wide: devices do not see the registry.
 */
export const inodeReloads = new Counter({
  name: 'sheepfold_inode_reloads_total',
  help: 'Inode reloads of shared VDIs, by reason (feed|invalidated|snapshot)',
  labelNames: ['reason'] as const,
  registers: [],
});

/** Invalidations of this process's own lock participant received on the event feed (target). */
export const feedInvalidations = new Counter({
  name: 'sheepfold_feed_invalidations_total',
  help: 'Invalidations of our own inode cache pushed by the event feed',
  registers: [],
});

export interface ProcessMetrics {
  registry: Registry;
  requests: Counter<'proto' | 'op' | 'result'>;
  latency: Histogram<'proto' | 'op'>;
  bytes: Counter<'proto' | 'dir'>;
  inflight: Gauge<'proto'>;
  connections: Gauge<'proto'>;
  recoveryObjects: Gauge<'state'>;
  /** Where the recovery gauges read from at scrape time (a sheep sets it once its node exists). */
  recoverySource: { get: (() => { inRecovery: boolean; finished: number; total: number }) | null };
  locks: Gauge<'state'>;
  /** Event feed (sheep): open subscriptions and events published, by type. */
  feedSubscribers: Gauge;
  feedEvents: Counter<'type'>;
  /** Time one request: returns a function to call with its result label. */
  time(proto: string, op: string): (result: string) => void;
}

/** Build the metrics of one process; `component` becomes a default label (`sheep`, `target`). */
export function createMetrics(component: string, labels: Record<string, string> = {}): ProcessMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ component, ...labels });
  collectDefaultMetrics({ register: registry, prefix: 'sheepfold_' });
  const requests = new Counter({
    name: 'sheepfold_requests_total',
    help: 'Requests handled, by protocol, operation and result',
    labelNames: ['proto', 'op', 'result'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'sheepfold_request_duration_seconds',
    help: 'Request latency, by protocol and operation',
    labelNames: ['proto', 'op'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const bytes = new Counter({
    name: 'sheepfold_bytes_total',
    help: 'Payload bytes moved, by protocol and direction (read/write)',
    labelNames: ['proto', 'dir'] as const,
    registers: [registry],
  });
  const inflight = new Gauge({
    name: 'sheepfold_requests_in_flight',
    help: 'Requests being processed',
    labelNames: ['proto'] as const,
    registers: [registry],
  });
  const connections = new Gauge({
    name: 'sheepfold_connections',
    help: 'Open client connections',
    labelNames: ['proto'] as const,
    registers: [registry],
  });
  const recoverySource: ProcessMetrics['recoverySource'] = { get: null };
  const recoveryObjects = new Gauge({
    name: 'sheepfold_recovery_objects',
    help: 'Recovery progress in objects (state=total|done)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const st = recoverySource.get?.();
      if (!st) return;
      this.set({ state: 'total' }, st.total);
      this.set({ state: 'done' }, st.finished);
    },
  });
  new Gauge({
    name: 'sheepfold_recovery_in_progress',
    help: '1 from an epoch change until every node of the epoch has all its objects current, else 0',
    registers: [registry],
    collect() {
      const st = recoverySource.get?.();
      if (st) this.set(st.inRecovery ? 1 : 0);
    },
  });
  const locks = new Gauge({
    name: 'sheepfold_vdi_locks',
    help: 'VDIs by lock state (unlocked|locked|shared)',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  const feedSubscribers = new Gauge({
    name: 'sheepfold_feed_subscribers',
    help: 'Open event feed subscriptions (WebSocket)',
    registers: [registry],
  });
  const feedEvents = new Counter({
    name: 'sheepfold_feed_events_total',
    help: 'Events published on the event feed, by type',
    labelNames: ['type'] as const,
    registers: [registry],
  });
  registry.registerMetric(inodeReloads);
  registry.registerMetric(feedInvalidations);
  const time = (proto: string, op: string): ((result: string) => void) => {
    const start = process.hrtime.bigint();
    inflight.inc({ proto });
    return (result: string) => {
      inflight.dec({ proto });
      requests.inc({ proto, op, result });
      latency.observe({ proto, op }, Number(process.hrtime.bigint() - start) / 1e9);
    };
  };
  return { registry, requests, latency, bytes, inflight, connections, recoveryObjects, recoverySource, locks, feedSubscribers, feedEvents, time };
}

/** Serve `/metrics` on host:port; resolves with the bound address once listening. */
export function serveMetrics(
  registry: Registry,
  host: string,
  port: number,
): Promise<{ server: http.Server; address: string }> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry
      .metrics()
      .then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text))
      .catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      const a = server.address();
      const bound = typeof a === 'object' && a ? `${host}:${a.port}` : `${host}:${port}`;
      resolve({ server, address: bound });
    });
  });
}
