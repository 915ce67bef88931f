// SCSI constants named as in SPC-4 / SBC-3 / SAM-5: operation codes, status, sense keys, ASC/ASCQ pairs,
// VPD page codes and mode page codes used by the Sheepfold iSCSI target.

// Status (SAM-5 §5.3)
export const SAM_STAT_GOOD = 0x00;
export const SAM_STAT_CHECK_CONDITION = 0x02;
export const SAM_STAT_CONDITION_MET = 0x04;
export const SAM_STAT_BUSY = 0x08;
export const SAM_STAT_RESERVATION_CONFLICT = 0x18;
export const SAM_STAT_TASK_SET_FULL = 0x28;
export const SAM_STAT_ACA_ACTIVE = 0x30;
export const SAM_STAT_TASK_ABORTED = 0x40;

// Sense keys (SPC-4 §4.5.6)
export const NO_SENSE = 0x0;
export const RECOVERED_ERROR = 0x1;
export const NOT_READY = 0x2;
export const MEDIUM_ERROR = 0x3;
export const HARDWARE_ERROR = 0x4;
export const ILLEGAL_REQUEST = 0x5;
export const UNIT_ATTENTION = 0x6;
export const DATA_PROTECT = 0x7;
export const BLANK_CHECK = 0x8;
export const COPY_ABORTED = 0xa;
export const ABORTED_COMMAND = 0xb;
export const MISCOMPARE = 0xe;

/** Additional sense code + qualifier, as one 16-bit value (ASC << 8 | ASCQ). */
export const ASC_NO_ADDITIONAL_SENSE = 0x0000;
export const ASC_WRITE_ERROR = 0x0c00;
export const ASC_UNRECOVERED_READ_ERROR = 0x1100;
export const ASC_PARAMETER_LIST_LENGTH_ERROR = 0x1a00;
export const ASC_MISCOMPARE_DURING_VERIFY = 0x1d00;
export const ASC_INVALID_OPERATION_CODE = 0x2000;
export const ASC_LBA_OUT_OF_RANGE = 0x2100;
export const ASC_INVALID_FIELD_IN_CDB = 0x2400;
export const ASC_LUN_NOT_SUPPORTED = 0x2500;
export const ASC_INVALID_FIELD_IN_PARAMETER_LIST = 0x2600;
export const ASC_WRITE_PROTECTED = 0x2700;
export const ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT = 0x2707;
export const ASC_POWER_ON_RESET = 0x2900;
export const ASC_BUS_RESET = 0x2902;
export const ASC_BUS_DEVICE_RESET_FUNCTION_OCCURRED = 0x2903;
export const ASC_I_T_NEXUS_LOSS = 0x2907;
export const ASC_MODE_PARAMETERS_CHANGED = 0x2a01;
export const ASC_RESERVATIONS_PREEMPTED = 0x2a03;
export const ASC_RESERVATIONS_RELEASED = 0x2a04;
export const ASC_REGISTRATIONS_PREEMPTED = 0x2a05;
export const ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR = 0x2f00;
export const ASC_SAVING_PARAMETERS_NOT_SUPPORTED = 0x3900;
export const ASC_MEDIUM_NOT_PRESENT = 0x3a00;
/** LOGICAL UNIT IS IN PROCESS OF BECOMING READY (04/01): the backend is being reached again. */
export const ASC_LUN_BECOMING_READY = 0x0401;
export const ASC_MEDIUM_REMOVAL_PREVENTED = 0x5302;
export const ASC_INTERNAL_TARGET_FAILURE = 0x4400;
export const ASC_DATA_PHASE_ERROR = 0x4b00;
export const ASC_INSUFFICIENT_REGISTRATION_RESOURCES = 0x5504;
export const ASC_COPY_TARGET_DEVICE_NOT_REACHABLE = 0x0d02;
export const ASC_TOO_MANY_TARGET_DESCRIPTORS = 0x2606;
export const ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE = 0x2607;
export const ASC_TOO_MANY_SEGMENT_DESCRIPTORS = 0x2608;
export const ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE = 0x2609;
export const ASC_LUN_NOT_READY_MANUAL_INTERVENTION = 0x0403;

// Operation codes (SPC-4, SBC-3)
export const TEST_UNIT_READY = 0x00;
export const REQUEST_SENSE = 0x03;
export const READ_6 = 0x08;
export const WRITE_6 = 0x0a;
export const INQUIRY = 0x12;
export const MODE_SELECT_6 = 0x15;
export const RESERVE_6 = 0x16;
export const RELEASE_6 = 0x17;
export const MODE_SENSE_6 = 0x1a;
export const START_STOP_UNIT = 0x1b;
export const SEND_DIAGNOSTIC = 0x1d;
export const PREVENT_ALLOW_MEDIUM_REMOVAL = 0x1e;
export const READ_CAPACITY_10 = 0x25;
export const READ_10 = 0x28;
export const WRITE_10 = 0x2a;
export const WRITE_VERIFY_10 = 0x2e;
export const VERIFY_10 = 0x2f;
export const PRE_FETCH_10 = 0x34;
export const SYNCHRONIZE_CACHE_10 = 0x35;
export const READ_DEFECT_DATA_10 = 0x37;
export const WRITE_BUFFER = 0x3b;
export const READ_BUFFER = 0x3c;
export const WRITE_SAME_10 = 0x41;
export const SANITIZE = 0x48;
export const UNMAP = 0x42;
export const MODE_SELECT_10 = 0x55;
export const RESERVE_10 = 0x56;
export const RELEASE_10 = 0x57;
export const MODE_SENSE_10 = 0x5a;
export const PERSISTENT_RESERVE_IN = 0x5e;
export const PERSISTENT_RESERVE_OUT = 0x5f;
export const EXTENDED_COPY = 0x83;
export const RECEIVE_COPY_RESULTS = 0x84;
export const READ_16 = 0x88;
export const COMPARE_AND_WRITE = 0x89;
export const WRITE_16 = 0x8a;
export const ORWRITE_16 = 0x8b;
export const WRITE_VERIFY_16 = 0x8e;
export const VERIFY_16 = 0x8f;
export const PRE_FETCH_16 = 0x90;
export const SYNCHRONIZE_CACHE_16 = 0x91;
export const WRITE_SAME_16 = 0x93;
export const WRITE_ATOMIC_16 = 0x9c;
export const SERVICE_ACTION_IN_16 = 0x9e;
export const REPORT_LUNS = 0xa0;
export const MAINTENANCE_IN = 0xa3;
export const MAINTENANCE_OUT = 0xa4;
export const READ_12 = 0xa8;
export const WRITE_12 = 0xaa;
export const WRITE_VERIFY_12 = 0xae;
export const VERIFY_12 = 0xaf;
export const READ_DEFECT_DATA_12 = 0xb7;

// Service actions
export const SAI_READ_CAPACITY_16 = 0x10;
export const SAI_GET_LBA_STATUS = 0x12;
export const MI_REPORT_SUPPORTED_OPERATION_CODES = 0x0c;
export const MI_REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS = 0x0d;
export const MI_REPORT_TARGET_PORT_GROUPS = 0x0a;
export const XCOPY_LID1 = 0x00;
export const RCR_COPY_STATUS = 0x00;
export const RCR_OPERATING_PARAMETERS = 0x03;

// SANITIZE service actions (SBC-3 §5.30)
export const SANITIZE_OVERWRITE = 0x01;
export const SANITIZE_BLOCK_ERASE = 0x02;
export const SANITIZE_CRYPTO_ERASE = 0x03;
export const SANITIZE_EXIT_FAILURE_MODE = 0x1f;

// VPD pages (SPC-4 §7.8, SBC-3 §6.6)
export const VPD_SUPPORTED_PAGES = 0x00;
export const VPD_UNIT_SERIAL_NUMBER = 0x80;
export const VPD_DEVICE_IDENTIFICATION = 0x83;
export const VPD_EXTENDED_INQUIRY = 0x86;
export const VPD_BLOCK_LIMITS = 0xb0;
export const VPD_BLOCK_DEVICE_CHARACTERISTICS = 0xb1;
export const VPD_LOGICAL_BLOCK_PROVISIONING = 0xb2;

// Mode pages (SPC-4 §7.5, SBC-3 §6.5)
export const MODE_PAGE_RW_ERROR_RECOVERY = 0x01;
export const MODE_PAGE_DISCONNECT_RECONNECT = 0x02;
export const MODE_PAGE_FORMAT_DEVICE = 0x03;
export const MODE_PAGE_RIGID_DISK = 0x04;
export const MODE_PAGE_CACHING = 0x08;
export const MODE_PAGE_CONTROL = 0x0a;
export const MODE_PAGE_POWER_CONDITION = 0x1a;
export const MODE_PAGE_INFORMATIONAL_EXCEPTIONS = 0x1c;
export const MODE_PAGE_ALL = 0x3f;

// PERSISTENT RESERVE service actions and types (SPC-4 §6.15, §6.16)
export const PRIN_READ_KEYS = 0x00;
export const PRIN_READ_RESERVATION = 0x01;
export const PRIN_REPORT_CAPABILITIES = 0x02;
export const PRIN_READ_FULL_STATUS = 0x03;
export const PROUT_REGISTER = 0x00;
export const PROUT_RESERVE = 0x01;
export const PROUT_RELEASE = 0x02;
export const PROUT_CLEAR = 0x03;
export const PROUT_PREEMPT = 0x04;
export const PROUT_PREEMPT_AND_ABORT = 0x05;
export const PROUT_REGISTER_AND_IGNORE_EXISTING_KEY = 0x06;
export const PROUT_REGISTER_AND_MOVE = 0x07;
export const PR_TYPE_WRITE_EXCLUSIVE = 0x1;
export const PR_TYPE_EXCLUSIVE_ACCESS = 0x3;
export const PR_TYPE_WRITE_EXCLUSIVE_REGISTRANTS_ONLY = 0x5;
export const PR_TYPE_EXCLUSIVE_ACCESS_REGISTRANTS_ONLY = 0x6;
export const PR_TYPE_WRITE_EXCLUSIVE_ALL_REGISTRANTS = 0x7;
export const PR_TYPE_EXCLUSIVE_ACCESS_ALL_REGISTRANTS = 0x8;

// Peripheral device type
export const TYPE_DISK = 0x00;
