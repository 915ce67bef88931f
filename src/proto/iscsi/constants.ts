// iSCSI wire constants (RFC 7143 §11): opcodes, BHS offsets, flags, login/logout/TMF/reject codes.
// Names follow the RFC (and the ISCSI_OP_* spelling of the Linux and libiscsi headers).

export const BHS_SIZE = 48;
export const DIGEST_SIZE = 4;
/** The reserved ITT/TTT value. */
export const RESERVED_TAG = 0xffffffff;

// Initiator opcodes (§11.1.1)
export const ISCSI_OP_NOOP_OUT = 0x00;
export const ISCSI_OP_SCSI_CMD = 0x01;
export const ISCSI_OP_SCSI_TMFUNC = 0x02;
export const ISCSI_OP_LOGIN = 0x03;
export const ISCSI_OP_TEXT = 0x04;
export const ISCSI_OP_SCSI_DATA_OUT = 0x05;
export const ISCSI_OP_LOGOUT = 0x06;
export const ISCSI_OP_SNACK = 0x10;
// Target opcodes
export const ISCSI_OP_NOOP_IN = 0x20;
export const ISCSI_OP_SCSI_CMD_RSP = 0x21;
export const ISCSI_OP_SCSI_TMFUNC_RSP = 0x22;
export const ISCSI_OP_LOGIN_RSP = 0x23;
export const ISCSI_OP_TEXT_RSP = 0x24;
export const ISCSI_OP_SCSI_DATA_IN = 0x25;
export const ISCSI_OP_LOGOUT_RSP = 0x26;
export const ISCSI_OP_R2T = 0x31;
export const ISCSI_OP_ASYNC_EVENT = 0x32;
export const ISCSI_OP_REJECT = 0x3f;

export const ISCSI_OPCODE_MASK = 0x3f;
export const ISCSI_OP_IMMEDIATE = 0x40;

// Common flags (byte 1)
export const ISCSI_FLAG_FINAL = 0x80;
export const ISCSI_FLAG_CMD_READ = 0x40;
export const ISCSI_FLAG_CMD_WRITE = 0x20;
export const ISCSI_FLAG_CMD_ATTR_MASK = 0x07;
export const ISCSI_FLAG_CONTINUE = 0x40; // Text / Login C bit
export const ISCSI_FLAG_LOGIN_TRANSIT = 0x80;
export const ISCSI_FLAG_DATA_ACK = 0x40;
export const ISCSI_FLAG_DATA_OVERFLOW = 0x04;
export const ISCSI_FLAG_DATA_UNDERFLOW = 0x02;
export const ISCSI_FLAG_DATA_STATUS = 0x01;
export const ISCSI_FLAG_CMD_BIDI_OVERFLOW = 0x10;
export const ISCSI_FLAG_CMD_BIDI_UNDERFLOW = 0x08;
export const ISCSI_FLAG_CMD_OVERFLOW = 0x04;
export const ISCSI_FLAG_CMD_UNDERFLOW = 0x02;

// Login stages (CSG/NSG)
export const ISCSI_SECURITY_NEGOTIATION_STAGE = 0;
export const ISCSI_OP_PARMS_NEGOTIATION_STAGE = 1;
export const ISCSI_FULL_FEATURE_PHASE = 3;

// Login status class/detail (§11.13.5)
export const ISCSI_STATUS_CLS_SUCCESS = 0x00;
export const ISCSI_STATUS_CLS_REDIRECT = 0x01;
export const ISCSI_STATUS_CLS_INITIATOR_ERR = 0x02;
export const ISCSI_STATUS_CLS_TARGET_ERR = 0x03;
export const ISCSI_LOGIN_STATUS_INIT_ERR = 0x00;
export const ISCSI_LOGIN_STATUS_AUTH_FAILED = 0x01;
export const ISCSI_LOGIN_STATUS_TGT_FORBIDDEN = 0x02;
export const ISCSI_LOGIN_STATUS_TGT_NOT_FOUND = 0x03;
export const ISCSI_LOGIN_STATUS_TGT_REMOVED = 0x04;
export const ISCSI_LOGIN_STATUS_NO_VERSION = 0x05;
export const ISCSI_LOGIN_STATUS_ISID_ERROR = 0x06;
export const ISCSI_LOGIN_STATUS_MISSING_FIELDS = 0x07;
export const ISCSI_LOGIN_STATUS_CONN_ADD_FAILED = 0x08;
export const ISCSI_LOGIN_STATUS_NO_SESSION_TYPE = 0x09;
export const ISCSI_LOGIN_STATUS_NO_SESSION = 0x0a;
export const ISCSI_LOGIN_STATUS_INVALID_REQUEST = 0x0b;
export const ISCSI_LOGIN_STATUS_TARGET_ERROR = 0x00;
export const ISCSI_LOGIN_STATUS_SVC_UNAVAILABLE = 0x01;
export const ISCSI_LOGIN_STATUS_NO_RESOURCES = 0x02;

// Task management functions (§11.5.1)
export const ISCSI_TM_FUNC_ABORT_TASK = 1;
export const ISCSI_TM_FUNC_ABORT_TASK_SET = 2;
export const ISCSI_TM_FUNC_CLEAR_ACA = 3;
export const ISCSI_TM_FUNC_CLEAR_TASK_SET = 4;
export const ISCSI_TM_FUNC_LOGICAL_UNIT_RESET = 5;
export const ISCSI_TM_FUNC_TARGET_WARM_RESET = 6;
export const ISCSI_TM_FUNC_TARGET_COLD_RESET = 7;
export const ISCSI_TM_FUNC_TASK_REASSIGN = 8;
// TMF responses (§11.6.1)
export const ISCSI_TMF_RSP_COMPLETE = 0;
export const ISCSI_TMF_RSP_NO_TASK = 1;
export const ISCSI_TMF_RSP_NO_LUN = 2;
export const ISCSI_TMF_RSP_TASK_ALLEGIANT = 3;
export const ISCSI_TMF_RSP_NO_FAILOVER = 4;
export const ISCSI_TMF_RSP_NOT_SUPPORTED = 5;
export const ISCSI_TMF_RSP_AUTH_FAILED = 6;
export const ISCSI_TMF_RSP_REJECTED = 255;

// Logout reasons / responses (§11.14, §11.15)
export const ISCSI_LOGOUT_REASON_CLOSE_SESSION = 0;
export const ISCSI_LOGOUT_REASON_CLOSE_CONNECTION = 1;
export const ISCSI_LOGOUT_REASON_RECOVERY = 2;
export const ISCSI_LOGOUT_SUCCESS = 0;
export const ISCSI_LOGOUT_CID_NOT_FOUND = 1;
export const ISCSI_LOGOUT_RECOVERY_UNSUPPORTED = 2;
export const ISCSI_LOGOUT_CLEANUP_FAILED = 3;

// Reject reasons (§11.17.1)
export const ISCSI_REASON_DATA_DIGEST_ERROR = 0x02;
export const ISCSI_REASON_SNACK_REJECT = 0x03;
export const ISCSI_REASON_PROTOCOL_ERROR = 0x04;
export const ISCSI_REASON_CMD_NOT_SUPPORTED = 0x05;
export const ISCSI_REASON_IMM_CMD_REJECT = 0x06;
export const ISCSI_REASON_TASK_IN_PROGRESS = 0x07;
export const ISCSI_REASON_INVALID_DATA_ACK = 0x08;
export const ISCSI_REASON_BOOKMARK_INVALID = 0x09;
export const ISCSI_REASON_BOOKMARK_NO_RESOURCES = 0x0a;
export const ISCSI_REASON_NEGOTIATION_RESET = 0x0b;
export const ISCSI_REASON_WAITING_FOR_LOGOUT = 0x0c;

// SCSI Response "response" byte (§11.4.3)
export const ISCSI_STATUS_CMD_COMPLETED = 0x00;
export const ISCSI_STATUS_TARGET_FAILURE = 0x01;

// Async event codes (§11.9.1)
export const ISCSI_ASYNC_MSG_SCSI_EVENT = 0;
export const ISCSI_ASYNC_MSG_REQUEST_LOGOUT = 1;
export const ISCSI_ASYNC_MSG_DROPPING_CONNECTION = 2;
export const ISCSI_ASYNC_MSG_DROPPING_ALL_CONNECTIONS = 3;
export const ISCSI_ASYNC_MSG_PARAM_NEGOTIATION = 4;

export const ISCSI_DRAFT20_VERSION = 0x00;
