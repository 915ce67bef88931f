// libiscsi's iscsi-test-cu against the Sheepfold target (the built CLI, a 256 MiB memory export presented as
// removable medium): the SCSI
// family (215 tests, with a 2nd URL for MultipathIO and a 2nd initiator admitted by the ACL) and the iSCSI
// family (15 tests), with --dataloss and --allow-sanitize. Verbose output is parsed per `Test:` block so a [SKIPPED] test counts as not passing.
// Every test not passing must be listed in test/conformance/iscsi-expected-failures.txt, and every listed test
// must still not pass, so the file stays honest.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { ephemeralPort } from '../helpers/ports.js';
import { REPO_ROOT, SHEEPFOLD_BIN, cleanupTempDirs, killAll, run, start, tempDir, waitForOutput, lacking } from '../helpers/proc.js';

const IQN = 'iqn.2026-11.org.sheepfold:disk';
const INITIATORS = [
  'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test',
  'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test-2',
];
const EXPECTED_FILE = path.join(REPO_ROOT, 'test', 'conformance', 'iscsi-expected-failures.txt');

export type Outcome = 'pass' | 'fail' | 'skip';

/** Parse `iscsi-test-cu -V` output into SUITE.TEST → outcome. */
export function parseCu(out: string): Map<string, Outcome> {
  const res = new Map<string, Outcome>();
  let suite = '';
  let cur: string | undefined;
  for (const line of out.split('\n')) {
    const s = /^Suite: (\S+)/.exec(line);
    if (s) {
      suite = s[1] ?? '';
      cur = undefined;
      continue;
    }
    const t = /^\s*Test: (\S+) \.\.\./.exec(line);
    if (t) {
      cur = `${suite}.${t[1] ?? ''}`;
      res.set(cur, 'pass');
      continue;
    }
    if (cur === undefined) continue;
    if (line.trim() === 'FAILED' || line.trim().startsWith('FAILED')) res.set(cur, 'fail');
    else if (line.includes('[SKIPPED]') && res.get(cur) === 'pass') res.set(cur, 'skip');
  }
  return res;
}

function expectedFailures(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of fs.readFileSync(EXPECTED_FILE, 'utf8').split('\n')) {
    const l = line.trim();
    if (l === '' || l.startsWith('#')) continue;
    const [name, ...why] = l.split(/\s+/);
    if (name) m.set(name, why.join(' '));
  }
  return m;
}

const have = !lacking(['iscsi-test-cu']);

describe.skipIf(!have)('iscsi-test-cu conformance', () => {
  let url = '';
  const results = new Map<string, Outcome>();

  beforeAll(async () => {
    const dir = tempDir('sheepfold-iscsi-cu-');
    const port = await ephemeralPort();
    const cfg = path.join(dir, 'target.toml');
    fs.writeFileSync(
      cfg,
      [
        '[nbd]',
        'enabled = false',
        '[iscsi]',
        'enabled = true',
        `listen = "127.0.0.1:${port}"`,
        `acl = "${INITIATORS.join(',')}"`,
        // removable medium, so the START STOP UNIT / NoMedia / PREVENT ALLOW tests run instead of skipping
        'removable = "disk"',
        '[[export]]',
        'name = "disk"',
        'type = "mem"',
        'size = "256M"',
        '',
      ].join('\n'),
    );
    const p = start('node', [SHEEPFOLD_BIN, 'target', '--config', cfg, '--log-level', 'warn']);
    await waitForOutput(p, /target ready/);
    url = `iscsi://127.0.0.1:${port}/${IQN}/0`;
  });
  afterAll(async () => {
    await killAll();
    cleanupTempDirs();
  });

  it('runs the SCSI family (215 tests)', async () => {
    const r = await run('iscsi-test-cu', ['--dataloss', '--allow-sanitize', '--test=SCSI', '-V', url, url], { timeoutMs: 900_000 });
    const m = parseCu(r.stdout + r.stderr);
    expect(m.size).toBe(215);
    for (const [k, v] of m) results.set(k, v);
  });

  it('runs the iSCSI family (15 tests)', async () => {
    const r = await run('iscsi-test-cu', ['--dataloss', '--test=iSCSI', '-V', url, url], { timeoutMs: 300_000 });
    const m = parseCu(r.stdout + r.stderr);
    expect(m.size).toBe(15);
    for (const [k, v] of m) results.set(k, v);
    expect([...m.values()].filter((v) => v !== 'pass')).toEqual([]);
  });

  it('has no failure or skip outside the expected-failures file, and no listed test that now passes', () => {
    expect(results.size).toBe(230);
    const expected = expectedFailures();
    const unexpected = [...results].filter(([k, v]) => v !== 'pass' && !expected.has(k)).map(([k, v]) => `${k}: ${v}`);
    const nowPassing = [...expected.keys()].filter((k) => results.get(k) === 'pass');
    const unknown = [...expected.keys()].filter((k) => !results.has(k));
    const counts = { pass: 0, fail: 0, skip: 0 };
    for (const v of results.values()) counts[v]++;
    console.log(`iscsi-test-cu: ${counts.pass} pass, ${counts.fail} fail, ${counts.skip} skip of ${results.size}`);
    expect({ unexpected, nowPassing, unknown }).toEqual({ unexpected: [], nowPassing: [], unknown: [] });
  });
});
