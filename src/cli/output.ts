// How every command prints: JSON (snake_case keys, lowercase hex, base64 where the wire uses it)
// with --json, a short aligned table otherwise. Errors: stderr, exit 2 for bad input, 1 for a
// failed check.
import { ImsecError } from '../util/errors.ts';

export type Row = Record<string, string | number | boolean | null | undefined>;

/** Prints one result object: JSON with --json, else `key  value` lines. */
export function printResult(result: Record<string, unknown>, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    return;
  }
  const keys = Object.keys(result).filter((k) => result[k] !== undefined);
  const width = Math.max(0, ...keys.map((k) => k.length));
  for (const k of keys) {
    const v = result[k];
    const text = typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
    process.stdout.write(`${k.padEnd(width)}  ${text}\n`);
  }
}

/** Prints rows as an aligned table (human mode) or a JSON array. */
export function printTable(rows: Row[], json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return;
  }
  if (rows.length === 0) return;
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: Row[string]) => (v === undefined || v === null ? '' : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd() + '\n';
  process.stdout.write(line(cols));
  for (const r of rows) process.stdout.write(line(cols.map((c) => cell(r[c]))));
}

/**
 * `imsec esp decode … | head`: a reader that went away is not an error. On EPIPE stop at once,
 * quietly (no stack trace, exit 0 as the output that was wanted has been taken).
 */
export function exitQuietlyOnEpipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
  }
}

/** Exit status for a failed check (e.g. result=mac_failure). */
export const EXIT_CHECK_FAILED = 1;
/** Exit status for input that does not parse or is out of range. */
export const EXIT_BAD_INPUT = 2;
/** EX_SOFTWARE (sysexits.h): a bug, as opposed to bad input (2) or a failed check (1). */
export const EXIT_INTERNAL = 70;

/**
 * Error codes that mean "the input was well-formed and the check said no" (exit 1), not "the input
 * is bad" (exit 2): an AKA verdict, a negotiation or verification that fails, an unknown subscriber.
 */
const CHECK_FAILED_CODES: ReadonlySet<string> = new Set([
  'AKA_MAC_FAILURE',
  'AKA_SYNC_FAILURE',
  'AKA_BAD_AUTS',
  'SECAGREE_NO_COMMON_ALG',
  'SECAGREE_NAT_NO_UDP_ENC_TUN',
  'SECAGREE_NO_SERVER_MECHANISM',
  'SECAGREE_VERIFY_MISMATCH',
  'SECAGREE_CLIENT_CHANGED',
  'HSS_UNKNOWN_IMPI',
]);

/**
 * The one place the CLI turns an error into its exit status (issue 12 §4): by the error's code.
 * Every typed error (ImsecError) is bad input or an environment to fix (2) unless its code names a
 * failed check (1); anything untyped is a bug (70).
 */
export function exitCodeFor(err: unknown): number {
  if (err instanceof ImsecError) return CHECK_FAILED_CODES.has(err.code) ? EXIT_CHECK_FAILED : EXIT_BAD_INPUT;
  return EXIT_INTERNAL;
}

/** Turns an error into a stderr line and the exit status the CLI contract promises. */
export function reportError(err: unknown): number {
  if (err instanceof ImsecError) {
    process.stderr.write(`imsec: ${err.message}\n`);
    return exitCodeFor(err);
  }
  const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`imsec: internal error: ${msg}\n`);
  return exitCodeFor(err);
}

/** A command's expected failure (a result's error): one line with its code, the exit status by code. */
export function reportFailure(err: ImsecError): void {
  process.stderr.write(`imsec: ${err.message} [${err.code}]\n`);
  process.exitCode = exitCodeFor(err);
}
