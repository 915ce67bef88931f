// src/proto/nbd stays pure: no sockets, files, timers, process or logging.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';

const DIR = path.resolve(import.meta.dirname, '../../../../src/proto/nbd');
const FORBIDDEN = [/from 'node:(net|fs|tls|child_process|timers|process)/, /obs\/log/, /\bsetTimeout\(/, /\bprocess\./];

describe('src/proto/nbd purity', () => {
  it('imports nothing impure', () => {
    const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) {
      const text = fs.readFileSync(path.join(DIR, f), 'utf8');
      for (const re of FORBIDDEN) expect(`${f}: ${re.test(text)}`).toBe(`${f}: false`);
    }
  });
});
