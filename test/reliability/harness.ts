// Shared plumbing for the process-level reliability tests: a formatted sheep with a VDI, a target exporting it
// over NBD and iSCSI, our NBD client and iSCSI initiator as workload targets, and process resource samples.
import fs from 'node:fs';
import { NbdClient } from '../../src/nbd/client.js';
import { IscsiSession, discoverTargets } from '../../src/initiator/index.js';
import type { IoTarget } from '../../src/drill/workload.js';
import { dogOk, startSheep, type SheepProc } from '../integration/dog-harness.js';
import { startTarget, tcpClient, type RunningTarget } from '../integration/nbd-harness.js';
import { waitForOutput } from '../helpers/proc.js';

export { dogOk, startSheep, startTarget, type SheepProc, type RunningTarget };

/** A formatted one-sheep cluster (copies 1) with the given VDIs. */
export async function sheepWithVdis(vdis: Array<[string, string]>, extra: string[] = []): Promise<SheepProc> {
  const sheep = await startSheep(extra);
  await dogOk(sheep.port, ['cluster', 'format', '-c', '1']);
  for (const [name, size] of vdis) await dogOk(sheep.port, ['vdi', 'create', name, size]);
  return sheep;
}

export interface TargetWithIscsi extends RunningTarget {
  iscsiPort: number;
}

/** A target exporting VDIs (`NAME=VDI`) of the sheep at `sheepAddr` over NBD and iSCSI. */
export async function vdiTarget(sheepAddr: string, exports: string[], extra: string[] = []): Promise<TargetWithIscsi> {
  const t = await startTarget(['--iscsi', '127.0.0.1:0', '--sheep', sheepAddr, ...exports.flatMap((e) => ['--export', e]), ...extra]);
  const m = await waitForOutput(t.proc, /\{"ready":true[^\n]*\}/, 30_000);
  const ready = JSON.parse(m[0]) as { iscsi?: string };
  const iscsiPort = Number(ready.iscsi?.slice(ready.iscsi.lastIndexOf(':') + 1));
  return { ...t, iscsiPort };
}

/** An NBD client on `exportName` as a workload target (closed with close()). */
export async function nbdIo(t: RunningTarget, exportName: string): Promise<IoTarget & { client: NbdClient; close(): Promise<void> }> {
  const client = await tcpClient(t, { exportName, structured: true });
  return {
    client,
    read: (offset, length) => client.read(offset, length),
    write: (offset, data) => client.write(offset, data),
    flush: () => client.flush(),
    close: () => {
      client.disconnect();
      return Promise.resolve();
    },
  };
}

/** A logged-in iSCSI session on the target whose name ends with `exportName`. */
export async function iscsiSession(t: TargetWithIscsi, exportName: string, extra: Partial<ConstructorParameters<typeof IscsiSession>[0]> = {}): Promise<IscsiSession> {
  const found = await discoverTargets({ host: '127.0.0.1', port: t.iscsiPort });
  const iqn = found.map((d) => d.name).find((n) => n.endsWith(exportName)) ?? found[0]?.name;
  if (!iqn) throw new Error('target offers no iSCSI target');
  const s = new IscsiSession({ host: '127.0.0.1', port: t.iscsiPort, targetName: iqn, nopIntervalMs: 0, ...extra });
  await s.connect();
  return s;
}

/** Resident memory and open file descriptors of a process (Linux /proc). */
export function procStats(pid: number): { rssBytes: number; hwmBytes: number; fds: number } {
  try {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(st)?.[1] ?? 0) * 1024;
    return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM'), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return { rssBytes: 0, hwmBytes: 0, fds: 0 };
  }
}

/** Wait until `cond` holds (polling), or fail after `timeoutMs` with `what`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
