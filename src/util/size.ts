// Human byte sizes for flags and config files: "512", "4k", "512M", "1G", "1.5GiB", "2T". Suffixes are binary
// (K = 1024). parseSize throws a SizeError naming the input; results are exact safe integers.
import { SheepfoldError } from './errors.js';

export class SizeError extends SheepfoldError<'EBADSIZE'> {
  constructor(message: string) {
    super('EBADSIZE', message);
  }
}

const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  K: 2 ** 10,
  M: 2 ** 20,
  G: 2 ** 30,
  T: 2 ** 40,
  P: 2 ** 50,
};

const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$/i;

/** Parse a size like "512M" into bytes. */
export function parseSize(text: string): number {
  const m = SIZE_RE.exec(text);
  if (m === null) throw new SizeError(`invalid size '${text}' (expected e.g. 4096, 512M, 1G)`);
  const unit = UNITS[(m[2] ?? '').toUpperCase()] ?? 1;
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) {
    throw new SizeError(`size '${text}' is not a whole number of bytes below 2^53`);
  }
  return bytes;
}

/** Format bytes with the largest binary unit that divides it exactly ("1G", "1536M", "4097"). */
export function formatSize(bytes: number): string {
  for (const u of ['P', 'T', 'G', 'M', 'K'] as const) {
    const f = UNITS[u] ?? 1;
    if (bytes >= f && bytes % f === 0) return `${bytes / f}${u}`;
  }
  return String(bytes);
}
