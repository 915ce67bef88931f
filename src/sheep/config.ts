// Persistent node state (fact sheet §10.1, §10.4): `<dir>/config` (40 bytes, written at format) and the epoch
// log `<dir>/epoch/%08u` (sd_node[] + 8-byte time). Both are replaced atomically (tmp + fsync + rename + fsync dir).
import fsp from 'node:fs/promises';
import path from 'node:path';
import { SD_NODE_SIZE } from '../proto/sheepdog/constants.js';
import { readCString, writeCString } from '../proto/sheepdog/cstring.js';
import { decodeNodes, encodeNodes, type SdNode } from '../proto/sheepdog/node.js';

export const SD_CONFIG_SIZE = 40;
export const SD_FORMAT_VERSION = 0x0006;

export interface SheepConfig {
  ctime: bigint;
  flags: number;
  copies: number;
  defaultStore: string;
  shutdown: boolean;
  copyPolicy: number;
  blockSizeShift: number;
  space: bigint;
}

export function encodeConfig(c: SheepConfig): Buffer {
  const b = Buffer.alloc(SD_CONFIG_SIZE);
  b.writeBigUInt64LE(c.ctime, 0);
  b.writeUInt16LE(c.flags, 8);
  b.writeUInt8(c.copies, 10);
  writeCString(b, 11, 16, c.defaultStore);
  b.writeUInt8(c.shutdown ? 1 : 0, 27);
  b.writeUInt8(c.copyPolicy, 28);
  b.writeUInt8(c.blockSizeShift, 29);
  b.writeUInt16LE(SD_FORMAT_VERSION, 30);
  b.writeBigUInt64LE(c.space, 32);
  return b;
}

export function decodeConfig(b: Buffer): SheepConfig {
  if (b.length < SD_CONFIG_SIZE) throw new RangeError(`config is ${b.length} bytes, want ${SD_CONFIG_SIZE}`);
  return {
    ctime: b.readBigUInt64LE(0),
    flags: b.readUInt16LE(8),
    copies: b.readUInt8(10),
    defaultStore: readCString(b, 11, 16),
    shutdown: b.readUInt8(27) !== 0,
    copyPolicy: b.readUInt8(28),
    blockSizeShift: b.readUInt8(29),
    space: b.readBigUInt64LE(32),
  };
}

/** Write a file atomically and durably. */
export async function writeFileAtomic(file: string, data: Buffer): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await fsp.open(tmp, 'w', 0o644);
  try {
    await fh.write(data, 0, data.length, 0);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  const dh = await fsp.open(path.dirname(file), 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

export interface EpochEntry {
  epoch: number;
  nodes: SdNode[];
  /** time_t seconds */
  time: bigint;
}

/** Config and epoch files of one store directory. */
export class NodeStateFiles {
  readonly configPath: string;
  readonly epochDir: string;

  constructor(readonly dir: string) {
    this.configPath = path.join(dir, 'config');
    this.epochDir = path.join(dir, 'epoch');
  }

  /** The epoch of this node's last deletion of copies (currency.ts); 0 when it never deleted one. */
  async loadPurgeEpoch(): Promise<number> {
    try {
      const b = await fsp.readFile(path.join(this.dir, 'purge_epoch'));
      return b.length >= 4 ? b.readUInt32LE(0) : 0;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
  }

  async savePurgeEpoch(epoch: number): Promise<void> {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(epoch >>> 0, 0);
    await writeFileAtomic(path.join(this.dir, 'purge_epoch'), b);
  }

  async loadConfig(): Promise<SheepConfig | null> {
    try {
      return decodeConfig(await fsp.readFile(this.configPath));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async saveConfig(c: SheepConfig): Promise<void> {
    await writeFileAtomic(this.configPath, encodeConfig(c));
  }

  async saveEpoch(e: EpochEntry): Promise<void> {
    await fsp.mkdir(this.epochDir, { recursive: true });
    const nodes = encodeNodes(e.nodes);
    const buf = Buffer.alloc(nodes.length + 8);
    nodes.copy(buf, 0);
    buf.writeBigUInt64LE(e.time, nodes.length);
    await writeFileAtomic(path.join(this.epochDir, String(e.epoch).padStart(8, '0')), buf);
  }

  async loadEpoch(epoch: number): Promise<EpochEntry | null> {
    try {
      const buf = await fsp.readFile(path.join(this.epochDir, String(epoch).padStart(8, '0')));
      const n = Math.floor((buf.length - 8) / SD_NODE_SIZE);
      return { epoch, nodes: decodeNodes(buf, n), time: buf.length >= 8 ? buf.readBigUInt64LE(buf.length - 8) : 0n };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** Every epoch number on disk, ascending. */
  async epochs(): Promise<number[]> {
    try {
      return (await fsp.readdir(this.epochDir))
        .filter((n) => /^\d{8}$/.test(n))
        .map(Number)
        .sort((a, b) => a - b);
    } catch {
      return [];
    }
  }

  /** Forget every epoch (format). */
  async clearEpochs(): Promise<void> {
    await fsp.rm(this.epochDir, { recursive: true, force: true });
    await fsp.mkdir(this.epochDir, { recursive: true });
  }
}
