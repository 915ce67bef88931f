// Initiator side of iSCSI login negotiation (RFC 7143 §6, §12.1.3, §13): what to offer in each stage, how to read
// the target's answers into negotiated session parameters, and the initiator half of CHAP (one-way and mutual).
// No sockets here: the session drives a LoginNegotiator PDU by PDU, so the same logic is unit-testable.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { TextPairs } from '../proto/iscsi/text.js';
import { chapResponse, decodeChapBinary, encodeChapBinary, CHAP_MD5 } from '../iscsi/chap.js';
import { SheepfoldError } from '../util/errors.js';

/** CHAP credentials: `user`/`secret` answer the target's challenge; with `mutualSecret` we challenge the target. */
export interface ChapCredentials {
  user: string;
  secret: string;
  /** Expected target name in its CHAP_N (optional check). */
  mutualUser?: string;
  mutualSecret?: string;
}

/** What we offer; the negotiated result is in NegotiatedParams. */
export interface LoginOffer {
  initiatorName: string;
  /** Undefined for a Discovery session. */
  targetName: string | undefined;
  chap: ChapCredentials | undefined;
  /** Offer CRC32C first (the target may still choose None). */
  headerDigest: boolean;
  dataDigest: boolean;
  maxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  initialR2T: boolean;
  immediateData: boolean;
}

export interface NegotiatedParams {
  headerDigest: boolean;
  dataDigest: boolean;
  /** The most the target accepts per PDU (its declaration): our send limit. */
  targetMaxRecvDataSegmentLength: number;
  /** What we declared: our receive limit. */
  initiatorMaxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  initialR2T: boolean;
  immediateData: boolean;
  maxOutstandingR2T: number;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
  targetPortalGroupTag: number | undefined;
  targetAlias: string | undefined;
}

export function defaultNegotiated(offer: LoginOffer): NegotiatedParams {
  return {
    headerDigest: false,
    dataDigest: false,
    targetMaxRecvDataSegmentLength: 8192,
    initiatorMaxRecvDataSegmentLength: offer.maxRecvDataSegmentLength,
    maxBurstLength: 262144,
    firstBurstLength: 65536,
    initialR2T: true,
    immediateData: true,
    maxOutstandingR2T: 1,
    defaultTime2Wait: 2,
    defaultTime2Retain: 20,
    targetPortalGroupTag: undefined,
    targetAlias: undefined,
  };
}

/** A refused or broken login step: `auth` distinguishes CHAP failures. */
export class LoginError extends SheepfoldError<'ELOGIN' | 'EAUTH'> {
  constructor(
    message: string,
    readonly auth = false,
  ) {
    super(auth ? 'EAUTH' : 'ELOGIN', message);
  }
}

/** One request the session must send: stage fields plus text. */
export interface LoginStep {
  csg: number;
  nsg: number;
  transit: boolean;
  pairs: TextPairs;
}

/** What came back in one Login Response (already checked for status class 0). */
export interface LoginAnswer {
  csg: number;
  nsg: number;
  transit: boolean;
  pairs: TextPairs;
}

const SECURITY = 0;
const OPERATIONAL = 1;
const FULL = 3;

const num = (v: string): number | undefined => (/^(0x[0-9a-fA-F]+|\d+)$/.test(v) ? Number(v) : undefined);

/**
 * Drives the login from the initiator's side. `first()` gives the opening request; each `next(answer)` returns
 * the following request, or 'done' once the target transited to the full feature phase.
 */
export class LoginNegotiator {
  readonly params: NegotiatedParams;
  private stage = SECURITY;
  private chapState: 'none' | 'method-sent' | 'algorithm-sent' | 'response-sent' = 'none';
  private mutualChallenge: Buffer | undefined;
  private mutualId = 0;
  private operationalSent = false;

  constructor(private readonly offer: LoginOffer) {
    this.params = defaultNegotiated(offer);
  }

  private get discovery(): boolean {
    return this.offer.targetName === undefined;
  }

  first(): LoginStep {
    const pairs: TextPairs = [['InitiatorName', this.offer.initiatorName]];
    if (this.discovery) pairs.push(['SessionType', 'Discovery']);
    else pairs.push(['SessionType', 'Normal'], ['TargetName', this.offer.targetName ?? '']);
    if (this.offer.chap) {
      pairs.push(['AuthMethod', 'CHAP,None']);
      this.chapState = 'method-sent';
      return { csg: SECURITY, nsg: OPERATIONAL, transit: false, pairs };
    }
    pairs.push(['AuthMethod', 'None']);
    return { csg: SECURITY, nsg: OPERATIONAL, transit: true, pairs };
  }

  /** Keys for the operational stage (sent once). */
  private operationalPairs(): TextPairs {
    const o = this.offer;
    const pairs: TextPairs = [
      ['HeaderDigest', o.headerDigest ? 'CRC32C,None' : 'None'],
      ['DataDigest', o.dataDigest ? 'CRC32C,None' : 'None'],
      ['MaxRecvDataSegmentLength', String(o.maxRecvDataSegmentLength)],
      ['DefaultTime2Wait', '2'],
      ['DefaultTime2Retain', '0'],
      ['ErrorRecoveryLevel', '0'],
      ['IFMarker', 'No'],
      ['OFMarker', 'No'],
    ];
    if (!this.discovery) {
      pairs.push(
        ['InitialR2T', o.initialR2T ? 'Yes' : 'No'],
        ['ImmediateData', o.immediateData ? 'Yes' : 'No'],
        ['MaxBurstLength', String(o.maxBurstLength)],
        ['FirstBurstLength', String(o.firstBurstLength)],
        ['MaxOutstandingR2T', '1'],
        ['MaxConnections', '1'],
        ['DataPDUInOrder', 'Yes'],
        ['DataSequenceInOrder', 'Yes'],
      );
    }
    this.operationalSent = true;
    return pairs;
  }

  next(ans: LoginAnswer): LoginStep | 'done' {
    const get = (k: string): string | undefined => ans.pairs.find(([kk]) => kk === k)?.[1];
    this.absorb(ans.pairs);
    if (ans.transit && ans.nsg === FULL) {
      this.finish();
      return 'done';
    }
    if (this.stage === SECURITY) {
      const step = this.security(ans, get);
      if (step) return step;
      if (ans.transit) this.stage = ans.nsg;
      else return { csg: SECURITY, nsg: OPERATIONAL, transit: true, pairs: [] };
    }
    if (this.stage === OPERATIONAL) {
      const pairs = this.operationalSent ? this.answerTargetOffers(ans.pairs) : this.operationalPairs();
      return { csg: OPERATIONAL, nsg: FULL, transit: true, pairs };
    }
    throw new LoginError(`unexpected login stage ${this.stage}`);
  }

  /** The CHAP exchange; undefined when security is done and the target transited. */
  private security(ans: LoginAnswer, get: (k: string) => string | undefined): LoginStep | undefined {
    const chap = this.offer.chap;
    if (this.chapState === 'method-sent') {
      const m = get('AuthMethod');
      if (m === 'None') {
        this.chapState = 'none';
        return ans.transit ? undefined : { csg: SECURITY, nsg: OPERATIONAL, transit: true, pairs: [] };
      }
      if (m !== 'CHAP') throw new LoginError(`target refused CHAP (AuthMethod=${m ?? 'missing'})`, true);
      this.chapState = 'algorithm-sent';
      return { csg: SECURITY, nsg: OPERATIONAL, transit: false, pairs: [['CHAP_A', CHAP_MD5]] };
    }
    if (this.chapState === 'algorithm-sent' && chap) {
      const a = get('CHAP_A');
      const idText = get('CHAP_I');
      const challengeText = get('CHAP_C');
      if (a !== CHAP_MD5 || idText === undefined || challengeText === undefined) {
        throw new LoginError(`bad CHAP challenge (CHAP_A=${a ?? 'missing'})`, true);
      }
      const id = Number(idText);
      const challenge = decodeChapBinary(challengeText);
      if (!Number.isInteger(id) || id < 0 || id > 255 || !challenge) throw new LoginError('malformed CHAP challenge', true);
      const pairs: TextPairs = [
        ['CHAP_N', chap.user],
        ['CHAP_R', encodeChapBinary(chapResponse(id, chap.secret, challenge))],
      ];
      if (chap.mutualSecret !== undefined) {
        this.mutualId = randomBytes(1)[0] ?? 7;
        this.mutualChallenge = randomBytes(16);
        pairs.push(['CHAP_I', String(this.mutualId)], ['CHAP_C', encodeChapBinary(this.mutualChallenge)]);
      }
      this.chapState = 'response-sent';
      return { csg: SECURITY, nsg: OPERATIONAL, transit: true, pairs };
    }
    if (this.chapState === 'response-sent' && chap) {
      if (chap.mutualSecret !== undefined && this.mutualChallenge) {
        const name = get('CHAP_N');
        const resp = get('CHAP_R');
        const got = resp !== undefined ? decodeChapBinary(resp) : undefined;
        const want = chapResponse(this.mutualId, chap.mutualSecret, this.mutualChallenge);
        if (!got || got.length !== want.length || !timingSafeEqual(got, want)) {
          throw new LoginError('target failed mutual CHAP', true);
        }
        if (chap.mutualUser !== undefined && name !== chap.mutualUser) {
          throw new LoginError(`target CHAP name ${name ?? 'missing'} != ${chap.mutualUser}`, true);
        }
      }
      this.chapState = 'none';
      this.mutualChallenge = undefined;
      return ans.transit ? undefined : { csg: SECURITY, nsg: OPERATIONAL, transit: true, pairs: [] };
    }
    return undefined;
  }

  /** Record the target's answers and declarations into params. */
  private absorb(pairs: TextPairs): void {
    const p = this.params;
    const o = this.offer;
    for (const [k, v] of pairs) {
      switch (k) {
        case 'HeaderDigest':
          if (v === 'CRC32C' && !o.headerDigest) throw new LoginError('target chose HeaderDigest=CRC32C we did not offer');
          if (v === 'CRC32C' || v === 'None') p.headerDigest = v === 'CRC32C';
          break;
        case 'DataDigest':
          if (v === 'CRC32C' && !o.dataDigest) throw new LoginError('target chose DataDigest=CRC32C we did not offer');
          if (v === 'CRC32C' || v === 'None') p.dataDigest = v === 'CRC32C';
          break;
        case 'MaxRecvDataSegmentLength': {
          const n = num(v);
          if (n !== undefined && n >= 512) p.targetMaxRecvDataSegmentLength = Math.min(n, 16777215);
          break;
        }
        case 'MaxBurstLength': {
          const n = num(v);
          if (n !== undefined && n >= 512) p.maxBurstLength = Math.min(n, o.maxBurstLength);
          break;
        }
        case 'FirstBurstLength': {
          const n = num(v);
          if (n !== undefined && n >= 512) p.firstBurstLength = Math.min(n, o.firstBurstLength);
          break;
        }
        case 'InitialR2T':
          if (v === 'Yes' || v === 'No') p.initialR2T = v === 'Yes' || o.initialR2T;
          break;
        case 'ImmediateData':
          if (v === 'Yes' || v === 'No') p.immediateData = v === 'Yes' && o.immediateData;
          break;
        case 'MaxOutstandingR2T': {
          const n = num(v);
          if (n !== undefined && n >= 1) p.maxOutstandingR2T = Math.min(n, 1);
          break;
        }
        case 'DefaultTime2Wait': {
          const n = num(v);
          if (n !== undefined) p.defaultTime2Wait = n;
          break;
        }
        case 'DefaultTime2Retain': {
          const n = num(v);
          if (n !== undefined) p.defaultTime2Retain = n;
          break;
        }
        case 'TargetPortalGroupTag': {
          const n = num(v);
          if (n !== undefined) p.targetPortalGroupTag = n;
          break;
        }
        case 'TargetAlias':
          p.targetAlias = v;
          break;
        default:
          break;
      }
    }
  }

  /** Keys the target offered on its own after our operational offer: answer with our (conservative) value. */
  private answerTargetOffers(pairs: TextPairs): TextPairs {
    const out: TextPairs = [];
    const ours = new Map(this.operationalPairsPreview());
    for (const [k, v] of pairs) {
      if (k === 'MaxRecvDataSegmentLength' || k === 'TargetPortalGroupTag' || k === 'TargetAlias') continue;
      if (v === 'Irrelevant' || v === 'NotUnderstood' || v === 'Reject') continue;
      if (!ours.has(k)) out.push([k, 'NotUnderstood']);
    }
    return out;
  }

  private operationalPairsPreview(): TextPairs {
    const save = this.operationalSent;
    const p = this.operationalPairs();
    this.operationalSent = save;
    return p;
  }

  /** Final consistency fix-ups (RFC 7143 §13.14: FirstBurstLength <= MaxBurstLength). */
  private finish(): void {
    const p = this.params;
    if (p.firstBurstLength > p.maxBurstLength) p.firstBurstLength = p.maxBurstLength;
  }
}

/** A random-type ISID (RFC 7143 §11.12.5: T=10b, A=0, B/C random, D qualifier). */
export function randomIsid(qualifier = 0): number {
  const r = randomBytes(3).readUIntBE(0, 3);
  return 0x80 * 2 ** 40 + r * 2 ** 16 + (qualifier & 0xffff);
}
