// Inbound ESP drops as `imsec pcscf` events (issue 10 §5): every drop is counted by reason; one
// line per (reason, SPI) at most once per window, and at most `maxLinesPerWindow` lines per window
// in all, so a flood of forged packets (each with a new SPI) costs a bounded amount of log and
// memory. What was not printed is summed up in one line when the window rolls. Never key material:
// the reason, the SPI, the sequence number and the outer source only.
import type { Addr } from '../ipsec/backends/backend.ts';
import type { SadDrop } from '../ipsec/sad.ts';
import { formatSpi } from './parse-args.ts';

export interface EspDropEvent {
  readonly reason: SadDrop;
  /** Absent when the packet was too short to carry one. */
  readonly spi?: number;
  readonly seq?: number;
  readonly from: Addr;
  /** The SA set the packet named, when its SPI was known. */
  readonly set?: string;
}

export interface DropReporterOptions {
  /** Prints one event (or the window's summary). */
  readonly emit: (
    line: { event: 'esp-dropped'; drop: EspDropEvent } | { event: 'esp-drops-suppressed'; count: number; windowMs: number },
  ) => void;
  readonly now: () => number;
  /** Default 10 000 ms. */
  readonly windowMs?: number;
  /** Default 20. */
  readonly maxLinesPerWindow?: number;
}

export class EspDropReporter {
  readonly #o: Required<DropReporterOptions>;
  /** Every drop since start, by reason (bounded: the reasons are a closed set). */
  readonly #counts: Partial<Record<SadDrop, number>> = {};
  /** Keys printed in the current window; bounded by maxLinesPerWindow. */
  readonly #printed = new Set<string>();
  #windowStart: number;
  #suppressed = 0;

  constructor(o: DropReporterOptions) {
    this.#o = { windowMs: 10_000, maxLinesPerWindow: 20, ...o };
    this.#windowStart = o.now();
  }

  /** Drops counted so far, by reason (for the metrics exporter). */
  get counts(): Readonly<Partial<Record<SadDrop, number>>> {
    return { ...this.#counts };
  }

  note(d: EspDropEvent): void {
    this.#counts[d.reason] = (this.#counts[d.reason] ?? 0) + 1;
    const now = this.#o.now();
    if (now - this.#windowStart >= this.#o.windowMs) this.#roll(now);
    const key = `${d.reason}|${d.spi ?? ''}`;
    if (this.#printed.has(key) || this.#printed.size >= this.#o.maxLinesPerWindow) {
      this.#suppressed++;
      return;
    }
    this.#printed.add(key);
    this.#o.emit({ event: 'esp-dropped', drop: d });
  }

  #roll(now: number): void {
    if (this.#suppressed > 0) this.#o.emit({ event: 'esp-drops-suppressed', count: this.#suppressed, windowMs: this.#o.windowMs });
    this.#suppressed = 0;
    this.#printed.clear();
    this.#windowStart = now;
  }
}

/** `time esp-dropped reason=icv spi=0x… seq=… from=ADDR:PORT` (human mode). */
export function formatDrop(d: EspDropEvent, at: Date = new Date()): string {
  const host = d.from.address.includes(':') ? `[${d.from.address}]` : d.from.address;
  const parts = [`reason=${d.reason}`];
  if (d.spi !== undefined) parts.push(`spi=${formatSpi(d.spi)}`);
  if (d.seq !== undefined) parts.push(`seq=${d.seq}`);
  if (d.set !== undefined) parts.push(`set=${d.set}`);
  parts.push(`from=${host}:${d.from.port}`);
  return `${at.toISOString().slice(11, 23)} esp-dropped ${parts.join(' ')}`;
}
