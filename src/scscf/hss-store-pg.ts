// The HSS subscriber store on PostgreSQL (`--db postgres://…`), for several `imsec core` processes
// sharing one HSS. Same tables and rules as the SQLite store (hss-store.ts). SQN allocation is one
// transaction that locks the subscriber's row (SELECT … FOR UPDATE): a second process waits for the
// commit and then reads the value the first one wrote, so no SQN is ever handed out twice and a
// resynchronisation by one process is what the next allocation anywhere starts from.
import { nextSqnAfter, resyncSqn, SQN_MAX, toSqn } from '../aka/index.ts';
import { openMigratedPg, type PgSchema } from '../util/pg-migrate.ts';
import { PgError, type PgResult, type SyncPg } from '../util/pg-sync.ts';
import { checkSubscriber, HssStoreError, Subscriber, SubscriberProfile, type AddSubscriber, type SubscriberStore } from './hss-store.ts';

// Each step moves the version from its index to index + 1; append, never edit.
const MIGRATIONS = [
  `CREATE TABLE subscribers (
     impi TEXT PRIMARY KEY,
     k BYTEA NOT NULL CHECK (length(k) = 16),
     opc BYTEA NOT NULL CHECK (length(opc) = 16),
     amf BYTEA NOT NULL CHECK (length(amf) = 2),
     sqn BIGINT NOT NULL CHECK (sqn >= 0 AND sqn <= ${SQN_MAX}),
     ind_len INTEGER NOT NULL DEFAULT 5,
     created_at TEXT NOT NULL DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
   );
   CREATE TABLE impus (
     impu TEXT PRIMARY KEY,
     impi TEXT NOT NULL REFERENCES subscribers(impi) ON DELETE CASCADE,
     pos SERIAL
   );
   CREATE INDEX impus_by_impi ON impus(impi);`,
  // A counter every change of who the subscribers are (not of their SQNs) moves, committed with that
  // change: a core's profile cache is valid while it reads the same value (the SQLite store's
  // PRAGMA data_version). A row, not a sequence: a sequence moves before the commit is visible.
  `CREATE TABLE hss_generation (id INTEGER PRIMARY KEY CHECK (id = 1), n BIGINT NOT NULL);
   INSERT INTO hss_generation VALUES (1, 0);
   CREATE FUNCTION hss_bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     UPDATE hss_generation SET n = n + 1 WHERE id = 1;
     RETURN NULL;
   END $$;
   CREATE TRIGGER subscribers_generation AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF impi, k, opc, amf, ind_len ON subscribers
     FOR EACH STATEMENT EXECUTE FUNCTION hss_bump_generation();
   CREATE TRIGGER impus_generation AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE ON impus
     FOR EACH STATEMENT EXECUTE FUNCTION hss_bump_generation();`,
];
/** Serialises the grouped SQN commits of all cores (pg_advisory_xact_lock key): see beginSqnBatch. */
const BATCH_LOCK = 0x1de5ec02;
/** Serialises the migration step of processes starting together (pg_advisory_xact_lock key). */
const MIGRATION_LOCK = 0x1de5ec01;
const SCHEMA: PgSchema = {
  name: 'hss',
  lock: MIGRATION_LOCK,
  migrations: MIGRATIONS,
  tooNew: (found, known) => new HssStoreError('HSS_SCHEMA', `store schema version ${found} is newer than this imsec (${known})`),
};

interface Row {
  impi: string;
  k: Uint8Array;
  opc: Uint8Array;
  amf: Uint8Array;
  sqn: number;
  ind_len: number;
  created_at: string;
  impus: string[];
}

const SELECT = `SELECT s.*, ARRAY(SELECT impu FROM impus u WHERE u.impi = s.impi ORDER BY pos) AS impus FROM subscribers s`;

/** Options of the PostgreSQL subscriber store (`PgHssStore`). */
export interface PgHssStoreOptions {
  /** How long one query may take (ms); default 30000. */
  timeoutMs?: number;
  /** How many subscriber profiles `profile()` keeps decoded (default 200000; 0: none). */
  profileCache?: number;
}

export class PgHssStore implements SubscriberStore {
  readonly #pg: SyncPg;
  // IMPI → profile, valid while hss_generation.n is the value read (no core or `imsec subscriber` has
  // added or removed anyone since) and this connection has not changed subscribers; bounded, oldest first.
  readonly #profiles = new Map<string, SubscriberProfile>();
  readonly #profileCap: number;
  #generation = -1;
  // The generation is read at most once per event-loop turn (a round trip to the server each time):
  // another core's change is seen from the next turn, as it would be had it landed just after the read.
  #generationChecked = false;
  readonly #generationExpire = () => {
    this.#generationChecked = false;
  };
  #batchOpen = false;
  /** A statement of the open batch failed: PostgreSQL has aborted the transaction, COMMIT would roll it back. */
  #batchFailed: unknown = undefined;

  /** Connects to `url` (postgres://user@host/db, or ?host=/socket/dir) and migrates the schema. */
  constructor(url: string, opts: PgHssStoreOptions = {}) {
    this.#pg = openMigratedPg(url, { ...(opts.timeoutMs !== undefined && { timeoutMs: opts.timeoutMs }) }, SCHEMA);
    this.#profileCap = opts.profileCache ?? 200_000;
  }

  add(input: AddSubscriber): Subscriber {
    this.#profiles.clear();
    this.#pg.transaction(() => this.#insert(input));
    return this.get(input.impi)!;
  }

  addMany(inputs: Iterable<AddSubscriber>): number {
    this.#profiles.clear();
    return this.#pg.transaction(() => {
      let n = 0;
      for (const input of inputs) {
        this.#insert(input, `${String((input as { impi?: unknown }).impi)}: `);
        n++;
      }
      return n;
    });
  }

  #insert(input: AddSubscriber, label = ''): void {
    const { s, opc } = checkSubscriber(input, label);
    try {
      this.#pg.query('INSERT INTO subscribers (impi, k, opc, amf, sqn, ind_len) VALUES ($1, $2, $3, $4, $5, $6)', [
        s.impi,
        Buffer.from(s.k),
        Buffer.from(opc),
        Buffer.from(s.amf),
        s.sqn,
        s.indLen,
      ]);
    } catch (e) {
      if (e instanceof PgError && e.sqlState === '23505')
        throw new HssStoreError('HSS_DUPLICATE_IMPI', `subscriber ${s.impi} already exists`);
      throw e;
    }
    for (const impu of s.impus) {
      const owner = this.#pg.query<{ impi: string }>('SELECT impi FROM impus WHERE impu = $1', [impu]).rows[0];
      if (owner) throw new HssStoreError('HSS_DUPLICATE_IMPU', `IMPU ${impu} already belongs to ${owner.impi}`);
      this.#pg.query('INSERT INTO impus (impu, impi) VALUES ($1, $2)', [impu, s.impi]);
    }
  }

  count(): number {
    return Number(this.#pg.query<{ n: number }>('SELECT count(*)::int AS n FROM subscribers').rows[0]!.n);
  }

  get(impi: string): Subscriber | undefined {
    const row = this.#pg.query<Row>(`${SELECT} WHERE s.impi = $1`, [impi]).rows[0];
    return row ? toSubscriber(row) : undefined;
  }

  profile(impi: string): SubscriberProfile | undefined {
    if (!this.#generationChecked) {
      // Read before the profile rows: a change committed in between moves the counter past what is cached.
      const n = Number(this.#query<{ n: number }>('SELECT n FROM hss_generation WHERE id = 1').rows[0]!.n);
      if (n !== this.#generation) {
        this.#profiles.clear();
        this.#generation = n;
      }
      this.#generationChecked = true;
      setImmediate(this.#generationExpire);
    }
    const hit = this.#profiles.get(impi);
    if (hit) return hit;
    const r = this.#query<Row>(
      'SELECT s.k, s.opc, s.amf, s.ind_len, ARRAY(SELECT impu FROM impus u WHERE u.impi = s.impi ORDER BY pos) AS impus FROM subscribers s WHERE s.impi = $1',
      [impi],
    ).rows[0];
    if (!r) return undefined;
    const p = new SubscriberProfile(impi, r.impus, r.k, r.opc, r.amf, r.ind_len);
    if (this.#profileCap > 0) {
      if (this.#profiles.size >= this.#profileCap) this.#profiles.delete(this.#profiles.keys().next().value!);
      this.#profiles.set(impi, p);
    }
    return p;
  }

  findByImpu(impu: string): Subscriber | undefined {
    const row = this.#pg.query<Row>(`${SELECT} WHERE s.impi = (SELECT impi FROM impus WHERE impu = $1)`, [impu]).rows[0];
    return row ? toSubscriber(row) : undefined;
  }

  list(): Subscriber[] {
    return this.#pg.query<Row>(`${SELECT} ORDER BY s.impi COLLATE "C"`).rows.map(toSubscriber);
  }

  remove(impi: string): boolean {
    this.#profiles.clear();
    return this.#pg.query('DELETE FROM subscribers WHERE impi = $1', [impi]).rowCount > 0;
  }

  nextSqn(impi: string): number {
    return this.nextSqns(impi, 1)[0]!;
  }

  nextSqns(impi: string, n: number): number[] {
    if (!Number.isInteger(n) || n < 1 || n > 1024) throw new HssStoreError('HSS_BAD_SUBSCRIBER', `count: must be 1..1024, got ${n}`);
    return this.#updateSqn(impi, (sqn, indLen) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((sqn = nextSqnAfter(sqn, indLen)));
      return { sqn, result: out };
    });
  }

  resync(impi: string, sqnMs: number | Uint8Array): number {
    const ms = toSqn(sqnMs, 'sqnMs');
    return this.#updateSqn(impi, (sqn, indLen) => {
      const next = resyncSqn(sqn, ms, indLen);
      return { sqn: next, result: next };
    });
  }

  /**
   * Opens one transaction that the following nextSqns / resync calls join, until commitSqnBatch(): the
   * SQNs of a turn's vectors in one commit. It first takes an advisory lock that every core's batch
   * takes, so two batches never hold row locks against each other (no deadlock between cores); a
   * single-SQN transaction locks one row and waits for nothing else. Other cores' batches wait meanwhile.
   */
  beginSqnBatch(): void {
    if (this.#batchOpen) return;
    this.#pg.query('BEGIN');
    try {
      this.#pg.query('SELECT pg_advisory_xact_lock($1)', [BATCH_LOCK]);
    } catch (err) {
      try {
        this.#pg.query('ROLLBACK');
      } catch {
        // the connection is gone; the server rolls back on its own
      }
      throw err;
    }
    this.#batchOpen = true;
    this.#batchFailed = undefined;
  }

  commitSqnBatch(): void {
    if (!this.#batchOpen) return;
    this.#batchOpen = false;
    const failed = this.#batchFailed;
    this.#batchFailed = undefined;
    try {
      // After a failed statement PostgreSQL answers COMMIT with a rollback and no error: refuse it here.
      if (failed !== undefined) throw failed instanceof Error ? failed : new Error(String(failed));
      this.#pg.query('COMMIT');
    } catch (err) {
      try {
        this.#pg.query('ROLLBACK');
      } catch {
        // the connection is gone; the server rolls back on its own
      }
      throw err;
    }
  }

  /** A query that, inside a batch, marks the batch failed when it fails (the transaction is then aborted). */
  #query<R>(sql: string, params: readonly unknown[] = []): PgResult<R> {
    try {
      return this.#pg.query<R>(sql, params);
    } catch (err) {
      if (this.#batchOpen) this.#batchFailed ??= err;
      throw err;
    }
  }

  /** Row-locked read-modify-write: other processes wait on the lock and then see the new SQN. */
  #updateSqn<T>(impi: string, step: (sqn: number, indLen: number) => { sqn: number; result: T }): T {
    const rmw = () => {
      const row = this.#query<{ sqn: number; ind_len: number }>('SELECT sqn, ind_len FROM subscribers WHERE impi = $1 FOR UPDATE', [impi])
        .rows[0];
      if (!row) throw new HssStoreError('HSS_UNKNOWN_IMPI', `no subscriber ${impi}`);
      const { sqn, result } = step(Number(row.sqn), row.ind_len);
      this.#query('UPDATE subscribers SET sqn = $1 WHERE impi = $2', [sqn, impi]);
      return result;
    };
    // Inside a batch: its transaction; a step that throws (SQN exhausted) has written nothing.
    return this.#batchOpen ? rmw() : this.#pg.transaction(rmw);
  }

  close(): void {
    // An open batch was never committed: the server rolls it back when the connection ends.
    this.#pg.close();
  }
}

function toSubscriber(r: Row): Subscriber {
  return new Subscriber(
    r.impi,
    r.impus,
    new Uint8Array(r.k),
    new Uint8Array(r.opc),
    new Uint8Array(r.amf),
    Number(r.sqn),
    r.ind_len,
    r.created_at,
  );
}

/** `postgres://…` / `postgresql://…` selects PostgreSQL; anything else is an SQLite file. */
export function isPostgresUrl(db: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(db);
}
