// The one table that maps BlockDevice errors to NBD errno values on the wire (proto.md "Error values").
import { BlockError, type BlockErrorCode } from '../block/device.js';
import {
  NBD_EINVAL,
  NBD_EIO,
  NBD_ENOSPC,
  NBD_ENOTSUP,
  NBD_EPERM,
  NBD_ESHUTDOWN,
} from '../proto/nbd/constants.js';

export const NBD_ERRNO_BY_CODE: Readonly<Record<BlockErrorCode, number>> = {
  EIO: NBD_EIO,
  ENOSPC: NBD_ENOSPC,
  EROFS: NBD_EPERM, // spec: writes to a read-only export SHOULD fail with EPERM
  EINVAL: NBD_EINVAL,
  ENOTSUP: NBD_ENOTSUP, // only FAST_ZERO produces it
  ESHUTDOWN: NBD_ESHUTDOWN,
  ECONFLICT: NBD_EPERM, // another path holds the device: not permitted from here
};

/** The NBD errno for any error a device raised; anything that is not a BlockError is an EIO. */
export function nbdErrno(err: unknown): number {
  return err instanceof BlockError ? NBD_ERRNO_BY_CODE[err.code] : NBD_EIO;
}
