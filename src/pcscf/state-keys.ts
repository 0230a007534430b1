// Keys at rest in the P-CSCF state store (issue 13 §3). The store file is created owner-only
// (0600); on top of that the key column can be sealed with AES-256-GCM under a 32-octet key given
// in a file or an environment variable, so a copied database or backup without that key yields no
// ESP keys. Each blob is bound to its row (the set's store key is the AAD): a sealed blob moved to
// another row does not open.
//
//   plain:  0x00 ‖ keys
//   sealed: 0x01 ‖ IV (12) ‖ ciphertext ‖ tag (16)
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ImsecError, InputError } from '../util/errors.ts';

export class StateKeyError extends ImsecError {
  constructor(message: string) {
    super('STATE_KEY', message);
  }
}

/** Seals and opens the key column. */
export interface KeySealer {
  readonly encrypted: boolean;
  seal(keys: Uint8Array, rowKey: string): Uint8Array;
  open(blob: Uint8Array, rowKey: string): Uint8Array;
}

const PLAIN = 0x00;
const SEALED = 0x01;

/** No encryption: the file's 0600 mode is the only protection. Refuses sealed blobs (names the fix). */
export const PLAIN_KEYS: KeySealer = {
  encrypted: false,
  seal: (keys) => {
    const out = new Uint8Array(1 + keys.length);
    out[0] = PLAIN;
    out.set(keys, 1);
    return out;
  },
  open: (blob, rowKey) => {
    if (blob[0] === SEALED)
      throw new StateKeyError(`state store: the keys of ${rowKey} are encrypted; give the key (--state-key-file or IMSEC_STATE_KEY)`);
    if (blob[0] !== PLAIN) throw new StateKeyError(`state store: the keys of ${rowKey} are in an unknown format`);
    return blob.slice(1);
  },
};

/** AES-256-GCM under `key` (32 octets). Opens plain blobs too (a store that was not encrypted before). */
export function aesGcmSealer(key: Uint8Array): KeySealer {
  if (key.length !== 32) throw new InputError(`state key: must be 32 octets (AES-256), got ${key.length}`);
  const k = Buffer.from(key);
  return {
    encrypted: true,
    seal(keys, rowKey) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', k, iv);
      c.setAAD(Buffer.from(rowKey, 'utf8'));
      const body = Buffer.concat([c.update(keys), c.final()]);
      return new Uint8Array(Buffer.concat([Buffer.of(SEALED), iv, body, c.getAuthTag()]));
    },
    open(blob, rowKey) {
      if (blob[0] === PLAIN) return PLAIN_KEYS.open(blob, rowKey);
      if (blob[0] !== SEALED || blob.length < 1 + 12 + 16)
        throw new StateKeyError(`state store: the keys of ${rowKey} are in an unknown format`);
      const d = createDecipheriv('aes-256-gcm', k, blob.subarray(1, 13));
      d.setAAD(Buffer.from(rowKey, 'utf8'));
      d.setAuthTag(blob.subarray(blob.length - 16));
      try {
        return new Uint8Array(Buffer.concat([d.update(blob.subarray(13, blob.length - 16)), d.final()]));
      } catch {
        throw new StateKeyError(`state store: the keys of ${rowKey} do not open with this state key (wrong key, or the row was altered)`);
      }
    },
  };
}

/** The state key as text: 64 hex digits, or base64 of 32 octets. */
export function parseStateKey(text: string, where: string): Uint8Array {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return new Uint8Array(Buffer.from(t, 'hex'));
  if (/^[A-Za-z0-9+/]{43}=$/.test(t)) return new Uint8Array(Buffer.from(t, 'base64'));
  throw new InputError(`${where}: the state key must be 64 hex digits or base64 of 32 octets`);
}

/** The sealer for `--state-key-file FILE`, else IMSEC_STATE_KEY, else none (plain). */
export function sealerFrom(opts: { file?: string; env?: NodeJS.ProcessEnv }): KeySealer {
  if (opts.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      throw new InputError(`--state-key-file: cannot read ${opts.file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    return aesGcmSealer(parseStateKey(text, '--state-key-file'));
  }
  const env = (opts.env ?? process.env).IMSEC_STATE_KEY;
  return env !== undefined && env !== '' ? aesGcmSealer(parseStateKey(env, 'IMSEC_STATE_KEY')) : PLAIN_KEYS;
}
