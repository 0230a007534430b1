// Schema migration shared by the PostgreSQL stores (the HSS's and the P-CSCF's state store): one
// row per store in imsec_schema, migrations applied in order inside a transaction that holds an
// advisory lock, so processes starting together migrate once. A schema newer than this imsec is
// refused (an older imsec must not write rows it does not understand).
import { SyncPg } from './pg-sync.ts';

/** What one store's schema is: its row in imsec_schema, its advisory-lock key and its migrations. */
export interface PgSchema {
  /** The store's name in imsec_schema ('hss', 'pcscf-state'). */
  readonly name: string;
  /** pg_advisory_xact_lock key that serialises this store's migration across processes. */
  readonly lock: number;
  /** Migration i takes the schema from version i to i + 1; the current version is their count. */
  readonly migrations: readonly string[];
  /** The error to throw when the database's schema is newer than `migrations` knows. */
  readonly tooNew: (found: number, known: number) => Error;
}

/** Brings `schema` up to date on `pg`, in one transaction. */
export function migratePg(pg: SyncPg, schema: PgSchema): void {
  const known = schema.migrations.length;
  pg.transaction(() => {
    pg.query('SELECT pg_advisory_xact_lock($1)', [schema.lock]);
    pg.query('CREATE TABLE IF NOT EXISTS imsec_schema (name TEXT PRIMARY KEY, version INTEGER NOT NULL)');
    const v = pg.query<{ version: number }>('SELECT version FROM imsec_schema WHERE name = $1', [schema.name]).rows[0]?.version ?? 0;
    if (v > known) throw schema.tooNew(v, known);
    for (let i = v; i < known; i++) pg.query(schema.migrations[i]!);
    if (v !== known) {
      pg.query('INSERT INTO imsec_schema (name, version) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET version = $2', [
        schema.name,
        known,
      ]);
    }
  });
}

/** Opens a SyncPg on `url` and migrates `schema`; the connection is closed when migration fails. */
export function openMigratedPg(url: string, opts: { timeoutMs?: number }, schema: PgSchema): SyncPg {
  const pg = new SyncPg(url, opts);
  try {
    migratePg(pg, schema);
  } catch (e) {
    pg.close();
    throw e;
  }
  return pg;
}
