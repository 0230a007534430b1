// The P-CSCF state store in SQLite (the embedded default, `--state FILE`). The file is created
// owner-only (0600: it holds ESP keys unless they are sealed, state-keys.ts; SQLite gives its -wal
// and -shm files the same mode). WAL with synchronous=NORMAL: a commit survives a crash of the
// process (SIGKILL), which is what a restart needs; a power loss may lose the last commits, and the
// UEs then register again. Interface and rules: state-store.ts.
import { closeSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { SaName } from '../ipsec/sa.ts';
import type { SaSetRecord } from '../ipsec/sa-set-record.ts';
import {
  parseJsonColumn,
  StateStoreError,
  type MarkWrite,
  type NodeInfo,
  type PcscfStateStore,
  type RegistrationRecord,
  type StoredRegistration,
  type StoredSet,
} from './state-store.ts';

interface Statement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface Database {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  pragma(sql: string, opts?: { simple?: boolean }): unknown;
  transaction<A extends unknown[], R>(fn: (...args: A) => R): { (...args: A): R; immediate(...args: A): R };
  close(): void;
}
type DatabaseCtor = new (path: string, opts?: { timeout?: number }) => Database;
const Sqlite = createRequire(import.meta.url)('better-sqlite3') as DatabaseCtor;

const SCHEMA_VERSION = 1;
// Each step moves user_version from its index to index + 1; append, never edit.
const MIGRATIONS = [
  `CREATE TABLE nodes (node TEXT PRIMARY KEY, port_c INTEGER NOT NULL, port_s INTEGER NOT NULL) STRICT;
   CREATE TABLE registrations (node TEXT NOT NULL, impi TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (node, impi)) STRICT;
   CREATE TABLE sa_sets (
     set_key TEXT PRIMARY KEY, node TEXT NOT NULL, impi TEXT NOT NULL, record TEXT NOT NULL, keys BLOB NOT NULL,
     FOREIGN KEY (node, impi) REFERENCES registrations(node, impi) ON DELETE CASCADE
   ) STRICT;
   CREATE INDEX sa_sets_by_reg ON sa_sets(node, impi);
   CREATE TABLE seq_marks (
     set_key TEXT NOT NULL REFERENCES sa_sets(set_key) ON DELETE CASCADE, sa TEXT NOT NULL, mark INTEGER NOT NULL,
     PRIMARY KEY (set_key, sa)
   ) STRICT;`,
];

export class SqliteStateStore implements PcscfStateStore {
  readonly kind = 'sqlite' as const;
  readonly #db: Database;
  readonly #st: Record<
    'node' | 'setNode' | 'regs' | 'sets' | 'marks' | 'putReg' | 'delSets' | 'putSet' | 'putMark' | 'delReg' | 'mark',
    Statement
  >;

  /** Opens (creating owner-only if needed) the store at `path`, or an in-memory one for ':memory:'. */
  constructor(path: string, opts: { busyTimeoutMs?: number } = {}) {
    if (path !== ':memory:' && path !== '') closeSync(openSync(path, 'a', 0o600));
    this.#db = new Sqlite(path, { timeout: opts.busyTimeoutMs ?? 5000 });
    try {
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = NORMAL');
      this.#db.pragma('foreign_keys = ON');
      this.#migrate();
      const p = (sql: string) => this.#db.prepare(sql);
      this.#st = {
        node: p('SELECT port_c, port_s FROM nodes WHERE node = ?'),
        setNode: p(
          'INSERT INTO nodes (node, port_c, port_s) VALUES (?, ?, ?) ON CONFLICT (node) DO UPDATE SET port_c = excluded.port_c, port_s = excluded.port_s',
        ),
        regs: p('SELECT impi, record FROM registrations WHERE node = ?'),
        sets: p('SELECT set_key, impi, record, keys FROM sa_sets WHERE node = ?'),
        marks: p('SELECT m.set_key, m.sa, m.mark FROM seq_marks m JOIN sa_sets s ON s.set_key = m.set_key WHERE s.node = ?'),
        putReg: p(
          'INSERT INTO registrations (node, impi, record) VALUES (?, ?, ?) ON CONFLICT (node, impi) DO UPDATE SET record = excluded.record',
        ),
        delSets: p('DELETE FROM sa_sets WHERE node = ? AND impi = ?'),
        putSet: p('INSERT INTO sa_sets (set_key, node, impi, record, keys) VALUES (?, ?, ?, ?, ?)'),
        putMark: p('INSERT INTO seq_marks (set_key, sa, mark) VALUES (?, ?, ?)'),
        delReg: p('DELETE FROM registrations WHERE node = ? AND impi = ?'),
        mark: p('UPDATE seq_marks SET mark = ? WHERE set_key = ? AND sa = ?'),
      };
    } catch (err) {
      this.#db.close();
      throw err;
    }
  }

  #migrate(): void {
    this.#db
      .transaction(() => {
        const v = this.#db.pragma('user_version', { simple: true }) as number;
        if (v > SCHEMA_VERSION)
          throw new StateStoreError('STATE_SCHEMA', `state store schema version ${v} is newer than this imsec (${SCHEMA_VERSION})`);
        for (let i = v; i < SCHEMA_VERSION; i++) this.#db.exec(MIGRATIONS[i]!);
        if (v !== SCHEMA_VERSION) this.#db.pragma(`user_version = ${SCHEMA_VERSION}`);
      })
      .immediate();
  }

  node(node: string): NodeInfo | undefined {
    const r = this.#st.node.get(node) as { port_c: number; port_s: number } | undefined;
    return r && { portC: r.port_c, portS: r.port_s };
  }

  setNode(node: string, info: NodeInfo): void {
    this.#st.setNode.run(node, info.portC, info.portS);
  }

  load(node: string): StoredRegistration[] {
    return this.#db.transaction(() => {
      const marks = new Map<string, Record<string, number>>();
      for (const m of this.#st.marks.all(node) as { set_key: string; sa: string; mark: number }[])
        (marks.get(m.set_key) ?? marks.set(m.set_key, {}).get(m.set_key)!)[m.sa] = m.mark;
      const sets = new Map<string, StoredSet[]>();
      for (const s of this.#st.sets.all(node) as { set_key: string; impi: string; record: string; keys: Uint8Array }[]) {
        const list = sets.get(s.impi) ?? sets.set(s.impi, []).get(s.impi)!;
        list.push({
          key: s.set_key,
          record: parseJsonColumn<SaSetRecord>(s.record, `set ${s.set_key}`),
          keys: new Uint8Array(s.keys),
          marks: (marks.get(s.set_key) ?? {}) as Record<SaName, number>,
        });
      }
      return (this.#st.regs.all(node) as { impi: string; record: string }[]).map((r) => ({
        record: parseJsonColumn<RegistrationRecord>(r.record, `registration ${r.impi}`),
        sets: sets.get(r.impi) ?? [],
      }));
    })();
  }

  put(node: string, reg: StoredRegistration): void {
    this.#db.transaction(() => {
      const impi = reg.record.impi;
      this.#st.putReg.run(node, impi, JSON.stringify(reg.record));
      this.#st.delSets.run(node, impi);
      for (const s of reg.sets) {
        this.#st.putSet.run(s.key, node, impi, JSON.stringify(s.record), s.keys);
        for (const [sa, mark] of Object.entries(s.marks)) this.#st.putMark.run(s.key, sa, mark);
      }
    })();
  }

  remove(node: string, impi: string): void {
    this.#st.delReg.run(node, impi);
  }

  batch<T>(fn: () => T): T {
    return this.#db.transaction(fn)();
  }

  writeMarks(marks: readonly MarkWrite[]): void {
    if (marks.length === 1) {
      const m = marks[0]!;
      this.#st.mark.run(m.mark, m.setKey, m.sa);
      return;
    }
    this.#db.transaction(() => {
      for (const m of marks) this.#st.mark.run(m.mark, m.setKey, m.sa);
    })();
  }

  close(): void {
    this.#db.close();
  }
}
