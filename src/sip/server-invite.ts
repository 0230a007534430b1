// The INVITE server transaction, RFC 3261 §17.2.1 (Figure 7) with RFC 6026 §8.7 (Accepted, Timer L).
// Sends 100 Trying when the TU stays silent for 200 ms, retransmits a non-2xx final on Timer G until the
// ACK (→ Confirmed, Timer I) or Timer H; after a 2xx it waits in Accepted, absorbing INVITE retransmissions.
//
//                      |INVITE received; pass to TU; 100 Trying unless the TU answers within 200 ms
//   INVITE: resend  +-----------+ 2xx from TU: send                +----------+ 2xx from TU: send
//   last 1xx  ----> |Proceeding |--------------------------------->| Accepted | ACK: to TU (by the layer)
//   1xx from TU --> +-----------+                                  +----------+ INVITE: absorbed
//                 300-699 from TU: send |                        Timer L |
//                                       V                                |
//   INVITE: resend  +-----------+ Timer H: inform TU                     |
//   final; Timer G: | Completed |-------------------------+              |
//   resend final    +-----------+                         |              |
//                             ACK |                       V              V
//                                 V          Timer I   +------------+
//                           +-----------+ ------------>| Terminated |
//                           | Confirmed |              +------------+
//                           +-----------+ (ACK: absorbed)
import { createResponse } from './builders.ts';
import { serializeMessage } from './serializer.ts';
import type { SipRequest, SipResponse } from './message.ts';
import { TRYING_DELAY_MS } from './timers.ts';
import { NO_CALLBACKS, Transaction, type ServerTransactionUser, type TransactionDeps } from './transaction.ts';
import type { ReceiveContext } from './transport.ts';
import type { ServerNonInviteTransaction } from './server-non-invite.ts';
import type { ResponseRouter, RouteOverride } from './server-routing.ts';
import type { Route } from './response-routing.ts';

/** States of the INVITE server transaction (RFC 3261 §17.2.1, Figure 7; RFC 6026 adds accepted). */
export type ServerInviteState = 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';

const NEXT: Readonly<Record<ServerInviteState, readonly ServerInviteState[]>> = {
  proceeding: ['completed', 'accepted', 'terminated'],
  completed: ['confirmed', 'terminated'],
  confirmed: ['terminated'],
  accepted: ['terminated'],
  terminated: [],
};

/** The INVITE server transaction (RFC 3261 §17.2.1 with RFC 6026): 100 Trying, retransmits non-2xx finals on Timer G until the ACK. */
export class ServerInviteTransaction extends Transaction<ServerInviteState> {
  protected readonly next = NEXT;
  /** Set by the TU (typically in onRequest); one type for both server machines. */
  user: ServerTransactionUser<ServerNonInviteTransaction | ServerInviteTransaction> = NO_CALLBACKS;
  #context: ReceiveContext | undefined;
  /** Kept in Accepted too: RFC 6026 §8.7 has the TU's 2xx retransmissions routed through the transaction. */
  #router: ResponseRouter | undefined;
  /** The last response sent while Proceeding (a retransmitted 1xx is routed again). */
  #lastResponse: SipResponse | undefined;
  #lastBytes: Uint8Array | undefined;
  /** Completed/Confirmed: the non-2xx final's route; with #lastBytes, what Timer G and retransmitted INVITEs need. */
  #finalRoute: Route | undefined;
  private intervalG: number;

  constructor(id: string, request: SipRequest, context: ReceiveContext, router: ResponseRouter, deps: TransactionDeps) {
    super(id, request, context.protocol === 'tcp', 'proceeding', deps);
    this.#context = context;
    this.#router = router;
    this.intervalG = this.timers.G;
  }

  /** Where the INVITE came from; released with the request once a final response is sent. */
  get context(): ReceiveContext {
    const c = this.#context;
    if (c === undefined) throw this.released('receive context');
    return c;
  }

  setResponseRoute(route: RouteOverride | undefined): void {
    this.#router?.set(route);
  }

  /** The last provisional response sent while Proceeding; undefined after the final response (only a non-2xx final's bytes are kept). */
  get lastResponse(): SipResponse | undefined {
    return this.#lastResponse;
  }

  /** Entered on creation; the TU is handed the INVITE right after this. */
  start(): void {
    // §17.2.1: "the server transaction MUST generate a 100 (Trying) response unless it knows that the TU
    // will generate a provisional or final response within 200 ms, in which case it MAY generate a 100".
    this.startTimer('trying', TRYING_DELAY_MS);
  }

  private timerTrying(): void {
    if (this._state === 'proceeding' && !this.#lastBytes) this.respond(createResponse(this.request, 100));
  }

  /** 'trying': send 100 Trying; G: retransmit the final; H: give up waiting for the ACK; I (Confirmed), L (Accepted): end. */
  onTimer(name: string): void {
    if (name === 'trying') this.timerTrying();
    else if (name === 'G') this.timerG();
    else if (name === 'H') this.timerH();
    else if (name === 'I' || name === 'L') this.move(NEXT, 'terminated');
  }

  /** A retransmitted INVITE, or an ACK with this transaction's branch (ACK for a non-2xx). */
  receiveRequest(request: SipRequest): void {
    const s = this._state;
    if (request.method === 'ACK') {
      if (s === 'completed') {
        // "If an ACK is received while the server transaction is in the "Completed" state, the server
        // transaction MUST transition to the "Confirmed" state. As Timer G is ignored in this state, any
        // retransmissions of the response will cease." Timer I: T4 (unreliable) or zero (reliable).
        this.cancelTimer('G');
        this.cancelTimer('H');
        this.move(NEXT, 'confirmed');
        this.startTimer('I', this.timers.I);
      }
      // Confirmed: "any ACKs that are received are absorbed without changing state". (In Accepted the
      // layer hands ACKs to the TU's onAck itself, RFC 6026 §8.7, so they never reach this point.)
      return;
    }
    // "If a request retransmission is received while in the "Proceeding" state, the most recent provisional
    // response that was received from the TU MUST be passed to the transport layer for retransmission."
    // "while in the "Completed" state, if a request retransmission is received, the server SHOULD pass the
    // response to the transport for retransmission." RFC 6026 §8.7: absorbed in Accepted.
    if (s === 'completed' && this.#finalRoute) this.transmit(this.#lastBytes!, this.#finalRoute);
    else if (s === 'proceeding' && this.#lastResponse) this.transmit(this.#lastBytes!, this.#router!.route(this.#lastResponse));
  }

  /** Sends a response from the TU; returns false when the machine discards it. */
  respond(response: SipResponse): boolean {
    const s = this._state;
    const status = response.status;
    if (s === 'accepted') {
      // RFC 6026 §8.7: "the server transaction MUST pass any 2xx responses from the TU to the transport layer".
      if (status < 200 || status >= 300) return false;
      this.transmit(serializeMessage(response), this.#router!.route(response));
      return true;
    }
    if (s !== 'proceeding') return false;
    this.cancelTimer('trying');
    const bytes = serializeMessage(response);
    const route = this.#router!.route(response);
    this.#lastResponse = response;
    this.#lastBytes = bytes;
    // "The TU passes any number of provisional responses to the server transaction. So long as the server
    // transaction is in the "Proceeding" state, each of these MUST be passed to the transport layer".
    if (status < 200) {
      this.transmit(bytes, route);
      return true;
    }
    if (status < 300) {
      // RFC 6026 §8.7: "If, while in the "Proceeding" state, the TU passes a 2xx response to the server
      // transaction, the server transaction MUST pass this response to the transport layer for transmission
      // … and MUST transition to the "Accepted" state" (Timer L: 64*T1).
      this.#lastResponse = undefined;
      this.#lastBytes = undefined;
      this.move(NEXT, 'accepted');
      this.transmit(bytes, route);
      this.#context = undefined;
      this.releaseRequest(); // the router keeps what routing the TU's 2xx retransmissions needs
      if (this._state === 'accepted') this.startTimer('L', this.timers.L);
      return true;
    }
    // "While in the "Proceeding" state, if the TU passes a response with status code from 300 to 699 to the
    // server transaction, the response MUST be passed to the transport layer for transmission, and the state
    // machine MUST enter the "Completed" state. For unreliable transports, timer G is set to fire in T1
    // seconds … For any transport, timer H MUST be set to fire in 64*T1 seconds."
    // Completed keeps the bytes and their route only (Timer G, retransmitted INVITEs).
    this.#finalRoute = route;
    this.#lastBytes = this.deps.arena.keep(bytes); // kept until the ACK or Timer H: packed with its peers
    this.#lastResponse = undefined;
    this.move(NEXT, 'completed');
    this.transmit(bytes, route);
    this.#context = undefined;
    this.#router = undefined;
    this.releaseRequest();
    if (this._state !== 'completed') return true;
    if (!this.reliable) this.startTimer('G', this.intervalG);
    this.startTimer('H', this.timers.H);
    return true;
  }

  private timerG(): void {
    if (this._state !== 'completed' || !this.#finalRoute) return;
    // "If timer G fires, the response is passed to the transport layer once more for retransmission, and
    // timer G is set to fire in MIN(2*T1, T2) seconds. From then on, when timer G fires, the response is
    // passed to the transport again for transmission, and timer G is reset with a value that doubles,
    // unless that value exceeds T2, in which case it is reset with the value of T2."
    this.transmit(this.#lastBytes!, this.#finalRoute);
    this.intervalG = Math.min(2 * this.intervalG, this.timers.T2);
    this.startTimer('G', this.intervalG);
  }

  private timerH(): void {
    if (this._state !== 'completed') return;
    // "If timer H fires while in the "Completed" state, it implies that the ACK was never received. In this
    // case, the server transaction MUST transition to the "Terminated" state, and MUST indicate to the TU
    // that a transaction failure has occurred."
    this.user.onTimeout?.(this);
    this.move(NEXT, 'terminated');
  }
}
