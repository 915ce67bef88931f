// `sheepfold target` as a process: --check validates configs (errors name FILE:LINE, exit 2), --config serves
// the exports it declares, the human ready line, and graceful SIGINT/SIGTERM (file data flushed on stop).
import { describe, it, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { cleanupTempDirs, killAll, run, start, tempDir, waitForOutput, SHEEPFOLD_BIN, REPO_ROOT, lacking } from '../helpers/proc.js';

const node = process.execPath;

describe('sheepfold target CLI', () => {
  afterAll(async () => {
    await killAll();
    cleanupTempDirs();
  });

  it('--check accepts the example config and rejects unknown keys with FILE:LINE', async () => {
    const ok = await run(node, [SHEEPFOLD_BIN, 'target', '--config', path.join(REPO_ROOT, 'targets/single-host.toml'), '--check', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ ok: true, exports: ['scratch', 'disk0', 'golden'] });
    const dir = tempDir('sheepfold-cli-');
    const bad = path.join(dir, 'bad.toml');
    fs.writeFileSync(bad, '[nbd]\nlisten = "127.0.0.1:1"\n\n[[export]]\nname = "x"\ntype = "mem"\nsize = "1M"\ncolour = "red"\n');
    const r = await run(node, [SHEEPFOLD_BIN, 'target', '--config', bad, '--check']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}:8: unknown key 'colour' in [export]`);
    const none = await run(node, [SHEEPFOLD_BIN, 'target', '--check']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no exports/);
  });

  it.skipIf(lacking(['qemu-io']))('serves a config file, prints the human ready line, flushes and exits on SIGINT', async () => {
    const dir = tempDir('sheepfold-cli-');
    const cfg = path.join(dir, 't.toml');
    fs.writeFileSync(
      cfg,
      [
        '[nbd]',
        'listen = "127.0.0.1:0"',
        '[[export]]',
        'name = "m"',
        'type = "mem"',
        'size = "8M"',
        '[[export]]',
        'name = "f"',
        'type = "file"',
        'path = "f.img"',
        'size = "8M"',
      ].join('\n'),
    );
    const p = start(node, [SHEEPFOLD_BIN, 'target', '--config', cfg, '--log-level', 'warn']);
    const m = await waitForOutput(p, /target ready: nbd 127\.0\.0\.1:(\d+) exports m,f\n/);
    const port = m[1];
    expect(fs.statSync(path.join(dir, 'f.img')).size).toBe(8 * 1024 * 1024);
    const w = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x3c 4096 8192', `nbd://127.0.0.1:${port}/f`]);
    expect(w.code, w.stdout + w.stderr).toBe(0);
    p.kill('SIGINT');
    expect(await p.exited).toBe(0);
    const onDisk = fs.readFileSync(path.join(dir, 'f.img')).subarray(4096, 4096 + 8192);
    expect(onDisk.equals(Buffer.alloc(8192, 0x3c))).toBe(true);
  });
});
