// The etcd cluster driver against a real etcd (Debian etcd-server, one member on 127.0.0.1): the ClusterDriver
// contract shared with `local` (order, history, barrier, graceful leave, compaction with bounded history), and
// the etcd-specific membership: a member whose lease expires (process gone) leaves as `failed`; a member whose
// own lease is revoked is `expelled` and rejoins as a new incarnation.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Etcd3 } from 'etcd3';
import { EtcdClusterDriver, parseEtcdSpec } from '../../src/sheep/cluster/etcd.js';
import { driverContract, track, until } from '../helpers/cluster-driver-contract.js';
import { retainedRevisions, startEtcd, stopEtcd, type EtcdMember } from '../helpers/etcd.js';

let etcd: EtcdMember;
let admin: Etcd3;
const drivers: EtcdClusterDriver[] = [];
let prefixN = 0;

beforeAll(async () => {
  etcd = await startEtcd();
  admin = new Etcd3({ hosts: [etcd.clientUrl] });
});
afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.close()));
});
afterAll(async () => {
  admin?.close();
  if (etcd) await stopEtcd(etcd);
});

function make(prefix: string, o: { compactEvery?: number; ttlSeconds?: number } = {}): EtcdClusterDriver {
  const d = new EtcdClusterDriver({ endpoints: [etcd.clientUrl], prefix, ...o });
  drivers.push(d);
  return d;
}

describe('etcd cluster driver (real etcd)', () => {
  driverContract(() => {
    const prefix = `/sf-test-${process.pid}-${++prefixN}`;
    return { make: (o = {}) => make(prefix, o), retained: () => retainedRevisions(admin, Buffer.from(`${prefix}/log`)) };
  });

  it('parses etcd:ENDPOINTS[/PREFIX] and rejects what it cannot use', () => {
    expect(parseEtcdSpec('etcd:http://10.77.0.1:2379,http://10.77.0.2:2379/sheepfold')).toEqual({
      endpoints: ['http://10.77.0.1:2379', 'http://10.77.0.2:2379'],
      prefix: '/sheepfold',
    });
    expect(parseEtcdSpec('etcd:http://127.0.0.1:2379')).toEqual({ endpoints: ['http://127.0.0.1:2379'], prefix: '/sheepfold' });
    expect(parseEtcdSpec('etcd:https://a.example:2379/x/y').prefix).toBe('/x/y');
    expect(() => parseEtcdSpec('etcd:')).toThrow(/bad etcd endpoint/);
    expect(() => parseEtcdSpec('etcd:http://127.0.0.1')).toThrow(/needs a port/);
    expect(() => parseEtcdSpec('etcd:ftp://127.0.0.1:1')).toThrow(/only http/);
    expect(() => parseEtcdSpec('etcd:http://127.0.0.1:1/a,http://127.0.0.1:2')).toThrow(/only the last/);
  });

  it('a member that stops renewing its lease leaves as failed within the TTL; one whose lease is revoked is expelled and rejoins', async () => {
    const prefix = `/sf-test-${process.pid}-${++prefixN}`;
    const [a, b, c] = [track(make(prefix, { ttlSeconds: 2 })), track(make(prefix, { ttlSeconds: 2 })), track(make(prefix, { ttlSeconds: 2 }))];
    await a.d.join('A', {});
    await b.d.join('B', {});
    await c.d.join('C', {});
    // B dies without leaving (close() releases the lease without revoking it, like a killed process).
    const t0 = Date.now();
    await b.d.close();
    await until(() => a.events.some((e) => e.type === 'leave'), 15_000);
    const failedAfter = Date.now() - t0;
    const ev = a.events.find((e) => e.type === 'leave');
    expect(ev?.type === 'leave' && ev.reason).toBe('failed');
    expect(ev?.type === 'leave' && ev.member.node).toBe('B');
    expect(failedAfter).toBeLessThan(2_000 + 3_000);
    expect(a.d.members().map((m) => m.node).sort()).toEqual(['A', 'C']);
    // C's lease is revoked behind its back: C reads its own removal as `expelled`, others as a failed leave.
    const cId = c.d.members().find((m) => m.node === 'C')!.id;
    const kv = await admin.kv.range({ key: Buffer.from(`${prefix}/m/${cId}`) });
    await admin.leaseClient.leaseRevoke({ ID: kv.kvs[0]!.lease });
    await until(() => c.events.some((e) => e.type === 'expelled'));
    await until(() => a.events.filter((e) => e.type === 'leave').length === 2);
    await expect(c.d.broadcast('x')).rejects.toThrow(/not a cluster member/);
    const again = await c.d.rejoin!();
    expect(again.id).not.toBe(cId);
    await until(() => a.events.some((e) => e.type === 'join' && e.member.id === again.id));
    await c.d.broadcast({ v: 1 });
    await until(() => a.state.count === 1);
    expect(a.d.members().map((m) => m.node).sort()).toEqual(['A', 'C']);
  });
});
