// One unidirectional SA's ESP state: the outbound side owns the sequence counter (RFC 4303 §3.3.3,
// starts at 0, first packet 1, never wraps), the inbound side the anti-replay window (§3.4.3).
// Both hold their transform privately; keys never show in util.inspect or JSON. These are the
// standalone engines of imsec/esp (the CLI's `esp` tools, tests); an installed SA (ipsec/sa.ts) is
// its own engine over the same sealEsp/openEsp and replay-window functions.
import { isValidPair } from '../algorithms.ts';
import { DEFAULT_REPLAY_WINDOW } from '../types.ts';
import { EspError } from './errors.ts';
import type { EspInbound, EspOpenResult, EspOutbound, EspSaCrypto } from './index.ts';
import { type AdvanceGate, openEsp } from './open.ts';
import { ReplayWindow } from './replay-window.ts';
import { type PayloadWriter, sealEsp } from './seal.ts';
import { createTransform, type EspTransform } from './transform.ts';
import type { IvOverride } from './transforms/iv.ts';
import { ESP_MAX_SEQ, ESP_MIN_SPI, IPPROTO_NONE, isUint32 } from './wire.ts';

/** Test hooks of {@link createOutbound}. */
export interface OutboundOptions {
  /** Test hook: supplies each explicit IV (e.g. to reproduce a published packet). */
  iv?: IvOverride;
  /** Test hook: the sequence number taken as already sent (default 0), e.g. 2^32-2 to test exhaustion. */
  __testLastSeq?: number;
  /** A restored SA (issue 13 §3): the numbers up to this one may have been sent; the next is one past it. */
  resumeAfter?: number;
}

/** Options of {@link createInbound}. */
export interface InboundOptions {
  /** A restored SA (issue 13 §3): every number up to this one counts as already received. */
  rejectUpTo?: number;
  /** Asked before an authenticated packet moves the window past its highest number (see openEsp's AdvanceGate). */
  gate?: AdvanceGate;
}

const hex = (spi: number): string => `0x${spi.toString(16).padStart(8, '0')}`;

function checkSa(sa: EspSaCrypto, iv?: IvOverride): EspTransform {
  if (!isUint32(sa.spi) || sa.spi < ESP_MIN_SPI) {
    throw new EspError('ESP_BAD_INPUT', `spi must be ${ESP_MIN_SPI}..4294967295 (RFC 4303 §2.1), got ${String(sa.spi)}`);
  }
  if (!isValidPair(sa.alg, sa.ealg)) {
    throw new EspError('ESP_UNSUPPORTED', `alg=${sa.alg} cannot be combined with ealg=${sa.ealg}`);
  }
  return createTransform(sa.alg, sa.ealg, sa.keys, iv ? { iv } : {});
}

class Outbound implements EspOutbound {
  readonly spi: number;
  readonly alg: EspSaCrypto['alg'];
  readonly ealg: EspSaCrypto['ealg'];
  readonly #t: EspTransform;
  #seq: number;

  constructor(sa: EspSaCrypto, opts: OutboundOptions) {
    this.#t = checkSa(sa, opts.iv);
    this.spi = sa.spi;
    this.alg = sa.alg;
    this.ealg = sa.ealg;
    const start = opts.resumeAfter ?? opts.__testLastSeq ?? 0;
    if (!isUint32(start)) throw new EspError('ESP_BAD_INPUT', `the starting sequence number must be 0..2^32-1, got ${start}`);
    this.#seq = start;
  }

  get lastSeq(): number {
    return this.#seq;
  }

  /** True once 2^32-1 was sent: the SA must be replaced (RFC 4303 §3.3.3). */
  get exhausted(): boolean {
    return this.#seq >= ESP_MAX_SEQ;
  }

  seal(payload: Uint8Array | PayloadWriter, nextHeader: number): Uint8Array {
    // 33.203 Annex M / RFC 4303 §2.6: IMS never sends dummy packets.
    if (nextHeader === IPPROTO_NONE) throw new EspError('ESP_BAD_INPUT', 'nextHeader 59 (dummy packet) is never sent in IMS');
    if (this.exhausted) {
      throw new EspError(
        'ESP_SEQ_EXHAUSTED',
        `SA spi=${hex(this.spi)} has sent sequence number 2^32-1; a new SA is needed (RFC 4303 §3.3.3)`,
      );
    }
    const esp = sealEsp(this.#t, this.spi, this.#seq + 1, payload, nextHeader);
    this.#seq++; // only a packet actually built consumes a number
    return esp;
  }

  toJSON(): object {
    return { spi: this.spi, alg: this.alg, ealg: this.ealg, lastSeq: this.#seq, exhausted: this.exhausted };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `EspOutbound { spi: ${hex(this.spi)}, alg: ${this.alg}, ealg: ${this.ealg}, lastSeq: ${this.#seq} }`;
  }
}

class Inbound implements EspInbound {
  readonly spi: number;
  readonly alg: EspSaCrypto['alg'];
  readonly ealg: EspSaCrypto['ealg'];
  readonly #t: EspTransform;
  readonly #window: ReplayWindow;
  readonly #gate: AdvanceGate | undefined;

  constructor(sa: EspSaCrypto, opts: InboundOptions) {
    this.#t = checkSa(sa);
    this.#window = new ReplayWindow(sa.replayWindow ?? DEFAULT_REPLAY_WINDOW, opts.rejectUpTo ?? 0);
    this.#gate = opts.gate;
    this.spi = sa.spi;
    this.alg = sa.alg;
    this.ealg = sa.ealg;
  }

  get highestSeq(): number {
    return this.#window.highest;
  }

  get replayWindow(): number {
    return this.#window.size;
  }

  open(esp: Uint8Array): EspOpenResult {
    return openEsp(this.#t, this.#window, this.spi, esp, this.#gate);
  }

  toJSON(): object {
    return { spi: this.spi, alg: this.alg, ealg: this.ealg, highestSeq: this.highestSeq, replayWindow: this.replayWindow };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `EspInbound { spi: ${hex(this.spi)}, alg: ${this.alg}, ealg: ${this.ealg}, highestSeq: ${this.highestSeq} }`;
  }
}

/** The sending side of one SA: `seal(payload, nextHeader)` gives SPI‖Seq‖IV‖ciphertext‖ICV, sequence numbers from 1. */
export function createOutbound(sa: EspSaCrypto, opts: OutboundOptions = {}): EspOutbound {
  return new Outbound(sa, opts);
}

/** The receiving side of one SA: `open(esp)` checks replay and ICV (constant time) before decrypting, and never throws. */
export function createInbound(sa: EspSaCrypto, opts: InboundOptions = {}): EspInbound & { readonly replayWindow: number } {
  return new Inbound(sa, opts);
}
