// Test helpers (not a test file): text → bytes, a spy transport that records sends in virtual time,
// receive contexts, and a REGISTER/INVITE factory.
import { createRequest, newBranch } from './builders.ts';
import type { ManualClock } from './clock.ts';
import type { SipRequest } from './message.ts';
import { parseMessageOrThrow } from './parser.ts';
import type { Destination, Endpoint, ReceiveContext, SipTransport, TransportProtocol } from './transport.ts';

/** Text with "\n" line ends → CRLF bytes. */
export function crlf(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'utf8'));
}

export function bytes(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

export interface SentRecord {
  readonly at: number;
  readonly to: Destination;
  readonly text: string;
}

export interface SpyTransport extends SipTransport {
  readonly sent: SentRecord[];
  /** Make the next sends reject. */
  failing: boolean;
  /** Start lines of the sent messages. */
  startLines(): string[];
}

export function spyTransport(
  clock: ManualClock,
  protocol: TransportProtocol = 'udp',
  local: Endpoint = { address: '192.0.2.10', port: 5060 },
): SpyTransport {
  const sent: SentRecord[] = [];
  const t: SpyTransport = {
    protocol,
    local,
    sent,
    failing: false,
    send(b: Uint8Array, to: Destination): Promise<void> {
      if (t.failing) return Promise.reject(new Error('network down'));
      sent.push({ at: clock.now(), to, text: Buffer.from(b).toString('utf8') });
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
    startLines: () => sent.map((s) => s.text.slice(0, s.text.indexOf('\r\n'))),
  };
  return t;
}

export function context(
  transport: SipTransport,
  remote: Endpoint = { address: '192.0.2.1', port: 5060 },
  extra: Partial<ReceiveContext> = {},
): ReceiveContext {
  return { protocol: transport.protocol, local: transport.local, remote, transport, ...extra };
}

export function request(
  method: string,
  opts: { branch?: string; transport?: string; host?: string; port?: number; toTag?: string } = {},
): SipRequest {
  const transport = opts.transport ?? 'UDP';
  return createRequest({
    method,
    uri: 'sip:bob@biloxi.example.com',
    via: `SIP/2.0/${transport} ${opts.host ?? '192.0.2.1'}:${opts.port ?? 5060};branch=${opts.branch ?? newBranch()}`,
    from: '<sip:alice@atlanta.example.com>;tag=1928301774',
    to: `<sip:bob@biloxi.example.com>${opts.toTag ? `;tag=${opts.toTag}` : ''}`,
    callId: 'a84b4c76e66710@pc33.atlanta.example.com',
    cseq: 314159,
  });
}

/** Parses the n-th recorded send. */
export function sentMessage(t: SpyTransport, n: number) {
  return parseMessageOrThrow(bytes(t.sent[n]!.text));
}

/** Lets queued promise callbacks (transport failures) run. */
export function flush(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
