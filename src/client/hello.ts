// The client half of Sheepfold's target identity (docs/fencing.md §3): every connection a target's client opens
// (first connect, reconnect, failover to another gateway, pool growth) says HELLO{target id, incarnation}
// before any other request, so the gateway attributes its locks and object I/O to the target, not to itself.
// A sheep that does not know the op (sheepdog) answers INVALID_PARMS: the connection then goes on without one.
import os from 'node:os';
import { createHash, randomInt } from 'node:crypto';
import { SD_FLAG_CMD_WRITE, SD_RES_BUFFER_SMALL, SD_RES_INVALID_PARMS, SD_RES_SUCCESS, SD_RES_VER_MISMATCH, resultName } from '../proto/sheepdog/constants.js';
import { emptyReqArgs, makeRequest } from '../proto/sheepdog/header.js';
import { vidToVdiOid } from '../proto/sheepdog/oid.js';
import {
  SF_OP_BREAK_LOCK,
  SF_OP_HELLO,
  SF_OP_TARGET_LOCKS,
  SF_TARGET_ID_MAX,
  SF_TARGET_LOCK_SIZE,
  checkTargetId,
  decodeTargetLocks,
  encodeHello,
  makeIncarnation,
  type Hello,
  type TargetLockEntry,
} from '../proto/sheepdog/target-id.js';
import type { SdRequest, SdResponse } from '../proto/sheepdog/header.js';
import { SheepNetError } from './errors.js';

export type { Hello } from '../proto/sheepdog/target-id.js';

/** This process's incarnation: fixed at load time, newer than every earlier start of the same target. */
export const PROCESS_INCARNATION = makeIncarnation(Date.now(), randomInt(0x100000) / 0x100000);

/** A HELLO for `targetId` with this process's incarnation. */
export function helloFor(targetId: string): Hello {
  return { targetId: checkTargetId(targetId), incarnation: PROCESS_INCARNATION };
}

/**
 * The default target id when none is configured: the host name plus a digest of what makes this target the
 * same target after a restart (its listen addresses and exports), at most 64 bytes.
 */
export function defaultTargetId(parts: readonly string[], host: string = os.hostname()): string {
  const digest = createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 12);
  const room = SF_TARGET_ID_MAX - digest.length - 1;
  const h = Buffer.from(host.replace(/[^\x21-\x7e]/g, '_'), 'utf8').subarray(0, room).toString('utf8');
  return `${h || 'target'}-${digest}`;
}

/** What HELLO needs of a fresh connection (a SheepConnection): one request, answered or timed out. */
export interface HelloChannel {
  readonly label: string;
  send(req: SdRequest, payload: Buffer | null, timeoutMs: number): Promise<{ rsp: SdResponse }>;
}

/** What the target-lock operations need of a client (a SheepClient): a call that accepts the listed results. */
export interface LockOpsCaller {
  call(req: SdRequest, opts: { ok: number[] }): Promise<{ rsp: SdResponse; data: Buffer | null }>;
}

/**
 * Say HELLO on a fresh connection. Resolves true when bound, false when the sheep does not support it;
 * rejects (SheepNetError EPROTO) when the sheep refuses it otherwise, so the caller drops the connection.
 */
export async function sayHello(conn: HelloChannel, hello: Hello, timeoutMs: number): Promise<boolean> {
  const payload = encodeHello(hello);
  const r = await conn.send(makeRequest(SF_OP_HELLO, emptyReqArgs('obj'), { flags: SD_FLAG_CMD_WRITE, dataLength: payload.length }), payload, timeoutMs);
  const res = r.rsp.result;
  if (res === SD_RES_SUCCESS) return true;
  if (res === SD_RES_INVALID_PARMS || res === SD_RES_VER_MISMATCH) return false;
  throw new SheepNetError('EPROTO', conn.label, `HELLO for target ${hello.targetId} refused by ${conn.label}: ${resultName(res)}`);
}

/**
 * SF_OP_TARGET_LOCKS: the gateway's (VDI, target) lock records; null when the sheep has no target identities.
 */
export async function targetLocks(client: LockOpsCaller): Promise<TargetLockEntry[] | null> {
  for (let n = 64; ; n *= 2) {
    const r = await client.call(makeRequest(SF_OP_TARGET_LOCKS, emptyReqArgs('obj'), { dataLength: n * SF_TARGET_LOCK_SIZE }), {
      ok: [SD_RES_BUFFER_SMALL, SD_RES_INVALID_PARMS, SD_RES_VER_MISMATCH],
    });
    if (r.rsp.result === SD_RES_BUFFER_SMALL) continue;
    if (r.rsp.result !== SD_RES_SUCCESS) return null;
    return decodeTargetLocks(r.data ?? Buffer.alloc(0));
  }
}

/** SF_OP_BREAK_LOCK: release every holder of `vid`'s lock; false when the sheep does not know the op. */
export async function breakLock(client: LockOpsCaller, vid: number): Promise<boolean> {
  const args = { ...emptyReqArgs('obj'), oid: vidToVdiOid(vid) };
  const r = await client.call(makeRequest(SF_OP_BREAK_LOCK, args), { ok: [SD_RES_INVALID_PARMS, SD_RES_VER_MISMATCH] });
  return r.rsp.result === SD_RES_SUCCESS;
}
