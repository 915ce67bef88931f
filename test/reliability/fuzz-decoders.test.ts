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
import { CDB_SEEDS, ISCSI_SEEDS, NBD_CLIENT_SEEDS, NBD_LIMITS, NBD_SERVER_SEEDS, PAGE_SEEDS, TGT_SEEDS, hex } from './seeds.js';

const isRange = (e: unknown): boolean => e instanceof RangeError;
const isSdReject = (e: unknown): boolean => e instanceof SD.SdProtocolError || e instanceof RangeError;

function withPayloads(): Buffer[] {
  const lock = Buffer.concat([TGT_SEEDS[0]!, Buffer.alloc(512)]);
  lock.write('cap', 48);
  const create = Buffer.concat([TGT_SEEDS[2]!.subarray(0, 48), Buffer.alloc(64, 0x11)]);
  create.writeUInt32LE(64, 12);
  return [...TGT_SEEDS, lock, create, Buffer.concat([TGT_SEEDS[1]!, TGT_SEEDS[5]!])];
}


const isNbdReject = (e: unknown): boolean => e instanceof NBD.NbdProtocolError || e instanceof RangeError;
const isIscsiReject = (e: unknown): boolean => e instanceof FrameError || e instanceof PduError || e instanceof TextError || e instanceof RangeError;

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
