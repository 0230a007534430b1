// Structured logs for the long-running commands (pcscf, core): pino records, as JSON lines when
// stdout is not a terminal (or --json), as one human line per record on a terminal. Fields that
// could hold key material are censored by name, and drops are summarised: one record per reason
// per interval, whatever the packet rate.
import { pino, type DestinationStream, type Logger } from 'pino';
import { z } from 'zod';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const logLevelField = () => z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).default('info');

// Names that carry keys somewhere in imsec (AKA, Digest, ESP); never printed, at any depth we log.
const SECRET_NAMES = ['k', 'op', 'opc', 'ck', 'ik', 'xres', 'res', 'ckEsp', 'ikEsp', 'key', 'keys', 'salt', 'password', 'authorization'];
const REDACT_PATHS = SECRET_NAMES.flatMap((n) => [n, `*.${n}`, `*.*.${n}`]);

export interface LogOptions {
  readonly level: LogLevel;
  /** JSON lines; default: when stdout is not a TTY. */
  readonly json?: boolean;
  /** Where lines go (without the newline); default stdout. */
  readonly write?: (line: string) => void;
  /** The human line of a record (terminal mode); default `prettyRecord`. */
  readonly pretty?: (record: Record<string, unknown>) => string;
  /** Added to every record (e.g. { service: 'pcscf' }). */
  readonly base?: Record<string, unknown>;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const RECORD_META = new Set(['level', 'time', 'pid', 'hostname', 'service', 'msg', 'event']);

function flat(prefix: string, v: unknown, out: string[]): void {
  if (v === undefined) return;
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if (typeof o['address'] === 'string' && typeof o['port'] === 'number' && Object.keys(o).length === 2) {
      const a = o['address'];
      out.push(`${prefix}=${a.includes(':') ? `[${a}]` : a}:${o['port']}`);
      return;
    }
    for (const [k, x] of Object.entries(o)) flat(prefix ? `${prefix}.${k}` : k, x, out);
    return;
  }
  out.push(`${prefix}=${Array.isArray(v) ? v.join(',') : String(v)}`);
}

/** `HH:MM:SS.mmm [LEVEL] event k=v … : msg` (LEVEL only when not INFO). */
export function prettyRecord(r: Record<string, unknown>): string {
  const t = typeof r['time'] === 'string' ? r['time'].slice(11, 23) : new Date(Number(r['time'] ?? Date.now())).toISOString().slice(11, 23);
  const level = LEVEL_NAMES[Number(r['level'])] ?? 'INFO';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(r)) if (!RECORD_META.has(k)) flat(k, v, parts);
  const head = [t, ...(level === 'INFO' ? [] : [level]), ...(r['event'] !== undefined ? [String(r['event'])] : [])];
  return `${[...head, ...parts].join(' ')}${r['msg'] === undefined ? '' : `: ${String(r['msg'])}`}`;
}

export function createLogger(o: LogOptions): Logger {
  const json = o.json ?? !process.stdout.isTTY;
  const write = o.write ?? ((l: string) => process.stdout.write(`${l}\n`));
  const pretty = o.pretty ?? prettyRecord;
  const dest: DestinationStream = {
    write: json
      ? (s: string) => write(s.endsWith('\n') ? s.slice(0, -1) : s)
      : (s: string) => write(pretty(JSON.parse(s) as Record<string, unknown>)),
  };
  return pino(
    {
      level: o.level,
      base: o.base ?? null,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Key material is bytes: never print a byte array's contents, whatever the field is called.
      formatters: { log: (rec) => scrubBytes(rec) as Record<string, unknown> },
    },
    dest,
  );
}

function scrubBytes(v: unknown, depth = 0): unknown {
  if (v instanceof Uint8Array) return `[${v.length} bytes]`;
  if (depth > 4 || v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  let out: Record<string, unknown> | undefined;
  for (const [k, x] of Object.entries(v)) {
    const y = scrubBytes(x, depth + 1);
    if (y !== x) (out ??= { ...(v as Record<string, unknown>) })[k] = y;
  }
  return out ?? v;
}

/**
 * Counts drops by reason and logs each reason at most once per interval, with how many there were:
 * a flood of bad packets costs a counter increment each, not a log line each.
 */
export class DropLog {
  readonly #counts = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly log: Logger,
    readonly intervalMs = 10_000,
    /** Called before each flush (e.g. to add the ESP drop counters' growth since the last one). */
    readonly poll?: (drop: DropLog) => void,
  ) {
    this.#timer = setInterval(() => this.flush(), intervalMs);
    this.#timer.unref();
  }

  note(reason: string, n = 1, fields?: Record<string, unknown>): void {
    if (n <= 0) return;
    this.#counts.set(reason, (this.#counts.get(reason) ?? 0) + n);
    if (fields && !this.#fields.has(reason)) this.#fields.set(reason, fields);
  }
  readonly #fields = new Map<string, Record<string, unknown>>();

  /** Logs one record per reason seen since the last flush. */
  flush(): void {
    this.poll?.(this);
    for (const [reason, count] of this.#counts) {
      this.log.warn({ event: 'dropped', reason, count, interval_s: this.intervalMs / 1000, ...this.#fields.get(reason) });
    }
    this.#counts.clear();
    this.#fields.clear();
  }

  close(): void {
    clearInterval(this.#timer);
    this.flush();
  }
}
