// What the S-CSCF reports: one event per registrar or routing outcome (for the demo timeline and the
// `imsec core` log) and the counters behind them. Events carry identities, codes and reasons only:
// never XRES, CK, IK, RAND or a nonce (the nonce is RAND ‖ AUTN, harmless but noisy).

/** Why a REGISTER was answered 403 (24.229 §5.4.1.2.1; RFC 3310 §3.4; spec digest §10). */
export type AuthFailReason =
  | 'unknown_user' // IMPI (or the To IMPU) not in the HSS
  | 'impu_mismatch' // the To IMPU does not belong to the IMPI
  | 'wrong_response' // Digest response ≠ the one computed from XRES (user authentication failure, §10.1)
  | 'empty_response' // response="" with a nonce: the UE's network authentication failure (§10.2)
  | 'mac_s_failure' // AUTS whose MAC-S does not verify (§10.3)
  | 'bad_credentials' // unsupported algorithm or qop, undecodable auts
  | 'contact_not_registered'; // integrity-protected REGISTER for a contact not bound to the IMPI (24.229 §5.4.1.2.2)

/** Why a 401 went out. */
export type ChallengeReason = 'initial' | 'stale_nonce' | 're_register' | 'resync';

/** What the S-CSCF reports: challenges, registrations, de-registrations, authentication failures, messages. */
export type ScscfEvent =
  | { readonly type: 'challenge'; readonly impi: string; readonly impu: string; readonly callId: string; readonly reason: ChallengeReason }
  | {
      readonly type: 'registered';
      readonly impi: string;
      readonly impus: readonly string[];
      readonly contact: string;
      /** Granted seconds. */
      readonly expires: number;
      /** True when the IMPI already had a binding (a re-registration). */
      readonly refresh: boolean;
    }
  | { readonly type: 'deregistered'; readonly impi: string; readonly impus: readonly string[]; readonly reason: 'user' | 'expired' }
  | { readonly type: 'auth-failed'; readonly impi: string; readonly impu: string; readonly status: number; readonly reason: AuthFailReason }
  | { readonly type: 'resync'; readonly impi: string }
  | {
      readonly type: 'message';
      readonly method: string;
      /** The asserted originator (P-Asserted-Identity), or the network's From for network-initiated requests. */
      readonly from: string;
      /** The Request-URI as received (or the IMPU for network-initiated requests). */
      readonly to: string;
      /** proxied: along a registered Path; answered: by the S-CSCF as the application server; network: sendMessage. */
      readonly route: 'proxied' | 'answered' | 'rejected' | 'network';
      readonly status: number;
    };

/** The `type` of an `ScscfEvent`. */
export type ScscfEventType = ScscfEvent['type'];

export interface ScscfCounters {
  /** REGISTER requests received (retransmissions absorbed by the transaction layer excluded). */
  registers: number;
  challenges: number;
  registrations: number;
  reRegistrations: number;
  deregistrations: number;
  expirations: number;
  authFailures: number;
  resyncs: number;
  /** Non-REGISTER requests proxied along a Path, answered locally, rejected; network-initiated requests sent. */
  proxied: number;
  answered: number;
  rejected: number;
  networkRequests: number;
  /** Requests answered 500 because the HSS store or our own code threw (see #onRequest). */
  internalErrors: number;
}

export function newCounters(): ScscfCounters {
  return {
    registers: 0,
    challenges: 0,
    registrations: 0,
    reRegistrations: 0,
    deregistrations: 0,
    expirations: 0,
    authFailures: 0,
    resyncs: 0,
    proxied: 0,
    answered: 0,
    rejected: 0,
    networkRequests: 0,
    internalErrors: 0,
  };
}

/** Counts an event (the single place that maps events to counters). */
export function countEvent(c: ScscfCounters, e: ScscfEvent): void {
  switch (e.type) {
    case 'challenge':
      c.challenges++;
      return;
    case 'registered':
      if (e.refresh) c.reRegistrations++;
      else c.registrations++;
      return;
    case 'deregistered':
      if (e.reason === 'expired') c.expirations++;
      else c.deregistrations++;
      return;
    case 'auth-failed':
      c.authFailures++;
      return;
    case 'resync':
      c.resyncs++;
      return;
    case 'message':
      if (e.route === 'proxied') c.proxied++;
      else if (e.route === 'answered') c.answered++;
      else if (e.route === 'rejected') c.rejected++;
      else c.networkRequests++;
      return;
    default: {
      const never: never = e;
      return never;
    }
  }
}
