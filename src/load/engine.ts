// The load engine: many UEs (src/ue Ue objects, sharing one IPsec backend per local address)
// driven through a scenario. Order of a run:
//   ramp-up: initial registrations at --rate (token bucket, optional ramp), at most --concurrency
//            procedures in flight; each registered UE's refresh is queued before its expiry (a failed
//            one is retried a constant delay later, while that is still before the expiry);
//   hold:    --duration seconds of refreshes, MESSAGEs (--message-rate, MO; the target UE answers
//            the MT side) and churn cycles (--churn: de-register then register again);
//   end:     de-register every registered UE (unless --no-deregister), close, report.
// stop() (Ctrl-C) ends the current phase early and goes to the end; abort() skips de-registration.
// One timer drives everything (a tick every TICK_MS); per-UE work is O(1) (queues, pools), so the
// cost of an operation does not depend on how many UEs the run has. The UEs' own timers (expiry, SA
// lifetimes, SIP transactions) share one more (util/timer-heap.ts): no Node timer per UE.
import type { IpsecBackend } from '../ipsec/backends/backend.ts';
import type { AlgPair, UsableMod } from '../secagree/index.ts';
import { Ue } from '../ue/ue.ts';
import { isRegistered } from '../ue/registration-state.ts';
import type { RegistrationResult } from '../ue/registration.ts';
import type { UeExchangePhase, UeObserver, UeOptions } from '../ue/ue-types.ts';
import type { KeySource } from './keys.ts';
import { rangeAt, type SubscriberRange } from './pattern.ts';
import { LoadStats, type IntervalRow } from './report.ts';
import { DueQueue, Pool, TokenBucket } from './scheduler.ts';
import { HeapClock } from '../util/timer-heap.ts';
import { SharedTransactions } from '../ue/sip-io.ts';
import { PlainSocketPool } from './plain-pool.ts';
import { PROTECTED_PORTS } from './capacity.ts';

/** The protected ports UEs pick from (the Ue's default range, 20000–60000). */
const PORTS_FROM = 20000;

const TICK_MS = 5;

/** A retry due closer than this to the registration's expiry is not made: it could not finish in time. */
const EXPIRY_GUARD_MS = 1000;

export interface LoadOptions {
  readonly range: SubscriberRange;
  readonly keys: KeySource;
  readonly pcscf: { readonly address: string; readonly port: number };
  readonly pcscfEncapPort: number;
  /** One backend per local address; UEs are spread over them round-robin. */
  readonly locals: readonly { readonly ip: string; readonly backend: IpsecBackend }[];
  readonly modes: readonly UsableMod[];
  readonly offers?: readonly AlgPair[];
  /** Initial registrations per second, and the ramp (ms) from 0 to that rate. */
  readonly rate: number;
  readonly rampMs: number;
  readonly concurrency: number;
  /** Hold time (ms) after the last initial registration answered. */
  readonly holdMs: number;
  /** Requested expiry (s); refreshes at half of it (600 s before when above 1200 s, 24.229 §5.1.1.4.1). */
  readonly expires: number;
  /**
   * A refresh that failed while the registration is still valid is tried again this many ms later
   * (default 5000), at most `refreshRetries` times (default 3), and only while the retry is due
   * before the expiry; after that the UE counts as `refresh:retries_exhausted`.
   */
  readonly refreshRetryMs?: number;
  readonly refreshRetries?: number;
  /** MESSAGEs per second over the whole run's registered UEs (0: none). */
  readonly messageRate: number;
  /** De-register/re-register cycles per second during the hold (0: none). */
  readonly churnRate: number;
  readonly deregister: boolean;
  /** Status rows every this many ms. */
  readonly intervalMs: number;
  readonly onInterval?: (row: IntervalRow) => void;
  readonly random?: () => number;
  /** Where a SIP exchange times out (Timer F is 64·T1; tests shorten T1). */
  readonly t1Ms?: number;
  /** The UEs' unprotected transport (tests: a MemoryNetwork); default a pool of UDP sockets per address. */
  readonly openPlain?: UeOptions['openPlain'];
}

type UeState = 'idle' | 'busy' | 'registered' | 'failed';

/** One simulated subscriber. The Ue (sockets, USIM, SA table) exists only once it first registers. */
interface LoadUe {
  readonly index: number;
  ue: Ue | undefined;
  state: UeState;
  /** Bumped on every (re-)registration: a queued refresh for an older one is stale. */
  gen: number;
  /** MESSAGEs this UE has in flight (churn leaves such a UE alone: its SAs must outlive them). */
  messages: number;
  /** Its position in the registered pool (undefined: not registered): a field, not a Map entry per UE. */
  pos: number | undefined;
}

/** A queued refresh: the registration it renews (gen) and, for a retry, how many tries failed before it. */
interface DueRefresh {
  readonly u: LoadUe;
  readonly gen: number;
  /** Absent on a first refresh (one per registered UE: no field it does not need). */
  readonly retry?: number;
}

const POOL_SLOT = { get: (u: LoadUe) => u.pos, set: (u: LoadUe, i: number | undefined) => void (u.pos = i) };

/** A failed procedure's key in the report: `<procedure>:<reason>[_<status>]`. */
export function failureKey(proc: string, r: Extract<RegistrationResult, { ok: false }>): string {
  const reason = r.reason === 'rejected' || r.reason === 'forbidden' ? `status_${r.status ?? 'unknown'}` : r.reason;
  return `${proc}:${reason}`;
}

export class LoadEngine {
  readonly stats = new LoadStats();
  readonly #o: LoadOptions;
  readonly #ues: LoadUe[] = [];
  readonly #registered = new Pool<LoadUe>(POOL_SLOT);
  readonly #refreshes = new DueQueue<DueRefresh>();
  /** Retries of failed refreshes: a second FIFO, in order because the retry delay is one constant. */
  readonly #retries = new DueQueue<DueRefresh>();
  readonly #retryMs: number;
  readonly #maxRetries: number;
  readonly #random: () => number;
  /** Every UE's timers (expiry, SA lifetimes, SIP transactions) on one heap and one Node timer. */
  readonly #clock = new HeapClock();
  /** Every UE's SIP transactions in one layer (sip-io.ts SharedTransactions): none built per procedure. */
  readonly #transactions: SharedTransactions;
  #next = 0;
  #inFlight = 0;
  #initialInFlight = 0;
  #phase: 'rampup' | 'hold' | 'end' | 'done' = 'rampup';
  #holdUntil = 0;
  #stopping = false;
  #aborted = false;
  #timer: NodeJS.Timeout | undefined;
  #start = 0;
  #lastRow = 0;
  #done!: () => void;
  readonly #finished: Promise<void>;
  readonly #regBucket: TokenBucket;
  #msgBucket: TokenBucket | undefined;
  #churnBucket: TokenBucket | undefined;
  #deregBucket: TokenBucket | undefined;
  /** Called when every UE is registered (or failed) and before the hold starts (RSS measure). */
  onAllRegistered: (() => void) | undefined;
  /** Live SA sets on our backends after the end phase, before the UEs were closed (0: no leak). */
  setsLeftAtEnd = 0;

  constructor(o: LoadOptions) {
    this.#o = o;
    this.#random = o.random ?? Math.random;
    this.#retryMs = o.refreshRetryMs ?? 5000;
    this.#maxRetries = o.refreshRetries ?? 3;
    this.#transactions = new SharedTransactions({ clock: this.#clock, ...(o.t1Ms !== undefined && { timers: { t1: o.t1Ms } }) });
    for (let i = 0; i < o.range.count; i++) this.#ues.push({ index: i, ue: undefined, state: 'idle', gen: 0, messages: 0, pos: undefined });
    this.#start = performance.now();
    this.#regBucket = new TokenBucket({ rate: o.rate, rampMs: o.rampMs, start: this.#start });
    this.#finished = new Promise((r) => (this.#done = r));
  }

  get registered(): number {
    return this.#registered.size;
  }
  get inFlight(): number {
    return this.#inFlight;
  }
  get phase(): string {
    return this.#phase;
  }

  /** Runs the scenario to its end; resolves once every UE is closed. */
  async run(): Promise<void> {
    this.#start = performance.now();
    this.#lastRow = this.#start;
    this.#tick();
    await this.#finished;
  }

  /** Ctrl-C: no new work; in-flight procedures finish, then the de-registration (if enabled). */
  stop(): void {
    this.#stopping = true;
  }

  /** A second Ctrl-C: no de-registration; in-flight procedures are cut by closing the UEs. */
  abort(): void {
    this.#stopping = true;
    this.#aborted = true;
  }

  get interrupted(): boolean {
    return this.#stopping;
  }

  #tick = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    if (now - this.#lastRow >= this.#o.intervalMs) this.#row(now);
    if (this.#aborted && this.#phase !== 'done') {
      void this.#finish();
      return;
    }
    switch (this.#phase) {
      case 'rampup':
        this.#refreshDue(now);
        if (!this.#stopping) {
          while (this.#next < this.#ues.length && this.#inFlight < this.#o.concurrency && this.#regBucket.take(now)) {
            this.#register(this.#ues[this.#next++]!, now);
          }
        }
        if ((this.#next >= this.#ues.length || this.#stopping) && this.#initialInFlight === 0) {
          this.onAllRegistered?.();
          this.#phase = 'hold';
          this.#holdUntil = now + (this.#stopping ? 0 : this.#o.holdMs);
          if (this.#o.messageRate > 0) this.#msgBucket = new TokenBucket({ rate: this.#o.messageRate, start: now });
          if (this.#o.churnRate > 0) this.#churnBucket = new TokenBucket({ rate: this.#o.churnRate, start: now });
        }
        break;
      case 'hold':
        if (this.#stopping || now >= this.#holdUntil) {
          if (this.#inFlight === 0) {
            this.#phase = 'end';
            this.#refreshes.clear();
            this.#retries.clear();
            this.#deregBucket = new TokenBucket({ rate: this.#o.rate, start: now });
          }
          break;
        }
        this.#refreshDue(now);
        // Round-robin between churn and MESSAGEs: when slow answers fill every slot, one kind of
        // work must not take them all (MESSAGEs first starved churn on a loaded machine).
        for (let more = true; more && this.#inFlight < this.#o.concurrency;) {
          more = false;
          if (this.#churnBucket?.take(now)) {
            this.#churn(now);
            more = true;
          }
          if (this.#inFlight < this.#o.concurrency && this.#msgBucket?.take(now)) {
            this.#message();
            more = true;
          }
        }
        break;
      case 'end':
        if (this.#o.deregister) {
          while (this.#registered.size > 0 && this.#inFlight < this.#o.concurrency && this.#deregBucket!.take(now)) {
            this.#deregister(this.#registered.values()[this.#registered.size - 1]!);
          }
        }
        if ((this.#registered.size === 0 || !this.#o.deregister) && this.#inFlight === 0) {
          void this.#finish();
          return;
        }
        break;
      case 'done':
        return;
    }
    this.#timer = setTimeout(this.#tick, TICK_MS);
  };

  #row(now: number): void {
    const row = this.stats.intervalRow(
      (now - this.#start) / 1000,
      (now - this.#lastRow) / 1000,
      this.#registered.size,
      this.#inFlight,
      process.memoryUsage.rss(),
    );
    this.#lastRow = now;
    this.#o.onInterval?.(row);
  }

  /** Refreshes whose time has come, ahead of new registrations (they keep what is registered). */
  #refreshDue(now: number): void {
    while (this.#inFlight < this.#o.concurrency) {
      // Retries first: each is nearer its registration's expiry than any first refresh due now.
      const due = this.#retries.popDue(now) ?? this.#refreshes.popDue(now);
      if (!due) return;
      if (due.gen !== due.u.gen || due.u.state !== 'registered') continue; // re-registered or gone since
      if (!isRegistered(due.u.ue!.state)) {
        this.#lost(due.u, 'refresh:registration_expired');
        continue;
      }
      this.#refresh(due);
    }
  }

  /** One observer for every UE (not two closures per UE). */
  readonly #observer: UeObserver = this.#makeObserver();

  #makeObserver(): UeObserver {
    const stats = this.stats;
    const lost = (u: LoadUe): void => this.#lost(u, 'refresh:registration_expired');
    return {
      // The UE's own expiry timer fired: the refresh came too late (an overloaded network or run).
      expired(ue) {
        lost(ue.tag as LoadUe);
      },
      exchange(phase: UeExchangePhase, ms: number, outcome: number | string) {
        if (phase === 'register' && outcome === 401) stats.success('register_401', ms);
        else if (phase === 'protected-register' && typeof outcome === 'number' && outcome >= 200 && outcome < 300)
          stats.success('protected_register_200', ms);
      },
      akaCheck(result) {
        if (result === 'sync_failure') stats.count('sync_failures');
        else if (result === 'mac_failure') stats.count('mac_failures');
      },
    };
  }

  /** The options every UE of a local address shares (a UE's own are its identities and keys on top). */
  readonly #templates: Map<IpsecBackend, UeOptions> = new Map();
  /** The unprotected sockets of initial registrations, lent per local address (plain-pool.ts). */
  readonly #plainPools: PlainSocketPool[] = [];

  #templateFor(local: LoadOptions['locals'][number]): UeOptions {
    let t = this.#templates.get(local.backend);
    if (!t) {
      const o = this.#o;
      const pool = new PlainSocketPool();
      this.#plainPools.push(pool);
      t = {
        impi: '',
        impu: '',
        k: new Uint8Array(0),
        pcscf: o.pcscf,
        localIp: local.ip,
        backend: local.backend,
        modes: o.modes,
        ...(o.offers && { offers: o.offers }),
        pcscfEncapPort: o.pcscfEncapPort,
        reRegister: 'off',
        expires: o.expires,
        observer: this.#observer,
        clock: this.#clock,
        // No descriptor per registered UE: the unprotected socket only during an initial
        // registration, none on the protected ports (userspace ESP needs none; README "Load testing").
        plainSocket: 'on-demand',
        ...(!o.openPlain && { openPlain: pool.open }),
        guardProtectedPorts: false,
        transactions: this.#transactions,
        ...(o.t1Ms !== undefined && { timers: { t1: o.t1Ms } }),
        ...(o.openPlain && { openPlain: o.openPlain }),
      };
      this.#templates.set(local.backend, t);
    }
    return t;
  }

  /**
   * The UE's own slice of the protected ports of its address (M.7.1 rule 6 still picks at random
   * inside it): UEs of one address never try each other's ports, so no failed open and its error
   * per pick (~2 % of the load's CPU with 5,000 UEs on an address). Slices are shared by the UEs of
   * the same rank on other addresses; none when a slice would be under 8 ports (then: the whole range).
   */
  #portSlice(index: number): readonly [number, number] | undefined {
    const locals = this.#o.locals.length;
    const width = Math.floor(PROTECTED_PORTS / Math.ceil(this.#o.range.count / locals));
    if (width < 8) return undefined;
    const rank = Math.floor(index / locals);
    let slice = this.#slices[rank];
    if (!slice) {
      const lo = PORTS_FROM + rank * width;
      slice = this.#slices[rank] = [lo, lo + width - 1];
    }
    return slice;
  }
  readonly #slices: (readonly [number, number])[] = [];

  async #ueOf(u: LoadUe): Promise<Ue> {
    if (u.ue) return u.ue;
    const id = rangeAt(this.#o.range, u.index);
    const keys = this.#o.keys.keysOf(id.impi);
    const local = this.#o.locals[u.index % this.#o.locals.length]!;
    // The Ue keeps its options: one small object per UE on a shared template, not ~20 fields each.
    const o = Object.create(this.#templateFor(local)) as { -readonly [K in keyof UeOptions]: UeOptions[K] };
    o.impi = id.impi;
    o.impu = id.impu;
    o.k = keys.k;
    o.opc = keys.opc;
    o.tag = u;
    const ports = this.#portSlice(u.index);
    if (ports) o.portRange = ports;
    u.ue = await Ue.create(o);
    return u.ue;
  }

  /** Runs one procedure with in-flight accounting; `body` returns nothing and never throws. */
  #run(u: LoadUe, initial: boolean, body: () => Promise<void>): void {
    this.#inFlight++;
    if (initial) this.#initialInFlight++;
    u.state = 'busy';
    this.stats.attempt();
    void this.#settle(u, initial, body);
  }

  /** #run's wait (try/finally in one async frame: no catch/finally promises and closures per procedure). */
  async #settle(u: LoadUe, initial: boolean, body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (e: unknown) {
      // A UE-side refusal (UeError: not registered, closed, …) or a bug: counted by its code.
      const code =
        e instanceof Error && 'code' in e ? String((e as { code: unknown }).code) : e instanceof Error ? e.constructor.name : 'error';
      this.stats.fail(`internal:${code.toLowerCase()}`);
      u.state = 'failed';
      this.#registered.delete(u); // not picked for MESSAGEs, churn or the end's de-registration
    } finally {
      this.#inFlight--;
      if (initial) {
        this.#initialInFlight--;
        this.stats.lastInitialAt = performance.now();
      }
    }
  }

  #register(u: LoadUe, now: number, proc = 'register'): void {
    this.stats.firstAttemptAt ??= now;
    this.#run(u, proc === 'register', async () => {
      const ue = await this.#ueOf(u);
      const t0 = performance.now();
      const syncBefore = this.stats.outcomes.sync_failures;
      const r = await ue.register();
      this.#registered.delete(u);
      if (!r.ok) {
        this.stats.fail(failureKey(proc, r));
        u.state = 'failed';
        return;
      }
      this.stats.success('registration', performance.now() - t0);
      this.stats.count(proc === 'register' ? 'registered' : 'churn_cycles');
      // Counted per run, not per UE; good enough for "a resync happened and the UE got through".
      if (this.stats.outcomes.sync_failures > syncBefore) this.stats.count('sync_failure_recovered');
      this.#nowRegistered(u, r.expires);
    });
  }

  #nowRegistered(u: LoadUe, grantedS: number): void {
    u.state = 'registered';
    u.gen++;
    this.#registered.add(u);
    if (this.#registered.size > this.stats.peakRegistered) this.stats.peakRegistered = this.#registered.size;
    // 24.229 §5.1.1.4.1. The delay is the same for every UE granted the same expiry, so the due
    // queue stays in order; a shorter grant moves this UE's refresh earlier, never later.
    const s = Math.min(grantedS, this.#o.expires);
    const at = s > 1200 ? s - 600 : s / 2;
    this.#refreshes.push({ u, gen: u.gen }, performance.now() + at * 1000);
  }

  /** A registration that ended without a procedure of ours (expired before its refresh ran). */
  #lost(u: LoadUe, key: string): void {
    if (u.state !== 'registered') return;
    this.#registered.delete(u);
    u.state = 'failed';
    u.gen++;
    this.stats.fail(key);
  }

  #refresh(d: DueRefresh): void {
    const u = d.u;
    const retry = d.retry ?? 0;
    if (retry > 0) this.stats.count('refresh_retries');
    this.#run(u, false, async () => {
      const t0 = performance.now();
      const r = await u.ue!.reRegister();
      if (r.ok) {
        this.stats.success('refresh', performance.now() - t0);
        this.stats.count('refreshed');
        if (retry > 0) this.stats.count('refresh_recovered');
        this.#nowRegistered(u, r.expires);
        return;
      }
      this.stats.fail(failureKey('refresh', r));
      if (!isRegistered(u.ue!.state)) {
        this.#registered.delete(u);
        u.state = 'failed';
        return;
      }
      // Still registered on the old grant (digest §8 rule 8): try again soon, not a whole refresh
      // interval later (that was after the expiry: one failure then counted twice, the second as
      // an expiry). The delay is one constant, so the retry queue stays in due order.
      if (!this.#registered.has(u)) return; // taken out meanwhile (lost or de-registered): nothing to retry
      u.state = 'registered';
      const at = performance.now() + this.#retryMs;
      // The UE's own expiry (its clock is this.#clock: performance.now() too).
      if (retry < this.#maxRetries && at + EXPIRY_GUARD_MS <= (u.ue!.expiresAt ?? 0))
        this.#retries.push({ u, gen: u.gen, retry: retry + 1 }, at);
      else this.#lost(u, 'refresh:retries_exhausted'); // its own outcome: left to expire, never refreshed
    });
  }

  #deregister(u: LoadUe, then?: () => void): void {
    this.#registered.delete(u);
    this.#run(u, false, async () => {
      const t0 = performance.now();
      const r = await u.ue!.deregister();
      if (r.ok) {
        this.stats.success('deregister', performance.now() - t0);
        this.stats.count('deregistered');
      } else this.stats.fail(failureKey('deregister', r));
      u.state = 'idle';
      u.gen++;
      then?.();
    });
  }

  /** MO MESSAGE from a random registered UE to another's IMPU (the target answers the MT side). */
  #message(): void {
    const from = this.#registered.pick(this.#random);
    const to = this.#registered.pick(this.#random);
    if (!from || !to || from.state !== 'registered' || !isRegistered(from.ue!.state) || to.state !== 'registered') return;
    const target = rangeAt(this.#o.range, to.index).impu;
    this.#inFlight++;
    from.messages++;
    to.messages++;
    this.stats.attempt();
    const t0 = performance.now();
    from
      .ue!.sendMessage(target, 'imsec load')
      .then(
        (res) => {
          if (res.status >= 200 && res.status < 300) {
            this.stats.success('message', performance.now() - t0);
            this.stats.count('messages_ok');
            this.stats.count('messages_mt_answered');
          } else this.stats.fail(`message:status_${res.status}`);
        },
        (e: unknown) =>
          this.stats.fail(`message:${e instanceof Error && 'code' in e ? String((e as { code: string }).code).toLowerCase() : 'error'}`),
      )
      .finally(() => {
        this.#inFlight--;
        from.messages--;
        to.messages--;
      });
  }

  /** A churn cycle: de-register a random registered UE, then register it again from scratch. */
  #churn(now: number): void {
    const u = this.#registered.pick(this.#random);
    // A MESSAGE to or from it, or its refresh, is under way: not this one.
    if (!u || u.messages > 0 || u.state !== 'registered') return;
    this.#deregister(u, () => {
      if (!this.#stopping) this.#register(u, now, 'churn');
    });
  }

  async #finish(): Promise<void> {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    if (this.#timer) clearTimeout(this.#timer);
    this.#row(performance.now());
    for (const l of this.#o.locals) this.setsLeftAtEnd += l.backend.sets.filter((x) => x.live).length;
    // Closing a UE removes its SA sets from the backend (no de-registration: that was the end phase).
    for (const u of this.#ues) {
      if (u.ue) await u.ue.close().catch(() => {});
      u.ue = undefined;
    }
    this.#transactions.close(); // what the closed UEs left (retransmissions, Timer K)
    for (const p of this.#plainPools) await p.close();
    this.#registered
      .values()
      .slice()
      .forEach((u) => this.#registered.delete(u));
    this.#done();
  }
}
