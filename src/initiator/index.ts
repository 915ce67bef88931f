// The initiator library: IscsiSession (one path, SCSI helpers), MultipathDevice (a BlockDevice over several
// paths with ALUA-aware choice and failover), SendTargets discovery, and the typed errors.
export { IscsiSession, type Capacity } from './scsi.js';
export {
  IscsiSessionCore,
  discoverTargets,
  DEFAULT_INITIATOR_NAME,
  type DiscoveredTarget,
  type ExecuteOptions,
  type IscsiSessionOptions,
  type ScsiResult,
  type SessionState,
} from './session.js';
export {
  MultipathDevice,
  dispositionOf,
  type MultipathEvent,
  type MultipathEventType,
  type MultipathOptions,
  type PathSpec,
  type PathStatus,
} from './multipath.js';
export { discoverPaths, type DiscoverPathsOptions } from './discovery.js';
export { IscsiTransportError, ScsiStatusError, classifyScsi, type ScsiErrorKind, type TransportErrorCode } from './errors.js';
export { randomIsid, type ChapCredentials, type NegotiatedParams } from './login.js';
export type { AluaState, LuIdentity, StandardInquiry, TargetPortGroup } from '../proto/scsi/pages.js';
