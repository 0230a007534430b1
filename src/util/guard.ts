// Exception boundaries at the edges (issue 10 §4: no datagram can stop a process). Every socket and
// timer callback runs through `guard(name, fn)`: an exception (or a rejected promise) that escapes
// the protocol code is a bug, not an expected failure, so it is counted per boundary, reported once
// (the error's name, code and message, the input's size — never its bytes, never a key), and the
// process goes on serving the next datagram. Expected failures never come here: parsers return them.

/** One contained fault, as given to the reporter. */
export interface BoundaryFault {
  /** Which edge caught it, e.g. 'sip.udp', 'esp.encap', 'timer'. */
  readonly boundary: string;
  readonly error: unknown;
  /** Octets of the input being handled, when there was one. */
  readonly inputSize?: number;
  /** Faults at this boundary so far, this one included. */
  readonly count: number;
}

export type BoundaryReporter = (fault: BoundaryFault) => void;

const counts = new Map<string, number>();
let reporter: BoundaryReporter = (f) => process.stderr.write(`${describeFault(f)}\n`);

/** One line, no input bytes: where, how often, how big the input was, what was thrown. */
export function describeFault(f: BoundaryFault): string {
  const e = f.error;
  const name = e instanceof Error ? e.name : typeof e;
  const c = e instanceof Error ? (e as { code?: unknown }).code : undefined;
  const code = typeof c === 'string' ? ` [${c}]` : '';
  const msg = e instanceof Error ? e.message : String(e);
  // The first stack frame names the faulty line; the message is cut short (it may quote input).
  const at =
    e instanceof Error
      ? (e.stack
          ?.split('\n')
          .find((l) => l.trimStart().startsWith('at '))
          ?.trim() ?? '')
      : '';
  const size = f.inputSize === undefined ? '' : `, input ${f.inputSize} octets`;
  return `imsec: unexpected error contained at ${f.boundary} (#${f.count}${size}): ${name}${code}: ${msg.replace(/[\r\n]+/g, ' ').slice(0, 160)}${at ? ` (${at})` : ''}`;
}

/**
 * Counts a fault and reports it when it is the first at its boundary or the count reaches a power
 * of ten (so a flood of one bug cannot flood the log). Never throws.
 */
export function containFault(boundary: string, error: unknown, inputSize?: number): void {
  const count = (counts.get(boundary) ?? 0) + 1;
  counts.set(boundary, count);
  if (!isPowerOfTen(count)) return;
  try {
    reporter({ boundary, error, count, ...(inputSize !== undefined && { inputSize }) });
  } catch {
    // A broken reporter must not turn a contained fault into an uncontained one.
  }
}

/**
 * Wraps a callback so that nothing it throws or rejects escapes: the fault is counted and reported
 * under `boundary`. `inputSize` tells the report how big the input was (never the input itself).
 */
export function guard<A extends unknown[]>(
  boundary: string,
  fn: (...args: A) => unknown,
  inputSize?: (...args: A) => number | undefined,
): (...args: A) => void {
  return (...args: A): void => {
    try {
      const r = fn(...args);
      if (r !== null && typeof r === 'object' && typeof (r as PromiseLike<unknown>).then === 'function') {
        (r as PromiseLike<unknown>).then(undefined, (e: unknown) => containFault(boundary, e, sizeOf(inputSize, args)));
      }
    } catch (e) {
      containFault(boundary, e, sizeOf(inputSize, args));
    }
  };
}

/** The size of a byte input (Uint8Array, Buffer) as a guard's `inputSize`. */
export const bytesIn = (b: unknown): number | undefined => (b instanceof Uint8Array ? b.length : undefined);

/** Faults contained so far, per boundary (for counters and metrics). */
export function boundaryCounts(): Record<string, number> {
  return Object.fromEntries(counts);
}

/** Replaces the reporter (the CLI routes reports to its event output); returns the previous one. */
export function setBoundaryReporter(r: BoundaryReporter): BoundaryReporter {
  const prev = reporter;
  reporter = r;
  return prev;
}

function sizeOf<A extends unknown[]>(f: ((...args: A) => number | undefined) | undefined, args: A): number | undefined {
  try {
    return f?.(...args);
  } catch {
    return undefined;
  }
}

function isPowerOfTen(n: number): boolean {
  while (n >= 10 && n % 10 === 0) n /= 10;
  return n === 1;
}
