// Bounds on what unauthenticated peers can make the P-CSCF (and the core) hold and spend (issue 10
// §2): pending registrations (an unprotected REGISTER forwarded, not yet authenticated) per source
// address and in total, and new challenges per second (a token bucket: each forwarded unprotected
// REGISTER costs the S-CSCF an authentication vector). Checked before anything is forwarded; over
// a limit the REGISTER is answered 503 with Retry-After. Every hold is released exactly once when
// its round ends (authenticated, failed, replaced or expired). O(1) per REGISTER.
import { canonicalAddress } from '../ipsec/sa.ts';
import type { RejectReason } from './types.ts';

/** Limits on state created for unauthenticated peers (issue 10 §2): pending registrations per source and in total, challenges per second. */
export interface PendingLimitsConfig {
  /** Pending registrations from one source address (a NAT shares one: not too small). */
  readonly maxPendingPerSource: number;
  /** Pending registrations in total. */
  readonly maxPendingTotal: number;
  /** New challenges (forwarded unprotected REGISTERs) per second, sustained. */
  readonly challengesPerSecond: number;
  /** Token bucket depth: a burst of this many is let through at once. */
  readonly challengeBurst: number;
  /**
   * Unprotected REGISTERs from one source forwarded to the S-CSCF and not answered yet. Bounds the
   * queue one source can build at the S-CSCF, hence the wait of every other UE behind it; more
   * from that source are dropped unparsed (a UE retransmits after T1). Default 64.
   */
  readonly maxInFlightPerSource?: number;
}

/**
 * Defaults: a load generator (or a carrier NAT) registers hundreds of UEs from one address at a
 * time, so the per-source cap is 1,000; 20,000 pending sets of ~25 KB bound a flood's memory to
 * ~0.5 GB; 2,000 challenges/s is above what the embedded core serves on two cores (issue 9 aims at
 * 1,000 registrations/s), so only floods meet it.
 */
export const DEFAULT_PENDING_LIMITS: PendingLimitsConfig = {
  maxPendingPerSource: 1_000,
  maxPendingTotal: 20_000,
  challengesPerSecond: 2_000,
  challengeBurst: 4_000,
  maxInFlightPerSource: 64,
};

/** Datagrams a second still parsed (and answered 503) from a source at its pending limit. */
export const REFUSALS_PER_SECOND = 20;

export type LimitVerdict =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly reason: Extract<RejectReason, `overload-${string}`>;
      readonly retryAfterS: number;
      readonly message: string;
    };

const ADMITTED: LimitVerdict = Object.freeze({ ok: true });

/** Not safe for concurrent use (one event loop owns it). */
export class PendingLimits {
  readonly #perSource = new Map<string, number>();
  #total = 0;
  #tokens: number;
  #refilledAt: number;

  constructor(
    readonly config: PendingLimitsConfig,
    private readonly now: () => number,
    /** Retry-After for the pending limits (s): roughly when held rounds start to end. */
    private readonly pendingRetryAfterS = 30,
  ) {
    for (const [k, v] of Object.entries(config)) {
      if (v === undefined) continue;
      if (!Number.isFinite(v) || v <= 0) throw new RangeError(`pending limits: ${k} must be > 0, got ${v}`);
    }
    this.#tokens = config.challengeBurst;
    this.#refilledAt = now();
  }

  get total(): number {
    return this.#total;
  }
  pendingFrom(source: string): number {
    return this.#perSource.get(canonicalAddress(source)) ?? 0;
  }

  /**
   * Whether a datagram from `source` should be read at all. A source at its pending limit gets
   * REFUSALS_PER_SECOND datagrams a second parsed (each answered 503 with Retry-After); the rest is
   * dropped unparsed, so a flood from one address costs a Map lookup per datagram and cannot
   * starve other UEs. The count is per second and per source, kept only for sources at the limit.
   */
  readUnparsed(source: string): boolean {
    if (this.#perSource.size === 0 && this.#inFlight.size === 0) return true;
    const key = canonicalAddress(source);
    // Over the in-flight cap: dropped, no 503 (a flood gets nothing back; a UE retransmits later).
    if ((this.#inFlight.get(key) ?? 0) >= this.#maxInFlight) return false;
    if ((this.#perSource.get(key) ?? 0) < this.config.maxPendingPerSource) return true;
    const t = Math.floor(this.now() / 1000);
    const w = this.#refusals.get(key);
    if (!w || w.second !== t) {
      this.#refusals.set(key, { second: t, n: 1 });
      return true;
    }
    return ++w.n <= REFUSALS_PER_SECOND;
  }
  readonly #refusals = new Map<string, { second: number; n: number }>();

  /**
   * May an unprotected REGISTER from `source` be forwarded? `replacing`: it replaces a pending
   * round of the same registration from the same source (no new pending state). Takes a token on
   * success; takes nothing on refusal.
   */
  admit(source: string, replacing: boolean): LimitVerdict {
    if (!replacing) {
      const n = this.pendingFrom(source);
      if (n >= this.config.maxPendingPerSource) {
        return {
          ok: false,
          reason: 'overload-pending-source',
          retryAfterS: this.pendingRetryAfterS,
          message: `${n} registrations from ${source} are already waiting for authentication (limit ${this.config.maxPendingPerSource})`,
        };
      }
      if (this.#total >= this.config.maxPendingTotal) {
        return {
          ok: false,
          reason: 'overload-pending-total',
          retryAfterS: this.pendingRetryAfterS,
          message: `${this.#total} registrations are already waiting for authentication (limit ${this.config.maxPendingTotal})`,
        };
      }
    }
    this.#refill();
    if (this.#tokens < 1) {
      const waitS = Math.max(1, Math.ceil((1 - this.#tokens) / this.config.challengesPerSecond));
      return {
        ok: false,
        reason: 'overload-challenge-rate',
        retryAfterS: waitS,
        message: `more than ${this.config.challengesPerSecond} new challenges per second`,
      };
    }
    this.#tokens -= 1;
    return ADMITTED;
  }

  /** Counts one pending round from `source`; the returned function releases it (idempotent). */
  hold(source: string): () => void {
    const key = canonicalAddress(source);
    this.#perSource.set(key, (this.#perSource.get(key) ?? 0) + 1);
    this.#total++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#total--;
      const n = (this.#perSource.get(key) ?? 1) - 1;
      this.#refusals.delete(key);
      if (n <= 0) this.#perSource.delete(key);
      else this.#perSource.set(key, n);
    };
  }

  /**
   * Counts one unprotected REGISTER from `source` forwarded to the S-CSCF; the returned function
   * (idempotent) is called when its final response or its failure is in.
   */
  fly(source: string): () => void {
    const key = canonicalAddress(source);
    this.#inFlight.set(key, (this.#inFlight.get(key) ?? 0) + 1);
    let flying = true;
    return () => {
      if (!flying) return;
      flying = false;
      const n = (this.#inFlight.get(key) ?? 1) - 1;
      if (n <= 0) this.#inFlight.delete(key);
      else this.#inFlight.set(key, n);
    };
  }
  readonly #inFlight = new Map<string, number>();
  get #maxInFlight(): number {
    return this.config.maxInFlightPerSource ?? DEFAULT_PENDING_LIMITS.maxInFlightPerSource!;
  }

  inFlightFrom(source: string): number {
    return this.#inFlight.get(canonicalAddress(source)) ?? 0;
  }

  #refill(): void {
    const t = this.now();
    const dt = Math.max(0, t - this.#refilledAt) / 1000;
    this.#refilledAt = t;
    this.#tokens = Math.min(this.config.challengeBurst, this.#tokens + dt * this.config.challengesPerSecond);
  }
}
