// Shared plumbing for the reliability suite: short CI mode vs long soak mode, and the one-line summary
// (`RELIABILITY <name> k=v ...`) plus a JSON report under test-results/.
import fs from 'node:fs';
import path from 'node:path';
import type { CheckResult } from '../../src/drill/history.js';
import type { Workload } from '../../src/drill/workload.js';
import { REPO_ROOT } from './proc.js';

/** Soak duration from SHEEPFOLD_RELIABILITY_SECONDS (long mode), else the test's short CI duration. */
export function reliabilitySeconds(shortSeconds: number): number {
  const v = Number(process.env.SHEEPFOLD_RELIABILITY_SECONDS ?? '');
  return Number.isFinite(v) && v > 0 ? v : shortSeconds;
}

/** True when running in long (soak) mode. */
export function longMode(): boolean {
  return Number(process.env.SHEEPFOLD_RELIABILITY_SECONDS ?? 0) > 0;
}

/** Print the summary line and write test-results/reliability-<name>.json. */
export function reportReliability(name: string, fields: Record<string, string | number | boolean>, detail: unknown = {}): void {
  const line = `RELIABILITY ${name} ${Object.entries(fields)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;
  console.log(line);
  const dir = path.join(REPO_ROOT, 'test-results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, `reliability-${name}.json`),
    JSON.stringify({ name, ...fields, detail, at: new Date().toISOString() }, null, 2),
  );
}

/** Stop a verifying workload, re-read every block it touched and check its history; plus the summary fields
 * every workload-driven test reports (acked_writes, violations, lost, stale_reads, corrupt, write/read errors). */
export async function finishWorkload(wl: Workload): Promise<{ check: CheckResult; fields: Record<string, number> }> {
  await wl.stop();
  await wl.verify();
  const r = wl.check();
  return {
    check: r,
    fields: {
      acked_writes: r.acknowledgedWrites,
      violations: r.violations.length,
      lost: r.lostWrites,
      stale_reads: r.staleReads,
      corrupt: r.corrupt,
      write_errors: wl.stats.writeErrors,
      read_errors: wl.stats.readErrors,
    },
  };
}
