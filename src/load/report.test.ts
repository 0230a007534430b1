import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildReport, formatReport, LoadStats, mergeReports } from './report.ts';
import { failureKey } from './engine.ts';

function reportOf(latencies: number[], failures: string[], registered: number) {
  const s = new LoadStats();
  for (const ms of latencies) s.success('registration', ms);
  for (const f of failures) s.fail(f);
  s.count('registered', registered);
  s.firstAttemptAt = 0;
  s.lastInitialAt = 1000;
  return buildReport({
    stats: s,
    startedAt: new Date(0),
    endedAt: new Date(2000),
    config: {},
    ues: registered + failures.length,
    interrupted: false,
    saSetsLeft: 0,
    process: { cpu_user_ms: 10, cpu_system_ms: 1, rss_max_bytes: 1, rss_end_bytes: 1 },
  });
}

test('merging two machines adds counts and rates and gives the percentiles of all samples together', () => {
  const a = reportOf([1, 2, 3, 4], ['register:timeout'], 4);
  const b = reportOf([100, 200, 300, 400], ['register:timeout', 'register:status_403'], 4);
  const m = mergeReports([JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b))]);
  assert.equal(m.sources, 2);
  assert.equal(m.outcomes.registered, 8);
  assert.deepEqual(m.failures, { 'register:timeout': 2, 'register:status_403': 1 });
  assert.equal(m.failures_total, 3);
  assert.equal(m.registrations_per_s, a.registrations_per_s + b.registrations_per_s);
  assert.equal(m.latency_ms.registration.count, 8);
  assert.ok(m.latency_ms.registration.p50 >= 4 && m.latency_ms.registration.p50 < 4.1, String(m.latency_ms.registration.p50));
  assert.ok(m.latency_ms.registration.max === 400);
  assert.ok(Array.isArray(m.process) && m.process.length === 2);
  assert.match(formatReport(m), /2 machines merged/);
});

test('merge refuses what is not a load report', () => {
  assert.throws(() => mergeReports([{ report: 'x' } as never]), /not an imsec load report/);
  assert.throws(() => mergeReports([]), /no reports/);
});

test('failure keys name the procedure and the reason, with the status for rejections', () => {
  assert.equal(failureKey('register', { ok: false, kind: 'initial', reason: 'rejected', status: 494, detail: '' }), 'register:status_494');
  assert.equal(failureKey('register', { ok: false, kind: 'initial', reason: 'forbidden', status: 403, detail: '' }), 'register:status_403');
  assert.equal(
    failureKey('refresh', { ok: false, kind: 'refresh', reason: 'no_security_server', status: 401, detail: '' }),
    'refresh:no_security_server',
  );
  assert.equal(
    failureKey('register', { ok: false, kind: 'initial', reason: 'mac_failure', status: 403, detail: '' }),
    'register:mac_failure',
  );
});
