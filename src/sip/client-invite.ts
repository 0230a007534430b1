// The INVITE client transaction, RFC 3261 §17.1.1 (Figure 5) with RFC 6026 §8.4 (Accepted, Timer M).
// Retransmits the INVITE on Timer A (doubling, unreliable only), times out on Timer B, generates the ACK
// for a non-2xx final response itself and re-sends it for each retransmission of that response.
//
//                     |INVITE from TU; send; Timer A (unreliable), Timer B
//   Timer A: send  +-----------+ Timer B or transport error: inform TU
//   INVITE   ----> |  Calling  |-------------------------------------------+
//                  +-----------+ 2xx to TU                                 |
//            1xx to TU |   |  \_____________________________________       |
//                      V   | 300-699: ACK, to TU                    \      |
//   1xx to TU      +-----------+ 2xx to TU                           V     |
//            ----> |Proceeding |--------------------------------> Accepted |
//                  +-----------+                                 (2xx to TU; Timer M)
//       300-699: ACK, to TU |                                          |   |
//                           V                                          |   |
//   300-699: resend ACK +-----------+ Timer D                          |   |
//                 ----> | Completed |-------------> Terminated <-------+---+
//                       +-----------+
import { createAck } from './builders.ts';
import { serializeMessage } from './serializer.ts';
import type { SipRequest, SipResponse } from './message.ts';
import { Transaction, type ClientTransactionUser, type Route, type TransactionDeps } from './transaction.ts';
import type { ReceiveContext } from './transport.ts';

/** States of the INVITE client transaction (RFC 3261 §17.1.1, Figure 5; RFC 6026 adds accepted). */
export type ClientInviteState = 'calling' | 'proceeding' | 'completed' | 'accepted' | 'terminated';

const NEXT: Readonly<Record<ClientInviteState, readonly ClientInviteState[]>> = {
  calling: ['proceeding', 'completed', 'accepted', 'terminated'],
  proceeding: ['completed', 'accepted', 'terminated'],
  completed: ['terminated'],
  accepted: ['terminated'],
  terminated: [],
};

/** The INVITE client transaction (RFC 3261 §17.1.1 with RFC 6026): retransmits on Timer A, times out on Timer B, ACKs non-2xx finals. */
export class ClientInviteTransaction extends Transaction<ClientInviteState> {
  protected readonly next = NEXT;
  /** The INVITE's bytes for Timer A; released with the request once a final response arrives. */
  #bytes: Uint8Array | undefined;
  private intervalA: number;
  private ackBytes: Uint8Array | undefined;

  constructor(
    id: string,
    request: SipRequest,
    readonly route: Route,
    public user: ClientTransactionUser<ClientInviteTransaction>,
    deps: TransactionDeps,
  ) {
    super(id, request, route.transport.protocol === 'tcp', 'calling', deps);
    this.#bytes = serializeMessage(request);
    this.intervalA = this.timers.A;
  }

  /** §17.1.1.2: "The initial state, "calling", MUST be entered when the TU initiates a new client transaction with an INVITE request." */
  start(): void {
    this.transmit(this.#bytes!, this.route);
    if (!this.reliable) this.startTimer('A', this.intervalA);
    this.startTimer('B', this.timers.B);
  }

  /** Timer A: retransmit; B: give up; D (Completed), M (Accepted): end. */
  onTimer(name: string): void {
    if (name === 'A') this.timerA();
    else if (name === 'B') this.timerB();
    else if (name === 'D' || name === 'M') this.move(NEXT, 'terminated');
  }

  private timerA(): void {
    if (this._state !== 'calling') return;
    // "When timer A fires, the client transaction MUST retransmit the request … and reset the timer with a
    // value of 2*T1. … When timer A fires 2*T1 seconds later, the request MUST be retransmitted again".
    this.transmit(this.#bytes!, this.route);
    this.intervalA *= 2;
    this.startTimer('A', this.intervalA);
  }

  private timerB(): void {
    if (this._state !== 'calling') return;
    // "If the client transaction is still in the "Calling" state when timer B fires, the client transaction
    // SHOULD inform the TU that a timeout has occurred. The client transaction MUST NOT generate an ACK."
    this.user.onTimeout?.(this);
    this.move(NEXT, 'terminated');
  }

  receiveResponse(response: SipResponse, context: ReceiveContext): void {
    const s = this._state;
    if (s === 'terminated') return;
    if (s === 'completed') {
      // "Any retransmissions of the final response that are received while in the "Completed" state MUST
      // cause the ACK to be re-passed to the transport layer for retransmission, but the newly received
      // response MUST NOT be passed up to the TU."
      if (response.status >= 300 && this.ackBytes) this.transmit(this.ackBytes, this.route);
      return;
    }
    if (s === 'accepted') {
      // RFC 6026 §8.4: "any 2xx responses … MUST be passed up to the TU" while in Accepted.
      if (response.status >= 200 && response.status < 300) this.user.onResponse(response, context, this);
      return;
    }
    if (response.status < 200) {
      // "If the client transaction receives a provisional response while in the "Calling" state, it
      // transitions to the "Proceeding" state. In the "Proceeding" state, the client transaction SHOULD NOT
      // retransmit the request any longer. Furthermore, the provisional response MUST be passed to the TU."
      if (s === 'calling') {
        this.cancelTimer('A');
        this.cancelTimer('B');
        this.move(NEXT, 'proceeding');
      }
      this.user.onResponse(response, context, this);
      return;
    }
    this.cancelTimer('A');
    this.cancelTimer('B');
    this.#bytes = undefined;
    if (response.status < 300) {
      // RFC 6026 §8.4: "If a 2xx response is received while the client INVITE state machine is in the
      // "Calling" or "Proceeding" states, it MUST transition to the "Accepted" state, pass the 2xx response
      // to the TU, and set Timer M to 64*T1." The TU, not the transaction, ACKs a 2xx (§13.2.2.4).
      this.releaseRequest();
      this.move(NEXT, 'accepted');
      this.user.onResponse(response, context, this);
      if (this._state === 'accepted') this.startTimer('M', this.timers.M);
      return;
    }
    // "When in either the "Calling" or "Proceeding" states, reception of a response with status code from
    // 300-699 MUST cause the client transaction to transition to "Completed". The client transaction MUST
    // pass the received response up to the TU, and the client transaction MUST generate an ACK request"
    // — "to the same address, port, and transport to which the original request was sent" (§17.1.1.3).
    // Completed keeps the ACK's bytes and the route only.
    this.ackBytes = this.deps.arena.keep(serializeMessage(createAck(this.request, response)));
    this.releaseRequest();
    this.move(NEXT, 'completed');
    this.user.onResponse(response, context, this);
    this.transmit(this.ackBytes, this.route);
    // "The client transaction SHOULD start timer D when it enters the "Completed" state, with a value of
    // at least 32 seconds for unreliable transports, and a value of zero seconds for reliable transports."
    if (this._state === 'completed') this.startTimer('D', this.timers.D);
  }
}
