// Identity, address and file arguments of the CLI, checked before anything is sent or written
// (issue 10 §5): each bad value is an InputError (exit 2) that names the flag.
import { accessSync, constants, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { parseUri } from '../sip/uri.ts';
import { InputError } from '../util/errors.ts';

const show = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);

/** TS 23.003 §13.3: an IMPI is a NAI, username@realm, the realm a domain name. */
export function impiArg(text: string, flag = '--impi'): string {
  if (!/^[^\s@\x00-\x1f\x7f]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(text)) {
    throw new InputError(`${flag}: a private identity is user@realm (TS 23.003 §13.3), got ${show(text)}`);
  }
  return text;
}

/** A sip:, sips: or tel: URI that parses (a public identity, a Request-URI). */
export function uriArg(text: string, flag: string): string {
  if (!parseUri(text).ok) throw new InputError(`${flag}: not a sip:, sips: or tel: URI: ${show(text)}`);
  return text;
}

/** An IP address or a DNS host name (RFC 1123 labels), as Via sent-by and Route hosts allow. */
export function hostArg(text: string, flag: string): string {
  if (isIP(text) !== 0) return text;
  const label = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  if (text.length <= 253 && text.split('.').every((l) => label.test(l)) && !/^[0-9.]+$/.test(text)) return text;
  throw new InputError(`${flag}: not an IP address or host name: ${show(text)}`);
}

/**
 * A file the command will write: its directory must exist and be writable, and the path must not
 * be a directory. Checked up front so that a bad path fails before any packet is sent.
 */
export function writableFileArg(path: string, flag: string): string {
  if (path === '') throw new InputError(`${flag}: empty file name`);
  const full = resolve(path);
  const dir = dirname(full);
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    accessSync(dir, constants.W_OK);
  } catch {
    throw new InputError(`${flag}: cannot write ${show(path)}: directory ${show(dir)} does not exist or is not writable`);
  }
  try {
    if (statSync(full).isDirectory()) throw new InputError(`${flag}: ${show(path)} is a directory`);
  } catch (e) {
    if (e instanceof InputError) throw e;
  }
  return path;
}
