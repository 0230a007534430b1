// util/pg-sync.ts's wake-up protocol against a real server (test/support/postgres.ts), with the two
// pauses that make its races happen every time instead of once in a CI run: the caller descheduled
// between posting a request and waiting, the worker descheduled between storing an answer's number
// and notifying. CI once saw "PostgreSQL worker: no answer" within seconds although the bound was
// 30 s: the previous answer's late notify woke the next call's wait, which then found no answer.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres } from '../../test/support/postgres.ts';
import { PgError, SyncPg } from './pg-sync.ts';

const server = await startPostgres();
const skip = typeof server === 'string' ? server : false;
after(async () => {
  if (typeof server !== 'string') await server.stop();
});
const srv = () => (typeof server === 'string' ? assert.fail(server) : server);

test(
  'a notify meant for the previous answer that wakes the next call does not end it: every call gets its own answer',
  { skip, timeout: 60_000 },
  () => {
    // Each answer is stored at once and notified 300 ms later; the caller looks 50 ms after posting.
    // A fast query: the caller finds its answer stored and returns before the notify. The next query
    // is slow (pg_sleep): the stale notify lands in its wait long before its answer exists.
    const pg = new SyncPg(srv().url(), { timeoutMs: 20_000, testDelays: { afterPostMs: 50, beforeNotifyMs: 300 } });
    try {
      for (let round = 0; round < 3; round++) {
        const fast = pg.query<{ n: number }>('SELECT $1::int AS n', [round * 2]);
        assert.deepEqual(fast.rows, [{ n: round * 2 }]);
        const t0 = performance.now();
        const slow = pg.query<{ n: number }>('SELECT $1::int AS n FROM pg_sleep(0.6)', [round * 2 + 1]);
        assert.deepEqual(slow.rows, [{ n: round * 2 + 1 }], 'the slow query was waited for, not cut short by the earlier notify');
        assert.ok(performance.now() - t0 >= 590, 'its answer came after its pg_sleep, not before');
      }
      assert.equal(pg.query('SELECT 1').rowCount, 1, 'the connection goes on');
    } finally {
      pg.close();
    }
  },
);

test(
  'the time bound holds for the whole call however often the wait is woken; then the connection is closed',
  { skip, timeout: 60_000 },
  () => {
    const pg = new SyncPg(srv().url(), { timeoutMs: 1_500, testDelays: { afterPostMs: 50, beforeNotifyMs: 300 } });
    pg.query('SELECT 1'); // the answer whose notify arrives during the next call
    const t0 = performance.now();
    assert.throws(
      () => pg.query('SELECT pg_sleep(5)'),
      (e) => e instanceof PgError && /did not answer within 1500 ms/.test(e.message),
    );
    const waited = performance.now() - t0;
    assert.ok(waited >= 1_490, `not before the bound (${waited.toFixed(0)} ms)`);
    assert.throws(
      () => pg.query('SELECT 1'),
      (e) => e instanceof PgError && /closed/.test(e.message),
    );
    pg.close(); // nothing left to do, and no throw
  },
);

test('errors come back with their SQLSTATE and the connection stays usable', { skip }, () => {
  const pg = new SyncPg(srv().url());
  try {
    assert.throws(
      () => pg.query('SELECT * FROM no_such_table'),
      (e) => e instanceof PgError && e.sqlState === '42P01',
    );
    assert.throws(
      () => pg.transaction(() => pg.query('SELECT 1/0')),
      (e) => e instanceof PgError && e.sqlState === '22012',
    );
    assert.deepEqual(pg.query('SELECT 41 + 1 AS n').rows, [{ n: 42 }]);
  } finally {
    pg.close();
  }
});
