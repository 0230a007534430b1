// Splits a byte stream (TCP, RFC 3261 §18.3) into messages: skip CRLF keep-alives between messages
// (RFC 5626 §3.5.1), find the empty line ending the head, read Content-Length (mandatory on streams),
// wait for the body. One framer per connection; after an error it stays failed (framing is lost:
// close the connection), but the messages framed before the error in the same chunk are kept.
import { SipParseError, show } from './errors.ts';
import { DEFAULT_LIMITS, findHeadEnd, parseHeaderLine, splitHeadLines, type ParseLimits } from './parser.ts';

const CR = 0x0d;
const LF = 0x0a;

/** Options of `StreamFramer`: the parse limits it enforces while framing. */
export interface StreamFramerOptions extends Partial<ParseLimits> {
  /** Called for each CRLFCRLF "ping" skipped between messages (answer with a CRLF "pong"). */
  readonly onKeepAlive?: () => void;
}

/** What one chunk gave: the messages completed, in order, and the framing error that followed, if any. */
export interface FramedChunk {
  readonly messages: Uint8Array[];
  /** Set once framing failed: nothing more comes from this framer (close the connection). */
  readonly error?: SipParseError;
}

/** Cuts a TCP byte stream into SIP messages by Content-Length (RFC 3261 §18.3); skips CRLF keep-alives (RFC 5626 §3.5.1) between messages. */
export class StreamFramer {
  /** Received octets live in store[start, end); the store grows by doubling, so feeding is linear. */
  private store = new Uint8Array(4096);
  private start = 0;
  private end = 0;
  /** Where to resume the search for the end of the head (relative to start). */
  private scanFrom = 0;
  /** Length of the message being assembled, once its head is complete. */
  private total: number | undefined;
  private failed: SipParseError | undefined;
  private pendingLf = 0;
  private readonly limits: ParseLimits;
  private readonly onKeepAlive: (() => void) | undefined;

  constructor(options: StreamFramerOptions = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...options };
    this.onKeepAlive = options.onKeepAlive;
  }

  /** Octets held while waiting for the rest of a message. */
  get buffered(): number {
    return this.end - this.start;
  }

  /**
   * Feeds a chunk; returns the messages it completed, in order, and the framing error that ended
   * the stream, if one did. Messages framed before a malformed one in the same chunk are kept
   * (issue 10 §5). Never throws on bad input.
   */
  push(chunk: Uint8Array): FramedChunk {
    if (this.failed) return { messages: [], error: this.failed };
    const messages: Uint8Array[] = [];
    try {
      this.append(chunk);
      this.drain(messages);
      return { messages };
    } catch (e) {
      if (!(e instanceof SipParseError)) throw e; // a bug, for the caller's boundary
      this.failed = e;
      this.start = this.end = 0;
      return { messages, error: e };
    }
  }

  private get view(): Uint8Array {
    return this.store.subarray(this.start, this.end);
  }

  private append(chunk: Uint8Array): void {
    const live = this.end - this.start;
    if (this.end + chunk.length > this.store.length) {
      const target =
        live + chunk.length > this.store.length ? new Uint8Array(Math.max(2 * this.store.length, live + chunk.length)) : this.store;
      target.set(this.view, 0); // set() copies correctly even when target is the store itself
      this.store = target;
      this.start = 0;
      this.end = live;
    }
    this.store.set(chunk, this.end);
    this.end += chunk.length;
  }

  private drain(out: Uint8Array[]): void {
    for (;;) {
      if (this.total === undefined) {
        if (this.scanFrom === 0) this.skipKeepAlives();
        if (this.buffered === 0) break;
        const headEnd = findHeadEnd(this.view, this.scanFrom);
        if (headEnd < 0) {
          if (this.buffered > this.limits.maxMessageSize) {
            throw new SipParseError('SIP_TOO_LARGE', `no end of headers within ${this.limits.maxMessageSize} octets`);
          }
          // The empty line may straddle chunks: rescan the last 3 octets next time.
          this.scanFrom = Math.max(1, this.buffered - 3);
          break;
        }
        this.total = headEnd + this.contentLength(this.view.subarray(0, headEnd));
        if (this.total > this.limits.maxMessageSize) {
          throw new SipParseError('SIP_TOO_LARGE', `message of ${this.total} octets, limit ${this.limits.maxMessageSize}`);
        }
      }
      if (this.buffered < this.total) break;
      out.push(this.view.slice(0, this.total));
      this.start += this.total;
      if (this.start === this.end) this.start = this.end = 0;
      this.total = undefined;
      this.scanFrom = 0;
    }
  }

  /** Drops CR/LF before a start line; counts LFs so that CRLFCRLF reports one ping. */
  private skipKeepAlives(): void {
    while (this.start < this.end && (this.store[this.start] === CR || this.store[this.start] === LF)) {
      if (this.store[this.start] === LF && ++this.pendingLf === 2) {
        this.pendingLf = 0;
        this.onKeepAlive?.();
      }
      this.start++;
    }
    if (this.start < this.end) this.pendingLf = 0;
    else this.start = this.end = 0;
  }

  private contentLength(head: Uint8Array): number {
    // latin1 keeps every octet; only the ASCII name and digits matter here, the parser checks the rest.
    const text = Buffer.from(head.buffer, head.byteOffset, head.length).toString('latin1');
    const values = splitHeadLines(text, this.limits)
      .slice(1)
      .filter((l) => /^\s*(content-length|l)\s*:/i.test(l))
      .map((l) => parseHeaderLine(l).value);
    // RFC 3261 §18.3: "The Content-Length header field MUST be used with stream oriented transports."
    if (values.length === 0) throw new SipParseError('SIP_MISSING_HEADER', 'Content-Length is mandatory on a stream', 'Content-Length');
    if (new Set(values).size > 1)
      throw new SipParseError('SIP_BAD_CONTENT_LENGTH', `${values.length} different Content-Length values`, 'Content-Length');
    const v = values[0]!;
    if (!/^[0-9]{1,10}$/.test(v))
      throw new SipParseError('SIP_BAD_CONTENT_LENGTH', `Content-Length ${show(v)} is not a number`, 'Content-Length');
    return Number(v);
  }
}
