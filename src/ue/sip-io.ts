// The UE's SIP plumbing (digest §6.2, ARCHITECTURE "port rules"): one transaction layer fed by the
// unprotected socket and by every protected endpoint (port_uc, port_us; over TCP also a connection
// from port_uc and a listener on port_us); requests out over an SA set pinned per transaction or
// unprotected; unprotected requests dropped (24.229 §5.1.1.x).
import { protectedContextOf, attachProtected, protectedTransport, TracedPlain } from '../ipsec/backends/sip-endpoint.ts';
import type { IpsecBackend, ProtectedContext, ProtectedEndpoint } from '../ipsec/backends/backend.ts';
import type { SaSet } from '../ipsec/index.ts';
import {
  TransactionLayer, formatVia, isKeepAlive, parseMessage, parseVia,
  type Clock, type ReceiveContext, type SipRequest, type SipResponse, type SipTransport, type ServerTransaction, type TimerConfig,
} from '../sip/index.ts';
import { openUdpTransport } from '../sip/udp-transport.ts';
import type { SipTracer } from '../util/trace.ts';
import { UeError } from './errors.ts';

export type SendOutcome =
  | { readonly kind: 'response'; readonly response: SipResponse; readonly context: ReceiveContext; readonly protectedBy?: ProtectedContext }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'transport-error'; readonly error: Error };

export interface SipIoOptions {
  readonly backend: IpsecBackend;
  readonly localIp: string;
  readonly localPort: number;
  readonly clock: Clock;
  readonly timers?: Partial<TimerConfig>;
  readonly trace?: SipTracer;
  /** SIP transport inside the SAs (default udp); tcp needs the backend's openTcp (xfrm). */
  readonly transport?: 'udp' | 'tcp';
  /** A request that arrived over an SA (normally SA2 at port_us). */
  readonly onRequest: (tx: ServerTransaction, request: SipRequest, pctx: ProtectedContext) => void;
  /** Human-readable notes (dropped messages). */
  readonly note: (text: string) => void;
}

interface Attached {
  readonly endpoint: ProtectedEndpoint;
  readonly transport: SipTransport;
}

export class UeSipIo {
  readonly layer: TransactionLayer;
  readonly #opts: SipIoOptions;
  readonly #endpoints = new Map<number, Attached>();
  readonly #pending = new Set<(o: SendOutcome) => void>();
  /** TCP through the SAs: a client transport on each port_uc, a server one on each port_us. */
  readonly #tcp = new Map<number, Promise<SipTransport>>();
  #plain!: SipTransport;

  private constructor(opts: SipIoOptions) {
    this.#opts = opts;
    this.layer = new TransactionLayer({
      clock: opts.clock,
      ...(opts.timers && { timers: opts.timers }),
      user: {
        onRequest: (tx, req, ctx) => {
          const pctx = protectedContextOf(ctx);
          // Unprotected requests never get here (the plain socket drops them); keep the guard anyway.
          if (pctx) opts.onRequest(tx, req, pctx);
        },
        onMalformed: (m) => opts.note(`dropped a malformed message from ${m.context.remote.address}:${m.context.remote.port}: ${m.error.message}`),
      },
    });
  }

  static async open(opts: SipIoOptions): Promise<UeSipIo> {
    if (opts.transport === 'tcp' && !opts.backend.openTcp) {
      throw new UeError('UE_BAD_OPTIONS', `transport tcp: the ${opts.backend.name} backend carries SIP over UDP only inside its SAs; use udp, or the xfrm backend (a kernel with ESP)`);
    }
    const io = new UeSipIo(opts);
    const tp = new TracedPlain({ ...(opts.trace && { trace: opts.trace }), node: 'ue' });
    const udp = await openUdpTransport({ address: opts.localIp, port: opts.localPort, onReceive: tp.handler((b, c) => io.#onPlain(b, c)) });
    io.#plain = tp.wrap(udp);
    return io;
  }

  /** The unprotected socket's port (Via and Contact of an unprotected REGISTER). */
  get plainPort(): number {
    return this.#plain.local.port;
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
    let port: number | undefined;
    try {
      port = parseVia(msg.headers.get('Via') ?? '').port;
    } catch {
      port = undefined;
    }
    if ((port ?? 5060) !== this.plainPort) {
      this.#opts.note(`discarded an unprotected ${msg.status} for a request sent over an SA (Via port ${port ?? 5060})`);
      return;
    }
    this.layer.receiveMessage(msg, ctx, bytes.length);
  }

  /** Opens the protected endpoint on `port` (once) and feeds it to the transaction layer. */
  async ensureEndpoint(port: number): Promise<void> {
    if (this.#endpoints.has(port)) return;
    const endpoint = await this.#opts.backend.openEndpoint({ address: this.#opts.localIp, port });
    const transport = attachProtected(endpoint, this.layer.receive.bind(this.layer), { ...(this.#opts.trace && { trace: this.#opts.trace }), node: 'ue' });
    this.#endpoints.set(port, { endpoint, transport });
  }

  /** Closes the endpoint on `port` when no SA set of ours still uses it. */
  releaseEndpoint(port: number): void {
    const t = this.#tcp.get(port);
    this.#tcp.delete(port);
    void t?.then((x) => x.close()).catch(() => {});
    const a = this.#endpoints.get(port);
    if (!a) return;
    a.endpoint.close();
    this.#endpoints.delete(port);
  }

  get endpointPorts(): number[] {
    return [...this.#endpoints.keys()];
  }

  /** The TCP transport on a protected port (opened once): `client` on port_uc, `server` on port_us. */
  #tcpOn(port: number, role: 'client' | 'server'): Promise<SipTransport> {
    let t = this.#tcp.get(port);
    if (!t) {
      const local = { address: this.#opts.localIp, port };
      t = this.#opts.backend.openTcp!({ local, role, onReceive: this.layer.receive.bind(this.layer), onError: () => {} });
      this.#tcp.set(port, t);
      t.catch(() => this.#tcp.get(port) === t && this.#tcp.delete(port));
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
      req.headers.prepend('Via', formatVia({ ...parseVia(top), transport: 'TCP' }));
    }
    return client;
  }

  /**
   * Starts a client transaction: over `set` from its port_uc (SA1, the transport pinned to the set)
   * or unprotected from the plain socket. Resolves with the final response, Timer F or a transport
   * failure; `onTerminated` runs once when the transaction is gone (in-flight counting, §8 rule 4).
   */
  send(req: SipRequest, to: { address: string; port: number }, set: SaSet | undefined, onTerminated?: () => void): Promise<SendOutcome> {
    return new Promise((resolve) => {
      let done = false;
      let terminated = false;
      const finish = (o: SendOutcome): void => {
        if (done) return;
        done = true;
        this.#pending.delete(finish);
        resolve(o);
      };
      const gone = (): void => {
        if (terminated) return;
        terminated = true;
        onTerminated?.();
      };
      this.#pending.add(finish);
      const failed = (e: unknown): void => {
        gone();
        finish({ kind: 'transport-error', error: e instanceof Error ? e : new Error(String(e)) });
      };
      const start = (transport: SipTransport): void => {
        try {
          this.layer.sendRequest(req, { transport, to }, {
            onResponse: (response, context) => {
              if (response.status < 200) return;
              // The set's use ends with the final response: Completed only absorbs retransmissions
              // (Timer K), and holding an old SA set for them is not what §8 rule 4 asks for.
              gone();
              const p = protectedContextOf(context);
              finish({ kind: 'response', response, context, ...(p && { protectedBy: p }) });
            },
            onTimeout: () => finish({ kind: 'timeout' }),
            onTransportError: (_tx, error) => finish({ kind: 'transport-error', error }),
            onTerminated: () => {
              gone();
              finish({ kind: 'transport-error', error: new Error('transaction terminated') });
            },
          });
        } catch (e) {
          failed(e);
        }
      };
      if (set && this.#opts.transport === 'tcp') {
        this.#viaTcp(req, set).then((t) => !done && start(t), failed);
        return;
      }
      let transport = this.#plain;
      if (set) {
        const a = this.#endpoints.get(set.config.ue.portC);
        if (!a) return failed(new Error(`no endpoint on port_uc ${set.config.ue.portC}`));
        transport = protectedTransport(a.endpoint, { set, ...(this.#opts.trace && { trace: this.#opts.trace }), node: 'ue' });
      }
      start(transport);
    });
  }

  async close(): Promise<void> {
    for (const f of [...this.#pending]) f({ kind: 'transport-error', error: new Error('UE closed') });
    this.layer.close();
    for (const port of [...new Set([...this.#endpoints.keys(), ...this.#tcp.keys()])]) this.releaseEndpoint(port);
    await this.#plain.close();
  }
}
