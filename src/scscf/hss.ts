// The HSS/AuC as the S-CSCF sees it (spec digest §2.1, §2.3, §5.3, §10.3): authentication vectors
// with SQNs from the store (each one durable before it leaves), AUTS checks with AMF* = 0000, and
// IMPI ↔ IMPU lookups. Stands in for Cx MAR/MAA in the embedded core.
import { type AuthVector, type Rng, generateVector, sqnFromBytes, verifyAuts } from '../aka/index.ts';
import { HssStoreError, type SubscriberProfile, type SubscriberStore } from './hss-store.ts';

/** Options of the HSS (`Hss`). */
export interface HssOptions {
  /** Source of RAND octets; node:crypto randomBytes by default. */
  rng?: Rng;
  /**
   * Group the SQN commits of one event-loop turn into one transaction (stores with beginSqnBatch:
   * SQLite, PostgreSQL). Vectors are then handed out before their SQN is durable: callers must wait for
   * {@link Hss.afterCommit} before any of them leaves the process. Default false.
   */
  groupCommits?: boolean;
}

/** The outcome of an AUTS re-synchronisation (33.102 §6.3.5): the USIM's SQN_MS, or why it was refused. */
export type ResyncResult =
  { readonly ok: true; readonly sqnMs: Uint8Array } | { readonly ok: false; readonly reason: 'mac_s_failure' | 'unknown_user' };

/** Largest batch of vectors one MAR may ask for. */
export const MAX_VECTORS = 32;

/** The HSS/AuC over an {@link HssStore}: authentication vectors with durable SQNs, AUTS checks, IMPI ↔ IMPU lookups. */
export class Hss {
  readonly #store: SubscriberStore;
  readonly #rng: Rng | undefined;
  readonly #group: boolean;
  #batchOpen = false;
  #waiting: ((err: Error | undefined) => void)[] = [];

  constructor(store: SubscriberStore, opts: HssOptions = {}) {
    this.#store = store;
    this.#rng = opts.rng;
    this.#group = opts.groupCommits === true && store.beginSqnBatch !== undefined && store.commitSqnBatch !== undefined;
  }

  /**
   * Calls `cb` once every SQN handed out so far is committed: at once when none waits for a commit,
   * else after the grouped commit at the end of this event-loop turn (with the error when it failed:
   * those vectors must then never be used).
   */
  afterCommit(cb: (err: Error | undefined) => void): void {
    if (this.#batchOpen) this.#waiting.push(cb);
    else cb(undefined);
  }

  /** Commits the open SQN batch now (grouped commits; also run by itself at the end of the turn). */
  flush(): void {
    if (!this.#batchOpen) return;
    this.#batchOpen = false;
    const waiting = this.#waiting;
    this.#waiting = [];
    let failure: Error | undefined;
    try {
      this.#store.commitSqnBatch!();
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
    }
    for (const cb of waiting) cb(failure);
  }

  #openBatch(): void {
    if (this.#batchOpen) return;
    this.#store.beginSqnBatch!();
    this.#batchOpen = true;
    // setImmediate: after every datagram this poll phase read, so their vectors share the commit.
    setImmediate(() => this.flush());
  }

  /**
   * The subscriber's profile. With grouped commits, a profile the store's cache does not hold is read
   * inside the SQN batch (opened for it): a subscriber's first REGISTER is challenged in the same turn, and
   * SQLite outside a transaction takes the WAL read lock for that one SELECT (~7 of its ~15 µs).
   */
  #profile(impi: string): SubscriberProfile | undefined {
    if (this.#group && this.#store.cachedProfile !== undefined) {
      const hit = this.#store.cachedProfile(impi);
      if (hit) return hit;
      this.#openBatch();
    }
    return this.#store.profile(impi);
  }

  /**
   * `n` vectors for `impi`, SQNs in increasing order (use them in that order: the USIM accepts each
   * SQN once). The SQNs are committed to disk before the vectors are built, so a crash afterwards
   * burns them rather than reusing them. Unknown IMPI ⇒ HssStoreError HSS_UNKNOWN_IMPI.
   */
  authenticate(impi: string, n = 1): AuthVector[] {
    if (!Number.isInteger(n) || n < 1 || n > MAX_VECTORS) {
      throw new HssStoreError('HSS_BAD_SUBSCRIBER', `vector count: must be 1..${MAX_VECTORS}, got ${n}`);
    }
    const sub = this.#profile(impi);
    if (!sub) throw new HssStoreError('HSS_UNKNOWN_IMPI', `no subscriber ${impi}`);
    if (this.#group) this.#openBatch();
    const sqns = this.#store.nextSqns(impi, n);
    return sqns.map((sqn) => generateVector({ k: sub.k, opc: sub.opc, sqn, amf: sub.amf }, this.#rng));
  }

  /**
   * Synchronisation failure (§10.3): checks MAC-S of the AUTS the UE sent for `rand` and, when it
   * verifies, moves the stored SQN past SQN_MS. A wrong MAC-S leaves the SQN untouched: an AUTS is
   * unauthenticated until then, and trusting it would let anyone push a subscriber's SQN around.
   * RAND must be 16 octets and AUTS 14 (InputError otherwise; the Digest layer's parseAuts checks).
   */
  resynchronise(impi: string, rand: Uint8Array, auts: Uint8Array): ResyncResult {
    const sub = this.#store.profile(impi);
    if (!sub) return { ok: false, reason: 'unknown_user' };
    const check = verifyAuts({ k: sub.k, opc: sub.opc, rand, auts });
    check.macS.fill(0);
    if (!check.ok) return { ok: false, reason: 'mac_s_failure' };
    try {
      this.#store.resync(impi, sqnFromBytes(check.sqnMs));
    } catch (err) {
      // Removed between the read and the update.
      if (err instanceof HssStoreError && err.code === 'HSS_UNKNOWN_IMPI') return { ok: false, reason: 'unknown_user' };
      throw err;
    }
    return { ok: true, sqnMs: check.sqnMs };
  }

  /** The IMPUs registered with `impi` (provisioning order), or undefined for an unknown IMPI. */
  impusOf(impi: string): string[] | undefined {
    const sub = this.#profile(impi);
    return sub && [...sub.impus];
  }

  /** The IMPI an IMPU belongs to, or undefined. */
  impiOf(impu: string): string | undefined {
    const sub = this.#store.findByImpu(impu);
    if (!sub) return undefined;
    wipeKeys(sub);
    return sub.impi;
  }
}

// findByImpu returns fresh copies of K and OPc; clear ours (best effort). Profiles are the store's to keep.
function wipeKeys(sub: { readonly k: Uint8Array; readonly opc: Uint8Array }): void {
  sub.k.fill(0);
  sub.opc.fill(0);
}
