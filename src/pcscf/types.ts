// The P-CSCF's public vocabulary: options, rejection reasons, counters, events and the read-only
// registration view (33.203 §7, Annex M; 24.229 §5.2.2). No behaviour here.
import type { IpsecBackend } from '../ipsec/backends/backend.ts';
import type { PendingLimitsConfig } from './pending-limits.ts';
import type { PcscfState } from './state.ts';
import type { PcscfEdge } from './server.ts';
import type { SaSummaryRow } from '../ipsec/sa-set.ts';
import type { SaDeleteCode } from '../ipsec/sa-slots.ts';
import type { SecAgreePolicy } from '../secagree/index.ts';
import type { Clock } from '../sip/clock.ts';
import type { TimerConfig } from '../sip/timers.ts';
import type { Endpoint, ReceiveHandler, SipTransport } from '../sip/transport.ts';
import type { SipTracer } from '../util/trace.ts';

/**
 * 'auto': the Annex M rule (spec digest §15A point 5): UDP-enc-tun when a NAT is detected, trans
 * otherwise. The other two force that mode whenever the UE offered it (the loopback demo runs
 * UDP-enc-tun without a NAT and without root).
 */
export type PcscfMode = 'auto' | 'udp-enc-tun' | 'trans';

/** Where a {@link Pcscf} listens (plain port, port_pc, port_ps), the S-CSCF it forwards to, its IPsec backend, sec-agree policy and mode. */
export interface PcscfOptions {
  /** The P-CSCF's IP address: plain SIP, the protected ports and the SAs all use it. */
  readonly address: string;
  /** Plain (unprotected) SIP port; default 5060; 0 = ephemeral. */
  readonly port?: number;
  /** port_pc, the protected client port; 0 = pick a free one. */
  readonly portC: number;
  /** port_ps, the protected server port; 0 = pick a free one. */
  readonly portS: number;
  /** Where REGISTERs and UE-originated requests go; requests from this address and port are the core's. */
  readonly scscf: Endpoint;
  readonly backend: IpsecBackend;
  readonly policy?: SecAgreePolicy;
  readonly mode?: PcscfMode;
  /**
   * Timers and SA lifetimes use this clock. The backend must use the same time scale for its SAD
   * expiry (`UserspaceBackend.create({ now: clock.now })`) or none at all.
   */
  readonly clock?: Clock;
  readonly trace?: SipTracer;
  /** Lifetime of a temporary SA set (24.229 Table 7.8.1 reg-await-auth, 4 min). */
  readonly regAwaitAuthMs?: number;
  /** The plain transport, for tests (e.g. `(h) => net.bind({ address, port, onReceive: h })`); wins over `edge.openPlain`. */
  readonly transport?: (onReceive: ReceiveHandler) => SipTransport | Promise<SipTransport>;
  /**
   * What the P-CSCF binds outside its backend (plain SIP, free-port picks, the protected-port watch):
   * default `udpEdge` (real sockets); `memoryEdge(net)` runs it on a MemoryNetwork (server.ts).
   */
  readonly edge?: PcscfEdge;
  /** RFC 3261 T1/T2/T4 overrides. */
  readonly timers?: Partial<TimerConfig>;
  /** The P-CSCF's ESP-in-UDP port written into UDP-enc-tun SA sets; default the backend's, else 4500. */
  readonly encapPort?: number;
  /**
   * The inner source address a NATed UE uses in the tunnel (spec digest §15A point 4): 'private'
   * (default, our rule: the Via sent-by host of its unprotected REGISTER, RFC 3948 §3.1.1 first
   * option) or 'public' (the packet source, as the OpenSIPS fork expects).
   */
  readonly natInnerAddress?: 'private' | 'public';
  /**
   * Bounds on unauthenticated state and on vector spending (issue 10 §2): pending registrations per
   * source address and in total, new challenges per second; defaults in DEFAULT_PENDING_LIMITS.
   */
  readonly limits?: Partial<PendingLimitsConfig>;
  /**
   * Issue 13 §3: keep registered UEs' registrations and current SA sets in this store and restore
   * them at start (the stored port_pc/port_ps must be the ones given). `stop()` then keeps them too.
   */
  readonly state?: PcscfState;
}

/** Why something was refused; each is a counter and a 'rejected' event. */
export type RejectReason =
  | 'no-impi'
  | 'no-security-client'
  | 'bad-security-client'
  | 'no-acceptable-mechanism'
  | 'nat-without-udp-enc-tun'
  | 'admission-port-in-use'
  | 'admission-too-many-sas'
  | 'security-verify-mismatch'
  | 'security-client-changed'
  | 'not-temporary-set'
  | 'register-over-old-set'
  | 'register-identity-mismatch'
  | 'bad-request'
  | 'overload-pending-source'
  | 'overload-pending-total'
  | 'overload-challenge-rate'
  | 'request-over-temporary-set'
  | 'unprotected-request'
  | 'unknown-sa-set'
  | 'not-registered'
  | 'identity-not-registered'
  | 'other-registration-identity'
  | 'no-registration-for-target'
  | 'challenge-without-keys'
  | 'sa-setup-failed'
  | 'too-many-hops'
  | 'response-over-wrong-set';

/** The P-CSCF's counters (what `imsec pcscf` reports and exports as metrics). */
export interface PcscfCounters {
  readonly rejected: Partial<Record<RejectReason, number>>;
  /** Datagrams that reached port_pc/port_ps outside ESP (33.203 §7.1: only protected traffic there). */
  readonly unprotectedOnProtectedPort: number;
  /** Plain-port datagrams dropped unparsed: their source address was at its pending limit (issue 10 §2). */
  readonly droppedOverSourceLimit: number;
}

/** Where a request came from: address and port. */
export interface Source {
  readonly address: string;
  readonly port: number;
}

/** Events the P-CSCF emits, by name, with their payloads (never keys). */
export interface PcscfEvents {
  'sa-created': {
    impi: string;
    set: string;
    mode: string;
    alg: string;
    ealg: string;
    spis: { uc: number; us: number; pc: number; ps: number };
  };
  'sa-promoted': { impi: string; set: string; previous?: string };
  /** Once per set, after the backend removal; `error` when the backend failed to remove it (never ignored). */
  'sa-deleted': { impi: string; set: string; reason: string; code: SaDeleteCode; error?: string };
  /** The backend could not follow a lifetime change (e.g. UPDSA failed): its SAs may die early. */
  'sa-error': { impi: string; set: string; op: 'update-lifetime'; error: string };
  rejected: { reason: RejectReason; message: string; status?: number; method?: string; from: Source; impi?: string };
  'nat-detected': { impi: string; via: string; source: Source; differs?: 'address' | 'port' };
  /**
   * port_Uenc learnt or moved (a NAT rebinding) after an authenticated ESP-in-UDP packet, or a new
   * public address seen and not followed (spec digest §15A points 2 and 6).
   */
  'nat-mapping': { impi: string; set: string; address: string; port: number; previous?: Source; followed: boolean; why: string };
  registered: { impi: string; impus: readonly string[]; expires: number };
  deregistered: { impi: string; reason: string };
  dropped: { reason: string; from: Source; port: number };
}

/** The name of a P-CSCF event. */
export type PcscfEventName = keyof PcscfEvents;

/** One registration as `pcscf.registrations()` shows it (no keys: SaSet.summary() rows only). */
export interface RegistrationView {
  impi: string;
  impus: string[];
  state: 'pending' | 'registered';
  /** Registration expiry, clock ms (undefined while pending). */
  expires?: number;
  nat: boolean;
  ue: { ip: string; innerIp?: string; encap?: Source };
  contact?: string;
  sets: { id: string; role: 'temporary' | 'current' | 'old'; expiresAt?: number; inFlight: number; sas: SaSummaryRow[] }[];
}
