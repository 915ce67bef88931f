// An N-node local sheep cluster for integration tests: real `sheepfold sheep --cluster local:DIR` processes on
// 127.0.0.1, ports in 7000–9999 (so real tgtd can reach them), one store dir per node under a temp dir.
// Nodes are started, SIGKILLed, restarted and stopped by PID; `dog` runs against any node. Waits are on
// conditions (epoch, recovery state, node count), never on fixed sleeps.
// With `peerProxies`, each node gets a TCP fault proxy in front of it and advertises it (`--advertise`), so all
// sheep-to-sheep traffic to node i passes through nodes[i].proxy (clients and dog still talk to the node).
import path from 'node:path';
import { FaultProxy } from '../../src/drill/faultproxy.js';
import { portInRange } from './ports.js';
import { DOG_BIN, SHEEPFOLD_BIN, run, runBinary, start, tempDir, waitForOutput, type Proc, type RunResult } from './proc.js';

export interface ClusterNode {
  index: number;
  /** Address the sheep binds (and dog talks to). */
  host: string;
  port: number;
  store: string;
  proc: Proc | null;
  /** The fault proxy peer traffic to this node goes through (with `peerProxies`). */
  proxy?: FaultProxy;
  proxyPort?: number;
  /** Output of this node's earlier processes (before a kill or stop), for logs kept after a failure. */
  pastOutput: string;
}

export interface LocalCluster {
  dir: string;
  clusterDir: string;
  nodes: ClusterNode[];
  /** Start (or restart) node i; resolves once it serves. */
  startNode(i: number): Promise<ClusterNode>;
  /** Add a fresh node; resolves once it serves. */
  addNode(): Promise<ClusterNode>;
  /** Reserve a fresh node (port and store dir) without starting it; startNode(index) starts it later. */
  planNode(): Promise<ClusterNode>;
  /** SIGKILL node i and wait for its exit. */
  killNode(i: number): Promise<void>;
  /** SIGTERM node i (graceful leave) and wait for its exit. */
  stopNode(i: number): Promise<void>;
  live(): ClusterNode[];
  /** Everything node i has logged, over all its processes so far. */
  logOf(i: number): string;
  /** Run dog against node i (default: the first live node). */
  dog(args: string[], opts?: { node?: number; input?: Buffer; timeoutMs?: number }): Promise<RunResult>;
  dogBinary(args: string[], opts?: { node?: number; timeoutMs?: number }): Promise<{ code: number; stdout: Buffer; stderr: string }>;
  /** `dog ... --json` parsed; throws with stderr on failure. */
  dogJson<T>(args: string[], opts?: { node?: number }): Promise<T>;
  /** Wait until every live node reports `n` nodes and the same epoch, with recovery finished everywhere. */
  waitSettled(n: number, timeoutMs?: number): Promise<number>;
  stopAll(): Promise<void>;
}

interface NodeListEntry {
  addr: string;
}
/** `dog node list --json` entry. */
export interface NodeJson {
  addr: string;
  zone: number;
}
/** `dog vdi object location --json`. */
export interface LocationJson {
  nodes: { node: string; zone: number; has: boolean }[];
  zones: number[];
}

/**
 * Wait until every node (as `dogJson` reaches it) reports `count` nodes and the same epoch, with recovery
 * finished everywhere; returns the epoch.
 */
export async function waitSettledVia<N>(
  nodes: () => N[],
  dogJson: <T>(node: N | undefined, args: string[]) => Promise<T>,
  count: number,
  timeoutMs = 120_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const epochs = new Set<number>();
      let ok = true;
      for (const node of nodes()) {
        const list = await dogJson<NodeListEntry[]>(node, ['node', 'list']);
        const info = await dogJson<ClusterInfoJson>(node, ['cluster', 'info']);
        epochs.add(info.epoch);
        if (list.length !== count) ok = false;
      }
      if (ok && epochs.size === 1) {
        const rec = await dogJson<RecoveryJson>(undefined, ['node', 'recovery']);
        if (rec.nodes.length === count && rec.nodes.every((x) => !x.inRecovery)) return [...epochs][0] as number;
        last = JSON.stringify(rec);
      } else last = `epochs ${[...epochs].join(',')}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`cluster did not settle at ${count} nodes: ${last}`);
}
interface RecoveryJson {
  nodes: { addr: string; inRecovery: boolean; state: number; finished: string | number; total: string | number }[];
}
interface ClusterInfoJson {
  epoch: number;
}

export async function startLocalCluster(
  n: number,
  opts: {
    logLevel?: string;
    extraArgs?: string[];
    peerProxies?: boolean;
    /** --cluster value (default local:DIR/cluster). */
    cluster?: string;
    /** Bind address of node i (default 127.0.0.1); distinct loopback addresses are distinct hosts (zones). */
    hostOf?: (i: number) => string;
  } = {},
): Promise<LocalCluster> {
  const dir = tempDir('sheepfold-cluster-');
  const clusterDir = path.join(dir, 'cluster');
  const nodes: ClusterNode[] = [];
  const used = new Set<number>();

  const freePort = async (): Promise<number> => {
    for (;;) {
      const p = await portInRange(7000, 9999);
      if (!used.has(p)) {
        used.add(p);
        return p;
      }
    }
  };

  const startNode = async (i: number): Promise<ClusterNode> => {
    const node = nodes[i];
    if (!node) throw new Error(`no node ${i}`);
    const proc = start(process.execPath, [
      SHEEPFOLD_BIN,
      'sheep',
      '--store',
      node.store,
      '--port',
      String(node.port),
      '--cluster',
      opts.cluster ?? `local:${clusterDir}`,
      '--bind',
      node.host,
      '--log-level',
      opts.logLevel ?? 'warn',
      ...(node.proxyPort !== undefined ? ['--advertise', `127.0.0.1:${node.proxyPort}`] : []),
      ...(opts.extraArgs ?? []),
    ]);
    node.proc = proc;
    await waitForOutput(proc, /sheep ready/, 60_000);
    return node;
  };

  const planNode = async (): Promise<ClusterNode> => {
    const index = nodes.length;
    const node: ClusterNode = { index, host: opts.hostOf?.(index) ?? '127.0.0.1', port: await freePort(), store: path.join(dir, `n${index}`), proc: null, pastOutput: '' };
    if (opts.peerProxies) {
      node.proxy = new FaultProxy({ targetHost: node.host, targetPort: node.port });
      node.proxyPort = await node.proxy.start();
    }
    nodes.push(node);
    return node;
  };

  const addNode = async (): Promise<ClusterNode> => startNode((await planNode()).index);

  const live = (): ClusterNode[] => nodes.filter((x) => x.proc !== null);
  const logOf = (i: number): string => (nodes[i]?.pastOutput ?? '') + (nodes[i]?.proc?.output() ?? '');

  const target = (i?: number): ClusterNode => {
    const node = i === undefined ? live()[0] : nodes[i];
    if (!node) throw new Error('no live node');
    return node;
  };

  const dog = (args: string[], o: { node?: number; input?: Buffer; timeoutMs?: number } = {}): Promise<RunResult> =>
    run(process.execPath, [DOG_BIN, ...args, '-a', target(o.node).host, '-p', String(target(o.node).port)], { input: o.input, timeoutMs: o.timeoutMs ?? 300_000 });

  const dogBinary = (args: string[], o: { node?: number; timeoutMs?: number } = {}) =>
    runBinary(process.execPath, [DOG_BIN, ...args, '-a', target(o.node).host, '-p', String(target(o.node).port)], { timeoutMs: o.timeoutMs ?? 300_000 });

  const dogJson = async <T>(args: string[], o: { node?: number } = {}): Promise<T> => {
    const r = await dog([...args, '--json'], o);
    if (r.code !== 0) throw new Error(`dog ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };

  const waitSettled = (count: number, timeoutMs = 120_000): Promise<number> =>
    waitSettledVia(live, (node, args) => dogJson(args, node ? { node: node.index } : {}), count, timeoutMs);

  const killNode = async (i: number): Promise<void> => {
    const node = nodes[i];
    if (!node?.proc) return;
    node.proc.kill('SIGKILL');
    await node.proc.exited;
    node.pastOutput += node.proc.output();
    node.proc = null;
  };

  const stopNode = async (i: number): Promise<void> => {
    const node = nodes[i];
    if (!node?.proc) return;
    node.proc.kill('SIGTERM');
    await node.proc.exited;
    node.pastOutput += node.proc.output();
    node.proc = null;
  };

  const stopAll = async (): Promise<void> => {
    for (const node of nodes) await killNode(node.index);
    for (const node of nodes) await node.proxy?.stop();
  };

  const cluster: LocalCluster = { dir, clusterDir, nodes, startNode, addNode, planNode, killNode, stopNode, live, logOf, dog, dogBinary, dogJson, waitSettled, stopAll };
  for (let i = 0; i < n; i++) await addNode();
  return cluster;
}
