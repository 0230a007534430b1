// One shape for expected failures (issue 12 §4): a parser of untrusted input returns
// `{ ok: true, value } | { ok: false, error }`, the error a typed ImsecError whose `code` callers and
// the CLI switch on. Exceptions are for bugs (and for misuse of an API by trusted code).
import { ImsecError } from './errors.ts';

export type Result<T, E extends ImsecError = ImsecError> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export const ok = <T>(value: T): { readonly ok: true; readonly value: T } => ({ ok: true, value });
export const err = <E extends ImsecError>(error: E): { readonly ok: false; readonly error: E } => ({ ok: false, error });

/**
 * Runs a parser written in the throwing style and turns its layer's error (`cls`) into a Result;
 * anything else it throws is a bug and propagates. The bridge that lets a codec keep its internal
 * early-exit style while its callers see one shape.
 */
export function attempt<T, E extends ImsecError>(cls: abstract new (...args: never[]) => E, f: () => T): Result<T, E> {
  try {
    return ok(f());
  } catch (e) {
    if (e instanceof cls) return err(e);
    throw e;
  }
}

/** The value of a result, or its error thrown: for trusted input (tests, tools) only. */
export function unwrap<T, E extends ImsecError>(r: Result<T, E>): T {
  if (r.ok) return r.value;
  throw r.error;
}
