// CHAP authentication for iSCSI login (RFC 7143 §12.1.3, RFC 1994) with MD5 (CHAP_A=5): one-way (the target
// checks the initiator) and mutual (the initiator also checks the target). Binary values go on the wire as
// 0x-hex (base64 0b-form accepted on input).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface ChapAccount {
  /** Name and secret the initiator must present (CHAP_N / secret for CHAP_R). */
  user: string;
  secret: string;
  /** For mutual CHAP: the name and secret the target answers with. */
  mutualUser?: string;
  mutualSecret?: string;
}

export const CHAP_MD5 = '5';
const CHALLENGE_BYTES = 16;

/** CHAP response: MD5(id || secret || challenge). */
export function chapResponse(id: number, secret: string, challenge: Buffer): Buffer {
  return createHash('md5')
    .update(Buffer.from([id & 0xff]))
    .update(Buffer.from(secret, 'utf8'))
    .update(challenge)
    .digest();
}

/** Decode a CHAP binary value (0x hex or 0b base64); undefined if malformed. */
export function decodeChapBinary(v: string): Buffer | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(v) && v.length % 2 === 0) return Buffer.from(v.slice(2), 'hex');
  if (/^0[bB][A-Za-z0-9+/=]+$/.test(v)) return Buffer.from(v.slice(2), 'base64');
  return undefined;
}
export const encodeChapBinary = (b: Buffer): string => `0x${b.toString('hex')}`;

/** Target side of one CHAP exchange. */
export class ChapExchange {
  readonly id: number;
  readonly challenge: Buffer;

  constructor(private readonly accounts: ChapAccount[]) {
    this.id = randomBytes(1)[0] ?? 1;
    this.challenge = randomBytes(CHALLENGE_BYTES);
  }

  /** Check the initiator's CHAP_N/CHAP_R; returns the matching account or undefined. */
  verify(name: string, response: string): ChapAccount | undefined {
    const got = decodeChapBinary(response);
    if (!got) return undefined;
    for (const a of this.accounts) {
      if (a.user !== name) continue;
      const want = chapResponse(this.id, a.secret, this.challenge);
      if (want.length === got.length && timingSafeEqual(want, got)) return a;
    }
    return undefined;
  }

  /**
   * Answer the initiator's mutual challenge (CHAP_I, CHAP_C). Returns undefined if the account has no mutual
   * secret, the values are malformed, or the initiator reflected our own challenge.
   */
  mutualAnswer(account: ChapAccount, idText: string, challengeText: string): { name: string; response: string } | undefined {
    if (account.mutualSecret === undefined) return undefined;
    const id = Number(idText);
    const ch = decodeChapBinary(challengeText);
    if (!Number.isInteger(id) || id < 0 || id > 255 || !ch || ch.length === 0) return undefined;
    if (ch.equals(this.challenge)) return undefined;
    return { name: account.mutualUser ?? account.user, response: encodeChapBinary(chapResponse(id, account.mutualSecret, ch)) };
  }
}
