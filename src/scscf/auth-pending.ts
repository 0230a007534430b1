// Pending IMS AKA challenges (24.229 §5.4.1.2.1): one authentication vector per (IMPI, Call-ID),
// kept for reg-await-auth (24.229 Table 7.8.1: 4 min) and then forgotten. XRES, CK and IK are
// wiped whenever an entry leaves (answered, replaced, evicted, expired).
import type { Clock } from '../sip/index.ts';

export interface PendingChallenge {
  readonly impi: string;
  /** The To IMPU of the challenged REGISTER. */
  readonly impu: string;
  /** The challenged REGISTER's Call-ID: the answer must carry the same (24.229 §5.4.1.2.1). */
  readonly callId: string;
  /** The nonce sent, base64(RAND ‖ AUTN); the answer must echo it. */
  readonly nonce: string;
  readonly rand: Uint8Array;
  readonly xres: Uint8Array;
  readonly ck: Uint8Array;
  readonly ik: Uint8Array;
  /** Clock time (ms) at which reg-await-auth runs out. */
  readonly expiresAt: number;
}

/**
 * Cap on simultaneous challenges per IMPI. Every unauthenticated REGISTER with a new Call-ID costs an
 * SQN and an entry; without a cap a flood of Call-IDs would grow the table for 4 minutes each.
 */
export const MAX_PENDING_PER_IMPI = 8;

const keyOf = (impi: string, callId: string) => `${impi}\n${callId}`;

/** Not safe for concurrent use (one event loop owns it). */
export class PendingChallenges {
  readonly #entries = new Map<string, { readonly p: PendingChallenge; readonly cancel: () => void }>();
  /** IMPI → its entries' keys, oldest first (at most MAX_PENDING_PER_IMPI): the cap without a scan of every entry. */
  readonly #byImpi = new Map<string, string[]>();

  constructor(
    private readonly clock: Clock,
    /** Called when reg-await-auth runs out for an entry (before its keys are wiped). */
    private readonly onExpire?: (p: PendingChallenge) => void,
  ) {}

  /** The live challenge for (IMPI, Call-ID), if any. */
  get(impi: string, callId: string): PendingChallenge | undefined {
    const e = this.#entries.get(keyOf(impi, callId));
    // A timer that has not fired yet (coarse clocks) must not keep an expired challenge usable.
    if (e && e.p.expiresAt <= this.clock.now()) {
      this.#remove(keyOf(impi, callId));
      return undefined;
    }
    return e?.p;
  }

  /** Stores `p` (replacing the entry for the same key) and arms its reg-await-auth timer. */
  set(p: PendingChallenge): void {
    const key = keyOf(p.impi, p.callId);
    this.#remove(key);
    let keys = this.#byImpi.get(p.impi);
    while (keys !== undefined && keys.length >= MAX_PENDING_PER_IMPI) {
      this.#remove(keys[0]!); // oldest first
      keys = this.#byImpi.get(p.impi);
    }
    const cancel = this.clock.setTimer(Math.max(0, p.expiresAt - this.clock.now()), () => {
      const e = this.#entries.get(key);
      if (e?.p !== p) return; // replaced meanwhile
      this.onExpire?.(p);
      this.#remove(key);
    });
    this.#entries.set(key, { p, cancel });
    if (keys) keys.push(key);
    else this.#byImpi.set(p.impi, [key]);
  }

  /** Forgets the challenge for (IMPI, Call-ID); true when there was one. */
  drop(impi: string, callId: string): boolean {
    return this.#remove(keyOf(impi, callId));
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Forgets everything (shutdown). */
  clear(): void {
    for (const k of [...this.#entries.keys()]) this.#remove(k);
  }

  #remove(key: string): boolean {
    const e = this.#entries.get(key);
    if (!e) return false;
    this.#entries.delete(key);
    const keys = this.#byImpi.get(e.p.impi)!;
    if (keys.length === 1) this.#byImpi.delete(e.p.impi);
    else keys.splice(keys.indexOf(key), 1);
    e.cancel();
    wipePending(e.p);
    return true;
  }
}

/** Best-effort erasure of the vector's secrets (JS guarantees nothing about copies). */
export function wipePending(p: PendingChallenge): void {
  p.xres.fill(0);
  p.ck.fill(0);
  p.ik.fill(0);
}
