// A throw-away PostgreSQL server for tests: Debian's initdb into a temporary directory, run as an
// unprivileged user when we are root (postgres refuses root), listening only on a Unix socket in
// that directory (no TCP: nothing can reach it from outside, and no port can clash). Stopped and
// removed in `stop()`, and on process exit if a test forgot or failed first.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PgServer {
  /** A connection URL for database `db` (created on first use by `database()`). */
  url(db?: string): string;
  /** Creates a fresh database and returns its URL. */
  database(name: string): string;
  stop(): Promise<void>;
}

function pgBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Starts a server, or returns why it cannot (for `test(..., { skip })`). */
export async function startPostgres(): Promise<PgServer | string> {
  const bin = pgBin();
  if (!bin) return 'PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb; scripts/install-sysdeps.sh installs it)';
  const dir = mkdtempSync(join(tmpdir(), 'imsec-pg-'));
  const asUser: { uid?: number; gid?: number } = {};
  if (process.getuid?.() === 0) {
    // postgres will not run as root: the directory and the server belong to nobody.
    asUser.uid = 65534;
    asUser.gid = 65534;
    chownSync(dir, 65534, 65534);
  }
  const data = join(dir, 'data');
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'imsec', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], {
    ...asUser,
    encoding: 'utf8',
  });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return `initdb failed (${init.error?.message ?? init.stderr.trim().split('\n').at(-1)}): PostgreSQL tests cannot run here`;
  }
  const port = await freePort();
  const server: ChildProcess = spawn(
    join(bin, 'postgres'),
    [
      '-D',
      data,
      '-k',
      dir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'shared_buffers=16MB',
      '-c',
      'max_connections=40',
    ],
    { ...asUser, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  server.stderr!.on('data', (d) => (log += d));
  const kill = () => {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGQUIT');
  };
  const cleanup = () => {
    kill();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  const socket = join(dir, `.s.PGSQL.${port}`);
  for (let i = 0; i < 200 && !existsSync(socket); i++) {
    if (server.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const ready = () => spawnSync(join(bin, 'pg_isready'), ['-h', dir, '-p', String(port), '-U', 'imsec', '-d', 'postgres']).status === 0;
  for (let i = 0; i < 100 && existsSync(socket) && !ready(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(socket) || !ready()) {
    cleanup();
    return `the PostgreSQL server did not start: ${log.trim().split('\n').slice(-2).join(' / ')}`;
  }
  const url = (db = 'postgres') => `postgres://imsec@/${db}?host=${encodeURIComponent(dir)}&port=${port}`;
  return {
    url,
    database(name) {
      const r = spawnSync(join(bin, 'createdb'), ['-h', dir, '-p', String(port), '-U', 'imsec', name], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`createdb ${name}: ${r.stderr}`);
      return url(name);
    },
    async stop() {
      process.off('exit', cleanup);
      const exited = new Promise<void>((r) =>
        server.exitCode !== null || server.signalCode !== null ? r() : server.once('exit', () => r()),
      );
      kill();
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
