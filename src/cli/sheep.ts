// `sheepfold sheep`: run one storage node. Prints one ready line (text or --json) on stdout once it serves;
// SIGTERM/SIGINT, `dog cluster shutdown` and `dog node kill` end it gracefully.
import type { Command } from 'commander';
import path from 'node:path';
import { initLogger } from '../obs/log.js';
import type { LevelWithSilent } from 'pino';
import { startSheep } from '../sheep/index.js';
import { LocalClusterDriver, type ClusterDriver } from '../sheep/cluster/local.js';
import { EtcdClusterDriver, parseEtcdSpec } from '../sheep/cluster/etcd.js';
import type { Logger } from '../obs/log.js';

/**
 * `--cluster local:DIR` → the local driver on DIR; `etcd:ENDPOINTS[/PREFIX]` → the etcd driver; absent →
 * undefined (a one-node cluster).
 */
function clusterDriver(
  spec: string | undefined,
  log: Logger,
  o: { leaseTtl?: number; compactEvery?: number; etcdCa?: string; etcdCert?: string; etcdKey?: string },
): ClusterDriver | undefined {
  if (spec === undefined) {
    if (o.leaseTtl !== undefined || o.compactEvery !== undefined) throw new Error('--lease-ttl and --compact-every need --cluster');
    return undefined;
  }
  const clog = log.child({ component: 'cluster' });
  if (spec.startsWith('etcd:')) {
    const { endpoints, prefix } = parseEtcdSpec(spec);
    const https = endpoints.some((e) => e.startsWith('https:'));
    if (https && !o.etcdCa) throw new Error('https etcd endpoints need --etcd-ca (the CA that signed the etcd server certificates)');
    if (!https && (o.etcdCa || o.etcdCert || o.etcdKey)) throw new Error('--etcd-ca/--etcd-cert/--etcd-key need https:// etcd endpoints');
    if (Boolean(o.etcdCert) !== Boolean(o.etcdKey)) throw new Error('--etcd-cert and --etcd-key go together');
    const tls = o.etcdCa ? { ca: o.etcdCa, ...(o.etcdCert ? { cert: o.etcdCert } : {}), ...(o.etcdKey ? { key: o.etcdKey } : {}) } : undefined;
    return new EtcdClusterDriver({ endpoints, prefix, ttlSeconds: o.leaseTtl, compactEvery: o.compactEvery, tls, log: clog });
  }
  const m = /^local:(.+)$/.exec(spec);
  if (!m?.[1]) throw new Error(`bad --cluster ${spec} (expected local:DIR or etcd:ENDPOINTS[/PREFIX])`);
  if (o.leaseTtl !== undefined) throw new Error('--lease-ttl is for --cluster etcd:...');
  if (o.compactEvery !== undefined) throw new Error('--compact-every is for --cluster etcd:... (the local driver does not compact its log yet)');
  return new LocalClusterDriver({ dir: path.resolve(m[1]), log: clog });
}
import { STORE_KINDS, openStoreKind, type StoreKind } from '../sheep/store/select.js';
import { createMetrics, serveMetrics } from '../obs/metrics.js';
import { parseHostPort } from '../util/address.js';
import { ackEarlyData } from '../drill/faults.js';

/** A byte size: a number with an optional K/M/G/T suffix (powers of 1024). */
function sizeOpt(name: string, v: string): number {
  const m = /^(\d+)([kmgt]?)i?b?$/i.exec(v.trim());
  const n = m ? Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`bad --${name} ${v}`);
  return n;
}

interface SheepCliOptions {
  store: string;
  port: string;
  bind: string;
  unix?: string;
  zone?: string;
  cluster?: string;
  logLevel: string;
  json?: boolean;
  maxPayload?: string;
  maxConns?: string;
  maxInflight?: string;
  maxInflightBytes?: string;
  storeCapacity?: string;
  storeBackend?: string;
  journal?: string;
  journalSize?: string;
  scrubInterval?: string;
  metrics?: string;
  advertise?: string;
  leaseTtl?: string;
  compactEvery?: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  fault?: string;
}

/** A positive integer option, or undefined when absent. */
function intOpt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`bad --${name} ${v}`);
  return n;
}

export function registerSheepCommand(program: Command): void {
  program
    .command('sheep')
    .description('run one sheep storage node (Sheepdog wire protocol)')
    .requiredOption('--store <dir>', 'store directory (objects, config, epochs, unix socket DIR/sock)')
    .option('--port <port>', 'TCP port (tgtd can only reach ports < 10000)', '7000')
    .option('--bind <addr>', 'address to listen on', '127.0.0.1')
    .option('--unix <path>', 'an extra unix socket to listen on (DIR/sock is always served)')
    .option('--zone <n>', 'zone of this node (default: the port with --cluster local:, else from its IPv4 address — with etcd the advertised host, so copies land on distinct machines)')
    .option('--cluster <driver>', 'cluster driver: local:DIR (sheep on this host share DIR) or etcd:ENDPOINTS[/PREFIX] (e.g. etcd:http://10.0.0.1:2379,http://10.0.0.2:2379/sheepfold); default: a one-node cluster')
    .option('--lease-ttl <seconds>', 'etcd: lease TTL, how long a dead or cut-off sheep stays a member (default 3)')
    .option('--compact-every <records>', 'cluster log records between two compaction snapshots (default 10000)')
    .option('--etcd-ca <pem>', 'etcd over https: CA of the etcd server certificates')
    .option('--etcd-cert <pem>', 'etcd over https: client certificate (mutual TLS)')
    .option('--etcd-key <pem>', 'etcd over https: client key (mutual TLS)')
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error, silent)', 'info')
    .option('--json', 'print the ready line as JSON')
    .option('--max-payload <bytes>', 'largest request payload / reply buffer (default 64 MiB)')
    .option('--max-conns <n>', 'open connections (default 1024)')
    .option('--max-inflight <n>', 'requests in flight per connection (default 64)')
    .option('--max-inflight-bytes <bytes>', 'bytes of requests in flight over all connections (default 512 MiB)')
    .option('--store-capacity <size>', 'largest total size of the stored objects (e.g. 10G); beyond it writes get NO_SPACE')
    .option('--store-backend <kind>', `object store of a new store directory: ${STORE_KINDS.join(' or ')} (default plain, or journal with --journal/--journal-size; an existing store keeps its kind)`)
    .option('--journal <path>', 'the journal store\'s log file, e.g. on another device (default STORE/journal/wal; keep using the same one)')
    .option('--journal-size <size>', 'size of a new journal log (default 64M, at least 32M)')
    .option('--scrub-interval <seconds>', 'verify every object against its checksums this often (default: never)')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics')
    .option('--advertise <host:port>', 'address other sheep use for peer I/O to this node (node_id io_addr/io_port, e.g. a proxy); the node identity stays --bind:--port')
    .option('--fault <name>', 'TEST ONLY: run a deliberately broken build to prove the checks catch it (ack-early: acknowledge data writes 250 ms before the replicas have them)')
    .action(async (o: SheepCliOptions) => {
      const log = initLogger({ level: o.logLevel as LevelWithSilent, name: 'sheep' });
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad --port ${o.port}`);
      const zone = o.zone === undefined ? undefined : Number(o.zone);
      if (zone !== undefined && (!Number.isInteger(zone) || zone < 0 || zone > 0xffffffff)) throw new Error(`bad --zone ${o.zone}`);
      const dir = path.resolve(o.store);
      const limits = {
        ...(o.maxPayload ? { maxPayloadBytes: intOpt('max-payload', o.maxPayload) } : {}),
        ...(o.maxConns ? { maxConnections: intOpt('max-conns', o.maxConns) } : {}),
        ...(o.maxInflight ? { maxInflightPerConn: intOpt('max-inflight', o.maxInflight) } : {}),
        ...(o.maxInflightBytes ? { maxInflightBytes: intOpt('max-inflight-bytes', o.maxInflightBytes) } : {}),
      };
      const scrubSeconds = intOpt('scrub-interval', o.scrubInterval);
      if (o.storeBackend !== undefined && !(STORE_KINDS as readonly string[]).includes(o.storeBackend)) {
        throw new Error(`bad --store-backend ${o.storeBackend} (expected ${STORE_KINDS.join(' or ')})`);
      }
      const journalBytes = o.journalSize === undefined ? undefined : sizeOpt('journal-size', o.journalSize);
      if (journalBytes !== undefined && (journalBytes < 32 * 1024 * 1024 || journalBytes % 4096 !== 0)) {
        throw new Error(`bad --journal-size ${o.journalSize}: at least 32M and a multiple of 4K`);
      }
      const { kind, store } = await openStoreKind({
        dir,
        log: log.child({ component: 'store' }),
        ...(o.storeBackend ? { kind: o.storeBackend as StoreKind } : {}),
        ...(o.journal ? { journalPath: o.journal } : {}),
        ...(journalBytes ? { journalBytes } : {}),
        ...(o.storeCapacity ? { capacityBytes: sizeOpt('store-capacity', o.storeCapacity) } : {}),
        ...(scrubSeconds ? { scrubIntervalMs: scrubSeconds * 1000 } : {}),
      });
      log.info({ backend: kind }, 'store_backend');
      const driver = clusterDriver(o.cluster, log, {
        leaseTtl: intOpt('lease-ttl', o.leaseTtl),
        compactEvery: intOpt('compact-every', o.compactEvery),
        etcdCa: o.etcdCa,
        etcdCert: o.etcdCert,
        etcdKey: o.etcdKey,
      });
      const metrics = o.metrics ? createMetrics('sheep', { node: `${o.bind}:${port}` }) : undefined;
      const advertise = o.advertise ? parseHostPort(o.advertise, '--advertise') : undefined;
      if (advertise && advertise.port === 0) throw new Error(`bad --advertise ${o.advertise}: the port must not be 0`);
      if (o.fault !== undefined && o.fault !== 'ack-early') throw new Error(`bad --fault ${o.fault}: the only fault is ack-early`);
      if (o.fault) log.warn({ fault: o.fault }, 'fault_injected');
      const placementFilter = o.fault === 'ack-early' ? ackEarlyData : undefined;
      const sheep = await startSheep({ dir, port, bind: o.bind, unixPath: o.unix, zone, log, limits, store, driver, metrics, advertise, placementFilter });
      const listen = o.metrics ? parseHostPort(o.metrics, '--metrics') : undefined;
      const metricsAddr = metrics && listen ? (await serveMetrics(metrics.registry, listen.host, listen.port)).address : undefined;
      const ready = {
        event: 'sheep_ready',
        port: sheep.port,
        bind: o.bind,
        store: dir,
        sock: sheep.sockPath,
        pid: process.pid,
        backend: kind,
        ...(metricsAddr ? { metrics: metricsAddr } : {}),
      };
      process.stdout.write(
        o.json ? `${JSON.stringify(ready)}\n` : `sheep ready on ${o.bind}:${sheep.port} store ${dir} sock ${sheep.sockPath}\n`,
      );
      let ending = false;
      const end = (why: string): void => {
        if (ending) return;
        ending = true;
        log.info({ why }, 'sheep_stopping');
        void sheep.stop().finally(() => process.exit(0));
      };
      process.on('SIGTERM', () => end('SIGTERM'));
      process.on('SIGINT', () => end('SIGINT'));
      sheep.node.on('shutdown', () => end('shutdown'));
      sheep.node.on('killed', () => end('killed'));
    });
}
