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
import { Transaction, type ServerTransactionUser, type TransactionDeps } from './transaction.ts';
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
  user: ServerTransactionUser<ServerNonInviteTransaction | ServerInviteTransaction> = {};
  private last: { bytes: Uint8Array; response: SipResponse } | undefined;

  constructor(
    id: string,
    request: SipRequest,
    /** Where the request came from (and through which transport). */
    readonly context: ReceiveContext,
    /** Decides each response's route; see ServerTransaction.setResponseRoute. */
    readonly router: ResponseRouter,
    deps: TransactionDeps,
  ) {
    super(id, request, context.protocol === 'tcp', 'trying', deps);
  }

  /** Overrides where this transaction's responses go (e.g. the P-CSCF's port_pc → port_us); undefined restores the default. */
  setResponseRoute(route: RouteOverride | undefined): void {
    this.router.set(route);
  }

  /** The last response sent, if any. */
  get lastResponse(): SipResponse | undefined {
    return this.last?.response;
  }

  /** A retransmission of the request (matched by the layer). */
  receiveRequest(_request: SipRequest): void {
    // §17.2.2: "Once in the "Trying" state, any further request retransmissions are discarded."
    // "If a retransmission of the request is received while in the "Proceeding" state, the most recently
    // sent provisional response MUST be passed to the transport layer for retransmission."
    // "While in the "Completed" state, the server transaction MUST pass the final response to the
    // transport layer for retransmission whenever a retransmission of the request is received."
    if ((this._state === 'proceeding' || this._state === 'completed') && this.last) this.send(this.last.response, this.last.bytes);
  }

  /**
   * Sends a response from the TU. Returns false when the machine discards it: §17.2.2 "Any other final
   * responses passed by the TU to the server transaction MUST be discarded while in the "Completed" state."
   */
  respond(response: SipResponse): boolean {
    const s = this._state;
    if (s === 'completed' || s === 'terminated') return false;
    const bytes = serializeMessage(response);
    this.last = { bytes, response };
    if (response.status < 200) {
      // "While in the "Trying" state, if the TU passes a provisional response to the server transaction,
      // the server transaction MUST enter the "Proceeding" state."
      if (s === 'trying') this.move(NEXT, 'proceeding');
      this.send(response, bytes);
      return true;
    }
    // "If the TU passes a final response (status codes 200-699) to the server while in the "Proceeding"
    // state, the transaction MUST enter the "Completed" state, and the response MUST be passed to the
    // transport layer for transmission." (Same from Trying.)
    this.move(NEXT, 'completed');
    this.send(response, bytes);
    // "When the server transaction enters the "Completed" state, it MUST set Timer J to fire in 64*T1
    // seconds for unreliable transports, and zero seconds for reliable transports."
    if (this._state === 'completed') this.startTimer('J', this.timers.J, () => this.move(NEXT, 'terminated'));
    return true;
  }

  private send(response: SipResponse, bytes: Uint8Array): void {
    this.transmit(bytes, this.router.route(response));
  }
}
