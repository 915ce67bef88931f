// AluaPort: REPORT TARGET PORT GROUPS bytes, preferred-host states, takeover when the preferred host dies and
// swap back when it returns (with change events), SET TARGET PORT GROUPS, and the LU's TPGS / VPD 0x83 / UA.
import { describe, expect, it } from 'vitest';
import { AluaPort } from '../../../../src/iscsi/scsi/alua.js';
import { parseAluaPeers } from '../../../../src/iscsi/alua-config.js';
import { LogicalUnit } from '../../../../src/iscsi/scsi/lu.js';
import { MemoryDevice } from '../../../../src/block/memory.js';
import { decodeTargetPortGroups, decodeStandardInquiry, decodeDeviceIdentification, luIdentity } from '../../../../src/proto/scsi/pages.js';

const rtpg = (extended: boolean): Buffer => Buffer.from([0xa3, (extended ? 0x20 : 0) | 0x0a, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0]);
const stpg = (len: number): Buffer => Buffer.from([0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, len, 0, 0]);

describe('AluaPort', () => {
  it('reports the preferred host active/optimized and the peer active/non-optimized', () => {
    const a = new AluaPort({ group: 1, relativePort: 1, peers: [{ group: 2, relativePort: 2 }], preferredGroup: 1 });
    const r = a.handle(rtpg(true), undefined);
    expect(r && 'data' in r).toBe(true);
    const data = (r as { data: Buffer }).data;
    expect([...data.subarray(0, 8)]).toEqual([0, 0, 0, 28, 0x10, 10, 0, 0]);
    const g = decodeTargetPortGroups(data);
    expect(g.map((x) => [x.id, x.state, x.preferred, x.relativeTargetPorts])).toEqual([
      [1, 'active/optimized', true, [1]],
      [2, 'active/non-optimized', false, [2]],
    ]);
    expect(decodeTargetPortGroups((a.handle(rtpg(false), undefined) as { data: Buffer }).data)).toEqual(g);
  });

  it('promotes the survivor when the preferred host dies and swaps back when it returns', () => {
    const b = new AluaPort({ group: 2, relativePort: 2, peers: [{ group: 1, relativePort: 1 }], preferredGroup: 1 });
    let changes = 0;
    b.on('change', () => changes++);
    expect([b.stateOf(1), b.stateOf(2)]).toEqual([0, 1]);
    b.setAlive(1, false);
    expect([b.stateOf(1), b.stateOf(2)]).toEqual([3, 0]);
    b.setAlive(1, false);
    b.setAlive(1, true);
    expect([b.stateOf(1), b.stateOf(2)]).toEqual([0, 1]);
    expect(changes).toBe(2);
    expect(decodeTargetPortGroups(b.reportTargetPortGroups(true)).map((g) => g.statusCode)).toEqual([2, 2]);
  });

  it('SET TARGET PORT GROUPS moves the preference; bad groups and states are refused', () => {
    const a = new AluaPort({ group: 1, relativePort: 1, peers: [{ group: 2, relativePort: 2 }] });
    const p = Buffer.from([0, 0, 0, 0, 0x00, 0, 0, 2]);
    expect(a.handle(stpg(8), p)).toEqual({ data: Buffer.alloc(0), dataOutWanted: 8 });
    expect([a.stateOf(1), a.stateOf(2)]).toEqual([1, 0]);
    const bad = a.handle(stpg(8), Buffer.from([0, 0, 0, 0, 0x00, 0, 0, 9]));
    expect(bad && 'sense' in bad && bad.sense.ascq).toBe(0x2600);
    const standby = a.handle(stpg(8), Buffer.from([0, 0, 0, 0, 0x02, 0, 0, 1]));
    expect(standby && 'sense' in standby && standby.sense.ascq).toBe(0x2600);
    expect(a.handle(Buffer.from([0x12, 0, 0, 0, 96, 0]), undefined)).toBeUndefined();
  });

  it('parses peer entries and refuses duplicate groups', () => {
    expect(parseAluaPeers('2@127.0.0.1:3261/7, 3')).toEqual([
      { group: 2, relativePort: 7, portal: '127.0.0.1:3261' },
      { group: 3, relativePort: 3 },
    ]);
    expect(() => new AluaPort({ group: 1, relativePort: 1, peers: [{ group: 1, relativePort: 2 }] })).toThrow(/differ/);
  });

  it('an LU with an ALUA port reports TPGS=3, its group and port in VPD 0x83, and answers RTPG', async () => {
    const alua = new AluaPort({ group: 2, relativePort: 5, peers: [{ group: 1, relativePort: 1 }], preferredGroup: 1 });
    const lu = new LogicalUnit(new MemoryDevice({ name: 'm', size: 1 << 20 }), { alua });
    const inq = await lu.execute({ cdb: Buffer.from([0x12, 0, 0, 0, 96, 0]), dataOut: undefined, expectedLength: 96, nexus: 'i' });
    expect(decodeStandardInquiry(inq.data as Buffer).tpgs).toBe(3);
    const vpd = await lu.execute({ cdb: Buffer.from([0x12, 1, 0x83, 1, 0, 0]), dataOut: undefined, expectedLength: 256, nexus: 'i' });
    const id = luIdentity(decodeDeviceIdentification(vpd.data as Buffer));
    expect([id.relativeTargetPort, id.targetPortGroup]).toEqual([5, 2]);
    const r = await lu.execute({ cdb: rtpg(true), dataOut: undefined, expectedLength: 1024, nexus: 'i' });
    expect(decodeTargetPortGroups(r.data as Buffer).map((g) => g.state)).toEqual(['active/optimized', 'active/non-optimized']);
  });
});
