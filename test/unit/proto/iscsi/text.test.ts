// iSCSI text key=value codec: golden bytes, round trip, malformed input.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { encodeText, parseText, TextError } from '../../../../src/proto/iscsi/text.js';

describe('iSCSI text', () => {
  it('parses NUL-separated pairs in order, ignoring padding', () => {
    const data = Buffer.from('InitiatorName=iqn.x\0SessionType=Normal\0\0\0', 'latin1');
    expect(parseText(data)).toEqual([
      ['InitiatorName', 'iqn.x'],
      ['SessionType', 'Normal'],
    ]);
  });
  it('encodes to the exact bytes', () => {
    expect(encodeText([['SendTargets', 'All']])).toEqual(Buffer.from('SendTargets=All\0', 'latin1'));
  });
  it('keeps "=" inside values', () => {
    expect(parseText(Buffer.from('CHAP_C=0xab=\0'))).toEqual([['CHAP_C', '0xab=']]);
  });
  it('rejects a pair without "=" and an over-long key', () => {
    expect(() => parseText(Buffer.from('novalue\0'))).toThrow(TextError);
    expect(() => parseText(Buffer.from(`${'k'.repeat(64)}=v\0`))).toThrow(TextError);
  });
  it('round-trips arbitrary pairs', () => {
    const key = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.]{0,30}$/);
    const val = fc.stringMatching(/^[ -~]{0,60}$/);
    fc.assert(
      fc.property(fc.array(fc.tuple(key, val), { maxLength: 10 }), (pairs) => {
        expect(parseText(encodeText(pairs))).toEqual(pairs);
      }),
    );
  });
});
