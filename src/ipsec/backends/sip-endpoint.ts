// Joins a protected endpoint to the SIP layer: a SipTransport whose send goes over an SA, and the
// receive side that hands each message to the transaction layer with ReceiveContext.via = the
// ProtectedContext (the SA set it arrived on). Also a tracing wrapper for plain transports.
import type { Destination, ReceiveContext, ReceiveHandler, SipTransport } from '../../sip/transport.ts';
import { firstLineOf, type SipTracer } from '../../util/trace.ts';
import type { SaSet } from '../sa-set.ts';
import type { ProtectedContext, ProtectedEndpoint } from './backend.ts';

export interface ProtectedTransport extends SipTransport {
  readonly endpoint: ProtectedEndpoint;
  /** The set this transport is pinned to, if any. */
  readonly set?: SaSet;
}

export interface TraceOptions {
  readonly trace?: SipTracer;
  /** The node name in trace events ('ue', 'pcscf', …). */
  readonly node?: string;
}

/**
 * A SipTransport over `ep`. Pinned to `set` when given (e.g. the 200 OK of a protected REGISTER
 * over the new set); otherwise the backend picks current > temporary > old.
 */
export function protectedTransport(ep: ProtectedEndpoint, opts: TraceOptions & { set?: SaSet } = {}): ProtectedTransport {
  const t: ProtectedTransport = {
    protocol: 'udp',
    local: ep.local,
    endpoint: ep,
    ...(opts.set ? { set: opts.set } : {}),
    async send(bytes: Uint8Array, to: Destination): Promise<void> {
      const used = await ep.send(bytes, to, opts.set ? { set: opts.set } : {});
      if (opts.trace) {
        const sa = used.outbound.find((s) => s.params.srcPort === ep.local.port && s.params.dstPort === to.port);
        opts.trace({
          t: Date.now(),
          node: opts.node ?? '?',
          dir: 'send',
          local: ep.local,
          remote: { address: to.address, port: to.port },
          ...(sa ? { sa: { name: sa.name, spi: sa.spi, set: used.id, state: used.state } } : {}),
          firstLine: firstLineOf(bytes),
          bytes,
        });
      }
    },
    async close(): Promise<void> {
      ep.close();
    },
  };
  // The fast path (SipTransport.post) where the endpoint has one and nothing is traced.
  const post = ep.post;
  if (post !== undefined && !opts.trace) {
    const set = opts.set;
    (t as { post?: SipTransport['post'] }).post = (bytes, to, sink) => post.call(ep, bytes, to, set, sink);
  }
  return t;
}

/** Feeds everything `ep` receives to `handler` (normally TransactionLayer.receive). */
export function attachProtected(ep: ProtectedEndpoint, handler: ReceiveHandler, opts: TraceOptions = {}): ProtectedTransport {
  const transport = protectedTransport(ep, opts);
  ep.onMessage((bytes, pctx) => {
    opts.trace?.({
      t: Date.now(),
      node: opts.node ?? '?',
      dir: 'recv',
      local: pctx.local,
      remote: pctx.remote,
      sa: { name: pctx.sa.name, spi: pctx.sa.spi, set: pctx.set.id, state: pctx.set.state },
      firstLine: firstLineOf(bytes),
      bytes,
    });
    handler(bytes, { protocol: 'udp', local: pctx.local, remote: pctx.remote, via: pctx, transport });
  });
  return transport;
}

/** The ProtectedContext of a message, or undefined when it arrived unprotected. */
export function protectedContextOf(ctx: ReceiveContext): ProtectedContext | undefined {
  const v = ctx.via as Partial<ProtectedContext> | undefined;
  return v && typeof v === 'object' && v.set !== undefined && v.sa !== undefined ? (v as ProtectedContext) : undefined;
}

/** Wraps a plain transport so its sends are traced. */
export function tracedTransport(t: SipTransport, opts: TraceOptions): SipTransport {
  const trace = opts.trace;
  if (!trace) return t;
  return {
    protocol: t.protocol,
    get local() {
      return t.local;
    },
    async send(bytes: Uint8Array, to: Destination): Promise<void> {
      await t.send(bytes, to);
      trace({
        t: Date.now(),
        node: opts.node ?? '?',
        dir: 'send',
        local: t.local,
        remote: { address: to.address, port: to.port },
        firstLine: firstLineOf(bytes),
        bytes,
      });
    },
    close: () => t.close(),
  };
}

/**
 * Tracing for a plain (unprotected) transport: wrap the receive handler before opening the
 * transport, then wrap the transport; received contexts then point at the traced transport, so
 * responses sent through ctx.transport are traced too.
 *   const tp = new TracedPlain({ trace, node: 'pcscf' });
 *   const udp = tp.wrap(await openUdpTransport({ address, port, onReceive: tp.handler(h) }));
 */
export class TracedPlain {
  #inner: SipTransport | undefined;
  #outer: SipTransport | undefined;
  constructor(private readonly opts: TraceOptions) {}

  handler(h: ReceiveHandler): ReceiveHandler {
    return (bytes, ctx) => {
      this.opts.trace?.({
        t: Date.now(),
        node: this.opts.node ?? '?',
        dir: 'recv',
        local: ctx.local,
        remote: ctx.remote,
        firstLine: firstLineOf(bytes),
        bytes,
      });
      h(bytes, this.#outer && ctx.transport === this.#inner ? { ...ctx, transport: this.#outer } : ctx);
    };
  }

  wrap(t: SipTransport): SipTransport {
    this.#inner = t;
    this.#outer = tracedTransport(t, this.opts);
    return this.#outer;
  }
}
