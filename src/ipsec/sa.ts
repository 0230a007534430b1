// One unidirectional ESP SA (RFC 4303 §4.1; one of the four of 33.203 §7.1, spec digest §6.2):
// its parameters, its engine state (sequence counter or replay window), counters per drop reason,
// and redaction: toJSON and util.inspect never show keys (only key-export.ts formats them).
import { inspect } from 'node:util';
import {
  createInbound,
  createOutbound,
  formatAddress,
  parseAddress,
  type EspDrop,
  type EspInbound,
  type EspOpenResult,
  type EspOutbound,
} from './esp/index.ts';
import type { EspTransform } from './esp/transform.ts';
import { IpsecError } from './errors.ts';
import { DEFAULT_SEQ_MARK_POLICY, SeqMark, type SeqMarkPolicy, type SeqMarkWriter } from './seq-marks.ts';
import { DEFAULT_REPLAY_WINDOW, spiText, type SaParams } from './types.ts';

export { spiText };

/** Seen from this host: `in` opens what the peer sealed, `out` seals what we send. */
export type SaDirection = 'in' | 'out';
/** The names of 33.203 §7.1 / spec digest §6.2. */
export type SaName = 'SA1' | 'SA2' | 'SA3' | 'SA4';

/** Every drop reason, in the order counters are shown. */
export const ESP_DROPS: readonly EspDrop[] = [
  'short',
  'malformed',
  'unknown-spi',
  'replay',
  'outside-window',
  'icv',
  'padding',
  'selector',
  'dummy',
];

/**
 * Traffic counters of one SA, and their one owner: the SAD counts here as packets pass (userspace
 * and memory backends; the ESP engine keeps none). Where the kernel does the ESP (xfrm) the kernel
 * owns the figures and the backend copies them here whenever it reads them (`saStats`) and a last
 * time before it removes the set, so a removed set keeps its final figures.
 */
export interface SaCounters {
  /** Packets sealed (out) or delivered (in). */
  packets: number;
  /** Payload octets sealed or delivered (the inner transport payload, not the ESP packet). */
  bytes: number;
  /** Inbound packets dropped after this SA was found, per reason. */
  drops: Record<EspDrop, number>;
}

/** A drop counter at zero for every reason. */
export function emptyDrops(): Record<EspDrop, number> {
  return Object.fromEntries(ESP_DROPS.map((d) => [d, 0])) as Record<EspDrop, number>;
}

/** Why an SA no longer carries traffic. */
export type SaDeadReason = 'deleted' | 'expired';

/**
 * One SA. Not safe for concurrent use (one event loop owns it).
 *
 * It holds its own counters (`counters` is the SA itself, seen as SaCounters): one object less per
 * SA (issue 9 §2: a P-CSCF holds 4 SAs per UE). The drop table is made at the first drop or read:
 * most SAs never drop anything, and nine counters are ~100 bytes.
 */
export class Sa implements SaCounters {
  /** Packets sealed (out) or delivered (in). */
  packets = 0;
  /** Payload octets sealed or delivered. */
  bytes = 0;
  #drops: Record<EspDrop, number> | undefined;
  #dead: SaDeadReason | undefined;
  readonly #out: EspOutbound | undefined;
  readonly #in: EspInbound | undefined;
  #mark: SeqMark | undefined;

  constructor(
    readonly name: SaName,
    readonly direction: SaDirection,
    readonly params: SaParams,
    /**
     * Test hooks of the engine (fixed IVs, a starting sequence number to reach exhaustion), and
     * `resume`: a restored SA's persisted high-water mark (issue 13 §3): outbound starts past it,
     * inbound treats every number up to it as received.
     */
    opts: { iv?: (len: number) => Uint8Array; __testLastSeq?: number; resume?: number; transform?: EspTransform } = {},
  ) {
    const crypto = { spi: params.spi, alg: params.alg, ealg: params.ealg, keys: params.keys };
    const { resume, transform, ...engine } = opts;
    if (direction === 'out')
      this.#out = createOutbound(crypto, {
        ...engine,
        ...(resume !== undefined && { resumeAfter: resume }),
        ...(transform && { transform }),
      });
    else {
      this.#in = createInbound(
        {
          spi: params.spi,
          alg: params.alg,
          ealg: params.ealg,
          keys: params.keys,
          replayWindow: params.replayWindow ?? DEFAULT_REPLAY_WINDOW,
        },
        {
          gate: this,
          ...(resume !== undefined && { rejectUpTo: resume }),
          ...(transform && { transform }),
        },
      );
    }
  }

  /**
   * From now on the sequence numbers this SA uses are covered by a persisted high-water mark
   * (seq-marks.ts); `durable` is the mark the store holds now. Returns the mark (its writer keys on it).
   */
  trackSeq(writer: SeqMarkWriter, durable: number, policy: SeqMarkPolicy = DEFAULT_SEQ_MARK_POLICY): SeqMark {
    this.#mark = new SeqMark(this.direction, durable, writer, () => this.seq, policy);
    return this.#mark;
  }

  /**
   * The inbound engine asks this before an authenticated packet moves the window past its highest
   * number (openEsp's AdvanceGate; the SA is its own gate, no closure per SA): with a persisted
   * mark, the mark must cover `seq` first (issue 13 §3).
   */
  mayAdvance(seq: number): boolean {
    return this.#mark === undefined || this.#mark.admit(seq);
  }

  /** Inbound packets dropped after this SA was found, per reason. */
  get drops(): Record<EspDrop, number> {
    return (this.#drops ??= emptyDrops());
  }

  /** This SA's traffic counters (the SA itself: its packets, bytes and drops). */
  get counters(): SaCounters {
    return this;
  }

  /** The persisted mark, when trackSeq was called. */
  get seqMark(): SeqMark | undefined {
    return this.#mark;
  }

  get spi(): number {
    return this.params.spi;
  }
  /** Whether the SA still matches and seals: not deleted, not hard-expired. */
  get live(): boolean {
    return this.#dead === undefined;
  }
  get deadReason(): SaDeadReason | undefined {
    return this.#dead;
  }
  /** Last sequence number sent (out) or highest authenticated one (in). */
  get seq(): number {
    return this.#out ? this.#out.lastSeq : this.#in!.highestSeq;
  }
  /** Outbound only: the counter has reached 2^32-1 and the SA must be replaced. */
  get exhausted(): boolean {
    return this.#out?.exhausted ?? false;
  }

  /** Marks the SA dead (idempotent; the first reason sticks). */
  kill(reason: SaDeadReason): void {
    this.#dead ??= reason;
  }

  /** The outbound engine, for sealToWire. Throws if this SA is inbound, dead or exhausted. */
  outbound(): EspOutbound {
    if (!this.#out) throw new IpsecError('IPSEC_BAD_PARAMS', `${this.name} (spi ${spiText(this.spi)}) is inbound: cannot seal`);
    this.#assertLive();
    if (this.#out.exhausted) {
      throw new IpsecError(
        'IPSEC_SEQ_EXHAUSTED',
        `${this.name} (spi ${spiText(this.spi)}) sent sequence number 2^32-1: a new SA set is needed (RFC 4303 §3.3.3)`,
      );
    }
    // Issue 13 §3: the next number must be covered by the persisted mark before it goes out.
    if (this.#mark && !this.#mark.admit(this.#out.lastSeq + 1)) {
      throw new IpsecError(
        'IPSEC_SEQ_UNRESERVED',
        `${this.name} (spi ${spiText(this.spi)}): the state store could not reserve sequence number ${this.#out.lastSeq + 1}`,
      );
    }
    return this.#out;
  }

  /** Counts one sealed packet (called after a successful seal). */
  countSent(payloadLen: number): void {
    this.counters.packets++;
    this.counters.bytes += payloadLen;
  }

  /** Opens one ESP packet; a dead SA throws (the SAD never hands one out). Counts drops. */
  open(esp: Uint8Array): EspOpenResult {
    if (!this.#in) throw new IpsecError('IPSEC_BAD_PARAMS', `${this.name} (spi ${spiText(this.spi)}) is outbound: cannot open`);
    this.#assertLive();
    const r = this.#in.open(esp);
    if (!r.ok) this.counters.drops[r.drop]++;
    return r;
  }

  countDrop(drop: EspDrop): void {
    this.counters.drops[drop]++;
  }
  countDelivered(payloadLen: number): void {
    this.counters.packets++;
    this.counters.bytes += payloadLen;
  }

  #assertLive(): void {
    if (this.#dead) throw new IpsecError('IPSEC_SA_DELETED', `${this.name} (spi ${spiText(this.spi)}) is ${this.#dead}`);
  }

  /** Everything but the keys. */
  toJSON(): Record<string, unknown> {
    const p = this.params;
    return {
      name: this.name,
      direction: this.direction,
      spi: this.spi,
      src: p.src,
      dst: p.dst,
      srcPort: p.srcPort,
      dstPort: p.dstPort,
      mode: p.mode,
      ...(p.encap ? { encap: { ...p.encap } } : {}),
      ...(p.innerSrc ? { innerSrc: p.innerSrc } : {}),
      ...(p.innerDst ? { innerDst: p.innerDst } : {}),
      alg: p.alg,
      ealg: p.ealg,
      replayWindow: p.replayWindow ?? DEFAULT_REPLAY_WINDOW,
      seq: this.seq,
      live: this.live,
      counters: { packets: this.counters.packets, bytes: this.counters.bytes, drops: { ...this.counters.drops } },
    };
  }

  [inspect.custom](): string {
    const p = this.params;
    return `Sa ${this.name} ${this.direction} spi=${spiText(this.spi)} ${p.src}:${p.srcPort} -> ${p.dst}:${p.dstPort} ${p.mode} ${p.alg}/${p.ealg} seq=${this.seq} keys=[redacted]`;
  }
}

/** Address equality across textual forms (2001:db8::1 = 2001:0db8:0:0:0:0:0:1); false for non-addresses. */
export function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  // Two IPv4 texts: node's dotted quads have one spelling (no leading zeros), so unequal text is
  // another address (or no address). Spares a parse on every arrival and lookup.
  if (!a.includes(':') && !b.includes(':')) return false;
  const x = parseAddress(a);
  const y = parseAddress(b);
  return x !== undefined && y !== undefined && Buffer.compare(x, y) === 0;
}

/** The RFC 5952 text of an address (the form the engine's parsers produce); input unchanged if invalid. */
export function canonicalAddress(a: string): string {
  // An IPv4 text is canonical already (node accepts no leading zeros), and a non-address is returned as is.
  if (!a.includes(':')) return a;
  const b = parseAddress(a);
  return b ? formatAddress(b) : a;
}

/**
 * `s` as one flat string. A template literal longer than a few characters is a rope of its pieces
 * (a cons string, ~32 bytes plus each piece); a long-lived key or label made so keeps the rope.
 * Converting it to a number makes V8 flatten it in place, and the next scavenge drops the rope
 * (issue 9 §2: a few such strings per SA set, 100k sets).
 */
export function flatString(s: string): string {
  void ((s as unknown as number) | 0);
  return s;
}
