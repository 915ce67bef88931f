// CHAP MD5: the response function against a value computed by hand, verification and mutual answers.
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { ChapExchange, chapResponse, decodeChapBinary } from '../../../src/iscsi/chap.js';

describe('CHAP', () => {
  it('computes MD5(id || secret || challenge)', () => {
    const ch = Buffer.from('0102030405', 'hex');
    const want = createHash('md5').update(Buffer.concat([Buffer.from([7]), Buffer.from('secret'), ch])).digest();
    expect(chapResponse(7, 'secret', ch)).toEqual(want);
  });
  it('verifies the right secret and refuses a wrong one', () => {
    const x = new ChapExchange([{ user: 'u', secret: 'goodsecret12' }]);
    const good = `0x${chapResponse(x.id, 'goodsecret12', x.challenge).toString('hex')}`;
    const bad = `0x${chapResponse(x.id, 'badsecret123', x.challenge).toString('hex')}`;
    expect(x.verify('u', good)?.user).toBe('u');
    expect(x.verify('u', bad)).toBeUndefined();
    expect(x.verify('other', good)).toBeUndefined();
  });
  it('answers a mutual challenge and refuses a reflected one', () => {
    const acct = { user: 'u', secret: 's1', mutualUser: 'tgt', mutualSecret: 'mutualsecret' };
    const x = new ChapExchange([acct]);
    const ans = x.mutualAnswer(acct, '9', '0xaabbcc');
    expect(ans).toEqual({ name: 'tgt', response: `0x${chapResponse(9, 'mutualsecret', Buffer.from('aabbcc', 'hex')).toString('hex')}` });
    expect(x.mutualAnswer(acct, '9', `0x${x.challenge.toString('hex')}`)).toBeUndefined();
  });
  it('decodes hex and base64 binary values', () => {
    expect(decodeChapBinary('0x0aFF')).toEqual(Buffer.from([0x0a, 0xff]));
    expect(decodeChapBinary('0bAQI=')).toEqual(Buffer.from([1, 2]));
    expect(decodeChapBinary('zz')).toBeUndefined();
  });
});
