// The P-CSCF's registrations (24.229 §5.2.2; spec digest §8, §9) and their indexes. Each
// registration's state is the registration machine's (registration-state.ts); its SA sets live in
// its SaSlots (ipsec/sa-slots.ts, the one owner of temporary → current → old, expiry and backend
// removal: the registration extends it); this table reports what the slots drop and the expiry timer
// to the executor, and keeps O(1) indexes: SA set → owner (every protected arrival: `SaSet.owner`, a
// field), (UE address, port_uc) → set (the admission check), contact and (UE address, port_us) →
// registration (requests from the S-CSCF). No SIP here.
import type { IpsecBackend } from '../ipsec/backends/backend.ts';
import { canonicalAddress, sameAddress } from '../ipsec/sa.ts';
import type { SaSet, SaSetEvent } from '../ipsec/sa-set.ts';
import { SaSlots, type SaDeleteCode, type SaSlotsDeps } from '../ipsec/sa-slots.ts';
import { isIP } from 'node:net';
import type { Clock } from '../sip/clock.ts';
import { parseUri } from '../sip/uri.ts';
import { ownString } from '../util/own-string.ts';
import { impuKey } from './decisions.ts';
import { boundOf, IDLE, roundOf, sameLines, type Bound, type RegState, type Round } from './registration-state.ts';
import type { PcscfEvents, RegistrationView, Source } from './types.ts';

/**
 * One registration (by IMPI): its state in the registration machine (registration-state.ts, the
 * only place that decides anything) and its SA sets in their slots (ipsec/sa-slots.ts, the only
 * owner of their lifecycle: the registration is its own SaSlots, whose `current`, `old` and `sets`
 * it shows). The fields below are read-only views of the state. Memory (issue 9 §2): the slots'
 * fields live in this object, and the registration is their dependencies (SaSlotsDeps): no slots
 * object or hooks object per registration.
 */
export class Registration extends SaSlots implements SaSlotsDeps {
  state: RegState = IDLE;
  /** The UE's ESP-in-UDP source learnt from authenticated packets (Annex M; pcscf.ts keeps it). */
  encap?: Source;
  /** The temporary-set install in progress, if any (register.ts runs them one at a time). */
  installing: Promise<void> | undefined = undefined;
  /** The keys this registration is filed under in the table's target index (contact, (address, port_us), IMPUs). */
  indexed: readonly string[] | undefined = undefined;

  readonly #side: TableSide;

  constructor(
    readonly impi: string,
    side: TableSide,
  ) {
    super();
    this.#side = side;
  }

  /** The SA sets of this registration: the registration itself (its SaSlots part). */
  get slots(): SaSlots {
    return this;
  }

  /** SaSlotsDeps: the table's backend. */
  get backend(): IpsecBackend {
    return this.#side.backend;
  }
  /** SaSlotsDeps: the table's clock. */
  get clock(): Clock {
    return this.#side.clock;
  }
  /** SaSlotsDeps: a set left its slot. */
  onDropped(set: SaSet, event: SaSetEvent): void {
    this.#side.dropped(this, set, event);
  }
  /** SaSlotsDeps: a set's backend removal settled. */
  onDeleted(set: SaSet, _event: SaSetEvent, reason: string, error: Error | undefined, code: SaDeleteCode): void {
    this.#side.emit('sa-deleted', { impi: this.impi, set: set.id, reason, code, ...(error && { error: error.message }) });
  }
  /** SaSlotsDeps: a backend lifetime sync failed. */
  onSyncFailed(set: SaSet, error: Error): void {
    this.#side.emit('sa-error', { impi: this.impi, set: set.id, op: 'update-lifetime', error: error.message });
  }

  get bound(): Bound | undefined {
    return boundOf(this.state);
  }
  /** The security set-up in progress. */
  get round(): Round | undefined {
    return roundOf(this.state);
  }
  get impus(): readonly string[] {
    return this.bound?.impus ?? [];
  }
  get contact(): string | undefined {
    return this.bound?.contact;
  }
  /** Service-Route of the last 200 OK (24.229 §5.2.2): the route of UE-originated requests. */
  get serviceRoute(): readonly string[] {
    return this.bound?.serviceRoute ?? [];
  }
  /** Registration expiry (clock ms); undefined until the first 200 OK. */
  get expiresAt(): number | undefined {
    return this.bound?.expiresAt;
  }
  get natDetected(): boolean {
    return this.bound?.natDetected ?? false;
  }
  /** The UE's public IP (what `ue.ip` gives, without building the rest). */
  get ueIp(): string {
    const b = this.bound;
    return b !== undefined ? b.ueIp : (this.round?.ueIp ?? '');
  }
  /** The UE's public IP, its private (inner) IP behind a NAT, and its learned ESP-in-UDP source. */
  get ue(): { ip: string; innerIp?: string; encap?: Source } {
    const b = this.bound;
    const r = this.round;
    const ip = b?.ueIp ?? r?.ueIp ?? '';
    const innerIp = b ? b.innerIp : r?.innerIp;
    const encap = this.encap && sameAddress(this.encap.address, ip) ? this.encap : undefined;
    return { ip, ...(innerIp !== undefined ? { innerIp } : {}), ...(encap ? { encap } : {}) };
  }

  /** The set of these slots named `id` (at most a temporary, a current and a few old ones). */
  setById(id: string): SaSet | undefined {
    return this.sets.find((s) => s.id === id);
  }
}

/** What the table reports to the registration machine's executor (register.ts). */
export interface TableHooks {
  /**
   * A set left its slot (expiry, failure, supersession, deletion): feed 'set-gone'. `expired`: its
   * lifetime ran out, which for the current set is the registration's expiry (promote and refresh
   * give the set the registration's lifetime: its timer is the registration's, there is no other).
   */
  readonly setGone: (reg: Registration, set: SaSet, expired: boolean) => void;
}

export type Emit = <K extends keyof PcscfEvents>(name: K, payload: PcscfEvents[K]) => void;
/** Whether anyone listens to an event: a payload nobody reads is not built (once per registration and more). */
export type Listens = (name: keyof PcscfEvents) => boolean;

/** Key of the admission index (33.203 §7.1 rule 3): UE address (outer and inner) and port_uc. */
function portKey(ueIp: string, innerIp: string | undefined, portUc: number): string {
  // join, not a template: kept as a map key for the set's life, one flat string, not a tree of pieces.
  return [canonicalAddress(ueIp), canonicalAddress(innerIp ?? ueIp), portUc].join('|');
}
/** Key of a UE's protected server port: (address, port_us), outer and inner address both indexed. */
function targetKey(address: string, portUs: number): string {
  return `${canonicalAddress(address)}|${portUs}`;
}

/** What every registration's slots need from the table: one per table. */
export interface TableSide {
  readonly backend: IpsecBackend;
  readonly clock: Clock;
  readonly emit: Emit;
  dropped(reg: Registration, set: SaSet, event: SaSetEvent): void;
}

// One index for contacts, (UE address, port_us) and IMPUs: a key says which it is.
const CONTACT = 'c ';
const TARGET = 't ';
const IMPU = 'i ';

/** Not safe for concurrent use (one event loop owns it). */
export class RegistrationTable {
  readonly #byImpi = new Map<string, Registration>();
  /**
   * Registrations out of the indexes whose sets are still being deleted (a de-registration's
   * 'delete-all' runs after its 200 OK went out): `clear` finds their sets here. Each leaves once
   * its slots are empty.
   */
  readonly #leaving = new Set<Registration>();
  readonly #byPortUc = new Map<string, SaSet>();
  /** Contact, (UE address, port_us) and IMPU → registration, keys prefixed CONTACT / TARGET / IMPU. */
  readonly #byKey = new Map<string, Registration>();
  readonly #side: TableSide;

  constructor(
    private readonly backend: IpsecBackend,
    private readonly clock: Clock,
    private readonly emit: Emit,
    private readonly hooks: TableHooks,
    private readonly listens: Listens = () => true,
  ) {
    this.#side = { backend, clock, emit, dropped: (reg, set, event) => this.#dropped(reg, set, event) };
  }

  /** What pending rounds hold (limits and their timer), by round id: released exactly once (issue 10 §2). */
  readonly pending = new Map<number, () => void>();

  get size(): number {
    return this.#byImpi.size;
  }

  get(impi: string): Registration | undefined {
    return this.#byImpi.get(impi);
  }

  /** The filed registration of `impi`, else a new one in state idle (filed by `settle` once it leaves idle). */
  getOrNew(impi: string): Registration {
    let r = this.#byImpi.get(impi);
    if (!r) {
      // The IMPI comes out of the REGISTER's Authorization line: as a slice it would keep that
      // whole line alive as long as the registration (the table's key and every set id name it).
      const own = ownString(impi);
      r = new Registration(own === impi ? own : impi, this.#side);
    }
    return r;
  }

  /**
   * After each transition: a registration that left idle is filed, one back in idle is forgotten
   * (indexes and timer gone; its sets, if any, are being deleted by the executor's actions).
   */
  settle(reg: Registration, before: RegState): void {
    if (reg.state.kind === 'idle') return this.#forget(reg);
    if (!this.#byImpi.has(reg.impi)) this.#byImpi.set(reg.impi, reg);
  }

  /**
   * After the transition's actions ran (a promotion has made the new set current by then): a
   * registration whose binding changed is indexed anew under its contact, (address, port_us) and
   * IMPUs. Once per event, not once per action.
   */
  settled(reg: Registration, before: RegState): void {
    const now = reg.bound;
    const was = boundOf(before);
    if (now === undefined || was === now || this.#byImpi.get(reg.impi) !== reg) return;
    // A refresh that names the same set, contact and IMPUs keeps its keys while they still lead here
    // (another registration's later 200 OK may have taken one: the latest 200 OK wins, as before):
    // no map delete and set, and no key strings made anew, per refresh.
    const same = was !== undefined && was.current === now.current && was.contact === now.contact && sameLines(was.impus, now.impus);
    if (same && this.#stillIndexed(reg)) return;
    this.#indexTargets(reg);
  }

  #stillIndexed(reg: Registration): boolean {
    const keys = reg.indexed;
    if (keys === undefined) return false;
    for (const k of keys) if (this.#byKey.get(k) !== reg) return false;
    return true;
  }

  ownerOf(set: SaSet): Registration | undefined {
    const o = set.owner;
    return o instanceof Registration ? o : undefined;
  }

  all(): Registration[] {
    return [...this.#byImpi.values()];
  }

  /** The live set tied to (UE address, inner address, port_uc), if any (33.203 §7.1 rule 3). O(1). */
  setWithClientPort(ueIp: string, innerIp: string | undefined, portUc: number): SaSet | undefined {
    return this.#byPortUc.get(portKey(ueIp, innerIp, portUc));
  }

  /** The registration whose contact is `contactKey` (sameContact's form), else whose current set has (address, port_us). O(1). */
  byTarget(contactKey: string | undefined, hostPort: Source | undefined): Registration | undefined {
    const c = contactKey === undefined ? undefined : this.#byKey.get(CONTACT + contactKey);
    if (c) return c;
    if (!hostPort) return undefined;
    const r = this.#byKey.get(TARGET + targetKey(hostPort.address, hostPort.port));
    return r?.current ? r : undefined;
  }

  /** The registration that owns the public identity `impu` (impuKey form), if any. O(1). */
  byImpu(key: string): Registration | undefined {
    return this.#byKey.get(IMPU + key);
  }

  /** Installs a freshly built temporary set (spec digest §8 rule 1: it lives reg-await-auth). */
  async installTemporary(reg: Registration, set: SaSet): Promise<void> {
    set.owner = reg;
    try {
      await reg.slots.installTemporary(set);
    } catch (e) {
      set.owner = undefined;
      throw e;
    }
    const k = portKey(set.config.ue.ip, set.config.ue.innerIp, set.config.ue.portC);
    this.#byPortUc.set(k, set);
  }

  /**
   * 200 OK to the protected REGISTER (spec digest §5.7, §8 rules 2-4): temporary → current with the
   * given lifetime; the previous current becomes old and goes once its transactions have ended.
   */
  promote(reg: Registration, set: SaSet, lifetimeExpiresAt: number): void {
    const previous = reg.current;
    // The set's lifetime is the registration's: its expiry timer ends both ('set-gone', expired).
    reg.slots.promote(set, lifetimeExpiresAt);
    if (this.listens('sa-promoted'))
      this.emit('sa-promoted', previous ? { impi: reg.impi, set: set.id, previous: previous.id } : { impi: reg.impi, set: set.id });
  }

  /**
   * A registration read back from the state store (issue 13 §3): its current set installed and
   * filed, its old sets filed as old (SaSlots.restoreOld: they wait `oldGraceMs` for a transaction),
   * the machine in 'registered', indexes and the expiry timer as after its 200 OK.
   */
  async restore(
    reg: Registration,
    set: SaSet,
    bound: Bound,
    old: readonly SaSet[] = [],
    oldGraceMs = 32_000,
    oldFailed?: (set: SaSet, e: Error) => void,
  ): Promise<void> {
    set.owner = reg;
    try {
      await reg.slots.restoreCurrent(set);
    } catch (e) {
      set.owner = undefined;
      throw e;
    }
    this.#byPortUc.set(portKey(set.config.ue.ip, set.config.ue.innerIp, set.config.ue.portC), set);
    // Its old sets (33.203 §7.4): one the backend will not take is left out, the registration goes on.
    const restoredOld: string[] = [];
    for (const o of old) {
      o.owner = reg;
      try {
        await reg.slots.restoreOld(o, oldGraceMs);
      } catch (e) {
        o.owner = undefined;
        oldFailed?.(o, e instanceof Error ? e : new Error(String(e)));
        continue;
      }
      this.#byPortUc.set(portKey(o.config.ue.ip, o.config.ue.innerIp, o.config.ue.portC), o);
      restoredOld.push(o.id);
    }
    reg.state = { kind: 'registered', bound: { ...bound, old: restoredOld } };
    this.settle(reg, IDLE);
    this.settled(reg, IDLE);
  }

  /** A re-REGISTER answered 200 without a challenge keeps the current set (24.228 R2-1a) with a new lifetime. */
  refresh(reg: Registration, lifetimeExpiresAt: number): void {
    if (!reg.current) return;
    reg.slots.refresh(lifetimeExpiresAt);
  }

  /**
   * A transaction started over `set` (server: request arrived on it; client: request sent on it).
   * Our reading of "until the transactions that use it have finished" (spec digest §8 rule 4): until
   * the final response has gone out (server) or come in (client); the RFC 3261 wait states that
   * only absorb retransmissions (Timer J/K, 32 s/5 s) do not keep an old set alive.
   */
  hold(set: SaSet): void {
    this.ownerOf(set)?.slots.begin(set);
  }

  /** That transaction ended; an old set with nothing left in flight is deleted (spec digest §8 rule 4). */
  release(set: SaSet): void {
    this.ownerOf(set)?.slots.end(set);
  }

  inFlight(set: SaSet): number {
    return this.ownerOf(set)?.slots.inflight(set) ?? 0;
  }

  /** Deletes one set (through its registration's slots). Idempotent. */
  deleteSet(set: SaSet, event: SaSetEvent, reason: string): Promise<void> {
    const reg = this.ownerOf(set);
    return reg ? reg.slots.delete(set, event, reason) : Promise.resolve();
  }

  /** De-registration, expiry or stop: every set of the registration goes. */
  deleteAll(reg: Registration, event: SaSetEvent, reason: string): Promise<void> {
    return reg.slots.deleteAll(event, reason);
  }

  /** Deletes everything (P-CSCF stop). */
  async clear(reason: string): Promise<void> {
    const regs = new Set([...this.#leaving, ...this.#byImpi.values()]);
    for (const reg of regs) {
      if (reg.bound && this.#byImpi.get(reg.impi) === reg) this.emit('deregistered', { impi: reg.impi, reason });
      reg.state = IDLE;
      this.#forget(reg);
    }
    for (const release of this.pending.values()) release();
    this.pending.clear();
    for (const reg of regs) await this.deleteAll(reg, 'deleted', reason);
    for (const reg of regs) await reg.slots.settled();
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

  /** A set left its slot (whatever the cause: expiry, failure, supersession, de-registration). */
  #dropped(reg: Registration, set: SaSet, event: SaSetEvent): void {
    if (set.owner === reg) set.owner = undefined;
    if (reg.slots.empty) this.#leaving.delete(reg);
    const k = portKey(set.config.ue.ip, set.config.ue.innerIp, set.config.ue.portC);
    if (this.#byPortUc.get(k) === set) this.#byPortUc.delete(k);
    this.hooks.setGone(reg, set, event === 'expired');
  }

  /** Contact, (UE address, port_us) and IMPU indexes of a registered registration (after a 200 OK). */
  #indexTargets(reg: Registration): void {
    this.#unindexTargets(reg);
    const keys: string[] = [];
    const c = reg.contact === undefined ? undefined : contactKey(reg.contact);
    // Each key kept for the registration's life as one flat string (join), not a concatenation tree.
    if (c !== undefined) keys.push([CONTACT, c].join(''));
    const s = reg.current;
    if (s) {
      keys.push([TARGET, targetKey(s.config.ue.ip, s.config.ue.portS)].join(''));
      if (s.config.ue.innerIp !== undefined) keys.push([TARGET, targetKey(s.config.ue.innerIp, s.config.ue.portS)].join(''));
    }
    for (const u of reg.impus) {
      const k = impuKey(u);
      if (k !== undefined) keys.push([IMPU, k].join(''));
    }
    for (const k of keys) this.#byKey.set(k, reg);
    // A copy of exactly its length: an array grown by push keeps room for 17 (152 B), for the registration's life.
    reg.indexed = keys.slice();
  }

  #unindexTargets(reg: Registration): void {
    const keys = reg.indexed;
    if (!keys) return;
    reg.indexed = undefined;
    for (const k of keys) if (this.#byKey.get(k) === reg) this.#byKey.delete(k);
  }

  /** Out of every index (the 'deregistered' event is the machine's action). */
  #forget(reg: Registration): void {
    if (this.#byImpi.get(reg.impi) === reg) this.#byImpi.delete(reg.impi);
    this.#unindexTargets(reg);
    if (!reg.slots.empty) this.#leaving.add(reg);
  }
}

/** The form of a contact URI that sameContact compares: user, host (lower case, canonical address), port. */
export function contactKey(uri: string): string | undefined {
  const r = parseUri(uri);
  if (!r.ok || r.value.scheme === 'tel') return undefined;
  const u = r.value;
  const host = u.host.toLowerCase();
  return `${u.user ?? ''}@${isIP(host) ? canonicalAddress(host) : host}:${u.port ?? 5060}`;
}
