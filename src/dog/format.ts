// Text formats dog prints (sheepdog dog/common.c, dog/vdi.c): sizes as "%.1f MB"/"%.0f GB", local times,
// printf-style padding, redundancy "N" or "D:P", node addresses. Kept here so every command prints alike.
import { addrText, nodeAddr, type NodeId } from '../proto/sheepdog/index.js';

const UNITS = ['MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'] as const;

/** dog's strnumber(): bytes in MB and up, one decimal below 10 ("4.0 MB", "10 GB"); raw = plain integer. */
export function strnumber(bytes: bigint | number, raw = false): string {
  if (raw) return BigInt(bytes).toString();
  let size = Number(bytes) / (1024 * 1024);
  let i = 0;
  while (i < UNITS.length - 1 && size >= 1024) {
    i++;
    size /= 1024;
  }
  return size >= 10 ? `${size.toFixed(0)} ${UNITS[i]}` : `${size.toFixed(1)} ${UNITS[i]}`;
}

/** Left-pad (right-align) to width, like %Ns. */
export function rpad(s: string | number, width: number): string {
  return String(s).padStart(width);
}

/** Right-pad (left-align) to width, like %-Ns. */
export function lpad(s: string | number, width: number): string {
  return String(s).padEnd(width);
}

const two = (n: number): string => String(n).padStart(2, '0');

/** strftime("%Y-%m-%d %H:%M") in local time of seconds since the epoch. */
export function dateMinutes(sec: number): string {
  const d = new Date(sec * 1000);
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** strftime("%Y-%m-%d %H:%M:%S") in local time. */
export function dateSeconds(sec: number): string {
  const d = new Date(sec * 1000);
  return `${dateMinutes(sec)}:${two(d.getSeconds())}`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** C ctime() without the trailing newline: "Sun Nov 22 05:27:16 2026". */
export function ctimeText(sec: number): string {
  const d = new Date(sec * 1000);
  const day = String(d.getDate()).padStart(2, ' ');
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${day} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${d.getFullYear()}`;
}

/** "3", or "4:2" for an erasure-coded policy ((d/2)<<4 | p). */
export function redundancy(copies: number, policy: number): string {
  if (policy === 0) return String(copies);
  return `${(policy >> 4) * 2}:${policy & 0x0f}`;
}

/** dog's addr_to_str: "127.0.0.1:7000". */
export function addrToStr(nid: NodeId): string {
  return nodeAddr(nid);
}

/** Address text only. */
export function hostOf(nid: NodeId): string {
  return addrText(nid.addr);
}

/** JSON.stringify with bigints as numbers when safe, else decimal strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
    if (Buffer.isBuffer(v)) return v.toString('hex');
    return v;
  });
}

/** 16 hex digits of an oid. */
export function oid16(oid: bigint): string {
  return oid.toString(16).padStart(16, '0');
}
