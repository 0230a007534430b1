// Writes a message in the strict form of RFC 3261 §7: CRLF line ends, `Name: value`, one line per
// stored header, Content-Length last and computed from the body (§20.14), then the empty line and body.
import { COMPACT_OF, type SipMessage } from './message.ts';

/** The start line and headers, each line ended by CRLF, without the final empty line (shared by serialize and format). */
function head(msg: SipMessage): string {
  // One string grown by appends (V8 ropes, flattened once by the encoder): no array of lines, no join.
  let out = msg.kind === 'request' ? `${msg.method} ${msg.uri} SIP/2.0\r\n` : `SIP/2.0 ${msg.status} ${msg.reason}\r\n`;
  const compact = msg.kind === 'request' && msg.compact;
  for (const f of msg.headers) {
    if (f.name === 'Content-Length') continue;
    out += ((compact && COMPACT_OF.get(f.name)) || f.name) + ': ' + f.value + '\r\n';
  }
  return out + (compact ? 'l: ' : 'Content-Length: ') + msg.body.length + '\r\n';
}

/** Serializes a SIP message to wire octets (UTF-8 head, CRLF line ends, body as is). */
export function serializeMessage(msg: SipMessage): Uint8Array {
  const h = Buffer.from(head(msg) + '\r\n', 'utf8');
  if (msg.body.length === 0) return new Uint8Array(h.buffer, h.byteOffset, h.length);
  const out = new Uint8Array(h.length + msg.body.length);
  out.set(h, 0);
  out.set(msg.body, h.length);
  return out;
}

/** A readable rendering for logs and errors (body decoded as UTF-8, invalid bytes replaced). */
export function formatMessage(msg: SipMessage): string {
  return `${head(msg)}\r\n${Buffer.from(msg.body.buffer, msg.body.byteOffset, msg.body.length).toString('utf8')}`;
}
