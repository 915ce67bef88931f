// Node identity (§9.1): `node_id` (40 B) and `sd_node` (80 B), IPv4/IPv6 address bytes, ordering and zones.
import { SD_NODE_ID_SIZE, SD_NODE_SIZE } from './constants.js';

export interface NodeId {
  /** 16 raw address bytes: IPv4 is 12 zero bytes + 4 address bytes (network order). */
  addr: Buffer;
  port: number;
  ioAddr: Buffer;
  ioPort: number;
}

export interface SdNode {
  nid: NodeId;
  nrVnodes: number;
  zone: number;
  /** Advertised capacity in bytes. */
  space: bigint;
}

/** 16 address bytes for a textual IPv4 or IPv6 address. */
export function addrBytes(ip: string): Buffer {
  const out = Buffer.alloc(16);
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (v4) {
    for (let i = 0; i < 4; i++) {
      const n = Number(v4[i + 1]);
      if (n > 255) throw new RangeError(`bad IPv4 address ${ip}`);
      out[12 + i] = n;
    }
    return out;
  }
  if (!ip.includes(':')) throw new RangeError(`bad IP address ${ip}`);
  const [headText, tailText = ''] = ip.split('::');
  const head = headText ? headText.split(':') : [];
  const tail = tailText ? tailText.split(':') : [];
  const groups = ip.includes('::') ? [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail] : head;
  if (groups.length !== 8) throw new RangeError(`bad IPv6 address ${ip}`);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16) & 0xffff, 2 * i));
  return out;
}

/** True if the 16 address bytes are an IPv4 address (12 leading zero bytes). */
export function isIPv4(addr: Buffer): boolean {
  for (let i = 0; i < 12; i++) if (addr[i] !== 0) return false;
  return true;
}

/** Text form of 16 address bytes. */
export function addrText(addr: Buffer): string {
  if (isIPv4(addr)) return `${addr[12]}.${addr[13]}.${addr[14]}.${addr[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(addr.readUInt16BE(2 * i).toString(16));
  return groups.join(':');
}

export function makeNodeId(ip: string, port: number): NodeId {
  return { addr: addrBytes(ip), port, ioAddr: Buffer.alloc(16), ioPort: 0 };
}

/** `node_id_to_str`: `IPv4 ip:127.0.0.1 port:7000`. */
export function nodeIdToStr(nid: NodeId): string {
  return `${isIPv4(nid.addr) ? 'IPv4' : 'IPv6'} ip:${addrText(nid.addr)} port:${nid.port}`;
}

/** `host:port` form for logs and dog's node list. */
export function nodeAddr(nid: NodeId): string {
  return isIPv4(nid.addr) ? `${addrText(nid.addr)}:${nid.port}` : `[${addrText(nid.addr)}]:${nid.port}`;
}

/** Order of nodes: memcmp of the address bytes, then port. */
export function compareNodeId(a: NodeId, b: NodeId): number {
  const c = Buffer.compare(a.addr, b.addr);
  return c !== 0 ? c : a.port - b.port;
}

export function nodeIdEquals(a: NodeId, b: NodeId): boolean {
  return compareNodeId(a, b) === 0;
}

/** The 18 bytes (addr + port LE) a node's base ring hash is computed over (§9.3). */
export function nodeHashKey(nid: NodeId): Buffer {
  const b = Buffer.alloc(18);
  nid.addr.copy(b, 0, 0, 16);
  b.writeUInt16LE(nid.port, 16);
  return b;
}

/** Default zone (§9.5): the last four address bytes read as a LE u32. */
export function defaultZone(nid: NodeId): number {
  return nid.addr.readUInt32LE(12);
}

export function writeNodeId(nid: NodeId, out: Buffer, off: number): void {
  out.fill(0, off, off + SD_NODE_ID_SIZE);
  nid.addr.copy(out, off, 0, 16);
  out.writeUInt16LE(nid.port, off + 16);
  nid.ioAddr.copy(out, off + 18, 0, 16);
  out.writeUInt16LE(nid.ioPort, off + 34);
}

export function readNodeId(buf: Buffer, off: number): NodeId {
  return {
    addr: Buffer.from(buf.subarray(off, off + 16)),
    port: buf.readUInt16LE(off + 16),
    ioAddr: Buffer.from(buf.subarray(off + 18, off + 34)),
    ioPort: buf.readUInt16LE(off + 34),
  };
}

export function encodeNodeId(nid: NodeId): Buffer {
  const out = Buffer.alloc(SD_NODE_ID_SIZE);
  writeNodeId(nid, out, 0);
  return out;
}

/** Write an `sd_node` (rb_node bytes and pads zeroed). */
export function writeNode(node: SdNode, out: Buffer, off: number): void {
  out.fill(0, off, off + SD_NODE_SIZE);
  writeNodeId(node.nid, out, off + 24);
  out.writeUInt16LE(node.nrVnodes, off + 64);
  out.writeUInt32LE(node.zone >>> 0, off + 68);
  out.writeBigUInt64LE(node.space, off + 72);
}

export function readNode(buf: Buffer, off: number): SdNode {
  return {
    nid: readNodeId(buf, off + 24),
    nrVnodes: buf.readUInt16LE(off + 64),
    zone: buf.readUInt32LE(off + 68),
    space: buf.readBigUInt64LE(off + 72),
  };
}

/** Encode a node array (GET_NODE_LIST payload, epoch files). */
export function encodeNodes(nodes: readonly SdNode[]): Buffer {
  const out = Buffer.alloc(nodes.length * SD_NODE_SIZE);
  nodes.forEach((n, i) => writeNode(n, out, i * SD_NODE_SIZE));
  return out;
}

/** Decode `count` nodes (default: as many as fit). */
export function decodeNodes(buf: Buffer, count = Math.floor(buf.length / SD_NODE_SIZE)): SdNode[] {
  const out: SdNode[] = [];
  for (let i = 0; i < count && (i + 1) * SD_NODE_SIZE <= buf.length; i++) out.push(readNode(buf, i * SD_NODE_SIZE));
  return out;
}
