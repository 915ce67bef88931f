// Test hosts in network namespaces (root only): N hosts, each its own namespace with one veth link to a bridge
// that lives in a separate "switch" namespace, addresses 10.77.<net>.<i+1>/24 that exist only inside those
// namespaces (nothing is added to the machine's own namespace). Every name carries a per-run id, and
// everything is removed by destroy() — also on process exit and SIGINT/SIGTERM — by deleting the namespaces
// (which takes the veths and the bridge with them) after SIGKILLing every process still inside them.
// Faults: host crash (every process of the host SIGKILLed, its link down), link up again, partition (link down
// without killing), and tc netem (loss, delay, jitter) on a host's link.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { run, runBinary, start, type Proc, type RunResult } from './proc.js';

export interface NsHost {
  index: number;
  /** Namespace name. */
  ns: string;
  /** The host's address on the test network. */
  addr: string;
  /** Interface name inside the host namespace. */
  dev: string;
  /** Start a long-running process inside the host (tracked: a crash kills it). */
  start(cmd: string, args: string[]): Proc;
  /** Run a command to completion inside the host. */
  run(cmd: string, args: string[], opts?: { input?: Buffer | string; timeoutMs?: number }): Promise<RunResult>;
  /** Same, stdout as bytes. */
  runBinary(cmd: string, args: string[], opts?: { timeoutMs?: number }): Promise<{ code: number; stdout: Buffer; stderr: string }>;
  procs: Set<Proc>;
}

export interface NsNet {
  id: string;
  hosts: NsHost[];
  /** SIGKILL every process of the host, then take its link down. */
  crash(i: number): Promise<void>;
  /** Link down (the processes live on): a partitioned host. */
  partition(i: number): Promise<void>;
  /** Link up again (after crash or partition; netem is cleared). */
  heal(i: number): Promise<void>;
  /** `tc qdisc replace ... netem SPEC` on the host's link, e.g. "loss 20%" or "delay 100ms 20ms". */
  netem(i: number, spec: string): Promise<void>;
  destroy(): Promise<void>;
}

const live = new Set<string>();
let hooked = false;

function sh(args: string[]): void {
  const r = spawnSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.toString().trim()}`);
}

/** Kill every process inside a namespace and delete it (synchronous: usable from exit handlers). */
function removeNs(ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns]).stdout?.toString().split(/\s+/).filter(Boolean) ?? [];
  for (const p of pids) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  live.delete(ns);
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const all = (): void => [...live].forEach(removeNs);
  process.on('exit', all);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      all();
      process.kill(process.pid, sig);
    });
  }
}

export async function createHosts(n: number): Promise<NsNet> {
  if (process.getuid?.() !== 0) throw new Error('namespace test hosts need root (CI runs as root)');
  hookExit();
  const id = randomBytes(3).toString('hex');
  const net = 1 + (parseInt(id, 16) % 250);
  const sw = `sf-${id}-sw`;
  const bridge = 'br0';
  const created: string[] = [];
  const hosts: NsHost[] = [];
  try {
    sh(['netns', 'add', sw]);
    created.push(sw);
    live.add(sw);
    sh(['-n', sw, 'link', 'add', bridge, 'type', 'bridge']);
    sh(['-n', sw, 'link', 'set', bridge, 'up']);
    for (let i = 0; i < n; i++) {
      const ns = `sf-${id}-h${i}`;
      sh(['netns', 'add', ns]);
      created.push(ns);
      live.add(ns);
      // Both ends are created inside the switch namespace, then one moves into the host: no name ever exists
      // in the machine's own namespace.
      const peer = `p${i}`;
      sh(['-n', sw, 'link', 'add', peer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      sh(['-n', sw, 'link', 'set', peer, 'master', bridge]);
      sh(['-n', sw, 'link', 'set', peer, 'up']);
      const addr = `10.77.${net}.${i + 1}`;
      sh(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
      sh(['-n', ns, 'link', 'set', 'eth0', 'up']);
      sh(['-n', ns, 'link', 'set', 'lo', 'up']);
      const procs = new Set<Proc>();
      hosts.push({
        index: i,
        ns,
        addr,
        dev: 'eth0',
        procs,
        start: (cmd, args) => {
          const p = start('ip', ['netns', 'exec', ns, cmd, ...args]);
          procs.add(p);
          void p.exited.then(() => procs.delete(p));
          return p;
        },
        run: (cmd, args, opts = {}) => run('ip', ['netns', 'exec', ns, cmd, ...args], opts),
        runBinary: (cmd, args, opts = {}) => runBinary('ip', ['netns', 'exec', ns, cmd, ...args], opts),
      });
    }
  } catch (err) {
    for (const ns of created.reverse()) removeNs(ns);
    throw err;
  }

  const host = (i: number): NsHost => {
    const h = hosts[i];
    if (!h) throw new Error(`no host ${i}`);
    return h;
  };
  const crash = async (i: number): Promise<void> => {
    const h = host(i);
    const pids = spawnSync('ip', ['netns', 'pids', h.ns]).stdout.toString().split(/\s+/).filter(Boolean);
    for (const p of pids) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await Promise.all([...h.procs].map((p) => p.exited));
    sh(['-n', h.ns, 'link', 'set', h.dev, 'down']);
  };
  const partition = (i: number): Promise<void> => {
    sh(['-n', host(i).ns, 'link', 'set', host(i).dev, 'down']);
    return Promise.resolve();
  };
  const heal = (i: number): Promise<void> => {
    const h = host(i);
    spawnSync('tc', ['-n', h.ns, 'qdisc', 'del', 'dev', h.dev, 'root'], { stdio: 'ignore' });
    sh(['-n', h.ns, 'link', 'set', h.dev, 'up']);
    return Promise.resolve();
  };
  const netem = (i: number, spec: string): Promise<void> => {
    const h = host(i);
    const r = spawnSync('tc', ['-n', h.ns, 'qdisc', 'replace', 'dev', h.dev, 'root', 'netem', ...spec.split(/\s+/)], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`tc netem ${spec}: ${r.stderr.toString().trim()}`);
    return Promise.resolve();
  };
  const destroy = async (): Promise<void> => {
    for (const h of hosts) {
      for (const p of h.procs) p.kill('SIGKILL');
      await Promise.all([...h.procs].map((p) => p.exited));
    }
    for (const ns of created.reverse()) removeNs(ns);
  };
  return { id, hosts, crash, partition, heal, netem, destroy };
}
