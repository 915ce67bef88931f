// A real etcd (Debian's etcd-server) for tests: one member on 127.0.0.1 with kernel-chosen ports and its own data
// directory, or one member of a multi-member cluster at a given address (namespace hosts). Ended by PID.
import type { Etcd3 } from 'etcd3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ephemeralPort, waitForPort } from './ports.js';
import { run, start, type Proc, type RunResult } from './proc.js';

/** Where a command runs: this machine, or a namespace host (NsHost.start / NsHost.run). */
export type Spawner = (cmd: string, args: string[]) => Proc;
export type Runner = (cmd: string, args: string[]) => Promise<RunResult>;

export interface EtcdMember {
  name: string;
  proc: Proc;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
}

export interface EtcdMemberSpec {
  name: string;
  host: string;
  clientPort: number;
  peerPort: number;
}

/** Start one member; `cluster` lists every member (itself included) for a static bootstrap. */
export async function startEtcdMember(
  me: EtcdMemberSpec,
  cluster: EtcdMemberSpec[],
  opts: { dataDir?: string; token?: string; spawn?: Spawner; state?: 'new' | 'existing' } = {},
): Promise<EtcdMember> {
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `sf-etcd-${me.name}-`));
  const clientUrl = `http://${me.host}:${me.clientPort}`;
  const peerUrl = `http://${me.host}:${me.peerPort}`;
  const args = [
    '--name', me.name,
    '--data-dir', dataDir,
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', cluster.map((m) => `${m.name}=http://${m.host}:${m.peerPort}`).join(','),
    '--initial-cluster-state', opts.state ?? 'new',
    '--initial-cluster-token', opts.token ?? `sf-${process.pid}-${Date.now()}`,
    // Short heartbeats so a lost member or quorum shows within test time.
    '--heartbeat-interval', '100',
    '--election-timeout', '1000',
    '--log-level', 'warn',
  ];
  const proc = (opts.spawn ?? start)('etcd', args);
  return { name: me.name, proc, clientUrl, peerUrl, dataDir };
}

/** A one-member etcd on 127.0.0.1 (ephemeral ports), ready to serve. */
export async function startEtcd(name = 'e0'): Promise<EtcdMember> {
  const spec = { name, host: '127.0.0.1', clientPort: await ephemeralPort(), peerPort: await ephemeralPort() };
  const m = await startEtcdMember(spec, [spec]);
  await waitForPort(spec.clientPort);
  await waitHealthy([m.clientUrl]);
  return m;
}

/** Wait until `etcdctl endpoint health` says every endpoint is healthy. */
export async function waitHealthy(endpoints: string[], timeoutMs = 30_000, runner: Runner = (c, a) => run(c, a)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await runner('etcdctl', ['--endpoints', endpoints.join(','), '--command-timeout=2s', 'endpoint', 'health']);
    if (r.code === 0) return;
    last = r.stdout + r.stderr;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`etcd ${endpoints.join(',')} not healthy: ${last}`);
}

/** SIGKILL the member (by PID) and remove its data directory. */
export async function stopEtcd(m: EtcdMember, removeData = true): Promise<void> {
  m.proc.kill('SIGKILL');
  await m.proc.exited;
  if (removeData) fs.rmSync(m.dataDir, { recursive: true, force: true });
}

/** Revisions of `key` etcd still keeps history for (current − compacted), found by probing reads at old revisions. */
export async function retainedRevisions(admin: Etcd3, key: Buffer): Promise<number> {
  const readable = (rev: number): Promise<boolean> =>
    admin.kv.range({ key, revision: rev }).then(
      () => true,
      (err: Error) => (/compacted/.test(err.message) ? false : Promise.reject(err)),
    );
  const head = Number((await admin.kv.range({ key })).header.revision);
  let lo = 1;
  let hi = head; // reading at hi works, at lo it does not
  if (await readable(lo)) return head;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await readable(mid)) hi = mid;
    else lo = mid;
  }
  return head - hi;
}
