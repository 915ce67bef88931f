// Keeps src/proto pure (style.md convention 1): no sockets, files, timers, process state or logging.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';

const PROTO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../src/proto');
const FORBIDDEN = [
  /from\s+['"](node:)?(net|fs|fs\/promises|dgram|tls|child_process|timers|worker_threads|http|https)['"]/,
  /from\s+['"]pino/,
  /\bprocess\./,
  /\bset(Timeout|Interval|Immediate)\s*\(/,
  /from\s+['"]\.\.\/\.\.\/(sheep|client|block|nbd|iscsi|target|obs|cli|drill|initiator)\//,
];

function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('src/proto is pure', () => {
  it('no I/O, timers, process or logging imports in any codec', () => {
    const offenders: string[] = [];
    for (const file of walk(PROTO)) {
      const text = fs.readFileSync(file, 'utf8');
      for (const re of FORBIDDEN) if (re.test(text)) offenders.push(`${path.relative(PROTO, file)}: ${re}`);
    }
    expect(offenders).toEqual([]);
  });
});
