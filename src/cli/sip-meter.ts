// SIP message and transaction metrics from the transport tracer (util/trace.ts): requests and
// responses by method and status, and transaction latency from a request to its final response,
// matched by the top Via branch. Labels come from untrusted messages, so they are bounded: unknown
// methods count as "other", and the table of open transactions is capped and ages out.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { SipTraceEvent, SipTracer } from '../util/trace.ts';

const METHODS = new Set([
  'REGISTER',
  'INVITE',
  'ACK',
  'BYE',
  'CANCEL',
  'OPTIONS',
  'MESSAGE',
  'SUBSCRIBE',
  'NOTIFY',
  'PUBLISH',
  'INFO',
  'PRACK',
  'UPDATE',
  'REFER',
]);
/** 64·T1: no transaction outlives it (RFC 3261 Timer B/F). */
const MAX_AGE_MS = 32_000;
const MAX_OPEN = 50_000;
/** Enough to reach the Via and CSeq headers of any sane message. */
const HEAD_BYTES = 2048;

const CSEQ = /^cseq[ \t]*:[ \t]*\d+[ \t]+([A-Za-z]+)/i;

const method = (m: string | undefined) => (m !== undefined && METHODS.has(m) ? m : 'other');

interface Open {
  readonly t: number;
  readonly method: string;
}

/** A bounded, insertion-ordered table of transactions waiting for their final response. */
class OpenTable {
  readonly #m = new Map<string, Open>();
  add(branch: string, o: Open): void {
    if (this.#m.has(branch)) return; // a retransmission: the first send starts the clock
    for (const [k, v] of this.#m) {
      if (this.#m.size < MAX_OPEN && o.t - v.t < MAX_AGE_MS) break;
      this.#m.delete(k);
    }
    this.#m.set(branch, o);
  }
  take(branch: string): Open | undefined {
    const o = this.#m.get(branch);
    if (o) this.#m.delete(branch);
    return o;
  }
  get size(): number {
    return this.#m.size;
  }
}

export class SipMeter {
  readonly #requests: Counter<'dir' | 'method'>;
  readonly #responses: Counter<'dir' | 'method' | 'status'>;
  readonly #latency: Histogram<'side' | 'method'>;
  // prom-client hashes a label object on every inc(); its children, cached here, do not.
  readonly #reqChild = new Map<string, { inc(): void }>();
  readonly #resChild = new Map<string, { inc(): void }>();
  readonly #latChild = new Map<string, { observe(v: number): void }>();
  /** Requests we sent (client transactions) and received (server transactions). */
  readonly #client = new OpenTable();
  readonly #server = new OpenTable();

  constructor(registry: Registry, prefix: string) {
    this.#requests = new Counter({
      name: `${prefix}_sip_requests_total`,
      help: 'SIP requests by direction and method (retransmissions included)',
      labelNames: ['dir', 'method'],
      registers: [registry],
    });
    this.#responses = new Counter({
      name: `${prefix}_sip_responses_total`,
      help: 'SIP responses by direction, CSeq method and status code',
      labelNames: ['dir', 'method', 'status'],
      registers: [registry],
    });
    this.#latency = new Histogram({
      name: `${prefix}_sip_transaction_seconds`,
      help: 'Time from a request to its final response: side=client (we sent the request) or server (we answered it)',
      labelNames: ['side', 'method'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 32],
      registers: [registry],
    });
  }

  /** The tracer to give the network function; `next` still sees every event. */
  tracer(next?: SipTracer): SipTracer {
    return (e) => {
      this.see(e);
      next?.(e);
    };
  }

  see(e: SipTraceEvent): void {
    const line = e.firstLine;
    if (line.startsWith('SIP/2.0 ')) {
      const code = Number(line.slice(8, 11));
      const status = code >= 100 && code <= 699 ? String(code) : 'other';
      const m = method(cseqMethodOf(e.bytes));
      const key = `${e.dir} ${m} ${status}`;
      let c = this.#resChild.get(key);
      if (!c) this.#resChild.set(key, (c = this.#responses.labels(e.dir, m, status)));
      c.inc();
      if (code < 200) return;
      const branch = branchOf(e.bytes);
      if (branch === undefined) return;
      const open = (e.dir === 'recv' ? this.#client : this.#server).take(branch);
      if (open) {
        const side = e.dir === 'recv' ? 'client' : 'server';
        let h = this.#latChild.get(`${side} ${open.method}`);
        if (!h) this.#latChild.set(`${side} ${open.method}`, (h = this.#latency.labels(side, open.method)));
        h.observe(Math.max(0, e.t - open.t) / 1000);
      }
      return;
    }
    const m = method(line.slice(0, line.indexOf(' ')));
    const key = `${e.dir} ${m}`;
    let c = this.#reqChild.get(key);
    if (!c) this.#reqChild.set(key, (c = this.#requests.labels(e.dir, m)));
    c.inc();
    if (m === 'ACK') return; // no response, no transaction of its own
    const branch = branchOf(e.bytes);
    if (branch !== undefined) (e.dir === 'send' ? this.#client : this.#server).add(branch, { t: e.t, method: m });
  }

  /** Transactions waiting for a final response (for tests and a gauge). */
  get open(): number {
    return this.#client.size + this.#server.size;
  }
}

// Decoding a whole message costs more than everything else here: find the two fields in the bytes
// and decode only them. The top Via comes before any other header carrying ";branch=".
function branchOf(bytes: Uint8Array): string | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, HEAD_BYTES));
  const at = buf.indexOf('branch=');
  if (at < 0) return undefined;
  let end = at + 7;
  while (end < buf.length && end < at + 7 + 128) {
    const c = buf[end]!;
    if (c === 0x3b || c === 0x2c || c === 0x20 || c === 0x0d || c === 0x0a || c === 0x09) break;
    end++;
  }
  return end > at + 7 ? buf.toString('latin1', at + 7, end) : undefined;
}

function cseqMethodOf(bytes: Uint8Array): string | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, HEAD_BYTES));
  let at = buf.indexOf('\nCSeq:');
  if (at < 0) at = buf.indexOf('\ncseq:');
  if (at < 0) return undefined;
  return CSEQ.exec(buf.toString('latin1', at + 1, Math.min(buf.length, at + 48)))?.[1];
}
