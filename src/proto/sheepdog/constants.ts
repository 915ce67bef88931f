// Sheepdog wire constants (protocol 0x02, internal 0x0a), spelled as in sheepdog's sheepdog_proto.h and
// internal_proto.h. Fact sheet: shared/docs/sheepdog-protocol.md §1–6, §9–10.

export const SD_PROTO_VER = 0x02;
export const SD_SHEEP_PROTO_VER = 0x0a;
export const SD_PROTO_VER_TRIM_ZERO_SECTORS = 0x02;

export const SD_LISTEN_PORT = 7000;
export const SD_REQ_SIZE = 48;
export const SD_RSP_SIZE = 48;

// Public opcodes (< 0x80).
export const SD_OP_CREATE_AND_WRITE_OBJ = 0x01;
export const SD_OP_READ_OBJ = 0x02;
export const SD_OP_WRITE_OBJ = 0x03;
export const SD_OP_REMOVE_OBJ = 0x04;
export const SD_OP_DISCARD_OBJ = 0x05;
export const SD_OP_NEW_VDI = 0x11;
export const SD_OP_LOCK_VDI = 0x12;
export const SD_OP_RELEASE_VDI = 0x13;
export const SD_OP_GET_VDI_INFO = 0x14;
export const SD_OP_READ_VDIS = 0x15;
export const SD_OP_FLUSH_VDI = 0x16;
export const SD_OP_DEL_VDI = 0x17;
export const SD_OP_GET_CLUSTER_DEFAULT = 0x18;

// Internal opcodes (>= 0x80, proto_ver must be SD_SHEEP_PROTO_VER).
export const SD_OP_GET_NODE_LIST = 0x82;
export const SD_OP_MAKE_FS = 0x84;
export const SD_OP_SHUTDOWN = 0x85;
export const SD_OP_STAT_SHEEP = 0x86;
export const SD_OP_STAT_CLUSTER = 0x87;
export const SD_OP_GET_VDI_ATTR = 0x89;
export const SD_OP_FORCE_RECOVER = 0x8a;
export const SD_OP_GET_STORE_LIST = 0x90;
export const SD_OP_SNAPSHOT = 0x91;
export const SD_OP_RESTORE = 0x92;
export const SD_OP_GET_SNAP_FILE = 0x93;
export const SD_OP_CLEANUP = 0x94;
export const SD_OP_TRACE_STATUS = 0x95;
export const SD_OP_TRACE_READ_BUF = 0x96;
export const SD_OP_STAT_RECOVERY = 0x97;
export const SD_OP_FLUSH_DEL_CACHE = 0x98;
export const SD_OP_NOTIFY_VDI_DEL = 0x99;
export const SD_OP_KILL_NODE = 0x9a;
export const SD_OP_TRACE_ENABLE = 0x9b;
export const SD_OP_TRACE_DISABLE = 0x9c;
export const SD_OP_GET_OBJ_LIST = 0xa1;
export const SD_OP_GET_EPOCH = 0xa2;
export const SD_OP_CREATE_AND_WRITE_PEER = 0xa3;
export const SD_OP_READ_PEER = 0xa4;
export const SD_OP_WRITE_PEER = 0xa5;
export const SD_OP_REMOVE_PEER = 0xa6;
export const SD_OP_SET_CACHE_SIZE = 0xa7;
export const SD_OP_ENABLE_RECOVER = 0xa8;
export const SD_OP_DISABLE_RECOVER = 0xa9;
export const SD_OP_GET_VDI_COPIES = 0xab;
export const SD_OP_COMPLETE_RECOVERY = 0xac;
export const SD_OP_FLUSH_NODES = 0xad;
export const SD_OP_FLUSH_PEER = 0xae;
export const SD_OP_NOTIFY_VDI_ADD = 0xaf;
export const SD_OP_DELETE_CACHE = 0xb0;
export const SD_OP_MD_INFO = 0xb1;
export const SD_OP_MD_PLUG = 0xb2;
export const SD_OP_MD_UNPLUG = 0xb3;
export const SD_OP_GET_HASH = 0xb4;
export const SD_OP_REWEIGHT = 0xb5;
export const SD_OP_STAT = 0xb8;
export const SD_OP_GET_LOGLEVEL = 0xb9;
export const SD_OP_SET_LOGLEVEL = 0xba;
export const SD_OP_EXIST = 0xbd;
export const SD_OP_CLUSTER_INFO = 0xbe;
export const SD_OP_ALTER_CLUSTER_COPY = 0xbf;
export const SD_OP_ALTER_VDI_COPY = 0xc0;
export const SD_OP_DECREF_OBJ = 0xc1;
export const SD_OP_DECREF_PEER = 0xc2;
export const SD_OP_REPAIR_REPLICA = 0xc5;
export const SD_OP_OIDS_EXIST = 0xc6;
export const SD_OP_VDI_STATE_CHECKPOINT_CTL = 0xc7;
export const SD_OP_INODE_COHERENCE = 0xc8;
export const SD_OP_READ_DEL_VDIS = 0xc9;
export const SD_OP_GET_RECOVERY = 0xca;
export const SD_OP_SET_RECOVERY = 0xcb;
export const SD_OP_SET_VNODES = 0xcc;
export const SD_OP_GET_VNODES = 0xcd;

// Request flags (hdr.flags, u16).
export const SD_FLAG_CMD_WRITE = 0x0001;
export const SD_FLAG_CMD_COW = 0x0002;
export const SD_FLAG_CMD_CACHE = 0x0004;
export const SD_FLAG_CMD_DIRECT = 0x0008;
export const SD_FLAG_CMD_PIGGYBACK = 0x0010;
export const SD_FLAG_CMD_TGT = 0x0020;
export const SD_FLAG_CMD_FWD = 0x0040;
export const SD_FLAG_CMD_RECOVERY = 0x0080;
export const SD_FLAG_CMD_WILDCARD = 0x0100;
// GET_VDI_ATTR only.
export const SD_FLAG_CMD_CREAT = 0x0100;
export const SD_FLAG_CMD_EXCL = 0x0200;
export const SD_FLAG_CMD_DEL = 0x0400;

// Result codes (rsp.result, u32).
export const SD_RES_SUCCESS = 0x00;
export const SD_RES_UNKNOWN = 0x01;
export const SD_RES_NO_OBJ = 0x02;
export const SD_RES_EIO = 0x03;
export const SD_RES_VDI_EXIST = 0x04;
export const SD_RES_INVALID_PARMS = 0x05;
export const SD_RES_SYSTEM_ERROR = 0x06;
export const SD_RES_VDI_LOCKED = 0x07;
export const SD_RES_NO_VDI = 0x08;
export const SD_RES_NO_BASE_VDI = 0x09;
export const SD_RES_VDI_READ = 0x0a;
export const SD_RES_VDI_WRITE = 0x0b;
export const SD_RES_BASE_VDI_READ = 0x0c;
export const SD_RES_BASE_VDI_WRITE = 0x0d;
export const SD_RES_NO_TAG = 0x0e;
export const SD_RES_STARTUP = 0x0f;
export const SD_RES_VDI_NOT_LOCKED = 0x10;
export const SD_RES_SHUTDOWN = 0x11;
export const SD_RES_NO_MEM = 0x12;
export const SD_RES_FULL_VDI = 0x13;
export const SD_RES_VER_MISMATCH = 0x14;
export const SD_RES_NO_SPACE = 0x15;
export const SD_RES_WAIT_FOR_FORMAT = 0x16;
export const SD_RES_WAIT_FOR_JOIN = 0x17;
export const SD_RES_JOIN_FAILED = 0x18;
export const SD_RES_HALT = 0x19;
export const SD_RES_READONLY = 0x1a;
export const SD_RES_INODE_INVALIDATED = 0x1d;
export const SD_RES_OLD_NODE_VER = 0x81;
export const SD_RES_NEW_NODE_VER = 0x82;
export const SD_RES_NOT_FORMATTED = 0x83;
export const SD_RES_INVALID_CTIME = 0x84;
export const SD_RES_INVALID_EPOCH = 0x85;
export const SD_RES_NETWORK_ERROR = 0x86;
export const SD_RES_NO_CACHE = 0x87;
export const SD_RES_BUFFER_SMALL = 0x88;
export const SD_RES_FORCE_RECOVER = 0x89;
export const SD_RES_NO_STORE = 0x8a;
export const SD_RES_NO_SUPPORT = 0x8b;
export const SD_RES_NODE_IN_RECOVERY = 0x8c;
export const SD_RES_KILLED = 0x8d;
export const SD_RES_OID_EXIST = 0x8e;
export const SD_RES_AGAIN = 0x8f;
export const SD_RES_STALE_OBJ = 0x90;
export const SD_RES_CLUSTER_ERROR = 0x91;
export const SD_RES_VDI_NOT_EMPTY = 0x92;
export const SD_RES_NOT_FOUND = 0x93;
export const SD_RES_INCOMPLETE = 0x94;
export const SD_RES_COLLECTING_CINFO = 0x95;
export const SD_RES_GATEWAY_MODE = 0x97;
export const SD_RES_INVALID_VNODES_STRATEGY = 0x98;
export const SD_RES_NO_CHECKPOINT_ENTRY = 0x99;

/**
 * Sheepfold extensions (opcodes 0xf8–0xfa, never used by sheepdog or tgt; internal proto_ver 0x0a): object
 * I/O serialized at the object's primary replica (the first node the ring names), so two gateways serving two
 * target hosts agree on one order. Object request layout; see docs/fencing.md.
 * - CREATE_EXCL: CREATE_AND_WRITE_OBJ that fails with OID_EXIST, writing nothing, when the object exists.
 * - CMP_WRITE: payload = expected bytes then new bytes (2 x length at `offset`); writes the new bytes only if
 *   the object holds the expected ones, else fails with SF_RES_MISCOMPARE and a 4-byte LE reply: the offset
 *   (from `offset`) of the first differing byte.
 * - WRITE_SERIAL: WRITE_OBJ ordered at the primary against CREATE_EXCL/CMP_WRITE/WRITE_SERIAL of the object.
 */
export const SF_OP_CREATE_EXCL = 0xf8;
export const SF_OP_CMP_WRITE = 0xf9;
export const SF_OP_WRITE_SERIAL = 0xfa;
export const SF_RES_MISCOMPARE = 0xfa;

/** Sheepfold target identity (docs/fencing.md §3–4; payload codecs in target-id.ts): HELLO binds a connection to a
 * target id and incarnation, TARGET_LOCKS lists the (VDI, target) lock records, BREAK_LOCK releases every holder
 * (`dog vdi lock unlock`), FENCED refuses a request of an incarnation that no longer holds its lock. */
export const SF_OP_HELLO = 0xf0;
export const SF_OP_TARGET_LOCKS = 0xf1;
export const SF_OP_BREAK_LOCK = 0xf2;
export const SF_RES_FENCED = 0xf0;

/** Human text for each result code, as dog prints it (sd_strerror). */
const RESULT_TEXT: Record<number, [string, string]> = {
  [SD_RES_SUCCESS]: ['SUCCESS', 'Success'],
  [SD_RES_UNKNOWN]: ['UNKNOWN', 'Unknown error'],
  [SD_RES_NO_OBJ]: ['NO_OBJ', 'No object found'],
  [SD_RES_EIO]: ['EIO', 'I/O error'],
  [SD_RES_VDI_EXIST]: ['VDI_EXIST', 'VDI exists already'],
  [SD_RES_INVALID_PARMS]: ['INVALID_PARMS', 'Invalid parameters'],
  [SD_RES_SYSTEM_ERROR]: ['SYSTEM_ERROR', 'System error'],
  [SD_RES_VDI_LOCKED]: ['VDI_LOCKED', 'VDI is already locked'],
  [SD_RES_NO_VDI]: ['NO_VDI', 'No VDI found'],
  [SD_RES_NO_BASE_VDI]: ['NO_BASE_VDI', 'No base VDI found'],
  [SD_RES_VDI_READ]: ['VDI_READ', 'Failed to read from requested VDI'],
  [SD_RES_VDI_WRITE]: ['VDI_WRITE', 'Failed to write to requested VDI'],
  [SD_RES_BASE_VDI_READ]: ['BASE_VDI_READ', 'Failed to read from base VDI'],
  [SD_RES_BASE_VDI_WRITE]: ['BASE_VDI_WRITE', 'Failed to write to base VDI'],
  [SD_RES_NO_TAG]: ['NO_TAG', 'Failed to find requested tag'],
  [SD_RES_STARTUP]: ['STARTUP', 'System is still booting'],
  [SD_RES_VDI_NOT_LOCKED]: ['VDI_NOT_LOCKED', 'VDI is not locked'],
  [SD_RES_SHUTDOWN]: ['SHUTDOWN', 'System is shutting down'],
  [SD_RES_NO_MEM]: ['NO_MEM', 'Out of memory on server'],
  [SD_RES_FULL_VDI]: ['FULL_VDI', 'Maximum number of VDIs reached'],
  [SD_RES_VER_MISMATCH]: ['VER_MISMATCH', 'Protocol version mismatch'],
  [SD_RES_NO_SPACE]: ['NO_SPACE', 'Server has no space for new objects'],
  [SD_RES_WAIT_FOR_FORMAT]: ['WAIT_FOR_FORMAT', 'Waiting for cluster to be formatted'],
  [SD_RES_WAIT_FOR_JOIN]: ['WAIT_FOR_JOIN', 'Waiting for other nodes to join cluster'],
  [SD_RES_JOIN_FAILED]: ['JOIN_FAILED', 'Node has failed to join cluster'],
  [SD_RES_HALT]: ['HALT', 'IO has halted as there are not enough living nodes'],
  [SD_RES_READONLY]: ['READONLY', 'Object is read-only'],
  [SD_RES_INODE_INVALIDATED]: ['INODE_INVALIDATED', 'Inode object is invalidated'],
  [SD_RES_OLD_NODE_VER]: ['OLD_NODE_VER', 'Request has an old epoch'],
  [SD_RES_NEW_NODE_VER]: ['NEW_NODE_VER', 'Request has a new epoch'],
  [SD_RES_NOT_FORMATTED]: ['NOT_FORMATTED', 'Cluster has not been formatted'],
  [SD_RES_INVALID_CTIME]: ['INVALID_CTIME', 'Creation times differ'],
  [SD_RES_INVALID_EPOCH]: ['INVALID_EPOCH', 'Invalid epoch'],
  [SD_RES_NETWORK_ERROR]: ['NETWORK_ERROR', 'Network error between sheep'],
  [SD_RES_NO_CACHE]: ['NO_CACHE', 'No cache object found'],
  [SD_RES_BUFFER_SMALL]: ['BUFFER_SMALL', 'The buffer is too small'],
  [SD_RES_FORCE_RECOVER]: ['FORCE_RECOVER', 'Cluster is running/halted and cannot be force recovered'],
  [SD_RES_NO_STORE]: ['NO_STORE', 'Targeted backend store is not found'],
  [SD_RES_NO_SUPPORT]: ['NO_SUPPORT', 'Operation is not supported'],
  [SD_RES_NODE_IN_RECOVERY]: ['NODE_IN_RECOVERY', 'Targeted node is in recovery'],
  [SD_RES_KILLED]: ['KILLED', 'Node is killed'],
  [SD_RES_OID_EXIST]: ['OID_EXIST', 'Object ID exists already'],
  [SF_RES_MISCOMPARE]: ['MISCOMPARE', 'The object does not hold the expected bytes'],
  [SD_RES_AGAIN]: ['AGAIN', 'Ask to try again'],
  [SD_RES_STALE_OBJ]: ['STALE_OBJ', 'Object may be stale'],
  [SD_RES_CLUSTER_ERROR]: ['CLUSTER_ERROR', 'Cluster driver error'],
  [SD_RES_VDI_NOT_EMPTY]: ['VDI_NOT_EMPTY', 'VDI is not empty'],
  [SD_RES_NOT_FOUND]: ['NOT_FOUND', 'Cannot found target'],
  [SD_RES_INCOMPLETE]: ['INCOMPLETE', 'Data is incomplete'],
  [SD_RES_COLLECTING_CINFO]: ['COLLECTING_CINFO', 'Sheep is collecting cluster wide status of VDIs'],
  [SD_RES_GATEWAY_MODE]: ['GATEWAY_MODE', 'Targeted node is gateway mode'],
  [SD_RES_INVALID_VNODES_STRATEGY]: ['INVALID_VNODES_STRATEGY', 'Invalid cluster vnodes strategy'],
  [SD_RES_NO_CHECKPOINT_ENTRY]: ['NO_CHECKPOINT_ENTRY', 'Checkpoint entry not found'],
  [SF_RES_FENCED]: ['FENCED', 'The lock of this target incarnation was taken over, released or broken'],
};

/** Symbolic name of a result code (`NO_OBJ`), or `0x..` when unknown. */
export function resultName(code: number): string {
  return RESULT_TEXT[code]?.[0] ?? `0x${code.toString(16)}`;
}

/** Human message of a result code, as dog prints it. */
export function resultMessage(code: number): string {
  return RESULT_TEXT[code]?.[1] ?? `Invalid error code 0x${code.toString(16)}`;
}

// Object ids (§4.1).
export const VDI_SPACE_SHIFT = 32;
export const SD_VDI_MASK = 0x00ffffff00000000n;
export const VDI_BIT = 1n << 63n;
export const VMSTATE_BIT = 1n << 62n;
export const VDI_ATTR_BIT = 1n << 61n;
export const VDI_BTREE_BIT = 1n << 60n;
export const LEDGER_BIT = 1n << 59n;
export const SD_NR_VDIS = 1 << 24;
export const SD_VDI_BITMAP_SIZE = SD_NR_VDIS / 8; // 2 097 152 bytes
export const MAX_DATA_OBJS = 1 << 20; // flat index entries
export const SD_DEFAULT_BLOCK_SIZE_SHIFT = 22;
export const SD_DATA_OBJ_SIZE = 1 << SD_DEFAULT_BLOCK_SIZE_SHIFT;
export const SD_MIN_BLOCK_SIZE_SHIFT = 20;
export const SD_MAX_BLOCK_SIZE_SHIFT = 31;
export const SD_MAX_COPIES = 31;
export const SD_DEFAULT_COPIES = 3;

// Inode (§5.1).
export const SD_MAX_VDI_LEN = 256;
export const SD_MAX_VDI_TAG_LEN = 256;
export const SD_MAX_VDI_ATTR_KEY_LEN = 256;
export const SD_MAX_VDI_ATTR_VALUE_LEN = 65536;
export const SD_INODE_HEADER_SIZE = 4664;
export const SD_INODE_INDEX_SIZE = 4 * MAX_DATA_OBJS; // 4 194 304
export const SD_INODE_GREF_OFFSET = SD_INODE_HEADER_SIZE + SD_INODE_INDEX_SIZE; // 4 198 968
export const SD_INODE_SIZE = SD_INODE_GREF_OFFSET + 8 * MAX_DATA_OBJS; // 12 587 576
/** tgt's `struct sheepdog_inode` size; a READ of exactly this length at offset 0 is an inode refresh (§7.3). */
export const TGT_INODE_SIZE = SD_INODE_GREF_OFFSET;
export const SD_INODE_DATA_INDEX_SIZE = 1 << 22; // B-tree node object size
export const SD_LEDGER_OBJ_SIZE = 1 << 22;
export const SD_ATTR_OBJ_SIZE = 66320;
/** Bytes of the inode a name lookup reads (name, tag, times, ..., parent_vdi_id). */
export const SD_INODE_LOOKUP_SIZE = 568;

// Store policy.
export const STORE_POLICY_FLAT = 0;
export const STORE_POLICY_BTREE = 1;

// Locking (§6).
export const LOCK_TYPE_NORMAL = 0;
export const LOCK_TYPE_SHARED = 1;
export const LOCK_STATE_INIT = 0;
export const LOCK_STATE_UNLOCKED = 1;
export const LOCK_STATE_LOCKED = 2;
export const LOCK_STATE_SHARED = 3;
export const SHARED_LOCK_STATE_MODIFIED = 1;
export const SHARED_LOCK_STATE_SHARED = 2;
export const SHARED_LOCK_STATE_INVALIDATED = 3;

// Cluster (§10).
export const SD_CLUSTER_FLAG_STRICT = 0x01;
export const SD_CLUSTER_FLAG_DISKMODE = 0x02;
export const SD_CLUSTER_FLAG_AUTO_VNODES = 0x04;
export const SD_CLUSTER_FLAG_USE_LOCK = 0x08;
export const SD_CLUSTER_FLAG_RECYCLE_VID = 0x10;
export const SD_CLUSTER_FLAG_AVOID_DISKFULL = 0x20;
export const SD_STATUS_OK = 1;
export const SD_STATUS_WAIT = 2;
export const SD_STATUS_SHUTDOWN = 3;
export const SD_STATUS_KILLED = 4;
export const SD_NODE_STATUS_INITIALIZATION = 1;
export const SD_NODE_STATUS_COLLECTING_CINFO = 2;
export const SD_NODE_STATUS_OK = 3;
export const SD_MAX_NODES = 6144;
export const SD_DEFAULT_VNODES = 128;
export const SD_NODE_SIZE = 80;
export const SD_NODE_ID_SIZE = 40;
export const SD_CLUSTER_INFO_HEADER_SIZE = 48;
export const SD_CLUSTER_INFO_SIZE = SD_CLUSTER_INFO_HEADER_SIZE + SD_MAX_NODES * SD_NODE_SIZE; // 491 568
export const SD_EPOCH_LOG_HEADER_SIZE = 48;
export const SD_VDI_STATE_SIZE = 1428;
export const SD_MAX_EVENT_BUF_SIZE = 128 * 1024;
export const SD_RECOVERY_STATE_SIZE = 24;
export const SD_RECOVERY_THROTTLING_SIZE = 24;

/** Name of an opcode for logs (`READ_OBJ`), or `0x..` when unknown. */
export function opName(opcode: number): string {
  return OP_NAMES.get(opcode) ?? `0x${opcode.toString(16)}`;
}

const OP_NAMES = new Map<number, string>([
  [SD_OP_CREATE_AND_WRITE_OBJ, 'CREATE_AND_WRITE_OBJ'],
  [SD_OP_READ_OBJ, 'READ_OBJ'],
  [SD_OP_WRITE_OBJ, 'WRITE_OBJ'],
  [SD_OP_REMOVE_OBJ, 'REMOVE_OBJ'],
  [SD_OP_DISCARD_OBJ, 'DISCARD_OBJ'],
  [SD_OP_NEW_VDI, 'NEW_VDI'],
  [SD_OP_LOCK_VDI, 'LOCK_VDI'],
  [SD_OP_RELEASE_VDI, 'RELEASE_VDI'],
  [SD_OP_GET_VDI_INFO, 'GET_VDI_INFO'],
  [SD_OP_READ_VDIS, 'READ_VDIS'],
  [SD_OP_FLUSH_VDI, 'FLUSH_VDI'],
  [SD_OP_DEL_VDI, 'DEL_VDI'],
  [SD_OP_GET_CLUSTER_DEFAULT, 'GET_CLUSTER_DEFAULT'],
  [SD_OP_GET_NODE_LIST, 'GET_NODE_LIST'],
  [SD_OP_MAKE_FS, 'MAKE_FS'],
  [SD_OP_SHUTDOWN, 'SHUTDOWN'],
  [SD_OP_STAT_SHEEP, 'STAT_SHEEP'],
  [SD_OP_STAT_CLUSTER, 'STAT_CLUSTER'],
  [SD_OP_GET_VDI_ATTR, 'GET_VDI_ATTR'],
  [SD_OP_FORCE_RECOVER, 'FORCE_RECOVER'],
  [SD_OP_GET_STORE_LIST, 'GET_STORE_LIST'],
  [SD_OP_CLEANUP, 'CLEANUP'],
  [SD_OP_STAT_RECOVERY, 'STAT_RECOVERY'],
  [SD_OP_FLUSH_DEL_CACHE, 'FLUSH_DEL_CACHE'],
  [SD_OP_NOTIFY_VDI_DEL, 'NOTIFY_VDI_DEL'],
  [SD_OP_KILL_NODE, 'KILL_NODE'],
  [SD_OP_GET_OBJ_LIST, 'GET_OBJ_LIST'],
  [SD_OP_GET_EPOCH, 'GET_EPOCH'],
  [SD_OP_CREATE_AND_WRITE_PEER, 'CREATE_AND_WRITE_PEER'],
  [SD_OP_READ_PEER, 'READ_PEER'],
  [SD_OP_WRITE_PEER, 'WRITE_PEER'],
  [SD_OP_REMOVE_PEER, 'REMOVE_PEER'],
  [SD_OP_ENABLE_RECOVER, 'ENABLE_RECOVER'],
  [SD_OP_DISABLE_RECOVER, 'DISABLE_RECOVER'],
  [SD_OP_GET_VDI_COPIES, 'GET_VDI_COPIES'],
  [SD_OP_COMPLETE_RECOVERY, 'COMPLETE_RECOVERY'],
  [SD_OP_NOTIFY_VDI_ADD, 'NOTIFY_VDI_ADD'],
  [SD_OP_DELETE_CACHE, 'DELETE_CACHE'],
  [SD_OP_MD_INFO, 'MD_INFO'],
  [SD_OP_MD_PLUG, 'MD_PLUG'],
  [SD_OP_MD_UNPLUG, 'MD_UNPLUG'],
  [SD_OP_GET_HASH, 'GET_HASH'],
  [SD_OP_REWEIGHT, 'REWEIGHT'],
  [SD_OP_STAT, 'STAT'],
  [SD_OP_GET_LOGLEVEL, 'GET_LOGLEVEL'],
  [SD_OP_SET_LOGLEVEL, 'SET_LOGLEVEL'],
  [SD_OP_EXIST, 'EXIST'],
  [SD_OP_CLUSTER_INFO, 'CLUSTER_INFO'],
  [SD_OP_ALTER_CLUSTER_COPY, 'ALTER_CLUSTER_COPY'],
  [SD_OP_ALTER_VDI_COPY, 'ALTER_VDI_COPY'],
  [SD_OP_DECREF_OBJ, 'DECREF_OBJ'],
  [SD_OP_DECREF_PEER, 'DECREF_PEER'],
  [SD_OP_REPAIR_REPLICA, 'REPAIR_REPLICA'],
  [SD_OP_OIDS_EXIST, 'OIDS_EXIST'],
  [SD_OP_VDI_STATE_CHECKPOINT_CTL, 'VDI_STATE_CHECKPOINT_CTL'],
  [SD_OP_INODE_COHERENCE, 'INODE_COHERENCE'],
  [SD_OP_READ_DEL_VDIS, 'READ_DEL_VDIS'],
  [SD_OP_GET_RECOVERY, 'GET_RECOVERY'],
  [SD_OP_SET_RECOVERY, 'SET_RECOVERY'],
  [SD_OP_SET_VNODES, 'SET_VNODES'],
  [SD_OP_GET_VNODES, 'GET_VNODES'],
  [SF_OP_CREATE_EXCL, 'CREATE_EXCL'],
  [SF_OP_CMP_WRITE, 'CMP_WRITE'],
  [SF_OP_WRITE_SERIAL, 'WRITE_SERIAL'],
  [SF_OP_HELLO, 'HELLO'],
  [SF_OP_TARGET_LOCKS, 'TARGET_LOCKS'],
  [SF_OP_BREAK_LOCK, 'BREAK_LOCK'],
]);
