// The local cluster driver across real processes: a member process that is SIGKILLed is removed from the
// membership by the survivors (kill(pid, 0) fails), and the detection delay is reported.
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { LocalClusterDriver, type ClusterEvent } from '../../src/sheep/cluster/local.js';
import { cleanupTempDirs, killAll, REPO_ROOT, start, tempDir, waitForOutput } from '../helpers/proc.js';

afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe('local cluster driver with real processes', () => {
  it('notices a SIGKILLed member and removes it', async () => {
    const dir = tempDir();
    const script = path.join(dir, 'member.mjs');
    fs.writeFileSync(
      script,
      `import { LocalClusterDriver } from ${JSON.stringify(path.join(REPO_ROOT, 'dist/sheep/cluster/local.js'))};
       const d = new LocalClusterDriver({ dir: process.argv[2], heartbeatMs: 200, failTimeoutMs: 1500 });
       d.onEvent(() => {});
       await d.join('child', {});
       console.log('joined');
       setInterval(() => {}, 1000);`,
    );
    const events: ClusterEvent[] = [];
    const a = new LocalClusterDriver({ dir, heartbeatMs: 200, failTimeoutMs: 1500 });
    a.onEvent((e) => {
      events.push(e);
    });
    await a.join('parent', {});
    const child = start(process.execPath, [script, dir]);
    await waitForOutput(child, /joined/);
    expect(a.members().map((m) => m.node).sort()).toEqual(['child', 'parent']);
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await child.exited;
    const deadline = Date.now() + 30_000;
    while (!events.some((e) => e.type === 'leave') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const leave = events.find((e) => e.type === 'leave');
    expect(leave?.type === 'leave' && leave.reason).toBe('failed');
    expect(leave?.type === 'leave' && leave.member.node).toBe('child');
    expect(a.members().map((m) => m.node)).toEqual(['parent']);
    console.log(`RELIABILITY cluster-local-detect detect_ms=${Date.now() - killedAt}`);
    await a.close();
  });
});
