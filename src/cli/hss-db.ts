// `--db` of `imsec core` and `imsec subscriber`: an SQLite file (the embedded default) or a
// PostgreSQL URL (postgres://user@host/db; a Unix socket as ?host=/dir) shared by several cores.
import { existsSync } from 'node:fs';
import { HssStore, type HssStoreOptions, type SubscriberStore } from '../scscf/hss-store.ts';
import { isPostgresUrl, PgHssStore } from '../scscf/hss-store-pg.ts';
import { ImsecError, InputError } from '../util/errors.ts';

/** The URL with its password replaced, fit for messages and logs. */
export function redactDbUrl(db: string): string {
  return db.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@/\s]*@/i, '$1[redacted]@');
}

/** Opens the store `db` names; InputError (exit 2) for a missing file or a database that will not open. */
/** `sqlite` options apply to an SQLite file only (PostgreSQL commits durably on the server's terms). */
export function openHssDb(db: string, mustExist: boolean, hint = '', sqlite: HssStoreOptions = {}): SubscriberStore {
  const pg = isPostgresUrl(db);
  if (!pg && mustExist && db !== ':memory:' && !existsSync(db)) throw new InputError(`--db: no such store: ${db}${hint}`);
  try {
    return pg ? new PgHssStore(db) : new HssStore(db, sqlite);
  } catch (err) {
    if (err instanceof ImsecError && err.code !== 'PG_ERROR') throw err;
    // Not a SQLite file, no permission, no server, bad credentials: a problem with --db, not an imsec bug.
    throw new InputError(`--db: cannot open ${redactDbUrl(db)}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
