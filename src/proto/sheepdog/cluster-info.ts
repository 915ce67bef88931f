// `struct cluster_info` (CLUSTER_INFO reply, 491 568 B), `struct epoch_log` (STAT_CLUSTER entries), the
// recovery state (STAT_RECOVERY) and recovery throttling (GET/SET_RECOVERY) structs. Fact sheet §10.2, §2.4.
import {
  SD_CLUSTER_INFO_HEADER_SIZE,
  SD_CLUSTER_INFO_SIZE,
  SD_EPOCH_LOG_HEADER_SIZE,
  SD_MAX_NODES,
  SD_NODE_SIZE,
  SD_RECOVERY_STATE_SIZE,
  SD_RECOVERY_THROTTLING_SIZE,
} from './constants.js';
import { readCString, writeCString } from './cstring.js';
import { readNode, writeNode, type SdNode } from './node.js';

export interface ClusterInfo {
  protoVer: number;
  disableRecovery: number;
  epoch: number;
  ctime: bigint;
  flags: number;
  nrCopies: number;
  copyPolicy: number;
  /** SD_STATUS_* */
  status: number;
  blockSizeShift: number;
  defaultStore: string;
  nodes: SdNode[];
}

export function encodeClusterInfo(ci: ClusterInfo, length: number = SD_CLUSTER_INFO_SIZE): Buffer {
  if (ci.nodes.length > SD_MAX_NODES) throw new RangeError('too many nodes');
  const out = Buffer.alloc(Math.max(length, SD_CLUSTER_INFO_HEADER_SIZE + ci.nodes.length * SD_NODE_SIZE));
  out.writeUInt8(ci.protoVer, 0);
  out.writeUInt8(ci.disableRecovery, 1);
  out.writeInt16LE(ci.nodes.length, 2);
  out.writeUInt32LE(ci.epoch >>> 0, 4);
  out.writeBigUInt64LE(ci.ctime, 8);
  out.writeUInt16LE(ci.flags, 16);
  out.writeUInt8(ci.nrCopies, 18);
  out.writeUInt8(ci.copyPolicy, 19);
  out.writeUInt8(ci.status, 20);
  out.writeUInt8(ci.blockSizeShift, 21);
  writeCString(out, 25, 16, ci.defaultStore);
  ci.nodes.forEach((n, i) => writeNode(n, out, SD_CLUSTER_INFO_HEADER_SIZE + i * SD_NODE_SIZE));
  return out;
}

export function decodeClusterInfo(buf: Buffer): ClusterInfo {
  const nr = Math.max(0, Math.min(buf.readInt16LE(2), SD_MAX_NODES));
  const nodes: SdNode[] = [];
  for (let i = 0; i < nr && SD_CLUSTER_INFO_HEADER_SIZE + (i + 1) * SD_NODE_SIZE <= buf.length; i++) {
    nodes.push(readNode(buf, SD_CLUSTER_INFO_HEADER_SIZE + i * SD_NODE_SIZE));
  }
  return {
    protoVer: buf.readUInt8(0),
    disableRecovery: buf.readUInt8(1),
    epoch: buf.readUInt32LE(4),
    ctime: buf.readBigUInt64LE(8),
    flags: buf.readUInt16LE(16),
    nrCopies: buf.readUInt8(18),
    copyPolicy: buf.readUInt8(19),
    status: buf.readUInt8(20),
    blockSizeShift: buf.readUInt8(21),
    defaultStore: readCString(buf, 25, 16),
    nodes,
  };
}

export interface EpochLog {
  ctime: bigint;
  /** time_t seconds when the epoch started */
  time: bigint;
  epoch: number;
  disableRecovery: number;
  nrCopies: number;
  copyPolicy: number;
  flags: number;
  drvName: string;
  nodes: SdNode[];
}

/** Stride of one epoch log entry in a STAT_CLUSTER reply for a given nodes_nr. */
export function epochLogStride(nodesNr: number): number {
  return SD_EPOCH_LOG_HEADER_SIZE + nodesNr * SD_NODE_SIZE;
}

export function writeEpochLog(log: EpochLog, out: Buffer, off: number, nodesNr: number): void {
  out.fill(0, off, off + epochLogStride(nodesNr));
  out.writeBigUInt64LE(log.ctime, off);
  out.writeBigUInt64LE(log.time, off + 8);
  out.writeUInt32LE(log.epoch >>> 0, off + 16);
  out.writeUInt32LE(log.nodes.length, off + 20);
  out.writeUInt8(log.disableRecovery, off + 24);
  out.writeUInt8(log.nrCopies, off + 25);
  out.writeUInt8(log.copyPolicy, off + 26);
  out.writeUInt16LE(log.flags, off + 30);
  writeCString(out, off + 32, 16, log.drvName);
  log.nodes.slice(0, nodesNr).forEach((n, i) => writeNode(n, out, off + SD_EPOCH_LOG_HEADER_SIZE + i * SD_NODE_SIZE));
}

export function readEpochLog(buf: Buffer, off: number, nodesNr: number): EpochLog {
  const nr = Math.min(buf.readUInt32LE(off + 20), nodesNr);
  const nodes: SdNode[] = [];
  for (let i = 0; i < nr; i++) nodes.push(readNode(buf, off + SD_EPOCH_LOG_HEADER_SIZE + i * SD_NODE_SIZE));
  return {
    ctime: buf.readBigUInt64LE(off),
    time: buf.readBigUInt64LE(off + 8),
    epoch: buf.readUInt32LE(off + 16),
    disableRecovery: buf.readUInt8(off + 24),
    nrCopies: buf.readUInt8(off + 25),
    copyPolicy: buf.readUInt8(off + 26),
    flags: buf.readUInt16LE(off + 30),
    drvName: readCString(buf, off + 32, 16),
    nodes,
  };
}

/** Encode epoch logs (newest first) for a STAT_CLUSTER reply with room for `nodesNr` nodes each. */
export function encodeEpochLogs(logs: readonly EpochLog[], nodesNr: number): Buffer {
  const stride = epochLogStride(nodesNr);
  const out = Buffer.alloc(stride * logs.length);
  logs.forEach((l, i) => writeEpochLog(l, out, i * stride, nodesNr));
  return out;
}

export function decodeEpochLogs(buf: Buffer, nodesNr: number): EpochLog[] {
  const stride = epochLogStride(nodesNr);
  const out: EpochLog[] = [];
  for (let off = 0; off + stride <= buf.length; off += stride) out.push(readEpochLog(buf, off, nodesNr));
  return out;
}

export interface RecoveryState {
  inRecovery: boolean;
  /** 0 preparing list, 1 recovering, 2 notifying */
  state: number;
  nrFinished: bigint;
  nrTotal: bigint;
}

export function encodeRecoveryState(s: RecoveryState): Buffer {
  const out = Buffer.alloc(SD_RECOVERY_STATE_SIZE);
  out.writeUInt8(s.inRecovery ? 1 : 0, 0);
  out.writeUInt32LE(s.state >>> 0, 4);
  out.writeBigUInt64LE(s.nrFinished, 8);
  out.writeBigUInt64LE(s.nrTotal, 16);
  return out;
}

export function decodeRecoveryState(buf: Buffer): RecoveryState {
  return {
    inRecovery: buf.readUInt8(0) !== 0,
    state: buf.readUInt32LE(4),
    nrFinished: buf.readBigUInt64LE(8),
    nrTotal: buf.readBigUInt64LE(16),
  };
}

export interface RecoveryThrottling {
  maxExecCount: number;
  queueWorkIntervalMs: bigint;
  throttling: boolean;
}

export function encodeRecoveryThrottling(t: RecoveryThrottling): Buffer {
  const out = Buffer.alloc(SD_RECOVERY_THROTTLING_SIZE);
  out.writeUInt32LE(t.maxExecCount >>> 0, 0);
  out.writeBigUInt64LE(t.queueWorkIntervalMs, 8);
  out.writeUInt8(t.throttling ? 1 : 0, 16);
  return out;
}

export function decodeRecoveryThrottling(buf: Buffer): RecoveryThrottling {
  return {
    maxExecCount: buf.readUInt32LE(0),
    queueWorkIntervalMs: buf.readBigUInt64LE(8),
    throttling: buf.readUInt8(16) !== 0,
  };
}
