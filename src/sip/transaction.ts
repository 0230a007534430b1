// What the four RFC 3261 §17 machines share: the callbacks to the transaction user (TU), named timers
// on the injected Clock (a firing timer first checks it is still the one that was set), sending through
// a Route with failures reported once (§17.1.4, §17.2.4), and the guarded state move.
// Memory: at a burst of registrations most transactions sit in Completed (Timer J is 32 s), where the
// machines only absorb retransmissions; so each machine releases the request (and whatever else that
// state does not need) when it gets there, and the timers and layer dependencies are shared values.
import { SipError } from './errors.ts';
import type { SipRequest, SipResponse } from './message.ts';
import type { Route } from './response-routing.ts';
import { transactionTimers, type TimerConfig, type TransactionTimers } from './timers.ts';
import type { ReceiveContext, SendFailureSink } from './transport.ts';
import type { QueuedTimer, TimerOwner, TimerQueues } from './timer-queues.ts';
import type { ByteArena } from './byte-arena.ts';
import type { CompletedOwner, CompletedRecord, CompletedTable } from './completed-table.ts';

export type { Route } from './response-routing.ts';

/** Callbacks common to client and server transactions; all optional. */
export interface TransactionUserBase<T> {
  /** Every state change, for logs and tests. */
  onStateChange?(tx: T, from: string, to: string): void;
  /** §17.1.4/§17.2.4: "the client transaction SHOULD inform the TU that a transport failure has occurred". */
  onTransportError?(tx: T, error: Error): void;
  /** Timer F/B (client) or H (server) fired: the transaction failed. */
  onTimeout?(tx: T): void;
  onTerminated?(tx: T): void;
}

/** What a client transaction reports to its user (the TU): provisional and final responses, timeout, transport error. */
export interface ClientTransactionUser<T = unknown> extends TransactionUserBase<T> {
  /** A response the machine passes up (1xx, final; never a retransmission it absorbed). */
  onResponse(response: SipResponse, context: ReceiveContext, tx: T): void;
}

/** Server transactions report through the base callbacks; ACKs for a 2xx reach the layer's onAck. */
export type ServerTransactionUser<T = unknown> = TransactionUserBase<T>;

/** A server transaction's user until the TU sets one: no callbacks (shared and frozen: assign `tx.user`, never mutate it). */
export const NO_CALLBACKS: TransactionUserBase<never> = Object.freeze({});

/** What the layer gives each transaction. */
export interface TransactionDeps {
  /** The layer's timers (one FIFO per delay). */
  readonly timers: TimerQueues;
  /** Where bytes kept for a whole wait timer (a final response for Timer J) are copied. */
  readonly arena: ByteArena;
  readonly timerConfig: TimerConfig;
  /** Called once on reaching Terminated (the layer forgets the transaction, if it still files it). */
  readonly onTerminated: (tx: Transaction<string>) => void;
  /** Where a non-INVITE transaction of this side goes in Completed over an unreliable transport (Timer J or K). */
  readonly completed: CompletedTable;
  /** Files `tx` as completed: the layer forgets the object and keeps the record (see `Transaction.park`). */
  readonly onCompleted: (tx: Transaction<string>, bytes: Uint8Array | undefined, route: Route | undefined) => CompletedRecord;
}

const NO_TIMERS: QueuedTimer[] = [];

export abstract class Transaction<S extends string> implements TimerOwner, SendFailureSink, CompletedOwner {
  protected _state: S;
  protected readonly timers: TransactionTimers;
  #request: SipRequest | undefined;
  /** Timers set by this transaction (at most three at once; an exact-size array); fired or cancelled ones have no owner. */
  private running: QueuedTimer[] = NO_TIMERS;
  /** Set once the transaction sits in the layer's completed table (non-INVITE, unreliable transport). */
  #parked: CompletedRecord | undefined;

  protected constructor(
    /** The matching key (branch, sent-by, method) the layer files the transaction under. */
    readonly id: string,
    request: SipRequest,
    /** True for stream transports (no retransmissions, zero wait timers). */
    readonly reliable: boolean,
    initial: S,
    protected readonly deps: TransactionDeps,
  ) {
    this.#request = request;
    this._state = initial;
    this.timers = transactionTimers(reliable, deps.timerConfig);
  }

  /**
   * The machine's state. A parked transaction (see `park`) reads Terminated from its Timer J/K due time
   * on, whether or not anything told it (the layer holds it only when its TU listens for the end).
   */
  get state(): S {
    const p = this.#parked;
    if (p !== undefined && this._state === ('completed' as S) && !this.deps.completed.isLive(p)) return 'terminated' as S;
    return this._state;
  }

  /**
   * The request that created the transaction, until the machine reaches a state that only absorbs
   * retransmissions (Completed, Confirmed, Accepted, Terminated): it is released there, and reading it
   * then throws SIP_TRANSACTION_RELEASED. A TU that needs the request later keeps it itself.
   */
  get request(): SipRequest {
    const r = this.#request;
    if (r === undefined) throw this.released('request');
    return r;
  }

  /** Drops the request (see `request`). */
  protected releaseRequest(): void {
    this.#request = undefined;
  }

  protected released(what: string): SipError {
    return new SipError(
      'SIP_TRANSACTION_RELEASED',
      `${this.constructor.name}: the ${what} is released once the transaction is ${this._state} (it only absorbs retransmissions then)`,
    );
  }

  /** The TU's callbacks (methods are read when called, so the TU may replace them at any time). */
  abstract user: TransactionUserBase<Transaction<string>>;

  /** One guarded move per machine: `allowed[from]` lists the legal successors. */
  protected move(allowed: Readonly<Record<S, readonly S[]>>, to: S): void {
    const from = this._state;
    if (!allowed[from].includes(to)) {
      throw new SipError('SIP_ILLEGAL_TRANSITION', `${this.constructor.name}: invalid state transition from ${from} to ${to}`);
    }
    this._state = to;
    if (to === ('terminated' as S)) {
      for (const t of this.running) this.deps.timers.cancel(t);
      this.running = NO_TIMERS;
      const p = this.#parked;
      if (p !== undefined) this.deps.completed.remove(p);
    }
    this.user.onStateChange?.(this, from, to);
    if (to === ('terminated' as S)) {
      this.deps.onTerminated(this);
      this.user.onTerminated?.(this);
      this.#request = undefined;
    }
  }

  /** (Re)starts the named timer: `onTimer(name)` runs after ms, at once for 0 ms (a reliable transport's zero timer). */
  protected startTimer(name: string, ms: number): void {
    this.cancelTimer(name);
    if (ms <= 0) {
      this.onTimer(name);
      return;
    }
    const t = this.deps.timers.set(this, name, ms);
    let live = 0;
    for (const x of this.running) if (x.owner !== undefined) live++;
    const next = new Array<QueuedTimer>(live + 1);
    let i = 0;
    for (const x of this.running) if (x.owner !== undefined) next[i++] = x;
    next[i] = t;
    this.running = next;
  }

  protected cancelTimer(name: string): void {
    for (const t of this.running) if (t.name === name && t.owner !== undefined) this.deps.timers.cancel(t);
  }

  /**
   * Completed over an unreliable transport (non-INVITE machines): instead of a Timer J/K of its own,
   * the transaction becomes a record of the layer's completed table, which absorbs retransmissions
   * (resending `bytes` to `route` for a server transaction) until the timer's due time. The layer
   * then forgets this object; the record refers to it only if the TU listens for its end
   * (onTerminated or onStateChange), to move it to Terminated at Timer J/K as before.
   */
  protected park(bytes: Uint8Array | undefined, route: Route | undefined): void {
    this.running = NO_TIMERS; // only fired or cancelled ones are left (E, F of a client)
    this.#parked = this.deps.onCompleted(this, bytes, route);
  }

  /** The completed table ended this transaction's record (its Timer J/K; for the table, not TUs). */
  onCompletedEnd(): void {
    this.#parked = undefined;
    if (this._state === ('completed' as S)) this.move(this.next, 'terminated' as S);
  }

  /** A timer of this transaction fired (called by the layer's timer queues; not for TUs). */
  abstract onTimer(name: string): void;

  /** Names of the timers now running (for tests and diagnostics). */
  get activeTimers(): string[] {
    const names = this.running.filter((t) => t.owner !== undefined).map((t) => t.name);
    const p = this.#parked;
    if (p !== undefined && this._state === ('completed' as S) && this.deps.completed.isLive(p)) names.push(this.parkedTimer);
    return names.sort();
  }

  /** The name of the wait timer a parked transaction stands for (J or K). */
  protected get parkedTimer(): string {
    return '';
  }

  /** Sends through the route; a failure (sync or async) is reported once and ends the transaction. */
  protected transmit(bytes: Uint8Array, route: Route): void {
    const t = route.transport;
    // The fast path: no Promise and no callback per message; the transaction is the failure sink.
    if (t.post !== undefined) return t.post(bytes, route.to, this);
    let p: Promise<void>;
    try {
      p = route.transport.send(bytes, route.to);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.catch((e: unknown) => this.transportFailed(e));
  }

  /** A send through `post` failed (SendFailureSink; for transports, not TUs). */
  sendFailed(error: Error): void {
    this.transportFailed(error);
  }

  private transportFailed(e: unknown): void {
    if (this._state === ('terminated' as S)) return;
    const error = e instanceof Error ? e : new SipError('SIP_TRANSPORT_FAILED', String(e));
    this.user.onTransportError?.(this, error);
    if (this._state !== ('terminated' as S)) this.terminateOnError();
  }

  /** The machine's legal successors per state (each machine's table; every state may end in Terminated). */
  protected abstract readonly next: Readonly<Record<S, readonly S[]>>;

  /** §17.1.4 / §17.2.4: the machine "SHOULD transition directly to the Terminated state". */
  protected terminateOnError(): void {
    this.move(this.next, 'terminated' as S);
  }

  /** Stops every timer and moves to Terminated without telling the TU anything else (layer shutdown). */
  dispose(): void {
    if (this._state !== ('terminated' as S)) this.move(this.next, 'terminated' as S);
  }

  /** Whether the layer's completed table holds this transaction's record (for the layer). */
  get parked(): boolean {
    return this.#parked !== undefined;
  }
}
