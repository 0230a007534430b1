// Errors of the AKA layer (TS 33.102, TS 35.206, RFC 3310/4169). Expected outcomes (MAC failure,
// sync failure, wrong MAC-S) are result values; these classes are for callers that prefer to throw
// and for misuse. Messages name the field, never key material.
import { ImsecError, InputError } from '../util/errors.ts';

/** Codes of {@link AkaError} (and AKA_BAD_INPUT of the layer's InputErrors). */
export type AkaErrorCode =
  | 'AKA_MAC_FAILURE'
  | 'AKA_SYNC_FAILURE'
  | 'AKA_BAD_AUTS'
  | 'AKA_SQN_EXHAUSTED'
  /** Carried by the InputError that {@link akaInputError} builds, so `instanceof InputError` holds. */
  | 'AKA_BAD_INPUT';

/** A protocol outcome turned into an exception (see `akaFailureError`) or an exhausted SQN space. */
export class AkaError extends ImsecError {
  declare readonly code: AkaErrorCode;
  constructor(code: Exclude<AkaErrorCode, 'AKA_BAD_INPUT'>, message: string) {
    super(code, message);
  }
}

/** Malformed or out-of-range input to the AKA layer: an InputError with code AKA_BAD_INPUT (CLI exit 2). */
export function akaInputError(field: string, message: string): InputError {
  return new InputError(`${field}: ${message}`, 'AKA_BAD_INPUT');
}

/** Throws unless `b` has exactly `len` octets. Only lengths go into the message. */
export function checkLen(b: Uint8Array, len: number, field: string): void {
  if (!(b instanceof Uint8Array)) throw akaInputError(field, 'must be a Uint8Array');
  if (b.length !== len) throw akaInputError(field, `must be ${len} octets, got ${b.length}`);
}
