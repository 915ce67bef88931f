// Operational key negotiation (RFC 7143 §13): min/max/AND/OR results, declarations, ranges, unknown keys.
import { describe, it, expect } from 'vitest';
import { DEFAULT_PREFERENCES, defaultParams, negotiate } from '../../../src/iscsi/params.js';

describe('negotiate', () => {
  it('applies min, max, AND and OR against the target preferences', () => {
    const p = defaultParams();
    const out = negotiate(
      [
        ['MaxBurstLength', '16776192'],
        ['FirstBurstLength', '65536'],
        ['DefaultTime2Wait', '0'],
        ['InitialR2T', 'Yes'],
        ['ImmediateData', 'Yes'],
        ['DataPDUInOrder', 'No'],
        ['ErrorRecoveryLevel', '2'],
        ['MaxRecvDataSegmentLength', '65536'],
        ['HeaderDigest', 'CRC32C,None'],
        ['DataDigest', 'None'],
      ],
      p,
      DEFAULT_PREFERENCES,
      false,
    );
    expect(Object.fromEntries(out)).toEqual({
      MaxBurstLength: '1048576',
      FirstBurstLength: '65536',
      DefaultTime2Wait: '2',
      InitialR2T: 'Yes',
      ImmediateData: 'Yes',
      DataPDUInOrder: 'Yes',
      ErrorRecoveryLevel: '0',
      HeaderDigest: 'CRC32C',
      DataDigest: 'None',
    });
    expect(p).toMatchObject({ maxBurstLength: 1048576, initiatorMaxRecvDataSegmentLength: 65536, initialR2T: true, headerDigest: true, dataDigest: false });
  });
  it('answers NotUnderstood, Irrelevant and Reject', () => {
    const p = defaultParams();
    const out = negotiate(
      [
        ['X-com.example.Foo', '1'],
        ['MaxBurstLength', '100'],
        ['ImmediateData', 'Maybe'],
        ['OFMarkInt', '2048~8192'],
      ],
      p,
      DEFAULT_PREFERENCES,
      false,
    );
    expect(out).toEqual([
      ['X-com.example.Foo', 'NotUnderstood'],
      ['MaxBurstLength', 'Reject'],
      ['ImmediateData', 'Reject'],
      ['OFMarkInt', 'Irrelevant'],
    ]);
  });
  it('answers session keys with Irrelevant in a discovery session', () => {
    expect(negotiate([['MaxBurstLength', '262144']], defaultParams(), DEFAULT_PREFERENCES, true)).toEqual([['MaxBurstLength', 'Irrelevant']]);
  });
  it('keeps FirstBurstLength at or below MaxBurstLength', () => {
    const p = defaultParams();
    negotiate([['MaxBurstLength', '4096']], p, DEFAULT_PREFERENCES, false);
    negotiate([['FirstBurstLength', '262144']], p, DEFAULT_PREFERENCES, false);
    expect(p.firstBurstLength).toBeLessThanOrEqual(p.maxBurstLength);
  });
});
