// `[iscsi]` keys of a multipath target host (ALUA): this host's target port group and relative port, the peer
// hosts' groups with the portals probed for their liveness, and the preferred (active/optimized) group.
import { AluaPort, type AluaPeer } from './scsi/alua.js';

export type AluaValues = Record<string, string | number | boolean>;

export const ALUA_CONFIG_KEYS = {
  /** This host's target port group id (also its portal group tag); setting it turns ALUA on. */
  'alua-group': 'integer',
  /** This host's relative target port id (default: the group id). */
  'alua-relative-port': 'integer',
  /** Group id that is active/optimized while its host is alive (default: the lowest id). */
  'alua-preferred-group': 'integer',
  /** Peer hosts: "GROUP@HOST:PORT[/RELPORT],..." — their group, probed iSCSI portal and relative port. */
  'alua-peers': 'string',
  /** Peer probe period in ms (0: never probe; peers always count as alive). */
  'alua-probe-ms': 'integer',
} as const;

/** Parse "2@127.0.0.1:3261/2" peer entries. */
export function parseAluaPeers(s: string): AluaPeer[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '')
    .map((x) => {
      const m = /^(\d+)(?:@([^/]+))?(?:\/(\d+))?$/.exec(x);
      if (!m) throw new Error(`iscsi: bad alua-peers entry '${x}' (expected GROUP@HOST:PORT[/RELPORT])`);
      const group = Number(m[1]);
      const peer: AluaPeer = { group, relativePort: m[3] !== undefined ? Number(m[3]) : group };
      if (m[2] !== undefined) peer.portal = m[2];
      return peer;
    });
}

/** The host's AluaPort from `[iscsi]` values, or undefined when `alua-group` is not set. */
export function aluaFrom(values: AluaValues): AluaPort | undefined {
  const group = values['alua-group'];
  if (typeof group !== 'number') return undefined;
  const rel = values['alua-relative-port'];
  const pref = values['alua-preferred-group'];
  const peers = values['alua-peers'];
  const probe = values['alua-probe-ms'];
  return new AluaPort({
    group,
    relativePort: typeof rel === 'number' ? rel : group,
    peers: typeof peers === 'string' ? parseAluaPeers(peers) : [],
    ...(typeof pref === 'number' ? { preferredGroup: pref } : {}),
    ...(typeof probe === 'number' ? { probeIntervalMs: probe } : {}),
  });
}
