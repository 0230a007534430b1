// The P-CSCF state store on PostgreSQL (`--state postgres://…`), shared by several P-CSCFs: each
// keeps its rows under its node (address:port), and an instance started on a dead one's address
// loads them (takeover, README "Running as a service"). Same tables and rules as the SQLite store;
// the schema is migrated at start under an advisory lock. Synchronous through util/pg-sync.ts.
import type { SaName } from '../ipsec/sa.ts';
import type { SaSetRecord } from '../ipsec/sa-set-record.ts';
import { openMigratedPg, type PgSchema } from '../util/pg-migrate.ts';
import type { SyncPg } from '../util/pg-sync.ts';
import {
  StateStoreError,
  type MarkWrite,
  type NodeInfo,
  type PcscfStateStore,
  type RegistrationRecord,
  type StoredRegistration,
  type StoredSet,
} from './state-store.ts';

// Each step moves the version from its index to index + 1; append, never edit.
const MIGRATIONS = [
  `CREATE TABLE pcscf_nodes (node TEXT PRIMARY KEY, port_c INTEGER NOT NULL, port_s INTEGER NOT NULL);
   CREATE TABLE pcscf_registrations (node TEXT NOT NULL, impi TEXT NOT NULL, record JSONB NOT NULL, PRIMARY KEY (node, impi));
   CREATE TABLE pcscf_sa_sets (
     set_key TEXT PRIMARY KEY, node TEXT NOT NULL, impi TEXT NOT NULL, record JSONB NOT NULL, keys BYTEA NOT NULL,
     FOREIGN KEY (node, impi) REFERENCES pcscf_registrations(node, impi) ON DELETE CASCADE
   );
   CREATE INDEX pcscf_sa_sets_by_reg ON pcscf_sa_sets(node, impi);
   CREATE TABLE pcscf_seq_marks (
     set_key TEXT NOT NULL REFERENCES pcscf_sa_sets(set_key) ON DELETE CASCADE, sa TEXT NOT NULL, mark BIGINT NOT NULL,
     PRIMARY KEY (set_key, sa)
   );`,
];
/** Serialises the migration of processes starting together (pg_advisory_xact_lock key). */
const MIGRATION_LOCK = 0x1de5ec02;
const SCHEMA: PgSchema = {
  name: 'pcscf-state',
  lock: MIGRATION_LOCK,
  migrations: MIGRATIONS,
  tooNew: (found, known) => new StateStoreError('STATE_SCHEMA', `state store schema version ${found} is newer than this imsec (${known})`),
};

export class PgStateStore implements PcscfStateStore {
  readonly kind = 'postgres' as const;
  readonly #pg: SyncPg;

  /** Connects to `url` (postgres://user@host/db, or ?host=/socket/dir) and migrates the schema. */
  constructor(url: string, opts: { timeoutMs?: number } = {}) {
    this.#pg = openMigratedPg(url, opts, SCHEMA);
  }

  node(node: string): NodeInfo | undefined {
    const r = this.#pg.query<{ port_c: number; port_s: number }>('SELECT port_c, port_s FROM pcscf_nodes WHERE node = $1', [node]).rows[0];
    return r && { portC: r.port_c, portS: r.port_s };
  }

  setNode(node: string, info: NodeInfo): void {
    this.#pg.query(
      'INSERT INTO pcscf_nodes (node, port_c, port_s) VALUES ($1, $2, $3) ON CONFLICT (node) DO UPDATE SET port_c = $2, port_s = $3',
      [node, info.portC, info.portS],
    );
  }

  load(node: string): StoredRegistration[] {
    return this.#pg.transaction(() => {
      const marks = new Map<string, Record<string, number>>();
      const m = this.#pg.query<{ set_key: string; sa: string; mark: number }>(
        'SELECT m.set_key, m.sa, m.mark FROM pcscf_seq_marks m JOIN pcscf_sa_sets s ON s.set_key = m.set_key WHERE s.node = $1',
        [node],
      );
      for (const r of m.rows) (marks.get(r.set_key) ?? marks.set(r.set_key, {}).get(r.set_key)!)[r.sa] = Number(r.mark);
      const sets = new Map<string, StoredSet[]>();
      for (const s of this.#pg.query<{ set_key: string; impi: string; record: SaSetRecord; keys: Uint8Array }>(
        'SELECT set_key, impi, record, keys FROM pcscf_sa_sets WHERE node = $1',
        [node],
      ).rows) {
        const list = sets.get(s.impi) ?? sets.set(s.impi, []).get(s.impi)!;
        list.push({
          key: s.set_key,
          record: s.record,
          keys: new Uint8Array(s.keys),
          marks: (marks.get(s.set_key) ?? {}) as Record<SaName, number>,
        });
      }
      return this.#pg
        .query<{ impi: string; record: RegistrationRecord }>('SELECT impi, record FROM pcscf_registrations WHERE node = $1', [node])
        .rows.map((r) => ({
          record: r.record,
          sets: sets.get(r.impi) ?? [],
        }));
    });
  }

  put(node: string, reg: StoredRegistration): void {
    this.#pg.transaction(() => {
      const impi = reg.record.impi;
      this.#pg.query(
        'INSERT INTO pcscf_registrations (node, impi, record) VALUES ($1, $2, $3) ON CONFLICT (node, impi) DO UPDATE SET record = $3',
        [node, impi, JSON.stringify(reg.record)],
      );
      this.#pg.query('DELETE FROM pcscf_sa_sets WHERE node = $1 AND impi = $2', [node, impi]);
      for (const s of reg.sets) {
        this.#pg.query('INSERT INTO pcscf_sa_sets (set_key, node, impi, record, keys) VALUES ($1, $2, $3, $4, $5)', [
          s.key,
          node,
          impi,
          JSON.stringify(s.record),
          Buffer.from(s.keys),
        ]);
        for (const [sa, mark] of Object.entries(s.marks))
          this.#pg.query('INSERT INTO pcscf_seq_marks (set_key, sa, mark) VALUES ($1, $2, $3)', [s.key, sa, mark]);
      }
    });
  }

  remove(node: string, impi: string): void {
    this.#pg.query('DELETE FROM pcscf_registrations WHERE node = $1 AND impi = $2', [node, impi]);
  }

  writeMarks(marks: readonly MarkWrite[]): void {
    if (marks.length === 0) return;
    // One statement for the whole batch: one round trip whatever its size.
    this.#pg.query(
      `UPDATE pcscf_seq_marks m SET mark = v.mark FROM (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(set_key, sa, mark)) v
       WHERE m.set_key = v.set_key AND m.sa = v.sa`,
      [marks.map((x) => x.setKey), marks.map((x) => x.sa), marks.map((x) => x.mark)],
    );
  }

  close(): void {
    this.#pg.close();
  }
}
