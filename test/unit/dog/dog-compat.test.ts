// dog output and argument checks that must match Sheepdog's dog byte for byte: the `node recovery` table
// (always its two header lines; rows in dog's printf format), `node recovery set-throttle` validation with
// dog's messages (Sheepdog's functional test 107 cases), and `cluster format`'s question and -R refusal.
import { afterEach, describe, expect, it } from 'vitest';
import * as C from '../../../src/proto/sheepdog/constants.js';
import { DogContext, DogError, EXIT_USAGE } from '../../../src/dog/context.js';
import { FORMAT_PRINT, clusterFormat } from '../../../src/dog/cluster.js';
import { RECOVERY_HEADER, recoverySetThrottle, renderRecovery, type RecoveryRow } from '../../../src/dog/node-recovery.js';
import { vdiCreate } from '../../../src/dog/vdi.js';
import { FakeSheep } from '../client/fake-sheep.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

function row(o: Partial<RecoveryRow>): RecoveryRow {
  return { id: 0, addr: '127.0.0.1:7000', vnodes: 128, zone: 7000, inRecovery: true, state: 1, stateText: 'recovering', finished: 5n, total: 10n, ...o };
}

describe('dog node recovery output', () => {
  it('is exactly the two header lines when no node is in recovery', () => {
    expect(RECOVERY_HEADER).toBe('Nodes In Recovery:\n  Id   Host:Port         V-Nodes       Zone       Progress\n');
    expect(renderRecovery([], false)).toBe(RECOVERY_HEADER);
    expect(renderRecovery([row({ inRecovery: false }), row({ id: 1, inRecovery: false })], false)).toBe(RECOVERY_HEADER);
    expect(renderRecovery([row({ inRecovery: false })], true)).toBe('');
  });

  it('prints rows in dog\'s "%4d   %-20s%5d%11d%11.1f%%" format, only for nodes in recovery', () => {
    const rows = [row({}), row({ id: 1, addr: '127.0.0.1:7001', inRecovery: false }), row({ id: 2, addr: '127.0.0.1:17002', zone: 17002, finished: 1n, total: 3n })];
    expect(renderRecovery(rows, false)).toBe(
      RECOVERY_HEADER + '   0   127.0.0.1:7000        128       7000       50.0%\n' + '   2   127.0.0.1:17002       128      17002       33.3%\n',
    );
    expect(renderRecovery(rows, true)).toBe('0 127.0.0.1:7000 128 7000 5 10\n2 127.0.0.1:17002 128 17002 1 3\n');
    // %d of a uint32 zone above 2^31 prints it negative, as dog does.
    expect(renderRecovery([row({ zone: 0xfffffffe })], true)).toBe('0 127.0.0.1:7000 128 -2 5 10\n');
  });
});

describe('dog node recovery set-throttle validation (Sheepdog test 107)', () => {
  // No sheep listens here: every case must be refused before any request is sent.
  const ctx = (): DogContext => {
    const c = new DogContext({ address: '127.0.0.1', port: '1' }, { write: () => undefined, isTTY: false }, { write: () => undefined, isTTY: false });
    cleanups.push(() => c.close());
    return c;
  };
  const cases: [string, string, string][] = [
    ['0', '1', 'Invalid interval max (0), interval (1)'],
    ['0', '-1', 'Invalid interval (-1)'],
    ['0', '-2', 'Invalid interval (-2)'],
    ['1', '0', 'Invalid interval max (1), interval (0)'],
    ['1', '-1', 'Invalid interval (-1)'],
    ['-1', '0', 'Invalid max (-1)'],
    ['-1', '-2', 'Invalid max (-1)'],
    ['-2', '1', 'Invalid max (-2)'],
    ['4294967295', '9223372036854775808', 'Invalid interval (9223372036854775808)'],
    ['4294967296', '9223372036854775807', 'Invalid max (4294967296)'],
    ['4294967296', '9223372036854775808', 'Invalid max (4294967296)'],
    ['1x', '1', 'Invalid max (1x)'],
    ['1', '', 'Invalid interval ()'],
  ];
  for (const [max, interval, message] of cases) {
    it(`refuses ${max} ${interval}: "${message}"`, async () => {
      const err = await recoverySetThrottle(ctx(), max, interval).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DogError);
      expect((err as DogError).message).toBe(message);
      expect((err as DogError).exitCode).toBe(EXIT_USAGE);
    });
  }
  it('refuses a missing argument as dog does', async () => {
    const err = (await recoverySetThrottle(ctx(), '1', undefined).catch((e: unknown) => e)) as DogError;
    expect(err.message).toBe('Invalid interval max (1), interval ((null))');
    expect(err.exitCode).toBe(EXIT_USAGE);
  });
});

describe('dog cluster format', () => {
  async function setup(): Promise<{ s: FakeSheep; ctx: () => DogContext }> {
    const s = new FakeSheep();
    await s.start();
    cleanups.push(() => s.stop());
    const ctx = (): DogContext => {
      const c = new DogContext({ address: '127.0.0.1', port: String(s.port) }, { write: () => undefined, isTTY: false }, { write: () => undefined, isTTY: false });
      cleanups.push(() => c.close());
      return c;
    };
    return { s, ctx };
  }

  it('asks dog\'s question on a cluster with VDIs and formats on yes', async () => {
    const { s, ctx } = await setup();
    await vdiCreate(ctx(), 'x', '8M', {});
    const asked: string[] = [];
    await clusterFormat(ctx(), { copies: '1' }, (q) => {
      asked.push(q);
      return Promise.resolve(true);
    });
    expect(asked).toEqual([FORMAT_PRINT]);
    expect(FORMAT_PRINT).toBe("    __\n   ()'`;\n   /\\|`\n  /  |   Caution! The cluster is not empty.\n(/_)_|_  Are you sure you want to continue? [yes/no]: ");
    expect(s.log.filter((r) => r.opcode === C.SD_OP_MAKE_FS)).toHaveLength(1);
  });

  it('does not format on no', async () => {
    const { s, ctx } = await setup();
    await vdiCreate(ctx(), 'x', '8M', {});
    await expect(clusterFormat(ctx(), {}, () => Promise.resolve(false))).rejects.toThrow(/not empty/);
    expect(s.log.filter((r) => r.opcode === C.SD_OP_MAKE_FS)).toHaveLength(0);
  });

  it('refuses -R (VDI ids are never recycled) before sending anything', async () => {
    const { s, ctx } = await setup();
    const before = s.log.length;
    const err = (await clusterFormat(ctx(), { recycleVid: true }, () => Promise.resolve(true)).catch((e: unknown) => e)) as DogError;
    expect(err).toBeInstanceOf(DogError);
    expect(err.exitCode).toBe(EXIT_USAGE);
    expect(err.message).toMatch(/-R\/--recycle-vid is not supported/);
    expect(s.log.length).toBe(before);
  });
});
