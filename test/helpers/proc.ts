// Process helpers for integration tests: spawn real processes, capture their output, and end every one of
// them by PID (never by name). Call `killAll()` in afterAll/afterEach.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'vitest';

export interface Proc {
  child: ChildProcess;
  pid: number;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has ended. */
  exited: Promise<number | string>;
  /** Send a signal to the process; no-op if it has ended. */
  kill(signal?: NodeJS.Signals): void;
}

const live = new Set<Proc>();

/** Start a long-running process; it is tracked and ended by killAll(). */
export function start(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, sig) => {
      live.delete(p);
      resolve(code ?? sig ?? -1);
    });
    child.once('error', () => {
      live.delete(p);
      resolve(-1);
    });
  });
  const p: Proc = {
    child,
    pid: child.pid ?? -1,
    output: () => out,
    exited,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
  live.add(p);
  return p;
}

/** Wait until the process output matches `re`, or fail with its output. */
export async function waitForOutput(p: Proc, re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = p.output().match(re);
    if (m) return m;
    if (p.child.exitCode !== null || p.child.signalCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${re} from pid ${p.pid}; output:\n${p.output().slice(-4000)}`);
}

/** SIGTERM every tracked process, then SIGKILL those still alive after graceMs. */
export async function killAll(graceMs = 5000): Promise<void> {
  const procs = [...live];
  for (const p of procs) p.kill('SIGTERM');
  await Promise.race([
    Promise.all(procs.map((p) => p.exited)),
    new Promise((r) => setTimeout(r, graceMs)),
  ]);
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Spawn a command, feed it `input`, and collect its output until it closes (killed after timeoutMs). */
function collect(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { input?: Buffer | string; timeoutMs?: number },
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const { input, timeoutMs = 120_000, ...spawnOpts } = opts;
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOpts });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() });
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  });
}

/** Run a command to completion and collect its output (stdin optional). Never throws on non-zero exit. */
export async function run(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { input?: Buffer | string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const r = await collect(cmd, args, opts);
  return { code: r.code ?? (r.signal ? 128 : -1), stdout: r.stdout.toString(), stderr: r.stderr };
}

/** Like run(), but returns stdout as a Buffer (for binary output such as `dog vdi read`). */
export async function runBinary(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { input?: Buffer; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  const r = await collect(cmd, args, opts);
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh temp dir under the OS temp dir; removed by cleanupTempDirs(). */
const temps: string[] = [];
export function tempDir(prefix = 'sheepfold-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temps.push(d);
  return d;
}
export function cleanupTempDirs(): void {
  for (const d of temps.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** Repository root and the built CLI entry points (integration tests run the built code). */
export const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
export const SHEEPFOLD_BIN = path.join(REPO_ROOT, 'dist', 'cli', 'sheepfold.js');
export const DOG_BIN = path.join(REPO_ROOT, 'dist', 'cli', 'dog.js');

/** True when CI runs the suite (CI=true): there a missing peer is a failure, not a reason to skip. */
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * True when peers a test file needs are missing (commands on PATH, files such as the built CLI), so its tests are
 * skipped on a developer's machine. Under CI a test is registered that fails, naming what is missing.
 */
export function lacking(commands: readonly string[], files: Readonly<Record<string, string>> = {}): boolean {
  const miss = commands.filter((c) => !haveCommand(c));
  for (const [what, file] of Object.entries(files)) if (!fs.existsSync(file)) miss.push(`${what} (${file})`);
  if (miss.length === 0) return false;
  if (IN_CI) {
    it(`has its peers: ${miss.join(', ')}`, () => {
      throw new Error(`missing on this CI machine: ${miss.join(', ')} (scripts/setup/install-peers installs the peers, npm run build the CLI)`);
    });
  }
  return true;
}

/** True if an executable is on PATH. */
export function haveCommand(name: string): boolean {
  const dirs = (process.env.PATH ?? '').split(':');
  return dirs.some((d) => {
    try {
      fs.accessSync(path.join(d, name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
