// The import floors (.dependency-cruiser.cjs, run on src/ by `npm run lint`) refuse a deliberate upward import,
// a type-only cycle and product code importing a test helper, in a scratch tree; a downward import passes.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
const CONFIG = path.join(ROOT, '.dependency-cruiser.cjs');
const BIN = path.join(ROOT, 'node_modules', '.bin', 'depcruise');
const run = promisify(execFile);

async function cruise(cwd: string): Promise<{ code: number; out: string }> {
  try {
    const r = await run(BIN, ['src', '--config', CONFIG, '--output-type', 'err'], { cwd });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'sheepfold-floors-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

function write(rel: string, text: string): void {
  fs.mkdirSync(path.dirname(path.join(scratch, rel)), { recursive: true });
  fs.writeFileSync(path.join(scratch, rel), text);
}

describe('import floors', () => {
  it('fail an upward import, a type-only cycle and a test helper imported by product code', async () => {
    fs.copyFileSync(path.join(ROOT, 'tsconfig.json'), path.join(scratch, 'tsconfig.json'));
    write('src/proto/codec.ts', "import { serve } from '../nbd/server.js';\nexport const codec = serve;\n");
    write('src/nbd/server.ts', 'export const serve = 1;\n');
    write('src/client/a.ts', "import type { B } from './b.js';\nexport interface A { b: B }\n");
    write('src/client/b.ts', "import type { A } from './a.js';\nexport interface B { a: A }\n");
    write('src/iscsi/lu.ts', "import { oracle } from '../../test/helpers/oracle.js';\nexport const lu = oracle;\n");
    write('test/helpers/oracle.ts', 'export const oracle = 2;\n');
    const r = await cruise(scratch);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/floor-proto: src\/proto\/codec\.ts → src\/nbd\/server\.ts/);
    expect(r.out).toMatch(/no-circular: src\/client\/a\.ts →\s+src\/client\/b\.ts/);
    expect(r.out).toMatch(/no-test-tooling-in-product: src\/iscsi\/lu\.ts → test\/helpers\/oracle\.ts/);
    // A downward import on its own passes.
    fs.rmSync(path.join(scratch, 'src'), { recursive: true });
    write('src/nbd/server.ts', "import { codec } from '../proto/codec.js';\nexport const serve = codec;\n");
    write('src/proto/codec.ts', 'export const codec = 1;\n');
    const ok = await cruise(scratch);
    expect(ok.out).toMatch(/no dependency violations found/);
    expect(ok.code).toBe(0);
  }, 60_000);
});
