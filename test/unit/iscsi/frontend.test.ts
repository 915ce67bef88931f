// The [iscsi] config section → server options: default one target per export at LUN 0, explicit LUN
// mapping, ACLs, CHAP accounts, portals and removable LUs.
import { describe, it, expect } from 'vitest';
import { MemoryDevice } from '../../../src/block/memory.js';
import { iscsiOptionsFrom, iqnSafe } from '../../../src/iscsi/frontend.js';
import type { ExportEntry } from '../../../src/block/export-table.js';

function table(...names: string[]): Map<string, ExportEntry> {
  return new Map(
    names.map((n) => [n, { name: n, device: new MemoryDevice({ name: n, size: 1 << 20 }), readOnly: n.startsWith('ro'), description: n }]),
  );
}

describe('iscsiOptionsFrom', () => {
  it('makes each export a target <prefix><name> with LUN 0 on 127.0.0.1:3260 by default', () => {
    const o = iscsiOptionsFrom({ enabled: true }, table('a', 'B_c'));
    expect(o.host).toBe('127.0.0.1');
    expect(o.port).toBe(3260);
    expect(o.targets.map((t) => [t.name, t.luns.map((l) => l.lun)])).toEqual([
      ['iqn.2026-11.org.sheepfold:a', [0]],
      ['iqn.2026-11.org.sheepfold:b-c', [0]],
    ]);
  });
  it('maps several exports onto one target, with ACLs, CHAP, portals and removable LUs', () => {
    const o = iscsiOptionsFrom(
      {
        listen: '[::1]:3300',
        'iqn-prefix': 'iqn.2030-01.x:',
        targets: 'db=a,b;logs=c',
        acl: 'iqn.all',
        'target-acl': 'db=iqn.db1|iqn.db2',
        'chap-user': 'u',
        'chap-secret': 'secret123456',
        'chap-mutual-secret': 'mutual123456',
        portals: '10.0.0.1:3260,10.0.0.2:3260',
        'target-portals': 'logs=10.0.0.9:3260',
        removable: 'c',
        'discovery-chap-user': 'd',
        'discovery-chap-secret': 'dsecret12345',
      },
      table('a', 'b', 'c'),
    );
    expect(o.host).toBe('::1');
    expect(o.port).toBe(3300);
    const [db, logs] = o.targets;
    expect(db?.name).toBe('iqn.2030-01.x:db');
    expect(db?.luns.map((l) => l.lun)).toEqual([0, 1]);
    expect(db?.initiators).toEqual(['iqn.all', 'iqn.db1', 'iqn.db2']);
    expect(db?.chap).toEqual([{ user: 'u', secret: 'secret123456', mutualSecret: 'mutual123456', mutualUser: 'sheepfold' }]);
    expect(db?.portals).toEqual(['10.0.0.1:3260', '10.0.0.2:3260']);
    expect(logs?.portals).toEqual(['10.0.0.9:3260']);
    expect(logs?.luns[0]?.removable).toBe(true);
    expect(o.discoveryChap).toEqual([{ user: 'd', secret: 'dsecret12345' }]);
  });
  it('wraps a read-only export of a writable device so writes fail', async () => {
    const o = iscsiOptionsFrom({}, table('ro1'));
    const dev = o.targets[0]?.luns[0]?.device;
    expect(dev?.readOnly).toBe(true);
    await expect(dev?.write(0, Buffer.alloc(512))).rejects.toMatchObject({ code: 'EROFS' });
  });
  it('rejects a mapping to an unknown export and half a CHAP account', () => {
    expect(() => iscsiOptionsFrom({ targets: 'x=nope' }, table('a'))).toThrow(/unknown export/);
    expect(() => iscsiOptionsFrom({ 'chap-user': 'u' }, table('a'))).toThrow(/chap/);
  });
  it('makes IQN-safe names', () => {
    expect(iqnSafe('My_Disk+1')).toBe('my-disk-1');
  });
});
