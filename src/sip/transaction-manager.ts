// The transaction layer (RFC 3261 §17, §18): bytes in from any transport → parse → validate → stamp the
// top Via (§18.2.1, RFC 3581) → match responses to client transactions (§17.1.3) and requests to server
// transactions (§17.2.3, ACK for a non-2xx included) → otherwise create a server transaction and hand it
// to the TU. Client transactions are started by the TU with a Route. Not safe for concurrent use from
// several threads (one event loop owns it).
import { createResponse } from './builders.ts';
import { ClientInviteTransaction } from './client-invite.ts';
import { ClientNonInviteTransaction } from './client-non-invite.ts';
import { systemClock, type Clock } from './clock.ts';
import { SipError, SipParseError } from './errors.ts';
import type { HeaderField, SipMessage, SipRequest, SipResponse } from './message.ts';
import { isKeepAlive, parseMessageOrThrow, type ParseLimits } from './parser.ts';
import { defaultResponseRoute, type Route } from './response-routing.ts';
import { serializeMessage } from './serializer.ts';
import { ServerInviteTransaction } from './server-invite.ts';
import { ServerNonInviteTransaction } from './server-non-invite.ts';
import { ResponseRouter, type ResponseRoutePolicy } from './server-routing.ts';
import { DEFAULT_TIMER_CONFIG, type TimerConfig } from './timers.ts';
import { TimerQueues } from './timer-queues.ts';
import { ByteArena } from './byte-arena.ts';
import { CompletedTable } from './completed-table.ts';
import type { ClientTransactionUser, Transaction, TransactionDeps } from './transaction.ts';
import { transactionTimers } from './timers.ts';
import type { ReceiveContext } from './transport.ts';
import { rememberViaLine, validateRequest, validateResponse, type RequestInfo } from './validate.ts';
import { BRANCH_MAGIC_COOKIE, formatVia, parseVia, sentByKey, stampVia, viaBranch } from './via.ts';
import { tagOf } from './name-addr.ts';
import { containFault, guard } from '../util/guard.ts';

/** Either kind of client transaction. */
export type ClientTransaction = ClientNonInviteTransaction | ClientInviteTransaction;
/** Either kind of server transaction. */
export type ServerTransaction = ServerNonInviteTransaction | ServerInviteTransaction;

/** A message the layer could not accept. */
export interface MalformedMessage {
  readonly error: SipParseError;
  /** Octets received. */
  readonly length: number;
  readonly context: ReceiveContext;
  /** As much of the message as parsed (absent when even the head did not). */
  readonly message?: SipMessage;
  /** True when the layer answered it (400, or 505 for a version error). */
  readonly answered: boolean;
}

/** The transaction user above the layer (UA core, proxy core, the P-CSCF). */
export interface TransactionLayerUser {
  /** A new request: its server transaction is created; answer with tx.respond(). */
  onRequest(tx: ServerTransaction, request: SipRequest, context: ReceiveContext): void;
  /** An ACK for a 2xx: it has no transaction of its own (§17.1.1.3, §13.3.1.4); absorbed non-2xx ACKs never come here. */
  onAck?(ack: SipRequest, context: ReceiveContext): void;
  /** §18.1.2: a response matching no client transaction "MUST be passed to the core" (e.g. a retransmitted 2xx). */
  onStrayResponse?(response: SipResponse, context: ReceiveContext): void;
  onMalformed?(info: MalformedMessage): void;
}

/** Options of the transaction layer (`TransactionLayer`). */
export interface TransactionLayerOptions {
  readonly user: TransactionLayerUser;
  readonly clock?: Clock;
  readonly timers?: Partial<TimerConfig>;
  readonly limits?: Partial<ParseLimits>;
  /** Where responses of server transactions go unless a transaction overrides it (default: RFC 3261 §18.2.2 + RFC 3581). */
  readonly responseRoute?: ResponseRoutePolicy;
  /** Add received/rport to the top Via of requests (§18.2.1, RFC 3581 §4). Default true. */
  readonly stampVia?: boolean;
  /** Answer malformed requests with 400 (505 for a SIP version) when a response can be routed. Default true. */
  readonly rejectMalformed?: boolean;
  /**
   * At most this many completed non-INVITE transactions per side (server: Timer J, client: Timer K) are
   * kept to absorb retransmissions; beyond, the oldest ends early (counted in `completedEvictions`).
   * Default 262,144 per side (32 s of Timer J at 8,000 transactions/s).
   */
  readonly maxCompleted?: number;
  /**
   * Default true: a TU listening for ends (onTerminated/onStateChange) hears when Timer J/K ends a
   * completed non-INVITE transaction, so the layer keeps that transaction's object until then. false:
   * such a TU hears of ends only for transactions that end before completing (Timer F, a transport
   * error, close) or whose final response fails to go out, and the layer keeps a record alone per
   * completed transaction: for TUs whose end handlers only clean up what a final response already did.
   */
  readonly tellCompletedEnd?: boolean;
}

/** Default `maxCompleted`. */
export const DEFAULT_MAX_COMPLETED = 262_144;

/** The RFC 3261 §17 transaction layer over any `SipTransport`: matches requests and responses to transactions (§17.1.3, §17.2.3), absorbs retransmissions, and hands new requests and stray responses to the core. */
export class TransactionLayer {
  private readonly clients = new Map<string, ClientTransaction>();
  private readonly servers = new Map<string, ServerTransaction>();
  private readonly clock: Clock;
  private readonly timerConfig: TimerConfig;
  /** The transactions' timers fire through a boundary whatever clock was given (virtual time too). */
  private readonly guardedClock: Clock;
  /** What every client / server transaction is given (shared: no object per transaction). */
  private readonly clientDeps: TransactionDeps;
  private readonly serverDeps: TransactionDeps;
  private readonly completedClients: CompletedTable;
  private readonly completedServers: CompletedTable;

  constructor(private readonly options: TransactionLayerOptions) {
    this.clock = options.clock ?? systemClock;
    this.timerConfig = { ...DEFAULT_TIMER_CONFIG, ...options.timers };
    const clock = this.clock;
    this.guardedClock = { now: () => clock.now(), setTimer: (ms, fn) => clock.setTimer(ms, guard('sip.timer', fn)) };
    const timers = new TimerQueues(this.guardedClock);
    const arena = new ByteArena();
    // Over UDP a non-INVITE transaction in Completed is a record of these (Timer J, K are constants).
    const udp = transactionTimers(false, this.timerConfig);
    const cap = options.maxCompleted ?? DEFAULT_MAX_COMPLETED;
    this.completedClients = new CompletedTable(this.guardedClock, { delayMs: udp.K, cap });
    this.completedServers = new CompletedTable(this.guardedClock, { delayMs: udp.J, cap });
    this.clientDeps = this.deps(this.clients, timers, arena, this.completedClients);
    this.serverDeps = this.deps(this.servers, timers, arena, this.completedServers);
  }

  /** Client transactions, those in Completed (Timer K) included. */
  get clientTransactionCount(): number {
    return this.clients.size + this.completedClients.size;
  }

  /** Server transactions, those in Completed (Timer J) included. */
  get serverTransactionCount(): number {
    return this.servers.size + this.completedServers.size;
  }

  /** Completed transactions ended before their Timer J/K because `maxCompleted` was reached. */
  get completedEvictions(): number {
    return this.completedClients.evictions + this.completedServers.evictions;
  }

  /**
   * The entry point for transports: one datagram or one framed stream message. Never throws: bad
   * input is reported to onMalformed, and a bug below or in the TU is contained here (issue 10 §4),
   * counted under 'sip.receive', so the next message is served.
   */
  receive(bytes: Uint8Array, context: ReceiveContext): void {
    try {
      if (isKeepAlive(bytes)) return; // RFC 5626 §3.5.1 CRLF keep-alive: not a message
      let msg: SipMessage;
      try {
        msg = parseMessageOrThrow(bytes, this.options.limits);
      } catch (e) {
        // parseMessage's contract without its closure and result object per message: a
        // SipParseError is bad input, anything else a bug (contained below).
        if (!(e instanceof SipParseError)) throw e;
        return this.malformed(e, bytes.length, context, e.partial);
      }
      this.receiveMessage(msg, context, bytes.length);
    } catch (e) {
      containFault('sip.receive', e, bytes.length);
    }
  }

  /** For callers that parsed already (e.g. a proxy re-injecting a message). */
  receiveMessage(msg: SipMessage, context: ReceiveContext, length = 0): void {
    if (msg.kind === 'response') this.receiveResponse(msg, context, length);
    else this.receiveRequest(msg, context, length);
  }

  private receiveResponse(res: SipResponse, context: ReceiveContext, length: number): void {
    const v = validateResponse(res);
    if (!v.ok) return this.malformed(v.error, length, context, res);
    // §17.1.3: match on the top Via branch and the CSeq method.
    const key = clientKey(viaBranch(v.info.vias[0]!) ?? '', v.info.cseq.method);
    const tx = this.clients.get(key);
    if (tx) tx.receiveResponse(res, context);
    // §17.1.2.2: in Completed a retransmitted final is absorbed (until Timer K).
    else if (this.completedClients.find(key) === undefined) this.options.user.onStrayResponse?.(res, context);
  }

  private receiveRequest(req: SipRequest, context: ReceiveContext, length: number): void {
    const v = validateRequest(req);
    if (!v.ok) return this.malformed(v.error, length, context, req);
    let top = v.info.vias[0]!;
    if (this.options.stampVia !== false) {
      const stamped = stampVia(top, context.remote);
      if (stamped !== top) {
        req.headers.replaceFirst('Via', formatVia(stamped));
        top = stamped;
        // The stamped line's parse is `stamped` (a TU forwarding this request validates it again).
        const line = firstLine(req, 'Via');
        if (line !== undefined && line.value.indexOf(',') < 0) rememberViaLine(line, stamped);
      }
    }
    const key = serverKey(req, v.info);
    const existing = this.servers.get(key);
    if (existing === undefined && req.method !== 'ACK') {
      // §17.2.2: "While in the "Completed" state, the server transaction MUST pass the final response to
      // the transport layer for retransmission whenever a retransmission of the request is received."
      const done = this.completedServers.find(key);
      if (done !== undefined) return this.completedServers.resend(done);
    }
    if (req.method === 'ACK') {
      // §17.2.3: an ACK matches the INVITE server transaction it acknowledges (non-2xx). An ACK for a 2xx
      // (its own branch, or the INVITE's while Accepted, RFC 6026 §8.7) is the TU's.
      if (existing instanceof ServerInviteTransaction && existing.state !== 'accepted') existing.receiveRequest(req);
      else this.options.user.onAck?.(req, context);
      return;
    }
    if (existing) {
      // A retransmission: the transaction absorbs it (and resends its last response).
      existing.receiveRequest(req);
      return;
    }
    // The router routes by the top Via as it stands now: parsed already, unless the TU changes it.
    const router = new ResponseRouter(req, context, this.options.responseRoute, { text: req.headers.get('Via')!, via: top });
    const tx =
      req.method === 'INVITE'
        ? new ServerInviteTransaction(key, req, context, router, this.serverDeps)
        : new ServerNonInviteTransaction(key, req, context, router, this.serverDeps);
    this.servers.set(key, tx);
    if (tx instanceof ServerInviteTransaction) tx.start();
    this.options.user.onRequest(tx, req, context);
  }

  /**
   * Starts a client transaction for `request` (its top Via must carry a z9hG4bK branch), sent through
   * `route`. INVITE gets the §17.1.1 machine, anything else but ACK the §17.1.2 one.
   */
  sendRequest(request: SipRequest, route: Route, user: ClientTransactionUser<ClientTransaction>): ClientTransaction {
    if (request.method === 'ACK') throw new SipError('SIP_INVALID_ARGUMENT', 'ACK has no client transaction: send it with sendStateless');
    const v = validateRequest(request);
    if (!v.ok) throw new SipError('SIP_INVALID_ARGUMENT', `request: ${v.error.message}`);
    const branch = viaBranch(v.info.vias[0]!);
    if (!branch?.startsWith(BRANCH_MAGIC_COOKIE))
      throw new SipError('SIP_INVALID_ARGUMENT', `top Via needs a branch starting with ${BRANCH_MAGIC_COOKIE}`);
    const key = clientKey(branch, request.method);
    if (this.clients.has(key) || this.completedClients.find(key) !== undefined)
      throw new SipError('SIP_DUPLICATE_TRANSACTION', `a client transaction for branch ${branch} ${request.method} exists`);
    const tx =
      request.method === 'INVITE'
        ? new ClientInviteTransaction(key, request, route, user, this.clientDeps)
        : new ClientNonInviteTransaction(key, request, route, user, this.clientDeps);
    this.clients.set(key, tx);
    tx.start();
    return tx;
  }

  /** Sends without a transaction: the ACK for a 2xx, a 2xx retransmission by the UAS core, a stateless answer. */
  sendStateless(message: SipMessage, route: Route): Promise<void> {
    return route.transport.send(serializeMessage(message), route.to);
  }

  /** The server transaction a request belongs to, if any (§17.2.3); a non-INVITE one in Completed over UDP is a record of the layer's completed table, not found here. */
  findServerTransaction(request: SipRequest): ServerTransaction | undefined {
    const v = validateRequest(request);
    return v.ok ? this.servers.get(serverKey(request, v.info)) : undefined;
  }

  /** §9.2: the INVITE server transaction a CANCEL targets ("matching … except the method"); undefined → the TU answers 481. */
  findCancelTarget(cancel: SipRequest): ServerInviteTransaction | undefined {
    const v = validateRequest(cancel);
    if (!v.ok) return undefined;
    const tx = this.servers.get(serverKey(cancel, v.info, 'INVITE'));
    return tx instanceof ServerInviteTransaction ? tx : undefined;
  }

  /** Terminates every transaction and cancels their timers. */
  close(): void {
    for (const tx of [...this.clients.values(), ...this.servers.values()]) tx.dispose();
    this.completedClients.clear();
    this.completedServers.clear();
  }

  private deps(table: Map<string, Transaction<string>>, timers: TimerQueues, arena: ByteArena, completed: CompletedTable): TransactionDeps {
    const tell = this.options.tellCompletedEnd !== false;
    return {
      timers,
      arena,
      timerConfig: this.timerConfig,
      completed,
      // Only the transaction filed under its key is forgotten (a parked one is filed no more).
      onTerminated: (tx) => {
        if (table.get(tx.id) === tx) table.delete(tx.id);
      },
      onCompleted: (tx, bytes, route) => {
        if (table.get(tx.id) === tx) table.delete(tx.id);
        // The object is kept (by the record) only for a TU that wants to hear of its end.
        const u = tx.user;
        const listens = tell && (u.onTerminated !== undefined || u.onStateChange !== undefined);
        return completed.add(tx.id, bytes, route?.to, route?.transport, listens ? tx : undefined);
      },
    };
  }

  private malformed(error: SipParseError, length: number, context: ReceiveContext, message?: SipMessage): void {
    let answered = false;
    if (this.options.rejectMalformed !== false && message?.kind === 'request' && message.method !== 'ACK') {
      answered = this.reject(message, error, context);
    }
    this.options.user.onMalformed?.({ error, length, context, ...(message && { message }), answered });
  }

  /** §8.2.2 / §21.4.1: 400 with the reason as phrase (505 for a version); only when a top Via routes it. */
  private reject(req: SipRequest, error: SipParseError, context: ReceiveContext): boolean {
    const top = req.headers.get('Via');
    if (top === undefined || !parseVia(top).ok) return false;
    const status = error.code === 'SIP_BAD_VERSION' ? 505 : 400;
    const reason = status === 505 ? 'Version Not Supported' : `Bad Request (${error.message.replace(/[\r\n]/g, ' ').slice(0, 120)})`;
    const res = createResponse(req, status, reason);
    const route = this.options.responseRoute?.(res, req, context) ?? defaultResponseRoute(res, context);
    this.sendStateless(res, route).catch(() => {});
    return true;
  }
}

// The keys are built with join: a flat string (a template literal makes a tree of cons strings, and
// the key lives in the table as long as the transaction, Timer J included).
function clientKey(branch: string, method: string): string {
  return [branch, method].join('\n');
}

/**
 * §17.2.3: with a z9hG4bK branch, the key is branch + sent-by + method (ACK → INVITE). Otherwise
 * (RFC 2543 peers) DEVIATION: Call-ID, CSeq number, From tag and the top Via's branch and sent-by stand
 * in for the full §17.2.3 comparison (To tag and Request-URI are not compared).
 */
function serverKey(req: SipRequest, info: RequestInfo, method = req.method === 'ACK' ? 'INVITE' : req.method): string {
  const top = info.vias[0]!;
  const branch = viaBranch(top);
  if (branch?.startsWith(BRANCH_MAGIC_COOKIE)) return [branch, sentByKey(top), method].join('\n');
  return `2543\n${info.callId}\n${info.cseq.seq}\n${tagOf(info.from) ?? ''}\n${branch ?? ''}\n${sentByKey(top)}\n${method}`;
}

/** The first line of header `name` (canonical spelling) as stored. */
function firstLine(msg: SipMessage, name: string): HeaderField | undefined {
  for (const f of msg.headers.entries()) if (f.name === name) return f;
  return undefined;
}
