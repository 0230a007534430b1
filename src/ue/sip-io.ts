// The UE's SIP plumbing (digest §6.2, ARCHITECTURE "port rules"): one transaction layer fed by the
// unprotected socket and by every protected endpoint (port_uc, port_us; over TCP also a connection
// from port_uc and a listener on port_us); requests out over an SA set pinned per transaction or
// unprotected; unprotected requests dropped (24.229 §5.1.1.x).
import {
  protectedContextOf,
  attachProtected,
  protectedTransport,
  TracedPlain,
  type ProtectedTransport,
} from '../ipsec/backends/sip-endpoint.ts';
import type { IpsecBackend, ProtectedContext, ProtectedEndpoint, ProtectedHandler } from '../ipsec/backends/backend.ts';
import type { SaSet } from '../ipsec/index.ts';
import {
  TransactionLayer,
  formatVia,
  isKeepAlive,
  parseMessage,
  parseVia,
  parseViaOrThrow,
  serializeMessage,
  type Clock,
  type Destination,
  type ReceiveContext,
  type ReceiveHandler,
  type SipMessage,
  type SipRequest,
  type SipResponse,
  type SipTransport,
  type ClientTransaction,
  type ClientTransactionUser,
  type ServerTransaction,
  type TimerConfig,
  type Via,
} from '../sip/index.ts';
import { openUdpTransport } from '../sip/udp-transport.ts';
import type { SipTracer } from '../util/trace.ts';
import { UeError } from './errors.ts';
import type { OpenPlainTransport } from './ue-types.ts';

export type SendOutcome =
  | { readonly kind: 'response'; readonly response: SipResponse; readonly context: ReceiveContext; readonly protectedBy?: ProtectedContext }
  /**
   * A final response in clear text on a protected port or with a protected port's Via, to a request
   * sent over an SA: never given to the transaction layer (it is not accepted as SIP), only
   * reported to a sender that asked for it (the de-registration, whose answer Kamailio 5.6 sends
   * after it deleted its SAs).
   */
  | { readonly kind: 'clear-response'; readonly response: SipResponse; readonly port: number }
  /** Timer F; `tcp`: the request went over TCP because of its size (§18.1.1), not by its registration's flow. */
  | { readonly kind: 'timeout'; readonly tcp?: boolean }
  | { readonly kind: 'transport-error'; readonly error: Error };

export interface SipIoOptions {
  readonly backend: IpsecBackend;
  readonly localIp: string;
  readonly localPort: number;
  readonly clock: Clock;
  readonly timers?: Partial<TimerConfig>;
  readonly trace?: SipTracer;
  /**
   * SIP transport inside the SAs (default 'auto'); tcp needs the backend's openTcp (xfrm). 'auto':
   * UDP, but a request over 1,300 octets goes over TCP when the backend carries TCP (RFC 3261
   * §18.1.1), back on UDP if the connection cannot be made; once a registration went over TCP,
   * every request over its SA set does (the registered flow).
   */
  readonly transport?: 'udp' | 'tcp' | 'auto';
  /** A request that arrived over an SA (normally SA2 at port_us). */
  readonly onRequest: (tx: ServerTransaction, request: SipRequest, pctx: ProtectedContext) => void;
  /** Human-readable notes (dropped messages). */
  readonly note: (text: string) => void;
  /**
   * 'always' (default): the unprotected socket is bound for the UE's whole life. 'on-demand' (load
   * generators): bound by openPlain() for an initial registration and closed by closePlain() after
   * it, so a registered UE holds no file descriptor (its SIP goes over the SAs, digest §6.2).
   */
  readonly plainSocket?: 'always' | 'on-demand';
  /**
   * Userspace backend: hold a plain UDP socket on each protected port to see (and refuse) clear SIP
   * sent there (default true). Load generators turn it off: no descriptor per protected port; a
   * clear answer to a protected port (Kamailio's de-registration 200) is then not seen.
   */
  readonly guardProtectedPorts?: boolean;
  /** Opens the unprotected transport (default: a UDP socket; a MemoryNetwork binding in tests). */
  readonly openPlain?: OpenPlainTransport;
  /** One transaction layer for many UEs (load generators; ignored with `trace`): see SharedTransactions. */
  readonly transactions?: SharedTransactions;
}

/** RFC 3261 §18.1.1: larger requests (path MTU unknown) go over a congestion-controlled transport. */
export const UDP_MAX_REQUEST = 1300;

/**
 * A SipTransport over a protected endpoint (what sip-endpoint.ts protectedTransport makes, untraced):
 * a class, so the UE's endpoints cost no closures. Pinned to `set` when given.
 */
class EndpointTransport implements ProtectedTransport {
  constructor(
    readonly endpoint: ProtectedEndpoint,
    readonly set?: SaSet,
    /** The UE it delivers to (a shared transaction layer finds the UE of a request by it). */
    readonly owner?: SipIoOptions,
  ) {}
  get protocol(): 'udp' {
    return 'udp';
  }
  get local(): { address: string; port: number } {
    return this.endpoint.local;
  }
  async send(bytes: Uint8Array, to: Destination): Promise<void> {
    await this.endpoint.send(bytes, to, this.set ? { set: this.set } : {});
  }
  async close(): Promise<void> {
    this.endpoint.close();
  }
}

const NO_ENDPOINTS: readonly ProtectedEndpoint[] = [];

/** With a shared layer: the UE of each unprotected transport open (an initial registration's), for its notes. */
const plainOwners = new WeakMap<SipTransport, SipIoOptions>();

function ownerOf(ctx: ReceiveContext): SipIoOptions | undefined {
  const t = ctx.transport;
  return t instanceof EndpointTransport ? t.owner : t ? plainOwners.get(t) : undefined;
}

/**
 * One transaction layer for the UEs of a load run (UeOptions.transactions). Transactions are keyed by
 * their branch, so UEs never see each other's; a request arriving over an SA goes to the UE owning
 * the endpoint it came in on. A layer per UE meant, per procedure, a layer built (maps, timer
 * queues, closures) and a clock timer armed per transaction timer; shared, a timer is one record
 * in a FIFO per delay (issue 9: CPU per registration of `imsec load`). close() ends every
 * transaction left (once the UEs are closed).
 */
export class SharedTransactions {
  /** The layer every UE given this object sends and receives through. */
  readonly layer: TransactionLayer;

  constructor(o: { readonly clock: Clock; readonly timers?: Partial<TimerConfig> }) {
    this.layer = new TransactionLayer({
      clock: o.clock,
      ...(o.timers && { timers: o.timers }),
      user: {
        onRequest: (tx, req, ctx) => {
          const pctx = protectedContextOf(ctx);
          // Unprotected requests never get here (the plain socket drops them); keep the guard anyway.
          const owner = ownerOf(ctx);
          if (pctx && owner) owner.onRequest(tx, req, pctx);
        },
        onMalformed: (m) =>
          ownerOf(m.context)?.note(
            `dropped a malformed message from ${m.context.remote.address}:${m.context.remote.port}: ${m.error.message}`,
          ),
      },
    });
  }

  /** Ends every transaction left (their timers too). */
  close(): void {
    this.layer.close();
  }
}

/** Who counts a set's transactions in flight (the UE's SA table): told once when a send's use of the set ends. */
export interface InflightCount {
  end(set: SaSet): void;
}

const NO_SEND_OPTIONS: { readonly clearAnswerEnds?: boolean } = Object.freeze({});

// UeSipIo's entry points for PendingSend only (module-private keys).
const sendEnded = Symbol('sendEnded');
const tcpFlow = Symbol('tcpFlow');
const transactionGone = Symbol('transactionGone');

/**
 * One request sent and its wait (UeSipIo.send), and the client transaction's user: its hooks are
 * prototype methods. A send made ten closures before (two or three sends per registration of a
 * load run: allocation is GC time, issue 9).
 */
class PendingSend implements ClientTransactionUser<ClientTransaction> {
  done = false;
  terminated = false;
  /** Our top Via's branch, while a clear final answer would end the wait. */
  branch: string | undefined;
  /** The request went over TCP because of its size (§18.1.1). */
  bySize = false;

  constructor(
    readonly io: UeSipIo,
    readonly isRegister: boolean,
    readonly set: SaSet | undefined,
    readonly resolve: (o: SendOutcome) => void,
    readonly inflight: InflightCount | undefined,
  ) {}

  finish(o: SendOutcome): void {
    if (this.done) return;
    this.done = true;
    this.io[sendEnded](this);
    this.resolve(o);
  }

  /** The set's use ends (once). */
  gone(): void {
    if (this.terminated) return;
    this.terminated = true;
    if (this.set) this.inflight?.end(this.set);
  }

  failed(e: unknown): void {
    this.gone();
    this.finish({ kind: 'transport-error', error: e instanceof Error ? e : new Error(String(e)) });
  }

  clearAnswer(response: SipResponse, port: number): void {
    this.gone();
    this.finish({ kind: 'clear-response', response, port });
  }

  onResponse(response: SipResponse, context: ReceiveContext): void {
    if (response.status < 200) return;
    if (this.set && this.isRegister && response.status < 300 && context.protocol === 'tcp') this.io[tcpFlow](this.set);
    // The set's use ends with the final response: Completed only absorbs retransmissions
    // (Timer K), and holding an old SA set for them is not what §8 rule 4 asks for.
    this.gone();
    const p = protectedContextOf(context);
    this.finish({ kind: 'response', response, context, ...(p && { protectedBy: p }) });
  }

  onTimeout(): void {
    this.finish({ kind: 'timeout', ...(this.bySize && { tcp: true }) });
  }

  onTransportError(_tx: ClientTransaction, error: Error): void {
    this.finish({ kind: 'transport-error', error });
  }

  onTerminated(): void {
    this.gone();
    // Normally long finished (Timer K after the answer): no Error (and its stack) for nothing.
    if (!this.done) this.finish({ kind: 'transport-error', error: new Error('transaction terminated') });
    this.io[transactionGone]();
  }
}

export class UeSipIo {
  /**
   * Made on first use and let go once it holds no transaction (after a procedure's last one ended):
   * an idle UE keeps no transaction layer (issue 9 §2, bytes per registered UE of imsec load).
   */
  #layer: TransactionLayer | undefined;
  /** What a traced endpoint and a TCP transport feed (the layer as it is at that moment); made on first use. */
  #receiveFn: ReceiveHandler | undefined;
  /** What every untraced endpoint of this UE feeds: one function for all of them. */
  #protectedFn: ProtectedHandler | undefined;
  readonly #opts: SipIoOptions;
  /** The protected endpoints (a few): an array of exactly their number, not a Map (issue 9 §2). */
  #endpoints: readonly ProtectedEndpoint[] = NO_ENDPOINTS;
  // The collections below are made on first use: a load generator holds 100k idle UEs, most of
  // which never need them (issue 9 §2: bytes per registered UE).
  /** Sends under way (close() ends them). */
  #pending: Set<PendingSend> | undefined;
  /** Sends that take a clear final response as their end, by the branch of their top Via. */
  #clearWaiters: Map<string, PendingSend> | undefined;
  /** Userspace backend: plain sockets holding the protected ports, to see (and refuse) clear SIP on them. */
  #guards: Map<number, SipTransport> | undefined;
  /** TCP through the SAs: a client transport on each port_uc, a server one on each port_us. */
  #tcp: Map<number, Promise<SipTransport>> | undefined;
  /**
   * 'auto': the SA sets whose registration (a REGISTER answered 2xx) went over TCP. Every request
   * over such a set stays on TCP, whatever its size: the registered flow is (address, port_uc, TCP)
   * and a P-CSCF may key its contact on it (Kamailio 5.6 refuses UDP requests there: 403).
   */
  #tcpFlows: WeakSet<SaSet> | undefined;
  #plain: SipTransport | undefined;
  #plainOpening: Promise<void> | undefined;
  /** The last unprotected response and its top Via, parsed by #onPlain (see topViaOf). */
  #viaOf: SipResponse | undefined;
  #via: Via | undefined;

  private constructor(opts: SipIoOptions) {
    this.#opts = opts;
  }

  get #receive(): ReceiveHandler {
    return (this.#receiveFn ??= (bytes, ctx) => this.layer.receive(bytes, ctx));
  }

  get #onProtected(): ProtectedHandler {
    return (this.#protectedFn ??= (bytes, pctx) => {
      const endpoint = this.#endpointOn(pctx.local.port);
      if (!endpoint) return; // closed meanwhile
      this.layer.receive(bytes, {
        protocol: 'udp',
        local: pctx.local,
        remote: pctx.remote,
        via: pctx,
        transport: new EndpointTransport(endpoint, undefined, this.#opts),
      });
    });
  }

  #endpointOn(port: number): ProtectedEndpoint | undefined {
    for (const e of this.#endpoints) if (e.local.port === port) return e;
    return undefined;
  }

  /** The transaction layer: the shared one when given (untraced), else this UE's own (made now if there is none). */
  get layer(): TransactionLayer {
    const o = this.#opts;
    if (o.transactions && !o.trace) return o.transactions.layer;
    return (this.#layer ??= this.#newLayer());
  }

  #newLayer(): TransactionLayer {
    const opts = this.#opts;
    return new TransactionLayer({
      clock: opts.clock,
      ...(opts.timers && { timers: opts.timers }),
      user: {
        onRequest: (tx, req, ctx) => {
          const pctx = protectedContextOf(ctx);
          // Unprotected requests never get here (the plain socket drops them); keep the guard anyway.
          if (pctx) opts.onRequest(tx, req, pctx);
        },
        onMalformed: (m) =>
          opts.note(`dropped a malformed message from ${m.context.remote.address}:${m.context.remote.port}: ${m.error.message}`),
      },
    });
  }

  /** Lets the layer go when no transaction is left (a server transaction keeps it until a later check). */
  #releaseIdleLayer(): void {
    const l = this.#layer;
    if (l && l.clientTransactionCount === 0 && l.serverTransactionCount === 0) this.#layer = undefined;
  }

  static async open(opts: SipIoOptions): Promise<UeSipIo> {
    if (opts.transport === 'tcp' && !opts.backend.openTcp) {
      throw new UeError(
        'UE_BAD_OPTIONS',
        `transport tcp: the ${opts.backend.name} backend carries SIP over UDP only inside its SAs; use udp, or the xfrm backend (a kernel with ESP)`,
      );
    }
    const io = new UeSipIo(opts);
    if ((opts.plainSocket ?? 'always') === 'always') await io.openPlain();
    return io;
  }

  /** Binds the unprotected socket (once; a no-op while it is bound). */
  openPlain(): Promise<void> {
    if (this.#plain) return Promise.resolve();
    this.#plainOpening ??= (async () => {
      const tp = new TracedPlain({ ...(this.#opts.trace && { trace: this.#opts.trace }), node: 'ue' });
      const onReceive = tp.handler((b, c) => this.#onPlain(b, c));
      const open = this.#opts.openPlain ?? ((address, port, h) => openUdpTransport({ address, port, onReceive: h }));
      this.#plain = tp.wrap(await open(this.#opts.localIp, this.#opts.localPort, onReceive));
      if (this.#opts.transactions) plainOwners.set(this.#plain, this.#opts);
    })().finally(() => (this.#plainOpening = undefined));
    return this.#plainOpening;
  }

  /** The top Via of `res` when it is the last unprotected response, parsed already (once: then forgotten); else undefined. */
  topViaOf(res: SipResponse): Via | undefined {
    if (res !== this.#viaOf) return undefined;
    const via = this.#via;
    this.#viaOf = this.#via = undefined;
    return via;
  }

  /** 'on-demand': closes the unprotected socket (the initial registration is over). */
  async closePlain(): Promise<void> {
    this.#viaOf = this.#via = undefined;
    if ((this.#opts.plainSocket ?? 'always') === 'always') return;
    await this.#plainOpening?.catch(() => {});
    const p = this.#plain;
    this.#plain = undefined;
    await p?.close().catch(() => {});
  }

  /** The unprotected socket's port (Via and Contact of an unprotected REGISTER); 0 while none is bound. */
  get plainPort(): number {
    return this.#plain?.local.port ?? 0;
  }

  /**
   * 24.229 §5.1.1.x: the UE discards unprotected requests from the P-CSCF outside a registration
   * procedure — and no procedure needs one, so every unprotected request is dropped. A response is
   * accepted only when its top Via names this socket's port: a response to a REGISTER sent over an
   * SA names port_us and must arrive protected.
   */
  #onPlain(bytes: Uint8Array, ctx: ReceiveContext): void {
    if (isKeepAlive(bytes)) return;
    const parsed = parseMessage(bytes);
    if (!parsed.ok) {
      this.#opts.note(`dropped an unparseable datagram from ${ctx.remote.address}:${ctx.remote.port} [${parsed.error.code}]`);
      return;
    }
    const msg = parsed.value;
    if (msg.kind === 'request') {
      this.#opts.note(`discarded an unprotected ${msg.method} from ${ctx.remote.address}:${ctx.remote.port} (24.229 §5.1.1.x)`);
      return;
    }
    const via = parseVia(msg.headers.get('Via') ?? '');
    const port = via.ok ? via.value.port : undefined;
    if ((port ?? 5060) !== this.plainPort) {
      this.#clearOnProtected(msg, ctx, port ?? 5060);
      return;
    }
    if (via.ok) {
      // Kept for topViaOf: the procedure reads this response's received/rport next (NAT, digest §15A point 2).
      this.#viaOf = msg;
      this.#via = via.value;
    }
    this.layer.receiveMessage(msg, ctx, bytes.length);
  }

  /**
   * A response in clear text for a request we sent over an SA (24.229 §5.1.1.x: never accepted as
   * SIP). A sender waiting for exactly that (the de-registration) learns of it; else it is noted.
   */
  #clearOnProtected(msg: SipMessage, ctx: ReceiveContext, port: number): void {
    const what = msg.kind === 'request' ? msg.method : `${msg.status} ${msg.reason}`;
    const via = parseVia(msg.headers.get('Via') ?? '');
    const b = via.ok ? via.value.params.get('branch') : undefined;
    const branch = typeof b === 'string' ? b : undefined;
    const waiter = msg.kind === 'response' && msg.status >= 200 && branch !== undefined ? this.#clearWaiters?.get(branch) : undefined;
    this.#opts.note(
      `discarded an unprotected ${what} from ${ctx.remote.address}:${ctx.remote.port} for protected port ${port}${waiter ? ' (the answer to our request, sent in clear)' : ''}`,
    );
    if (waiter && msg.kind === 'response') waiter.clearAnswer(msg, port);
  }

  /** Opens the protected endpoint on `port` (once) and feeds it to the transaction layer. */
  async ensureEndpoint(port: number): Promise<void> {
    if (this.#endpointOn(port)) return;
    if (this.#opts.backend.name === 'userspace' && this.#opts.guardProtectedPorts !== false && !this.#guards?.has(port)) {
      // The userspace backend's ESP does not use the port's UDP socket: hold it, so that clear SIP
      // sent to it is seen (and refused) rather than answered with ICMP, and no one else binds it.
      const guard = await openUdpTransport({ address: this.#opts.localIp, port, onReceive: (b, c) => this.#onGuard(b, c, port) });
      (this.#guards ??= new Map()).set(port, guard);
    }
    let endpoint: ProtectedEndpoint;
    try {
      endpoint = await this.#opts.backend.openEndpoint({ address: this.#opts.localIp, port });
    } catch (e) {
      void this.#guards?.get(port)?.close();
      this.#guards?.delete(port);
      throw e;
    }
    const trace = this.#opts.trace;
    if (trace) attachProtected(endpoint, this.#receive, { trace, node: 'ue' });
    else endpoint.onMessage(this.#onProtected);
    this.#endpoints = this.#endpoints.concat(endpoint); // exact size (a spread or push leaves ~16 spare slots)
  }

  #onGuard(bytes: Uint8Array, ctx: ReceiveContext, port: number): void {
    if (isKeepAlive(bytes)) return;
    const parsed = parseMessage(bytes);
    if (!parsed.ok) {
      this.#opts.note(`dropped an unparseable clear datagram on protected port ${port} [${parsed.error.code}]`);
      return;
    }
    this.#clearOnProtected(parsed.value, ctx, port);
  }

  /** Closes the endpoint on `port` when no SA set of ours still uses it. */
  releaseEndpoint(port: number): void {
    const g = this.#guards?.get(port);
    this.#guards?.delete(port);
    void g?.close().catch(() => {});
    const t = this.#tcp?.get(port);
    this.#tcp?.delete(port);
    void t?.then((x) => x.close()).catch(() => {});
    const a = this.#endpointOn(port);
    if (!a) return;
    a.close();
    this.#endpoints = this.#endpoints.length === 1 ? NO_ENDPOINTS : this.#endpoints.filter((e) => e !== a);
  }

  /** Closes every protected endpoint whose port `table` no longer uses (no SA set of ours, no pending offer). */
  releaseUnused(table: { usesPort(port: number): boolean }): void {
    const eps = this.#endpoints; // releaseEndpoint replaces the array, never changes this one
    for (let i = eps.length - 1; i >= 0; i--) {
      const port = eps[i]!.local.port;
      if (!table.usesPort(port)) this.releaseEndpoint(port);
    }
  }

  get endpointPorts(): number[] {
    return this.#endpoints.map((e) => e.local.port);
  }

  /** The TCP transport on a protected port (opened once): `client` on port_uc, `server` on port_us. */
  #tcpOn(port: number, role: 'client' | 'server'): Promise<SipTransport> {
    const tcp = (this.#tcp ??= new Map());
    let t = tcp.get(port);
    if (!t) {
      const local = { address: this.#opts.localIp, port };
      t = this.#opts.backend.openTcp!({ local, role, onReceive: this.#receive, onError: () => {} });
      tcp.set(port, t);
      t.catch(() => tcp.get(port) === t && tcp.delete(port));
    }
    return t;
  }

  /**
   * Spec digest §6.2 over TCP: the request leaves on a connection from port_uc to port_ps (SA1; the
   * answer comes back on it, SA3), and port_us listens for the P-CSCF's connection (SA2/SA4) before
   * the first protected request goes out. Via names TCP (RFC 3261 §18.1.1).
   */
  async #viaTcp(req: SipRequest, set: SaSet): Promise<SipTransport> {
    await this.#tcpOn(set.config.ue.portS, 'server');
    const client = await this.#tcpOn(set.config.ue.portC, 'client');
    const top = req.headers.get('Via');
    if (top !== undefined) {
      req.headers.removeFirst('Via');
      req.headers.prepend('Via', formatVia({ ...parseViaOrThrow(top), transport: 'TCP' })); // our own Via
    }
    return client;
  }

  /**
   * Starts a client transaction: over `set` from its port_uc (SA1, the transport pinned to the set)
   * or unprotected from the plain socket. Resolves with the final response, Timer F or a transport
   * failure; `inflight.end(set)` runs once when the set's use ends (in-flight counting, §8 rule 4).
   */
  send(
    req: SipRequest,
    to: { address: string; port: number },
    set: SaSet | undefined,
    inflight?: InflightCount,
    opts: { readonly clearAnswerEnds?: boolean } = NO_SEND_OPTIONS,
  ): Promise<SendOutcome> {
    return new Promise((resolve) => {
      const s = new PendingSend(this, req.method === 'REGISTER', set, resolve, inflight);
      if (set && opts.clearAnswerEnds) {
        const b = parseViaOrThrow(req.headers.get('Via') ?? '').params.get('branch'); // our own request
        if (typeof b === 'string') {
          s.branch = b;
          (this.#clearWaiters ??= new Map()).set(b, s);
        }
      }
      (this.#pending ??= new Set()).add(s);
      if (set && this.#opts.transport === 'tcp') {
        this.#viaTcp(req, set).then(
          (t) => !s.done && this.#start(s, req, t, to),
          (e: unknown) => s.failed(e),
        );
        return;
      }
      const flow = set !== undefined && this.#tcpFlows?.has(set) === true;
      // Serialised here only where TCP is possible at all (a backend with openTcp): the transaction
      // layer serialises it again, and a userspace UE's every protected request paid for it twice.
      const tcpPossible = set !== undefined && (this.#opts.transport ?? 'auto') === 'auto' && this.#opts.backend.openTcp !== undefined;
      const size = tcpPossible && !flow ? serializeMessage(req).length : 0;
      if (tcpPossible && (flow || size > UDP_MAX_REQUEST)) {
        // RFC 3261 §18.1.1: over 1,300 octets (path MTU unknown) ⇒ a congestion-controlled transport;
        // after a registration over TCP, its flow. Back on UDP when the connection cannot be made
        // (§18.1.1 allows the retry).
        this.#viaTcp(req, set).then(
          (t) => {
            if (s.done) return;
            this.#opts.note(
              flow
                ? `${req.method} over TCP inside the SAs: the registration went over TCP (its flow)`
                : `${req.method} is ${size} octets: over TCP inside the SAs (RFC 3261 §18.1.1)`,
            );
            s.bySize = !flow;
            this.#start(s, req, t, to);
          },
          (e: unknown) => {
            if (s.done) return;
            this.#opts.note(
              `${req.method} is ${size} octets but TCP to port_ps failed (${e instanceof Error ? e.message : String(e)}): sending it over UDP`,
            );
            const top = req.headers.get('Via');
            if (top !== undefined) {
              req.headers.removeFirst('Via');
              req.headers.prepend('Via', formatVia({ ...parseViaOrThrow(top), transport: 'UDP' })); // our own Via
            }
            this.#udp(s, req, to, set);
          },
        );
        return;
      }
      this.#udp(s, req, to, set);
    });
  }

  /** Over UDP: from port_uc through the set's endpoint, or from the unprotected socket. */
  #udp(s: PendingSend, req: SipRequest, to: Destination, set: SaSet | undefined): void {
    let transport: SipTransport | undefined = this.#plain;
    if (set) {
      const a = this.#endpointOn(set.config.ue.portC);
      if (!a) return s.failed(new Error(`no endpoint on port_uc ${set.config.ue.portC}`));
      const trace = this.#opts.trace;
      transport = trace ? protectedTransport(a, { set, trace, node: 'ue' }) : new EndpointTransport(a, set);
    }
    if (!transport) return s.failed(new Error('no unprotected socket is open (openPlain)'));
    this.#start(s, req, transport, to);
  }

  #start(s: PendingSend, req: SipRequest, transport: SipTransport, to: Destination): void {
    try {
      this.layer.sendRequest(req, { transport, to }, s);
    } catch (e) {
      s.failed(e);
    }
  }

  /** (PendingSend) its wait is over: no longer pending, no longer waiting for a clear answer. */
  [sendEnded](s: PendingSend): void {
    const pending = this.#pending;
    pending?.delete(s);
    if (pending?.size === 0) this.#pending = undefined; // an idle UE keeps no Set
    if (s.branch !== undefined) this.#clearWaiters?.delete(s.branch);
  }

  /** (PendingSend) a REGISTER over `set` was answered 2xx over TCP: its flow stays on TCP. */
  [tcpFlow](set: SaSet): void {
    (this.#tcpFlows ??= new WeakSet()).add(set);
  }

  /** (PendingSend) a transaction ended: an own layer with none left goes. */
  [transactionGone](): void {
    this.#releaseIdleLayer();
  }

  async close(): Promise<void> {
    for (const p of [...(this.#pending ?? [])]) p.finish({ kind: 'transport-error', error: new Error('UE closed') });
    for (const g of this.#guards?.values() ?? []) await g.close().catch(() => {});
    this.#guards?.clear();
    this.#layer?.close();
    this.#layer = undefined;
    for (const port of [...new Set([...this.endpointPorts, ...(this.#tcp?.keys() ?? [])])]) this.releaseEndpoint(port);
    await this.#plainOpening?.catch(() => {});
    await this.#plain?.close();
    this.#plain = undefined;
  }
}
