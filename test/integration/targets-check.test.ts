// Every example config in targets/ passes `sheepfold target --config FILE --check`; a config with a typo'd key
// fails with the file, the line and the key named. The Dockerfile keeps the shape the README promises.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, SHEEPFOLD_BIN, run, tempDir } from '../helpers/proc.js';

const TARGETS = path.join(REPO_ROOT, 'targets');

describe('targets/ example configs', () => {
  const files = fs.readdirSync(TARGETS).filter((f) => f.endsWith('.toml'));

  it('there are single-host and multipath (host-a, host-b) examples', () => {
    expect(files).toEqual(expect.arrayContaining(['single-host.toml', 'host-a.toml', 'host-b.toml']));
  });

  it.each(files)('%s passes --check', async (f) => {
    const r = await run(process.execPath, [SHEEPFOLD_BIN, 'target', '--config', path.join(TARGETS, f), '--check']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^config ok: \d+ export/);
  });

  it('a typo names the file, line and key, and exits non-zero', async () => {
    const dir = tempDir();
    const bad = path.join(dir, 'typo.toml');
    const text = fs.readFileSync(path.join(TARGETS, 'single-host.toml'), 'utf8').replace(/^max-connections = /m, 'max-conections = ');
    fs.writeFileSync(bad, text);
    const line = text.split('\n').findIndex((l) => l.startsWith('max-conections')) + 1;
    const r = await run(process.execPath, [SHEEPFOLD_BIN, 'target', '--config', bad, '--check']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${bad}:${line}:`);
    expect(r.stderr).toContain("'max-conections'");
  });
});

describe('Dockerfile', () => {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const instructions = text.split('\n').filter((l) => /^[A-Z]+\s/.test(l));

  it('is a two-stage build on node:20 with a slim, non-root runtime for sheep, target and dog', () => {
    const froms = instructions.filter((l) => l.startsWith('FROM '));
    expect(froms).toHaveLength(2);
    expect(froms[0]).toMatch(/^FROM node:20[-\w.]* AS build$/);
    expect(froms[1]).toMatch(/^FROM node:20[-\w.]*slim$/);
    expect(instructions.some((l) => /^USER (?!root)\w+/.test(l))).toBe(true);
    expect(instructions.find((l) => l.startsWith('ENTRYPOINT'))).toBe('ENTRYPOINT ["node", "/app/dist/cli/sheepfold.js"]');
    expect(instructions.some((l) => l.includes('npm ci'))).toBe(true);
    // lint: no remote ADD, no `latest` tags, COPY sources exist in the repository
    expect(instructions.some((l) => /^ADD\s+https?:/.test(l))).toBe(false);
    expect(text).not.toMatch(/:latest\b/);
    for (const l of instructions.filter((x) => x.startsWith('COPY ') && !x.includes('--from'))) {
      for (const src of l.split(/\s+/).slice(1, -1)) expect(fs.existsSync(path.join(REPO_ROOT, src)), src).toBe(true);
    }
  });
});
