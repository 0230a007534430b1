// The HSS subscriber store (spec digest §1, §2; design.md "Stores"): K, OPc, AMF, SQN and IMPUs per
// IMPI in SQLite. SQN advances per TS 33.102 Annex C inside one BEGIN IMMEDIATE transaction that is
// fsync'd (WAL, synchronous=FULL) before the value is returned, so no SQN is ever handed out twice.
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import { z } from 'zod';
import { DEFAULT_IND_LEN, SQN_MAX, computeOpc, nextSqnAfter, resyncSqn, toSqn } from '../aka/index.ts';
import { toHex } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';

/** Why a subscriber store operation failed. */
export type HssStoreErrorCode = 'HSS_DUPLICATE_IMPI' | 'HSS_DUPLICATE_IMPU' | 'HSS_UNKNOWN_IMPI' | 'HSS_BAD_SUBSCRIBER' | 'HSS_SCHEMA';

/** Caller-caused store failures; an InputError, so the CLI exits 2. Messages never carry keys. */
export class HssStoreError extends InputError {
  declare readonly code: HssStoreErrorCode;
  constructor(code: HssStoreErrorCode, message: string) {
    super(message, code);
  }
}

/** A stored subscriber. K and OPc live in private fields: JSON and inspect show them redacted. */
export class Subscriber {
  readonly #k: Uint8Array;
  readonly #opc: Uint8Array;
  constructor(
    readonly impi: string,
    readonly impus: readonly string[],
    k: Uint8Array,
    opc: Uint8Array,
    readonly amf: Uint8Array,
    /** The highest SQN (SEQ ‖ IND, 48 bits) handed out so far, or the provisioned start value. */
    readonly sqn: number,
    /** IND length in bits (TS 33.102 Annex C; 5 by default). */
    readonly indLen: number,
    readonly createdAt: string,
  ) {
    this.#k = k;
    this.#opc = opc;
  }
  get k(): Uint8Array {
    return this.#k;
  }
  get opc(): Uint8Array {
    return this.#opc;
  }
  toJSON(): Record<string, unknown> {
    return {
      impi: this.impi,
      impus: [...this.impus],
      k: '[redacted]',
      opc: '[redacted]',
      amf: toHex(this.amf),
      sqn: sqnHex(this.sqn),
      ind_len: this.indLen,
      created_at: this.createdAt,
    };
  }
  [inspect.custom](): string {
    return `Subscriber ${inspect(this.toJSON())}`;
  }
}

/**
 * What the HSS needs to authenticate a subscriber and that only changes when the subscriber is
 * removed and added again: IMPUs, K, OPc, AMF, IND length (not the SQN). A store may hand out the same
 * object again from a cache: callers must neither modify nor wipe it. JSON and inspect redact K and OPc.
 */
export class SubscriberProfile {
  // K ‖ OPc ‖ AMF in one array: a cache of 100k profiles holds one small buffer each, not three.
  readonly #keys: Uint8Array;
  constructor(
    readonly impi: string,
    readonly impus: readonly string[],
    k: Uint8Array,
    opc: Uint8Array,
    amf: Uint8Array,
    readonly indLen: number,
  ) {
    this.#keys = new Uint8Array(34);
    this.#keys.set(k, 0);
    this.#keys.set(opc, 16);
    this.#keys.set(amf, 32);
  }
  get k(): Uint8Array {
    return this.#keys.subarray(0, 16);
  }
  get opc(): Uint8Array {
    return this.#keys.subarray(16, 32);
  }
  get amf(): Uint8Array {
    return this.#keys.subarray(32, 34);
  }
  toJSON(): Record<string, unknown> {
    return { impi: this.impi, impus: [...this.impus], k: '[redacted]', opc: '[redacted]', amf: toHex(this.amf), ind_len: this.indLen };
  }
  [inspect.custom](): string {
    return `SubscriberProfile ${inspect(this.toJSON())}`;
  }
}

/** SQN as the 12 hex digits of its 6 octets. */
export function sqnHex(sqn: number): string {
  return sqn.toString(16).padStart(12, '0');
}

const octets = (n: number) => z.instanceof(Uint8Array).refine((b) => b.length === n, { message: `must be ${n} octets` });
// IMPI is a NAI (user@realm); IMPUs are SIP/SIPS/tel URIs (spec digest §1). No spaces or controls.
const ident = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[^\s\x00-\x1f\x7f]+$/, 'must not contain spaces or control characters');
const AddSchema = z
  .object({
    // TS 23.003 §13.3: the IMPI is a NAI, username@realm.
    impi: ident.regex(/^[^@]+@[^@]+$/, 'must be user@realm (TS 23.003 §13.3)'),
    impus: z
      .array(ident.regex(/^(?:sips?|tel):/i, 'must be a sip:, sips: or tel: URI'))
      .min(1, 'at least one IMPU')
      .refine((a) => new Set(a).size === a.length, { message: 'IMPUs must be distinct' }),
    k: octets(16),
    op: octets(16).optional(),
    opc: octets(16).optional(),
    amf: octets(2),
    sqn: z.number().int().min(0).max(SQN_MAX).optional(),
    indLen: z.number().int().min(0).max(16).optional(),
  })
  .strict()
  .refine((s) => (s.op === undefined) !== (s.opc === undefined), { message: 'give exactly one of op and opc' });

/** A subscriber to provision: IMPI, its IMPUs, K and exactly one of OP / OPc, AMF and algorithm. */
export interface AddSubscriber {
  impi: string;
  impus: string[];
  k: Uint8Array;
  /** OP; only OPc = E_K(OP) ⊕ OP is stored. Exactly one of op / opc. */
  op?: Uint8Array;
  opc?: Uint8Array;
  amf: Uint8Array;
  /** Start SQN (48 bits); default 0. The first vector uses the next value after it. */
  sqn?: number;
  indLen?: number;
}

// Minimal typing of the better-sqlite3 surface we use (no @types package is installed).
interface Statement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface Transaction<A extends unknown[], R> {
  (...args: A): R;
  immediate(...args: A): R;
}
interface Database {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  pragma(sql: string, opts?: { simple?: boolean }): unknown;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): Transaction<A, R>;
  readonly inTransaction: boolean;
  close(): void;
}
type DatabaseCtor = new (path: string, opts?: { timeout?: number }) => Database;
const Sqlite = createRequire(import.meta.url)('better-sqlite3') as DatabaseCtor;

interface Row {
  impi: string;
  k: Uint8Array;
  opc: Uint8Array;
  amf: Uint8Array;
  sqn: number;
  ind_len: number;
  created_at: string;
}

const SCHEMA_VERSION = 1;
// Each step moves user_version from its index to index + 1; append, never edit.
const MIGRATIONS = [
  `CREATE TABLE subscribers (
     impi TEXT PRIMARY KEY,
     k BLOB NOT NULL CHECK (length(k) = 16),
     opc BLOB NOT NULL CHECK (length(opc) = 16),
     amf BLOB NOT NULL CHECK (length(amf) = 2),
     sqn INTEGER NOT NULL CHECK (sqn >= 0 AND sqn <= ${SQN_MAX}),
     ind_len INTEGER NOT NULL DEFAULT 5,
     created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
   ) STRICT;
   CREATE TABLE impus (
     impu TEXT PRIMARY KEY,
     impi TEXT NOT NULL REFERENCES subscribers(impi) ON DELETE CASCADE
   ) STRICT;
   CREATE INDEX impus_by_impi ON impus(impi);`,
];

/**
 * What the HSS and the CLI need from a subscriber store. Two implementations: HssStore (SQLite, the
 * embedded default) and PgHssStore (PostgreSQL, shared by several cores). In both, nextSqns and
 * resync are one atomic read-modify-write of the SQN, committed before they return.
 */
export interface SubscriberStore {
  add(input: AddSubscriber): Subscriber;
  addMany(inputs: Iterable<AddSubscriber>): number;
  count(): number;
  get(impi: string): Subscriber | undefined;
  /**
   * The subscriber's unchanging part (no SQN), possibly from a cache (another process's add or remove
   * is seen within a few milliseconds: the next event-loop turn for PostgreSQL, PROFILE_RECHECK_MS for
   * SQLite); do not modify or wipe it.
   */
  profile(impi: string): SubscriberProfile | undefined;
  /** Optional: the profile when a cache holds it, else undefined, without a query (HssStore). */
  cachedProfile?(impi: string): SubscriberProfile | undefined;
  findByImpu(impu: string): Subscriber | undefined;
  list(): Subscriber[];
  remove(impi: string): boolean;
  nextSqn(impi: string): number;
  nextSqns(impi: string, n: number): number[];
  resync(impi: string, sqnMs: number | Uint8Array): number;
  /**
   * Optional: opens one write transaction that the following nextSqns / resync calls join, until
   * commitSqnBatch(): the SQNs of many vectors in one commit (one fsync). Nothing of the batch may
   * leave the process before commitSqnBatch() returned. SQLite holds its write lock meanwhile;
   * PostgreSQL an advisory lock every core's batch takes first, so batches never deadlock on row locks.
   */
  beginSqnBatch?(): void;
  /** Commits the open batch (nothing when none is open); on failure rolls it back and throws. */
  commitSqnBatch?(): void;
  close(): void;
}

/** Checks a subscriber to add (HssStoreError HSS_BAD_SUBSCRIBER) and computes its OPc. */
export function checkSubscriber(input: AddSubscriber, label = ''): { s: AddSubscriber & { sqn: number; indLen: number }; opc: Uint8Array } {
  const parsed = AddSchema.safeParse(input);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('.') || 'subscriber'}: ${i.message}`).join('; ');
    throw new HssStoreError('HSS_BAD_SUBSCRIBER', `${label}${msg}`);
  }
  const s = parsed.data;
  return { s: { ...s, sqn: s.sqn ?? 0, indLen: s.indLen ?? DEFAULT_IND_LEN }, opc: s.opc ?? computeOpc(s.k, s.op!) };
}

/** Options of the SQLite subscriber store (`HssStore`). */
export interface HssStoreOptions {
  /** How long a writer waits for another process's lock (ms); default 5000. */
  busyTimeoutMs?: number;
  /**
   * 'full' (default): every SQN is fsync'd before it leaves, so not even a power loss can make one
   * be handed out twice. 'normal' (WAL, no fsync per commit): still safe against a crash of the
   * process, not of the machine — for load labs, where an fsync per registration (~5 ms on a
   * virtual disk) would cap the core at ~200 registrations/s.
   */
  synchronous?: 'full' | 'normal';
  /** How many subscriber profiles `profile()` keeps decoded (default 200000; 0: none). */
  profileCache?: number;
}

/** How long (ms) HssStore.profile() serves its cache before it looks for other connections' commits again. */
export const PROFILE_RECHECK_MS = 10;

/** The subscribers (IMPI, IMPUs, K, OPc, AMF, SQN) in SQLite: a file (created owner-only, it holds K) or ':memory:'. Each SQN handed out is committed before it is used. */
export class HssStore implements SubscriberStore {
  readonly #db: Database;
  // Statements prepared once per SQL text: preparing costs more than running one of these lookups.
  readonly #stmts = new Map<string, Statement>();
  // IMPI → profile, valid while no other connection has committed (PRAGMA data_version unchanged) and
  // this one has not added or removed subscribers; bounded, oldest entry evicted first.
  readonly #profiles = new Map<string, SubscriberProfile>();
  readonly #profileCap: number;
  #dataVersion = -1;
  // data_version is read at most once per PROFILE_RECHECK_MS: outside a transaction the pragma takes the
  // WAL read lock (~4-5 µs of locking system calls), and under load nearly every REGISTER arrives in an
  // event-loop turn of its own, so a check per turn was a check per REGISTER. Another process's commit is
  // seen within that time: no later than it would be had it landed a moment after the check.
  #versionCheckedAt = -Infinity;
  #batchOpen = false;
  /**
   * SQN and IND length of the subscriber whose profile was read last inside the open batch: the batch holds
   * the write lock, so nothing else can change them before its commit, and the SQN step that follows
   * (the vector of the same REGISTER) needs no SELECT of its own. Dropped at every batch's start and end.
   */
  #batchRow: { impi: string; sqn: number; indLen: number } | undefined;
  #updateSqnTx: Transaction<[string, (sqn: number, indLen: number) => { sqn: number; result: unknown }], unknown> | undefined;

  #stmt(sql: string): Statement {
    let st = this.#stmts.get(sql);
    if (!st) this.#stmts.set(sql, (st = this.#db.prepare(sql)));
    return st;
  }

  /** Opens (creating if needed) the store at `path`, or an in-memory one for ':memory:'. */
  constructor(path: string, opts: HssStoreOptions = {}) {
    // The file holds K in clear: create it owner-only (SQLite gives -wal/-shm the same mode).
    if (path !== ':memory:' && path !== '') closeSync(openSync(path, 'a', 0o600));
    this.#db = new Sqlite(path, { timeout: opts.busyTimeoutMs ?? 5000 });
    this.#profileCap = opts.profileCache ?? 200_000;
    try {
      this.#db.pragma('journal_mode = WAL');
      // FULL: every commit (hence every SQN handed out) is fsync'd before nextSqn returns.
      this.#db.pragma(opts.synchronous === 'normal' ? 'synchronous = NORMAL' : 'synchronous = FULL');
      this.#db.pragma('foreign_keys = ON');
      this.#migrate();
    } catch (err) {
      this.#db.close();
      throw err;
    }
  }

  #migrate(): void {
    this.#db
      .transaction(() => {
        const v = this.#db.pragma('user_version', { simple: true }) as number;
        if (v > SCHEMA_VERSION) {
          throw new HssStoreError('HSS_SCHEMA', `store schema version ${v} is newer than this imsec (${SCHEMA_VERSION})`);
        }
        for (let i = v; i < SCHEMA_VERSION; i++) this.#db.exec(MIGRATIONS[i]!);
        if (v !== SCHEMA_VERSION) this.#db.pragma(`user_version = ${SCHEMA_VERSION}`);
      })
      .immediate();
  }

  /** Adds a subscriber with its IMPUs. Duplicate IMPI or an IMPU taken by another ⇒ HssStoreError. */
  add(input: AddSubscriber): Subscriber {
    this.#profiles.clear();
    const parsed = AddSchema.safeParse(input);
    if (!parsed.success) {
      const msg = parsed.error.issues.map((i) => `${i.path.join('.') || 'subscriber'}: ${i.message}`).join('; ');
      throw new HssStoreError('HSS_BAD_SUBSCRIBER', msg);
    }
    const s = parsed.data;
    const opc = s.opc ?? computeOpc(s.k, s.op!);
    this.#db
      .transaction(() => {
        if (this.#stmt('SELECT 1 FROM subscribers WHERE impi = ?').get(s.impi)) {
          throw new HssStoreError('HSS_DUPLICATE_IMPI', `subscriber ${s.impi} already exists`);
        }
        const taken = this.#stmt('SELECT impi FROM impus WHERE impu = ?');
        for (const impu of s.impus) {
          const owner = taken.get(impu) as { impi: string } | undefined;
          if (owner) throw new HssStoreError('HSS_DUPLICATE_IMPU', `IMPU ${impu} already belongs to ${owner.impi}`);
        }
        this.#db
          .prepare('INSERT INTO subscribers (impi, k, opc, amf, sqn, ind_len) VALUES (?, ?, ?, ?, ?, ?)')
          .run(s.impi, s.k, opc, s.amf, s.sqn ?? 0, s.indLen ?? DEFAULT_IND_LEN);
        const ins = this.#stmt('INSERT INTO impus (impu, impi) VALUES (?, ?)');
        for (const impu of s.impus) ins.run(impu, s.impi);
      })
      .immediate();
    return this.get(s.impi)!;
  }

  /**
   * Adds many subscribers in ONE transaction (one fsync): all or none. Each is checked like `add`;
   * the first bad one, duplicate IMPI or taken IMPU aborts the whole batch with an HssStoreError
   * naming it. Returns how many were added. For bulk provisioning (`imsec subscriber add --count`).
   */
  addMany(inputs: Iterable<AddSubscriber>): number {
    const insSub = this.#stmt('INSERT INTO subscribers (impi, k, opc, amf, sqn, ind_len) VALUES (?, ?, ?, ?, ?, ?)');
    const insImpu = this.#stmt('INSERT INTO impus (impu, impi) VALUES (?, ?)');
    const hasImpi = this.#stmt('SELECT 1 FROM subscribers WHERE impi = ?');
    const ownerOf = this.#stmt('SELECT impi FROM impus WHERE impu = ?');
    this.#profiles.clear();
    return this.#db
      .transaction(() => {
        let n = 0;
        for (const input of inputs) {
          const parsed = AddSchema.safeParse(input);
          if (!parsed.success) {
            const msg = parsed.error.issues.map((i) => `${i.path.join('.') || 'subscriber'}: ${i.message}`).join('; ');
            throw new HssStoreError('HSS_BAD_SUBSCRIBER', `${String((input as { impi?: unknown }).impi)}: ${msg}`);
          }
          const s = parsed.data;
          try {
            insSub.run(s.impi, s.k, s.opc ?? computeOpc(s.k, s.op!), s.amf, s.sqn ?? 0, s.indLen ?? DEFAULT_IND_LEN);
          } catch (e) {
            if (hasImpi.get(s.impi)) throw new HssStoreError('HSS_DUPLICATE_IMPI', `subscriber ${s.impi} already exists`);
            throw e;
          }
          for (const impu of s.impus) {
            try {
              insImpu.run(impu, s.impi);
            } catch (e) {
              const owner = ownerOf.get(impu) as { impi: string } | undefined;
              if (owner) throw new HssStoreError('HSS_DUPLICATE_IMPU', `IMPU ${impu} already belongs to ${owner.impi}`);
              throw e;
            }
          }
          n++;
        }
        return n;
      })
      .immediate();
  }

  /** How many subscribers the store holds. */
  count(): number {
    return (this.#stmt('SELECT count(*) AS n FROM subscribers').get() as { n: number }).n;
  }

  get(impi: string): Subscriber | undefined {
    const row = this.#stmt('SELECT * FROM subscribers WHERE impi = ?').get(impi) as Row | undefined;
    return row ? this.#toSubscriber(row) : undefined;
  }

  /**
   * The profile when the cache has it, without reading the table (undefined otherwise): the HSS opens
   * its SQN batch before a miss, so that the read runs inside that transaction (no WAL read lock of its own).
   */
  cachedProfile(impi: string): SubscriberProfile | undefined {
    const now = performance.now();
    if (now - this.#versionCheckedAt >= PROFILE_RECHECK_MS) {
      // Another connection (another core, `imsec subscriber`) committed: anything cached may be stale.
      const v = this.#stmt('PRAGMA data_version').get() as { data_version: number };
      if (v.data_version !== this.#dataVersion) {
        this.#profiles.clear();
        this.#dataVersion = v.data_version;
      }
      this.#versionCheckedAt = now;
    }
    return this.#profiles.get(impi);
  }

  profile(impi: string): SubscriberProfile | undefined {
    const hit = this.cachedProfile(impi);
    if (hit) return hit;
    // One statement, one row per IMPU: outside a transaction each statement takes the WAL read lock
    // anew (~4 µs), and the first REGISTER of every subscriber comes here.
    const rows = this.#stmt(
      'SELECT s.k, s.opc, s.amf, s.ind_len, s.sqn, u.impu FROM subscribers s LEFT JOIN impus u ON u.impi = s.impi WHERE s.impi = ? ORDER BY u.rowid',
    ).all(impi) as (Row & { impu: string | null })[];
    const row = rows[0];
    if (!row) return undefined;
    if (this.#batchOpen) this.#batchRow = { impi, sqn: row.sqn, indLen: row.ind_len };
    const impus: string[] = [];
    for (const r of rows) if (r.impu !== null) impus.push(r.impu);
    const p = new SubscriberProfile(impi, impus, row.k, row.opc, row.amf, row.ind_len);
    if (this.#profileCap > 0) {
      if (this.#profiles.size >= this.#profileCap) this.#profiles.delete(this.#profiles.keys().next().value!);
      this.#profiles.set(impi, p);
    }
    return p;
  }

  findByImpu(impu: string): Subscriber | undefined {
    const row = this.#stmt('SELECT s.* FROM subscribers s JOIN impus u ON u.impi = s.impi WHERE u.impu = ?').get(impu) as Row | undefined;
    return row ? this.#toSubscriber(row) : undefined;
  }

  /** Every subscriber, ordered by IMPI. */
  list(): Subscriber[] {
    return (this.#stmt('SELECT * FROM subscribers ORDER BY impi').all() as Row[]).map((r) => this.#toSubscriber(r));
  }

  /** Removes a subscriber and its IMPUs; false when there was none. */
  remove(impi: string): boolean {
    this.#profiles.clear();
    this.#batchRow = undefined;
    return this.#stmt('DELETE FROM subscribers WHERE impi = ?').run(impi).changes > 0;
  }

  /**
   * Hands out the next SQN (Annex C generator) and stores it before returning. One BEGIN IMMEDIATE
   * transaction: a second process waits for the lock, then sees this value.
   */
  nextSqn(impi: string): number {
    return this.nextSqns(impi, 1)[0]!;
  }

  /** `n` consecutive SQNs in one transaction (one fsync for a batch of vectors). */
  nextSqns(impi: string, n: number): number[] {
    if (!Number.isInteger(n) || n < 1 || n > 1024) throw new HssStoreError('HSS_BAD_SUBSCRIBER', `count: must be 1..1024, got ${n}`);
    return this.#updateSqn(impi, (sqn, indLen) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((sqn = nextSqnAfter(sqn, indLen)));
      return { sqn, result: out };
    });
  }

  /**
   * Resynchronisation (TS 33.102 §6.3.5, Annex C via aka resyncSqn): after a verified AUTS carrying
   * SQN_MS, sets SEQ_HE = SEQ_MS so the next SQN handed out has SEQ_MS + 1 (fresh in every IND slot
   * of the USIM). Never moves backwards. Returns the stored "last issued" value.
   */
  resync(impi: string, sqnMs: number | Uint8Array): number {
    const ms = toSqn(sqnMs, 'sqnMs');
    return this.#updateSqn(impi, (sqn, indLen) => {
      const next = resyncSqn(sqn, ms, indLen);
      return { sqn: next, result: next };
    });
  }

  beginSqnBatch(): void {
    if (this.#batchOpen) return;
    // IMMEDIATE: the write lock now, so no other process can interleave before the commit.
    this.#db.exec('BEGIN IMMEDIATE');
    this.#batchOpen = true;
    this.#batchRow = undefined;
  }

  commitSqnBatch(): void {
    if (!this.#batchOpen) return;
    this.#batchOpen = false;
    this.#batchRow = undefined;
    try {
      this.#db.exec('COMMIT');
    } catch (err) {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  /**
   * Reads the subscriber's SQN, lets `step` compute the new one, and writes it back, all in one
   * BEGIN IMMEDIATE transaction: no other writer can interleave, and the commit is fsync'd
   * (synchronous = FULL) before the result is returned. Inside an SQN batch it joins the batch's
   * transaction, committed by commitSqnBatch().
   */
  #updateSqn<T>(impi: string, step: (sqn: number, indLen: number) => { sqn: number; result: T }): T {
    // Inside an open batch the write lock is already held: no savepoint (SAVEPOINT + RELEASE would be two
    // more statements per vector). Nothing is written when `step` throws, and an UPDATE that fails is
    // undone by SQLite on its own (statement rollback), so the read-modify-write stays all or nothing.
    if (this.#batchOpen) return this.#readModifyWrite(impi, step).result;
    this.#updateSqnTx ??= this.#db.transaction((id: string, f: (sqn: number, indLen: number) => { sqn: number; result: unknown }) => {
      return this.#readModifyWrite(id, f).result;
    });
    return this.#updateSqnTx.immediate(impi, step) as T;
  }

  #readModifyWrite<T>(impi: string, step: (sqn: number, indLen: number) => { sqn: number; result: T }): { sqn: number; result: T } {
    const known = this.#batchOpen && this.#batchRow?.impi === impi ? this.#batchRow : undefined;
    this.#batchRow = undefined;
    let sqn: number;
    let indLen: number;
    if (known) ({ sqn, indLen } = known);
    else {
      const row = this.#stmt('SELECT sqn, ind_len FROM subscribers WHERE impi = ?').get(impi) as Pick<Row, 'sqn' | 'ind_len'> | undefined;
      if (!row) throw unknownImpi(impi);
      ({ sqn, ind_len: indLen } = row);
    }
    const out = step(sqn, indLen);
    if (this.#stmt('UPDATE subscribers SET sqn = ? WHERE impi = ?').run(out.sqn, impi).changes !== 1) throw unknownImpi(impi);
    if (this.#batchOpen) this.#batchRow = { impi, sqn: out.sqn, indLen };
    return out;
  }

  close(): void {
    // An open batch was never committed: its SQNs were not handed out, so it is rolled back.
    this.#db.close();
  }

  #toSubscriber(r: Row): Subscriber {
    const impus = (this.#stmt('SELECT impu FROM impus WHERE impi = ? ORDER BY rowid').all(r.impi) as { impu: string }[]).map((u) => u.impu);
    return new Subscriber(r.impi, impus, u8(r.k), u8(r.opc), u8(r.amf), r.sqn, r.ind_len, r.created_at);
  }
}

function unknownImpi(impi: string): HssStoreError {
  return new HssStoreError('HSS_UNKNOWN_IMPI', `no subscriber ${impi}`);
}

// better-sqlite3 returns BLOBs as Buffers; hand out plain Uint8Array copies that callers own (and
// may wipe) without touching memory anyone else could share.
function u8(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}
