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

interface Entry {
  readonly p: PendingChallenge;
  readonly cancel: () => void;
}

/** Not safe for concurrent use (one event loop owns it). */
export class PendingChallenges {
  /**
   * IMPI → its challenges, oldest first (at most MAX_PENDING_PER_IMPI): a Call-ID is found by a scan of
   * at most that many entries, so a lookup builds no (IMPI, Call-ID) key string, and the cap needs no scan.
   */
  readonly #byImpi = new Map<string, Entry[]>();
  #size = 0;

  constructor(
    private readonly clock: Clock,
    /** Called when reg-await-auth runs out for an entry (before its keys are wiped). */
    private readonly onExpire?: (p: PendingChallenge) => void,
  ) {}

  /** The live challenge for (IMPI, Call-ID), if any. */
  get(impi: string, callId: string): PendingChallenge | undefined {
    const list = this.#byImpi.get(impi);
    if (list === undefined) return undefined;
    const i = indexOfCallId(list, callId);
    if (i < 0) return undefined;
    const p = list[i]!.p;
    // A timer that has not fired yet (coarse clocks) must not keep an expired challenge usable.
    if (p.expiresAt <= this.clock.now()) {
      this.#removeAt(impi, list, i);
      return undefined;
    }
    return p;
  }

  /** Stores `p` (replacing the entry for the same key) and arms its reg-await-auth timer. */
  set(p: PendingChallenge): void {
    let list = this.#byImpi.get(p.impi);
    if (list !== undefined) {
      const i = indexOfCallId(list, p.callId);
      if (i >= 0) this.#removeAt(p.impi, list, i);
      while (list.length >= MAX_PENDING_PER_IMPI) this.#removeAt(p.impi, list, 0); // oldest first
      if (list.length === 0) list = undefined; // #removeAt dropped it from the map
    }
    const cancel = this.clock.setTimer(Math.max(0, p.expiresAt - this.clock.now()), () => {
      if (this.#find(p) === undefined) return; // replaced or removed meanwhile
      this.onExpire?.(p);
      const at = this.#find(p);
      if (at !== undefined) this.#removeAt(p.impi, at.list, at.i);
    });
    const e: Entry = { p, cancel };
    if (list !== undefined) list.push(e);
    else this.#byImpi.set(p.impi, [e]);
    this.#size++;
  }

  /** Forgets the challenge for (IMPI, Call-ID); true when there was one. */
  drop(impi: string, callId: string): boolean {
    const list = this.#byImpi.get(impi);
    const i = list === undefined ? -1 : indexOfCallId(list, callId);
    if (i < 0) return false;
    this.#removeAt(impi, list!, i);
    return true;
  }

  get size(): number {
    return this.#size;
  }

  /** Forgets everything (shutdown). */
  clear(): void {
    for (const [impi, list] of [...this.#byImpi]) while (list.length > 0) this.#removeAt(impi, list, list.length - 1);
  }

  #find(p: PendingChallenge): { list: Entry[]; i: number } | undefined {
    const list = this.#byImpi.get(p.impi);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) if (list[i]!.p === p) return { list, i };
    return undefined;
  }

  #removeAt(impi: string, list: Entry[], i: number): void {
    const e = list[i]!;
    list.splice(i, 1);
    if (list.length === 0) this.#byImpi.delete(impi);
    this.#size--;
    e.cancel();
    wipePending(e.p);
  }
}

function indexOfCallId(list: readonly Entry[], callId: string): number {
  for (let i = 0; i < list.length; i++) if (list[i]!.p.callId === callId) return i;
  return -1;
}

/** Best-effort erasure of the vector's secrets (JS guarantees nothing about copies). */
export function wipePending(p: PendingChallenge): void {
  p.xres.fill(0);
  p.ck.fill(0);
  p.ik.fill(0);
}
