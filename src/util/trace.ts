// One event per SIP message crossing a transport, for timelines (the demo) and logs. Built at the
// transport edge so network functions need no tracing code of their own. Never carries keys.

export interface TraceEndpoint {
  readonly address: string;
  readonly port: number;
}

export interface SipTraceEvent {
  /** Milliseconds since the epoch. */
  readonly t: number;
  /** Who saw it: 'ue', 'pcscf', 'scscf', … */
  readonly node: string;
  readonly dir: 'send' | 'recv';
  readonly local: TraceEndpoint;
  readonly remote: TraceEndpoint;
  /** Set when the message went or came over an SA. */
  readonly sa?: { readonly name: string; readonly spi: number; readonly set: string; readonly state: string };
  /** The start line. */
  readonly firstLine: string;
  readonly bytes: Uint8Array;
}

export type SipTracer = (e: SipTraceEvent) => void;

export function firstLineOf(bytes: Uint8Array): string {
  const n = Math.min(bytes.length, 512);
  let end = 0;
  while (end < n && bytes[end] !== 0x0d && bytes[end] !== 0x0a) end++;
  return Buffer.from(bytes.buffer, bytes.byteOffset, end).toString('latin1');
}
