// Peers for the initiator integration tests: a real tgtd instance (own -C control number and loopback portal,
// an rdwr file LU, optional CHAP accounts and extra portals) and our own iSCSI target process from dist/.
// Every process is ended by PID; tgtd ignores SIGTERM, so it is shut down through tgtadm, then SIGKILLed.
import fs from 'node:fs';
import path from 'node:path';
import { ephemeralPort, waitForPort } from '../helpers/ports.js';
import { SHEEPFOLD_BIN, run, start, tempDir, waitForOutput, type Proc } from '../helpers/proc.js';

export const TGT_IQN = 'iqn.2026-11.org.sheepfold.test:initiator-tgt';

export interface Tgtd {
  proc: Proc;
  control: number;
  port: number;
  iqn: string;
  lunFile: string;
  /** tgtadm with this instance's -C. */
  adm(args: string[]): Promise<string>;
  addPortal(port: number): Promise<void>;
  removePortal(port: number): Promise<void>;
  stop(): Promise<void>;
}

async function tgtadm(control: number, args: string[]): Promise<{ code: number; out: string }> {
  const r = await run('tgtadm', ['-C', String(control), ...args], { timeoutMs: 30_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

/** Start tgtd with one target (LUN 1 = rdwr file of sizeBytes) bound to every initiator. */
export async function startTgtd(
  opts: { sizeBytes: number; chap?: { user: string; secret: string; mutualUser?: string; mutualSecret?: string } },
): Promise<Tgtd> {
  let control = 0;
  for (let i = 0; i < 50 && control === 0; i++) {
    const c = 300 + Math.floor(Math.random() * 600);
    if ((await tgtadm(c, ['--op', 'show', '--mode', 'sys'])).code !== 0) control = c;
  }
  if (control === 0) throw new Error('no free tgtd control number');
  const port = await ephemeralPort();
  const proc = start('tgtd', ['-f', '-C', String(control), '--iscsi', `portal=127.0.0.1:${port}`]);
  await waitForPort(port);
  const adm = async (args: string[]): Promise<string> => {
    const r = await tgtadm(control, args);
    if (r.code !== 0) throw new Error(`tgtadm ${args.join(' ')} failed: ${r.out}`);
    return r.out;
  };
  for (let i = 0; ; i++) {
    if ((await tgtadm(control, ['--op', 'show', '--mode', 'sys'])).code === 0) break;
    if (i > 200) throw new Error(`tgtd -C ${control} did not answer: ${proc.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const dir = tempDir('sheepfold-initiator-tgt-');
  const lunFile = path.join(dir, 'lun1.img');
  fs.writeFileSync(lunFile, '');
  fs.truncateSync(lunFile, opts.sizeBytes);
  await adm(['--lld', 'iscsi', '--mode', 'target', '--op', 'new', '--tid', '1', '--targetname', TGT_IQN]);
  await adm(['--lld', 'iscsi', '--mode', 'logicalunit', '--op', 'new', '--tid', '1', '--lun', '1', '--backing-store', lunFile, '--bstype', 'rdwr']);
  await adm(['--lld', 'iscsi', '--mode', 'target', '--op', 'bind', '--tid', '1', '--initiator-address', 'ALL']);
  if (opts.chap) {
    await adm(['--lld', 'iscsi', '--mode', 'account', '--op', 'new', '--user', opts.chap.user, '--password', opts.chap.secret]);
    await adm(['--lld', 'iscsi', '--mode', 'account', '--op', 'bind', '--tid', '1', '--user', opts.chap.user]);
    if (opts.chap.mutualUser && opts.chap.mutualSecret) {
      await adm(['--lld', 'iscsi', '--mode', 'account', '--op', 'new', '--user', opts.chap.mutualUser, '--password', opts.chap.mutualSecret]);
      await adm(['--lld', 'iscsi', '--mode', 'account', '--op', 'bind', '--tid', '1', '--user', opts.chap.mutualUser, '--outgoing']);
    }
  }
  let stopped = false;
  return {
    proc,
    control,
    port,
    iqn: TGT_IQN,
    lunFile,
    adm,
    addPortal: async (p) => {
      await adm(['--lld', 'iscsi', '--mode', 'portal', '--op', 'new', '--param', `portal=127.0.0.1:${p}`]);
      await waitForPort(p);
    },
    removePortal: async (p) => {
      await adm(['--lld', 'iscsi', '--mode', 'portal', '--op', 'delete', '--param', `portal=127.0.0.1:${p}`]);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await tgtadm(control, ['--lld', 'iscsi', '--mode', 'target', '--op', 'delete', '--force', '--tid', '1']);
      await tgtadm(control, ['--op', 'delete', '--mode', 'system']);
      const gone = await Promise.race([proc.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
      if (!gone) proc.kill('SIGKILL');
      await proc.exited;
    },
  };
}

/** Our target process (`sheepfold target --config FILE`, iSCSI only) from dist/. */
export interface OurTarget {
  proc: Proc;
  port: number;
  iqn: string;
  configFile: string;
  stop(): Promise<void>;
}

export const OUR_IQN_PREFIX = 'iqn.2026-11.org.sheepfold:';

/**
 * Start `sheepfold target` with NBD off, iSCSI on 127.0.0.1:port and one file export `name` (created with
 * sizeBytes if missing); `iscsi` adds [iscsi] keys (chap-user, nop-interval-ms, ...).
 */
export async function startOurTarget(opts: {
  name: string;
  file: string;
  sizeBytes: number;
  port?: number;
  iscsi?: Record<string, string | number>;
  dir?: string;
}): Promise<OurTarget> {
  const port = opts.port ?? (await ephemeralPort());
  const dir = opts.dir ?? tempDir('sheepfold-initiator-ours-');
  const kv = (k: string, v: string | number): string => `${k} = ${typeof v === 'number' ? v : JSON.stringify(v)}`;
  const toml = [
    'log-level = "warn"',
    '[nbd]',
    'enabled = false',
    '[iscsi]',
    'enabled = true',
    kv('listen', `127.0.0.1:${port}`),
    ...Object.entries(opts.iscsi ?? {}).map(([k, v]) => kv(k, v)),
    '[[export]]',
    kv('name', opts.name),
    'type = "file"',
    kv('path', opts.file),
    kv('size', String(opts.sizeBytes)),
    '',
  ].join('\n');
  const configFile = path.join(dir, `target-${port}.toml`);
  fs.writeFileSync(configFile, toml);
  const proc = start(process.execPath, [SHEEPFOLD_BIN, 'target', '--config', configFile, '--json']);
  await waitForOutput(proc, /"ready":true/);
  return {
    proc,
    port,
    iqn: `${OUR_IQN_PREFIX}${opts.name.toLowerCase()}`,
    configFile,
    stop: async () => {
      proc.kill('SIGKILL');
      await proc.exited;
    },
  };
}

/** tgtd's I_T nexuses (session id and initiator name) of target 1, from `tgtadm --mode target --op show`. */
export async function tgtdSessions(t: Tgtd): Promise<Array<{ sid: number; initiator: string }>> {
  const out = await t.adm(['--lld', 'iscsi', '--mode', 'target', '--op', 'show']);
  return [...out.matchAll(/I_T nexus: (\d+)\s+Initiator: (\S+)/g)].map((m) => ({ sid: Number(m[1]), initiator: m[2] ?? '' }));
}

/** Close one session's connection from the target side (tgtadm --mode conn --op delete). */
export async function tgtdDropSession(t: Tgtd, sid: number): Promise<void> {
  await t.adm(['--lld', 'iscsi', '--mode', 'conn', '--op', 'delete', '--tid', '1', '--sid', String(sid), '--cid', '0']);
}

/** `length` bytes of a file at `offset` (to compare what a target stored). */
export function fileBytes(file: string, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, b, 0, length, offset);
  } finally {
    fs.closeSync(fd);
  }
  return b;
}
