// Errors of the xfrm backend: the addon is missing, netlink failed, or the kernel refused a step
// (with its errno and, when it gives one, its extended-ack text). Messages never hold key material.
import { getSystemErrorName } from 'node:util';
import { ImsecError } from '../../../util/errors.ts';

/** Why an XFRM operation failed. */
export type XfrmErrorCode =
  /** native/build/Release/imsec_native.node is not built (no compiler at install time). */
  | 'XFRM_NO_ADDON'
  /** A socket call on the netlink or ESP-in-UDP socket failed (errno set). */
  | 'XFRM_SYSCALL'
  /** The kernel answered a request with an error (errno set). */
  | 'XFRM_KERNEL'
  /** No answer from the kernel in time. */
  | 'XFRM_TIMEOUT'
  /** An answer that does not parse. */
  | 'XFRM_BAD_REPLY'
  /** install() failed at one step; what it had added was removed again. */
  | 'XFRM_INSTALL_FAILED'
  /** restore(): the kernel does not hold the stored set's SAs as stored (nothing was written). */
  | 'XFRM_RESTORE_MISMATCH'
  /** This host or process cannot use the backend (no addon, no CAP_NET_ADMIN, no ESP): preflight.ts. */
  | 'XFRM_UNAVAILABLE'
  | 'XFRM_BAD_PARAMS';

/** A failure of the Linux XFRM backend (netlink, the native addon, a syscall), with a code and the errno. */
export class XfrmError extends ImsecError {
  declare readonly code: XfrmErrorCode;
  /** Positive errno (EEXIST = 17, …) when the kernel or a syscall gave one. */
  readonly errno: number | undefined;
  constructor(code: XfrmErrorCode, message: string, errno?: number) {
    super(code, message);
    this.errno = errno;
  }
}

/** "EEXIST" for 17; "errno 999" for what Node does not know. */
export function errnoName(errno: number): string {
  let name = '';
  try {
    name = getSystemErrorName(-Math.abs(errno));
  } catch {
    // not a known errno
  }
  return /^E[A-Z0-9]+$/.test(name) ? name : `errno ${Math.abs(errno)}`;
}
