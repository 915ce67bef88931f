// libiscsi's iscsi-test-cu with two URLs naming two different target hosts (ours, A and B) that export one VDI
// in shared mode through two gateway sheep, with ALUA: the second URL enables SCSI.MultipathIO, and the
// Prin*/Prout*/Reserve6 tests open their second initiator on it. The LU is not removable here (medium state is
// per host). Last full run: 223 pass, 3 fail, 4 skip of 230. Every test not passing must be listed with its
// reason in test/conformance/iscsi-expected-failures-multipath.txt, and every listed test must still not pass.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { IscsiSession } from '../../src/initiator/index.js';
import { startLocalCluster, type LocalCluster } from '../helpers/cluster.js';
import { ephemeralPort } from '../helpers/ports.js';
import { REPO_ROOT, SHEEPFOLD_BIN, cleanupTempDirs, killAll, run, start, tempDir, waitForOutput, lacking } from '../helpers/proc.js';
import { cuOutcomes, readExpectedFailures, type CuOutcome } from './cu-results.js';

const IQN = 'iqn.2026-11.org.sheepfold:disk';
const INITIATORS = ['iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test', 'iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test-2'];
const EXPECTED_FILE = path.join(REPO_ROOT, 'test', 'conformance', 'iscsi-expected-failures-multipath.txt');

describe.skipIf(lacking(['iscsi-test-cu']))('iscsi-test-cu with two target hosts (multipath)', () => {
  let cluster: LocalCluster;
  const urls: string[] = [];
  const results = new Map<string, CuOutcome>();

  beforeAll(async () => {
    cluster = await startLocalCluster(2);
    expect((await cluster.dog(['cluster', 'format', '-c', '2'])).code).toBe(0);
    expect((await cluster.dog(['vdi', 'create', 'disk', '256M'])).code).toBe(0);
    const dir = tempDir('sheepfold-mp-cu-');
    const ports = [await ephemeralPort(), await ephemeralPort()];
    for (let i = 0; i < 2; i++) {
      const cfg = path.join(dir, `host-${i}.toml`);
      fs.writeFileSync(
        cfg,
        [
          `sheep = "127.0.0.1:${cluster.nodes[i]?.port}"`,
          '[nbd]',
          'enabled = false',
          '[iscsi]',
          'enabled = true',
          `listen = "127.0.0.1:${ports[i]}"`,
          `acl = "${INITIATORS.join(',')}"`,
          `portals = "127.0.0.1:${ports[0]}#1,127.0.0.1:${ports[1]}#2"`,
          `alua-group = ${i + 1}`,
          'alua-preferred-group = 1',
          `alua-peers = "${2 - i}@127.0.0.1:${ports[1 - i]}"`,
          '[[export]]',
          'name = "disk"',
          'type = "vdi"',
          'vdi = "disk"',
          'shared = true',
          '',
        ].join('\n'),
      );
      const p = start(process.execPath, [SHEEPFOLD_BIN, 'target', '--config', cfg, '--log-level', 'warn']);
      await waitForOutput(p, /target ready/, 60_000);
      urls.push(`iscsi://127.0.0.1:${ports[i]}/${IQN}/0`);
    }
    // Both hosts must have seen each other before the run: a later ALUA change would be a UNIT ATTENTION 2A/06
    // in the middle of some test.
    for (const port of ports) {
      const s = new IscsiSession({ host: '127.0.0.1', port, targetName: IQN, nopIntervalMs: 0, reconnect: false, initiatorName: INITIATORS[0] ?? '' });
      await s.connect();
      let states = '';
      for (let i = 0; i < 600 && states !== '1:active/optimized,2:active/non-optimized'; i++) {
        states = (await s.reportTargetPortGroups()).map((g) => `${g.id}:${g.state}`).join(',');
        if (states !== '1:active/optimized,2:active/non-optimized') await new Promise((r) => setTimeout(r, 50));
      }
      await s.close();
      expect(states).toBe('1:active/optimized,2:active/non-optimized');
    }
  }, 300_000);
  afterAll(async () => {
    await killAll();
    cleanupTempDirs();
  });

  it('runs every test with two URLs; failures are exactly the listed ones', async () => {
    // MP_CU_TEST=SUITE.TEST narrows the run (diagnosis); the raw output goes to test-results/ for the record.
    const only = process.env.MP_CU_TEST;
    const r = await run('iscsi-test-cu', ['--dataloss', '--allow-sanitize', `--test=${only ?? 'ALL'}`, '-V', ...urls], { timeoutMs: 1_800_000 });
    fs.mkdirSync(path.join(REPO_ROOT, 'test-results'), { recursive: true });
    fs.writeFileSync(path.join(REPO_ROOT, 'test-results', 'iscsi-cu-multipath.log'), r.stdout + r.stderr);
    if (only !== undefined) {
      console.log(r.stdout + r.stderr);
      return;
    }
    for (const [k, v] of cuOutcomes(r.stdout + r.stderr)) results.set(k, v);
    expect(results.size).toBeGreaterThan(200);
    const expected = readExpectedFailures(EXPECTED_FILE);
    const unexpected = [...results].filter(([k, v]) => v !== 'pass' && !expected.has(k)).map(([k, v]) => `${k}: ${v}`);
    const nowPassing = [...expected.keys()].filter((k) => results.get(k) === 'pass');
    const counts = { pass: 0, fail: 0, skip: 0 };
    for (const v of results.values()) counts[v]++;
    console.log(`iscsi-test-cu (2 hosts): ${counts.pass} pass, ${counts.fail} fail, ${counts.skip} skip of ${results.size}`);
    console.log(`not passing: ${[...results].filter(([, v]) => v !== 'pass').map(([k, v]) => `${k}=${v}`).join(' ')}`);
    expect({ unexpected, nowPassing }).toEqual({ unexpected: [], nowPassing: [] });
  }, 1_900_000);
});
