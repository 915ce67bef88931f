// The drill scenarios of `sheepfold drill`: each runs a verifying workload (stamped blocks, history checker)
// before, during and after one fault on a drill deployment (3 sheep, targets A and B sharing a VDI, A's links
// to the sheep through fault proxies), then re-reads every touched block and turns the history check plus the
// scenario's own checks into a ScenarioResult. docs/drills.md says what each scenario injects and checks.
import fs from 'node:fs';
import net from 'node:net';
import { MultipathDevice } from '../initiator/index.js';
import { NbdClient } from '../nbd/client.js';
import { SheepClient } from '../client/index.js';
import { LOCK_TYPE_SHARED } from '../proto/sheepdog/constants.js';
import type { CheckResult } from './history.js';
import { FaultProxy } from './faultproxy.js';
import { ioRate, type FaultMarker, type ScenarioResult } from './report.js';
import { Workload, type IoTarget } from './workload.js';
import { HOST, TARGET_READY, dog, startChild, targetArgs, waitFor, type Deployment } from './deploy.js';
import { SHARED_WRITE_FENCE_MS } from '../target/vdi-export.js';

export const SCENARIO_NAMES = ['target-failover', 'sheep-kill', 'gateway-restart', 'stale-lock', 'partition'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** What a scenario needs from the running drill deployment. */
export interface DrillEnv {
  deploy: Deployment;
  sheepPorts: number[];
  /** The VDI both targets export in shared mode, and its iSCSI name. */
  vdi: string;
  iqn: string;
  /** The VDI target C exports with an exclusive lock (stale-lock). */
  exclVdi: string;
  targets: Record<'A' | 'B' | 'C', { nbd: string; iscsi?: string }>;
  /** One proxy per sheep on target A's links to the cluster, and the ports they listen on. */
  proxies: FaultProxy[];
  proxyPorts: number[];
  /** Seconds of workload in each phase (before, during, after). */
  phaseSeconds: number;
  /** Progress: one short phase description. */
  progress: (scenario: string, phase: string) => void;
}

const BLOCK = 4096;
const BLOCKS = 128;
const OBJECT_SIZE = 4 * 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/** One multipath device over targets A and B (A first: the preferred path while both are active/optimized). */
async function openMultipath(env: DrillEnv, ioTimeoutMs = 3_000): Promise<MultipathDevice> {
  const path = (name: 'A' | 'B'): { name: string; session: { host: string; port: number; targetName: string; name: string } } => {
    const t = env.targets[name];
    if (!t.iscsi) throw new Error(`target ${name} has no iSCSI portal`);
    return { name, session: { ...hostPort(t.iscsi), targetName: env.iqn, name } };
  };
  const dev = new MultipathDevice({
    name: 'drill',
    paths: [path('A'), path('B')],
    ioTimeoutMs,
    noPathTimeoutMs: 60_000,
    probeIntervalMs: 250,
    nopIntervalMs: 1_000,
    aluaRefreshMs: 0,
  });
  await dev.open();
  return dev;
}

/** An NBD client on a target's export, as a workload target. */
async function openNbd(addr: string, exportName: string): Promise<IoTarget & { close(): void }> {
  const { host, port } = hostPort(addr);
  const sock = net.connect({ host, port });
  sock.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.on('error', () => undefined);
  const c = new NbdClient(sock);
  await c.connect({ exportName, structured: true });
  return {
    read: (o, l) => c.read(o, l),
    write: (o, d) => c.write(o, d),
    flush: () => c.flush(),
    close: () => c.disconnect(),
  };
}

/** A workload plus its markers, phase boundaries and notes. */
class Run {
  readonly wl: Workload;
  readonly markers: FaultMarker[] = [];
  readonly notes: string[] = [];
  readonly failures: string[] = [];
  faults = 0;
  tFault = 0;
  tRecover = 0;
  private readonly t0: number;

  constructor(
    readonly env: DrillEnv,
    readonly name: string,
    io: IoTarget,
    seed: number,
    blocks = BLOCKS,
  ) {
    this.t0 = performance.now();
    io = this.recording(io);
    // Each scenario writes in its own 4 MiB object, so it also allocates that object under its fault.
    this.wl = new Workload(io, { blocks, blockSize: BLOCK, baseOffset: seed * OBJECT_SIZE, workers: 4, writeRatio: 0.5, seed, opTimeoutMs: 60_000 });
  }

  now(): number {
    return performance.now() - this.t0;
  }

  /** The first distinct error messages the initiator saw, for the notes. */
  readonly errors = new Map<string, number>();

  /** Wrap a target so every error it returns is counted by message. */
  private recording(io: IoTarget): IoTarget {
    const note = (e: unknown): never => {
      const msg = (e instanceof Error ? e.message : String(e)).slice(0, 200);
      if (this.errors.size < 5 || this.errors.has(msg)) this.errors.set(msg, (this.errors.get(msg) ?? 0) + 1);
      throw e;
    };
    return {
      read: (o, l) => io.read(o, l).catch(note),
      write: (o, d) => io.write(o, d).catch(note),
    };
  }

  mark(label: string, kind: FaultMarker['kind']): void {
    this.markers.push({ t: Math.round(this.now()), label, kind });
    this.env.progress(this.name, label);
  }

  fault(label: string): void {
    this.faults++;
    if (this.tFault === 0) this.tFault = this.now();
    this.mark(label, 'fault');
  }

  recover(label: string): void {
    this.tRecover = this.now();
    this.mark(label, 'recover');
  }

  /** Record a scenario check; a false one fails the scenario. */
  check(ok: boolean, what: string): void {
    if (ok) this.notes.push(`ok: ${what}`);
    else {
      this.failures.push(what);
      this.notes.push(`FAIL: ${what}`);
    }
  }

  async phase(label: string): Promise<void> {
    this.env.progress(this.name, label);
    await sleep(this.env.phaseSeconds * 1000);
  }

  /** Stop the workload, re-read every touched block through `verifyWith`, and build the result. */
  async finish(
    verifyWith: IoTarget | undefined,
    extra: { failoverSeconds: number | null; ghost?: (c: CheckResult) => number; errorsAbsorbed?: boolean },
  ): Promise<ScenarioResult> {
    this.env.progress(this.name, 'stopping the workload');
    await this.wl.stop();
    const tEnd = this.now();
    let verified = false;
    try {
      this.env.progress(this.name, 'final reads of every touched block');
      await this.wl.verify(verifyWith);
      verified = true;
    } catch (e) {
      this.check(false, `final reads failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    const c = this.wl.check();
    const ghost = extra.ghost ? extra.ghost(c) : 0;
    if (this.tRecover === 0) this.tRecover = tEnd;
    const s = this.wl.stats;
    this.notes.push(
      `ops=${c.ops} reads=${s.reads} writes=${s.writes} read_errors=${s.readErrors} write_errors=${s.writeErrors} unknown_outcome_writes=${s.writes - s.acknowledgedWrites} ` +
        `corrupt=${c.corrupt} nonlinearizable=${c.nonlinearizable} undetermined=${c.undetermined} longest_stall_ms=${Math.round(s.longestStallMs)}`,
    );
    for (const [msg, n] of this.errors) this.notes.push(`initiator error x${n}: ${msg}`);
    for (const v of c.violations.slice(0, 5)) this.notes.push(`${v.kind} block ${v.block}: ${v.detail}`);
    if (extra.errorsAbsorbed) {
      this.check(s.readErrors + s.writeErrors === 0, `the initiator saw no I/O error (${s.readErrors} read and ${s.writeErrors} write errors)`);
    }
    const ioAfter = ioRate(this.wl.timeline, this.tRecover, tEnd);
    this.check(ioAfter > 0, 'I/O continues after recovery');
    const passed = verified && this.failures.length === 0 && c.lostWrites === 0 && c.staleReads === 0 && c.corrupt === 0 && c.nonlinearizable === 0 && ghost === 0;
    return {
      name: this.name,
      passed,
      acknowledged_writes: c.acknowledgedWrites,
      lost_writes: c.lostWrites,
      stale_reads: c.staleReads,
      ghost_writes: ghost,
      corrupt_reads: c.corrupt,
      failover_seconds: extra.failoverSeconds,
      faults_injected: this.faults,
      io_before: ioRate(this.wl.timeline, 0, this.tFault),
      io_during: ioRate(this.wl.timeline, this.tFault, this.tRecover),
      io_after: ioAfter,
      duration_seconds: Math.round(tEnd / 100) / 10,
      notes: this.notes,
      markers: this.markers,
      timeline: this.wl.timeline,
    };
  }
}

/** A result for a scenario that could not run at all (setup failed): a failure, never a pass. */
export function brokenResult(name: string, err: unknown): ScenarioResult {
  return {
    name,
    passed: false,
    acknowledged_writes: 0,
    lost_writes: 0,
    stale_reads: 0,
    ghost_writes: 0,
    corrupt_reads: 0,
    failover_seconds: null,
    faults_injected: 0,
    io_before: 0,
    io_during: 0,
    io_after: 0,
    duration_seconds: 0,
    notes: [`FAIL: scenario aborted: ${err instanceof Error ? err.message : String(err)}`],
    markers: [],
    timeline: [],
  };
}

/** Seconds of the first multipath failover after `sinceMs` (wall clock), or null. */
function failoverSeconds(dev: MultipathDevice, sinceMs: number): number | null {
  const f = dev.failovers().find((e) => e.atMs >= sinceMs);
  return f?.durationMs === undefined ? null : Math.round(f.durationMs / 10) / 100;
}

interface NodeRecovery {
  nodes: { inRecovery: boolean }[];
}

/** Wait until `n` sheep are members and none is recovering (asked through `port`). */
async function waitSettled(port: number, n: number, timeoutMs = 120_000): Promise<void> {
  await waitFor(
    async () => {
      const list = JSON.parse(await dog(port, ['node', 'list', '--json'])) as unknown[];
      if (list.length !== n) return false;
      const rec = JSON.parse(await dog(port, ['node', 'recovery', '--json'])) as NodeRecovery;
      return rec.nodes.length === n && rec.nodes.every((x) => !x.inRecovery);
    },
    `${n} sheep settled`,
    timeoutMs,
  );
}

/** Wait (up to 60 s) for a `recovery_finished` line in a sheep's log after byte `from`; its transfer count or null. */
async function waitRecoveryFinished(logFile: string, from: number): Promise<number | null> {
  let n: number | null = null;
  await waitFor(() => Promise.resolve((n = recoveryTransferred(logFile, from)) !== null), 'recovery_finished', 60_000).catch(() => undefined);
  return n;
}

/** Transfer count of the newest `recovery_finished` line in a sheep's log written after byte `from`. */
function recoveryTransferred(logFile: string, from: number): number | null {
  const text = fs.readFileSync(logFile, 'utf8').slice(from);
  let found: number | null = null;
  for (const line of text.split('\n')) {
    if (!line.includes('"recovery_finished"')) continue;
    try {
      found = (JSON.parse(line) as { transferred: number }).transferred;
    } catch {
      // a partial line
    }
  }
  return found;
}

/** Release a dead target's participation in the shared lock (it was taken through its gateway `port`). */
async function releaseSharedParticipant(port: number, vdi: string): Promise<void> {
  const c = new SheepClient({ gateways: `${HOST}:${port}` });
  try {
    await c.connect();
    const { vid } = await c.getVdiInfo(vdi);
    await c.releaseVdi(vid, LOCK_TYPE_SHARED);
  } finally {
    c.close();
  }
}

/** Restart target A; if its sheep still holds A's stale shared-lock participation, release it and retry. */
async function restartTargetA(env: DrillEnv, r: Run): Promise<void> {
  try {
    await env.deploy.restart('targetA');
    r.notes.push('target A restarted with its old shared lock participation still registered');
  } catch (e) {
    const log = fs.readFileSync(env.deploy.logFile('targetA'), 'utf8');
    if (!/already locked/i.test(log)) throw e;
    r.notes.push("target A's restart was refused (its dead incarnation still holds the shared lock through sheep0); released that participant and restarted");
    await releaseSharedParticipant(env.sheepPorts[0]!, env.vdi);
    await env.deploy.restart('targetA');
  }
}

/** target-failover: SIGKILL target A under a multipath workload, restart it, fail back to it. */
async function targetFailover(env: DrillEnv): Promise<ScenarioResult> {
  const dev = await openMultipath(env);
  const r = new Run(env, 'target-failover', dev, 1);
  try {
    r.wl.start();
    await r.phase('before');
    const killedAt = Date.now();
    r.fault(`SIGKILL target A (pid ${env.deploy.pid('targetA')})`);
    await env.deploy.kill('targetA', 'SIGKILL');
    await r.phase('during: I/O on B');
    await restartTargetA(env, r);
    r.mark('target A restarted', 'info');
    await waitFor(() => Promise.resolve(dev.status().find((p) => p.name === 'A')?.state === 'active'), 'path A reinstated', 60_000).catch(() => undefined);
    const aBack = dev.status().find((p) => p.name === 'A')?.state === 'active';
    r.check(aBack, 'path A reinstated after the restart');
    if (aBack) r.recover('path A reinstated');
    else r.recover('A not reinstated');
    const iosBefore = dev.status().find((p) => p.name === 'A')?.ios ?? 0;
    await r.phase('after: fail back to A');
    const iosAfter = dev.status().find((p) => p.name === 'A')?.ios ?? 0;
    r.check(iosAfter > iosBefore, 'I/O failed back to path A');
    const fo = failoverSeconds(dev, killedAt);
    r.check(fo !== null, 'a failover A -> B was recorded');
    return await r.finish(undefined, { failoverSeconds: fo, errorsAbsorbed: true });
  } finally {
    await r.wl.stop();
    await dev.close();
  }
}

/** sheep-kill: SIGKILL a sheep that is no target's first gateway, run on 2 sheep, restart it, wait for recovery. */
async function sheepKill(env: DrillEnv): Promise<ScenarioResult> {
  const dev = await openMultipath(env);
  const r = new Run(env, 'sheep-kill', dev, 2);
  const victim = `sheep${env.sheepPorts.length - 1}`;
  const p0 = env.sheepPorts[0]!;
  try {
    r.wl.start();
    await r.phase('before');
    r.fault(`SIGKILL ${victim} (pid ${env.deploy.pid(victim)})`);
    await env.deploy.kill(victim, 'SIGKILL');
    await waitSettled(p0, env.sheepPorts.length - 1);
    r.mark('cluster at 2 sheep', 'info');
    await r.phase('during: 2 sheep');
    const logFrom = fs.existsSync(env.deploy.logFile(victim)) ? fs.statSync(env.deploy.logFile(victim)).size : 0;
    await env.deploy.restart(victim);
    r.mark(`${victim} restarted`, 'info');
    await waitSettled(p0, env.sheepPorts.length);
    r.recover('rejoined, recovery done');
    const moved = await waitRecoveryFinished(env.deploy.logFile(victim), logFrom);
    r.check(moved !== null, `${victim} finished recovery after rejoining${moved === null ? '' : ` (${moved} object(s) fetched)`}`);
    await r.phase('after');
    return await r.finish(undefined, { failoverSeconds: Math.round(r.wl.stats.longestStallMs / 10) / 100, errorsAbsorbed: true });
  } finally {
    await r.wl.stop();
    await dev.close();
  }
}

/** gateway-restart: SIGKILL target A's gateway sheep; A reconnects to another sheep; the sheep returns and recovers only what changed. */
async function gatewayRestart(env: DrillEnv): Promise<ScenarioResult> {
  const dev = await openMultipath(env, 10_000);
  const r = new Run(env, 'gateway-restart', dev, 3);
  const p1 = env.sheepPorts[1]!;
  try {
    r.wl.start();
    await r.phase('before');
    const killedAt = Date.now();
    const failsBefore = dev.status().find((p) => p.name === 'A')?.errors ?? 0;
    r.fault(`SIGKILL sheep0, A's gateway (pid ${env.deploy.pid('sheep0')})`);
    await env.deploy.kill('sheep0', 'SIGKILL');
    // A dead host refuses connections: close the proxy in front of sheep0 until sheep0 is back (an open proxy
    // would accept A's reconnects and drop them, which no real dead gateway does).
    const old = env.proxies[0]!;
    const proxyPort = env.proxyPorts[0]!;
    await old.stop();
    await r.phase('during: A on another gateway');
    const logFrom = fs.existsSync(env.deploy.logFile('sheep0')) ? fs.statSync(env.deploy.logFile('sheep0')).size : 0;
    await env.deploy.restart('sheep0');
    const fresh = new FaultProxy({ targetHost: HOST, targetPort: env.sheepPorts[0]!, listenPort: proxyPort });
    await fresh.start();
    env.proxies[0] = fresh;
    r.mark('sheep0 restarted', 'info');
    await waitSettled(p1, env.sheepPorts.length);
    r.recover('sheep0 rejoined, recovery done');
    const moved = await waitRecoveryFinished(env.deploy.logFile('sheep0'), logFrom);
    r.check(moved !== null, `sheep0 finished recovery after rejoining${moved === null ? '' : ` (${moved} object(s) fetched: only what changed meanwhile, seed 004)`}`);
    await r.phase('after');
    const a = dev.status().find((p) => p.name === 'A');
    const failsAfter = a?.errors ?? 0;
    r.check(env.deploy.pid('targetA') !== null, 'target A process survived its gateway dying');
    r.check(a?.state === 'active', 'path A is active at the end');
    if (failsAfter > failsBefore) r.notes.push(`path A failed ${failsAfter - failsBefore} time(s) while its gateway was down: I/O moved to B meanwhile`);
    else r.notes.push('path A never failed: target A reconnected to another gateway by itself');
    const fo = failoverSeconds(dev, killedAt);
    return await r.finish(undefined, { failoverSeconds: fo ?? Math.round(r.wl.stats.longestStallMs / 10) / 100, errorsAbsorbed: true });
  } finally {
    await r.wl.stop();
    await dev.close();
  }
}

/**
 * The initiator side of a single-path NBD disk that reconnects: operations issued while the target is down wait
 * for the next connection (as a kernel NBD client with a dead-connection timeout would queue them), so the
 * workload does not spin on errors; operations in flight when the connection dies fail (unknown outcome).
 */
class ReconnectingNbd implements IoTarget {
  private cur: Promise<IoTarget & { close(): void }>;
  private resolveNext: ((t: IoTarget & { close(): void }) => void) | undefined;

  constructor(first: IoTarget & { close(): void }) {
    this.cur = Promise.resolve(first);
  }

  /** The target is gone: close the client; new operations wait for reconnect(). */
  async down(): Promise<void> {
    const old = await this.cur;
    this.cur = new Promise((resolve) => (this.resolveNext = resolve));
    old.close();
  }

  reconnect(t: IoTarget & { close(): void }): void {
    this.resolveNext?.(t);
    this.resolveNext = undefined;
    this.cur = Promise.resolve(t);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    return (await this.cur).read(offset, length);
  }

  async write(offset: number, data: Buffer): Promise<void> {
    return (await this.cur).write(offset, data);
  }

  /** Close the connection; operations still waiting for a reconnect fail. */
  async close(): Promise<void> {
    if (this.resolveNext) {
      const fail = (): Promise<never> => Promise.reject(new Error('target closed'));
      this.reconnect({ read: fail, write: fail, close: () => undefined });
      return;
    }
    (await this.cur).close();
  }
}

interface LockListEntry {
  name: string;
  state: string;
  owner: string | null;
}

/** stale-lock: target C dies holding an exclusive lock; detect it, `dog vdi lock unlock` (replica check), reopen. */
async function staleLock(env: DrillEnv): Promise<ScenarioResult> {
  const p = env.sheepPorts[2] ?? env.sheepPorts[0]!;
  const c = env.targets.C;
  const nbd = new ReconnectingNbd(await openNbd(c.nbd, env.exclVdi));
  const r = new Run(env, 'stale-lock', nbd, 4);
  try {
    r.wl.start();
    await r.phase('before');
    r.fault(`SIGKILL target C (pid ${env.deploy.pid('targetC')})`);
    await env.deploy.kill('targetC', 'SIGKILL');
    await nbd.down();
    const locks = JSON.parse(await dog(p, ['vdi', 'lock', 'list', '--json'])) as LockListEntry[];
    const stale = locks.find((l) => l.name === env.exclVdi);
    r.check(stale?.state === 'locked', `the dead target's exclusive lock is detected by dog vdi lock list (${stale ? `owner ${stale.owner}` : 'not listed'})`);
    // Target C restarted with its own target id would take its lock back (docs/fencing.md §3): the stale lock
    // must refuse a different target, one with another target id.
    let refused = false;
    const other = env.deploy.logFile('targetC-other');
    try {
      const args = targetArgs({ sheep: [`${HOST}:${p}`], exports: [`${env.exclVdi}=${env.exclVdi}`], nbd: `${HOST}:0`, logLevel: 'warn' });
      const intruder = await startChild('targetC-other', [...args, '--target-id', 'drill-other-target'], other, TARGET_READY, 30_000);
      intruder.proc.kill('SIGKILL');
      await intruder.exited;
    } catch {
      refused = /already locked/i.test(fs.readFileSync(other, 'utf8'));
    }
    r.check(refused, 'a different target is refused while the stale lock is held');
    r.mark('reopen refused: VDI locked', 'info');
    const unlock = JSON.parse(await dog(p, ['vdi', 'lock', 'unlock', env.exclVdi, '--json'])) as {
      released: boolean;
      check: { checked?: number; fixed?: number; recreated?: number; lost?: unknown[]; noMajority?: unknown[]; failed?: unknown[] };
    };
    const rep = unlock.check;
    r.check(unlock.released, 'dog vdi lock unlock checked the replicas and released the lock');
    r.notes.push(`replica reconciliation: ${JSON.stringify({ checked: rep.checked, fixed: rep.fixed, recreated: rep.recreated, lost: rep.lost?.length, noMajority: rep.noMajority?.length, failed: rep.failed?.length })}`);
    r.mark('lock unlock + check', 'info');
    await env.deploy.restart('targetC');
    nbd.reconnect(await openNbd(c.nbd, env.exclVdi));
    r.recover('target C reopened the VDI');
    await r.phase('after');
    return await r.finish(undefined, { failoverSeconds: Math.round(r.wl.stats.longestStallMs / 10) / 100 });
  } finally {
    await nbd.close();
    await r.wl.stop();
  }
}

/**
 * partition: the proxies on target A's links to every sheep blackhole them (bytes dropped both ways, connections
 * stay open) while the initiator writes through A; the multipath device times A out (after the target's write
 * fence deadline, as docs/fencing.md requires) and writes through B; the
 * link heals and A comes back. Fencing holds if nothing A accepted before or during the partition lands after
 * the newer writes made through B: ghost writes are counted from the history check (docs/drills.md).
 */
async function partition(env: DrillEnv): Promise<ScenarioResult> {
  // The write fence of a shared export (docs/fencing.md §4) assumes no initiator re-issues a write on another
  // path sooner than SHARED_WRITE_FENCE_MS: the drill's initiator keeps to that (per-attempt timeout 1 s longer).
  const dev = await openMultipath(env, SHARED_WRITE_FENCE_MS + 1_000);
  // A small hot set: a write A still holds is likely to have newer writes to its block made through B.
  const r = new Run(env, 'partition', dev, 5, 16);
  try {
    r.wl.start();
    await r.phase('before');
    const cutAt = Date.now();
    r.fault("blackhole target A's links to the cluster");
    for (const p of env.proxies) p.set({ blackhole: true });
    await waitFor(() => Promise.resolve(dev.failovers().some((e) => e.atMs >= cutAt)), 'the multipath device to fail over to B', 60_000).catch(() => undefined);
    r.mark('I/O failed over to B', 'info');
    const tB = r.now();
    const sinceB = Date.now();
    await r.phase('during: partitioned, I/O on B');
    const reinstated = dev.events.filter((e) => e.type === 'reinstate' && e.path === 'A' && e.atMs >= sinceB).length;
    r.notes.push(`I/O completed while A stayed partitioned after the failover: ${ioRate(r.wl.timeline, tB, r.now())} io/s; path A reinstated ${reinstated} time(s) meanwhile`);
    const dropped = env.proxies.reduce((a, p) => a + p.droppedBytes, 0);
    r.notes.push(`bytes between A and the cluster dropped by the blackhole: ${dropped} (requests A was holding when the link died)`);
    for (const p of env.proxies) {
      p.heal();
      p.reset();
    }
    r.recover('link healed, A reconnects');
    await waitFor(() => Promise.resolve(dev.status().find((p) => p.name === 'A')?.state === 'active'), 'path A reinstated', 60_000).catch(() => undefined);
    r.check(dev.status().find((p) => p.name === 'A')?.state === 'active', 'path A reinstated after the heal');
    await r.phase('after');
    // Give anything A still holds time to land before the final reads.
    await sleep(2_000);
    const fo = failoverSeconds(dev, cutAt);
    r.check(fo !== null, 'a failover A -> B was recorded');
    return await r.finish(undefined, {
      failoverSeconds: fo,
      errorsAbsorbed: true,
      // A ghost write shows as a block reading an older value after a newer acknowledged write: every stale,
      // lost or nonlinearizable block of this scenario counts as one ghost write.
      ghost: (c) => new Set(c.violations.filter((v) => v.kind !== 'corrupt').map((v) => v.block)).size,
    });
  } finally {
    for (const p of env.proxies) p.heal();
    await r.wl.stop();
    await dev.close();
  }
}

export const SCENARIOS: Record<ScenarioName, (env: DrillEnv) => Promise<ScenarioResult>> = {
  'target-failover': targetFailover,
  'sheep-kill': sheepKill,
  'gateway-restart': gatewayRestart,
  'stale-lock': staleLock,
  partition,
};
