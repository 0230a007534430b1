// Chooses the route of each response a server transaction sends, in this order: the TU's override for
// this transaction, the layer's policy, the RFC 3261 §18.2.2 / RFC 3581 default. IMS needs the first two:
// TS 33.203 §7.1 has the P-CSCF send UDP responses from port_pc to port_us, not back to the source port.
import type { SipRequest, SipResponse } from './message.ts';
import { defaultResponseRoute, type KnownVia, type Route } from './response-routing.ts';
import type { ReceiveContext } from './transport.ts';

/** Layer-wide policy; undefined means "use the default". */
export type ResponseRoutePolicy = (response: SipResponse, request: SipRequest, context: ReceiveContext) => Route | undefined;

/** A fixed route, or one computed per response. */
export type RouteOverride = Route | ((response: SipResponse) => Route);

export class ResponseRouter {
  private override: RouteOverride | undefined;

  constructor(
    private readonly request: SipRequest,
    private readonly context: ReceiveContext,
    private readonly policy?: ResponseRoutePolicy,
    /** The request's top Via, parsed already (the default route then parses no Via per response). */
    private readonly topVia?: KnownVia,
  ) {}

  set(override: RouteOverride | undefined): void {
    this.override = override;
  }

  route(response: SipResponse): Route {
    const o = this.override;
    if (o) return typeof o === 'function' ? o(response) : o;
    return this.policy?.(response, this.request, this.context) ?? defaultResponseRoute(response, this.context, this.topVia);
  }
}
