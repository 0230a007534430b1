// RFC 3261 §17 timer values (Table 4, §A), derived from T1, T2 and T4 as the RFC derives them, plus
// Timers L and M of RFC 6026 §8.1. On reliable transports the retransmission timers are not used
// (0 here) and the wait timers D, I, J, K are zero, as §17 says.

/** §17.1.1.1: "T1 is an estimate of the round-trip time (RTT), and it defaults to 500 ms." */
export const T1_MS = 500;
/** §17.1.2.2: "T2 … represents the amount of time a non-INVITE server transaction will take to respond … default value of T2 is 4s." */
export const T2_MS = 4000;
/** §17.1.2.2: "T4 represents the amount of time the network will take to clear messages between client and server transactions. The default value of T4 is 5s." */
export const T4_MS = 5000;

/** §17.2.1: "the server transaction MUST generate a 100 (Trying) response unless it knows that the TU will generate a provisional or final response within 200 ms". */
export const TRYING_DELAY_MS = 200;

/** The RFC 3261 §17.1.1.1 timer base values T1, T2 and T4 (ms). */
export interface TimerConfig {
  readonly t1: number;
  readonly t2: number;
  readonly t4: number;
}

/** RFC 3261 defaults: T1 = 500 ms, T2 = 4 s, T4 = 5 s. */
export const DEFAULT_TIMER_CONFIG: TimerConfig = { t1: T1_MS, t2: T2_MS, t4: T4_MS };

/** The transaction timers (RFC 3261 Table 4) derived from a `TimerConfig` for one transport (ms). */
export interface TransactionTimers {
  /** §17.1.1.2: "If an unreliable transport is being used, the client transaction MUST start timer A with a value of T1." Doubles on each firing. */
  readonly A: number;
  /** §17.1.1.2: "the client transaction MUST start timer B with a value of 64*T1 seconds (Timer B controls transaction timeouts)." */
  readonly B: number;
  /** §17.1.1.2: "Timer D … MUST be set to fire in … at least 32 seconds for unreliable transports, and … zero seconds for reliable transports." */
  readonly D: number;
  /** §17.1.2.2: "If an unreliable transport is in use, the client transaction MUST set timer E to fire in T1 seconds." Then MIN(2E, T2). */
  readonly E: number;
  /** §17.1.2.2: "the client transaction MUST set timer F to fire in 64*T1 seconds." */
  readonly F: number;
  /** §17.2.1: "If an unreliable transport is being used, the server transaction MUST start timer G … with a value of T1". Then MIN(2G, T2). */
  readonly G: number;
  /** §17.2.1: "timer H MUST be set to fire in 64*T1 seconds for all transports." */
  readonly H: number;
  /** §17.2.1: "Timer I is set to fire in T4 seconds for unreliable transports, and zero seconds for reliable transports." */
  readonly I: number;
  /** §17.2.2: "Timer J … MUST be set to fire in 64*T1 seconds for unreliable transports, and zero seconds for reliable transports." */
  readonly J: number;
  /** §17.1.2.2: "timer K … to fire in T4 seconds for unreliable transports, and zero seconds for reliable transports." */
  readonly K: number;
  /** RFC 6026 §8.7: Timer L "64*T1": the INVITE server transaction waits in Accepted for retransmitted INVITEs. */
  readonly L: number;
  /** RFC 6026 §8.4: Timer M "64*T1": the INVITE client transaction waits in Accepted for retransmitted 2xx. */
  readonly M: number;
  /** Cap of the E and G back-off (T2). */
  readonly T2: number;
}

// Every transaction of a layer asks with the same config object: one frozen pair per config.
const cache = new WeakMap<TimerConfig, { readonly unreliable: TransactionTimers; readonly reliable: TransactionTimers }>();

/** Timer values for one transaction: `reliable` is true for TCP/TLS/SCTP (no retransmissions). The result is shared (frozen). */
export function transactionTimers(reliable: boolean, cfg: TimerConfig = DEFAULT_TIMER_CONFIG): TransactionTimers {
  // The last config asked for answers without a WeakMap lookup (one layer per process, as a rule).
  let pair = cfg === lastConfig ? lastPair : cache.get(cfg);
  if (pair === undefined) {
    pair = { unreliable: Object.freeze(compute(false, cfg)), reliable: Object.freeze(compute(true, cfg)) };
    cache.set(cfg, pair);
  }
  lastConfig = cfg;
  lastPair = pair;
  return reliable ? pair.reliable : pair.unreliable;
}
let lastConfig: TimerConfig | undefined;
let lastPair: { readonly unreliable: TransactionTimers; readonly reliable: TransactionTimers } | undefined;

function compute(reliable: boolean, cfg: TimerConfig): TransactionTimers {
  const { t1, t2, t4 } = cfg;
  return {
    A: reliable ? 0 : t1,
    B: 64 * t1,
    D: reliable ? 0 : Math.max(32000, 64 * t1),
    E: reliable ? 0 : t1,
    F: 64 * t1,
    G: reliable ? 0 : t1,
    H: 64 * t1,
    I: reliable ? 0 : t4,
    J: reliable ? 0 : 64 * t1,
    K: reliable ? 0 : t4,
    L: 64 * t1,
    M: 64 * t1,
    T2: t2,
  };
}
