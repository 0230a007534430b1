// NAT-keepalives (RFC 3948 §2.3, §4; spec digest §15A point 3, §16.3): one 0xFF octet to a peer's
// encapsulation address whenever nothing else went there for `intervalMs` (default 20 s). Only the
// side behind the NAT sends them (the UE); the owner tells us which peers need them and what it sent.
import type { Clock } from '../../util/clock.ts';
import { guard } from '../../util/guard.ts';
import type { Addr } from './backend.ts';

/** RFC 3948 §4: "M seconds, default 20" of silence before a keepalive. */
export const DEFAULT_KEEPALIVE_MS = 20_000;
/** RFC 3948 §2.3: the NAT-keepalive payload, one octet 0xFF. */
export const NAT_KEEPALIVE = Uint8Array.of(0xff);

export interface NatKeepaliveDeps {
  /** Silence before a keepalive, ms; 0 turns keepalives off. */
  readonly intervalMs: number;
  /** Sends one keepalive datagram to `peer` from the encapsulation socket. */
  readonly send: (peer: Addr) => Promise<void>;
  /** The backend's clock (virtual time in tests); timers are unref'd: keepalives never keep a process alive. */
  readonly clock: Clock;
}

interface PeerState {
  readonly peer: Addr;
  last: number;
  cancel: (() => void) | undefined;
  /** How many SA sets need this peer (retain/release); setPeers sets it to 1. */
  refs: number;
}

/** Not safe for concurrent use (one event loop owns it). */
export class NatKeepalive {
  /** Keepalives sent so far (all peers). */
  sent = 0;
  readonly #deps: NatKeepaliveDeps;
  readonly #peers = new Map<string, PeerState>();
  #closed = false;

  constructor(deps: NatKeepaliveDeps) {
    if (!Number.isInteger(deps.intervalMs) || deps.intervalMs < 0)
      throw new RangeError(`keepaliveMs must be an integer >= 0, got ${deps.intervalMs}`);
    this.#deps = deps;
  }

  get enabled(): boolean {
    return this.#deps.intervalMs > 0;
  }

  /** The peers keepalives go to now (their encapsulation address and port). */
  get peers(): Addr[] {
    return [...this.#peers.values()].map((p) => p.peer);
  }

  /** Something (ESP or a keepalive) just left for `peer`: its silence starts again. */
  noteSent(peer: Addr): void {
    if (this.#peers.size === 0) return; // the P-CSCF side: no keepalives, no key to build per packet
    const p = this.#peers.get(key(peer));
    if (p) p.last = this.#deps.clock.now();
  }

  /**
   * The peers that need keepalives from now on (those of live UDP-encapsulated SAs on the NATed
   * side). New ones start their silence now; the others stop. DEVIATION: RFC 3948 §4 allows
   * keepalives for N minutes after the last SA went; we stop at once (no SA, nothing to keep).
   */
  setPeers(peers: readonly Addr[]): void {
    if (this.#closed || !this.enabled) return;
    const want = new Map(peers.map((p) => [key(p), p]));
    for (const [k, st] of this.#peers) {
      if (want.has(k)) continue;
      st.cancel?.();
      this.#peers.delete(k);
    }
    for (const [k, peer] of want) {
      if (this.#peers.has(k)) continue;
      const st: PeerState = { peer, last: this.#deps.clock.now(), cancel: undefined, refs: 1 };
      this.#peers.set(k, st);
      this.#schedule(st);
    }
  }

  /**
   * One more SA set needs keepalives to `peer` (O(1): thousands of UEs on one backend all share
   * the P-CSCF's address, and recomputing the peer list per install would cost O(sets)).
   */
  retain(peer: Addr): void {
    if (this.#closed || !this.enabled) return;
    const k = key(peer);
    const st = this.#peers.get(k);
    if (st) {
      st.refs++;
      return;
    }
    const fresh: PeerState = { peer, last: this.#deps.clock.now(), cancel: undefined, refs: 1 };
    this.#peers.set(k, fresh);
    this.#schedule(fresh);
  }

  /** One SA set less needs `peer`; the last one stops its keepalives. */
  release(peer: Addr): void {
    const k = key(peer);
    const st = this.#peers.get(k);
    if (!st || --st.refs > 0) return;
    st.cancel?.();
    this.#peers.delete(k);
  }

  close(): void {
    this.#closed = true;
    for (const st of this.#peers.values()) st.cancel?.();
    this.#peers.clear();
  }

  #schedule(st: PeerState): void {
    const wait = Math.max(0, st.last + this.#deps.intervalMs - this.#deps.clock.now());
    st.cancel = this.#deps.clock.setTimer(
      wait,
      guard('esp.keepalive', () => this.#fire(st)),
      { unref: true },
    );
  }

  async #fire(st: PeerState): Promise<void> {
    if (this.#closed || this.#peers.get(key(st.peer)) !== st) return;
    // A timer may fire a little early; 5 ms of slack keeps it from skipping a whole interval.
    if (this.#deps.clock.now() - st.last >= this.#deps.intervalMs - 5) {
      st.last = this.#deps.clock.now();
      try {
        await this.#deps.send(st.peer);
        this.sent++;
      } catch {
        // An unreachable peer (ICMP) must not stop later keepalives.
      }
    }
    if (!this.#closed && this.#peers.get(key(st.peer)) === st) this.#schedule(st);
  }
}

function key(a: Addr): string {
  return `${a.address.toLowerCase()}|${a.port}`;
}
