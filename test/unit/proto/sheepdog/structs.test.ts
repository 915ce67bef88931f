// Layout tests for the Sheepdog structs: inode views, VDI bitmap, sd_node, vdi_state, cluster_info, epoch logs,
// attributes. Expected bytes are built from the fact-sheet offset tables by hand, not by our encoders.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as C from '../../../../src/proto/sheepdog/constants.js';
import {
  countDataObjs,
  dataVidOffset,
  decodeInode,
  decodeInodeHeader,
  emptyInode,
  encodeIndexRange,
  encodeInode,
  encodeInodeHeader,
  sdTimestamp,
} from '../../../../src/proto/sheepdog/inode.js';
import { VdiBitmap } from '../../../../src/proto/sheepdog/bitmap.js';
import {
  addrBytes,
  addrText,
  compareNodeId,
  decodeNodes,
  defaultZone,
  encodeNodes,
  makeNodeId,
  nodeIdToStr,
} from '../../../../src/proto/sheepdog/node.js';
import { decodeVdiStates, encodeVdiStates, type VdiState } from '../../../../src/proto/sheepdog/vdi-state.js';
import {
  decodeClusterInfo,
  decodeEpochLogs,
  encodeClusterInfo,
  encodeEpochLogs,
} from '../../../../src/proto/sheepdog/cluster-info.js';
import { decodeVdiAttr, encodeVdiAttr } from '../../../../src/proto/sheepdog/attr.js';
import { isDataOid, isVdiOid, oidHex, oidToIndex, oidToVid, vidToDataOid, vidToVdiOid } from '../../../../src/proto/sheepdog/oid.js';

describe('inode', () => {
  it('sizes and offsets match the fact sheet', () => {
    expect(C.SD_INODE_HEADER_SIZE).toBe(4664);
    expect(C.TGT_INODE_SIZE).toBe(4198968);
    expect(C.SD_INODE_SIZE).toBe(12587576);
    expect(dataVidOffset(0)).toBe(4664);
    expect(dataVidOffset(3)).toBe(4676);
  });

  it('decodes a hand-built header at the documented offsets', () => {
    const b = Buffer.alloc(C.TGT_INODE_SIZE);
    b.write('cap', 0);
    b.write('snap1', 256);
    b.writeBigUInt64LE(0x11n << 32n, 512);
    b.writeBigUInt64LE(64n << 20n, 536);
    b[554] = 3;
    b[555] = 22;
    b.writeUInt32LE(2, 556);
    b.writeUInt32LE(0xe49c5b, 560);
    b.writeUInt32LE(0xe49c5a, 564);
    b.writeUInt32LE(0xe49c5b, 4664 + 4 * 5);
    const ino = decodeInode(b);
    expect(ino).toMatchObject({
      name: 'cap',
      tag: 'snap1',
      createTime: 0x11n << 32n,
      vdiSize: 64n << 20n,
      nrCopies: 3,
      blockSizeShift: 22,
      snapId: 2,
      vdiId: 0xe49c5b,
      parentVdiId: 0xe49c5a,
    });
    expect(ino.dataVdiId[5]).toBe(0xe49c5b);
    expect(ino.dataVdiId[4]).toBe(0);
    expect(decodeInodeHeader(b.subarray(0, 568)).name).toBe('cap');
  });

  it('full encode/decode round trip keeps index and gref; tgt view drops gref', () => {
    const ino = emptyInode();
    ino.name = 'v';
    ino.vdiId = 7;
    ino.vdiSize = 1n << 30n;
    ino.dataVdiId[0] = 7;
    ino.dataVdiId[C.MAX_DATA_OBJS - 1] = 9;
    ino.gref[0] = 1;
    ino.gref[1] = 2;
    const full = encodeInode(ino);
    expect(full.length).toBe(C.SD_INODE_SIZE);
    expect(full.readUInt32LE(4664 + 4 * (C.MAX_DATA_OBJS - 1))).toBe(9);
    expect(full.readInt32LE(C.SD_INODE_GREF_OFFSET + 4)).toBe(2);
    const back = decodeInode(full);
    expect(back.dataVdiId[C.MAX_DATA_OBJS - 1]).toBe(9);
    expect(back.gref[1]).toBe(2);
    const tgt = encodeInode(ino, C.TGT_INODE_SIZE);
    expect(tgt.length).toBe(C.TGT_INODE_SIZE);
    expect(decodeInode(tgt).gref[1]).toBe(0);
    expect(encodeInodeHeader(ino).equals(full.subarray(0, 4664))).toBe(true);
  });

  it('index ranges are LE u32 entries', () => {
    const idx = new Uint32Array(8);
    idx[4] = 0xe49c5c;
    idx[5] = 0xe49c5c;
    expect(encodeIndexRange(idx, 4, 2).toString('hex')).toBe('5c9ce4005c9ce400');
  });

  it('helpers: object count, timestamps', () => {
    expect(countDataObjs(64n << 20n, 22)).toBe(16);
    expect(countDataObjs((64n << 20n) + 1n, 22)).toBe(17);
    expect(sdTimestamp(1500)).toBe((1n << 32n) | 500_000_000n);
  });
});

describe('oids', () => {
  it('builds and splits oids', () => {
    expect(vidToVdiOid(0xe49c5b)).toBe(0x80e49c5b00000000n);
    expect(vidToDataOid(0xe49c5c, 4)).toBe(0x00e49c5c00000004n);
    expect(oidToVid(0x80e49c5b00000000n)).toBe(0xe49c5b);
    expect(oidToIndex(0x00e49c5c00000004n)).toBe(4);
    expect(isVdiOid(0x80e49c5b00000000n)).toBe(true);
    expect(isDataOid(0x00e49c5b00000001n)).toBe(true);
    expect(isDataOid(0x80e49c5b00000000n)).toBe(false);
    expect(oidHex(0x00e49c5b00000001n)).toBe('00e49c5b00000001');
  });
});

describe('VDI bitmap', () => {
  it('bit v is byte v>>3, bit v&7, LSB first', () => {
    const bm = new VdiBitmap();
    bm.set(0x7c2b25);
    expect(bm.bytes[0x7c2b25 >> 3]).toBe(1 << (0x7c2b25 & 7));
    expect(bm.test(0x7c2b25)).toBe(true);
    expect(bm.nextZero(0x7c2b25)).toBe(0x7c2b26);
    expect(bm.nextSet(1)).toBe(0x7c2b25);
    expect([...bm.setBits()]).toEqual([0x7c2b25]);
    bm.clear(0x7c2b25);
    expect(bm.nextSet(0)).toBe(-1);
    expect(bm.toBuffer().length).toBe(2097152);
  });

  it('rejects a wrongly sized bitmap', () => {
    expect(() => new VdiBitmap(new Uint8Array(10))).toThrow(RangeError);
  });
});

describe('sd_node', () => {
  it('80-byte layout: rb zeroed, nid at 24, vnodes at 64, zone at 68, space at 72', () => {
    const n = { nid: makeNodeId('127.0.0.1', 7000), nrVnodes: 128, zone: 5, space: 1n << 40n };
    const b = encodeNodes([n]);
    expect(b.length).toBe(80);
    expect(b.subarray(0, 24).every((x) => x === 0)).toBe(true);
    expect([...b.subarray(36, 40)]).toEqual([127, 0, 0, 1]);
    expect(b.readUInt16LE(40)).toBe(7000);
    expect(b.readUInt16LE(64)).toBe(128);
    expect(b.readUInt32LE(68)).toBe(5);
    expect(b.readBigUInt64LE(72)).toBe(1n << 40n);
    expect(decodeNodes(b)[0]).toEqual(n);
    expect(nodeIdToStr(n.nid)).toBe('IPv4 ip:127.0.0.1 port:7000');
    expect(defaultZone(n.nid)).toBe(16777343);
  });

  it('orders by address bytes then port; IPv6 text round trip', () => {
    expect(compareNodeId(makeNodeId('127.0.0.1', 7001), makeNodeId('127.0.0.1', 7000))).toBeGreaterThan(0);
    expect(compareNodeId(makeNodeId('10.0.0.9', 9000), makeNodeId('127.0.0.1', 7000))).toBeLessThan(0);
    expect(addrText(addrBytes('fe80::1'))).toBe('fe80:0:0:0:0:0:0:1');
  });
});

describe('vdi_state', () => {
  it('1428-byte layout with participants', () => {
    const s: VdiState = {
      vid: 0x7c2b25,
      nrCopies: 3,
      snapshot: false,
      deleted: false,
      copyPolicy: 0,
      blockSizeShift: 22,
      parentVid: 0,
      lockState: C.LOCK_STATE_SHARED,
      lockOwner: makeNodeId('0.0.0.0', 0),
      participants: [
        { nid: makeNodeId('127.0.0.1', 7000), state: C.SHARED_LOCK_STATE_SHARED },
        { nid: makeNodeId('127.0.0.1', 7001), state: C.SHARED_LOCK_STATE_INVALIDATED },
      ],
    };
    const b = encodeVdiStates([s, s]);
    expect(b.length).toBe(2 * 1428);
    expect(b.readUInt32LE(16)).toBe(3);
    expect(b.readUInt32LE(60)).toBe(2);
    expect(b.readUInt32LE(64 + 4)).toBe(3);
    expect(b.readUInt16LE(188 + 40 + 16)).toBe(7001);
    expect(decodeVdiStates(b)).toEqual([s, s]);
  });
});

describe('cluster_info and epoch logs', () => {
  const nodes = [0, 1, 2].map((i) => ({ nid: makeNodeId('127.0.0.1', 7000 + i), nrVnodes: 128, zone: i, space: 0n }));

  it('cluster_info is 491 568 bytes with status at 20 and nodes at 48', () => {
    const ci = {
      protoVer: C.SD_SHEEP_PROTO_VER,
      disableRecovery: 0,
      epoch: 4,
      ctime: 123n << 32n,
      flags: C.SD_CLUSTER_FLAG_USE_LOCK | C.SD_CLUSTER_FLAG_AUTO_VNODES,
      nrCopies: 3,
      copyPolicy: 0,
      status: C.SD_STATUS_OK,
      blockSizeShift: 22,
      defaultStore: 'plain',
      nodes,
    };
    const b = encodeClusterInfo(ci);
    expect(b.length).toBe(491568);
    expect(b[0]).toBe(0x0a);
    expect(b.readInt16LE(2)).toBe(3);
    expect(b[20]).toBe(C.SD_STATUS_OK);
    expect(b.toString('latin1', 25, 30)).toBe('plain');
    expect(b.readUInt16LE(48 + 80 + 40)).toBe(7001);
    expect(decodeClusterInfo(b)).toEqual(ci);
  });

  it('epoch logs use a stride of 48 + nodes_nr*80', () => {
    const logs = [
      { ctime: 1n, time: 2n, epoch: 2, disableRecovery: 0, nrCopies: 3, copyPolicy: 0, flags: 8, drvName: 'local', nodes },
      { ctime: 1n, time: 1n, epoch: 1, disableRecovery: 0, nrCopies: 3, copyPolicy: 0, flags: 8, drvName: 'local', nodes: nodes.slice(0, 2) },
    ];
    const b = encodeEpochLogs(logs, 4);
    expect(b.length).toBe(2 * (48 + 4 * 80));
    expect(b.readUInt32LE(48 + 320 + 16)).toBe(1);
    expect(decodeEpochLogs(b, 4)).toEqual(logs);
  });
});

describe('vdi attr', () => {
  it('66 320 bytes; value at 784', () => {
    const a = { name: 'vol', tag: '', ctime: 5n, snapId: 0, key: 'k', value: Buffer.from('v1') };
    const b = encodeVdiAttr(a);
    expect(b.length).toBe(66320);
    expect(b.readUInt32LE(524)).toBe(2);
    expect(b.toString('latin1', 784, 786)).toBe('v1');
    expect(decodeVdiAttr(b)).toEqual(a);
  });

  it('decoding garbage never throws past the buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 66320, maxLength: 66320 }), (bytes) => {
        const a = decodeVdiAttr(Buffer.from(bytes));
        expect(a.value.length).toBeLessThanOrEqual(65536);
      }),
      { numRuns: 20 },
    );
  });
});
