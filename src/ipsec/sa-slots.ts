// The one owner of an SA-set lifecycle (33.203 §7.4; 24.229 §5.1.1.5 / §5.2.2; spec digest §8):
// the temporary / current / old slots of ONE registration, seen from the UE or the P-CSCF. It runs
// the SA-set machine's actions (sa-set.ts `transition`), expiry included, and it is the only code
// that removes sets from the backend. Order of a deletion: slot cleared and state applied
// (synchronously, `onDropped`) → backend removal → exactly one `onDeleted`, carrying the removal
// error if the backend failed (never swallowed).
//
// Expiry: each set's slot entry waits in the expiry queue of the injected Clock (expiry-queue.ts: one
// heap and one clock timer for every set on that clock, no timer or closure per set, no sweep); a
// due entry re-checks that its set is still due (strongSwan `sa_expired`).
import type { Clock } from '../util/clock.ts';
import type { IpsecBackend } from './backends/backend.ts';
import { IpsecError } from './errors.ts';
import { ExpiryQueue, type ExpiryItem } from './expiry-queue.ts';
import type { SaSet, SaSetEvent } from './sa-set.ts';

/**
 * Why a set left its slot, decided where it is decided (the expiry timer, the machine's actions):
 * the SA-set event, except 'auth-timeout' — a temporary set whose reg-await-auth ran out without a
 * protected REGISTER (spec digest §10.4), an authentication failure by timeout for the metrics.
 */
export type SaDeleteCode = SaSetEvent | 'auth-timeout';

/** What a slot owner needs from a backend: install and remove, and the optional lifetime sync. */
export type SlotsBackend = Pick<IpsecBackend, 'install' | 'remove' | 'refresh' | 'restore'>;

export interface SaSlotsDeps {
  readonly backend: SlotsBackend;
  readonly clock: Clock;
  /** Synchronous, at the moment a set leaves its slot (before the backend removal). */
  readonly onDropped?: (set: SaSet, event: SaSetEvent, reason: string) => void;
  /** Once per set, after the backend removal settled; `error` when the backend failed to remove it. */
  readonly onDeleted?: (set: SaSet, event: SaSetEvent, reason: string, error: Error | undefined, code: SaDeleteCode) => void;
  /** A backend lifetime sync (e.g. UPDSA) that failed: the kernel SA may die early. */
  readonly onSyncFailed?: (set: SaSet, error: Error) => void;
  /**
   * 'transactions' (default): an old set goes once its transactions have ended (spec digest §8
   * rule 4). 'peer-switched' (the UE): it also waits until the peer has sent a request over the
   * current set (`peerUsed`) or its own lifetime ends (33.203 §7.4): until then the P-CSCF may
   * still send its requests over the old set (Kamailio 5.6 does so for good after a challenged
   * refresh), and they must not be dropped.
   */
  readonly keepOld?: 'transactions' | 'peer-switched';
}

/**
 * One set in a slot and what its owner keeps on it: its place in the clock's expiry queue (due time
 * and heap index: the entry is the queue's item), the grace timer of a restored old set, and the
 * transactions in flight over it (undefined until the first one began).
 */
class SlotEntry implements ExpiryItem {
  at = 0;
  pos = -1;
  grace: (() => void) | undefined = undefined;
  inflight: number | undefined = undefined;
  constructor(
    readonly set: SaSet,
    readonly slots: SaSlots,
  ) {}
}

/** The expiry queue of each clock (every SaSlots on a clock shares it; a clock no longer used takes its queue with it). */
const queues = new WeakMap<Clock, ExpiryQueue<SlotEntry>>();

/**
 * Not safe for concurrent use (one event loop owns it).
 *
 * Memory (issue 9 §2: a P-CSCF and `imsec load` hold one of these per registration): an idle
 * registration has one current set, so the slots are fields holding one small entry each, the old
 * sets a list made when the first one arrives (a registration has one or two at most: looking
 * through it is bounded, not a search over registrations), and no Map or Set up front.
 */
export class SaSlots {
  #temporary: SlotEntry | undefined;
  #current: SlotEntry | undefined;
  #old: SlotEntry[] | undefined;
  #removals: Set<Promise<void>> | undefined;
  /** 'peer-switched': the peer has sent a request over the current set since it became current. */
  #peerOnCurrent = true;

  /** What the slots call; undefined: this object is its own (an owner that extends SaSlots). */
  readonly #deps: SaSlotsDeps | undefined;

  /**
   * `deps`: what the slots call. None when the owner extends SaSlots and implements SaSlotsDeps
   * itself (the P-CSCF's Registration, issue 9 §2: the slots are fields of the registration, not a
   * second object per registration with a pointer each way).
   */
  constructor(deps?: SaSlotsDeps) {
    this.#deps = deps;
  }

  private get deps(): SaSlotsDeps {
    return this.#deps ?? (this as unknown as SaSlotsDeps);
  }

  /** The expiry queue of this owner's clock. */
  #queue(): ExpiryQueue<SlotEntry> {
    const clock = this.deps.clock;
    let q = queues.get(clock);
    if (!q) queues.set(clock, (q = new ExpiryQueue(clock, (e) => e.slots.#due(e))));
    return q;
  }

  get temporary(): SaSet | undefined {
    return this.#temporary?.set;
  }
  get current(): SaSet | undefined {
    return this.#current?.set;
  }
  get old(): readonly SaSet[] {
    return this.#old ? this.#old.map((e) => e.set) : [];
  }
  /** Every set in a slot, newest role first: current, temporary, old. */
  get sets(): SaSet[] {
    const out: SaSet[] = [];
    if (this.#current) out.push(this.#current.set);
    if (this.#temporary) out.push(this.#temporary.set);
    if (this.#old) for (const e of this.#old) out.push(e.set);
    return out;
  }
  get empty(): boolean {
    return !this.#current && !this.#temporary && !this.#old;
  }
  has(set: SaSet): boolean {
    return this.#entry(set) !== undefined;
  }

  /** The entry of `set` in one of the slots, if any. */
  #entry(set: SaSet): SlotEntry | undefined {
    if (this.#current?.set === set) return this.#current;
    if (this.#temporary?.set === set) return this.#temporary;
    if (this.#old) for (const e of this.#old) if (e.set === set) return e;
    return undefined;
  }

  #oldEntry(set: SaSet): SlotEntry | undefined {
    if (this.#old) for (const e of this.#old) if (e.set === set) return e;
    return undefined;
  }

  #addOld(e: SlotEntry): void {
    (this.#old ??= []).push(e);
  }

  /**
   * Spec digest §8 rule 1: installs a freshly built set in the backend and files it as temporary
   * (its expiresAt is reg-await-auth). A previous temporary set is deleted first (a new challenge
   * of the same set-up). On a backend failure nothing is filed and the error is thrown.
   */
  async installTemporary(set: SaSet): Promise<void> {
    if (set.state !== 'temporary') throw new IpsecError('IPSEC_ILLEGAL_TRANSITION', `SA set ${set.id} is ${set.state}, not temporary`);
    // Awaited: the new set may reuse the old one's inbound SPIs (the UE's same offer challenged again).
    if (this.#temporary) await this.delete(this.#temporary.set, 'deleted', 'replaced by a new temporary set');
    await this.deps.backend.install(set);
    if (this.#temporary) void this.delete(this.#temporary.set, 'deleted', 'replaced by a new temporary set');
    const e = new SlotEntry(set, this);
    this.#temporary = e;
    this.#arm(e);
  }

  /**
   * A set restored from a state store (issue 13 §3), already authenticated: restored in the backend
   * (backend.restore: xfrm adopts the kernel's SAs; else installed) and filed as current with its
   * lifetime timer, as if its 200 OK had just gone out. Only into empty slots (a restore happens
   * before any traffic).
   */
  async restoreCurrent(set: SaSet): Promise<void> {
    if (set.state !== 'current') throw new IpsecError('IPSEC_ILLEGAL_TRANSITION', `SA set ${set.id} is ${set.state}, not current`);
    if (!this.empty)
      throw new IpsecError('IPSEC_ILLEGAL_TRANSITION', `SA set ${set.id}: slots not empty, nothing is restored over live sets`);
    await this.#restoreInBackend(set);
    const e = new SlotEntry(set, this);
    this.#current = e;
    this.#arm(e);
  }

  /** backend.restore where the backend has one (xfrm adopts the kernel's SAs), else a plain install. */
  #restoreInBackend(set: SaSet): Promise<void> {
    const b = this.deps.backend;
    return b.restore ? b.restore(set) : b.install(set);
  }

  /**
   * An old set restored with its current one (issue 13 §3; the set a re-challenged refresh
   * superseded, 33.203 §7.4): restored in the backend and filed as old. This process lost the
   * transactions that kept it, but the peer may still retransmit over it: it is deleted after
   * `graceMs` (a transaction's lifetime, 64·T1) unless a transaction began over it — then when its
   * last one ends (spec digest §8 rule 4) — or at its own expiry, whichever comes first.
   */
  async restoreOld(set: SaSet, graceMs: number): Promise<void> {
    if (set.state !== 'old') throw new IpsecError('IPSEC_ILLEGAL_TRANSITION', `SA set ${set.id} is ${set.state}, not old`);
    if (!this.#current) throw new IpsecError('IPSEC_ILLEGAL_TRANSITION', `SA set ${set.id}: an old set is restored after its current one`);
    await this.#restoreInBackend(set);
    const e = new SlotEntry(set, this);
    this.#addOld(e);
    this.#arm(e);
    const cancel = this.deps.clock.setTimer(graceMs, () => {
      if (e.grace !== cancel) return;
      e.grace = undefined;
      if (this.#oldEntry(set) === e && (e.inflight ?? 0) === 0)
        void this.delete(set, 'transactions-done', 'restored old set: no transaction over it since the restart');
    });
    e.grace = cancel;
  }

  /**
   * The 200 OK to the protected REGISTER (spec digest §8 rules 2–4): the temporary `set` becomes
   * current with lifetime `expiresAt` (in the backend too: 33.203 §7.4, issue 11 §1); the previous
   * current set becomes old and goes once its transactions have ended.
   */
  promote(set: SaSet, expiresAt: number): void {
    const e = this.#temporary;
    if (!e || e.set !== set) throw new IpsecError('IPSEC_ILLEGAL_TRANSITION', `SA set ${set.id} is not the temporary set`);
    const prev = this.#current;
    set.apply('authenticated');
    this.#temporary = undefined;
    this.#current = e;
    this.#setLifetime(e, expiresAt);
    if (prev && prev !== e) {
      prev.set.apply('superseded');
      this.#addOld(prev);
      this.#sync(prev.set); // policies: the old set no longer takes new requests
      this.#peerOnCurrent = this.deps.keepOld !== 'peer-switched';
      if (this.#peerOnCurrent && (prev.inflight ?? 0) === 0)
        void this.delete(prev.set, 'transactions-done', 'superseded, no transaction in flight');
    }
  }

  /**
   * The peer sent a request over `set`. Over the current set it has switched to it: every old set
   * with no transaction left goes now, the others when their last one ends.
   */
  peerUsed(set: SaSet): void {
    if (set !== this.#current?.set || this.#peerOnCurrent) return;
    this.#peerOnCurrent = true;
    if (this.#old)
      for (const o of [...this.#old])
        if ((o.inflight ?? 0) === 0) void this.delete(o.set, 'transactions-done', 'the peer sends over the new set');
  }

  /** A re-REGISTER answered 200 without a challenge (24.228 R2-1a): the current set lives on until `expiresAt`. */
  refresh(expiresAt: number): void {
    const c = this.#current;
    if (!c) return;
    c.set.apply('authenticated');
    this.#setLifetime(c, expiresAt);
  }

  /** Spec digest §8 rule 8: the set-up failed; the temporary set goes, the rest stays. */
  discardTemporary(reason: string): Promise<void> {
    return this.#temporary ? this.delete(this.#temporary.set, 'failed', reason) : Promise.resolve();
  }

  /** De-registration, registration expiry, fallback, stop (spec digest §8 rule 7). */
  async deleteAll(event: SaSetEvent, reason: string): Promise<void> {
    await Promise.all(this.sets.map((s) => this.delete(s, event, reason)));
  }

  /**
   * Deletes one set of these slots: state machine event, slot cleared, backend removal, one
   * onDeleted. Idempotent; a set not (or no longer) in a slot is left alone.
   */
  delete(set: SaSet, event: SaSetEvent, reason: string, code: SaDeleteCode = event): Promise<void> {
    const e = this.#entry(set);
    if (!e) return Promise.resolve();
    this.#disarm(e);
    e.grace?.();
    e.grace = undefined;
    if (this.#temporary === e) this.#temporary = undefined;
    if (this.#current === e) this.#current = undefined;
    if (this.#old) {
      const i = this.#old.indexOf(e);
      if (i >= 0) this.#old.splice(i, 1);
      if (this.#old.length === 0) this.#old = undefined;
    }
    // 'failed' is only legal for a temporary set; in any other state the set is simply deleted.
    if (set.live) set.apply(event === 'failed' && set.state !== 'temporary' ? 'deleted' : event);
    this.deps.onDropped?.(set, event, reason);
    const p = this.deps.backend.remove(set).then(
      () => this.deps.onDeleted?.(set, event, reason, undefined, code),
      (err: unknown) => this.deps.onDeleted?.(set, event, reason, err instanceof Error ? err : new Error(String(err)), code),
    );
    const removals = (this.#removals ??= new Set());
    removals.add(p);
    void p.finally(() => {
      removals.delete(p);
      if (removals.size === 0 && this.#removals === removals) this.#removals = undefined;
    });
    return p;
  }

  /** A transaction started over `set` (client) or arrived over it (server). */
  begin(set: SaSet): void {
    const e = this.#entry(set);
    if (e) e.inflight = (e.inflight ?? 0) + 1;
  }

  /** That transaction ended; an old set with none left is deleted (spec digest §8 rule 4). */
  end(set: SaSet): void {
    const e = this.#entry(set);
    if (e?.inflight === undefined) return;
    const n = Math.max(0, e.inflight - 1);
    e.inflight = n;
    if (n === 0 && this.#oldEntry(set) === e && this.#peerOnCurrent)
      void this.delete(set, 'transactions-done', 'old set: its last transaction ended');
  }

  inflight(set: SaSet): number {
    return this.#entry(set)?.inflight ?? 0;
  }

  /** Resolves once every backend removal started so far has settled. */
  async settled(): Promise<void> {
    while (this.#removals && this.#removals.size > 0) await Promise.all([...this.#removals]);
  }

  #setLifetime(e: SlotEntry, expiresAt: number): void {
    e.set.setLifetime({ expiresAt });
    this.#sync(e.set);
    this.#arm(e);
  }

  /** Issue 11 §1: the backend's copy of the lifetime (the kernel's, for xfrm) follows the set's. */
  #sync(set: SaSet): void {
    try {
      this.deps.backend.refresh?.(set);
    } catch (e) {
      this.deps.onSyncFailed?.(set, e instanceof Error ? e : new Error(String(e)));
    }
  }

  /**
   * The set's entry waits in the clock's expiry queue until its hard expiry (a temporary set until
   * reg-await-auth ends, spec digest §10.4); whole milliseconds (a small integer: no boxed number per entry).
   */
  #arm(e: SlotEntry): void {
    const at = e.set.expiresAt;
    if (at === undefined) return this.#disarm(e);
    this.#queue().set(e, Math.ceil(at));
  }

  #disarm(e: SlotEntry): void {
    if (e.pos >= 0) this.#queue().delete(e);
  }

  /** The queue says `e` is due: its set goes, unless its lifetime moved meanwhile (setLifetime without re-arming). */
  #due(e: SlotEntry): void {
    const set = e.set;
    if (this.#entry(set) !== e) return; // no longer in a slot (deleted entries leave the queue; a safeguard)
    if (set.expiresAt !== undefined && this.deps.clock.now() < set.expiresAt) return this.#arm(e);
    const temporary = set.state === 'temporary';
    void this.delete(
      set,
      'expired',
      temporary ? 'reg-await-auth expired without a protected REGISTER' : 'SA lifetime expired',
      temporary ? 'auth-timeout' : 'expired',
    );
  }
}
