// The UE's public types (24.229 §5.1.1, 33.203 §7): options, the default offer, incoming
// requests and their answers, events and the status snapshot (SA summary rows, never keys).
import type { IpsecBackend } from '../ipsec/backends/backend.ts';
import type { SaSet, SaSetEvent, SaSummaryRow } from '../ipsec/index.ts';
import type { AlgPair, UsableMod } from '../secagree/index.ts';
import type { Clock, ReceiveHandler, SipRequest, SipTransport, TimerConfig } from '../sip/index.ts';
import type { SipTracer } from '../util/trace.ts';
import type { SharedTransactions } from './sip-io.ts';
import type { FailureReason, RegistrationOk, UeTestHooks } from './registration.ts';
import type { RegEvent, RegState } from './registration-state.ts';

/** What deployed UEs offer (digest §4.3), SHA-1 first; null/aes-gcm for newer P-CSCFs. */
export const DEFAULT_OFFERS: readonly AlgPair[] = [
  { alg: 'hmac-sha-1-96', ealg: 'aes-cbc' },
  { alg: 'hmac-sha-1-96', ealg: 'null' },
  { alg: 'hmac-md5-96', ealg: 'aes-cbc' },
  { alg: 'hmac-md5-96', ealg: 'null' },
  { alg: 'null', ealg: 'aes-gcm' },
];

/** How a {@link Ue} registers: identities, the P-CSCF's address, K and OP/OPc, what it offers in Security-Client, the IPsec backend for its SAs, and the Clock both share. */
export interface UeOptions {
  readonly impi: string;
  readonly impu: string;
  /** Home domain; default: the realm of the IMPI (after '@'). */
  readonly domain?: string;
  /** The P-CSCF's unprotected address (port default 5060); a host name is resolved once. */
  readonly pcscf: { readonly address: string; readonly port?: number };
  readonly localIp: string;
  /** The unprotected socket's port; 0 = ephemeral (Kamailio 5.6 needs 5060, digest §17.1). */
  readonly localPort?: number;
  /** K and OPc (or OP) are kept by reference, not copied: leave them unchanged while the UE lives (a load run shares one pair). */
  readonly k: Uint8Array;
  readonly opc?: Uint8Array;
  readonly op?: Uint8Array;
  readonly usim?: { readonly acceptAnySqn?: boolean; readonly sqnMs?: number | bigint; readonly indLen?: number };
  readonly offers?: readonly AlgPair[];
  /** Modes offered in Security-Client (default ['trans']; list both to offer both). */
  readonly modes?: readonly UsableMod[];
  readonly backend: IpsecBackend;
  /**
   * SIP transport inside the SAs (spec digest §6.2), default 'auto'. 'tcp' needs a backend with
   * openTcp (xfrm): requests on a connection from port_uc to port_ps, the P-CSCF's on port_us.
   * The first, unprotected REGISTER stays on UDP. 'auto': UDP, but a request over 1,300 octets
   * (the protected REGISTER with several offers) goes over TCP when the backend has openTcp
   * (RFC 3261 §18.1.1), back on UDP if the connection fails, and once a registration went over
   * TCP every request over its set does (its flow; Kamailio 5.6 refuses the others); 'udp': UDP always.
   */
  readonly transport?: 'udp' | 'tcp' | 'auto';
  readonly pcscfEncapPort?: number;
  /**
   * Inner address of UDP-enc-tun SAs behind a NAT (spec digest §15A point 4): 'private' (default,
   * our rule: the stack's own address inside, the public one only in the Contact) or 'public'
   * (the public address inside and in Via too, for OpenSIPS-style P-CSCFs).
   */
  readonly natInnerAddress?: 'private' | 'public';
  /** Requested registration expiry in seconds (24.229 §5.1.1.2.1: 600000). */
  readonly expires?: number;
  /** Where protected ports are picked (M.7.1 rule 6). */
  readonly portRange?: readonly [number, number];
  /** Drives transaction timers, SA lifetimes and refreshes; the backend's `now`, if any, must agree. */
  readonly clock?: Clock;
  readonly trace?: SipTracer;
  readonly reRegister?: 'auto' | 'off';
  readonly timers?: Partial<TimerConfig>;
  /** Fresh starts after a 401 without Security-Server or a lost P-CSCF (default 3). */
  readonly maxAttempts?: number;
  /** 24.229 §5.1.1.5.1: at most two consecutive invalid challenges are answered. */
  readonly maxInvalidChallenges?: number;
  readonly regAwaitAuthMs?: number;
  /** Test-only misbehaviour (end-to-end tests of the P-CSCF's and S-CSCF's checks). */
  readonly __testHooks?: UeTestHooks;
  /** [0, 1) source for port picks (tests). */
  readonly random?: () => number;
  /** Measurements for load generators (`imsec load`); nothing is timed when absent. */
  readonly observer?: UeObserver;
  /** Anything the application wants to find its UE by (`ue.tag`), e.g. a load run's record of it. */
  readonly tag?: unknown;
  /**
   * Descriptors (load generators): 'on-demand' binds the unprotected socket only while an initial
   * registration runs (default 'always'); guardProtectedPorts false holds no clear socket on the
   * protected ports (userspace backend; default true). See UeSipIo.
   */
  readonly plainSocket?: 'always' | 'on-demand';
  readonly guardProtectedPorts?: boolean;
  /**
   * Opens the unprotected SIP transport on `address`:`port` (0 = any), feeding `onReceive`. Default:
   * a UDP socket. Tests give `(address, port, onReceive) => net.bind({ address, port, onReceive })`
   * to run the UE on a MemoryNetwork (with the memory backend: no socket at all, as the P-CSCF's
   * memoryEdge does).
   */
  readonly openPlain?: OpenPlainTransport;
  /**
   * One SIP transaction layer for many UEs (load generators: `new SharedTransactions({ clock })`,
   * the UEs' clock; close it after the UEs). Default: each UE has its own. Ignored with `trace`.
   */
  readonly transactions?: SharedTransactions;
}

/** Opens a plain SIP transport (the UE's unprotected socket, or its in-memory twin in tests). */
export type OpenPlainTransport = (address: string, port: number, onReceive: ReceiveHandler) => Promise<SipTransport>;

/**
 * What a procedure's exchanges took: `phase` is 'register' for a REGISTER answered by a challenge
 * (unprotected, or over the current set on a refresh), 'protected-register' for the one over the
 * temporary set, 'deregister' for any exchange of a de-registration, 'request' for others.
 */
export type UeExchangePhase = 'register' | 'protected-register' | 'deregister' | 'request';
/** Optional hooks for measuring a UE (the load generator's latency and AKA statistics). */
export interface UeObserver {
  exchange?(phase: UeExchangePhase, ms: number, outcome: number | 'timeout' | 'transport-error'): void;
  /** The USIM's verdict on each challenge (33.102 §6.3.3): 'sync_failure' means an AUTS went out. */
  akaCheck?(result: 'ok' | 'mac_failure' | 'sync_failure'): void;
  /**
   * `ue`'s registration ran out without a refresh (also emitted as 'failed'): one observer for many
   * UEs, so a load run needs no listener per UE. `ue.tag` says which.
   */
  expired?(ue: { readonly tag?: unknown }): void;
}

/** A network-initiated (MT) request that reached the UE over an SA. */
export interface IncomingRequest {
  readonly request: SipRequest;
  readonly set: SaSet;
  /** The SA it arrived on (SA2 normally). */
  readonly sa: string;
  readonly from: { readonly address: string; readonly port: number };
}

/** How the application answers an MT request (status, reason, headers, body). */
export interface IncomingAnswer {
  readonly status: number;
  readonly reason?: string;
  readonly headers?: readonly (readonly [string, string])[];
  readonly body?: Uint8Array;
}

/** Answers MT requests; `undefined` means the default 200 OK. */
export type RequestHandler = (req: IncomingRequest) => IncomingAnswer | undefined | void | Promise<IncomingAnswer | undefined | void>;

/** Events a `Ue` emits (its EventEmitter map). */
export interface UeEventMap {
  step: [text: string];
  state: [to: RegState, from: RegState, event: RegEvent];
  registered: [result: RegistrationOk];
  deregistered: [];
  failed: [reason: FailureReason, detail: string];
  'sa-created': [set: SaSet];
  'sa-deleted': [set: SaSet, why: SaSetEvent];
  request: [req: IncomingRequest];
  /** A (new) public address learnt from Via received/rport (spec digest §15A point 2). */
  'public-address': [now: { address: string; port?: number }, before: { address: string; port?: number } | undefined];
}

/** A snapshot of a UE for display: registration state, identities, P-CSCF and SA sets (no keys). */
export interface UeStatus {
  state: RegState;
  impi: string;
  impu: string;
  pcscf: string;
  local: string;
  /** P-Associated-URI of the last 200 OK. */
  impus: string[];
  serviceRoute: string[];
  expires?: number;
  expiresInS?: number;
  publicAddress?: { address: string; port?: number };
  /** Annex M: whether the last Via received showed a NAT, and the NAT-keepalives our backend sent. */
  nat: { behindNat: boolean; keepalivesSent: number };
  sets: {
    id: string;
    state: string;
    alg: string;
    ealg: string;
    mode: string;
    expiresInS?: number;
    inflight: number;
    sas: SaSummaryRow[];
  }[];
}
