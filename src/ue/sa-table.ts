// The UE's SA table (33.203 §7.1, §7.4, M.7.1 rules 5–7; digest §6.1, §8): its temporary, current
// and old SA sets with their Security-Server, lifetimes and in-flight transactions; the protected
// ports it picks (pseudo-randomly, never one in its table).
import type { Clock } from '../sip/index.ts';
import { createSaSet, expandKeys, lifetimeAfterSuccess, modeFromMod, NAT_T_PORT, type SaSet, type SaSetEvent } from '../ipsec/index.ts';
import type { IpsecBackend } from '../ipsec/backends/backend.ts';
import type { ServerChoice } from '../secagree/index.ts';
import { SaSlots, type SaSlotsDeps } from '../ipsec/sa-slots.ts';
import { UeError } from './errors.ts';
import { ownString } from '../util/own-string.ts';

/** 24.229 Table 7.8.1: reg-await-auth, the lifetime of a temporary set (digest §8 rule 1, §11). */
export const REG_AWAIT_AUTH_MS = 4 * 60 * 1000;

/** What the UE offered in one Security-Client (digest §6.1): its inbound SPIs and protected ports. */
export interface ClientOffer {
  readonly spiC: number;
  readonly spiS: number;
  readonly portC: number;
  readonly portS: number;
  /** The Security-Client value, sent unchanged in every REGISTER of this set-up (Annex H). */
  readonly header: string;
}

export interface SaTableDeps {
  readonly backend: IpsecBackend;
  readonly clock: Clock;
  readonly localIp: string;
  readonly pcscfIp: string;
  /** The P-CSCF's ESP-in-UDP port (digest §15A point 1). */
  readonly pcscfEncapPort: number;
  readonly regAwaitAuthMs: number;
  /** A label for set ids. */
  readonly label: string;
  readonly onCreated: (set: SaSet) => void;
  /** Once per set, after the backend removal; `error` when the backend could not remove it. */
  readonly onDeleted: (set: SaSet, why: SaSetEvent, error?: Error) => void;
  /** The backend could not follow a lifetime change (e.g. UPDSA failed). */
  readonly onSyncFailed?: (set: SaSet, error: Error) => void;
}

/** The backend's local ESP-in-UDP port (kept for callers; the interface has it now). */
export function encapPortOf(backend: IpsecBackend): number {
  return backend.encapPort;
}

/**
 * The Security-Server each set was negotiated with (Security-Verify of later REGISTERs). One map
 * for every UE, weak: an entry goes with its set, and a UE holds no Map of its own (issue 9 §2).
 */
const serverOfSet = new WeakMap<SaSet, readonly string[]>();

/** The SaSlots hooks of one table: prototype methods, no closure per UE. */
class SlotsLink implements SaSlotsDeps {
  constructor(readonly deps: SaTableDeps) {}
  get backend(): IpsecBackend {
    return this.deps.backend;
  }
  get clock(): Clock {
    return this.deps.clock;
  }
  get keepOld(): 'peer-switched' {
    return 'peer-switched';
  }
  onDeleted(set: SaSet, why: SaSetEvent, _reason: string, error: Error | undefined): void {
    this.deps.onDeleted(set, why, error);
  }
  onSyncFailed(set: SaSet, error: Error): void {
    this.deps.onSyncFailed?.(set, error);
  }
}

/** Not safe for concurrent use (one event loop owns it). The slots themselves live in ipsec/sa-slots.ts. */
export class UeSaTable {
  /** The Security-Client being negotiated: its ports count as taken. */
  pending: ClientOffer | undefined;
  readonly #slots: SaSlots;
  #n = 0;

  constructor(private readonly deps: SaTableDeps) {
    this.#slots = new SaSlots(new SlotsLink(deps));
  }

  get temporary(): SaSet | undefined {
    return this.#slots.temporary;
  }
  get current(): SaSet | undefined {
    return this.#slots.current;
  }
  get old(): readonly SaSet[] {
    return this.#slots.old;
  }

  /** Every live set, newest role first: current, temporary, old. */
  all(): SaSet[] {
    return this.#slots.sets;
  }

  /** The Security-Server received when `set` was negotiated (Security-Verify of later REGISTERs). */
  serverOf(set: SaSet): readonly string[] {
    return serverOfSet.get(set) ?? [];
  }

  /** Whether a set in the table or the pending offer has `port` as a protected port (no Set built, unlike usedPorts). */
  usesPort(port: number): boolean {
    const p = this.pending;
    if (p !== undefined && (p.portC === port || p.portS === port)) return true;
    if (hasPort(this.#slots.current, port) || hasPort(this.#slots.temporary, port)) return true;
    for (const s of this.#slots.old) if (hasPort(s, port)) return true;
    return false;
  }

  /** M.7.1 rule 6: protected ports in the table (and the pending offer's) are not picked again. */
  usedPorts(): Set<number> {
    const used = new Set<number>();
    for (const s of this.all()) used.add(s.config.ue.portC).add(s.config.ue.portS);
    if (this.pending) used.add(this.pending.portC).add(this.pending.portS);
    return used;
  }

  /**
   * 33.203 §7.2 (digest §5.5): builds and installs the temporary set from our offer, the chosen
   * Security-Server entry and CK/IK (expanded per Annex I). Lifetime reg-await-auth. A previous
   * temporary set (the same offer challenged again) is deleted first: its inbound SPIs are reused.
   */
  async createTemporary(
    offer: ClientOffer,
    choice: ServerChoice,
    ik: Uint8Array,
    ck: Uint8Array,
    serverRaw: readonly string[],
    innerIp?: string,
  ): Promise<SaSet> {
    if (this.temporary) await this.#slots.delete(this.temporary, 'deleted', 'a new challenge');
    const { backend, clock } = this.deps;
    const mode = modeFromMod(choice.mod);
    const keys = expandKeys(ik, ck, choice.alg, choice.ealg);
    const set = createSaSet({
      role: 'ue',
      id: [this.deps.label, ++this.#n].join('#'), // one flat string: not a cons of three pieces (nor slices of others) per set
      // Outer = the local (private) address; inner = the same unless a 'public inside' peer wants the public one (§15A point 4).
      ue: {
        ip: this.deps.localIp,
        portC: offer.portC,
        portS: offer.portS,
        spiC: offer.spiC,
        spiS: offer.spiS,
        ...(mode === 'udp-enc-tunnel' && innerIp && { innerIp }),
      },
      pcscf: { ip: this.deps.pcscfIp, ...choice.server },
      alg: choice.alg,
      ealg: choice.ealg,
      keys,
      mode,
      ...(mode === 'udp-enc-tunnel' && { encap: { uePort: encapPortOf(backend), pcscfPort: this.deps.pcscfEncapPort } }),
      expiresAt: clock.now() + this.deps.regAwaitAuthMs,
    });
    for (const k of [keys.ikEsp, keys.ckEsp, keys.salt]) k?.fill(0); // the SAs hold their own copies
    await this.#slots.installTemporary(set);
    serverOfSet.set(set, serverRaw.map(ownString)); // not slices of the whole 401 (util/own-string.ts)
    this.deps.onCreated(set);
    return set;
  }

  /**
   * The 200 OK (digest §8 rules 2–4): temporary → current with lifetime max(previous, expires + 30 s),
   * in the backend too (issue 11 §1: the kernel SAs must not keep the reg-await-auth lifetime); the
   * previous current set becomes old and goes once its transactions have ended. Without a temporary
   * set (a re-REGISTER answered 200 directly) the current set's lifetime is extended.
   */
  async promote(expiresS: number): Promise<void> {
    const now = this.deps.clock.now();
    const t = this.temporary;
    const c = this.current;
    if (!t) {
      if (c) this.#slots.refresh(lifetimeAfterSuccess(now, expiresS, c.expiresAt));
      return;
    }
    this.#slots.promote(t, lifetimeAfterSuccess(now, expiresS, c?.expiresAt));
    await this.#slots.settled();
  }

  /** A failed or abandoned security set-up (digest §8 rule 8): the temporary set goes, the rest stays. */
  async discardTemporary(): Promise<void> {
    await this.#slots.discardTemporary('security set-up failed');
  }

  /** De-registration, expiry, fallback, close (digest §8 rule 7). */
  async deleteAll(): Promise<void> {
    await this.#slots.deleteAll('deleted', 'deleted');
    this.pending = undefined;
  }

  /** A transaction started over `set` (client) or arrived over it (server). */
  begin(set: SaSet): void {
    this.#slots.begin(set);
  }

  /** That transaction terminated; an old set with none left is deleted (digest §8 rule 4, pitfall 15). */
  end(set: SaSet): void {
    this.#slots.end(set);
  }

  inflight(set: SaSet): number {
    return this.#slots.inflight(set);
  }

  /** The P-CSCF sent a request over `set`: over the current set, the old ones may go (33.203 §7.4). */
  peerUsed(set: SaSet): void {
    this.#slots.peerUsed(set);
  }
}

function hasPort(set: SaSet | undefined, port: number): boolean {
  return set !== undefined && (set.config.ue.portC === port || set.config.ue.portS === port);
}

/**
 * M.7.1 rule 6: a protected port picked (pseudo-)randomly from [lo, hi], not in `used`.
 * `random` returns [0, 1) (Math.random by default; injectable for tests).
 */
export function choosePort(range: readonly [number, number], used: ReadonlySet<number>, random: () => number = Math.random): number {
  const [lo, hi] = range;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi > 65535 || lo > hi) {
    throw new UeError('UE_BAD_OPTIONS', `portRange must be two ports lo <= hi in 1..65535, got [${lo}, ${hi}]`);
  }
  const span = hi - lo + 1;
  for (let i = 0; i < 64; i++) {
    const p = lo + Math.floor(random() * span);
    if (!used.has(p)) return p;
  }
  // A crowded range: walk it from a random start.
  const start = Math.floor(random() * span);
  for (let i = 0; i < span; i++) {
    const p = lo + ((start + i) % span);
    if (!used.has(p)) return p;
  }
  throw new UeError('UE_NO_PORT', `no free protected port in ${lo}..${hi}`);
}
