// The 33.203 SA set (§7.1, §7.4; spec digest §6.2, §8): four unidirectional SAs sharing one
// algorithm pair and one CK_ESP/IK_ESP, seen from the UE or the P-CSCF, with its state machine
// and caller-given lifetimes (absolute ms; no clock inside).
import { isIP } from 'node:net';
import { inspect } from 'node:util';
import type { EncryptionAlg, IntegrityAlg } from './algorithms.ts';
import { isValidPair } from './algorithms.ts';
import { IpsecError } from './errors.ts';
import type { EspKeys } from './keys.ts';
import { shareableTransform } from './esp/sa.ts';
import { flatString, Sa, type SaCounters, type SaDirection, type SaName } from './sa.ts';
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

/** The four SAs of one UE–P-CSCF pair (33.203 §7.1: SA1–SA4, inbound and outbound at each end) with their lifecycle state and lifetimes; created by `createSaSet`, installed by an `IpsecBackend`. */
export class SaSet {
  readonly id: string;
  readonly role: 'ue' | 'pcscf';
  /** The configuration without keys, IV hook and lifetimes (those live in the SAs and getters). */
  readonly config: Omit<SaSetConfig, 'keys' | 'iv' | 'expiresAt' | 'softExpiresAt' | 'resume'>;
  /** SA1..SA4 by name (spec digest §6.2). */
  readonly sas: Readonly<Record<SaName, Sa>>;
  #state: SaSetState = 'temporary';
  #expiresAt: number | undefined;
  #softExpiresAt: number | undefined;
  #softFired = false;

  constructor(cfg: SaSetConfig) {
    checkConfig(cfg);
    const { keys: _keys, iv: _iv, expiresAt: _e, softExpiresAt: _s, resume: _r, ...rest } = cfg;
    this.config = rest;
    this.id = flatString(cfg.id ?? `set-${nextId++}`);
    this.role = cfg.role;
    this.#expiresAt = cfg.expiresAt;
    this.#softExpiresAt = cfg.softExpiresAt;
    // The set owns a copy of the keys: callers wipe theirs after creating it (the UE does), and a
    // backend that reads them later (xfrm writes them to the kernel at install and on UPDSA) must
    // not find zeros.
    const k = cfg.keys;
    const p = saParamsOf(
      Object.assign({}, cfg, {
        keys: { ikEsp: new Uint8Array(k.ikEsp), ckEsp: new Uint8Array(k.ckEsp), ...(k.salt && { salt: new Uint8Array(k.salt) }) },
      }),
    );
    const outOf = (fromUe: boolean): SaDirection => ((cfg.role === 'ue') === fromUe ? 'out' : 'in');
    // 33.203 §7.1: one CK_ESP/IK_ESP for the four SAs, hence one transform when it holds no per-SA state.
    // The transform borrows the set's own copy of the keys (never wiped nor changed while the set lives).
    const transform = cfg.iv ? undefined : shareableTransform({ alg: cfg.alg, ealg: cfg.ealg, keys: p.SA1.keys }, { borrowKeys: true });
    const mk = (name: SaName, fromUe: boolean, params: SaParams) => {
      const resume = cfg.resume?.[name];
      return new Sa(name, outOf(fromUe), params, {
        ...(cfg.iv && { iv: cfg.iv }),
        ...(resume !== undefined && { resume }),
        ...(transform && { transform }),
      });
    };
    this.sas = { SA1: mk('SA1', true, p.SA1), SA2: mk('SA2', false, p.SA2), SA3: mk('SA3', false, p.SA3), SA4: mk('SA4', true, p.SA4) };
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
    return [this.sas.SA1, this.sas.SA2, this.sas.SA3, this.sas.SA4];
  }
  get inbound(): readonly Sa[] {
    return this.all.filter((s) => s.direction === 'in');
  }
  get outbound(): readonly Sa[] {
    return this.all.filter((s) => s.direction === 'out');
  }

  /** Applies an event (see the diagram). Entering `deleted` kills the four SAs. */
  apply(event: SaSetEvent): SaSetTransition {
    const t = transition(this.#state, event);
    this.#state = t.state;
    if (t.state === 'deleted') for (const sa of this.all) sa.kill(event === 'expired' ? 'expired' : 'deleted');
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
 * What the four SAs of a set have in common (algorithms, keys, mode, both ends' addresses, the two
 * encapsulation port pairs): one object per set, which each SA's parameters read through.
 */
class SetShared {
  constructor(
    readonly mode: EspMode,
    readonly alg: IntegrityAlg,
    readonly ealg: EncryptionAlg,
    readonly keys: EspKeys,
    readonly replayWindow: number | undefined,
    readonly ueIp: string,
    readonly pcscfIp: string,
    /** The UE's inner address when it differs from its outer one (udp-enc-tunnel behind a NAT). */
    readonly innerUe: string | undefined,
    readonly upEncap: { readonly srcPort: number; readonly dstPort: number } | undefined,
    readonly downEncap: { readonly srcPort: number; readonly dstPort: number } | undefined,
  ) {}
}

/**
 * One SA's parameters as the set builds them: its own SPI and ports, the direction (UE→P-CSCF or
 * back), and the rest read from the set's shared part. Memory (issue 9 §2): five fields per SA
 * instead of a dozen plus an encapsulation object each; one class, so every read is monomorphic.
 */
class SetSaParams implements SaParams {
  readonly #shared: SetShared;
  /** UE → P-CSCF (SA1, SA4), else P-CSCF → UE (SA2, SA3). */
  readonly #up: boolean;
  constructor(
    readonly spi: number,
    readonly srcPort: number,
    readonly dstPort: number,
    shared: SetShared,
    up: boolean,
  ) {
    this.#shared = shared;
    this.#up = up;
  }
  get src(): string {
    return this.#up ? this.#shared.ueIp : this.#shared.pcscfIp;
  }
  get dst(): string {
    return this.#up ? this.#shared.pcscfIp : this.#shared.ueIp;
  }
  get mode(): EspMode {
    return this.#shared.mode;
  }
  get alg(): IntegrityAlg {
    return this.#shared.alg;
  }
  get ealg(): EncryptionAlg {
    return this.#shared.ealg;
  }
  get keys(): EspKeys {
    return this.#shared.keys;
  }
  get replayWindow(): number | undefined {
    return this.#shared.replayWindow;
  }
  get encap(): { readonly srcPort: number; readonly dstPort: number } | undefined {
    return this.#up ? this.#shared.upEncap : this.#shared.downEncap;
  }
  get innerSrc(): string | undefined {
    return this.#up ? this.#shared.innerUe : undefined;
  }
  get innerDst(): string | undefined {
    return this.#up ? undefined : this.#shared.innerUe;
  }
}

/**
 * The four SAs of spec digest §6.2, independent of the role (the role only decides in/out):
 * SA1 uc→ps spi_ps, SA2 pc→us spi_us, SA3 ps→uc spi_uc, SA4 us→pc spi_pc.
 */
export function saParamsOf(cfg: SaSetConfig): Record<SaName, SaParams> {
  const { ue, pcscf } = cfg;
  const tunnel = cfg.mode === 'udp-enc-tunnel';
  const ueEnc = cfg.encap?.uePort ?? NAT_T_PORT;
  const pEnc = cfg.encap?.pcscfPort ?? NAT_T_PORT;
  const innerUe = tunnel && ue.innerIp && ue.innerIp !== ue.ip ? ue.innerIp : undefined;
  const shared = new SetShared(
    cfg.mode,
    cfg.alg,
    cfg.ealg,
    cfg.keys,
    cfg.replayWindow || undefined,
    ue.ip,
    pcscf.ip,
    innerUe,
    tunnel ? { srcPort: ueEnc, dstPort: pEnc } : undefined,
    tunnel ? { srcPort: pEnc, dstPort: ueEnc } : undefined,
  );
  return {
    SA1: new SetSaParams(pcscf.spiS, ue.portC, pcscf.portS, shared, true),
    SA2: new SetSaParams(ue.spiS, pcscf.portC, ue.portS, shared, false),
    SA3: new SetSaParams(ue.spiC, pcscf.portS, ue.portC, shared, false),
    SA4: new SetSaParams(pcscf.spiC, ue.portS, pcscf.portC, shared, true),
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
 * pc→us on SA2 and ps→uc on SA3. Undefined when no outbound SA carries that pair.
 */
export function selectOutbound(set: SaSet, srcPort: number, dstPort: number): Sa | undefined {
  return set.outbound.find((sa) => sa.params.srcPort === srcPort && sa.params.dstPort === dstPort);
}
