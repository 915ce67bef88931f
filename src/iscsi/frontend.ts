// The iSCSI front end of the target process: turns the `[iscsi]` config section and the export table into an
// IscsiServer. Each export becomes target `<iqn-prefix><name>` with the disk at LUN 0, unless `targets` maps
// several exports onto one target's LUNs. ACLs, CHAP accounts (per target and for discovery) and advertised
// portals come from the same section.
import type { Logger } from '../obs/log.js';
import type { ExportTable } from '../block/export-table.js';
import type { ChapAccount } from './chap.js';
import { DEFAULT_IQN_PREFIX, DEFAULT_ISCSI_PORT, type IscsiServerOptions, type IscsiTargetConfig } from './config.js';
import { IscsiServer } from './server.js';
import { ReadOnlyView } from './readonly.js';
import { ALUA_CONFIG_KEYS, aluaFrom } from './alua-config.js';
import { reservationsForDevice } from './scsi/pr-cluster.js';

export type IscsiValues = Record<string, string | number | boolean>;

/** Keys of the `[iscsi]` config section (types as in the target config schema). */
export const ISCSI_CONFIG_KEYS = {
  enabled: 'boolean',
  listen: 'address',
  'iqn-prefix': 'string',
  /** "TARGET=EXPORT[,EXPORT...];TARGET2=..." — targets (suffixes after the prefix) with exports as LUN 0, 1, ... */
  targets: 'string',
  /** Initiator IQNs admitted to every target, comma-separated. */
  acl: 'string',
  /** Per target: "TARGET=iqn1|iqn2;TARGET2=iqn3". */
  'target-acl': 'string',
  'chap-user': 'string',
  'chap-secret': 'string',
  'chap-mutual-user': 'string',
  'chap-mutual-secret': 'string',
  'discovery-chap-user': 'string',
  'discovery-chap-secret': 'string',
  /** Portals advertised in SendTargets for every target, comma-separated HOST:PORT. */
  portals: 'string',
  /** Per target: "TARGET=h1:p1|h2:p2;...". */
  'target-portals': 'string',
  /** Exports presented as removable medium, comma-separated. */
  removable: 'string',
  'nop-interval-ms': 'integer',
  'nop-timeout-ms': 'integer',
  'queue-depth': 'integer',
  'max-connections': 'integer',
  ...ALUA_CONFIG_KEYS,
} as const;

/** IQN-safe form of an export name (lower case; characters outside [a-z0-9.:-] become '-'). */
export function iqnSafe(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9.:-]/g, '-');
}

function str(v: IscsiValues, k: string): string | undefined {
  const x = v[k];
  return typeof x === 'string' && x !== '' ? x : undefined;
}
function int(v: IscsiValues, k: string): number | undefined {
  const x = v[k];
  return typeof x === 'number' ? x : undefined;
}
const list = (s: string | undefined, sep = ','): string[] =>
  s === undefined ? [] : s.split(sep).map((x) => x.trim()).filter((x) => x !== '');
/** Advertised portals: "HOST:PORT#TAG" names the portal group tag (another host's group in multipath). */
const portalList = (s: string | undefined, sep = ','): string[] => list(s, sep).map((p) => p.replace('#', ','));

/** "A=x|y;B=z" → Map(A → [x, y], B → [z]). */
function mapping(s: string | undefined, inner: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const part of list(s, ';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`iscsi: bad mapping '${part}' (expected NAME=VALUE)`);
    m.set(part.slice(0, eq).trim(), list(part.slice(eq + 1), inner));
  }
  return m;
}

/** Build the server options from `[iscsi]` values and the export table (throws on a bad mapping). */
export function iscsiOptionsFrom(values: IscsiValues, exports: ExportTable): IscsiServerOptions {
  const prefix = str(values, 'iqn-prefix') ?? DEFAULT_IQN_PREFIX;
  const listen = str(values, 'listen') ?? `127.0.0.1:${DEFAULT_ISCSI_PORT}`;
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(listen.slice(i + 1));
  const globalAcl = list(str(values, 'acl'));
  const targetAcl = mapping(str(values, 'target-acl'), '|');
  const globalPortals = portalList(str(values, 'portals'));
  const targetPortals = new Map([...mapping(str(values, 'target-portals'), '|')].map(([k, v]) => [k, v.map((p) => p.replace('#', ','))]));
  const chap: ChapAccount[] = [];
  const cu = str(values, 'chap-user');
  const cs = str(values, 'chap-secret');
  if (cu !== undefined && cs !== undefined) {
    const a: ChapAccount = { user: cu, secret: cs };
    const mu = str(values, 'chap-mutual-user');
    const ms = str(values, 'chap-mutual-secret');
    if (ms !== undefined) {
      a.mutualSecret = ms;
      a.mutualUser = mu ?? 'sheepfold';
    }
    chap.push(a);
  } else if (cu !== undefined || cs !== undefined) throw new Error('iscsi: chap-user and chap-secret go together');
  const du = str(values, 'discovery-chap-user');
  const ds = str(values, 'discovery-chap-secret');
  const discoveryChap: ChapAccount[] = du !== undefined && ds !== undefined ? [{ user: du, secret: ds }] : [];

  const removable = new Set(list(str(values, 'removable')));
  const groups = mapping(str(values, 'targets'), ',');
  if (groups.size === 0) for (const name of exports.keys()) groups.set(iqnSafe(name), [name]);
  const targets: IscsiTargetConfig[] = [];
  for (const [suffix, names] of groups) {
    const luns = names.map((n, lun) => {
      const e = exports.get(n);
      if (!e) throw new Error(`iscsi: target '${suffix}' names unknown export '${n}'`);
      return {
        lun,
        device: e.readOnly && !e.device.readOnly ? new ReadOnlyView(e.device) : e.device,
        removable: removable.has(n),
      };
    });
    const acl = [...globalAcl, ...(targetAcl.get(suffix) ?? [])];
    const portals = targetPortals.get(suffix) ?? globalPortals;
    const t: IscsiTargetConfig = { name: `${prefix}${suffix}`, luns, alias: suffix };
    if (acl.length > 0) t.initiators = acl;
    if (chap.length > 0) t.chap = chap;
    if (portals.length > 0) t.portals = portals;
    targets.push(t);
  }
  // shared (multipath) VDIs keep persistent reservations in the cluster, visible to every target host
  const opts: IscsiServerOptions = { host, port, targets, discoveryChap, reservationsFor: reservationsForDevice };
  const ni = int(values, 'nop-interval-ms');
  if (ni !== undefined) opts.nopInIntervalMs = ni;
  const nt = int(values, 'nop-timeout-ms');
  if (nt !== undefined) opts.nopInTimeoutMs = nt;
  const qd = int(values, 'queue-depth');
  if (qd !== undefined) opts.queueDepth = qd;
  const mc = int(values, 'max-connections');
  if (mc !== undefined) opts.maxConnections = mc;
  const alua = aluaFrom(values);
  if (alua) opts.alua = alua;
  return opts;
}

/** Frontend factory for the target process: undefined unless `[iscsi]` is enabled (or `--iscsi` given). */
export function iscsiFrontend(values: IscsiValues | undefined, exports: ExportTable, _log?: Logger): IscsiServer | undefined {
  if (!values || values.enabled !== true) return undefined;
  return new IscsiServer(iscsiOptionsFrom(values, exports));
}
