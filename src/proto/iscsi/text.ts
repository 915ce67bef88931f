// iSCSI text key=value pairs (RFC 7143 §6.1): NUL-terminated `key=value` strings in Login and Text data
// segments. Order is kept (SendTargets answers depend on it); a malformed pair is a negotiation error.
import { SheepfoldError } from '../../util/errors.js';

export type TextPairs = Array<[string, string]>;

/** Raised for a pair without '=' or with an over-long key; the caller answers with a login/Reject error. */
export class TextError extends SheepfoldError<'EBADTEXT'> {
  constructor(message: string) {
    super('EBADTEXT', message);
  }
}

/** Longest key name the RFC allows (§6.1). */
export const MAX_KEY_LENGTH = 63;

/** Parse a (complete) text data segment; padding NULs and an empty trailing entry are ignored. */
export function parseText(data: Buffer): TextPairs {
  const out: TextPairs = [];
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(0, start);
    if (end < 0) end = data.length;
    if (end > start) {
      const s = data.toString('utf8', start, end);
      const eq = s.indexOf('=');
      if (eq <= 0) throw new TextError(`malformed text pair "${s.slice(0, 80)}"`);
      const key = s.slice(0, eq);
      if (key.length > MAX_KEY_LENGTH) throw new TextError(`key too long: ${key.slice(0, 80)}`);
      out.push([key, s.slice(eq + 1)]);
    }
    start = end + 1;
  }
  return out;
}

/** Encode pairs as `key=value\0...` (no padding; the PDU writer pads). */
export function encodeText(pairs: TextPairs): Buffer {
  return Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}
