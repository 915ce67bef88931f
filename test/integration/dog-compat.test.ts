// dog against a real sheep where Sheepdog's own functional tests pin the exact behaviour: `dog node recovery`
// on an idle cluster prints exactly its two header lines (test 028's recovery wait counts them), `-P` on an
// idle node prints nothing; `dog node recovery set-throttle/get-throttle` with test 107's cases and output;
// `echo yes | dog cluster format` on a cluster with VDIs asks dog's question and formats (test 030's output);
// `dog cluster format -R` is refused with a clear error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTempDirs, DOG_BIN, killAll, run } from '../helpers/proc.js';
import { sheepWithVdis } from '../reliability/harness.js';
import { dog, dogOk, type SheepProc } from './dog-harness.js';

let sheep: SheepProc;
beforeAll(async () => {
  sheep = await sheepWithVdis([]);
});
afterAll(async () => {
  await killAll();
  cleanupTempDirs();
});

const HEADER = 'Nodes In Recovery:\n  Id   Host:Port         V-Nodes       Zone       Progress\n';

/** `dog node recovery set-throttle -p PORT -- MAX INTERVAL` (after `--` so negative numbers are operands). */
const setThrottle = (max: string, interval: string) =>
  run(process.execPath, [DOG_BIN, 'node', 'recovery', 'set-throttle', '-p', String(sheep.port), '--', max, interval]);

describe('dog node recovery (real sheep)', () => {
  it('prints exactly the two header lines when nothing is in recovery', async () => {
    expect(await dogOk(sheep.port, ['node', 'recovery'])).toBe(HEADER);
    expect(await dogOk(sheep.port, ['node', 'recovery', 'info'])).toBe(HEADER);
    expect(await dogOk(sheep.port, ['node', 'recovery', '-r'])).toBe('');
    expect(await dogOk(sheep.port, ['node', 'recovery', '-P'])).toBe('');
    const json = JSON.parse(await dogOk(sheep.port, ['node', 'recovery', '--json'])) as { nodes: { inRecovery: boolean }[] };
    expect(json.nodes.map((n) => n.inRecovery)).toEqual([false]);
  });

  it('sets and gets the throttle with Sheepdog test 107\'s messages', async () => {
    const get = async (): Promise<string> => {
      const r = await dog(sheep.port, ['node', 'recovery', 'get-throttle']);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('');
      return r.stderr;
    };
    expect((await setThrottle('0', '0')).code).toBe(0);
    expect(await get()).toBe('max (0), interval (0)\n');
    for (const [max, interval, message] of [
      ['0', '1', 'Invalid interval max (0), interval (1)'],
      ['1', '-1', 'Invalid interval (-1)'],
      ['-1', '0', 'Invalid max (-1)'],
      ['4294967296', '9223372036854775807', 'Invalid max (4294967296)'],
      ['4294967295', '9223372036854775808', 'Invalid interval (9223372036854775808)'],
    ] as const) {
      const r = await setThrottle(max, interval);
      expect(r.code, `${max} ${interval}`).toBe(64);
      expect(r.stderr).toBe(`${message}\n`);
      expect(await get()).toBe('max (0), interval (0)\n');
    }
    for (const [max, interval] of [
      ['1', '1'],
      ['0', '0'],
    ] as const) {
      const r = await setThrottle(max, interval);
      expect(r.code, `${max} ${interval}: ${r.stderr}`).toBe(0);
      expect(await get()).toBe(`max (${max}), interval (${interval})\n`);
    }
    const json = JSON.parse(await dogOk(sheep.port, ['node', 'recovery', 'get-throttle', '--json'])) as { maxExecCount: number; queueWorkInterval: number };
    expect(json).toEqual({ maxExecCount: 0, queueWorkInterval: 0 });
  });

  it('takes the largest throttle test 107 sets (max 4294967295, interval 9223372036854775807)', async () => {
    const r = await setThrottle('4294967295', '9223372036854775807');
    expect(r.code, r.stderr).toBe(0);
    const got = await dog(sheep.port, ['node', 'recovery', 'get-throttle']);
    expect(got.stderr).toBe('max (4294967295), interval (9223372036854775807)\n');
    expect((await setThrottle('0', '0')).code).toBe(0);
  });
});

describe('dog cluster format (real sheep)', () => {
  const QUESTION = "    __\n   ()'`;\n   /\\|`\n  /  |   Caution! The cluster is not empty.\n(/_)_|_  Are you sure you want to continue? [yes/no]: ";

  it('asks before formatting a cluster with VDIs: "yes" on stdin formats, anything else does not', async () => {
    await dogOk(sheep.port, ['vdi', 'create', 'keep', '8M']);
    const no = await dog(sheep.port, ['cluster', 'format', '-c', '1'], 'no\n');
    expect(no.stdout).toBe(QUESTION);
    expect(no.code).toBe(1);
    expect(await dogOk(sheep.port, ['vdi', 'list', '-r'])).toMatch(/^= keep /m);
    const none = await dog(sheep.port, ['cluster', 'format', '-c', '1']);
    expect(none.stdout).toBe(QUESTION);
    expect(none.code).toBe(1);

    const yes = await dog(sheep.port, ['cluster', 'format', '-c', '1'], 'yes\n');
    expect(yes.stderr).toBe('');
    expect(yes.code).toBe(0);
    expect(yes.stdout).toBe(`${QUESTION}using backend plain store\n`);
    expect(await dogOk(sheep.port, ['vdi', 'list', '-r'])).toBe('');
  });

  it('refuses -R with a clear error and leaves the cluster as it was', async () => {
    await dogOk(sheep.port, ['vdi', 'create', 'still', '8M']);
    const r = await dog(sheep.port, ['cluster', 'format', '-R', '-f']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/^-R\/--recycle-vid is not supported: Sheepfold never recycles VDI ids/);
    expect(await dogOk(sheep.port, ['vdi', 'list', '-r'])).toMatch(/^= still /m);
  });
});
