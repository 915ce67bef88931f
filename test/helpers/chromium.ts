// Headless Chromium screenshots for tests (as root, no sandbox; background networking off: the machine has no
// network). Returns the PNG bytes.
import fs from 'node:fs';
import path from 'node:path';
import { run, tempDir } from './proc.js';

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));

/** Screenshot a local file (SVG or HTML) at the given window size. */
export async function screenshot(file: string, width = 1000, height = 800): Promise<Buffer> {
  if (!CHROMIUM) throw new Error('chromium is not installed (scripts/setup/install-peers installs it)');
  const dir = tempDir('sf-chromium-');
  const out = path.join(dir, 'shot.png');
  const r = await run(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${path.join(dir, 'profile')}`,
      `--window-size=${width},${height}`,
      `--screenshot=${out}`,
      `file://${path.resolve(file)}`,
    ],
    { timeoutMs: 120_000 },
  );
  if (!fs.existsSync(out)) throw new Error(`chromium made no screenshot (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  return fs.readFileSync(out);
}
