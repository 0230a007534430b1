// The SIP layer's public surface without sockets: model, codecs, parser/serializer, builders,
// transactions and the in-memory network. The socket transports are imported from their own files
// (udp-transport.ts, tcp-transport.ts) so that importing a codec never loads node:dgram or node:net.
export * from './errors.ts';
export * from './message.ts';
export { Params, parseParams, type Param, type ParamMode } from './params.ts';
export { quote, unquote } from './_syntax.ts';
export * from './uri.ts';
export * from './name-addr.ts';
export * from './via.ts';
export * from './cseq.ts';
export { parseMessage, parseMessageOrThrow, isKeepAlive, DEFAULT_LIMITS, type ParseLimits } from './parser.ts';
export * from './serializer.ts';
export * from './stream-framer.ts';
export * from './validate.ts';
export * from './builders.ts';
export { reasonPhrase } from './reason-phrases.ts';
export * from './clock.ts';
export * from './timers.ts';
export * from './transport.ts';
export * from './response-routing.ts';
export type { ResponseRoutePolicy, RouteOverride } from './server-routing.ts';
export type { ClientTransactionUser, ServerTransactionUser, TransactionUserBase } from './transaction.ts';
export * from './client-non-invite.ts';
export * from './client-invite.ts';
export * from './server-non-invite.ts';
export * from './server-invite.ts';
export * from './transaction-manager.ts';
export * from './memory-transport.ts';
