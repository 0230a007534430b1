// The 33.203 SA set (§7.1, §7.4; spec digest §6.2, §8): four unidirectional SAs sharing one
// algorithm pair and one CK_ESP/IK_ESP, seen from the UE or the P-CSCF, with its state machine
// and caller-given lifetimes (absolute ms; no clock inside).
import { isIP } from 'node:net';
import { inspect } from 'node:util';
import type { EncryptionAlg, IntegrityAlg } from './algorithms.ts';
import { encryptionInfo, integrityInfo, isValidPair } from './algorithms.ts';
import { IpsecError } from './errors.ts';
import type { EspKeys } from './keys.ts';
import { checkTransformKeys, createTransform, type EspTransform } from './esp/transform.ts';
import { flatString, Sa, SaHome, type SaCounters, type SaDirection, type SaName } from './sa.ts';
import { type EspMode, MIN_REPLAY_WINDOW, NAT_T_PORT, type SaParams } from './types.ts';

/**
 * SA-set states (33.203 §7.4, 24.229 §5.1.1.5 / §5.2.2; spec digest §8):
 *
 *            401 sent / received
 *                   |
 *                   v        failed | expired | deleted
 *             +-----------+ ------------------------------+
 *             | temporary |                               |
 *             +-----------+                               |
 *                   | authenticated (200 OK sent/received)|
 *                   v                                     |
 *             +-----------+  expired | deleted            |
 *   auth'd -->|  current  | ---------------------------+  |
 *  (re-reg.   +-----------+                            |  |
 *   no 401)         | superseded (a newer set's 200 OK)|  |
 *                   v                                  v  v
 *             +-----------+ transactions-done  +-----------+
 *             |    old    | -----------------> |  deleted  | (expired/deleted again: no-op)
 *             +-----------+  expired | deleted +-----------+
 */
export type SaSetState = 'temporary' | 'current' | 'old' | 'deleted';
/** What moves an SA set between states (see `transition` and spec digest §8). */
export type SaSetEvent = 'authenticated' | 'superseded' | 'transactions-done' | 'expired' | 'failed' | 'deleted';
/** What the edge must do after a transition (data, executed by the caller / the SAD owner). */
export type SaSetAction = 'use-for-new-requests' | 'stop-new-requests' | 'remove-sas';

/** The result of one SA set transition: the new state and the actions the owner must execute. */
export interface SaSetTransition {
  readonly state: SaSetState;
  readonly actions: readonly SaSetAction[];
}

function illegal(state: SaSetState, event: SaSetEvent): never {
  throw new IpsecError('IPSEC_ILLEGAL_TRANSITION', `SA set: event "${event}" is not allowed in state "${state}"`);
}

const toDeleted: SaSetTransition = { state: 'deleted', actions: ['remove-sas'] };

/** The one function that moves SA-set states. Illegal events throw IpsecError. */
export function transition(state: SaSetState, event: SaSetEvent): SaSetTransition {
  switch (state) {
    case 'temporary':
      if (event === 'authenticated') return { state: 'current', actions: ['use-for-new-requests'] };
      // §8 rule 8: a failed protected REGISTER deletes the temporary set; rule 1: it lives reg-await-auth.
      if (event === 'failed' || event === 'expired' || event === 'deleted') return toDeleted;
      return illegal(state, event);
    case 'current':
      // A re-REGISTER answered with 200 OK without a challenge keeps the current set (24.228 R2-1a).
      if (event === 'authenticated') return { state: 'current', actions: [] };
      // §8 rule 2/4: the new set's 200 OK makes this one old; it only finishes its transactions.
      if (event === 'superseded') return { state: 'old', actions: ['stop-new-requests'] };
      if (event === 'expired' || event === 'deleted') return toDeleted;
      return illegal(state, event);
    case 'old':
      if (event === 'transactions-done' || event === 'expired' || event === 'deleted') return toDeleted;
      return illegal(state, event);
    case 'deleted':
      // Expiry timers and explicit deletion race; both are idempotent once deleted.
      if (event === 'expired' || event === 'deleted') return { state: 'deleted', actions: [] };
      return illegal(state, event);
    default: {
      const never: never = state;
      throw new IpsecError('IPSEC_ILLEGAL_TRANSITION', `SA set: unknown state ${String(never)}`);
    }
  }
}

/** One side's protected ports and the SPIs it chose for its inbound SAs (Security-Client / -Server). */
export interface SaSetPeer {
  readonly ip: string;
  readonly portC: number;
  readonly portS: number;
  readonly spiC: number;
  readonly spiS: number;
}

/** Everything needed to create the four SAs of one registration: both ends, SPIs and ports, algorithms, mode, Annex I keys and lifetimes. */
export interface SaSetConfig {
  readonly role: 'ue' | 'pcscf';
  /** `innerIp`: the UE's address inside the tunnel (its private address behind a NAT, §15A point 4). */
  readonly ue: SaSetPeer & { readonly innerIp?: string };
  readonly pcscf: SaSetPeer;
  readonly alg: IntegrityAlg;
  readonly ealg: EncryptionAlg;
  /** CK_ESP / IK_ESP (and salt), shared by all four SAs (33.203 §7.2, spec digest §7 item 6). */
  readonly keys: EspKeys;
  readonly mode: EspMode;
  /** RFC 3948 encapsulation ports for udp-enc-tunnel (default 4500 / 4500). */
  readonly encap?: { readonly uePort: number; readonly pcscfPort: number };
  readonly replayWindow?: number;
  /** Hard expiry, absolute ms (caller's clock). Soft expiry can be set later. */
  readonly expiresAt?: number;
  readonly softExpiresAt?: number;
  /** A label for logs and tables (e.g. the IMPI and registration number). */
  readonly id?: string;
  /** Test hook: deterministic IVs. */
  readonly iv?: (len: number) => Uint8Array;
  /**
   * A set restored from a state store (issue 13 §3): each SA's persisted sequence-number mark
   * (outbound continues past it, inbound refuses everything up to it).
   */
  readonly resume?: Readonly<Partial<Record<SaName, number>>>;
}

/** One SA as `SaSet.summary()` lists it for display (never keys). */
export interface SaSummaryRow {
  name: SaName;
  direction: SaDirection;
  spi: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  alg: IntegrityAlg;
  ealg: EncryptionAlg;
  mode: EspMode;
  state: SaSetState;
  seq: number;
  packets: number;
  bytes: number;
  drops: SaCounters['drops'];
}

let nextId = 1;

/**
 * One end of a set as the set keeps it (`set.ue`, `set.pcscf`). The SPIs are stored as the int32 of
 * their 32 bits and read back unsigned: a field that ever held a number above 2^31-1 (half of all
 * random SPIs) makes V8 box that field in every object of its shape, 16 octets per SPI, 64 per set
 * (issue 9 §2). JSON and spreads of the copy: `toJSON`, or name the fields (the SPIs are getters).
 */
class PeerCopy implements SaSetPeer {
  readonly ip: string;
  readonly portC: number;
  readonly portS: number;
  readonly #spiC: number;
  readonly #spiS: number;
  constructor(p: SaSetPeer) {
    this.ip = p.ip;
    this.portC = p.portC;
    this.portS = p.portS;
    this.#spiC = p.spiC | 0;
    this.#spiS = p.spiS | 0;
  }
  get spiC(): number {
    return this.#spiC >>> 0;
  }
  get spiS(): number {
    return this.#spiS >>> 0;
  }
  toJSON(): SaSetPeer & { innerIp?: string } {
    return { ip: this.ip, portC: this.portC, portS: this.portS, spiC: this.spiC, spiS: this.spiS };
  }
  [inspect.custom](): string {
    return `${this.ip} c=${this.portC} s=${this.portS} spi-c=${this.spiC} spi-s=${this.spiS}`;
  }
}

/** The UE's end behind a NAT: also its address inside the tunnel. */
class InnerPeerCopy extends PeerCopy {
  constructor(
    p: SaSetPeer,
    readonly innerIp: string,
  ) {
    super(p);
  }
  override toJSON(): SaSetPeer & { innerIp?: string } {
    return { ...super.toJSON(), innerIp: this.innerIp };
  }
}

/** The configuration a set was made from, as `SaSet.config` shows it (no keys, IV hook, lifetimes). */
export type SaSetConfigView = Omit<SaSetConfig, 'keys' | 'iv' | 'expiresAt' | 'softExpiresAt' | 'resume'>;

/**
 * How many SA sets keep their transform (cipher and HMAC wrappers, their own key copies) between
 * packets: the most recently used ones. The others rebuild it at their next packet from the set's
 * key value (a few hundred nanoseconds; a P-CSCF's set sees a burst per registration or refresh).
 */
export const TRANSFORM_CACHE = 1024;
/** The sets holding a transform, least recently used first (a Map keeps insertion order). */
const withTransform = new Map<SaSet, true>();
/** The set that used its transform last (its next packet needs no reordering). */
let lastUsed: SaSet | undefined;

/** The four SAs of one UE–P-CSCF pair (33.203 §7.1: SA1–SA4, inbound and outbound at each end) with their lifecycle state and lifetimes; created by `createSaSet`, installed by an `IpsecBackend`. */
export class SaSet extends SaHome {
  readonly id: string;
  readonly role: 'ue' | 'pcscf';
  /** The UE's side: address, protected ports, the SPIs of its inbound SAs (and its inner address behind a NAT). */
  readonly ue: SaSetPeer & { readonly innerIp?: string };
  /** The P-CSCF's side. */
  readonly pcscf: SaSetPeer;
  readonly alg: IntegrityAlg;
  readonly ealg: EncryptionAlg;
  readonly mode: EspMode;
  readonly replayWindow: number | undefined;
  /** RFC 3948 encapsulation ports (udp-enc-tunnel only). */
  readonly #encUe: number | undefined;
  readonly #encPcscf: number | undefined;
  /**
   * The set's one key value: IK_ESP ‖ CK_ESP ‖ salt as a latin1 string (one char per octet; the
   * lengths follow from alg/ealg). ~64 bytes where three Uint8Arrays and their object were ~450
   * (issue 9 §2). The set owns it: callers wipe their keys after creating the set (the UE does).
   */
  readonly #key: string;
  /** The transform the four SAs share (33.203 §7.1: one CK_ESP/IK_ESP), while among the TRANSFORM_CACHE last used. */
  #t: EspTransform | undefined;
  /** One transform per SA, kept for the set's life, when they hold per-SA state (GCM/GMAC IV offsets) or take a test IV hook. */
  readonly #perSa: readonly EspTransform[] | undefined;
  /** SA1..SA4 (spec digest §6.2); also reachable as `sas.SA1` … */
  readonly SA1: Sa;
  readonly SA2: Sa;
  readonly SA3: Sa;
  readonly SA4: Sa;
  #state: SaSetState = 'temporary';
  #expiresAt: number | undefined;
  #softExpiresAt: number | undefined;
  #softFired = false;
  /**
   * Who holds the set, for an O(1) way back from it (the P-CSCF's registration table files the
   * registration here: a field where a Map entry per set cost ~44 B, issue 9 §2). Opaque to ipsec.
   */
  owner: object | undefined = undefined;
  /**
   * The NAT-learnt ESP-in-UDP peer where it differs from the configured one, kept by the userspace
   * backend that installed the set (`setPeerEncap`): a field where a Map entry per set cost ~44 B.
   */
  learntPeer: { readonly address: string; readonly port: number } | undefined = undefined;

  constructor(cfg: SaSetConfig) {
    super();
    checkConfig(cfg);
    checkTransformKeys(cfg.alg, cfg.ealg, cfg.keys);
    this.id = flatString(cfg.id ?? `set-${nextId++}`);
    this.role = cfg.role;
    const { ue, pcscf } = cfg;
    // Own copies (the SAs read their SPIs and ports here): what the caller does with its objects later changes nothing.
    this.ue = ue.innerIp !== undefined ? new InnerPeerCopy(ue, ue.innerIp) : new PeerCopy(ue);
    this.pcscf = new PeerCopy(pcscf);
    this.alg = cfg.alg;
    this.ealg = cfg.ealg;
    this.mode = cfg.mode;
    this.replayWindow = cfg.replayWindow;
    const tunnel = cfg.mode === 'udp-enc-tunnel';
    this.#encUe = tunnel ? (cfg.encap?.uePort ?? NAT_T_PORT) : undefined;
    this.#encPcscf = tunnel ? (cfg.encap?.pcscfPort ?? NAT_T_PORT) : undefined;
    this.#expiresAt = cfg.expiresAt;
    this.#softExpiresAt = cfg.softExpiresAt;
    const k = cfg.keys;
    this.#key = keyText(k);
    // 33.203 §7.1: one CK_ESP/IK_ESP for the four SAs, hence one transform (built at the first
    // packet) when it holds no per-SA state; else one per SA, now.
    this.#perSa =
      cfg.iv || !shareable(cfg.alg, cfg.ealg)
        ? [0, 1, 2, 3].map(() => createTransform(cfg.alg, cfg.ealg, this.keys, cfg.iv ? { iv: cfg.iv } : {}))
        : undefined;
    const mk = (name: SaName) => {
      const resume = cfg.resume?.[name];
      return new Sa(name, this.directionOf(name.charCodeAt(2) - 49), this, resume !== undefined ? { resume } : {});
    };
    this.SA1 = mk('SA1');
    this.SA2 = mk('SA2');
    this.SA3 = mk('SA3');
    this.SA4 = mk('SA4');
  }

  /** The configuration the set was made from, without keys, IV hook and lifetimes: the set itself. */
  get config(): SaSetConfigView {
    return this;
  }
  /** RFC 3948 encapsulation ports for udp-enc-tunnel (a fresh object; undefined in transport mode). */
  get encap(): { readonly uePort: number; readonly pcscfPort: number } | undefined {
    return this.#encUe === undefined ? undefined : { uePort: this.#encUe, pcscfPort: this.#encPcscf! };
  }
  /** SA1..SA4 by name (spec digest §6.2). */
  get sas(): Readonly<Record<SaName, Sa>> {
    return this;
  }
  /** The set's keys, CK_ESP / IK_ESP (and salt), as fresh copies (for backends, key export and state stores only). */
  get keys(): EspKeys {
    const ikLen = integrityInfo(this.alg).keyLen;
    const ckLen = encryptionInfo(this.ealg).keyLen;
    const s = this.#key;
    const ikEsp = octets(s, 0, ikLen);
    const ckEsp = octets(s, ikLen, ikLen + ckLen);
    return s.length > ikLen + ckLen ? { ikEsp, ckEsp, salt: octets(s, ikLen + ckLen, s.length) } : { ikEsp, ckEsp };
  }
  /** This set (SaHome). */
  get set(): SaSet {
    return this;
  }

  // SaHome: the SAs' parameters by index (spec digest §6.2, the role only decides in/out):
  // SA1 uc→ps spi_ps, SA2 pc→us spi_us, SA3 ps→uc spi_uc, SA4 us→pc spi_pc. SA1 and SA4 go up (UE → P-CSCF).

  /** @internal SaHome */
  directionOf(i: number): SaDirection {
    return (this.role === 'ue') === (i === 0 || i === 3) ? 'out' : 'in';
  }
  /** @internal SaHome */
  spiOf(i: number): number {
    return i === 0 ? this.pcscf.spiS : i === 1 ? this.ue.spiS : i === 2 ? this.ue.spiC : this.pcscf.spiC;
  }
  /** @internal SaHome */
  srcOf(i: number): string {
    return i === 0 || i === 3 ? this.ue.ip : this.pcscf.ip;
  }
  /** @internal SaHome */
  dstOf(i: number): string {
    return i === 0 || i === 3 ? this.pcscf.ip : this.ue.ip;
  }
  /** @internal SaHome */
  srcPortOf(i: number): number {
    return i === 0 ? this.ue.portC : i === 1 ? this.pcscf.portC : i === 2 ? this.pcscf.portS : this.ue.portS;
  }
  /** @internal SaHome */
  dstPortOf(i: number): number {
    return i === 0 ? this.pcscf.portS : i === 1 ? this.ue.portS : i === 2 ? this.ue.portC : this.pcscf.portC;
  }
  /** @internal SaHome: a fresh object (undefined in transport mode). */
  encapOf(i: number): { readonly srcPort: number; readonly dstPort: number } | undefined {
    if (this.#encUe === undefined) return undefined;
    return i === 0 || i === 3 ? { srcPort: this.#encUe, dstPort: this.#encPcscf! } : { srcPort: this.#encPcscf!, dstPort: this.#encUe };
  }
  /** The UE's inner address when it differs from its outer one (udp-enc-tunnel behind a NAT). */
  #innerUe(): string | undefined {
    const inner = this.ue.innerIp;
    return this.#encUe !== undefined && inner && inner !== this.ue.ip ? inner : undefined;
  }
  /** @internal SaHome */
  innerSrcOf(i: number): string | undefined {
    return i === 0 || i === 3 ? this.#innerUe() : undefined;
  }
  /** @internal SaHome */
  innerDstOf(i: number): string | undefined {
    return i === 0 || i === 3 ? undefined : this.#innerUe();
  }
  /** @internal SaHome: the shared transform, built at the set's first packet and again after it was pushed out of TRANSFORM_CACHE. */
  transformOf(i: number): EspTransform {
    if (this.#perSa) return this.#perSa[i]!;
    const t = this.#t;
    if (t) {
      if (lastUsed !== this) SaSet.#touch(this);
      return t;
    }
    // The decoded keys are this transform's own copies: it borrows them (no second copy).
    const made = createTransform(this.alg, this.ealg, this.keys, { borrowKeys: true });
    this.#t = made;
    SaSet.#touch(this);
    return made;
  }

  /** Marks `set` as just used; past TRANSFORM_CACHE, the least recently used set gives its transform up. */
  static #touch(set: SaSet): void {
    lastUsed = set;
    withTransform.delete(set);
    withTransform.set(set, true);
    if (withTransform.size <= TRANSFORM_CACHE) return;
    const oldest = withTransform.keys().next().value as SaSet;
    withTransform.delete(oldest);
    oldest.#t = undefined;
  }

  /** Whether the set holds its shared transform now (tests, memory checks). */
  get hasTransform(): boolean {
    return this.#t !== undefined;
  }

  get state(): SaSetState {
    return this.#state;
  }
  get expiresAt(): number | undefined {
    return this.#expiresAt;
  }
  get softExpiresAt(): number | undefined {
    return this.#softExpiresAt;
  }
  get softExpired(): boolean {
    return this.#softFired;
  }
  get live(): boolean {
    return this.#state !== 'deleted';
  }
  get all(): readonly Sa[] {
    return [this.SA1, this.SA2, this.SA3, this.SA4];
  }
  /** The two inbound SAs (the UE: SA2, SA3; the P-CSCF: SA1, SA4). */
  get inbound(): readonly Sa[] {
    return this.role === 'ue' ? [this.SA2, this.SA3] : [this.SA1, this.SA4];
  }
  /** The two outbound SAs (the UE: SA1, SA4; the P-CSCF: SA2, SA3). */
  get outbound(): readonly Sa[] {
    return this.role === 'ue' ? [this.SA1, this.SA4] : [this.SA2, this.SA3];
  }

  /** Applies an event (see the diagram). Entering `deleted` kills the four SAs and drops the transform. */
  apply(event: SaSetEvent): SaSetTransition {
    const t = transition(this.#state, event);
    this.#state = t.state;
    if (t.state === 'deleted') {
      for (const sa of this.all) sa.kill(event === 'expired' ? 'expired' : 'deleted');
      this.#t = undefined;
      withTransform.delete(this);
      if (lastUsed === this) lastUsed = undefined;
    }
    return t;
  }

  /** Sets (or moves) the lifetimes, absolute ms. Spec digest §8 rule 3: see lifetimeAfterSuccess. */
  setLifetime(l: { expiresAt?: number; softExpiresAt?: number }): void {
    if (l.expiresAt !== undefined) this.#expiresAt = l.expiresAt;
    if (l.softExpiresAt !== undefined) {
      this.#softExpiresAt = l.softExpiresAt;
      this.#softFired = false;
    }
  }

  /**
   * Fires due expiries at time `now` (ms). Each fires once: `soft` tells the owner to re-register;
   * `hard` deletes the set. Calling it again, or after deletion, reports nothing new.
   */
  checkExpiry(now: number): { soft: boolean; hard: boolean } {
    if (this.#state === 'deleted') return { soft: false, hard: false };
    let soft = false;
    if (this.#softExpiresAt !== undefined && now >= this.#softExpiresAt && !this.#softFired) soft = this.#softFired = true;
    if (this.#expiresAt !== undefined && now >= this.#expiresAt) {
      this.apply('expired');
      return { soft, hard: true };
    }
    return { soft, hard: false };
  }

  /**
   * Hard expiry only (the SAD calls this on lookup so that hard-expired SAs never match); leaves
   * the soft event for the owner's checkExpiry. Returns true when the set is (now) deleted.
   */
  expireIfDue(now: number): boolean {
    if (this.#state !== 'deleted' && this.#expiresAt !== undefined && now >= this.#expiresAt) this.apply('expired');
    return this.#state === 'deleted';
  }

  /** The four SAs' parameters (with keys: for backends and key-export only). */
  params(): SaParams[] {
    return this.all.map((s) => s.params);
  }

  summary(): SaSummaryRow[] {
    return this.all.map((s) => ({
      name: s.name,
      direction: s.direction,
      spi: s.spi,
      src: s.params.src,
      dst: s.params.dst,
      srcPort: s.params.srcPort,
      dstPort: s.params.dstPort,
      alg: s.params.alg,
      ealg: s.params.ealg,
      mode: s.params.mode,
      state: this.#state,
      seq: s.seq,
      packets: s.counters.packets,
      bytes: s.counters.bytes,
      drops: { ...s.counters.drops },
    }));
  }

  toJSON(): Record<string, unknown> {
    return { id: this.id, role: this.role, state: this.#state, expiresAt: this.#expiresAt, sas: this.all.map((s) => s.toJSON()) };
  }
  [inspect.custom](): string {
    return `SaSet ${this.id} ${this.role} ${this.#state} ${this.config.alg}/${this.config.ealg} ${this.config.mode} [${this.all.map((s) => `${s.name}:${s.direction}:0x${s.spi.toString(16)}`).join(' ')}] keys=[redacted]`;
  }
}

/** Creates the SA set for `cfg`, in state temporary (33.203 §7.4); a backend then installs it. */
export function createSaSet(cfg: SaSetConfig): SaSet {
  return new SaSet(cfg);
}

/**
 * The four SAs' parameters of spec digest §6.2 as plain data, independent of the role (the role only
 * decides in/out): SA1 uc→ps spi_ps, SA2 pc→us spi_us, SA3 ps→uc spi_uc, SA4 us→pc spi_pc. A set's
 * own SAs read the same from the set (SaSet's SaHome methods); this is for code that needs the
 * parameters without a set (tests, key export of a configuration). The keys are the caller's object.
 */
export function saParamsOf(cfg: SaSetConfig): Record<SaName, SaParams> {
  const { ue, pcscf } = cfg;
  const tunnel = cfg.mode === 'udp-enc-tunnel';
  const ueEnc = cfg.encap?.uePort ?? NAT_T_PORT;
  const pEnc = cfg.encap?.pcscfPort ?? NAT_T_PORT;
  const innerUe = tunnel && ue.innerIp && ue.innerIp !== ue.ip ? ue.innerIp : undefined;
  const one = (spi: number, srcPort: number, dstPort: number, up: boolean): SaParams => {
    const p: { -readonly [K in keyof SaParams]: SaParams[K] } = {
      spi,
      src: up ? ue.ip : pcscf.ip,
      dst: up ? pcscf.ip : ue.ip,
      srcPort,
      dstPort,
      mode: cfg.mode,
      alg: cfg.alg,
      ealg: cfg.ealg,
      keys: cfg.keys,
    };
    if (cfg.replayWindow) p.replayWindow = cfg.replayWindow;
    if (tunnel) p.encap = up ? { srcPort: ueEnc, dstPort: pEnc } : { srcPort: pEnc, dstPort: ueEnc };
    if (innerUe !== undefined) {
      if (up) p.innerSrc = innerUe;
      else p.innerDst = innerUe;
    }
    return p;
  };
  return {
    SA1: one(pcscf.spiS, ue.portC, pcscf.portS, true),
    SA2: one(ue.spiS, pcscf.portC, ue.portS, false),
    SA3: one(ue.spiC, pcscf.portS, ue.portC, false),
    SA4: one(pcscf.spiC, ue.portS, pcscf.portC, true),
  };
}

/** RFC 4303 §2.1: SPI 0 is local-only, 1..255 reserved by IANA; SPIs are unsigned 32-bit. */
export function checkSpi(spi: number, field: string): void {
  if (!Number.isInteger(spi) || spi < 256 || spi > 0xffffffff) {
    throw new IpsecError('IPSEC_BAD_SPI', `${field} must be 256..4294967295 (0 and 1..255 are reserved, RFC 4303 §2.1), got ${spi}`);
  }
}

function checkPort(port: number, field: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new IpsecError('IPSEC_BAD_PARAMS', `${field} must be 1..65535, got ${port}`);
}

function checkConfig(cfg: SaSetConfig): void {
  if (cfg.role !== 'ue' && cfg.role !== 'pcscf')
    throw new IpsecError('IPSEC_BAD_PARAMS', `role must be ue or pcscf, got ${String(cfg.role)}`);
  for (const [who, p] of [
    ['ue', cfg.ue],
    ['pcscf', cfg.pcscf],
  ] as const) {
    if (isIP(p.ip) === 0) throw new IpsecError('IPSEC_BAD_PARAMS', `${who}.ip: not an IP address: ${JSON.stringify(p.ip)}`);
    checkSpi(p.spiC, `${who}.spiC`);
    checkSpi(p.spiS, `${who}.spiS`);
    // 33.203 §7.1: each side's spi-c differs from its spi-s (both are its inbound SAs).
    if (p.spiC === p.spiS) throw new IpsecError('IPSEC_BAD_SPI', `${who}: spi-c must differ from spi-s, both are ${p.spiC}`);
    checkPort(p.portC, `${who}.portC`);
    checkPort(p.portS, `${who}.portS`);
  }
  if (isIP(cfg.ue.ip) !== isIP(cfg.pcscf.ip))
    throw new IpsecError('IPSEC_BAD_PARAMS', `ue.ip ${cfg.ue.ip} and pcscf.ip ${cfg.pcscf.ip} are of different families`);
  if (cfg.ue.innerIp !== undefined && isIP(cfg.ue.innerIp) !== isIP(cfg.pcscf.ip)) {
    throw new IpsecError(
      'IPSEC_BAD_PARAMS',
      `ue.innerIp: must be an address of the P-CSCF's family, got ${JSON.stringify(cfg.ue.innerIp)}`,
    );
  }
  if (cfg.mode !== 'transport' && cfg.mode !== 'udp-enc-tunnel')
    throw new IpsecError('IPSEC_BAD_PARAMS', `mode must be transport or udp-enc-tunnel, got ${String(cfg.mode)}`);
  if (cfg.encap) {
    if (cfg.mode !== 'udp-enc-tunnel') throw new IpsecError('IPSEC_BAD_PARAMS', 'encap ports are only for mode udp-enc-tunnel');
    checkPort(cfg.encap.uePort, 'encap.uePort');
    checkPort(cfg.encap.pcscfPort, 'encap.pcscfPort');
  }
  if (!isValidPair(cfg.alg, cfg.ealg)) throw new IpsecError('IPSEC_BAD_PARAMS', `alg=${cfg.alg} cannot be combined with ealg=${cfg.ealg}`);
  if (cfg.replayWindow !== undefined && (!Number.isInteger(cfg.replayWindow) || cfg.replayWindow < MIN_REPLAY_WINDOW)) {
    throw new IpsecError(
      'IPSEC_BAD_PARAMS',
      `replayWindow must be an integer >= ${MIN_REPLAY_WINDOW} (RFC 4303 §3.4.3), got ${cfg.replayWindow}`,
    );
  }
}

/** Spec digest §8 rule 3: after a successful registration, max(previous, now + (expires + 30 s)). */
export function lifetimeAfterSuccess(now: number, registrationExpiresS: number, previousExpiresAt?: number): number {
  const t = now + (registrationExpiresS + 30) * 1000;
  return previousExpiresAt === undefined ? t : Math.max(previousExpiresAt, t);
}

/**
 * Picks the outbound SA for a (local source port, remote destination port) pair (spec digest §6.2):
 * the UE sends uc→ps on SA1 and us→pc on SA4 (both legal for its UDP responses); the P-CSCF sends
 * pc→us on SA2 and ps→uc on SA3. Undefined when no outbound SA carries that pair. Per packet: no array.
 */
export function selectOutbound(set: SaSet, srcPort: number, dstPort: number): Sa | undefined {
  const ue = set.role === 'ue';
  const a = ue ? set.SA1 : set.SA2;
  if (a.srcPort === srcPort && a.dstPort === dstPort) return a;
  const b = ue ? set.SA4 : set.SA3;
  return b.srcPort === srcPort && b.dstPort === dstPort ? b : undefined;
}

/** Whether (alg, ealg)'s transform holds no per-SA state, so the four SAs can share one (see SaSet.transformOf). */
function shareable(alg: IntegrityAlg, ealg: EncryptionAlg): boolean {
  // The traditional ones (CBC/NULL + HMAC-96) keep only the keys and each CBC context's chaining
  // block, so sharing is exact; GCM/GMAC draw a per-SA IV offset (transforms/iv.ts CounterIv).
  return ealg !== 'aes-gcm' && alg !== 'aes-gmac';
}

/** Keys as one latin1 string: IK_ESP ‖ CK_ESP ‖ salt (their lengths were checked against alg/ealg). */
function keyText(k: EspKeys): string {
  const n = k.ikEsp.length + k.ckEsp.length + (k.salt?.length ?? 0);
  const b = Buffer.allocUnsafe(n);
  b.set(k.ikEsp, 0);
  b.set(k.ckEsp, k.ikEsp.length);
  if (k.salt) b.set(k.salt, k.ikEsp.length + k.ckEsp.length);
  const s = b.toString('latin1');
  b.fill(0);
  return s;
}

/** Octets [from, to) of a latin1 key string, as a fresh Uint8Array. */
function octets(s: string, from: number, to: number): Uint8Array {
  const out = new Uint8Array(to - from);
  for (let i = from; i < to; i++) out[i - from] = s.charCodeAt(i);
  return out;
}
