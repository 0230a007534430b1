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

// Plain JS (an eval worker needs no loader); `pg` is resolved by the parent and passed in.
const WORKER = `
const { workerData } = require('node:worker_threads');
const pg = require(workerData.pgPath);
pg.types.setTypeParser(20, (v) => Number(v)); // int8: SQNs are < 2^48, exact as numbers
const state = new Int32Array(workerData.sab);
const port = workerData.port;
let client;
function reply(msg) {
  port.postMessage(msg);
  Atomics.store(state, 0, 1);
  Atomics.notify(state, 0);
}
port.on('message', async (req) => {
  try {
    if (req.op === 'connect') {
      client = new pg.Client({ connectionString: req.url, application_name: 'imsec' });
      client.on('error', () => {}); // reported on the next query
      await client.connect();
      reply({ ok: true });
    } else if (req.op === 'query') {
      const r = await client.query({ text: req.sql, values: req.params });
      reply({ ok: true, rows: r.rows, rowCount: r.rowCount });
    } else if (req.op === 'end') {
      if (client) await client.end().catch(() => {});
      reply({ ok: true });
    }
  } catch (e) {
    reply({ ok: false, message: String(e && e.message || e), code: e && e.code });
  }
});
`;

export interface PgResult<R> {
  readonly rows: R[];
  readonly rowCount: number;
}

export class SyncPg {
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #state: Int32Array;
  readonly #timeoutMs: number;
  #closed = false;

  /** Connects to `url` (postgres://…), waiting at most `timeoutMs` per call. */
  constructor(url: string, opts: { timeoutMs?: number } = {}) {
    const sab = new SharedArrayBuffer(4);
    this.#state = new Int32Array(sab);
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    const pgPath = createRequire(import.meta.url).resolve('pg');
    // execArgv: [] — a parent started with --input-type=module would make the eval code ESM (no require).
    this.#worker = new Worker(WORKER, { eval: true, execArgv: [], workerData: { sab, port: port2, pgPath }, transferList: [port2] });
    this.#worker.unref();
    try {
      this.#call({ op: 'connect', url });
    } catch (e) {
      void this.#worker.terminate();
      this.#closed = true;
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
      this.#closed = true;
      this.#port.close();
      void this.#worker.terminate();
    }
  }

  #call(req: Record<string, unknown>): unknown {
    if (this.#closed) throw new PgError('the PostgreSQL connection is closed');
    Atomics.store(this.#state, 0, 0);
    this.#port.postMessage(req);
    if (Atomics.wait(this.#state, 0, 0, this.#timeoutMs) === 'timed-out') {
      this.#closed = true;
      void this.#worker.terminate();
      throw new PgError(`PostgreSQL did not answer within ${this.#timeoutMs} ms`);
    }
    type Answer = { ok: boolean; message?: string; code?: string; rows?: unknown[]; rowCount?: number };
    let msg = receiveMessageOnPort(this.#port)?.message as Answer | undefined;
    // The wake-up and the message travel separately: in rare runs of the 4-process test the flag was
    // seen before the message was. Wait for the message (1 ms steps) within the same time bound.
    for (let waited = 0; !msg && waited < this.#timeoutMs; waited++) {
      Atomics.wait(this.#state, 0, 1, 1);
      msg = receiveMessageOnPort(this.#port)?.message as Answer | undefined;
    }
    if (!msg) throw new PgError('PostgreSQL worker: no answer');
    if (!msg.ok) throw new PgError(msg.message ?? 'PostgreSQL error', msg.code);
    return msg;
  }
}
