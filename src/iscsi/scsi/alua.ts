// Asymmetric logical unit access (SPC-4 §5.16) for one target host of a multipath LU exported by several hosts.
// Every host runs one AluaPort: its own target port group and relative target port, plus the peers' groups. The
// configured preferred group is active/optimized while its host answers; the others are active/non-optimized.
// Peers are probed by a TCP connect to their iSCSI portal: when the preferred host stops answering the first live
// group takes over as active/optimized and dead groups are reported unavailable; when it answers again the
// states swap back. Each change is an event (the server raises UNIT ATTENTION 2A/06 on every nexus).
// SET TARGET PORT GROUPS (explicit ALUA) moves the preference to the group set active/optimized.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import * as C from '../../proto/scsi/constants.js';
import type { Sense } from '../../proto/scsi/sense.js';
import { componentLogger, type Logger } from '../../obs/log.js';

export const MO_SET_TARGET_PORT_GROUPS = 0x0a;
export const ASC_ASYMMETRIC_ACCESS_STATE_CHANGED = 0x2a06;

export const ALUA_ACTIVE_OPTIMIZED = 0x0;
export const ALUA_ACTIVE_NON_OPTIMIZED = 0x1;
export const ALUA_UNAVAILABLE = 0x3;

/** TPGS in standard INQUIRY data: implicit and explicit ALUA. */
export const TPGS_IMPLICIT_EXPLICIT = 3;

export interface AluaPeer {
  /** The peer host's target port group id. */
  group: number;
  /** Its relative target port id. */
  relativePort: number;
  /** "host:port" of its iSCSI portal, probed for liveness; without one the peer always counts as alive. */
  portal?: string;
}

export interface AluaOptions {
  /** This host's target port group id (1..65535). */
  group: number;
  /** This host's relative target port id (1..65535). */
  relativePort: number;
  peers: AluaPeer[];
  /** Group that is active/optimized while its host is alive (default: the lowest group id). */
  preferredGroup?: number;
  /** Peer probe period (default 1000 ms; 0 disables probing). */
  probeIntervalMs?: number;
  /** A probe that does not connect within this time fails (default 1000 ms). */
  probeTimeoutMs?: number;
}

interface GroupState {
  group: number;
  relativePort: number;
  portal: string | undefined;
  alive: boolean;
  /** Status code of the last change (0 none, 1 by SET TARGET PORT GROUPS, 2 implicit). */
  status: number;
}

export type AluaCommandResult = { data: Buffer; dataOutWanted?: number } | { sense: Sense; dataOutWanted?: number };

/** Split "host:port" / "[v6]:port" into its parts. */
function splitPortal(p: string): { host: string; port: number } {
  const i = p.lastIndexOf(':');
  return { host: p.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(p.slice(i + 1)) };
}

/** One TCP connect attempt: true if the portal accepted within `timeoutMs`. */
function probe(portal: string, timeoutMs: number): Promise<boolean> {
  const { host, port } = splitPortal(portal);
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** ALUA state of this host's port and its peers'; emits 'change' whenever any reported state changes. */
export class AluaPort extends EventEmitter {
  readonly group: number;
  readonly relativePort: number;
  private preferred: number;
  private readonly groups: GroupState[];
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private readonly log: Logger;

  constructor(private readonly opts: AluaOptions) {
    super();
    this.group = opts.group;
    this.relativePort = opts.relativePort;
    const all = [{ group: opts.group, relativePort: opts.relativePort }, ...opts.peers];
    const ids = new Set(all.map((g) => g.group));
    if (ids.size !== all.length) throw new Error('alua: target port group ids must differ between hosts');
    for (const g of all) {
      if (!Number.isInteger(g.group) || g.group < 1 || g.group > 0xffff) throw new Error(`alua: bad group id ${g.group}`);
    }
    this.groups = [
      { group: opts.group, relativePort: opts.relativePort, portal: undefined, alive: true, status: 0 },
      ...opts.peers.map((p) => ({ group: p.group, relativePort: p.relativePort, portal: p.portal, alive: true, status: 0 })),
    ].sort((a, b) => a.group - b.group);
    this.preferred = opts.preferredGroup ?? Math.min(...ids);
    if (!ids.has(this.preferred)) throw new Error(`alua: preferred group ${this.preferred} is not configured`);
    this.log = componentLogger('alua');
  }

  /** Start probing the peers' portals (first probe at once). */
  start(): void {
    const every = this.opts.probeIntervalMs ?? 1000;
    if (every <= 0 || this.timer) return;
    void this.probeAll();
    this.timer = setInterval(() => void this.probeAll(), every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Mark a peer group alive or dead (probes call this; tests and operators may too). */
  setAlive(group: number, alive: boolean): void {
    const g = this.groups.find((x) => x.group === group);
    if (!g || g.group === this.group || g.alive === alive) return;
    const before = this.snapshot();
    g.alive = alive;
    this.log.info({ group, alive }, 'alua.peer');
    this.changed(before, 2);
  }

  private async probeAll(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await Promise.all(
        this.groups
          .filter((g) => g.portal !== undefined && g.group !== this.group)
          .map(async (g) => this.setAlive(g.group, await probe(g.portal as string, this.opts.probeTimeoutMs ?? 1000))),
      );
    } finally {
      this.probing = false;
    }
  }

  /** Group that is active/optimized now: the preferred one if alive, else the lowest-id live group. */
  private optimizedGroup(): number {
    const pref = this.groups.find((g) => g.group === this.preferred);
    if (pref?.alive) return pref.group;
    return this.groups.find((g) => g.alive)?.group ?? this.group;
  }

  /** Asymmetric access state code of a group. */
  stateOf(group: number): number {
    const g = this.groups.find((x) => x.group === group);
    if (!g?.alive) return ALUA_UNAVAILABLE;
    return group === this.optimizedGroup() ? ALUA_ACTIVE_OPTIMIZED : ALUA_ACTIVE_NON_OPTIMIZED;
  }

  private snapshot(): string {
    return this.groups.map((g) => `${g.group}:${this.stateOf(g.group)}`).join(',');
  }

  private changed(before: string, status: number): void {
    if (this.snapshot() === before) return;
    for (const g of this.groups) g.status = status;
    this.log.info({ states: this.snapshot() }, 'alua.change');
    this.emit('change');
  }

  /** Handle REPORT / SET TARGET PORT GROUPS; undefined for any other command. */
  handle(cdb: Buffer, dataOut: Buffer | undefined): AluaCommandResult | undefined {
    const op = cdb[0];
    const sa = (cdb[1] ?? 0) & 0x1f;
    if (op === C.MAINTENANCE_IN && sa === C.MI_REPORT_TARGET_PORT_GROUPS) {
      if (cdb.length < 12) return { sense: { key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_FIELD_IN_CDB } };
      const extended = ((cdb[1] ?? 0) >> 5) === 1;
      const alloc = cdb.readUInt32BE(6);
      const data = this.reportTargetPortGroups(extended);
      return { data: data.length > alloc ? data.subarray(0, alloc) : data };
    }
    if (op === C.MAINTENANCE_OUT && sa === MO_SET_TARGET_PORT_GROUPS) {
      if (cdb.length < 12) return { sense: { key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_FIELD_IN_CDB } };
      const plen = cdb.readUInt32BE(6);
      const params = (dataOut ?? Buffer.alloc(0)).subarray(0, plen);
      if (params.length < plen) return { sense: { key: C.ILLEGAL_REQUEST, ascq: C.ASC_PARAMETER_LIST_LENGTH_ERROR }, dataOutWanted: plen };
      const sense = this.setTargetPortGroups(params);
      return sense ? { sense, dataOutWanted: plen } : { data: Buffer.alloc(0), dataOutWanted: plen };
    }
    return undefined;
  }

  /** REPORT TARGET PORT GROUPS parameter data (SPC-4 §6.36), length-only or extended header. */
  reportTargetPortGroups(extended: boolean): Buffer {
    const descs = this.groups.map((g) => {
      const d = Buffer.alloc(12);
      d[0] = (g.group === this.preferred ? 0x80 : 0) | this.stateOf(g.group);
      d[1] = 0x80 | 0x08 | 0x02 | 0x01; // T_SUP, U_SUP, AN_SUP, AO_SUP
      d.writeUInt16BE(g.group, 2);
      d[5] = g.status;
      d[7] = 1;
      d.writeUInt16BE(g.relativePort, 10);
      return d;
    });
    const body = Buffer.concat(descs);
    const head = Buffer.alloc(extended ? 8 : 4);
    head.writeUInt32BE(head.length - 4 + body.length, 0);
    if (extended) {
      head[4] = 0x10; // FORMAT TYPE 001b
      head[5] = 10; // IMPLICIT TRANSITION TIME (s)
    }
    return Buffer.concat([head, body]);
  }

  /** SET TARGET PORT GROUPS (SPC-4 §6.42): a group set active/optimized becomes the preferred one. */
  setTargetPortGroups(params: Buffer): Sense | undefined {
    const bad = (byte: number): Sense => ({
      key: C.ILLEGAL_REQUEST,
      ascq: C.ASC_INVALID_FIELD_IN_PARAMETER_LIST,
      fieldPointer: { cd: false, byte },
    });
    if (params.length < 4 || (params.length - 4) % 4 !== 0) {
      return { key: C.ILLEGAL_REQUEST, ascq: C.ASC_PARAMETER_LIST_LENGTH_ERROR };
    }
    let next = this.preferred;
    for (let off = 4; off < params.length; off += 4) {
      const state = (params[off] ?? 0) & 0x0f;
      const id = params.readUInt16BE(off + 2);
      const g = this.groups.find((x) => x.group === id);
      if (!g) return bad(off + 2);
      if (state === ALUA_ACTIVE_OPTIMIZED) {
        if (!g.alive) return bad(off);
        next = id;
      } else if (state === ALUA_ACTIVE_NON_OPTIMIZED) {
        if (!g.alive) return bad(off);
        if (id === next) next = this.groups.find((x) => x.alive && x.group !== id)?.group ?? next;
      } else return bad(off);
    }
    if (next !== this.preferred) {
      const before = this.snapshot();
      this.preferred = next;
      this.log.info({ preferred: next }, 'alua.set');
      this.changed(before, 1);
    }
    return undefined;
  }
}
