// iSCSI operational parameter negotiation (RFC 7143 §6.2, §13): every key the target understands, with its
// default, range and result function (list, min, max, AND, OR, declarative). The target answers each offer
// with the negotiated value; unknown keys get NotUnderstood, keys that do not apply get Irrelevant, and
// invalid values Reject. Declarative keys the target must state (MaxRecvDataSegmentLength) are added once.
import type { TextPairs } from '../proto/iscsi/text.js';

/** Negotiated values of one connection/session. */
export interface SessionParams {
  headerDigest: boolean;
  dataDigest: boolean;
  /** The most we may send in one PDU (the initiator's declaration). */
  initiatorMaxRecvDataSegmentLength: number;
  /** The most we accept in one PDU (our declaration). */
  targetMaxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  initialR2T: boolean;
  immediateData: boolean;
  maxOutstandingR2T: number;
  dataPDUInOrder: boolean;
  dataSequenceInOrder: boolean;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
  errorRecoveryLevel: number;
  maxConnections: number;
}

/** RFC 7143 defaults (what holds when a key is never negotiated). */
export function defaultParams(): SessionParams {
  return {
    headerDigest: false,
    dataDigest: false,
    initiatorMaxRecvDataSegmentLength: 8192,
    targetMaxRecvDataSegmentLength: 8192,
    maxBurstLength: 262144,
    firstBurstLength: 65536,
    initialR2T: true,
    immediateData: true,
    maxOutstandingR2T: 1,
    dataPDUInOrder: true,
    dataSequenceInOrder: true,
    defaultTime2Wait: 2,
    defaultTime2Retain: 20,
    errorRecoveryLevel: 0,
    maxConnections: 1,
  };
}

/** What the target prefers (generous, for throughput); the result is still min/max/AND/OR with the offer. */
export interface TargetPreferences {
  maxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  initialR2T: boolean;
  immediateData: boolean;
  maxOutstandingR2T: number;
  headerDigest: boolean;
  dataDigest: boolean;
}

export const DEFAULT_PREFERENCES: TargetPreferences = {
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 1048576,
  firstBurstLength: 262144,
  initialR2T: false,
  immediateData: true,
  maxOutstandingR2T: 16,
  headerDigest: true,
  dataDigest: true,
};

type Kind =
  | { t: 'min'; lo: number; hi: number; mine: (p: TargetPreferences) => number; set: (s: SessionParams, v: number) => void }
  | { t: 'max'; lo: number; hi: number; mine: (p: TargetPreferences) => number; set: (s: SessionParams, v: number) => void }
  | { t: 'and' | 'or'; mine: (p: TargetPreferences) => boolean; set: (s: SessionParams, v: boolean) => void }
  | { t: 'digest'; mine: (p: TargetPreferences) => boolean; set: (s: SessionParams, v: boolean) => void }
  | { t: 'declare-number'; lo: number; hi: number; set: (s: SessionParams, v: number) => void }
  | { t: 'leading-only' };

const OPERATIONAL: Record<string, Kind> = {
  HeaderDigest: { t: 'digest', mine: (p) => p.headerDigest, set: (s, v) => (s.headerDigest = v) },
  DataDigest: { t: 'digest', mine: (p) => p.dataDigest, set: (s, v) => (s.dataDigest = v) },
  MaxConnections: { t: 'min', lo: 1, hi: 65535, mine: () => 1, set: (s, v) => (s.maxConnections = v) },
  InitialR2T: { t: 'or', mine: (p) => p.initialR2T, set: (s, v) => (s.initialR2T = v) },
  ImmediateData: { t: 'and', mine: (p) => p.immediateData, set: (s, v) => (s.immediateData = v) },
  MaxRecvDataSegmentLength: {
    t: 'declare-number',
    lo: 512,
    hi: 16777215,
    set: (s, v) => (s.initiatorMaxRecvDataSegmentLength = v),
  },
  MaxBurstLength: { t: 'min', lo: 512, hi: 16777215, mine: (p) => p.maxBurstLength, set: (s, v) => (s.maxBurstLength = v) },
  FirstBurstLength: { t: 'min', lo: 512, hi: 16777215, mine: (p) => p.firstBurstLength, set: (s, v) => (s.firstBurstLength = v) },
  DefaultTime2Wait: { t: 'max', lo: 0, hi: 3600, mine: () => 2, set: (s, v) => (s.defaultTime2Wait = v) },
  DefaultTime2Retain: { t: 'min', lo: 0, hi: 3600, mine: () => 20, set: (s, v) => (s.defaultTime2Retain = v) },
  MaxOutstandingR2T: { t: 'min', lo: 1, hi: 65535, mine: (p) => p.maxOutstandingR2T, set: (s, v) => (s.maxOutstandingR2T = v) },
  DataPDUInOrder: { t: 'or', mine: () => true, set: (s, v) => (s.dataPDUInOrder = v) },
  DataSequenceInOrder: { t: 'or', mine: () => true, set: (s, v) => (s.dataSequenceInOrder = v) },
  ErrorRecoveryLevel: { t: 'min', lo: 0, hi: 2, mine: () => 0, set: (s, v) => (s.errorRecoveryLevel = v) },
  IFMarker: { t: 'and', mine: () => false, set: () => undefined },
  OFMarker: { t: 'and', mine: () => false, set: () => undefined },
  TaskReporting: { t: 'leading-only' },
};

/** Keys valid only in a Normal session (§13): a Discovery session answers them with Irrelevant. */
const NORMAL_ONLY = new Set([
  'MaxConnections',
  'InitialR2T',
  'ImmediateData',
  'MaxBurstLength',
  'FirstBurstLength',
  'MaxOutstandingR2T',
  'DataPDUInOrder',
  'DataSequenceInOrder',
]);
/** Keys handled elsewhere (login identity, security); not answered by the operational negotiator. */
export const LOGIN_KEYS = new Set([
  'InitiatorName',
  'InitiatorAlias',
  'TargetName',
  'TargetAlias',
  'SessionType',
  'AuthMethod',
  'CHAP_A',
  'CHAP_I',
  'CHAP_C',
  'CHAP_N',
  'CHAP_R',
  'TargetAddress',
  'TargetPortalGroupTag',
  'SendTargets',
]);

const NUMBER_RE = /^(0x[0-9a-fA-F]+|[0-9]+)$/;

function parseNumber(v: string): number | undefined {
  if (!NUMBER_RE.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Answer the operational keys in one login request. Updates `params` and returns the response pairs.
 * `discovery` selects the Discovery session key set. Keys in LOGIN_KEYS are skipped (the caller answers them).
 */
export function negotiate(
  offers: TextPairs,
  params: SessionParams,
  prefs: TargetPreferences,
  discovery: boolean,
): TextPairs {
  const out: TextPairs = [];
  for (const [key, value] of offers) {
    if (LOGIN_KEYS.has(key)) continue;
    const k = OPERATIONAL[key];
    if (!k) {
      if (key === 'OFMarkInt' || key === 'IFMarkInt') out.push([key, 'Irrelevant']);
      else out.push([key, 'NotUnderstood']);
      continue;
    }
    if (discovery && NORMAL_ONLY.has(key)) {
      out.push([key, 'Irrelevant']);
      continue;
    }
    switch (k.t) {
      case 'digest': {
        const offered = value.split(',');
        const canCrc = k.mine(prefs);
        const pick = offered.find((o) => o === 'None' || (o === 'CRC32C' && canCrc));
        if (!pick) out.push([key, 'Reject']);
        else {
          k.set(params, pick === 'CRC32C');
          out.push([key, pick]);
        }
        break;
      }
      case 'min':
      case 'max': {
        const n = parseNumber(value);
        if (n === undefined || n < k.lo || n > k.hi) {
          out.push([key, 'Reject']);
          break;
        }
        const v = k.t === 'min' ? Math.min(n, k.mine(prefs)) : Math.max(n, k.mine(prefs));
        k.set(params, v);
        out.push([key, String(v)]);
        break;
      }
      case 'and':
      case 'or': {
        if (value !== 'Yes' && value !== 'No') {
          out.push([key, 'Reject']);
          break;
        }
        const theirs = value === 'Yes';
        const v = k.t === 'and' ? theirs && k.mine(prefs) : theirs || k.mine(prefs);
        k.set(params, v);
        out.push([key, v ? 'Yes' : 'No']);
        break;
      }
      case 'declare-number': {
        const n = parseNumber(value);
        if (n === undefined || n < k.lo || n > k.hi) out.push([key, 'Reject']);
        else k.set(params, n);
        break;
      }
      case 'leading-only':
        out.push([key, 'RFC3720']);
        break;
    }
  }
  if (params.firstBurstLength > params.maxBurstLength) params.firstBurstLength = params.maxBurstLength;
  return out;
}
