// Stateful proxying through the P-CSCF (RFC 3261 §16): one client transaction per server
// transaction, responses relayed without our Via. UE-originated requests (24.229 §5.2.6.3, 33.203
// §7: only over an SA set of a registration owning the identity) and requests from the S-CSCF to a
// registered UE (24.229 §5.2.6.4: over the current set, port_pc → port_us).
// DEVIATION: no Record-Route; in-dialog requests still pass here (UEs send everything over their
// SAs, the S-CSCF targets the registered Contact), so the dialog route set is not needed.
import type { SaSet } from '../ipsec/sa-set.ts';
import { protectedContextOf } from '../ipsec/backends/sip-endpoint.ts';
import { createCancel, createResponse } from '../sip/builders.ts';
import type { SipRequest, SipResponse } from '../sip/message.ts';
import type { Route } from '../sip/response-routing.ts';
import type { ServerTransaction } from '../sip/transaction-manager.ts';
import type { ClientTransactionUser } from '../sip/transaction.ts';
import type { ReceiveContext } from '../sip/transport.ts';
import type { PcscfCore } from './core.ts';
import { claimedIdentity, hostPortOf, impuKey } from './decisions.ts';
import { contactKey, type Registration, type RegistrationTable } from './registrations.ts';
import { assertIdentity, forwardCopy, popVia, pushVia, takeAkaKeys, warningValue } from './rewrite.ts';

/** What a caller may do with each response before it is relayed. */
export interface ForwardHooks {
  /**
   * Called with each response (our Via already removed, 100 Trying never). Return the response to
   * relay (possibly changed or replaced), or undefined to drop it.
   */
  onResponse?(res: SipResponse, ctx: ReceiveContext): Promise<SipResponse | undefined> | SipResponse | undefined;
  /** The response is for a UE: ik/ck are removed whatever it is (spec digest pitfall 4). */
  readonly toUe: boolean;
  /** The SA set the client transaction runs over (counted in flight until it ends). */
  readonly over?: SaSet;
  /** The request could not be forwarded or got no answer (the UE gets 408/503/500 from us). */
  onFailed?(): void;
}

/**
 * Sends `out` (Via pushed, Max-Forwards decremented) through `route` in a client transaction and
 * relays its responses to `tx`. Timeout → 408, transport failure → 503 (RFC 3261 §16.7, §16.9).
 */
export function forward(core: PcscfCore, tx: ServerTransaction, out: SipRequest, route: Route, hooks: ForwardHooks): void {
  // The set carries this transaction until its final response is in (spec digest §8 rule 4).
  if (hooks.over) core.table.hold(hooks.over);
  if (out.method === 'INVITE') forwarded.set(tx, { out, route });
  const f = new Forwarding(core, tx, route, hooks);
  try {
    core.layer.sendRequest(out, route, f);
  } catch (e) {
    f.release();
    f.fail(500, `cannot forward: ${(e as Error).message}`);
  }
}

/**
 * One forwarded request's client-transaction user: methods on one object, not four callbacks and
 * three helpers closed over the request (two forwards per registration).
 */
class Forwarding implements ClientTransactionUser {
  #held: boolean;
  constructor(
    private readonly core: PcscfCore,
    private readonly tx: ServerTransaction,
    private readonly route: Route,
    private readonly hooks: ForwardHooks,
  ) {
    this.#held = hooks.over !== undefined;
  }

  onResponse(res: SipResponse, ctx: ReceiveContext): void {
    if (res.status >= 200) this.release();
    if (res.status === 100) return; // RFC 3261 §16.7 step 5: a 100 is not forwarded
    const popped = popVia(res);
    const hooks = this.hooks;
    if (!hooks.onResponse) return this.relay(popped);
    // A hook that answers at once is relayed at once (most answers: no promise, no microtask).
    let r: ReturnType<NonNullable<ForwardHooks['onResponse']>>;
    try {
      r = hooks.onResponse(popped, ctx);
      if (!(r instanceof Promise)) return void (r && this.relay(r));
    } catch {
      return this.fail(500, 'internal error while relaying the response');
    }
    r.then((x) => x && this.relay(x)).catch(() => this.fail(500, 'internal error while relaying the response'));
  }

  onTimeout(): void {
    this.fail(408, `no answer from ${this.route.to.address}:${this.route.to.port}`);
  }

  onTransportError(_t: unknown, e: Error): void {
    this.fail(503, `cannot reach ${this.route.to.address}:${this.route.to.port}: ${e.message}`);
  }

  onTerminated(): void {
    this.release();
  }

  release(): void {
    const over = this.hooks.over;
    if (this.#held && over) this.core.table.release(over);
    this.#held = false;
  }

  relay(res: SipResponse): void {
    if (this.hooks.toUe) takeAkaKeys(res);
    this.tx.respond(res);
  }

  fail(status: number, why: string): void {
    this.hooks.onFailed?.();
    const tx = this.tx;
    if (tx.state === 'completed' || tx.state === 'terminated' || tx.state === 'confirmed' || tx.state === 'accepted') return;
    tx.respond(createResponse(tx.request, status, undefined, [['Warning', warningValue(this.core.address, why)]]));
  }
}

/** Forwarded INVITEs by their server transaction, so that a CANCEL can follow them (RFC 3261 §16.10). */
const forwarded = new WeakMap<ServerTransaction, { out: SipRequest; route: Route }>();

/**
 * RFC 3261 §16.10: a CANCEL is answered here (200, or 481 with no matching INVITE) and, when the
 * INVITE was forwarded and is still unanswered, a CANCEL of our forwarded INVITE (same branch)
 * follows it along the same route.
 */
export function onCancel(core: PcscfCore, tx: ServerTransaction, req: SipRequest): void {
  const target = core.layer.findCancelTarget(req);
  if (!target) return void tx.respond(createResponse(req, 481));
  tx.respond(createResponse(req, 200));
  const f = forwarded.get(target);
  if (!f || target.state !== 'proceeding') return;
  try {
    core.layer.sendRequest(createCancel(f.out), f.route, { onResponse: () => {} });
  } catch {
    // already cancelled: nothing more to do
  }
}

/**
 * An ACK outside any transaction (the ACK of a 2xx, RFC 3261 §13.2.2.4): forwarded statelessly,
 * from a UE only over an SA set of a registration (to the S-CSCF), from the S-CSCF to the UE its
 * Request-URI names (over the current set). Anything else is dropped: an ACK gets no answer.
 */
export function onAck(core: PcscfCore, ack: SipRequest, ctx: ReceiveContext, fromCoreSide: boolean): void {
  const out = forwardCopy(ack, (u) => core.isMine(u));
  if (!out) return;
  let route: Route;
  if (fromCoreSide) {
    const set = registrationForTarget(core.table, ack.uri)?.current;
    if (!set) return;
    route = core.toUe(set);
    pushVia(out, core.address, core.portC, route.transport.protocol);
  } else {
    const set = protectedContextOf(ctx)?.set;
    const reg = set && core.table.ownerOf(set);
    if (!set || !reg?.current || (set !== reg.current && !reg.old.includes(set))) return;
    pushVia(out, core.address, core.port);
    route = core.toCore();
  }
  core.layer.sendStateless(out, route).catch(() => {});
}

/**
 * A request from a UE over `set` (current, or old for in-flight dialog traffic): the identity it
 * claims (P-Preferred-Identity, else From) must be an IMPU of the registration owning the set;
 * then P-Asserted-Identity replaces it and the request goes to the S-CSCF (24.229 §5.2.6.3).
 */
export function fromUe(core: PcscfCore, tx: ServerTransaction, req: SipRequest, ctx: ReceiveContext, reg: Registration, set: SaSet): void {
  if (!reg.current) {
    core.reject(tx, req, ctx, 403, 'not-registered', `the registration of SA set ${set.id} is not (or no longer) registered`, {
      impi: reg.impi,
    });
    return;
  }
  const claimed = claimedIdentity(req);
  const key = claimed === undefined ? undefined : impuKey(claimed);
  const asserted = reg.impus.find((u) => impuKey(u) === key);
  if (key === undefined || asserted === undefined) {
    const owner = key === undefined ? undefined : core.table.byImpu(key);
    const other = owner !== reg ? owner : undefined;
    if (other) {
      core.reject(
        tx,
        req,
        ctx,
        403,
        'other-registration-identity',
        `request over the SA set of another registration: ${claimed} is not an identity of ${reg.impi} (set ${set.id})`,
        { impi: reg.impi },
      );
    } else {
      core.reject(
        tx,
        req,
        ctx,
        403,
        'identity-not-registered',
        `${claimed ?? 'the claimed identity'} is not a registered public identity of ${reg.impi}`,
        { impi: reg.impi },
      );
    }
    return;
  }
  const out = forwardCopy(req, (u) => core.isMine(u));
  if (!out) {
    core.reject(tx, req, ctx, 483, 'too-many-hops', 'Max-Forwards reached 0', { impi: reg.impi });
    return;
  }
  // 24.229 §5.2.6.3.2: with no route left, the stored Service-Route is the way to the S-CSCF.
  if (!out.headers.has('Route') && reg.serviceRoute.length > 0) out.headers.set('Route', reg.serviceRoute);
  assertIdentity(out, asserted);
  pushVia(out, core.address, core.port);
  forward(core, tx, out, core.toCore(), { toUe: true });
}

/** The registration whose contact the Request-URI names (24.229 §5.2.6.4: the Contact the UE registered); O(1). */
export function registrationForTarget(table: RegistrationTable, uri: string): Registration | undefined {
  return table.byTarget(contactKey(uri), hostPortOf(uri));
}

/**
 * A request from the S-CSCF to a UE (Route: our Path URI; Request-URI: the UE's Contact): our Via
 * with sent-by port_pc, over the current set from port_pc to port_us. The UE's answer may come on
 * port_pc (SA4) or port_ps (SA1, spec digest §6.2); it must come over a set of that registration.
 */
export function fromCore(core: PcscfCore, tx: ServerTransaction, req: SipRequest, ctx: ReceiveContext): void {
  const reg = registrationForTarget(core.table, req.uri);
  if (!reg) {
    core.reject(tx, req, ctx, 404, 'no-registration-for-target', `no registration has the contact ${req.uri}`);
    return;
  }
  const set = reg.current;
  if (!set) {
    core.reject(tx, req, ctx, 480, 'not-registered', `${reg.impi} has no established SA set`, { impi: reg.impi });
    return;
  }
  const out = forwardCopy(req, (u) => core.isMine(u));
  if (!out) {
    core.reject(tx, req, ctx, 483, 'too-many-hops', 'Max-Forwards reached 0', { impi: reg.impi });
    return;
  }
  const route = core.toUe(set);
  pushVia(out, core.address, core.portC, route.transport.protocol);
  forward(core, tx, out, route, {
    toUe: false,
    over: set,
    onResponse: (res, rctx) => {
      const p = protectedContextOf(rctx);
      if (!p || core.table.ownerOf(p.set) !== reg) {
        core.refused({
          reason: 'response-over-wrong-set',
          message: `response to a request for ${reg.impi} arrived ${p ? `over SA set ${p.set.id} of another registration` : 'unprotected'}: dropped`,
          status: res.status,
          from: rctx.remote,
          impi: reg.impi,
        });
        return undefined;
      }
      return res;
    },
  });
}
