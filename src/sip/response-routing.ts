// Where a response goes by default: RFC 3261 §18.2.2 with RFC 3581 §4 (rport). This is only the
// default: in IMS the P-CSCF sends UDP responses from port_pc to port_us (TS 33.203 §7.1), so the
// transaction layer lets a policy or the TU override the whole route (transport and destination).
import type { SipResponse } from './message.ts';
import type { Destination, ReceiveContext, SipTransport } from './transport.ts';
import { defaultPort, parseVia, type Via } from './via.ts';

/** A transport to leave through and the destination on it. */
export interface Route {
  readonly transport: SipTransport;
  readonly to: Destination;
}

/** A Via value and its parse, for callers that parsed it already (the transaction layer's stamped top Via). */
export interface KnownVia {
  readonly text: string;
  readonly via: Via;
}

/**
 * The RFC destination of `response`, judged from its top Via and the context of the request:
 * - reliable: "the response MUST be sent using the existing connection to the source of the original
 *   request … if that connection is still open"; otherwise to `received` (or sent-by) and the sent-by port;
 * - "if the Via header field value contains a "maddr" parameter, the response MUST be forwarded to the
 *   address listed there, using the port indicated in "sent-by", or port 5060 if none is present";
 * - RFC 3581 §4: with "both a "received" parameter and an "rport" parameter, the response MUST be sent
 *   to the IP address listed in the "received" parameter, and the port in the "rport" parameter";
 * - "if the top Via has a "received" parameter, the response MUST be sent to the address in the
 *   "received" parameter, using the port indicated in the "sent-by" value, or using port 5060";
 * - otherwise to sent-by (a domain name is returned as is: resolving it, §18.2.2 / RFC 3263, is the
 *   caller's business).
 * An unparseable top Via falls back to the packet source.
 */
export function defaultResponseDestination(response: SipResponse, context: ReceiveContext, known?: KnownVia): Destination {
  const top = response.headers.get('Via');
  let via: Via | undefined;
  if (top !== undefined && known !== undefined && top === known.text) via = known.via;
  else if (top !== undefined) {
    const parsed = parseVia(top);
    via = parsed.ok ? parsed.value : undefined;
  }
  if (!via) return { ...context.remote, ...(context.connectionId !== undefined && { connectionId: context.connectionId }) };
  const received = via.params.getUnquoted('received') ?? undefined;
  const sentByPort = via.port ?? defaultPort(via.transport);
  if (context.protocol === 'tcp') {
    return {
      address: received ?? via.host,
      port: sentByPort,
      ...(context.connectionId !== undefined && { connectionId: context.connectionId }),
    };
  }
  const maddr = via.params.getUnquoted('maddr');
  if (typeof maddr === 'string') return { address: maddr.replace(/^\[|\]$/g, ''), port: sentByPort };
  const rport = via.params.get('rport');
  if (received && typeof rport === 'string') return { address: received, port: Number(rport) };
  if (received) return { address: received, port: sentByPort };
  return { address: via.host, port: sentByPort };
}

/** The default route: back through the transport the request came in on (RFC 3581 §4: "from the same address and port"). */
export function defaultResponseRoute(response: SipResponse, context: ReceiveContext, known?: KnownVia): Route {
  return { transport: context.transport, to: defaultResponseDestination(response, context, known) };
}
