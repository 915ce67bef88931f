// The cluster driver contract the sheep uses (implemented by `local` for one host and `etcd` for many): one
// total order of membership events and messages, replay of history to a joiner, expulsion and rejoin,
// compaction snapshots, a read barrier and self-fencing.

/** One process incarnation in the cluster. */
export interface ClusterMember {
  /** Unique per process start. */
  id: string;
  /** Stable node name (e.g. "127.0.0.1:7000"): the same across restarts of one sheep. */
  node: string;
  pid: number;
  /** Opaque node information (address, zone, space ...) as the sheep layer encodes it. */
  info: unknown;
  /** Log sequence number of the join record. */
  joinedAt: number;
  /** Wall-clock ms when the join was appended. */
  joinedMs: number;
}

/** `historical` events were appended before our own join: they are replayed history, not news. */
export type ClusterEvent =
  | { type: 'join'; seq: number; historical: boolean; member: ClusterMember; members: ClusterMember[] }
  | {
      type: 'leave';
      seq: number;
      historical: boolean;
      member: ClusterMember;
      members: ClusterMember[];
      reason: 'graceful' | 'failed';
    }
  | { type: 'message'; seq: number; historical: boolean; from: string; payload: unknown }
  | { type: 'expelled'; seq: number; historical: false }
  /**
   * Compaction: the applied state as of `seq` (what `ClusterSnapshotter.export` returned there) and the
   * membership at that point. Delivered first, before the events that follow it; replaces any state.
   */
  | { type: 'snapshot'; seq: number; historical: true; state: unknown; members: ClusterMember[] };

/** The sheep side of compaction: its applied cluster state, exported between two delivered events. */
export interface ClusterSnapshotter {
  /** JSON-safe; must describe exactly the events delivered so far. */
  export(): unknown;
}

/** The cluster driver contract. */
export interface ClusterDriver {
  readonly name: string;
  /** Join as a new incarnation; resolves once our own join has been delivered (all earlier events first). */
  join(node: string, info: unknown): Promise<ClusterMember>;
  /** Append a message to the total order; resolves with its seq once it has been delivered locally. */
  broadcast(payload: unknown): Promise<number>;
  /** Leave gracefully. */
  leave(): Promise<void>;
  /** After `expelled`: join again as a new incarnation with the same node name and info. */
  rejoin?(): Promise<ClusterMember>;
  /** Current membership as of the last delivered event. */
  members(): ClusterMember[];
  /** Events in total order; the driver awaits each handler before delivering the next. */
  onEvent(handler: (e: ClusterEvent) => void | Promise<void>): void;
  /**
   * True while this member cannot prove it is still a member — cut off from the coordination service long
   * enough that the others may already have removed it: it must not acknowledge anything (self-fencing).
   * Absent: the driver cannot be cut off (one host).
   */
  fenced?(): boolean;
  /** Compaction: where the driver takes snapshots of the applied state from. */
  setSnapshotter?(s: ClusterSnapshotter): void;
  /**
   * Deliver every event appended before this call (a read barrier): after it resolves, this member has
   * applied everything any member had acknowledged when the call began. Optional for single-node drivers.
   */
  sync?(): Promise<void>;
  close(): Promise<void>;
}
