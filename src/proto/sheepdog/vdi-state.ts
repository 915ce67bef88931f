// `struct vdi_state` (§6.5), 1428 bytes: one GET_VDI_COPIES entry or lock-state checkpoint.
import { SD_MAX_COPIES, SD_NODE_ID_SIZE, SD_VDI_STATE_SIZE } from './constants.js';
import { readNodeId, writeNodeId, type NodeId } from './node.js';

export interface VdiStateParticipant {
  nid: NodeId;
  /** SHARED_LOCK_STATE_MODIFIED / SHARED / INVALIDATED */
  state: number;
}

export interface VdiState {
  vid: number;
  nrCopies: number;
  snapshot: boolean;
  deleted: boolean;
  copyPolicy: number;
  blockSizeShift: number;
  parentVid: number;
  /** LOCK_STATE_* */
  lockState: number;
  lockOwner: NodeId;
  participants: VdiStateParticipant[];
}

const OFF_PARTICIPANT_STATES = 64;
const OFF_PARTICIPANTS = 188;

export function writeVdiState(s: VdiState, out: Buffer, off: number): void {
  if (s.participants.length > SD_MAX_COPIES) throw new RangeError('too many lock participants');
  out.fill(0, off, off + SD_VDI_STATE_SIZE);
  out.writeUInt32LE(s.vid >>> 0, off);
  out.writeUInt8(s.nrCopies, off + 4);
  out.writeUInt8(s.snapshot ? 1 : 0, off + 5);
  out.writeUInt8(s.deleted ? 1 : 0, off + 6);
  out.writeUInt8(s.copyPolicy, off + 7);
  out.writeUInt8(s.blockSizeShift, off + 8);
  out.writeUInt32LE(s.parentVid >>> 0, off + 12);
  out.writeUInt32LE(s.lockState >>> 0, off + 16);
  writeNodeId(s.lockOwner, out, off + 20);
  out.writeUInt32LE(s.participants.length, off + 60);
  s.participants.forEach((p, i) => {
    out.writeUInt32LE(p.state >>> 0, off + OFF_PARTICIPANT_STATES + 4 * i);
    writeNodeId(p.nid, out, off + OFF_PARTICIPANTS + SD_NODE_ID_SIZE * i);
  });
}

export function readVdiState(buf: Buffer, off: number): VdiState {
  const n = Math.min(buf.readUInt32LE(off + 60), SD_MAX_COPIES);
  const participants: VdiStateParticipant[] = [];
  for (let i = 0; i < n; i++) {
    participants.push({
      state: buf.readUInt32LE(off + OFF_PARTICIPANT_STATES + 4 * i),
      nid: readNodeId(buf, off + OFF_PARTICIPANTS + SD_NODE_ID_SIZE * i),
    });
  }
  return {
    vid: buf.readUInt32LE(off),
    nrCopies: buf.readUInt8(off + 4),
    snapshot: buf.readUInt8(off + 5) !== 0,
    deleted: buf.readUInt8(off + 6) !== 0,
    copyPolicy: buf.readUInt8(off + 7),
    blockSizeShift: buf.readUInt8(off + 8),
    parentVid: buf.readUInt32LE(off + 12),
    lockState: buf.readUInt32LE(off + 16),
    lockOwner: readNodeId(buf, off + 20),
    participants,
  };
}

export function encodeVdiStates(states: readonly VdiState[]): Buffer {
  const out = Buffer.alloc(states.length * SD_VDI_STATE_SIZE);
  states.forEach((s, i) => writeVdiState(s, out, i * SD_VDI_STATE_SIZE));
  return out;
}

export function decodeVdiStates(buf: Buffer): VdiState[] {
  const out: VdiState[] = [];
  for (let off = 0; off + SD_VDI_STATE_SIZE <= buf.length; off += SD_VDI_STATE_SIZE) out.push(readVdiState(buf, off));
  return out;
}
