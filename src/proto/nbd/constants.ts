// NBD protocol constants, named exactly as in the NBD spec (NetworkBlockDevice/nbd doc/proto.md, "Values").
// Magics are bigint when 64 bits wide; all wire integers are big-endian.

// --- magics (proto.md "Handshake", "Transmission") ---
/** 'NBDMAGIC', also known as INIT_PASSWD. */
export const NBDMAGIC = 0x4e42444d41474943n;
/** 'IHAVEOPT': newstyle handshake magic and the option request magic. */
export const IHAVEOPT = 0x49484156454f5054n;
/** Oldstyle cliserv_magic (not served; named for completeness). */
export const NBD_CLISERV_MAGIC = 0x00420281861253n;
/** Option reply magic. */
export const NBD_REP_MAGIC = 0x3e889045565a9n;
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;
export const NBD_EXTENDED_REQUEST_MAGIC = 0x21e41c71;
export const NBD_EXTENDED_REPLY_MAGIC = 0x6e8a278c;

// --- handshake flags (16 bits, server) ---
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;

// --- client flags (32 bits) ---
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

// --- transmission flags (16 bits) ---
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
export const NBD_FLAG_SEND_RESIZE = 1 << 9;
export const NBD_FLAG_SEND_CACHE = 1 << 10;
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11;
export const NBD_FLAG_BLOCK_STATUS_PAYLOAD = 1 << 12;

// --- option types ---
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_PEEK_EXPORT = 4;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;
export const NBD_OPT_EXTENDED_HEADERS = 11;

// --- option reply types ---
export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
/** Error replies have bit 31 set. */
export const NBD_REP_FLAG_ERROR = 0x80000000;
export const NBD_REP_ERR_UNSUP = 0x80000001;
export const NBD_REP_ERR_POLICY = 0x80000002;
export const NBD_REP_ERR_INVALID = 0x80000003;
export const NBD_REP_ERR_PLATFORM = 0x80000004;
export const NBD_REP_ERR_TLS_REQD = 0x80000005;
export const NBD_REP_ERR_UNKNOWN = 0x80000006;
export const NBD_REP_ERR_SHUTDOWN = 0x80000007;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = 0x80000008;
export const NBD_REP_ERR_TOO_BIG = 0x80000009;
export const NBD_REP_ERR_EXT_HEADER_REQD = 0x8000000a;

// --- NBD_REP_INFO information types ---
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

// --- command flags (16 bits) ---
export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;
export const NBD_CMD_FLAG_PAYLOAD_LEN = 1 << 5;

// --- request types ---
export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;
export const NBD_CMD_RESIZE = 8;

// --- structured reply flags and types ---
export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_BLOCK_STATUS_EXT = 6;
/** Error chunk types have bit 15 set. */
export const NBD_REPLY_TYPE_FLAG_ERROR = 1 << 15;
export const NBD_REPLY_TYPE_ERROR = 0x8001;
export const NBD_REPLY_TYPE_ERROR_OFFSET = 0x8002;

// --- base:allocation status flags ---
export const NBD_STATE_HOLE = 1 << 0;
export const NBD_STATE_ZERO = 1 << 1;

// --- error values (proto.md "Error values") ---
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

// --- metadata contexts ---
export const BASE_ALLOCATION = 'base:allocation';

// --- wire sizes (bytes) ---
/** Server greeting: NBDMAGIC + IHAVEOPT + 16-bit handshake flags. */
export const NBD_GREETING_SIZE = 18;
export const NBD_CLIENT_FLAGS_SIZE = 4;
/** Option request header: IHAVEOPT + option + length. */
export const NBD_OPTION_HEADER_SIZE = 16;
/** Option reply header: magic + option + type + length. */
export const NBD_OPTION_REPLY_HEADER_SIZE = 20;
/** NBD_OPT_EXPORT_NAME reply without the 124 zero bytes. */
export const NBD_EXPORT_NAME_REPLY_SIZE = 10;
export const NBD_EXPORT_NAME_PAD_SIZE = 124;
export const NBD_REQUEST_SIZE = 28;
export const NBD_SIMPLE_REPLY_SIZE = 16;
export const NBD_STRUCTURED_REPLY_HEADER_SIZE = 20;
/** NBD_REPLY_TYPE_OFFSET_DATA fixed payload part: 64-bit offset. */
export const NBD_OFFSET_DATA_PREFIX_SIZE = 8;
export const NBD_OFFSET_HOLE_PAYLOAD_SIZE = 12;
export const NBD_BLOCK_DESCRIPTOR_SIZE = 8;

// --- limits from the spec ---
/** Strings (export names, messages) MUST be no longer than this. */
export const NBD_MAX_STRING_LENGTH = 4096;
/** Payloads up to this size SHOULD NOT be treated as a denial of service. */
export const NBD_DEFAULT_MAX_PAYLOAD = 1 << 25;
/** Servers SHOULD NOT send more extents than this in one block status chunk. */
export const NBD_MAX_BLOCK_DESCRIPTORS = 1 << 20;
