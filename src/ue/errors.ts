// Errors of the UE (misuse: calling a method in the wrong state, bad options). Expected protocol
// outcomes (MAC failure, 403, no Security-Server, …) are RegistrationResult values, never these.
import { ImsecError } from '../util/errors.ts';

/** Why a UE operation failed. */
export type UeErrorCode =
  | 'UE_ILLEGAL_TRANSITION'
  | 'UE_BAD_OPTIONS'
  /** A request that needs a registration (MESSAGE, re-registration, de-registration) without one. */
  | 'UE_NOT_REGISTERED'
  /** A second registration procedure while one runs. */
  | 'UE_BUSY'
  | 'UE_CLOSED'
  /** No free protected port could be found in the port range. */
  | 'UE_NO_PORT';

/** A failure of the UE (bad options, not registered, illegal transition, …), with a code. */
export class UeError extends ImsecError {
  declare readonly code: UeErrorCode;
  constructor(code: UeErrorCode, message: string) {
    super(code, message);
  }
}
