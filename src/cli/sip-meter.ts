// SIP message and transaction metrics from the transport tracer (util/trace.ts): requests and
// responses by method and status, and transaction latency from a request to its final response,
// matched by the top Via branch. Labels come from untrusted messages, so they are bounded: unknown
// methods count as "other", and the table of open transactions is capped and ages out.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { SipTraceEvent, SipTracer } from '../util/trace.ts';

const METHODS = new Set(['REGISTER', 'INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'MESSAGE', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'INFO', 'PRACK', 'UPDATE', 'REFER']);
/** 64·T1: no transaction outlives it (RFC 3261 Timer B/F). */
const MAX_AGE_MS = 32_000;
const MAX_OPEN = 50_000;
/** Enough to reach the Via and CSeq headers of any sane message. */
const HEAD_BYTES = 2048;

const BRANCH = /^(?:via|v)[ \t]*:[^\r\n]*?;[ \t]*branch[ \t]*=[ \t]*([^;,\s]+)/im;
const CSEQ = /^cseq[ \t]*:[ \t]*\d+[ \t]+([A-Za-z]+)/im;

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
  /** Requests we sent (client transactions) and received (server transactions). */
  readonly #client = new OpenTable();
  readonly #server = new OpenTable();

  constructor(registry: Registry, prefix: string) {
    this.#requests = new Counter({ name: `${prefix}_sip_requests_total`, help: 'SIP requests by direction and method (retransmissions included)', labelNames: ['dir', 'method'], registers: [registry] });
    this.#responses = new Counter({ name: `${prefix}_sip_responses_total`, help: 'SIP responses by direction, CSeq method and status code', labelNames: ['dir', 'method', 'status'], registers: [registry] });
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
      const head = headOf(e.bytes);
      const m = method(CSEQ.exec(head)?.[1]);
      this.#responses.inc({ dir: e.dir, method: m, status });
      if (code < 200) return;
      const branch = BRANCH.exec(head)?.[1];
      if (branch === undefined) return;
      const open = (e.dir === 'recv' ? this.#client : this.#server).take(branch);
      if (open) this.#latency.observe({ side: e.dir === 'recv' ? 'client' : 'server', method: open.method }, Math.max(0, e.t - open.t) / 1000);
      return;
    }
    const m = method(line.slice(0, line.indexOf(' ')));
    this.#requests.inc({ dir: e.dir, method: m });
    if (m === 'ACK') return; // no response, no transaction of its own
    const branch = BRANCH.exec(headOf(e.bytes))?.[1];
    if (branch !== undefined) (e.dir === 'send' ? this.#client : this.#server).add(branch, { t: e.t, method: m });
  }

  /** Transactions waiting for a final response (for tests and a gauge). */
  get open(): number {
    return this.#client.size + this.#server.size;
  }
}

function headOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, HEAD_BYTES)).toString('latin1');
}
