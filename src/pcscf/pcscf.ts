// The P-CSCF, the 33.203 access edge: one transaction layer fed by the plain SIP port and the
// protected endpoints on port_pc/port_ps; dispatch by how a request arrived (unprotected, over a
// temporary, current or old SA set, or from the S-CSCF); events, counters and the registration view.
// It opens no socket itself: the plain transport, port picks and protected-port watch come from its
// PcscfEdge (server.ts: real UDP by default, or a MemoryNetwork), the protected ones from its backend.
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import type { IpsecBackend, ProtectedContext, ProtectedEndpoint } from '../ipsec/backends/backend.ts';
import { attachProtected, protectedContextOf, protectedTransport, TracedPlain } from '../ipsec/backends/sip-endpoint.ts';
import { sameAddress } from '../ipsec/sa.ts';
import type { SaSet } from '../ipsec/sa-set.ts';
import { NAT_T_PORT } from '../ipsec/types.ts';
import { createResponse } from '../sip/builders.ts';
import { systemClock, type Clock } from '../sip/clock.ts';
import { HeapClock } from '../util/timer-heap.ts';
import type { SipRequest, SipResponse } from '../sip/message.ts';
import type { Route } from '../sip/response-routing.ts';
import type { ServerTransaction } from '../sip/transaction-manager.ts';
import { TransactionLayer } from '../sip/transaction-manager.ts';
import type { ReceiveContext } from '../sip/transport.ts';
import { formatHostPort, parseUri } from '../sip/uri.ts';
import { afterSend, type PcscfCore, type RejectOptions } from './core.ts';
import { fromCore, fromUe, onAck, onCancel } from './proxy.ts';
import { onRegisterOverSet, onUnprotectedRegister, runEvent } from './register.ts';
import { persistTo, restoreRegistrations, type RestoreReport } from './persist.ts';
import { RegistrationTable, type Registration } from './registrations.ts';
import type { RegState } from './registration-state.ts';
import type { PcscfState } from './state.ts';
import { DEFAULT_PENDING_LIMITS, PendingLimits } from './pending-limits.ts';
import { udpEdge } from './server.ts';
import { PcscfTcp } from './tcp.ts';
import { warningValue } from './rewrite.ts';
import type { PcscfCounters, PcscfEventName, PcscfEvents, PcscfMode, PcscfOptions, RegistrationView, RejectReason } from './types.ts';

/** Every P-CSCF event name, for subscribers that log them all (`imsec pcscf`). */
export const PCSCF_EVENT_NAMES: readonly PcscfEventName[] = [
  'sa-created',
  'sa-promoted',
  'sa-deleted',
  'sa-error',
  'rejected',
  'nat-detected',
  'nat-mapping',
  'registered',
  'deregistered',
  'dropped',
];
/** 24.229 Table 7.8.1: reg-await-auth, 4 minutes. */
export const REG_AWAIT_AUTH_MS = 240_000;
const MODES: readonly PcscfMode[] = ['auto', 'udp-enc-tun', 'trans'];

/** The P-CSCF (33.203 access edge): `Pcscf.start(options)` listens for the unprotected REGISTER, negotiates sec-agree, installs SA sets through its backend, detects NATs (Annex M), checks every protected request against the registration owning its SA, and proxies to the S-CSCF. `registrations()` shows the state, `stop()` removes every SA. */
export class Pcscf {
  readonly #events = new EventEmitter();
  readonly #rejected: Partial<Record<RejectReason, number>> = {};
  #unprotected = 0;
  #overSourceLimit = 0;
  #core!: PcscfCore;
  #epS!: ProtectedEndpoint;
  #tcp: PcscfTcp | undefined;
  readonly #guards: { close(): Promise<void> }[] = [];
  #stopped = false;
  #state: PcscfState | undefined;
  #restored: RestoreReport = { restored: 0 };

  private constructor() {}

  /** Binds everything and starts serving. Ports given as 0 are picked and reported on the instance. */
  static async start(o: PcscfOptions): Promise<Pcscf> {
    if (isIP(o.address) === 0) throw new TypeError(`P-CSCF address must be an IP address, got ${JSON.stringify(o.address)}`);
    const mode = o.mode ?? 'auto';
    if (!MODES.includes(mode)) throw new TypeError(`mode must be one of ${MODES.join(', ')}, got ${JSON.stringify(mode)}`);
    const p = new Pcscf();
    p.#scscf = o.scscf;
    const clock = o.clock ?? systemClock;
    // Every registration's SA-set lifetimes and pending-round timers on one heap and one Node timer
    // (util/timer-heap.ts): a Node Timeout with its closures per registration is ~450 octets (issue 9 §2).
    // Real time (no clock given, or the system clock as `imsec pcscf` gives it) gets the heap; a test's clock is used as it is.
    const timers: Clock = o.clock === undefined || o.clock === systemClock ? new HeapClock() : o.clock;
    // Every socket outside the backend is the edge's (server.ts): this file opens none.
    const edge = o.edge ?? udpEdge;
    const portC = o.portC || (await edge.pickPort(o.address, []));
    const portS = o.portS || (await edge.pickPort(o.address, [portC]));
    // The table reports dropped sets (an expired current set: an expired registration) to the registration machine.
    const table = new RegistrationTable(
      o.backend,
      timers,
      (name, payload) => p.#emit(name, payload),
      { setGone: (reg, set, expired) => void runEvent(p.#core, reg, { type: 'set-gone', set: set.id, expired }) },
      (name) => p.#events.listenerCount(name) > 0,
    );
    const trace = o.trace ? { trace: o.trace, node: 'pcscf' } : { node: 'pcscf' };
    const layer: TransactionLayer = new TransactionLayer({
      user: {
        onRequest: (tx, req, ctx) => p.#dispatch(tx, req, ctx),
        onAck: (ack, ctx) => onAck(p.#core, ack, ctx, p.#fromCore(ctx)),
      },
      clock,
      ...(o.timers ? { timers: o.timers } : {}),
      // The set holds and forwarders release at the final response; their onTerminated only covers an
      // end without one: no transaction object kept through Timer J/K for it (issue 9, bytes per UE).
      tellCompletedEnd: false,
      // 33.203 §7.1: responses to a protected request go from port_pc to port_us over SA2 of the set it came on.
      // A request the TU has seen routes its responses through its SetHold (the transaction's override).
      responseRoute: (_res, _req, ctx) => {
        const pc = protectedContextOf(ctx);
        return pc ? p.#core.toUe(pc.set, ctx) : undefined;
      },
    });
    const tp = new TracedPlain(trace);
    // Until start() returns, arrivals are dropped (as if the sockets were not bound yet).
    const receive = (b: Uint8Array, ctx: ReceiveContext) => void (p.#ready && layer.receive(b, ctx));
    // Issue 10 §2: past a few 503s a second, a source address at its pending limit is dropped
    // before its datagrams are parsed (counted), and so is one with maxInFlightPerSource REGISTERs
    // waiting at the S-CSCF: a flood from one address can neither starve other UEs of the plain
    // port nor queue more than that ahead of them at the S-CSCF.
    const onPlain = tp.handler((b: Uint8Array, ctx: ReceiveContext) => {
      // The S-CSCF may share an address with UEs (one host, loopback): its answers are always read.
      if (p.#ready && !p.#fromCore(ctx) && !p.#core.limits.readUnparsed(ctx.remote.address)) {
        p.#overSourceLimit++;
        return;
      }
      receive(b, ctx);
    });
    const raw = o.transport ? await o.transport(onPlain) : await edge.openPlain(o.address, o.port ?? 5060, onPlain);
    const plain = tp.wrap(raw);
    const epC = await o.backend.openEndpoint({ address: o.address, port: portC });
    const epS = await o.backend.openEndpoint({ address: o.address, port: portS });
    // Every authenticated arrival (requests and responses alike) may carry a new port_Uenc (§15A.2/§15A.6).
    const receiveProtected = (b: Uint8Array, ctx: ReceiveContext) => {
      const pc = p.#ready ? protectedContextOf(ctx) : undefined;
      if (pc) p.#learnEncap(pc);
      receive(b, ctx);
    };
    attachProtected(epC, receiveProtected, trace);
    attachProtected(epS, receiveProtected, trace);
    p.#epS = epS;
    // Spec digest §6.2: SIP over TCP through the SAs when the backend offers it (xfrm).
    const tcp = (p.#tcp = await PcscfTcp.open(o.backend, o.address, portC, portS, receiveProtected));
    for (const port of [portC, portS]) {
      const g = await edge.watchProtectedPort(o.address, port, (from) => p.#unprotectedOnProtected(from, port));
      if (g) p.#guards.push(g);
    }
    const port = plain.local.port;
    const backendEncap = o.backend.encapPort;
    const pathUri = `sip:term@${formatHostPort(o.address, port)};lr`;
    p.#core = {
      address: o.address,
      port,
      portC,
      portS,
      mode,
      policy: o.policy ?? {},
      regAwaitAuthMs: o.regAwaitAuthMs ?? REG_AWAIT_AUTH_MS,
      encapPort: o.encapPort ?? backendEncap ?? NAT_T_PORT,
      natInnerAddress: o.natInnerAddress ?? 'private',
      pathUri,
      clock,
      timers,
      layer,
      backend: o.backend,
      plain,
      epC,
      table,
      limits: new PendingLimits({ ...DEFAULT_PENDING_LIMITS, ...o.limits }, () => clock.now()),
      // Detached by stop(): a stopping P-CSCF keeps its registrations in the store for the next run.
      ...(o.state && {
        persist: (
          (save) => (reg: Registration, before?: RegState) =>
            void (p.#state && save(reg, before))
        )(persistTo(o.state)),
      }),
      emit: (name, payload) => p.#emit(name, payload),
      listens: (name) => p.#events.listenerCount(name) > 0,
      toCore: (): Route => ({ transport: plain, to: o.scscf }),
      toUe: (set: SaSet, answering?: ReceiveContext): Route =>
        tcp?.route(set, answering) ?? {
          transport: protectedTransport(epC, { set, ...trace }),
          to: { address: set.config.ue.ip, port: set.config.ue.portS },
        },
      isMine: (uri: string) => isMine(uri, o.address, [port, portC, portS]),
      refused: (ev) => p.#refused(ev),
      reject: (tx, req, ctx, status, reason, message, opts) => p.#reject(tx, req, ctx, status, reason, message, opts),
    };
    if (o.state) {
      // Issue 13 §3: the registrations of the previous run, before anything is served.
      p.#state = o.state;
      o.state.setNodeInfo({ portC, portS });
      p.#restored = await restoreRegistrations(p.#core, o.state, (impi, e) =>
        p.#emit('deregistered', { impi, reason: `not restored from the state store: ${e.message}` }),
      );
    }
    p.#ready = true;
    return p;
  }

  #scscf!: { address: string; port: number };
  #ready = false;

  get address(): string {
    return this.#core.address;
  }
  /** The plain SIP port. */
  get port(): number {
    return this.#core.port;
  }
  /** port_pc. */
  get portC(): number {
    return this.#core.portC;
  }
  /** port_ps. */
  get portS(): number {
    return this.#core.portS;
  }
  /** The URI this P-CSCF puts in Path (and expects as Route on requests from the S-CSCF). */
  get pathUri(): string {
    return this.#core.pathUri;
  }

  on<K extends PcscfEventName>(name: K, fn: (ev: PcscfEvents[K]) => void): this {
    this.#events.on(name, fn);
    return this;
  }

  off<K extends PcscfEventName>(name: K, fn: (ev: PcscfEvents[K]) => void): this {
    this.#events.off(name, fn);
    return this;
  }

  /** Registrations with their SA sets (summary rows only: SPIs, ports, algorithms, counters; no keys). */
  registrations(): RegistrationView[] {
    return this.#core.table.views();
  }

  /** Registrations restored from the state store at start (issue 13 §3). */
  get restoredRegistrations(): number {
    return this.#restored.restored;
  }

  /** The start's restore (issue 13 §3): registrations restored, and a previous run's orphans the backend removed (xfrm). */
  get restoreReport(): RestoreReport {
    return this.#restored;
  }

  get counters(): PcscfCounters {
    return {
      rejected: { ...this.#rejected },
      unprotectedOnProtectedPort: this.#unprotected,
      droppedOverSourceLimit: this.#overSourceLimit,
    };
  }

  /** Deletes every SA set this P-CSCF installed, ends all transactions and closes its sockets. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const c = this.#core;
    // With a state store the registrations outlive this process: detached before the SAs go, and
    // the inbound marks brought down to exact (a planned restart refuses nothing fresh). A backend
    // whose SAs outlive the process (xfrm: the kernel's) leaves them for the next run to adopt.
    if (this.#state) c.backend.handOver?.();
    this.#state?.marks.close();
    this.#state = undefined;
    await c.table.clear('P-CSCF stopped');
    c.layer.close();
    c.epC.close();
    this.#epS.close();
    await this.#tcp?.close();
    await c.plain.close();
    await Promise.all(this.#guards.map((g) => g.close()));
  }

  /** Requests from the configured S-CSCF address and port are the core's (the S-CSCF sends from its listening socket). */
  #fromCore(ctx: ReceiveContext): boolean {
    return (
      protectedContextOf(ctx) === undefined && sameAddress(ctx.remote.address, this.#scscf.address) && ctx.remote.port === this.#scscf.port
    );
  }

  #emit<K extends PcscfEventName>(name: K, payload: PcscfEvents[K]): void {
    this.#events.emit(name, payload);
  }

  #dispatch(tx: ServerTransaction, req: SipRequest, ctx: ReceiveContext): void {
    const core = this.#core;
    const p = protectedContextOf(ctx);
    if (!p) {
      if (this.#fromCore(ctx)) return req.method === 'CANCEL' ? onCancel(core, tx, req) : fromCore(core, tx, req, ctx);
      if (req.method === 'REGISTER') {
        // try/catch inline, not a guard taking a closure: every REGISTER passes here.
        try {
          return onUnprotectedRegister(core, tx, req, ctx);
        } catch (e) {
          return this.#internal(tx, e);
        }
      }
      return this.#reject(
        tx,
        req,
        ctx,
        403,
        'unprotected-request',
        `${req.method} arrived unprotected: outside REGISTER a UE may only send over its SAs (33.203 §7.1)`,
      );
    }
    const set = p.set;
    // Spec digest §8 rule 4: a set is in use while a transaction that arrived on it waits for its
    // final response; released once that response is out (or the transaction ends without one).
    const hold = new SetHold(core, set, ctx);
    tx.user = hold;
    tx.setResponseRoute(hold.route);
    const reg = core.table.ownerOf(set);
    // Every REGISTER over a set goes to its owner's registration machine, which tells temporary,
    // current and old sets apart (and checks the identities against that registration).
    if (req.method === 'REGISTER') {
      if (!reg)
        return this.#reject(
          tx,
          req,
          ctx,
          403,
          set.state === 'temporary' ? 'not-temporary-set' : 'unknown-sa-set',
          `SA set ${set.id} belongs to no registration`,
        );
      try {
        return onRegisterOverSet(core, tx, req, ctx, reg, set);
      } catch (e) {
        return this.#internal(tx, e);
      }
    }
    if (set.state === 'temporary') {
      return this.#reject(
        tx,
        req,
        ctx,
        403,
        'request-over-temporary-set',
        `${req.method} over the temporary SA set ${set.id}: only the protected REGISTER may use it before the 200 OK (33.203 §7.2)`,
      );
    }
    if (!reg) return this.#reject(tx, req, ctx, 403, 'unknown-sa-set', `SA set ${set.id} belongs to no registration`);
    if (req.method === 'CANCEL') return onCancel(core, tx, req);
    return fromUe(core, tx, req, ctx, reg, set);
  }

  /**
   * Spec digest §15A.2/§15A.6: port_Uenc, the UE's NAT-mapped ESP-in-UDP source port, comes from
   * packets that passed the ICV and replay checks only (the SAD delivers nothing else; keepalives
   * never get here). The first one of a registration sets it; one from another port moves every
   * tunnel set of the registration there (a NAT rebinding). A new public *address* is a UE IP
   * change and is not followed: the SAs stay bound to the old one until the UE registers anew.
   */
  #learnEncap(p: ProtectedContext): void {
    if (p.set.config.mode !== 'udp-enc-tunnel' || p.outerEncapSrcPort === undefined) return;
    const reg = this.#core.table.ownerOf(p.set);
    if (!reg) return;
    const previous = reg.encap && sameAddress(reg.encap.address, reg.ueIp) ? reg.encap : undefined;
    // Every authenticated arrival comes here: the known mapping, spelt alike, is the one object kept.
    const encap =
      previous !== undefined && previous.port === p.outerEncapSrcPort && previous.address === p.outerSrc
        ? previous
        : { address: p.outerSrc, port: p.outerEncapSrcPort };
    if (!sameAddress(p.outerSrc, p.set.config.ue.ip)) {
      if (this.#ignoredFrom.get(reg) === `${encap.address}|${encap.port}`) return;
      this.#ignoredFrom.set(reg, `${encap.address}|${encap.port}`);
      this.#emit('nat-mapping', {
        impi: reg.impi,
        set: p.set.id,
        address: encap.address,
        port: encap.port,
        ...(previous ? { previous } : {}),
        followed: false,
        why: 'public address changed: a UE IP change, not followed (the UE must register anew)',
      });
      return;
    }
    let moved = false;
    for (const s of reg.sets) {
      if (s.config.mode !== 'udp-enc-tunnel' || !sameAddress(s.config.ue.ip, encap.address) || this.#learnt.get(s) === encap.port) continue;
      this.#core.backend.setPeerEncap(s, encap);
      this.#learnt.set(s, encap.port);
      moved = true;
    }
    const same = previous !== undefined && previous.port === encap.port && sameAddress(previous.address, encap.address);
    reg.encap = encap;
    if (!same) this.#core.persist?.(reg);
    if (same || !moved) return; // known mapping (a new set of the registration just joined it)
    // Without a NAT (forced UDP-enc-tun on loopback) the first learning is no news.
    if (!previous && !reg.natDetected && reg.round?.natDetected !== true) return;
    this.#emit('nat-mapping', {
      impi: reg.impi,
      set: p.set.id,
      address: encap.address,
      port: encap.port,
      ...(previous ? { previous } : {}),
      followed: true,
      why: previous
        ? `NAT rebinding: port_Uenc ${previous.port} → ${encap.port} after an authenticated packet; every tunnel SA set follows`
        : 'port_Uenc learnt from the first authenticated ESP-in-UDP packet',
    });
  }
  readonly #ignoredFrom = new WeakMap<object, string>();
  readonly #learnt = new WeakMap<SaSet, number>();

  #refused(ev: PcscfEvents['rejected']): void {
    this.#rejected[ev.reason] = (this.#rejected[ev.reason] ?? 0) + 1;
    this.#emit('rejected', ev);
  }

  #reject(
    tx: ServerTransaction,
    req: SipRequest,
    ctx: ReceiveContext,
    status: number,
    reason: RejectReason,
    message: string,
    opts: RejectOptions = {},
  ): void {
    this.#refused({
      reason,
      message,
      status,
      method: req.method,
      from: ctx.remote,
      ...(opts.impi !== undefined ? { impi: opts.impi } : {}),
    });
    if (req.method === 'ACK') return;
    if (opts.route) tx.setResponseRoute(opts.route);
    tx.respond(createResponse(req, status, undefined, [['Warning', warningValue(this.#core.address, message)], ...(opts.headers ?? [])]));
  }

  #internal(tx: ServerTransaction, e: unknown): void {
    const why = `internal error: ${e instanceof Error ? e.message : String(e)}`;
    if (tx.state === 'trying' || tx.state === 'proceeding')
      tx.respond(createResponse(tx.request, 500, undefined, [['Warning', warningValue(this.#core.address, why)]]));
  }

  #unprotectedOnProtected(from: { address: string; port: number }, port: number): void {
    this.#unprotected++;
    this.#emit('dropped', { reason: 'unprotected request to a protected port: dropped', from, port });
  }
}

/**
 * Spec digest §8 rule 4: a set is in use while a request that arrived on it waits for its final
 * response. Held at once; released (once) when the response is out or the transaction ends without
 * one. The server transaction's user (onTerminated) and its response route (over the set, 33.203
 * §7.1) too: one object per protected request, no table keyed by request (a WeakMap entry per
 * request cost a hash insert and ephemeron work in every GC). A route the TU sets later (an answer
 * that deletes the set once out, a refusal) replaces this one; the transaction's end still releases.
 */
class SetHold {
  #held = true;
  constructor(
    private readonly core: PcscfCore,
    private readonly set: SaSet,
    private readonly ctx: ReceiveContext,
  ) {
    core.table.hold(set);
  }
  readonly route = (res: SipResponse): Route => {
    const r = this.core.toUe(this.set, this.ctx);
    return res.status >= 200 ? { to: r.to, transport: afterSend(r.transport, this.release) } : r;
  };
  readonly release = (): void => {
    if (!this.#held) return;
    this.#held = false;
    this.core.table.release(this.set);
  };
  onTerminated(): void {
    this.release();
  }
}

/** Whether a Route URI designates this P-CSCF (its address and one of its ports). */
function isMine(uri: string, address: string, ports: readonly number[]): boolean {
  const r = parseUri(uri);
  if (!r.ok) return false;
  const u = r.value;
  return u.scheme !== 'tel' && sameAddress(u.host, address) && ports.includes(u.port ?? 5060);
}
