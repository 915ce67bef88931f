// Persistent reservations shared by every target host of a multipath VDI: the registrations and the reservation
// live in a VDI attribute (`sheepfold.pr`, GET_VDI_ATTR + the attribute object), so a registration or reservation
// made through host A is seen and enforced through host B and survives A's death (tgtd keeps them per process).
// PERSISTENT RESERVE IN/OUT read the attribute first; OUT writes it back before it answers. Access checks on
// data commands use a copy refreshed every `refreshMs` (they cannot wait for sheep). PROUTs of one host are
// serialized; two hosts changing the state at the same instant can still lose one update (see docs/fencing.md).
// SCSI-2 RESERVE/RELEASE stays per host.
import type { BlockDevice } from '../../block/device.js';
import { VdiDevice } from '../../block/vdi.js';
import type { SheepClient } from '../../client/index.js';
import { componentLogger, type Logger } from '../../obs/log.js';
import { decodeVdiAttr, encodeVdiAttr } from '../../proto/sheepdog/attr.js';
import * as SD from '../../proto/sheepdog/constants.js';
import { emptyReqArgs, makeRequest } from '../../proto/sheepdog/header.js';
import { vidToAttrOid } from '../../proto/sheepdog/oid.js';
import type { Sense } from '../../proto/scsi/sense.js';
import { LocalReservationStore, type AccessKind, type PrOutcome, type PrState, type ReservationStore } from './pr.js';

export const PR_ATTR_KEY = 'sheepfold.pr';

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
  return { generation: o.generation, keys, res };
}

/** Reservation store kept in a VDI attribute; a LocalReservationStore holds the current copy and the rules. */
export class ClusterReservationStore implements ReservationStore {
  private readonly local = new LocalReservationStore();
  private oid: bigint | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private readonly log: Logger;

  constructor(
    private readonly client: SheepClient,
    private readonly vdi: string,
    refreshMs = 250,
  ) {
    this.log = componentLogger('pr', { vdi });
    this.timer = setInterval(() => {
      void this.serial(() => this.load()).catch((err: unknown) =>
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'pr.refresh_failed'),
      );
    }, refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
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

  private async load(): Promise<void> {
    const oid = await this.attrOid();
    const attr = decodeVdiAttr(await this.client.readObj(oid, SD.SD_ATTR_OBJ_SIZE));
    let parsed: unknown;
    try {
      parsed = JSON.parse(attr.value.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const st = parseState(parsed);
    if (st) this.local.importState(st);
  }

  private async store(): Promise<void> {
    const oid = await this.attrOid();
    await this.client.writeObj(oid, this.attr(Buffer.from(JSON.stringify(this.local.exportState()))), { offset: 0 });
  }

  permits(nexus: string, kind: AccessKind): boolean {
    return this.local.permits(nexus, kind);
  }
  reserve2(nexus: string): boolean {
    return this.local.reserve2(nexus);
  }
  release2(nexus: string): void {
    this.local.release2(nexus);
  }
  clearReserve2(nexus?: string): void {
    this.local.clearReserve2(nexus);
  }

  prIn(sa: number, allocationLength: number): Promise<Buffer | Sense> {
    return this.serial(async () => {
      await this.load();
      return this.local.prIn(sa, allocationLength);
    });
  }

  prOut(nexus: string, sa: number, type: number, params: Buffer): Promise<PrOutcome> {
    return this.serial(async () => {
      await this.load();
      const before = JSON.stringify(this.local.exportState());
      const r = this.local.prOut(nexus, sa, type, params);
      if (JSON.stringify(this.local.exportState()) !== before) await this.store();
      return r;
    });
  }
}

/** The store for one exported device: cluster-wide for a shared (multipath) VDI, in-process otherwise. */
export function reservationsForDevice(device: BlockDevice): ReservationStore {
  const ref = device instanceof VdiDevice ? device.sharedRef() : undefined;
  return ref ? new ClusterReservationStore(ref.client, ref.vdi) : new LocalReservationStore();
}
