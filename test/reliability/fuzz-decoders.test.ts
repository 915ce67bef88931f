// Protocol fuzzing, in process (issue 8, test 7): every decoder is fed mutated golden inputs. A decoder may
// reject input with its protocol error; any other exception is a crash, an execution over 1 s a hang.
import { describe, expect, it } from 'vitest';
import { fuzz, type FuzzReport, type FuzzTarget } from '../../src/drill/fuzz.js';
import * as SD from '../../src/proto/sheepdog/index.js';
import * as NBD from '../../src/proto/nbd/index.js';
import { FrameError, PduFramer } from '../../src/proto/iscsi/framer.js';
import { PduError, decodePdu, encodeBhs } from '../../src/proto/iscsi/pdu.js';
import { TextError, parseText } from '../../src/proto/iscsi/text.js';
import { parseCdb } from '../../src/proto/scsi/cdb.js';
import * as PAGES from '../../src/proto/scsi/pages.js';
import { decodeSense } from '../../src/proto/scsi/sense.js';
import { reliabilitySeconds, reportReliability } from '../helpers/reliability.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
// Golden tgtd request headers (shared/notes/tgtd-transcript.md §2) as seeds.
const TGT_SEEDS = [
  '011201000000000000000000000200000000000000000000000000000000000000000000010000000000000000000000',
  '01022000000000000000000038124000000000005b9ce480000000000000000000000000000000000000000000000000',
  '01012500000000000000000000100000010000005b9ce400000000000000000001000000000000000000100000000000',
  '01012700000000000000000000100000040000005c9ce400040000005b9ce400010000000000000000f03f0000000000',
  '01032100000000000000000004000000000000005b9ce480000000000000000001000000000000003812000000000000',
  '0013000000000000000000000000000000000000000000005b9ce4000000000000000000010000000000000000000000',
].map(hex);

const isRange = (e: unknown): boolean => e instanceof RangeError;
const isSdReject = (e: unknown): boolean => e instanceof SD.SdProtocolError || e instanceof RangeError;

function withPayloads(): Buffer[] {
  const lock = Buffer.concat([TGT_SEEDS[0]!, Buffer.alloc(512)]);
  lock.write('cap', 48);
  const create = Buffer.concat([TGT_SEEDS[2]!.subarray(0, 48), Buffer.alloc(64, 0x11)]);
  create.writeUInt32LE(64, 12);
  return [...TGT_SEEDS, lock, create, Buffer.concat([TGT_SEEDS[1]!, TGT_SEEDS[5]!])];
}


// Golden NBD bytes, built from the spec tables (proto.md), not from our encoder: client flags, options
// (IHAVEOPT, GO with a name and two info requests, LIST, SET_META_CONTEXT), requests (READ, WRITE + payload,
// FLUSH, TRIM, BLOCK_STATUS, DISC), and the server side (greeting, option replies, simple and structured replies).
const IHAVEOPT = '49484156454f5054';
const NBD_CLIENT_SEEDS = [
  '00000003' + IHAVEOPT + '00000007' + '00000010' + '00000006' + '6578706f7274' + '0002' + '0003' + '0000',
  '00000001' + IHAVEOPT + '00000003' + '00000000',
  '00000003' + IHAVEOPT + '0000000a' + '00000021' + '00000000' + '00000001' + '00000015' + Buffer.from('base:allocation').toString('hex') + '000000000000',
  '25609513' + '0000' + '0000' + '0000000000000001' + '0000000000001000' + '00001000',
  '25609513' + '0001' + '0001' + '0000000000000002' + '0000000000000200' + '00000010' + 'aa'.repeat(16),
  '25609513' + '0000' + '0003' + '0000000000000003' + '0000000000000000' + '00000000' + '25609513' + '0000' + '0002' + '0000000000000004' + '0000000000000000' + '00000000',
  '25609513' + '0000' + '0004' + '0000000000000005' + '0000000000002000' + '00001000',
  '25609513' + '0000' + '0007' + '0000000000000006' + '0000000000000000' + '00100000',
].map(hex);
const NBD_SERVER_SEEDS = [
  Buffer.from('NBDMAGIC').toString('hex') + IHAVEOPT + '0003',
  '0003e889045565a9' + '00000007' + '00000003' + '0000000c' + '0000' + '0000000040000000' + '0003',
  '0003e889045565a9' + '00000003' + '00000002' + '00000008' + '00000004' + '766f6c31',
  '0003e889045565a9' + '0000000a' + '00000004' + '00000013' + '00000001' + Buffer.from('base:allocation').toString('hex'),
  '67446698' + '00000000' + '0000000000000001',
  '668e33ef' + '0001' + '0001' + '0000000000000002' + '0000000c' + '0000000000000000' + 'deadbeef',
  '668e33ef' + '0001' + '0005' + '0000000000000003' + '00000014' + '00000001' + '00001000' + '00000003' + '00002000' + '00000000',
  '668e33ef' + '0001' + '8001' + '0000000000000004' + '0000000a' + '00000005' + '0004' + '6f6f7073',
].map(hex);
const NBD_LIMITS = { maxPayload: 1 << 20, maxOptionLength: 1 << 16, maxOptionReplyLength: 1 << 16, maxReplyPayload: 1 << 20 };
const isNbdReject = (e: unknown): boolean => e instanceof NBD.NbdProtocolError || e instanceof RangeError;

// Golden iSCSI PDUs (RFC 7143 §11): Login Request with text keys, SCSI Command (READ(10)) and WRITE(16)
// with immediate data, NOP-Out, Text Request (SendTargets), Logout, Task Management, Data-Out.
function bhs(fields: Array<[number, string]>, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(48);
  for (const [off, h] of fields) hex(h).copy(b, off);
  b.writeUIntBE(data.length, 5, 3);
  const pad = (4 - (data.length % 4)) % 4;
  return Buffer.concat([b, data, Buffer.alloc(pad)]);
}
const kv = (s: string): Buffer => Buffer.from(s.split(' ').join('\0') + '\0');
const ISCSI_SEEDS = [
  bhs([[0, '4387'], [8, '00023d0000000000'], [16, '00000001'], [20, '0000'], [24, '00000001'], [28, '00000000']], kv('InitiatorName=iqn.2026-11.fuzz:i SessionType=Normal TargetName=iqn.2026-11.fuzz:t AuthMethod=None')),
  bhs([[0, '01c1'], [8, '0000000000000000'], [16, '00000002'], [20, '00001000'], [24, '00000002'], [28, '00000002'], [32, '28000000001000000800']]),
  bhs([[0, '01a1'], [8, '0000000000000000'], [16, '00000003'], [20, '00000200'], [24, '00000003'], [28, '00000003'], [32, '8a000000000000000010000000010000']], Buffer.alloc(512, 0x5a)),
  bhs([[0, '4080'], [16, 'ffffffff'], [20, 'ffffffff'], [24, '00000004']]),
  bhs([[0, '0480'], [16, '00000005'], [20, 'ffffffff'], [24, '00000005']], kv('SendTargets=All')),
  bhs([[0, '4680'], [16, '00000006'], [24, '00000006']]),
  bhs([[0, '0281'], [16, '00000007'], [20, '00000002'], [24, '00000007']]),
  bhs([[0, '0580'], [16, '00000003'], [20, '00000010'], [36, '00000000'], [40, '00000000']], Buffer.alloc(64, 1)),
];
const isIscsiReject = (e: unknown): boolean => e instanceof FrameError || e instanceof PduError || e instanceof TextError || e instanceof RangeError;

// Golden CDBs (SBC-4/SPC-5) and SCSI data-in payloads the initiator parses.
const CDB_SEEDS = [
  '00000000000000000000000000000000', '12000000ff0000000000000000000000', '1201800100ff00000000000000000000',
  '28000000100000000800000000000000', '2a080000100000000800000000000000', '88000000000000001000000000080000',
  '8a080000000000001000000000080000', '9e100000000000000000000000200000', '35000000000000000000000000000000',
  '91000000000000000000000000000000', '93080000000000001000000000080000', '42000000000000001800000000000000',
  'a0000000000000000100000000000000', '5e000000000000000100000000000000', '5f000000000000000018000000000000',
  '1a003f00ff0000000000000000000000', '5a003f0000000000ff00000000000000', 'a30a0000000001000000000000000000',
  '89000000000000001000000000010000', '03000000fc0000000000000000000000', '8f000000000000001000000000080000',
].map(hex);
const PAGE_SEEDS = [
  '0000051f320000004c494f2d4f524720', // standard INQUIRY
  '0080000831323334353637380000', '0083001801030008600140500000000101140004000000010106', '00b0003c0001000000000800000000000000000000010000',
  '00b200040000c00000', '0000000000001fff0000020000000000000000000000000000000000000000', '000000100000000000000000000000000000000000000000',
  '0000001c0000000000000000000010000000000000000000000000000000000000000000', '000000080000000000000000000000000000000000000001',
  '700005000000000a00000000240000000000', '720600002900000000',
].map(hex);

let inodeCalls = 0;

const targets: FuzzTarget[] = [
  {
    name: 'sheepdog-request-stream',
    seeds: withPayloads(),
    isExpectedError: isSdReject,
    run(input) {
      const d = new SD.SdRequestDecoder({ maxPayload: 1 << 20 });
      const cut = input.length >> 1;
      d.push(input.subarray(0, cut));
      for (let m = d.next(); m; m = d.next()) SD.encodeRequestHeader(m.header);
      d.push(input.subarray(cut));
      for (let m = d.next(); m; m = d.next()) {
        const again = SD.decodeRequestHeader(SD.encodeRequestHeader(m.header));
        if (again.opcode !== m.header.opcode || again.dataLength !== m.header.dataLength) throw new Error('unstable header');
        if (m.payload && m.payload.length !== m.header.dataLength) throw new Error('payload length mismatch');
      }
    },
  },
  {
    name: 'sheepdog-response-stream',
    seeds: [
      hex('0012000001000000000000000000000000000000000000005b9ce4000000000001160000000000000000000000000000'),
      Buffer.concat([hex('000200000100000000000000040000000000000000000000000000000000000000000000000000000000000000000000'), Buffer.from('data')]),
    ],
    isExpectedError: isSdReject,
    run(input) {
      const d = new SD.SdResponseDecoder({ maxPayload: 1 << 20 });
      d.push(input);
      for (let m = d.next(); m; m = d.next()) SD.encodeResponseHeader(m.header);
    },
  },
  {
    name: 'sheepdog-inode',
    seeds: [SD.encodeInodeHeader({ ...SD.emptyInode(), name: 'vol', vdiId: 5, vdiSize: 1n << 30n, blockSizeShift: 22, nrCopies: 3 })],
    isExpectedError: isRange,
    run(input) {
      // Header and index decoding of any prefix; the full decode allocates 12 MiB, so it runs on a sample.
      SD.encodeInodeHeader(SD.decodeInodeHeader(input));
      if (++inodeCalls % 1000 === 0) SD.decodeInode(input);
    },
  },
  {
    name: 'sheepdog-structs',
    seeds: [
      SD.encodeNodes([{ nid: SD.makeNodeId('127.0.0.1', 7000), nrVnodes: 128, zone: 1, space: 1n << 30n }]),
      SD.encodeVdiStates([
        {
          vid: 1,
          nrCopies: 3,
          snapshot: false,
          deleted: false,
          copyPolicy: 0,
          blockSizeShift: 22,
          parentVid: 0,
          lockState: SD.LOCK_STATE_SHARED,
          lockOwner: SD.makeNodeId('127.0.0.1', 7000),
          participants: [{ nid: SD.makeNodeId('127.0.0.1', 7001), state: SD.SHARED_LOCK_STATE_MODIFIED }],
        },
      ]),
    ],
    isExpectedError: isRange,
    run(input) {
      SD.decodeNodes(input);
      SD.decodeVdiStates(input);
      if (input.length >= 48) {
        SD.decodeClusterInfo(input);
        SD.decodeEpochLogs(input, 2);
      }
      if (input.length >= 784) SD.decodeVdiAttr(input);
    },
  },
  {
    name: 'nbd-server-decoder',
    seeds: NBD_CLIENT_SEEDS,
    isExpectedError: isNbdReject,
    run(input) {
      // The first request seeds start in transmission; the rest in the handshake, as a server sees them.
      const d = new NBD.NbdServerDecoder(NBD_LIMITS);
      if (input.readUInt32BE(0) === NBD.NBD_REQUEST_MAGIC) d.startTransmission();
      d.push(input);
      for (let f = d.next(); f; f = d.next()) {
        if (f.kind === 'option') {
          if (f.option === NBD.NBD_OPT_GO || f.option === NBD.NBD_OPT_INFO) NBD.decodeInfoRequest(f.data);
          else if (f.option === NBD.NBD_OPT_SET_META_CONTEXT || f.option === NBD.NBD_OPT_LIST_META_CONTEXT) NBD.decodeMetaContextRequest(f.data);
        }
      }
    },
  },
  {
    name: 'nbd-client-decoder',
    seeds: NBD_SERVER_SEEDS,
    isExpectedError: isNbdReject,
    run(input) {
      const d = new NBD.NbdClientDecoder(NBD_LIMITS, (cookie) => (cookie === 1n ? 16 : 0));
      const magic = input.length >= 4 ? input.readUInt32BE(0) : 0;
      if (magic === NBD.NBD_SIMPLE_REPLY_MAGIC || magic === NBD.NBD_STRUCTURED_REPLY_MAGIC) d.startTransmission();
      else if (input.length >= 8 && input.readUInt32BE(4) === 0x45565a9) d.reset('options');
      d.push(input);
      for (let f = d.next(); f; f = d.next()) {
        if (f.kind === 'optionReply' && f.data.length > 0) {
          if (f.type === NBD.NBD_REP_SERVER) NBD.decodeRepServer(f.data);
          else if (f.type === NBD.NBD_REP_INFO) NBD.decodeInfoReply(f.data);
          else if (f.type === NBD.NBD_REP_META_CONTEXT) NBD.decodeRepMetaContext(f.data);
        } else if (f.kind === 'structuredChunk') NBD.decodeStructuredChunk(f.type, f.payload);
      }
    },
  },
  {
    name: 'iscsi-pdu-stream',
    seeds: ISCSI_SEEDS,
    isExpectedError: isIscsiReject,
    run(input) {
      const fr = new PduFramer({ maxDataSegmentLength: 1 << 16, headerDigest: (input[47] ?? 0) === 0xff });
      fr.push(input.subarray(0, input.length >> 1));
      fr.push(input.subarray(input.length >> 1));
      for (let raw = fr.next(); raw; raw = fr.next()) {
        const pdu = decodePdu(raw.bhs, raw.ahs, raw.data);
        encodeBhs(pdu);
        if (pdu.kind === 'login-req' || pdu.kind === 'text-req') parseText(pdu.data);
        if (pdu.kind === 'scsi-cmd') parseCdb(pdu.cdb);
      }
    },
  },
  {
    name: 'scsi-cdb',
    seeds: CDB_SEEDS,
    isExpectedError: isRange,
    run(input) {
      parseCdb(input);
      parseCdb(input.subarray(0, 6));
    },
  },
  {
    name: 'scsi-data-in',
    seeds: PAGE_SEEDS,
    isExpectedError: isRange,
    run(input) {
      // Initiator-side parsers of target answers: each gets the same bytes; a RangeError is a clean reject.
      const tryAll = [
        PAGES.decodeStandardInquiry, PAGES.decodeUnitSerial, PAGES.decodeDeviceIdentification, PAGES.decodeBlockLimits,
        PAGES.decodeLogicalBlockProvisioning, PAGES.decodeCapacity16, PAGES.decodeTargetPortGroups, PAGES.decodePrReadKeys,
        PAGES.decodePrReadReservation, PAGES.decodeLbaStatus, PAGES.decodeReportLuns, PAGES.decodeModeSense6Header, decodeSense,
      ] as Array<(b: Buffer) => unknown>;
      let rejected: unknown = null;
      for (const f of tryAll) {
        try {
          f(input);
        } catch (e) {
          if (!(e instanceof RangeError)) throw e;
          rejected = e;
        }
      }
      if (rejected) throw rejected;
    },
  },
];


describe('in-process decoder fuzzing', () => {
  it('no decoder crashes or hangs on mutated golden inputs', () => {
    const seconds = reliabilitySeconds(0); // 0 = fixed iteration count in CI
    const reports: FuzzReport[] = [];
    const seed = Number(process.env.SHEEPFOLD_FUZZ_SEED ?? Date.now() % 1_000_000);
    for (const t of targets) {
      if (seconds > 0) {
        const end = Date.now() + (seconds * 1000) / targets.length;
        const runs: FuzzReport[] = [];
        for (let round = 0; Date.now() < end; round++) runs.push(fuzz(t, { iterations: 20_000, seed: seed + round }));
        const first = runs[0];
        const agg: FuzzReport | undefined = first && {
          ...first,
          execs: runs.reduce((a, r) => a + r.execs, 0),
          crashes: runs.reduce((a, r) => a + r.crashes, 0),
          hangs: runs.reduce((a, r) => a + r.hangs, 0),
          firstCrash: runs.find((r) => r.firstCrash)?.firstCrash,
        };
        if (agg) reports.push(agg);
      } else reports.push(fuzz(t, { iterations: 30_000, seed }));
    }
    const execs = reports.reduce((a, r) => a + r.execs, 0);
    const crashes = reports.reduce((a, r) => a + r.crashes, 0);
    const hangs = reports.reduce((a, r) => a + r.hangs, 0);
    reportReliability(
      'fuzz-decoders',
      {
        targets: reports.length,
        execs,
        crashes,
        hangs,
        execs_per_s: Math.round(reports.reduce((a, r) => a + r.execsPerSec, 0) / reports.length),
        seed,
      },
      reports,
    );
    for (const r of reports) expect(r.firstCrash, `${r.name} (seed ${r.seed})`).toBeUndefined();
    expect(crashes).toBe(0);
    expect(hangs).toBe(0);
  });
});
