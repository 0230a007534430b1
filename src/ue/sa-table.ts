// The UE's SA table (33.203 §7.1, §7.4, M.7.1 rules 5–7; digest §6.1, §8): its temporary, current
// and old SA sets with their Security-Server, lifetimes and in-flight transactions; the protected
// ports it picks (pseudo-randomly, never one in its table).
import type { Clock } from '../sip/index.ts';
import { createSaSet, expandKeys, lifetimeAfterSuccess, modeFromMod, NAT_T_PORT, type SaSet, type SaSetEvent } from '../ipsec/index.ts';
import type { IpsecBackend } from '../ipsec/backends/backend.ts';
import type { ServerChoice } from '../secagree/index.ts';
import { UeError } from './errors.ts';

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
  readonly onDeleted: (set: SaSet, why: SaSetEvent) => void;
}

/** The backend's local ESP-in-UDP port (kept for callers; the interface has it now). */
export function encapPortOf(backend: IpsecBackend): number {
  return backend.encapPort;
}

/** Not safe for concurrent use (one event loop owns it). */
export class UeSaTable {
  temporary: SaSet | undefined;
  current: SaSet | undefined;
  readonly old = new Set<SaSet>();
  /** The Security-Client being negotiated: its ports count as taken. */
  pending: ClientOffer | undefined;
  readonly #server = new Map<SaSet, readonly string[]>();
  readonly #inflight = new Map<SaSet, number>();
  readonly #timers = new Map<SaSet, () => void>();
  #n = 0;

  constructor(private readonly deps: SaTableDeps) {}

  /** Every live set, newest role first: current, temporary, old. */
  all(): SaSet[] {
    return [this.current, this.temporary, ...this.old].filter((s): s is SaSet => s !== undefined && s.live);
  }

  /** The Security-Server received when `set` was negotiated (Security-Verify of later REGISTERs). */
  serverOf(set: SaSet): readonly string[] {
    return this.#server.get(set) ?? [];
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
  async createTemporary(offer: ClientOffer, choice: ServerChoice, ik: Uint8Array, ck: Uint8Array, serverRaw: readonly string[], innerIp?: string): Promise<SaSet> {
    if (this.temporary) await this.#drop(this.temporary, 'deleted');
    const { backend, clock } = this.deps;
    const mode = modeFromMod(choice.mod);
    const keys = expandKeys(ik, ck, choice.alg, choice.ealg);
    const set = createSaSet({
      role: 'ue',
      id: `${this.deps.label}#${++this.#n}`,
      // Outer = the local (private) address; inner = the same unless a 'public inside' peer wants the public one (§15A point 4).
      ue: { ip: this.deps.localIp, portC: offer.portC, portS: offer.portS, spiC: offer.spiC, spiS: offer.spiS, ...(mode === 'udp-enc-tunnel' && innerIp && { innerIp }) },
      pcscf: { ip: this.deps.pcscfIp, ...choice.server },
      alg: choice.alg,
      ealg: choice.ealg,
      keys,
      mode,
      ...(mode === 'udp-enc-tunnel' && { encap: { uePort: encapPortOf(backend), pcscfPort: this.deps.pcscfEncapPort } }),
      expiresAt: clock.now() + this.deps.regAwaitAuthMs,
    });
    for (const k of [keys.ikEsp, keys.ckEsp, keys.salt]) k?.fill(0); // the SAs hold their own copies
    await backend.install(set);
    this.temporary = set;
    this.#server.set(set, [...serverRaw]);
    this.#schedule(set);
    this.deps.onCreated(set);
    return set;
  }

  /**
   * The 200 OK (digest §8 rules 2–4): temporary → current with lifetime max(previous, expires + 30 s);
   * the previous current set becomes old and goes once its transactions have ended. Without a
   * temporary set (a re-REGISTER answered 200 directly) the current set's lifetime is extended.
   */
  async promote(expiresS: number): Promise<void> {
    const now = this.deps.clock.now();
    const t = this.temporary;
    if (!t) {
      const c = this.current;
      if (!c) return;
      c.apply('authenticated');
      c.setLifetime({ expiresAt: lifetimeAfterSuccess(now, expiresS, c.expiresAt) });
      this.#schedule(c);
      return;
    }
    const prev = this.current;
    t.apply('authenticated');
    t.setLifetime({ expiresAt: lifetimeAfterSuccess(now, expiresS, prev?.live ? prev.expiresAt : undefined) });
    this.#schedule(t);
    this.current = t;
    this.temporary = undefined;
    if (prev?.live) {
      prev.apply('superseded');
      this.old.add(prev);
      if ((this.#inflight.get(prev) ?? 0) === 0) await this.#drop(prev, 'transactions-done');
    }
  }

  /** A failed or abandoned security set-up (digest §8 rule 8): the temporary set goes, the rest stays. */
  async discardTemporary(): Promise<void> {
    if (this.temporary) await this.#drop(this.temporary, 'failed');
  }

  /** De-registration, expiry, fallback, close (digest §8 rule 7). */
  async deleteAll(): Promise<void> {
    for (const s of this.all()) await this.#drop(s, 'deleted');
    this.pending = undefined;
  }

  /** A transaction started over `set` (client) or arrived over it (server). */
  begin(set: SaSet): void {
    this.#inflight.set(set, (this.#inflight.get(set) ?? 0) + 1);
  }

  /** That transaction terminated; an old set with none left is deleted (digest §8 rule 4, pitfall 15). */
  end(set: SaSet): void {
    if (!this.#inflight.has(set)) return; // the set went meanwhile
    const n = Math.max(0, this.#inflight.get(set)! - 1);
    this.#inflight.set(set, n);
    if (n === 0 && set.state === 'old') void this.#drop(set, 'transactions-done');
  }

  inflight(set: SaSet): number {
    return this.#inflight.get(set) ?? 0;
  }

  /** Fires the hard expiry of a set at its expiresAt (a temporary set after reg-await-auth, §10.4). */
  #schedule(set: SaSet): void {
    this.#timers.get(set)?.();
    const at = set.expiresAt;
    if (at === undefined) return;
    const cancel = this.deps.clock.setTimer(Math.max(0, at - this.deps.clock.now()), () => {
      this.#timers.delete(set);
      // The lifetime may have moved since (setLifetime); only a set still due goes.
      if (set.live && set.expiresAt !== undefined && this.deps.clock.now() >= set.expiresAt) void this.#drop(set, 'expired');
    });
    this.#timers.set(set, cancel);
  }

  async #drop(set: SaSet, why: SaSetEvent): Promise<void> {
    this.#timers.get(set)?.();
    this.#timers.delete(set);
    if (this.temporary === set) this.temporary = undefined;
    if (this.current === set) this.current = undefined;
    this.old.delete(set);
    this.#inflight.delete(set);
    this.#server.delete(set);
    if (!set.live) return;
    // 'failed' is only legal for a temporary set; any other state is simply deleted.
    set.apply(why === 'failed' && set.state !== 'temporary' ? 'deleted' : why);
    await this.deps.backend.remove(set);
    this.deps.onDeleted(set, why);
  }
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
