// Errors of the backends: resources the host refuses (ports, capabilities), not bad packets.
import { ImsecError } from '../../util/errors.ts';

/** Why a backend operation failed. */
export type BackendErrorCode =
  /** mod=trans needs a raw IP socket for protocol 50, i.e. CAP_NET_RAW. */
  | 'BACKEND_NEED_CAP_NET_RAW'
  | 'BACKEND_NO_RAW_SOCKET'
  | 'BACKEND_BIND_FAILED'
  | 'BACKEND_SEND_FAILED'
  | 'BACKEND_BAD_PARAMS'
  /** A protected port that another owner has open. */
  | 'BACKEND_PORT_IN_USE'
  /** No live SA set protects the requested port pair. */
  | 'BACKEND_NO_SA';

/** A failure of an IPsec backend (socket, capability, install), with a code. */
export class BackendError extends ImsecError {
  declare readonly code: BackendErrorCode;
  constructor(code: BackendErrorCode, message: string) {
    super(code, message);
  }
}
