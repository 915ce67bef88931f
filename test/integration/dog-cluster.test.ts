// `dog cluster|node` against a real sheep process: status before and after format (locking on by default),
// the epoch table, node list/info formats, --json, and the clear one-line errors for an unformatted cluster
// and an unreachable sheep.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ephemeralPort } from '../helpers/ports.js';
import { cleanupTempDirs, killAll } from '../helpers/proc.js';
import { dog, dogOk, startSheep, type SheepProc } from './dog-harness.js';

let sheep: SheepProc;
beforeAll(async () => {
  sheep = await startSheep();
});
afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

describe('dog cluster and node commands (real sheep)', () => {
  it('reports an unformatted cluster and refuses VDI creation with one clear line', async () => {
    expect(await dogOk(sheep.port, ['cluster', 'info'])).toBe('Cluster status: Waiting for cluster to be formatted\n\n');
    const r = await dog(sheep.port, ['vdi', 'create', 'x', '1G']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toBe('Failed to create VDI x: Waiting for cluster to be formatted\n');
    expect(r.stdout).toBe('');
  });

  it('formats (locking on by default) and shows the running cluster with its epoch history', async () => {
    expect(await dogOk(sheep.port, ['cluster', 'format', '-c', '1'])).toBe('using backend plain store\n');
    const info = await dogOk(sheep.port, ['cluster', 'info']);
    expect(info).toMatch(
      new RegExp(
        '^Cluster status: running, auto-recovery enabled\\n\\nCluster created at \\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\d{4}\\n\\n' +
          'Epoch Time           Version \\[Host:Port:V-Nodes,,,\\]\\n' +
          `\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d      1 \\[127\\.0\\.0\\.1:${sheep.port}:\\d+\\]\\n$`,
      ),
    );
    const j = JSON.parse(await dogOk(sheep.port, ['cluster', 'info', '--json'])) as { status: string; lock: boolean; copies: number; epochs: unknown[] };
    expect(j).toMatchObject({ status: 'running', lock: true, copies: 1 });
    expect(j.epochs).toHaveLength(1);
  });

  it('lists nodes and node usage in dog formats', async () => {
    const nl = await dogOk(sheep.port, ['node', 'list']);
    const lines = nl.split('\n');
    expect(lines[0]).toBe('  Id   Host:Port         V-Nodes       Zone');
    expect(lines[1]).toMatch(new RegExp(`^   0   ${`127.0.0.1:${sheep.port}`.padEnd(20)}\\t\\s*\\d+\\s+\\d+$`));
    const ni = await dogOk(sheep.port, ['node', 'info']);
    expect(ni).toMatch(/^Id\tSize\tUsed\tAvail\tUse%\n 0\t.+\nTotal\t.+\n\nTotal virtual image size\t0\.0 MB\n$/);
    const nj = JSON.parse(await dogOk(sheep.port, ['node', 'list', '--json'])) as { addr: string }[];
    expect(nj.map((n) => n.addr)).toEqual([`127.0.0.1:${sheep.port}`]);
  });

  it('says "cannot connect to 127.0.0.1:PORT: connection refused" when no sheep listens', async () => {
    const port = await ephemeralPort();
    const r = await dog(port, ['vdi', 'list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`cannot connect to 127.0.0.1:${port}: connection refused\n`);
  });

  it('accepts --no-lock on format', async () => {
    await dogOk(sheep.port, ['cluster', 'format', '--no-lock', '-c', '1']);
    const j = JSON.parse(await dogOk(sheep.port, ['cluster', 'info', '--json'])) as { lock: boolean };
    expect(j.lock).toBe(false);
  });

  it('shuts the cluster down: the sheep process exits', async () => {
    expect(await dogOk(sheep.port, ['cluster', 'shutdown'])).toBe('');
    expect(await sheep.proc.exited).toBe(0);
    const r = await dog(sheep.port, ['cluster', 'info']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`cannot connect to 127.0.0.1:${sheep.port}: connection refused\n`);
  });
});
