// Protocol errors raised by the NBD codec: malformed or hostile bytes. Each has a stable `code`; a front end
// decides whether the code closes the connection (bad magic, oversize frame) or earns an error reply.
import { SheepfoldError } from '../../util/errors.js';

export type NbdProtocolErrorCode =
  | 'BAD_MAGIC' // a magic number did not match: the stream is out of sync, close it
  | 'OVERSIZE' // a length field exceeds the configured limit (checked before allocating)
  | 'MALFORMED' // a well-framed message whose content does not parse
  | 'BAD_FLAGS'; // client flags the server does not know

export class NbdProtocolError extends SheepfoldError<NbdProtocolErrorCode> {}
