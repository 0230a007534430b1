// What the P-CSCF's request handlers (register.ts, proxy.ts) share: its addresses and ports, the
// transaction layer, the backend, the registration table, routes to the core and to a UE over an
// SA set, and the one way to refuse a request (counted, logged as an event, Warning with the reason).
import type { IpsecBackend, ProtectedEndpoint } from '../ipsec/backends/backend.ts';
import type { SaSet } from '../ipsec/sa-set.ts';
import type { SecAgreePolicy } from '../secagree/index.ts';
import type { Clock } from '../sip/clock.ts';
import type { SipRequest } from '../sip/message.ts';
import type { Route } from '../sip/response-routing.ts';
import type { ServerTransaction, TransactionLayer } from '../sip/transaction-manager.ts';
import type { Destination, ReceiveContext, SendFailureSink, SipTransport } from '../sip/transport.ts';
import type { Emit, Listens, Registration, RegistrationTable } from './registrations.ts';
import type { RegState } from './registration-state.ts';
import type { PendingLimits } from './pending-limits.ts';
import type { PcscfEvents, PcscfMode, RejectReason } from './types.ts';

export interface PcscfCore {
  readonly address: string;
  /** Plain SIP port (the Path URI and our Via towards the S-CSCF). */
  readonly port: number;
  readonly portC: number;
  readonly portS: number;
  readonly mode: PcscfMode;
  readonly policy: SecAgreePolicy;
  readonly regAwaitAuthMs: number;
  /** Our ESP-in-UDP port, written into UDP-enc-tun SA sets. */
  readonly encapPort: number;
  /** Which inner address a NATed UE uses in the tunnel (spec digest §15A point 4). */
  readonly natInnerAddress: 'private' | 'public';
  readonly pathUri: string;
  readonly clock: Clock;
  /** Registration-lifetime timers (SA-set expiry, reg-await-auth): one shared heap in production, `clock` in tests. */
  readonly timers: Clock;
  readonly layer: TransactionLayer;
  readonly backend: IpsecBackend;
  readonly plain: SipTransport;
  /** The protected endpoint on port_pc: everything we send to a UE leaves from it (SA2, spec digest §6.2). */
  readonly epC: ProtectedEndpoint;
  readonly table: RegistrationTable;
  /** Pending-registration and challenge-rate limits (issue 10 §2). */
  readonly limits: PendingLimits;
  readonly emit: Emit;
  /** Whether an event has listeners: payloads built per registration are skipped when nobody reads them. */
  readonly listens: Listens;
  /** Route of a request to the S-CSCF (plain UDP). */
  toCore(): Route;
  /**
   * Route to the UE of `set` over that set only: port_pc → port_us, SA2 (33.203 §7.1); over TCP
   * when the set speaks TCP (tcp.ts). `answering`: the context of the request a response answers,
   * which a TCP response follows (same connection, SA3).
   */
  toUe(set: SaSet, answering?: ReceiveContext): Route;
  /**
   * With a state store (issue 13 §3): writes what changed of `reg` since `before` (a new 200 OK,
   * the end of the registration); without `before`, its current state unconditionally (a NAT mapping moved).
   */
  readonly persist?: (reg: Registration, before?: RegState) => void;
  /** Whether a URI (Route entry) designates this P-CSCF. */
  isMine(uri: string): boolean;
  /** Counts a refusal and emits its 'rejected' event (reject() does this itself). */
  refused(ev: PcscfEvents['rejected']): void;
  /** Refuses `req` with `status`, a Warning carrying `message`, a counter and a 'rejected' event. */
  reject(
    tx: ServerTransaction,
    req: SipRequest,
    ctx: ReceiveContext,
    status: number,
    reason: RejectReason,
    message: string,
    opts?: RejectOptions,
  ): void;
}

export interface RejectOptions {
  readonly impi?: string;
  /** Send the refusal over this route (e.g. pinned to a temporary set that is deleted right after). */
  readonly route?: Route;
  /** Extra header fields of the refusal (e.g. Retry-After of a 503). */
  readonly headers?: readonly [string, string][];
}

/** A transport that runs `after` once the first send through it has finished (sent or failed). */
export function afterSend(t: SipTransport, after: () => void): SipTransport {
  return new AfterSend(t, after);
}

/**
 * afterSend's transport: one object with methods, not a literal with four closures (every final
 * response to a protected request goes out through one, two per registration).
 */
class AfterSend implements SipTransport {
  readonly protocol: SipTransport['protocol'];
  readonly local: SipTransport['local'];
  declare post?: SipTransport['post'];
  #done = false;
  constructor(
    private readonly t: SipTransport,
    private readonly after: () => void,
  ) {
    this.protocol = t.protocol;
    this.local = t.local;
    // The transaction layer's fast path kept (every 200 OK to a protected REGISTER comes this way):
    // the userspace backend's post seals the message before it returns (the only post over SAs), so
    // what `after` does to the set (deletion, release) cannot reach bytes already handed over.
    if (t.post !== undefined) this.post = postThenFire;
  }
  send(bytes: Uint8Array, to: Destination): Promise<void> {
    return this.t.send(bytes, to).finally(() => this.fire());
  }
  close(): Promise<void> {
    return this.t.close();
  }
  fire(): void {
    if (this.#done) return;
    this.#done = true;
    this.after();
  }
  postThrough(bytes: Uint8Array, to: Destination, sink: SendFailureSink): void {
    try {
      this.t.post!(bytes, to, sink);
    } finally {
      this.fire();
    }
  }
}
function postThenFire(this: AfterSend, bytes: Uint8Array, to: Destination, sink: SendFailureSink): void {
  this.postThrough(bytes, to, sink);
}
