// Persistent reservations shared by every target host of a multipath VDI: the registrations and the reservation
// live in a VDI attribute (`sheepfold.pr`, GET_VDI_ATTR + the attribute object), so a registration or reservation
// made through host A is seen and enforced through host B and survives A's death (tgtd keeps them per process).
// Every decision reads the attribute's value first (access checks of concurrent commands share one read that
// started after they arrived); changes (PERSISTENT RESERVE OUT, SCSI-2 RESERVE/RELEASE) are written back before
// the command answers. A change is a compare-and-write of the value at the attribute object's primary replica
// (SF_OP_CMP_WRITE): when another host changed the state since it was read, the change is re-applied to the
// new state, so two hosts changing it at the same instant lose no update (see docs/fencing.md).
import type { BlockDevice } from '../../block/device.js';
import { VdiDevice } from '../../block/vdi.js';
import type { SheepClient } from '../../client/index.js';
import { componentLogger, type Logger } from '../../obs/log.js';
import { ATTR_OFF_VALUE, ATTR_OFF_VALUE_LEN, encodeVdiAttr } from '../../proto/sheepdog/attr.js';
import * as SD from '../../proto/sheepdog/constants.js';
import { emptyReqArgs, makeRequest } from '../../proto/sheepdog/header.js';
import { vidToAttrOid } from '../../proto/sheepdog/oid.js';
import type { Sense } from '../../proto/scsi/sense.js';
import { LocalReservationStore, type AccessKind, type PrOutcome, type PrState, type ReservationStore } from './pr.js';

export const PR_ATTR_KEY = 'sheepfold.pr';
/** Compare-and-write attempts of one change before it fails (each lost race means another host's change landed). */
const MAX_CHANGE_ATTEMPTS = 32;

/** A PrState from untrusted JSON, or undefined if it does not have that shape. */
function parseState(v: unknown): PrState | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.generation !== 'number' || !Array.isArray(o.keys)) return undefined;
  const keys: Array<[string, string]> = [];
  for (const k of o.keys as unknown[]) {
    if (!Array.isArray(k) || typeof k[0] !== 'string' || typeof k[1] !== 'string' || !/^[0-9a-f]+$/.test(k[1])) return undefined;
    keys.push([k[0], k[1]]);
  }
  let res: PrState['res'] = null;
  if (o.res !== null && o.res !== undefined) {
    const r = o.res as Record<string, unknown>;
    if (typeof r.holder !== 'string' || typeof r.key !== 'string' || typeof r.type !== 'number' || !/^[0-9a-f]+$/.test(r.key)) return undefined;
    res = { holder: r.holder, key: r.key, type: r.type };
  }
  const out: PrState = { generation: o.generation, keys, res };
  if (typeof o.scsi2 === 'string') out.scsi2 = o.scsi2;
  return out;
}

/** Reservation store kept in a VDI attribute; a LocalReservationStore holds the current copy and the rules. */
export class ClusterReservationStore implements ReservationStore {
  private readonly local = new LocalReservationStore();
  private oid: bigint | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  /** The shared read of the state in flight, and when it started. */
  private reading: { started: number; done: Promise<void> } | undefined;
  private readonly log: Logger;

  constructor(
    private readonly client: SheepClient,
    private readonly vdi: string,
  ) {
    this.log = componentLogger('pr', { vdi });
  }

  /** The state as of a read that started no earlier than now (shared by the commands waiting for it). */
  private fresh(): Promise<void> {
    const now = Date.now();
    const r = this.reading;
    if (r && r.started >= now) return r.done;
    const next = this.serial(() => this.load().then(() => undefined));
    const entry = { started: now, done: next.finally(() => { if (this.reading === entry) this.reading = undefined; }) };
    this.reading = entry;
    return entry.done;
  }

  /** Run f after every earlier load/store of this host. */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.chain.then(f, f);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private attr(value: Buffer): Buffer {
    return encodeVdiAttr({ name: this.vdi, tag: '', ctime: 0n, snapId: 0, key: PR_ATTR_KEY, value });
  }

  /** The attribute object's oid (created empty on first use). */
  private async attrOid(): Promise<bigint> {
    if (this.oid !== undefined) return this.oid;
    const req = makeRequest(SD.SD_OP_GET_VDI_ATTR, { ...emptyReqArgs('vdi'), snapid: 0 }, {
      flags: SD.SD_FLAG_CMD_WRITE | SD.SD_FLAG_CMD_CREAT,
      dataLength: SD.SD_ATTR_OBJ_SIZE,
    });
    const r = await this.client.call(req, { payload: this.attr(Buffer.from(JSON.stringify(new LocalReservationStore().exportState()))), context: `PR attribute of ${this.vdi}` });
    const a = r.rsp.args;
    if (a.kind !== 'vdi') throw new Error('GET_VDI_ATTR: unexpected reply');
    this.oid = vidToAttrOid(a.vdiId, a.attrId);
    return this.oid;
  }

  /**
   * Read the value (length word, then the JSON) without the rest of the 66 KB attribute object, into the local
   * copy. Returns the bytes read from ATTR_OFF_VALUE_LEN on (at least `min` of them): what a change compares.
   */
  private async load(min = 0): Promise<Buffer> {
    const oid = await this.attrOid();
    const head = Math.max(4096, min);
    let raw = await this.client.readObj(oid, head, { offset: ATTR_OFF_VALUE_LEN });
    const len = Math.min(raw.readUInt32LE(0), SD.SD_MAX_VDI_ATTR_VALUE_LEN);
    const skip = ATTR_OFF_VALUE - ATTR_OFF_VALUE_LEN;
    if (skip + len > head) raw = await this.client.readObj(oid, skip + len, { offset: ATTR_OFF_VALUE_LEN });
    this.apply(raw, skip, len);
    return raw;
  }

  private apply(raw: Buffer, skip: number, len: number): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.subarray(skip, skip + len).toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const st = parseState(parsed);
    if (st) this.local.importState(st);
  }

  /**
   * Write `json` as the value if the object still holds `raw` (from load) there. Returns false when another
   * host changed the value first (nothing written).
   */
  private async store(raw: Buffer, json: string): Promise<boolean> {
    const oid = await this.attrOid();
    const value = Buffer.from(json);
    // The length word and the value enclose the attribute's key (ATTR_OFF_KEY): keep those bytes as read.
    const skip = ATTR_OFF_VALUE - ATTR_OFF_VALUE_LEN;
    const region = Buffer.alloc(skip + value.length);
    raw.copy(region, 0, 0, skip);
    region.writeUInt32LE(value.length, 0);
    value.copy(region, skip);
    const oldEnd = skip + Math.min(raw.readUInt32LE(0), SD.SD_MAX_VDI_ATTR_VALUE_LEN);
    const n = Math.max(region.length, oldEnd);
    if (raw.length < n) return false;
    const next = Buffer.alloc(n);
    region.copy(next);
    return (await this.client.cmpWriteObj(oid, raw.subarray(0, n), next, { offset: ATTR_OFF_VALUE_LEN })) === null;
  }

  async permits(nexus: string, kind: AccessKind): Promise<boolean> {
    if (kind === 'allowed') return true;
    await this.fresh();
    return this.local.permits(nexus, kind);
  }

  /**
   * Read, apply f to the local copy, compare-and-write it back if it changed; when another host changed the
   * value in between, read again and re-apply f to that state.
   */
  private change<T>(f: () => T): Promise<T> {
    return this.serial(async () => {
      let min = 0;
      for (let attempt = 0; ; attempt++) {
        const raw = await this.load(min);
        const before = JSON.stringify(this.local.exportState());
        const r = f();
        const after = JSON.stringify(this.local.exportState());
        if (after === before) return r;
        min = ATTR_OFF_VALUE - ATTR_OFF_VALUE_LEN + Buffer.byteLength(after);
        if (await this.store(raw, after)) return r;
        if (attempt >= MAX_CHANGE_ATTEMPTS) throw new Error(`PR state of ${this.vdi} kept changing under ${attempt + 1} attempts`);
        this.log.debug({ attempt }, 'pr.change_raced');
      }
    });
  }

  reserve2(nexus: string): Promise<boolean> {
    return this.change(() => this.local.reserve2(nexus));
  }
  async release2(nexus: string): Promise<void> {
    await this.change(() => this.local.release2(nexus));
  }
  async clearReserve2(nexus?: string): Promise<void> {
    await this.change(() => this.local.clearReserve2(nexus)).catch((err: unknown) =>
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'pr.clear_reserve2_failed'),
    );
  }

  prIn(sa: number, allocationLength: number): Promise<Buffer | Sense> {
    return this.serial(async () => {
      await this.load();
      return this.local.prIn(sa, allocationLength);
    });
  }

  prOut(nexus: string, sa: number, type: number, params: Buffer): Promise<PrOutcome> {
    return this.change(() => this.local.prOut(nexus, sa, type, params));
  }
}

/** The store for one exported device: cluster-wide for a shared (multipath) VDI, in-process otherwise. */
export function reservationsForDevice(device: BlockDevice): ReservationStore {
  const ref = device instanceof VdiDevice ? device.sharedRef() : undefined;
  return ref ? new ClusterReservationStore(ref.client, ref.vdi) : new LocalReservationStore();
}
