import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { LoginError, LoginNegotiator, randomIsid, type LoginOffer } from '../../../src/initiator/login.js';

const offer = (o: Partial<LoginOffer> = {}): LoginOffer => ({
  initiatorName: 'iqn.test:ini',
  targetName: 'iqn.test:tgt',
  chap: undefined,
  headerDigest: true,
  dataDigest: false,
  maxRecvDataSegmentLength: 65536,
  maxBurstLength: 1048576,
  firstBurstLength: 262144,
  initialR2T: false,
  immediateData: true,
  ...o,
});
const md5 = (id: number, secret: string, ch: Buffer): string =>
  `0x${createHash('md5').update(Buffer.from([id])).update(secret).update(ch).digest('hex')}`;

describe('LoginNegotiator', () => {
  it('walks security (None) → operational → full feature and reads the answers', () => {
    const n = new LoginNegotiator(offer());
    const s1 = n.first();
    expect(s1).toMatchObject({ csg: 0, nsg: 1, transit: true });
    expect(s1.pairs).toEqual([
      ['InitiatorName', 'iqn.test:ini'],
      ['SessionType', 'Normal'],
      ['TargetName', 'iqn.test:tgt'],
      ['AuthMethod', 'None'],
    ]);
    const s2 = n.next({ csg: 0, nsg: 1, transit: true, pairs: [['AuthMethod', 'None']] });
    expect(s2).not.toBe('done');
    if (s2 === 'done') return;
    expect(s2).toMatchObject({ csg: 1, nsg: 3, transit: true });
    expect(new Map(s2.pairs).get('HeaderDigest')).toBe('CRC32C,None');
    expect(new Map(s2.pairs).get('MaxRecvDataSegmentLength')).toBe('65536');
    const done = n.next({
      csg: 1,
      nsg: 3,
      transit: true,
      pairs: [
        ['HeaderDigest', 'CRC32C'],
        ['DataDigest', 'None'],
        ['MaxRecvDataSegmentLength', '8192'],
        ['MaxBurstLength', '262144'],
        ['FirstBurstLength', '524288'],
        ['InitialR2T', 'Yes'],
        ['ImmediateData', 'Yes'],
        ['TargetPortalGroupTag', '1'],
      ],
    });
    expect(done).toBe('done');
    expect(n.params).toMatchObject({
      headerDigest: true,
      dataDigest: false,
      targetMaxRecvDataSegmentLength: 8192,
      maxBurstLength: 262144,
      firstBurstLength: 262144,
      initialR2T: true,
      immediateData: true,
      targetPortalGroupTag: 1,
    });
  });

  it('runs mutual CHAP and checks the target answer', () => {
    const n = new LoginNegotiator(offer({ chap: { user: 'u', secret: 'user-secret-12', mutualUser: 'T', mutualSecret: 'target-secret-1' } }));
    expect(n.first()).toMatchObject({ transit: false, pairs: expect.arrayContaining([['AuthMethod', 'CHAP,None']]) as unknown });
    const a = n.next({ csg: 0, nsg: 0, transit: false, pairs: [['AuthMethod', 'CHAP']] });
    expect(a).toMatchObject({ pairs: [['CHAP_A', '5']] });
    const challenge = Buffer.alloc(16, 0xab);
    const r = n.next({ csg: 0, nsg: 0, transit: false, pairs: [['CHAP_A', '5'], ['CHAP_I', '9'], ['CHAP_C', `0x${challenge.toString('hex')}`]] });
    if (r === 'done') throw new Error('unexpected');
    const m = new Map(r.pairs);
    expect(m.get('CHAP_N')).toBe('u');
    expect(m.get('CHAP_R')).toBe(md5(9, 'user-secret-12', challenge));
    const myId = Number(m.get('CHAP_I'));
    const myChallenge = Buffer.from((m.get('CHAP_C') ?? '').slice(2), 'hex');
    expect(myChallenge.length).toBe(16);
    const ok = n.next({ csg: 0, nsg: 1, transit: true, pairs: [['CHAP_N', 'T'], ['CHAP_R', md5(myId, 'target-secret-1', myChallenge)]] });
    expect(ok).toMatchObject({ csg: 1, nsg: 3 });
  });

  it('rejects a wrong mutual CHAP answer and digests we did not offer', () => {
    const n = new LoginNegotiator(offer({ chap: { user: 'u', secret: 'user-secret-12', mutualSecret: 'target-secret-1' } }));
    n.first();
    n.next({ csg: 0, nsg: 0, transit: false, pairs: [['AuthMethod', 'CHAP']] });
    n.next({ csg: 0, nsg: 0, transit: false, pairs: [['CHAP_A', '5'], ['CHAP_I', '1'], ['CHAP_C', '0x0102030405060708']] });
    expect(() => n.next({ csg: 0, nsg: 1, transit: true, pairs: [['CHAP_N', 'T'], ['CHAP_R', '0x00112233445566778899aabbccddeeff']] })).toThrow(LoginError);
    const d = new LoginNegotiator(offer({ dataDigest: false }));
    d.first();
    d.next({ csg: 0, nsg: 1, transit: true, pairs: [] });
    expect(() => d.next({ csg: 1, nsg: 3, transit: true, pairs: [['DataDigest', 'CRC32C']] })).toThrow(/did not offer/);
  });

  it('makes random-type ISIDs', () => {
    const i = randomIsid(5);
    expect(Math.floor(i / 2 ** 40)).toBe(0x80);
    expect(i % 65536).toBe(5);
  });
});
