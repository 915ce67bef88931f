// Start the real tgtd for a test: its own control number (-C N) and its own iSCSI portal on 127.0.0.1, one
// target with LUs on sheepdog backing stores. stop() deletes the targets (--force), asks tgtd to exit, and
// SIGKILLs its PID if it is still there: tgtd ignores SIGTERM (baselines.md §5).
import fs from 'node:fs';
import { portInRange } from './ports.js';
import { run, start, type Proc, type RunResult } from './proc.js';

export interface Tgtd {
  proc: Proc;
  control: number;
  portal: number;
  iqn: string;
  /** iscsi:// URL of a LUN. */
  url(lun?: number): string;
  tgtadm(args: string[]): Promise<RunResult>;
  /** Create LUN `lun` on a sheepdog backing store (`tcp:127.0.0.1:PORT:VDI` or `unix:PATH:VDI`). */
  addLun(lun: number, backingStore: string): Promise<RunResult>;
  deleteLun(lun: number): Promise<RunResult>;
  stop(): Promise<void>;
}

let controlCounter = 0;

/** A control number no tgtd has used on this machine (no socket file), so tgtadm never reaches a stranger's tgtd. */
function freeControl(): number {
  for (let i = 0; i < 700; i++) {
    const n = 200 + ((process.pid + (controlCounter++) * 7919) % 700);
    if (!fs.existsSync(`/var/run/tgtd/socket.${n}`) && !fs.existsSync(`/var/run/tgtd/socket.${n}.lock`)) return n;
  }
  throw new Error('no free tgtd control number');
}

/** Start tgtd with one target (tid 1) bound to every initiator. */
export async function startTgtd(name = 'sheepfold'): Promise<Tgtd> {
  const control = freeControl();
  const portal = await portInRange(20000, 29999);
  const proc = start('tgtd', ['-f', '-C', String(control), '--iscsi', `portal=127.0.0.1:${portal}`]);
  const iqn = `iqn.2026-11.test.sheepfold:${name}-${control}`;
  const tgtadm = (args: string[]): Promise<RunResult> => run('tgtadm', ['-C', String(control), ...args], { timeoutMs: 60_000 });
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await tgtadm(['--lld', 'iscsi', '--mode', 'target', '--op', 'show']);
    if (r.code === 0) break;
    if (Date.now() > deadline || proc.child.exitCode !== null) {
      proc.kill('SIGKILL');
      throw new Error(`tgtd -C ${control} did not come up: ${r.stderr}\n${proc.output()}`);
    }
    await new Promise((r2) => setTimeout(r2, 100));
  }
  const t = async (args: string[]): Promise<void> => {
    const r = await tgtadm(['--lld', 'iscsi', ...args]);
    if (r.code !== 0) throw new Error(`tgtadm ${args.join(' ')}: ${r.stderr}`);
  };
  await t(['--mode', 'target', '--op', 'new', '--tid', '1', '--targetname', iqn]);
  await t(['--mode', 'target', '--op', 'bind', '--tid', '1', '--initiator-address', 'ALL']);
  let stopped = false;
  return {
    proc,
    control,
    portal,
    iqn,
    url: (lun = 1) => `iscsi://127.0.0.1:${portal}/${iqn}/${lun}`,
    tgtadm,
    addLun: (lun, backingStore) =>
      tgtadm(['--lld', 'iscsi', '--mode', 'logicalunit', '--op', 'new', '--tid', '1', '--lun', String(lun), '--bstype', 'sheepdog', '--backing-store', backingStore]),
    deleteLun: (lun) => tgtadm(['--lld', 'iscsi', '--mode', 'logicalunit', '--op', 'delete', '--tid', '1', '--lun', String(lun)]),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        await tgtadm(['--lld', 'iscsi', '--mode', 'target', '--op', 'delete', '--force', '--tid', '1']);
        await tgtadm(['--op', 'delete', '--mode', 'system']);
        const exited = await Promise.race([proc.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
        if (!exited) proc.kill('SIGKILL');
      }
      await proc.exited;
      for (const f of [`/var/run/tgtd/socket.${control}`, `/var/run/tgtd/socket.${control}.lock`]) fs.rmSync(f, { force: true });
    },
  };
}
