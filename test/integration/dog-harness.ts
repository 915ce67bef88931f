// Shared helpers for the dog / VdiDevice / NBD-over-VDI integration tests: start a real `sheepfold sheep`
// on an ephemeral port in its own temp dir (ended by killAll), and run the built `dog` against it.
import { ephemeralPort } from '../helpers/ports.js';
import { DOG_BIN, SHEEPFOLD_BIN, run, runBinary, start, tempDir, waitForOutput, type Proc, type RunResult } from '../helpers/proc.js';

export interface SheepProc {
  port: number;
  dir: string;
  proc: Proc;
  addr: string;
}

/** Start one sheep and wait for its ready line. */
export async function startSheep(extra: string[] = []): Promise<SheepProc> {
  const dir = tempDir('sheepfold-dog-');
  const port = await ephemeralPort();
  const proc = start(process.execPath, [SHEEPFOLD_BIN, 'sheep', '--store', dir, '--port', String(port), '--log-level', 'warn', ...extra]);
  await waitForOutput(proc, /sheep ready/, 60_000);
  return { port, dir, proc, addr: `127.0.0.1:${port}` };
}

/** Start `n` sheep sharing one `local:` cluster driver directory (zones default to the ports). */
export async function startCluster(n: number): Promise<SheepProc[]> {
  const clusterDir = tempDir('sheepfold-cluster-');
  const out: SheepProc[] = [];
  for (let i = 0; i < n; i++) out.push(await startSheep(['--cluster', `local:${clusterDir}`]));
  return out;
}

/** Run `dog ARGS -p PORT` to completion. */
export function dog(port: number, args: string[], input?: Buffer | string): Promise<RunResult> {
  return run(process.execPath, [DOG_BIN, ...args, '-p', String(port)], input === undefined ? {} : { input });
}

/** Run dog and return stdout as bytes (vdi read). */
export function dogBinary(port: number, args: string[], input?: Buffer): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return runBinary(process.execPath, [DOG_BIN, ...args, '-p', String(port)], input === undefined ? {} : { input });
}

/** Run dog and fail with its stderr unless it exits 0. */
export async function dogOk(port: number, args: string[], input?: Buffer | string): Promise<string> {
  const r = await dog(port, args, input);
  if (r.code !== 0) throw new Error(`dog ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
