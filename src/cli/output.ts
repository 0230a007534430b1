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
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd() + '\n';
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

/** Turns an error into a stderr line and the exit status the CLI contract promises. */
export function reportError(err: unknown): number {
  if (err instanceof ImsecError) {
    process.stderr.write(`imsec: ${err.message}\n`);
    return EXIT_BAD_INPUT;
  }
  const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`imsec: internal error: ${msg}\n`);
  return EXIT_CHECK_FAILED;
}
