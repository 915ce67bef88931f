// Local deployments of sheep and targets as child processes, shared by `sheepfold up` and `sheepfold drill`:
// port picking, starting a child and waiting for its ready line, running dog, and a Deployment that knows every
// child's exact arguments so a drill can SIGKILL one by PID and restart it the same way. Children log to
// DIR/logs/NAME.log; `up.json` in DIR records ports, PIDs and argument lists.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DRILL_DIR = path.dirname(fileURLToPath(import.meta.url));
export const SHEEPFOLD_JS = path.join(DRILL_DIR, '..', 'cli', 'sheepfold.js');
export const DOG_JS = path.join(DRILL_DIR, '..', 'cli', 'dog.js');
export const HOST = '127.0.0.1';

export interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<number | string>;
}

/** True if HOST:port can be bound now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: HOST, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** The first free port at or after `want` that is not in `taken`; says so when it had to skip. */
export async function pickPort(want: number, taken: Set<number>, what: string, say: (m: string) => void): Promise<number> {
  for (let p = want; p < want + 1000 && p < 65536; p++) {
    if (taken.has(p)) continue;
    if (await portFree(p)) {
      if (p !== want) say(`${what}: port ${want} is taken, using ${p}`);
      taken.add(p);
      return p;
    }
  }
  throw new Error(`${what}: no free port from ${want}`);
}

/** Start a child process, its stdout/stderr appended to a log file; resolves with the first stdout line matching. */
export function startChild(name: string, args: string[], logFile: string, ready: RegExp, timeoutMs = 60_000): Promise<Child> {
  const log = fs.openSync(logFile, 'a');
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', log] });
  fs.closeSync(log);
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not become ready within ${timeoutMs} ms (see ${logFile})`)), timeoutMs);
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      fs.appendFileSync(logFile, d);
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ name, proc, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it was ready; see ${logFile}`));
    });
  });
}

/** Run dog against a sheep; resolves with stdout, rejects with dog's own error line. */
export function dog(port: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [DOG_JS, ...args, '-a', HOST, '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`dog ${args.join(' ')}: ${err.trim() || `exit ${code}`}`))));
  });
}

/** Poll `cond` every 200 ms until it holds; throws after timeoutMs naming `what`. */
export async function waitFor(cond: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Stop children in order: SIGTERM, wait up to graceMs, then SIGKILL. */
export async function stopChildren(children: Child[], graceMs = 15_000): Promise<void> {
  for (const c of children) {
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGTERM');
    const t = setTimeout(() => c.proc.kill('SIGKILL'), graceMs);
    await c.exited;
    clearTimeout(t);
  }
}

/** What a child is started with, so it can be restarted identically. */
export interface ChildSpec {
  name: string;
  args: string[];
  ready: RegExp;
}

export interface DeploymentState {
  sheepPorts: number[];
  nbdPorts: number[];
  iscsiPorts: number[];
  children: { name: string; pid: number | null; args: string[] }[];
}

/** A set of named child processes that can be killed and restarted by name (by PID underneath). */
export class Deployment {
  readonly specs = new Map<string, ChildSpec>();
  readonly live = new Map<string, Child>();
  readonly logs: string;

  constructor(
    readonly dir: string,
    readonly ports: { sheepPorts: number[]; nbdPorts: number[]; iscsiPorts: number[] },
  ) {
    this.logs = path.join(dir, 'logs');
    fs.mkdirSync(this.logs, { recursive: true });
  }

  /** Start (or restart) the child described by `spec`. */
  async start(spec: ChildSpec, timeoutMs = 60_000): Promise<Child> {
    this.specs.set(spec.name, spec);
    const c = await startChild(spec.name, spec.args, this.logFile(spec.name), spec.ready, timeoutMs);
    this.live.set(spec.name, c);
    this.saveState();
    return c;
  }

  /** Restart a child that was killed, with the arguments it had. */
  async restart(name: string, timeoutMs = 60_000): Promise<Child> {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`no child named ${name}`);
    if (this.live.has(name)) await this.kill(name, 'SIGKILL');
    return this.start(spec, timeoutMs);
  }

  /** Send `signal` to the child's PID and wait for it to exit. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const c = this.live.get(name);
    if (!c) return;
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill(signal);
    await c.exited;
    this.live.delete(name);
    this.saveState();
  }

  pid(name: string): number | null {
    return this.live.get(name)?.proc.pid ?? null;
  }

  logFile(name: string): string {
    return path.join(this.logs, `${name}.log`);
  }

  /** Stop everything: targets first (flush, release locks), then the rest, sheep last in reverse order. */
  async stop(graceMs = 15_000): Promise<void> {
    const all = [...this.live.values()];
    const targets = all.filter((c) => !c.name.startsWith('sheep'));
    const sheep = all.filter((c) => c.name.startsWith('sheep')).reverse();
    await stopChildren(targets, graceMs);
    await stopChildren(sheep, graceMs);
    this.live.clear();
    this.saveState();
  }

  /** Write DIR/up.json: ports, live PIDs and every child's arguments. */
  saveState(): void {
    const state: DeploymentState = {
      ...this.ports,
      children: [...this.specs.values()].map((s) => ({ name: s.name, pid: this.live.get(s.name)?.proc.pid ?? null, args: s.args })),
    };
    fs.writeFileSync(path.join(this.dir, 'up.json'), JSON.stringify(state, null, 2));
  }
}

/** Args of `sheepfold sheep` as up and drill run it. */
export function sheepArgs(o: { store: string; port: number; zone: number; clusterDir: string; logLevel: string }): string[] {
  return [SHEEPFOLD_JS, 'sheep', '--store', o.store, '--port', String(o.port), '--zone', String(o.zone), '--cluster', `local:${o.clusterDir}`, '--json', '--log-level', o.logLevel];
}

/** Args of `sheepfold target` as up and drill run it. */
export function targetArgs(o: { sheep: string[]; exports: string[]; nbd: string; iscsi?: string; logLevel: string }): string[] {
  return [
    SHEEPFOLD_JS,
    'target',
    '--sheep',
    o.sheep.join(','),
    ...o.exports.flatMap((e) => ['--export', e]),
    '--nbd',
    o.nbd,
    ...(o.iscsi ? ['--iscsi', o.iscsi] : []),
    '--json',
    '--log-level',
    o.logLevel,
  ];
}

export const SHEEP_READY = /"event":"sheep_ready"/;
export const TARGET_READY = /"ready":true/;

/** Format the cluster if needed (copies), wait for it to run, and create the VDIs that are missing. */
export async function prepareCluster(port: number, nSheep: number, copies: string, vdis: Array<[string, string]>, say: (m: string) => void): Promise<void> {
  await waitFor(async () => (await dog(port, ['node', 'list', '--json'])).split('"addr"').length - 1 === nSheep, `${nSheep} sheep to join`);
  const info = await dog(port, ['cluster', 'info']);
  if (/Waiting for cluster to be formatted|not formatted/i.test(info)) {
    say(`formatting the cluster with ${copies} copies`);
    await dog(port, ['cluster', 'format', '-c', copies]);
  } else say('reusing the formatted cluster');
  await waitFor(async () => /running/i.test(await dog(port, ['cluster', 'info'])), 'the cluster to run');
  const list = await dog(port, ['vdi', 'list', '-r']);
  for (const [name, size] of vdis) {
    if (!list.split('\n').some((l) => l.split(/\s+/)[1] === name)) {
      say(`creating VDI ${name} (${size})`);
      await dog(port, ['vdi', 'create', name, size]);
    }
  }
}
