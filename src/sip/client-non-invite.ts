// The non-INVITE client transaction, RFC 3261 §17.1.2 (Figure 6). Sends the request, retransmits it
// on Timer E over unreliable transports, gives up on Timer F, absorbs retransmitted finals in
// Completed until Timer K.
//
//                      |Request from TU; send request; start F (and E if unreliable)
//   Timer E: send  +-----------+
//   request  ----> |  Trying   |---- Timer F or transport error: inform TU --+
//                  +-----------+                                            |
//          1xx to TU |      | 200-699 to TU                                 |
//                    V      |                                               |
//   Timer E: send  +-----------+                                            |
//   request  ----> |Proceeding |---- Timer F or transport error ------------+
//                  +-----------+                                            |
//          200-699 to TU |                                                  |
//                        V                                                  |
//                  +-----------+ Timer K                                    |
//                  | Completed |------------------> Terminated <------------+
//                  +-----------+
import { serializeMessage } from './serializer.ts';
import type { SipRequest, SipResponse } from './message.ts';
import { Transaction, type ClientTransactionUser, type Route, type TransactionDeps } from './transaction.ts';
import type { ReceiveContext } from './transport.ts';

/** States of the non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6). */
export type ClientNonInviteState = 'trying' | 'proceeding' | 'completed' | 'terminated';

const NEXT: Readonly<Record<ClientNonInviteState, readonly ClientNonInviteState[]>> = {
  trying: ['proceeding', 'completed', 'terminated'],
  proceeding: ['completed', 'terminated'],
  completed: ['terminated'],
  terminated: [],
};

/** The non-INVITE client transaction (RFC 3261 §17.1.2): retransmits on Timer E, times out on Timer F, absorbs retransmitted responses in completed (Timer K). */
export class ClientNonInviteTransaction extends Transaction<ClientNonInviteState> {
  protected readonly next = NEXT;
  /** The request's bytes and route, for Timer E; Completed needs neither (the layer's key absorbs retransmitted finals). */
  #bytes: Uint8Array | undefined;
  #route: Route | undefined;
  private intervalE: number;

  constructor(
    id: string,
    request: SipRequest,
    route: Route,
    public user: ClientTransactionUser<ClientNonInviteTransaction>,
    deps: TransactionDeps,
  ) {
    super(id, request, route.transport.protocol === 'tcp', 'trying', deps);
    this.#bytes = serializeMessage(request);
    this.#route = route;
    this.intervalE = this.timers.E;
  }

  /** Where the request goes; released with it in Completed. */
  get route(): Route {
    const r = this.#route;
    if (r === undefined) throw this.released('route');
    return r;
  }

  /** §17.1.2.2: "The "Trying" state is entered when the TU initiates a new client transaction with a request." */
  start(): void {
    this.transmit(this.#bytes!, this.#route!);
    // "the client transaction MUST set timer F to fire in 64*T1 seconds"
    this.startTimer('F', this.timers.F);
    // "If an unreliable transport is in use, the client transaction MUST set timer E to fire in T1 seconds."
    if (!this.reliable) this.startTimer('E', this.intervalE);
  }

  /** Timer E: retransmit; F: give up; K: leave Completed. */
  onTimer(name: string): void {
    if (name === 'E') this.timerE();
    else if (name === 'F') this.timerF();
    else if (name === 'K') this.move(NEXT, 'terminated');
  }

  protected override get parkedTimer(): string {
    return 'K';
  }

  private timerE(): void {
    if (this._state === 'trying') {
      // "If timer E fires while still in this state, the timer is reset, but this time with a value of MIN(2*T1, T2)."
      this.intervalE = Math.min(2 * this.intervalE, this.timers.T2);
    } else if (this._state === 'proceeding') {
      // "If Timer E fires while in the "Proceeding" state, the request MUST be passed to the transport
      // layer for retransmission, and Timer E MUST be reset with a value of T2 seconds."
      this.intervalE = this.timers.T2;
    } else {
      return;
    }
    this.transmit(this.#bytes!, this.#route!);
    this.startTimer('E', this.intervalE);
  }

  private timerF(): void {
    if (this._state !== 'trying' && this._state !== 'proceeding') return;
    // "If Timer F fires while the client transaction is still in the "Trying" state, the client transaction
    // SHOULD inform the TU about the timeout, and then it SHOULD enter the "Terminated" state." (Same in Proceeding.)
    this.user.onTimeout?.(this);
    this.move(NEXT, 'terminated');
  }

  receiveResponse(response: SipResponse, context: ReceiveContext): void {
    const s = this._state;
    if (s === 'completed' || s === 'terminated') return; // retransmitted final: absorbed
    if (response.status < 200) {
      // "If a provisional response is received while in the "Trying" state, the response MUST be passed
      // to the TU, and then the client transaction SHOULD move to the "Proceeding" state."
      if (s === 'trying') this.move(NEXT, 'proceeding');
      this.user.onResponse(response, context, this);
      return;
    }
    // "If a final response (status codes 200-699) is received while in the "Trying"/"Proceeding" state,
    // the response MUST be passed to the TU, and the client transaction MUST transition to the "Completed" state."
    this.cancelTimer('E');
    this.cancelTimer('F');
    // Completed absorbs retransmitted finals by the key alone: nothing else is kept.
    this.#bytes = undefined;
    this.#route = undefined;
    this.releaseRequest();
    this.move(NEXT, 'completed');
    this.user.onResponse(response, context, this);
    // "Once the client transaction enters the "Completed" state, it MUST set Timer K to fire in T4 seconds
    // for unreliable transports, and zero seconds for reliable transports." Over UDP the layer's completed
    // table stands for the transaction and its Timer K (a record: the key only).
    if (this._state !== 'completed') return;
    if (this.reliable) this.startTimer('K', 0);
    else this.park(undefined, undefined);
  }
}
