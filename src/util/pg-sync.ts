// A synchronous PostgreSQL connection: the `pg` driver runs in a worker thread and the caller waits
// for each answer with Atomics.wait. The stores are synchronous (the registrar and the HSS are
// plain functions that must not interleave between reading an SQN and using it), and SQLite already
// blocks the same way for its fsync; this lets PostgreSQL stand behind the same interface. One
// connection per instance, so BEGIN … COMMIT issued through it is one transaction.
import { createRequire } from 'node:module';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { ImsecError } from './errors.ts';

export class PgError extends ImsecError {
  constructor(
    message: string,
    /** The SQLSTATE (e.g. 23505 unique_violation), when the server sent one. */
    readonly sqlState?: string,
  ) {
    super('PG_ERROR', message);
  }
}

// The wake-up protocol. The caller posts request number `seq` and waits until `state[0]` holds
// `seq`; the worker posts the answer (carrying `seq`) and only then stores `seq` and notifies. Only the
// stored value counts, never the wake-up: a notify is a hint, and one meant for the previous answer
// can arrive during the next call's wait (the worker was descheduled between its store and its
// notify; the caller, finding the value already stored, did not wait for it). postMessage queues the
// answer synchronously (node: "postMessage is fully synchronous"), so once `seq` is stored its answer
// is on the port.
// Plain JS (an eval worker needs no loader); `pg` is resolved by the parent and passed in.
const WORKER = `
const { workerData } = require('node:worker_threads');
const pg = require(workerData.pgPath);
pg.types.setTypeParser(20, (v) => Number(v)); // int8: SQNs are < 2^48, exact as numbers
const state = new Int32Array(workerData.sab);
const port = workerData.port;
const pause = workerData.testDelays.beforeNotifyMs;
let client;
function reply(seq, msg) {
  msg.seq = seq;
  port.postMessage(msg);
  Atomics.store(state, 0, seq);
  if (pause > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause);
  Atomics.notify(state, 0);
}
port.on('message', async (req) => {
  try {
    if (req.op === 'connect') {
      client = new pg.Client({ connectionString: req.url, application_name: 'imsec' });
      client.on('error', () => {}); // reported on the next query
      await client.connect();
      reply(req.seq, { ok: true });
    } else if (req.op === 'query') {
      const r = await client.query({ text: req.sql, values: req.params });
      reply(req.seq, { ok: true, rows: r.rows, rowCount: r.rowCount });
    } else if (req.op === 'end') {
      if (client) await client.end().catch(() => {});
      reply(req.seq, { ok: true });
    }
  } catch (e) {
    reply(req.seq, { ok: false, message: String(e && e.message || e), code: e && e.code });
  }
});
`;

/**
 * Pauses that widen the races of the wake-up protocol, for its tests only (0 or absent: none).
 * `afterPostMs`: the caller sleeps between posting a request and waiting for its answer (it was
 * descheduled there); `beforeNotifyMs`: the worker sleeps between storing an answer's number and
 * notifying (descheduled there).
 */
export interface SyncPgTestDelays {
  readonly afterPostMs?: number;
  readonly beforeNotifyMs?: number;
}

/** Options of `SyncPg`. */
export interface SyncPgOptions {
  /** How long one call may take (ms), however many times the wait is woken; default 30000. */
  readonly timeoutMs?: number;
  /** Test only: see SyncPgTestDelays. */
  readonly testDelays?: SyncPgTestDelays;
}

/** Blocks this thread for `ms` (Atomics.wait on a value no one changes). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export interface PgResult<R> {
  readonly rows: R[];
  readonly rowCount: number;
}

/** A PostgreSQL connection whose calls block until the answer is there (see the file's header). */
export class SyncPg {
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #state: Int32Array;
  readonly #timeoutMs: number;
  readonly #afterPostMs: number;
  /** The number of the last request posted (1 … 2^31-1, then 1 again; 0 is the initial state). */
  #seq = 0;
  #closed = false;

  /** Connects to `url` (postgres://…), waiting at most `timeoutMs` per call. */
  constructor(url: string, opts: SyncPgOptions = {}) {
    const sab = new SharedArrayBuffer(4);
    this.#state = new Int32Array(sab);
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#afterPostMs = opts.testDelays?.afterPostMs ?? 0;
    const testDelays = { beforeNotifyMs: opts.testDelays?.beforeNotifyMs ?? 0 };
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    const pgPath = createRequire(import.meta.url).resolve('pg');
    // execArgv: [] — a parent started with --input-type=module would make the eval code ESM (no require).
    this.#worker = new Worker(WORKER, {
      eval: true,
      execArgv: [],
      workerData: { sab, port: port2, pgPath, testDelays },
      transferList: [port2],
    });
    this.#worker.unref();
    try {
      this.#call({ op: 'connect', url });
    } catch (e) {
      this.#stop();
      throw e;
    }
  }

  query<R = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): PgResult<R> {
    return this.#call({ op: 'query', sql, params }) as PgResult<R>;
  }

  /** Runs `fn` inside BEGIN … COMMIT (ROLLBACK when it throws). */
  transaction<T>(fn: () => T): T {
    this.query('BEGIN');
    try {
      const r = fn();
      this.query('COMMIT');
      return r;
    } catch (e) {
      if (!this.#closed) {
        try {
          this.query('ROLLBACK');
        } catch {
          // the connection is gone; the server rolls back on its own
        }
      }
      throw e;
    }
  }

  close(): void {
    if (this.#closed) return;
    try {
      this.#call({ op: 'end' });
    } finally {
      this.#stop();
    }
  }

  #call(req: Record<string, unknown>): unknown {
    if (this.#closed) throw new PgError('the PostgreSQL connection is closed');
    const seq = (this.#seq = (this.#seq % 0x7fff_ffff) + 1);
    // One deadline for the call, however often the wait is woken before the answer (a late notify).
    const deadline = performance.now() + this.#timeoutMs;
    this.#port.postMessage({ ...req, seq });
    if (this.#afterPostMs > 0) sleepSync(this.#afterPostMs);
    for (let seen = Atomics.load(this.#state, 0); seen !== seq; seen = Atomics.load(this.#state, 0)) {
      const left = deadline - performance.now();
      if (left <= 0) {
        this.#stop();
        throw new PgError(`PostgreSQL did not answer within ${this.#timeoutMs} ms`);
      }
      Atomics.wait(this.#state, 0, seen, left);
    }
    type Answer = { seq: number; ok: boolean; message?: string; code?: string; rows?: unknown[]; rowCount?: number };
    const msg = receiveMessageOnPort(this.#port)?.message as Answer | undefined;
    if (msg?.seq !== seq) {
      // Cannot happen while the protocol above holds; if it does, this connection's answers can no longer be matched.
      this.#stop();
      throw new PgError(`PostgreSQL worker: answer ${msg ? `to request ${msg.seq}` : 'missing'} where request ${seq}'s was due`);
    }
    if (!msg.ok) throw new PgError(msg.message ?? 'PostgreSQL error', msg.code);
    return msg;
  }

  /** Stops the worker: after `end`, or instead of it when this connection cannot go on (the server ends a session whose socket closes). */
  #stop(): void {
    this.#closed = true;
    this.#port.close();
    void this.#worker.terminate();
  }
}
