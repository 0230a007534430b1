// One unidirectional ESP SA (RFC 4303 §4.1; one of the four of 33.203 §7.1, spec digest §6.2):
// its parameters, its engine state (sequence counter or replay window), counters per drop reason,
// and redaction: toJSON and util.inspect never show keys (only key-export.ts formats them).
//
// Memory (issue 9 §2: a P-CSCF holds 4 SAs per registered UE, 100k UEs): the SA is its own ESP
// engine — the sequence counter, or the replay window's highest number and ring (replay-window.ts
// replayCheck/replayCommit), are plain fields here, with no engine, window or parameter object per
// SA. Its parameters are getters over its home: the set it belongs to (sa-set.ts), which also
// holds the one transform of the four SAs, or for an SA built alone, its own SaParams.
import { inspect } from 'node:util';
import type { EncryptionAlg, IntegrityAlg } from './algorithms.ts';
import { EspError, formatAddress, parseAddress, type EspDrop, type EspOpenResult, type EspOutbound } from './esp/index.ts';
import { openEsp } from './esp/open.ts';
import {
  type AntiReplay,
  checkReplayWindowSize,
  replayCheck,
  replayCommit,
  replayRingAllSeen,
  type ReplayVerdict,
} from './esp/replay-window.ts';
import { type PayloadWriter, sealEsp } from './esp/seal.ts';
import { createTransform, type EspTransform } from './esp/transform.ts';
import type { IvOverride } from './esp/transforms/iv.ts';
import { ESP_MAX_SEQ, ESP_MIN_SPI, IPPROTO_NONE, isUint32 } from './esp/wire.ts';
import { isValidPair } from './algorithms.ts';
import { IpsecError } from './errors.ts';
import type { EspKeys } from './keys.ts';
import type { SaSet } from './sa-set.ts';
import { DEFAULT_SEQ_MARK_POLICY, SeqMark, type SeqMarkPolicy, type SeqMarkWriter } from './seq-marks.ts';
import { DEFAULT_REPLAY_WINDOW, spiText, type EspMode, type SaParams } from './types.ts';

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
 * Where an SA's parameters and transform live, by the SA's index (SA1 = 0 … SA4 = 3): its SA set
 * (one home for four SAs), or a home of its own for an SA built alone from an SaParams.
 */
export abstract class SaHome {
  abstract readonly alg: IntegrityAlg;
  abstract readonly ealg: EncryptionAlg;
  abstract readonly mode: EspMode;
  /** The window size as configured (undefined: the default 64). */
  abstract readonly replayWindow: number | undefined;
  /** The keys (fresh copies: only backends, key export and state stores ask). */
  abstract readonly keys: EspKeys;
  /** The set the SA belongs to, if any. */
  abstract readonly set: SaSet | undefined;
  abstract directionOf(i: number): SaDirection;
  abstract spiOf(i: number): number;
  abstract srcOf(i: number): string;
  abstract dstOf(i: number): string;
  abstract srcPortOf(i: number): number;
  abstract dstPortOf(i: number): number;
  abstract encapOf(i: number): { readonly srcPort: number; readonly dstPort: number } | undefined;
  abstract innerSrcOf(i: number): string | undefined;
  abstract innerDstOf(i: number): string | undefined;
  /** The transform that seals or opens the SA's next packet (built when first needed). */
  abstract transformOf(i: number): EspTransform;
}

/** The home of an SA built alone: its SaParams, its direction, its own transform. */
class OwnHome extends SaHome {
  readonly #p: SaParams;
  readonly #direction: SaDirection;
  readonly #t: EspTransform;
  constructor(p: SaParams, direction: SaDirection, iv: IvOverride | undefined) {
    super();
    this.#p = p;
    this.#direction = direction;
    if (!isUint32(p.spi) || p.spi < ESP_MIN_SPI) {
      throw new EspError('ESP_BAD_INPUT', `spi must be ${ESP_MIN_SPI}..4294967295 (RFC 4303 §2.1), got ${String(p.spi)}`);
    }
    if (!isValidPair(p.alg, p.ealg)) throw new EspError('ESP_UNSUPPORTED', `alg=${p.alg} cannot be combined with ealg=${p.ealg}`);
    this.#t = createTransform(p.alg, p.ealg, p.keys, iv ? { iv } : {});
  }
  get alg(): IntegrityAlg {
    return this.#p.alg;
  }
  get ealg(): EncryptionAlg {
    return this.#p.ealg;
  }
  get mode(): EspMode {
    return this.#p.mode;
  }
  get replayWindow(): number | undefined {
    return this.#p.replayWindow;
  }
  get keys(): EspKeys {
    return this.#p.keys;
  }
  get set(): undefined {
    return undefined;
  }
  directionOf(): SaDirection {
    return this.#direction;
  }
  spiOf(): number {
    return this.#p.spi;
  }
  srcOf(): string {
    return this.#p.src;
  }
  dstOf(): string {
    return this.#p.dst;
  }
  srcPortOf(): number {
    return this.#p.srcPort;
  }
  dstPortOf(): number {
    return this.#p.dstPort;
  }
  encapOf(): { readonly srcPort: number; readonly dstPort: number } | undefined {
    return this.#p.encap;
  }
  innerSrcOf(): string | undefined {
    return this.#p.innerSrc;
  }
  innerDstOf(): string | undefined {
    return this.#p.innerDst;
  }
  transformOf(): EspTransform {
    return this.#t;
  }
}

/** An SA's rarely set state (see Sa.#rare). */
interface SaRare {
  drops: Record<EspDrop, number> | undefined;
  dead: SaDeadReason | undefined;
  mark: SeqMark | undefined;
}

/** The window state "every number from 1 to the highest was received" (see Sa.#ring): compared by identity, never written. */
const DENSE: number[] = Object.freeze([]) as unknown as number[];

/**
 * The ring of a DENSE window whose highest number is `highest`, bit-exact: the numbers still inside
 * the window, committed in order through replay-window.ts's own functions (once per SA, at its first
 * gap or reordering; at most `size` commits).
 */
function denseRing(size: number, highest: number): number[] | undefined {
  let ring: number[] | undefined;
  for (let seq = Math.max(1, highest - size + 1); seq <= highest; seq++) ring = replayCommit(size, seq - 1, ring, seq);
  return ring;
}

/** The index of an SA by its name: SA1 = 0 … SA4 = 3. */
function indexOf(name: SaName): number {
  return name.charCodeAt(2) - 49;
}

/**
 * One SA. Not safe for concurrent use (one event loop owns it).
 *
 * It is its own parameters (`params` is the SA itself, seen as SaParams: getters over its home),
 * its own counters (`counters` is the SA itself, seen as SaCounters) and its own ESP engine (the
 * sending side `outbound()` is the SA itself, seen as EspOutbound): one object per SA (issue 9 §2).
 * The drop table is made at the first drop or read: most SAs never drop anything.
 */
export class Sa implements SaCounters, SaParams, EspOutbound {
  /** Packets sealed (out) or delivered (in). */
  packets = 0;
  /** Payload octets sealed or delivered. */
  bytes = 0;
  readonly name: SaName;
  readonly #home: SaHome;
  /** Outbound: the last sequence number sent (RFC 4303 §3.3.3). Inbound: the window's highest authenticated number T. */
  #seq: number;
  /**
   * Inbound: the replay window's ring (replay-window.ts). undefined: nothing received yet; DENSE:
   * every number from 1 to the highest was received (in-order traffic, the usual case: no ring, ~90
   * octets less per SA that received); a ring once a number was skipped or came out of order.
   */
  #ring: number[] | undefined;
  /** What few SAs ever get (a drop, a persisted mark) and every SA gets only at its end (death): one field, made on need. */
  #rare: SaRare | undefined;

  /**
   * `params`: the SA's parameters, or (an SA set building its four SAs) their home, which then
   * also gives the direction. `opts`: test hooks of the engine (fixed IVs, a starting sequence
   * number to reach exhaustion), and `resume`: a restored SA's persisted high-water mark (issue 13
   * §3): outbound starts past it, inbound treats every number up to it as received.
   */
  constructor(
    name: SaName,
    direction: SaDirection,
    params: SaParams | SaHome,
    opts: { iv?: (len: number) => Uint8Array; __testLastSeq?: number; resume?: number } = {},
  ) {
    this.name = name;
    this.#home = params instanceof SaHome ? params : new OwnHome(params, direction, opts.iv);
    const home = this.#home;
    if (home.directionOf(indexOf(name)) === 'out') {
      const start = opts.resume ?? opts.__testLastSeq ?? 0;
      if (!isUint32(start)) throw new EspError('ESP_BAD_INPUT', `the starting sequence number must be 0..2^32-1, got ${start}`);
      this.#seq = start;
    } else {
      const size = home.replayWindow ?? DEFAULT_REPLAY_WINDOW;
      checkReplayWindowSize(size);
      const upTo = opts.resume ?? 0;
      if (!isUint32(upTo)) throw new EspError('ESP_BAD_INPUT', `rejectUpTo must be 0..2^32-1, got ${upTo}`);
      this.#seq = upTo;
      // A restored window (issue 13 §3): every number up to the mark counts as received.
      if (upTo > 0) this.#ring = replayRingAllSeen(size);
    }
  }

  /** Seen from this host: `in` opens what the peer sealed, `out` seals what we send. */
  get direction(): SaDirection {
    return this.#home.directionOf(indexOf(this.name));
  }
  /** The set this SA belongs to (undefined for an SA built alone). */
  get set(): SaSet | undefined {
    return this.#home.set;
  }
  /** The SA's parameters: the SA itself (getters over its set's shared part). */
  get params(): SaParams {
    return this;
  }
  get spi(): number {
    return this.#home.spiOf(indexOf(this.name));
  }
  get src(): string {
    return this.#home.srcOf(indexOf(this.name));
  }
  get dst(): string {
    return this.#home.dstOf(indexOf(this.name));
  }
  get srcPort(): number {
    return this.#home.srcPortOf(indexOf(this.name));
  }
  get dstPort(): number {
    return this.#home.dstPortOf(indexOf(this.name));
  }
  get mode(): EspMode {
    return this.#home.mode;
  }
  get encap(): { readonly srcPort: number; readonly dstPort: number } | undefined {
    return this.#home.encapOf(indexOf(this.name));
  }
  get innerSrc(): string | undefined {
    return this.#home.innerSrcOf(indexOf(this.name));
  }
  get innerDst(): string | undefined {
    return this.#home.innerDstOf(indexOf(this.name));
  }
  get alg(): IntegrityAlg {
    return this.#home.alg;
  }
  get ealg(): EncryptionAlg {
    return this.#home.ealg;
  }
  /** The keys (for backends, key export and state stores only; never shown by toJSON or inspect). */
  get keys(): EspKeys {
    return this.#home.keys;
  }
  get replayWindow(): number | undefined {
    return this.#home.replayWindow;
  }

  /**
   * From now on the sequence numbers this SA uses are covered by a persisted high-water mark
   * (seq-marks.ts); `durable` is the mark the store holds now. Returns the mark (its writer keys on it).
   */
  trackSeq(writer: SeqMarkWriter, durable: number, policy: SeqMarkPolicy = DEFAULT_SEQ_MARK_POLICY): SeqMark {
    const mark = new SeqMark(this.direction, durable, writer, () => this.seq, policy);
    this.#more().mark = mark;
    return mark;
  }

  /**
   * The inbound engine asks this before an authenticated packet moves the window past its highest
   * number (openEsp's AdvanceGate; the SA is its own gate, no closure per SA): with a persisted
   * mark, the mark must cover `seq` first (issue 13 §3).
   */
  mayAdvance(seq: number): boolean {
    const mark = this.#rare?.mark;
    return mark === undefined || mark.admit(seq);
  }

  /** Inbound packets dropped after this SA was found, per reason. */
  get drops(): Record<EspDrop, number> {
    return (this.#more().drops ??= emptyDrops());
  }

  /** This SA's traffic counters (the SA itself: its packets, bytes and drops). */
  get counters(): SaCounters {
    return this;
  }

  /** The persisted mark, when trackSeq was called. */
  get seqMark(): SeqMark | undefined {
    return this.#rare?.mark;
  }

  /** Whether the SA still matches and seals: not deleted, not hard-expired. */
  get live(): boolean {
    return this.#rare?.dead === undefined;
  }
  get deadReason(): SaDeadReason | undefined {
    return this.#rare?.dead;
  }
  /** Last sequence number sent (out) or highest authenticated one (in). */
  get seq(): number {
    return this.#seq;
  }
  /** Outbound only: the last sequence number sent (EspOutbound). */
  get lastSeq(): number {
    return this.#seq;
  }
  /** Outbound only: the counter has reached 2^32-1 and the SA must be replaced. */
  get exhausted(): boolean {
    return this.#seq >= ESP_MAX_SEQ && this.direction === 'out';
  }

  /** Marks the SA dead (idempotent; the first reason sticks). */
  kill(reason: SaDeadReason): void {
    this.#more().dead ??= reason;
  }

  /**
   * The sending side, for sealToWire: the SA itself, once it is known to be able to send. Throws if
   * this SA is inbound, dead or exhausted, or its persisted mark cannot cover the next number.
   */
  outbound(): EspOutbound {
    this.#checkSendable();
    return this;
  }

  #checkSendable(): void {
    if (this.direction !== 'out')
      throw new IpsecError('IPSEC_BAD_PARAMS', `${this.name} (spi ${spiText(this.spi)}) is inbound: cannot seal`);
    this.#assertLive();
    if (this.#seq >= ESP_MAX_SEQ) {
      throw new IpsecError(
        'IPSEC_SEQ_EXHAUSTED',
        `${this.name} (spi ${spiText(this.spi)}) sent sequence number 2^32-1: a new SA set is needed (RFC 4303 §3.3.3)`,
      );
    }
    // Issue 13 §3: the next number must be covered by the persisted mark before it goes out.
    const mark = this.#rare?.mark;
    if (mark && !mark.admit(this.#seq + 1)) {
      throw new IpsecError(
        'IPSEC_SEQ_UNRESERVED',
        `${this.name} (spi ${spiText(this.spi)}): the state store could not reserve sequence number ${this.#seq + 1}`,
      );
    }
  }

  /**
   * Seals one payload (EspOutbound): SPI‖Seq‖IV‖ciphertext‖ICV, sequence numbers from 1. Only a
   * packet actually built consumes a number. Throws as outbound() does.
   */
  seal(payload: Uint8Array | PayloadWriter, nextHeader: number): Uint8Array {
    // 33.203 Annex M / RFC 4303 §2.6: IMS never sends dummy packets.
    if (nextHeader === IPPROTO_NONE) throw new EspError('ESP_BAD_INPUT', 'nextHeader 59 (dummy packet) is never sent in IMS');
    this.#checkSendable();
    const i = indexOf(this.name);
    const esp = sealEsp(this.#home.transformOf(i), this.#home.spiOf(i), this.#seq + 1, payload, nextHeader);
    this.#seq++;
    return esp;
  }

  /** Counts one sealed packet (called after a successful seal). */
  countSent(payloadLen: number): void {
    this.packets++;
    this.bytes += payloadLen;
  }

  /**
   * Opens one ESP packet (replay pre-check, ICV in constant time, window, decrypt, padding; see
   * openEsp); a dead SA throws (the SAD never hands one out). Counts drops.
   */
  open(esp: Uint8Array): EspOpenResult {
    if (this.direction !== 'in')
      throw new IpsecError('IPSEC_BAD_PARAMS', `${this.name} (spi ${spiText(this.spi)}) is outbound: cannot open`);
    this.#assertLive();
    const i = indexOf(this.name);
    const w = Sa.#window;
    w.sa = this;
    w.size = this.#home.replayWindow ?? DEFAULT_REPLAY_WINDOW;
    const r = openEsp(this.#home.transformOf(i), w, this.#home.spiOf(i), esp, this);
    w.sa = undefined;
    if (!r.ok) this.drops[r.drop]++;
    return r;
  }

  /**
   * The replay window over an SA's own fields, as openEsp sees a window: one object for every SA,
   * pointed at the SA being opened (openEsp is synchronous), so no SA holds a window object.
   */
  static readonly #window = {
    sa: undefined as Sa | undefined,
    size: DEFAULT_REPLAY_WINDOW,
    get highest(): number {
      return this.sa!.#seq;
    },
    check(seq: number): ReplayVerdict {
      const sa = this.sa!;
      const ring = sa.#ring;
      if (ring !== DENSE) return replayCheck(this.size, sa.#seq, ring, seq);
      // Every number up to the highest was received: below it, replayed or out of the window.
      if (!isUint32(seq) || seq === 0) return 'outside-window';
      return seq > sa.#seq ? 'ok' : sa.#seq - seq >= this.size ? 'outside-window' : 'replay';
    },
    commit(seq: number): void {
      const sa = this.sa!;
      const ring = sa.#ring;
      // The next number in order keeps a window that has seen everything (or nothing) dense.
      if ((ring === DENSE || (ring === undefined && sa.#seq === 0)) && seq === sa.#seq + 1) {
        sa.#ring = DENSE;
        sa.#seq = seq;
        return;
      }
      sa.#ring = replayCommit(this.size, sa.#seq, ring === DENSE ? denseRing(this.size, sa.#seq) : ring, seq);
      if (seq > sa.#seq) sa.#seq = seq;
    },
  } satisfies AntiReplay & { sa: Sa | undefined; size: number };

  countDrop(drop: EspDrop): void {
    this.drops[drop]++;
  }
  countDelivered(payloadLen: number): void {
    this.packets++;
    this.bytes += payloadLen;
  }

  #assertLive(): void {
    const dead = this.#rare?.dead;
    if (dead) throw new IpsecError('IPSEC_SA_DELETED', `${this.name} (spi ${spiText(this.spi)}) is ${dead}`);
  }

  #more(): SaRare {
    return (this.#rare ??= { drops: undefined, dead: undefined, mark: undefined });
  }

  /** Everything but the keys. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      direction: this.direction,
      spi: this.spi,
      src: this.src,
      dst: this.dst,
      srcPort: this.srcPort,
      dstPort: this.dstPort,
      mode: this.mode,
      ...(this.encap ? { encap: { ...this.encap } } : {}),
      ...(this.innerSrc ? { innerSrc: this.innerSrc } : {}),
      ...(this.innerDst ? { innerDst: this.innerDst } : {}),
      alg: this.alg,
      ealg: this.ealg,
      replayWindow: this.replayWindow ?? DEFAULT_REPLAY_WINDOW,
      seq: this.seq,
      live: this.live,
      counters: { packets: this.packets, bytes: this.bytes, drops: { ...this.drops } },
    };
  }

  [inspect.custom](): string {
    return `Sa ${this.name} ${this.direction} spi=${spiText(this.spi)} ${this.src}:${this.srcPort} -> ${this.dst}:${this.dstPort} ${this.mode} ${this.alg}/${this.ealg} seq=${this.seq} keys=[redacted]`;
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
