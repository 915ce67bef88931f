// Outcomes of an `iscsi-test-cu -V` run per SUITE.TEST (a [SKIPPED] test does not pass), and an expected-failures
// file (`SUITE.TEST  reason` lines, # comments) — for conformance runs that must not import another test file.
import fs from 'node:fs';

export type CuOutcome = 'pass' | 'fail' | 'skip';

export function cuOutcomes(out: string): Map<string, CuOutcome> {
  const res = new Map<string, CuOutcome>();
  let suite = '';
  let cur: string | undefined;
  for (const line of out.split('\n')) {
    const s = /^Suite: (\S+)/.exec(line);
    if (s) [suite, cur] = [s[1] ?? '', undefined];
    const t = s ? null : /^\s*Test: (\S+) \.\.\./.exec(line);
    if (t) {
      cur = `${suite}.${t[1] ?? ''}`;
      res.set(cur, 'pass');
    } else if (cur !== undefined && !s) {
      if (line.trim().startsWith('FAILED')) res.set(cur, 'fail');
      else if (line.includes('[SKIPPED]') && res.get(cur) === 'pass') res.set(cur, 'skip');
    }
  }
  return res;
}

export function readExpectedFailures(file: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of fs.readFileSync(file, 'utf8').split('\n').map((x) => x.trim())) {
    if (l === '' || l.startsWith('#')) continue;
    const [name, ...why] = l.split(/\s+/);
    if (name) m.set(name, why.join(' '));
  }
  return m;
}
