// The edge of the SIP core (interfaces only): a transport sends bytes to an address and hands received
// bytes up with a context. UDP and TCP sockets, the in-memory network and the IPsec layer's protected
// endpoints all implement SipTransport; the transaction layer needs nothing more (no socket assumed).

/** The SIP transport protocol of a message or socket. */
export type TransportProtocol = 'udp' | 'tcp';

/** An IP address (textual) and a port. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** Where to send. On a stream transport, `connectionId` names the connection to use when it is still open. */
export interface Destination extends Endpoint {
  readonly connectionId?: string;
}

/**
 * Told when a fire-and-forget send (SipTransport.post) failed. An object with a method, not a
 * closure: a transaction is its own sink, so a send allocates no callback.
 */
export interface SendFailureSink {
  sendFailed(error: Error): void;
}

/** Something that sends SIP bytes to an endpoint: a UDP or TCP socket, the in-memory network, or an IPsec-protected endpoint. */
export interface SipTransport {
  readonly protocol: TransportProtocol;
  /** The bound local address and port (the real port when 0 was asked for). */
  readonly local: Endpoint;
  /** Resolves once the bytes were handed to the network; rejects with SipError on failure. */
  send(bytes: Uint8Array, to: Destination): Promise<void>;
  /**
   * The per-message fast path, where a transport has one: sends like `send` without a Promise or a
   * callback per message; a failure, now or later, goes to `sink` once (never thrown). Callers fall
   * back to `send` when a transport has no `post` (wrappers, tests' fakes).
   */
  post?(bytes: Uint8Array, to: Destination, sink: SendFailureSink): void;
  close(): Promise<void>;
}

/** What came with received bytes. */
export interface ReceiveContext {
  readonly protocol: TransportProtocol;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  /** Stream transports: the connection the bytes arrived on (responses go back on it, RFC 3261 §18.2.2). */
  readonly connectionId?: string;
  /** Opaque tag the IPsec layer attaches: the SA set a message arrived on. Undefined = unprotected. */
  readonly via?: unknown;
  /** The transport that received the bytes; responses leave through it unless a policy says otherwise. */
  readonly transport: SipTransport;
}

/** Receives one message's bytes (a datagram, or one framed stream message). */
export type ReceiveHandler = (bytes: Uint8Array, context: ReceiveContext) => void;

/** Input a transport could not frame (stream transports): reported, never thrown. */
export interface MalformedInput {
  /** A SipParseError code. */
  readonly code: string;
  readonly reason: string;
  /** Octets received on the connection so far that could not be framed. */
  readonly length: number;
  readonly context: ReceiveContext;
}

/** Receives input a transport could not frame. */
export type MalformedInputHandler = (info: MalformedInput) => void;

/** A map key for an endpoint, `addr:port` (`[v6]:port` for IPv6). */
export function endpointKey(e: Endpoint): string {
  return e.address.includes(':') ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}
