// The non-INVITE server transaction, RFC 3261 §17.2.2 (Figure 8). Absorbs retransmitted requests,
// answering them with the last response sent; keeps the final response for Timer J.
//
//                   |Request received; pass to TU
//                   V
//             +-----------+  1xx from TU: send     +-----------+  1xx from TU: send
//             |  Trying   |----------------------->|Proceeding |<-- request: resend 1xx
//             +-----------+                        +-----------+
//   200-699 from TU: send |                 200-699 from TU: send |  transport error:
//                         +------------> Completed <--------------+  inform TU, Terminated
//                              request: resend final |
//                                            Timer J  V
//                                               Terminated
import { serializeMessage } from './serializer.ts';
import type { SipRequest, SipResponse } from './message.ts';
import { NO_CALLBACKS, Transaction, type ServerTransactionUser, type TransactionDeps } from './transaction.ts';
import type { ReceiveContext } from './transport.ts';
import type { ServerInviteTransaction } from './server-invite.ts';
import type { ResponseRouter, RouteOverride } from './server-routing.ts';

/** States of the non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8). */
export type ServerNonInviteState = 'trying' | 'proceeding' | 'completed' | 'terminated';

const NEXT: Readonly<Record<ServerNonInviteState, readonly ServerNonInviteState[]>> = {
  trying: ['proceeding', 'completed', 'terminated'],
  proceeding: ['completed', 'terminated'],
  completed: ['terminated'],
  terminated: [],
};

/** The non-INVITE server transaction (RFC 3261 §17.2.2): answers retransmitted requests with the last response until Timer J. */
export class ServerNonInviteTransaction extends Transaction<ServerNonInviteState> {
  protected readonly next = NEXT;
  /** Set by the TU (typically in onRequest); one type for both server machines. */
  user: ServerTransactionUser<ServerNonInviteTransaction | ServerInviteTransaction> = NO_CALLBACKS;
  #context: ReceiveContext | undefined;
  #router: ResponseRouter | undefined;
  /** The last response sent while Trying/Proceeding (a retransmitted 1xx is routed again). */
  #lastResponse: SipResponse | undefined;
  /** Its bytes (Completed resends the final's from the layer's completed table). */
  #lastBytes: Uint8Array | undefined;

  constructor(
    id: string,
    request: SipRequest,
    /** Where the request came from (and through which transport). */
    context: ReceiveContext,
    /** Decides each response's route; see ServerTransaction.setResponseRoute. */
    router: ResponseRouter,
    deps: TransactionDeps,
  ) {
    super(id, request, context.protocol === 'tcp', 'trying', deps);
    this.#context = context;
    this.#router = router;
  }

  /** Where the request came from (and through which transport); released with the request in Completed. */
  get context(): ReceiveContext {
    const c = this.#context;
    if (c === undefined) throw this.released('receive context');
    return c;
  }

  /** Overrides where this transaction's responses go (e.g. the P-CSCF's port_pc → port_us); undefined restores the default. No effect once Completed (the final response's route is fixed). */
  setResponseRoute(route: RouteOverride | undefined): void {
    this.#router?.set(route);
  }

  /** The last response sent while Trying or Proceeding; undefined once Completed (only its bytes are kept). */
  get lastResponse(): SipResponse | undefined {
    return this.#lastResponse;
  }

  /** Timer J (reliable transports: at once): leave Completed. */
  onTimer(name: string): void {
    if (name === 'J') this.move(NEXT, 'terminated');
  }

  protected override get parkedTimer(): string {
    return 'J';
  }

  /** A retransmission of the request (matched by the layer). */
  receiveRequest(_request: SipRequest): void {
    // §17.2.2: "Once in the "Trying" state, any further request retransmissions are discarded."
    // "If a retransmission of the request is received while in the "Proceeding" state, the most recently
    // sent provisional response MUST be passed to the transport layer for retransmission."
    // "While in the "Completed" state, the server transaction MUST pass the final response to the
    // transport layer for retransmission whenever a retransmission of the request is received."
    // (Completed: the layer's completed table answers, see `park`.)
    if (this._state === 'proceeding' && this.#lastResponse) this.transmit(this.#lastBytes!, this.#router!.route(this.#lastResponse));
  }

  /**
   * Sends a response from the TU. Returns false when the machine discards it: §17.2.2 "Any other final
   * responses passed by the TU to the server transaction MUST be discarded while in the "Completed" state."
   */
  respond(response: SipResponse): boolean {
    const s = this._state;
    if (s === 'completed' || s === 'terminated') return false;
    const bytes = serializeMessage(response);
    const route = this.#router!.route(response);
    this.#lastBytes = bytes;
    if (response.status < 200) {
      // "While in the "Trying" state, if the TU passes a provisional response to the server transaction,
      // the server transaction MUST enter the "Proceeding" state."
      this.#lastResponse = response;
      if (s === 'trying') this.move(NEXT, 'proceeding');
      this.transmit(bytes, route);
      return true;
    }
    // "If the TU passes a final response (status codes 200-699) to the server while in the "Proceeding"
    // state, the transaction MUST enter the "Completed" state, and the response MUST be passed to the
    // transport layer for transmission." (Same from Trying.)
    // Completed absorbs retransmissions with the bytes and their route only: over UDP the layer's
    // completed table keeps them (a record, not this object); the request, its context, the router and
    // the parsed response go now.
    this.#lastBytes = undefined;
    this.#lastResponse = undefined;
    this.move(NEXT, 'completed');
    this.transmit(bytes, route);
    this.#context = undefined;
    this.#router = undefined;
    this.releaseRequest();
    if (this._state !== 'completed') return true; // the send failed at once (§17.2.4)
    // "When the server transaction enters the "Completed" state, it MUST set Timer J to fire in 64*T1
    // seconds for unreliable transports, and zero seconds for reliable transports."
    if (this.reliable) this.startTimer('J', 0);
    else this.park(bytes, route);
    return true;
  }
}
