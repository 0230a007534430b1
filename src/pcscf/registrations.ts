// Registration state of the P-CSCF and the SA-set bookkeeping (33.203 §7.4; 24.229 §5.2.2; spec
// digest §8, §9): temporary (reg-await-auth) → current (lifetimeAfterSuccess) → old (deleted when
// its in-flight transactions end), failure, expiry and de-registration. No SIP here.
import type { IpsecBackend } from '../ipsec/backends/backend.ts';
import type { SaSet, SaSetEvent } from '../ipsec/sa-set.ts';
import type { Negotiated, SecMechanism } from '../secagree/index.ts';
import type { Clock } from '../sip/clock.ts';
import type { PcscfEvents, RegistrationView, Source } from './types.ts';

/** One security set-up, SM1 → SM12 (33.203 §6.1.1, §7.2): what the protected REGISTER is checked against. */
export interface Round {
  readonly callId: string;
  /** Packet source (public address behind a NAT) of the REGISTER that started the round. */
  readonly ueIp: string;
  /** 24.229 F.1 verdict on the REGISTER that started the round. */
  readonly natDetected: boolean;
  /** The UE's private address (the Via sent-by host) when a NAT was detected (spec digest §15A.4). */
  readonly innerIp?: string;
  /** Security-Client as received (raw lines) and parsed (Annex H: must come back identical). */
  readonly client: { readonly raw: readonly string[]; readonly parsed: readonly SecMechanism[] };
  readonly choice: Negotiated;
  /** Security-Server sent with the 401 (Security-Verify must equal it). */
  server?: readonly SecMechanism[];
  temporary?: SaSet;
}

export class Registration {
  impus: string[] = [];
  /** The UE's public IP, its private (inner) IP behind a NAT, and its learned ESP-in-UDP source. */
  ue: { ip: string; innerIp?: string; encap?: Source };
  natDetected = false;
  contact?: string;
  /** Service-Route of the last 200 OK (24.229 §5.2.2): the route of UE-originated requests. */
  serviceRoute: string[] = [];
  /** Registration expiry (clock ms); undefined until the first 200 OK. */
  expiresAt?: number;
  current?: SaSet;
  readonly old: SaSet[] = [];
  round?: Round;
  /** Security-Server of the set now current: a re-REGISTER's Security-Verify repeats it (spec digest §8.5). */
  lastServer?: readonly SecMechanism[];

  constructor(
    readonly impi: string,
    ueIp: string,
  ) {
    this.ue = { ip: ueIp };
  }

  get sets(): SaSet[] {
    return [...(this.round?.temporary ? [this.round.temporary] : []), ...(this.current ? [this.current] : []), ...this.old].filter((s) => s.live);
  }
}

export type Emit = <K extends keyof PcscfEvents>(name: K, payload: PcscfEvents[K]) => void;

/** Not safe for concurrent use (one event loop owns it). */
export class RegistrationTable {
  readonly #byImpi = new Map<string, Registration>();
  readonly #owner = new Map<SaSet, Registration>();
  readonly #inFlight = new Map<SaSet, number>();
  readonly #timers = new Map<SaSet | Registration, () => void>();
  readonly #removals = new Set<Promise<void>>();

  constructor(
    private readonly backend: IpsecBackend,
    private readonly clock: Clock,
    private readonly emit: Emit,
  ) {}

  get(impi: string): Registration | undefined {
    return this.#byImpi.get(impi);
  }

  getOrCreate(impi: string, ueIp: string): Registration {
    let r = this.#byImpi.get(impi);
    if (!r) {
      r = new Registration(impi, ueIp);
      this.#byImpi.set(impi, r);
    }
    return r;
  }

  ownerOf(set: SaSet): Registration | undefined {
    return this.#owner.get(set);
  }

  all(): Registration[] {
    return [...this.#byImpi.values()];
  }

  /** Every live set this P-CSCF installed (for the admission check). */
  allSets(): SaSet[] {
    return [...this.#owner.keys()].filter((s) => s.live);
  }

  /** Files a freshly installed temporary set; it dies after reg-await-auth unless promoted (spec digest §8 rule 1). */
  addTemporary(reg: Registration, round: Round, set: SaSet, regAwaitAuthMs: number): void {
    round.temporary = set;
    this.#owner.set(set, reg);
    this.#timer(set, regAwaitAuthMs, () => {
      if (set.state === 'temporary') void this.deleteSet(set, 'expired', 'reg-await-auth expired without a protected REGISTER');
    });
  }

  /**
   * 200 OK to the protected REGISTER (spec digest §5.7, §8 rules 2-4): temporary → current with the
   * given lifetime; the previous current becomes old and goes once its transactions have ended.
   */
  promote(reg: Registration, set: SaSet, lifetimeExpiresAt: number): void {
    const previous = reg.current;
    set.apply('authenticated');
    set.setLifetime({ expiresAt: lifetimeExpiresAt });
    this.#cancel(set);
    reg.current = set;
    if (reg.round?.temporary === set) {
      reg.lastServer = reg.round.server;
      reg.round = undefined;
    }
    this.emit('sa-promoted', { impi: reg.impi, set: set.id, ...(previous ? { previous: previous.id } : {}) });
    if (previous && previous !== set && previous.live) {
      previous.apply('superseded');
      this.#cancel(previous);
      reg.old.push(previous);
      if ((this.#inFlight.get(previous) ?? 0) === 0) void this.deleteSet(previous, 'transactions-done', 'superseded, no transaction in flight');
    }
    this.#scheduleExpiry(reg, lifetimeExpiresAt);
  }

  /** A re-REGISTER answered 200 without a challenge keeps the current set (24.228 R2-1a) with a new lifetime. */
  refresh(reg: Registration, lifetimeExpiresAt: number): void {
    if (!reg.current) return;
    reg.current.apply('authenticated');
    reg.current.setLifetime({ expiresAt: lifetimeExpiresAt });
    this.#scheduleExpiry(reg, lifetimeExpiresAt);
  }

  /**
   * A transaction started over `set` (server: request arrived on it; client: request sent on it).
   * Our reading of "until the transactions that use it have finished" (spec digest §8 rule 4): until
   * the final response has gone out (server) or come in (client); the RFC 3261 wait states that
   * only absorb retransmissions (Timer J/K, 32 s/5 s) do not keep an old set alive.
   */
  hold(set: SaSet): void {
    if (!this.#owner.has(set)) return;
    this.#inFlight.set(set, (this.#inFlight.get(set) ?? 0) + 1);
  }

  /** That transaction ended; an old set with nothing left in flight is deleted (spec digest §8 rule 4). */
  release(set: SaSet): void {
    if (!this.#owner.has(set)) return;
    const n = Math.max(0, (this.#inFlight.get(set) ?? 0) - 1);
    this.#inFlight.set(set, n);
    if (n === 0 && set.state === 'old') void this.deleteSet(set, 'transactions-done', 'old set: its last transaction ended');
  }

  inFlight(set: SaSet): number {
    return this.#inFlight.get(set) ?? 0;
  }

  /** Deletes one set (SA state machine event, backend removal, event). Idempotent. */
  deleteSet(set: SaSet, event: SaSetEvent, reason: string): Promise<void> {
    const reg = this.#owner.get(set);
    if (!reg) return Promise.resolve();
    this.#owner.delete(set);
    this.#inFlight.delete(set);
    this.#cancel(set);
    if (set.live) set.apply(event);
    if (reg.round?.temporary === set) reg.round = undefined;
    if (reg.current === set) reg.current = undefined;
    const i = reg.old.indexOf(set);
    if (i >= 0) reg.old.splice(i, 1);
    this.emit('sa-deleted', { impi: reg.impi, set: set.id, reason });
    if (!reg.current && !reg.round) this.#forget(reg);
    const p = this.backend.remove(set).catch(() => {});
    this.#removals.add(p);
    void p.finally(() => this.#removals.delete(p));
    return p;
  }

  /** De-registration or expiry: every set of the registration goes, then the registration. */
  async deleteAll(reg: Registration, event: SaSetEvent, reason: string): Promise<void> {
    const sets = reg.sets;
    this.#forget(reg, reason);
    reg.round = undefined;
    await Promise.all(sets.map((s) => this.deleteSet(s, event, reason)));
  }

  /** Ends a round that never got (or lost) its temporary set; a registration with nothing left is dropped. */
  endRound(reg: Registration): void {
    if (reg.round?.temporary?.live) return;
    reg.round = undefined;
    if (!reg.current) this.#forget(reg);
  }

  /** Deletes everything (P-CSCF stop). */
  async clear(reason: string): Promise<void> {
    for (const reg of this.all()) await this.deleteAll(reg, 'deleted', reason);
    await Promise.all([...this.#removals]);
    for (const cancel of this.#timers.values()) cancel();
    this.#timers.clear();
  }

  views(): RegistrationView[] {
    return this.all().map((reg) => ({
      impi: reg.impi,
      impus: [...reg.impus],
      state: reg.current ? 'registered' : 'pending',
      ...(reg.expiresAt !== undefined ? { expires: reg.expiresAt } : {}),
      nat: reg.natDetected,
      ue: { ...reg.ue },
      ...(reg.contact !== undefined ? { contact: reg.contact } : {}),
      sets: reg.sets.map((s) => ({
        id: s.id,
        role: s.state === 'temporary' ? 'temporary' : s.state === 'current' ? 'current' : 'old',
        ...(s.expiresAt !== undefined ? { expiresAt: s.expiresAt } : {}),
        inFlight: this.inFlight(s),
        sas: s.summary(),
      })),
    }));
  }

  #forget(reg: Registration, reason = 'no SA set left'): void {
    if (this.#byImpi.get(reg.impi) !== reg) return;
    this.#byImpi.delete(reg.impi);
    this.#cancel(reg);
    if (reg.expiresAt !== undefined) this.emit('deregistered', { impi: reg.impi, reason });
  }

  /** Spec digest §8: when the current set's lifetime runs out, the whole registration goes. */
  #scheduleExpiry(reg: Registration, at: number): void {
    this.#timer(reg, at - this.clock.now(), () => {
      if (this.#byImpi.get(reg.impi) === reg) void this.deleteAll(reg, 'expired', 'registration expired without a refresh');
    });
  }

  #timer(key: SaSet | Registration, ms: number, fire: () => void): void {
    this.#cancel(key);
    const cancel = this.clock.setTimer(Math.max(0, ms), () => {
      if (this.#timers.get(key) !== cancel) return; // superseded meanwhile
      this.#timers.delete(key);
      fire();
    });
    this.#timers.set(key, cancel);
  }

  #cancel(key: SaSet | Registration): void {
    this.#timers.get(key)?.();
    this.#timers.delete(key);
  }
}
