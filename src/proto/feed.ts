// The sheep event feed's wire format (docs/cluster.md "Event feed"): a WebSocket on the sheep's own TCP port at
// `/events?types=..&vid=HEX,..&snapshot=1`, carrying one JSON object per text message. Pure: the event types,
// their JSON codec (decoding checks every field: the feed crosses a process boundary), the subscription query,
// and the first-bytes sniff that tells an HTTP request from a Sheepdog request on a new connection.
// Invariant: every event has a fixed `type`, the emitting sheep's `seq` (one counter per sheep process), `epoch`
// and `ts` (ms since the epoch); `vid` is a number (the VDI id), node addresses are `host:port` text.

/** Path of the feed on a sheep's port. */
export const FEED_PATH = '/events';
export const FEED_VERSION = 1;

/** Participant states as text (SHARED_LOCK_STATE_* of fact sheet §7). */
export type ParticipantState = 'modified' | 'shared' | 'invalidated';
export type LockStateText = 'unlocked' | 'locked' | 'shared';

export interface FeedParticipant {
  /** `host:port` of the participant's node_id (a gateway sheep, or a target's synthetic id). */
  node: string;
  /** The target id when the participant is a target bound by HELLO (docs/fencing.md §3). */
  target?: string;
  state: ParticipantState;
}

interface Base {
  seq: number;
  epoch: number;
  ts: number;
}

export type FeedEvent =
  | (Base & { type: 'hello'; node: string; version: number })
  | (Base & { type: 'lock'; vid: number; state: LockStateText; owner?: string; participants: FeedParticipant[]; snapshot?: boolean })
  | (Base & { type: 'invalidate'; vid: number; participant: string; target?: string })
  | (Base & { type: 'node-join'; node: string; nodes: string[] })
  | (Base & { type: 'node-leave'; node: string; reason: 'graceful' | 'failed'; nodes: string[] })
  | (Base & { type: 'epoch'; nodes: string[] })
  | (Base & { type: 'recovery'; node: string; state: 'preparing' | 'recovering' | 'done'; done: number; total: number; recoveryEpoch: number })
  | (Base & { type: 'vdi'; vid: number; action: 'create' | 'snapshot' | 'delete'; parent?: number });

export type FeedEventType = FeedEvent['type'];

/** Event types a subscriber may ask for; `node` stands for node-join and node-leave. */
export const FEED_TYPES = ['lock', 'invalidate', 'node', 'epoch', 'recovery', 'vdi'] as const;
export type FeedTypeFilter = (typeof FEED_TYPES)[number];

export interface FeedQuery {
  /** Event types (default: all). */
  types?: FeedTypeFilter[];
  /** Only events of these VDIs among those that carry a vid (default: every VDI). */
  vids?: number[];
  /** Send the current lock state of the subscribed VDIs right after `hello` (marked `snapshot: true`). */
  snapshot?: boolean;
}

/** The filter class of an event type (`hello` is always sent). */
export function filterClass(t: FeedEventType): FeedTypeFilter | null {
  if (t === 'hello') return null;
  if (t === 'node-join' || t === 'node-leave') return 'node';
  return t;
}

/** `types=..&vid=..&snapshot=1` for a query (the part after `?`, empty for the default). */
export function encodeFeedQuery(q: FeedQuery): string {
  const parts: string[] = [];
  if (q.types && q.types.length > 0) parts.push(`types=${q.types.join(',')}`);
  if (q.vids && q.vids.length > 0) parts.push(`vid=${q.vids.map((v) => v.toString(16)).join(',')}`);
  if (q.snapshot === true) parts.push('snapshot=1');
  return parts.join('&');
}

/** Parse a query string (without `?`); throws RangeError naming the bad part. */
export function parseFeedQuery(search: string): FeedQuery {
  const p = new URLSearchParams(search);
  const q: FeedQuery = {};
  const types = p.get('types');
  if (types !== null && types !== '') q.types = parseFeedTypes(types);
  const vid = p.get('vid');
  if (vid !== null && vid !== '') {
    q.vids = vid.split(',').map((v) => {
      if (!/^[0-9a-fA-F]{1,6}$/.test(v)) throw new RangeError(`bad vid '${v}' (hex, at most 24 bits)`);
      return parseInt(v, 16);
    });
  }
  if (p.get('snapshot') === '1') q.snapshot = true;
  return q;
}

/** Parse `lock,node,...`; throws RangeError naming an unknown type. */
export function parseFeedTypes(text: string): FeedTypeFilter[] {
  return text.split(',').map((t) => {
    const s = t.trim();
    if (!(FEED_TYPES as readonly string[]).includes(s)) throw new RangeError(`unknown event type '${s}' (one of ${FEED_TYPES.join(', ')})`);
    return s as FeedTypeFilter;
  });
}

/** True if a subscriber with query `q` gets event `e`. */
export function matchesQuery(q: FeedQuery, e: FeedEvent): boolean {
  const cls = filterClass(e.type);
  if (cls === null) return true;
  if (q.types && !q.types.includes(cls)) return false;
  if (q.vids && 'vid' in e && !q.vids.includes(e.vid)) return false;
  return true;
}

export function encodeFeedEvent(e: FeedEvent): string {
  return JSON.stringify(e);
}

const PSTATES: readonly string[] = ['modified', 'shared', 'invalidated'];
const LSTATES: readonly string[] = ['unlocked', 'locked', 'shared'];
const RSTATES: readonly string[] = ['preparing', 'recovering', 'done'];

/** Decode one feed message; throws RangeError when it is not a well-formed event. */
export function decodeFeedEvent(text: string): FeedEvent {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RangeError('feed message is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new RangeError('feed message is not an object');
  const o = v as Record<string, unknown>;
  const base = { seq: int(o, 'seq'), epoch: int(o, 'epoch'), ts: int(o, 'ts') };
  const type = str(o, 'type');
  switch (type) {
    case 'hello':
      return { type, ...base, node: str(o, 'node'), version: int(o, 'version') };
    case 'lock': {
      const ps = o.participants;
      if (!Array.isArray(ps)) throw new RangeError('lock event without participants');
      const participants = ps.map((p: unknown): FeedParticipant => {
        if (typeof p !== 'object' || p === null) throw new RangeError('bad participant');
        const r = p as Record<string, unknown>;
        return { node: str(r, 'node'), ...optStr(r, 'target'), state: oneOf(r, 'state', PSTATES) as ParticipantState };
      });
      const snap = o.snapshot === true ? { snapshot: true } : {};
      return { type, ...base, vid: int(o, 'vid'), state: oneOf(o, 'state', LSTATES) as LockStateText, ...optStr(o, 'owner'), participants, ...snap };
    }
    case 'invalidate':
      return { type, ...base, vid: int(o, 'vid'), participant: str(o, 'participant'), ...optStr(o, 'target') };
    case 'node-join':
      return { type, ...base, node: str(o, 'node'), nodes: strs(o, 'nodes') };
    case 'node-leave':
      return { type, ...base, node: str(o, 'node'), reason: oneOf(o, 'reason', ['graceful', 'failed']) as 'graceful' | 'failed', nodes: strs(o, 'nodes') };
    case 'epoch':
      return { type, ...base, nodes: strs(o, 'nodes') };
    case 'recovery':
      return {
        type,
        ...base,
        node: str(o, 'node'),
        state: oneOf(o, 'state', RSTATES) as 'preparing' | 'recovering' | 'done',
        done: int(o, 'done'),
        total: int(o, 'total'),
        recoveryEpoch: int(o, 'recoveryEpoch'),
      };
    case 'vdi': {
      const parent = o.parent === undefined ? {} : { parent: int(o, 'parent') };
      return { type, ...base, vid: int(o, 'vid'), action: oneOf(o, 'action', ['create', 'snapshot', 'delete']) as 'create' | 'snapshot' | 'delete', ...parent };
    }
    default:
      throw new RangeError(`unknown feed event type '${type}'`);
  }
}

function int(o: Record<string, unknown>, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new RangeError(`feed event field '${k}' is not a non-negative integer`);
  return v;
}
function str(o: Record<string, unknown>, k: string): string {
  const v = o[k];
  if (typeof v !== 'string') throw new RangeError(`feed event field '${k}' is not a string`);
  return v;
}
function optStr(o: Record<string, unknown>, k: 'target' | 'owner'): { target?: string; owner?: string } {
  return o[k] === undefined ? {} : { [k]: str(o, k) };
}
function strs(o: Record<string, unknown>, k: string): string[] {
  const v = o[k];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new RangeError(`feed event field '${k}' is not a list of strings`);
  return v as string[];
}
function oneOf(o: Record<string, unknown>, k: string, allowed: readonly string[]): string {
  const v = str(o, k);
  if (!allowed.includes(v)) throw new RangeError(`feed event field '${k}' has unknown value '${v}'`);
  return v;
}

/** What the first bytes of a new sheep connection are: HTTP (`GET `), a Sheepdog request, or not known yet. */
export type Sniffed = 'http' | 'sheep' | 'more';

const HTTP_GET = Buffer.from('GET ', 'latin1');

/**
 * Classify a connection by its first bytes. A Sheepdog request starts with proto_ver (0x00–0x0a), never 'G';
 * only the exact prefix `GET ` is HTTP, so any other byte string keeps the Sheepdog error handling. Needs at
 * most 4 bytes: 'more' while the bytes seen are a proper prefix of `GET `.
 */
export function sniffConnection(head: Buffer): Sniffed {
  const n = Math.min(head.length, HTTP_GET.length);
  for (let i = 0; i < n; i++) if (head[i] !== HTTP_GET[i]) return 'sheep';
  return head.length >= HTTP_GET.length ? 'http' : 'more';
}
