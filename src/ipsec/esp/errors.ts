// Errors the ESP engine throws on misuse (wrong key length, sequence exhausted, bad argument).
// Expected packet failures are never thrown: they are EspOpenResult drops. Messages carry no key bytes.
import { ImsecError } from '../../util/errors.ts';

/** Codes of {@link EspError}. */
export type EspErrorCode = 'ESP_SEQ_EXHAUSTED' | 'ESP_BAD_KEY' | 'ESP_UNSUPPORTED' | 'ESP_BAD_INPUT';

/** Misuse of the ESP engine (bad key length, unsupported algorithm, sequence numbers exhausted); a bad packet is a drop, never this. */
export class EspError extends ImsecError {
  declare readonly code: EspErrorCode;
  constructor(code: EspErrorCode, message: string) {
    super(code, message);
  }
}
