// The embedded S-CSCF (24.229 §5.4): a stateful UAS/registrar and proxy on one UDP socket. REGISTER
// goes to registrar.ts (IMS AKA, bindings); other requests are proxied along a registered Path or
// answered as the application server (routing.ts); sendMessage sends network-initiated requests.
import { EventEmitter } from 'node:events';
import { TracedPlain } from '../ipsec/backends/sip-endpoint.ts';
import {
  createResponse,
  systemClock,
  TransactionLayer,
  type Clock,
  type Endpoint,
  type ReceiveContext,
  type ReceiveHandler,
  type ServerTransaction,
  type SipRequest,
  type SipResponse,
  type SipTransport,
  type TimerConfig,
} from '../sip/index.ts';
import { openUdpTransport } from '../sip/udp-transport.ts';
import type { SipTracer } from '../util/trace.ts';
import { HeapClock } from '../util/timer-heap.ts';
import { PendingChallenges } from './auth-pending.ts';
import { BindingTable, type Binding } from './bindings.ts';
import { ScscfError } from './errors.ts';
import { countEvent, newCounters, type ScscfCounters, type ScscfEvent, type ScscfEventType } from './events.ts';
import { handleRegister, MAX_GRANT_S, type RegistrarConfig, type RegistrarHss, type RegistrarState } from './registrar.ts';
import {
  assertedIdentities,
  firstHop,
  networkRequest,
  nextMaxForwards,
  popOwnRoutes,
  proxiedRequest,
  toUri,
  type Self,
} from './routing.ts';

/** Builds the transport once the S-CSCF's receive handler exists (e.g. MemoryNetwork.bind). */
export type TransportFactory = (onReceive: ReceiveHandler) => SipTransport | Promise<SipTransport>;

/** Options of the embedded S-CSCF (`Scscf`). */
export interface ScscfOptions {
  /** Address to bind (and to advertise unless `advertise` is given). */
  readonly address: string;
  /** Default 6060; 0 = ephemeral. */
  readonly port?: number;
  /** Home domain: Digest realm, From of network requests. */
  readonly domain: string;
  readonly hss: RegistrarHss;
  readonly clock?: Clock;
  readonly trace?: SipTracer;
  /** reg-await-auth, ms (24.229 Table 7.8.1: 4 min). */
  readonly regAwaitAuthMs?: number;
  /** Challenge integrity-protected re-REGISTERs too (default true: a new SA set per re-registration). */
  readonly challengeReRegister?: boolean;
  /** Seconds granted when the REGISTER names none (default 600000, 24.229 §5.1.1.2.1). */
  readonly defaultExpires?: number;
  /** Upper bound on granted seconds (never above MAX_GRANT_S). */
  readonly maxExpires?: number;
  /** Host for Via and Service-Route when `address` is a wildcard (default 127.0.0.1 then). */
  readonly advertise?: string;
  /**
   * Instead of a UDP socket: a factory (given the receive handler), or a ready transport whose received
   * bytes the caller feeds to `receive()`. An injected transport is closed by stop() only if a factory made it.
   */
  readonly transport?: SipTransport | TransportFactory;
  readonly timers?: Partial<TimerConfig>;
  /** Called for every event, before the EventEmitter listeners. */
  readonly onEvent?: (e: ScscfEvent) => void;
}

/** Options of a network-initiated MESSAGE (`Scscf.sendMessage`). */
export interface SendMessageOptions {
  /** From URI (default sip:network@DOMAIN). */
  readonly from?: string;
  /** Default text/plain;charset=utf-8. */
  readonly contentType?: string;
}

type EventMap = { [K in ScscfEventType]: [Extract<ScscfEvent, { type: K }>] } & { event: [ScscfEvent] };

const WILDCARD = new Set(['0.0.0.0', '::', '']);

/** The embedded S-CSCF: `Scscf.start(options)` runs an IMS AKA registrar (vectors from an {@link Hss}), keeps bindings, routes requests along the registered Path, and sends network-initiated requests (`sendMessage`). */
export class Scscf extends EventEmitter<EventMap> {
  readonly domain: string;
  readonly #hss: RegistrarHss;
  readonly #clock: Clock;
  readonly #layer: TransactionLayer;
  readonly #pending: PendingChallenges;
  readonly #bindings: BindingTable;
  readonly #counters = newCounters();
  readonly #onEvent: ((e: ScscfEvent) => void) | undefined;
  readonly #tracer: TracedPlain | undefined;
  readonly #handler: ReceiveHandler;
  readonly #outstanding = new Set<(e: Error) => void>();
  #transport!: SipTransport;
  #ownsTransport = false;
  #self!: Self;
  #cfg!: RegistrarConfig;
  #stopped = false;

  private constructor(o: ScscfOptions) {
    super();
    this.domain = o.domain;
    this.#hss = o.hss;
    this.#clock = o.clock ?? systemClock;
    this.#onEvent = o.onEvent;
    // Without a tracer, datagrams go straight to the transaction layer (TracedPlain copies the receive
    // context of each one to put its wrapped transport in).
    this.#tracer = o.trace ? new TracedPlain({ trace: o.trace, node: 'scscf' }) : undefined;
    const receive: ReceiveHandler = (bytes, ctx) => this.#layer.receive(bytes, ctx);
    this.#handler = this.#tracer ? this.#tracer.handler(receive) : receive;
    // The challenges' reg-await-auth and the bindings' expiry on one heap and one Node timer (util/timer-heap.ts)
    // in real time: a Node Timeout with its closures per challenge and per binding costs time to set and
    // clear at every registration, and ~450 octets each while it waits (issue 9 §2). A test's clock is used as it is.
    const timers = o.clock === undefined || o.clock === systemClock ? new HeapClock() : o.clock;
    this.#pending = new PendingChallenges(timers);
    this.#bindings = new BindingTable(timers, (reg) =>
      this.#emit({ type: 'deregistered', impi: reg.impi, impus: reg.impus, reason: 'expired' }),
    );
    this.#layer = new TransactionLayer({
      clock: this.#clock,
      ...(o.timers && { timers: o.timers }),
      user: { onRequest: (tx, req) => this.#onRequest(tx, req) },
    });
  }

  static async start(o: ScscfOptions): Promise<Scscf> {
    for (const [name, v] of [
      ['regAwaitAuthMs', o.regAwaitAuthMs],
      ['defaultExpires', o.defaultExpires],
      ['maxExpires', o.maxExpires],
    ] as const) {
      if (v !== undefined && (!Number.isInteger(v) || v < 1))
        throw new ScscfError('SCSCF_BAD_OPTIONS', `${name}: must be a positive integer, got ${v}`);
    }
    if (!o.domain) throw new ScscfError('SCSCF_BAD_OPTIONS', 'domain: required');
    const s = new Scscf(o);
    const handler = s.#handler;
    let raw: SipTransport;
    if (o.transport === undefined) raw = await openUdpTransport({ address: o.address, port: o.port ?? 6060, onReceive: handler });
    else if (typeof o.transport === 'function') raw = await o.transport(handler);
    else raw = o.transport;
    s.#ownsTransport = typeof o.transport !== 'object';
    s.#transport = s.#tracer ? s.#tracer.wrap(raw) : raw;
    const host = o.advertise ?? (WILDCARD.has(raw.local.address) ? '127.0.0.1' : raw.local.address);
    s.#self = { host, port: raw.local.port };
    s.#cfg = {
      domain: o.domain,
      serviceRoute: `<sip:orig@${host.includes(':') ? `[${host}]` : host}:${raw.local.port};lr>`,
      regAwaitAuthMs: o.regAwaitAuthMs ?? 240_000,
      challengeReRegister: o.challengeReRegister ?? true,
      defaultExpires: o.defaultExpires ?? 600_000,
      maxExpires: Math.min(o.maxExpires ?? MAX_GRANT_S, MAX_GRANT_S),
    };
    return s;
  }

  /** The bound address and port. */
  get local(): Endpoint {
    return this.#transport.local;
  }

  /** The Service-Route the 200 OK carries. */
  get serviceRoute(): string {
    return this.#cfg.serviceRoute;
  }

  /** IMPU → binding (every IMPU of each registered implicit set). */
  get bindings(): ReadonlyMap<string, Binding> {
    return this.#bindings.view;
  }

  get counters(): Readonly<ScscfCounters> {
    return { ...this.#counters };
  }

  /** Challenges waiting for their answer (reg-await-auth running). */
  get pendingChallenges(): number {
    return this.#pending.size;
  }

  /** For an injected ready transport: hand it every datagram received. */
  receive(bytes: Uint8Array, ctx: ReceiveContext): void {
    if (!this.#stopped) this.#handler(bytes, ctx);
  }

  /**
   * A network-initiated MESSAGE to a registered IMPU: Request-URI = Contact, Route = the Path, sent to
   * the first Path hop. Resolves with the final response; rejects (ScscfError) with no binding, on
   * Timer F, on a transport failure or when stopped.
   */
  sendMessage(impu: string, body: string | Uint8Array, opts: SendMessageOptions = {}): Promise<SipResponse> {
    if (this.#stopped) return Promise.reject(new ScscfError('SCSCF_STOPPED', 'the S-CSCF is stopped'));
    const binding = this.#bindings.lookup(impu);
    if (!binding) return Promise.reject(new ScscfError('SCSCF_NOT_REGISTERED', `no binding for ${impu}`));
    const hop = firstHop(binding);
    if (!hop) return Promise.reject(new ScscfError('SCSCF_BAD_BINDING', `no first hop for ${impu}`));
    const req = networkRequest({
      domain: this.domain,
      self: this.#self,
      binding,
      contentType: opts.contentType ?? 'text/plain;charset=utf-8',
      body: typeof body === 'string' ? new TextEncoder().encode(body) : body,
      ...(opts.from && { from: opts.from }),
    });
    const from = opts.from ?? `sip:network@${this.domain}`;
    return new Promise<SipResponse>((resolve, reject) => {
      const fail = (e: Error) => {
        this.#outstanding.delete(fail);
        reject(e);
      };
      this.#outstanding.add(fail);
      try {
        this.#layer.sendRequest(
          req,
          { transport: this.#transport, to: hop },
          {
            onResponse: (res) => {
              if (res.status < 200) return;
              this.#outstanding.delete(fail);
              this.#emit({ type: 'message', method: req.method, from, to: binding.impu, route: 'network', status: res.status });
              resolve(res);
            },
            onTimeout: () => fail(new ScscfError('SCSCF_TIMEOUT', `${req.method} to ${impu}: no final response (Timer F)`)),
            onTransportError: (_tx, e) => fail(new ScscfError('SCSCF_TRANSPORT', `${req.method} to ${impu}: ${e.message}`)),
          },
        );
      } catch (e) {
        fail(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  /** Ends every transaction, forgets challenges and bindings (no events), closes an owned transport. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#layer.close();
    this.#pending.clear();
    this.#bindings.clear();
    for (const fail of [...this.#outstanding]) fail(new ScscfError('SCSCF_STOPPED', 'the S-CSCF stopped'));
    if (this.#ownsTransport) await this.#transport.close();
  }

  #emit(e: ScscfEvent): void {
    countEvent(this.#counters, e);
    this.#onEvent?.(e);
    // Typed listeners per event type (EventMap); emit itself takes the union. No bound copy of
    // emit per event, and nothing at all for an event type nobody listens to (logging off).
    const emit = this.emit as (this: Scscf, type: string, e: ScscfEvent) => boolean;
    if (this.listenerCount(e.type) > 0) emit.call(this, e.type, e);
    if (this.listenerCount('event') > 0) emit.call(this, 'event', e);
  }

  #onRequest(tx: ServerTransaction, req: SipRequest): void {
    if (this.#stopped || this.#cfg === undefined) return; // not started yet, or stopped
    try {
      if (req.method === 'REGISTER') this.#register(tx, req);
      else if (req.method === 'CANCEL') tx.respond(createResponse(req, this.#layer.findCancelTarget(req) ? 200 : 481));
      // DEVIATION: no INVITE sessions here (no Record-Route, no end-to-end ACK); the demo uses MESSAGE.
      else if (req.method === 'INVITE') this.#answer(tx, req, 501, 'rejected');
      else this.#route(tx, req);
    } catch {
      // An HSS store failure, a bug or a throwing event listener: answer (if not done yet) rather than leave
      // the UE retransmitting (RFC 3261 §21.5.1), and keep the socket alive; the counter shows it happened.
      this.#counters.internalErrors++;
      tx.respond(createResponse(req, 500, 'Server Internal Error'));
    }
  }

  readonly #state: RegistrarState = {
    pending: (impi, callId) => this.#pending.get(impi, callId),
    registration: (impi) => this.#bindings.registration(impi),
  };

  #register(tx: ServerTransaction, req: SipRequest): void {
    this.#counters.registers++;
    const out = handleRegister(req, this.#state, this.#hss, this.#cfg, this.#clock.now());
    const challenge = out.actions.find((a) => a.kind === 'challenge');
    if (challenge && this.#hss.afterCommit) {
      // A 401 carries a vector: it leaves only once its SQN is committed (grouped commits, hss.ts).
      this.#hss.afterCommit((err) => {
        if (this.#stopped) return;
        if (err === undefined) return void tx.respond(out.response);
        this.#counters.internalErrors++;
        this.#pending.drop(challenge.pending.impi, challenge.pending.callId);
        tx.respond(createResponse(req, 500, 'Server Internal Error'));
      });
    } else tx.respond(out.response);
    for (const a of out.actions) {
      if (a.kind === 'challenge') this.#pending.set(a.pending);
      else if (a.kind === 'drop-challenge') this.#pending.drop(a.impi, a.callId);
      else if (a.kind === 'bind') this.#bindings.bind(a.registration);
      else this.#bindings.unbind(a.impi);
    }
    for (const e of out.events) this.#emit(e);
  }

  /**
   * Non-REGISTER requests from the P-CSCF (24.229 §5.4.3.2): only from a registered served user (a
   * P-Asserted-Identity naming a bound IMPU, RFC 3325), else 403. To a registered IMPU (Request-URI,
   * else To): proxied along its Path. Otherwise answered 200 by the S-CSCF acting as the AS.
   */
  #route(tx: ServerTransaction, received: SipRequest): void {
    const req = received.clone();
    popOwnRoutes(req, this.#self);
    const ids = assertedIdentities(req);
    const from = ids[0] ?? '';
    if (!ids.some((u) => this.#bindings.lookup(u))) return this.#answer(tx, received, 403, 'rejected', from);
    const to = toUri(req);
    const target = this.#bindings.lookup(req.uri) ?? (to === undefined ? undefined : this.#bindings.lookup(to));
    if (!target) return this.#answer(tx, received, 200, 'answered', from);
    const mf = nextMaxForwards(req);
    if (mf === 'exhausted') return this.#answer(tx, received, 483, 'rejected', from);
    const hop = firstHop(target);
    if (!hop) return this.#answer(tx, received, 502, 'rejected', from);
    const out = proxiedRequest(req, target, this.#self, mf);
    const relay = (res: SipResponse) => {
      if (tx.respond(res) && res.status >= 200)
        this.#emit({ type: 'message', method: received.method, from, to: received.uri, route: 'proxied', status: res.status });
    };
    this.#layer.sendRequest(
      out,
      { transport: this.#transport, to: hop },
      {
        onResponse: (res) => {
          if (res.status === 100) return; // §16.7 step 3: a 100 is not forwarded
          const up = res.clone();
          up.headers.removeFirst('Via'); // §16.7 step 3: our own Via goes
          relay(up);
        },
        // §16.7/§16.8: Timer F ⇒ 408; a transport failure ⇒ 503 (RFC 3261 §16.9).
        onTimeout: () => relay(createResponse(received, 408)),
        onTransportError: () => relay(createResponse(received, 503)),
      },
    );
  }

  #answer(
    tx: ServerTransaction,
    req: SipRequest,
    status: number,
    route: 'answered' | 'rejected',
    from = assertedIdentities(req)[0] ?? '',
  ): void {
    tx.respond(createResponse(req, status));
    this.#emit({ type: 'message', method: req.method, from, to: req.uri, route, status });
  }
}
