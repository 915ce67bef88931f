// Configuration of the iSCSI front end: the targets (IQN → LUNs on BlockDevices), their ACLs, CHAP accounts and
// advertised portals, and the server-wide limits and negotiation preferences.
import type { BlockDevice } from '../block/device.js';
import type { ChapAccount } from './chap.js';
import type { TargetPreferences } from './params.js';
import type { RangeLock } from './scsi/rangelock.js';
import type { ReservationStore } from './scsi/pr.js';
import type { AluaPort } from './scsi/alua.js';
import type { Clock } from '../util/clock.js';

export const DEFAULT_IQN_PREFIX = 'iqn.2026-11.org.sheepfold:';
export const DEFAULT_ISCSI_PORT = 3260;

export interface IscsiLunConfig {
  lun: number;
  device: BlockDevice;
  /** Present the LU as removable medium (START STOP UNIT ejects/loads). */
  removable?: boolean;
}

export interface IscsiTargetConfig {
  /** Full IQN of the target. */
  name: string;
  alias?: string;
  luns: IscsiLunConfig[];
  /** Initiator IQNs allowed to log in; undefined or empty admits everyone. */
  initiators?: string[];
  /** If non-empty, the initiator must authenticate with CHAP as one of these accounts. */
  chap?: ChapAccount[];
  /** Portals ("host:port" or "[v6]:port") advertised in SendTargets; default: the server's address. */
  portals?: string[];
}

export interface IscsiServerOptions {
  /** Time source of keep-alive pings and drain timeouts (default: the system clock). */
  clock?: Clock;
  host: string;
  port: number;
  targets: IscsiTargetConfig[];
  /** CHAP accounts required for discovery sessions (empty: discovery without authentication). */
  discoveryChap?: ChapAccount[];
  /** TargetAddress advertised for targets without their own portals (default: the bound address). */
  advertise?: string[];
  preferences?: Partial<TargetPreferences>;
  /** Send a NOP-In ping after this much silence from the initiator (0 disables). */
  nopInIntervalMs?: number;
  /** Close the connection if a ping is not answered within this time. */
  nopInTimeoutMs?: number;
  /** Commands a session may have outstanding (the CmdSN window). */
  queueDepth?: number;
  /** Most concurrent TCP connections the server accepts. */
  maxConnections?: number;
  /** Per-device lock/reservation factories (cluster-wide implementations plug in here). */
  rangeLockFor?: (device: BlockDevice) => RangeLock;
  reservationsFor?: (device: BlockDevice) => ReservationStore;
  /** ALUA port of this host when several target hosts export the same LUs (multipath); started and stopped with
   * the server. Its group id is also the portal group tag. */
  alua?: AluaPort;
}
