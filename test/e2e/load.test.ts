// `imsec load` end to end: the CLI in a child process against our P-CSCF and S-CSCF/HSS on loopback
// (in this process). Correctness at small N, not speed: every UE registers, is counted, de-registers,
// and no SA set is left at either end — also with churn, refreshes and MESSAGE traffic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DOMAIN, K, OPC, startWorld, until, type World } from '../support/ims-world.ts';
import type { LoadReport } from '../../src/load/report.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const canRaw = process.getuid?.() === 0;

/** Runs `imsec load` against the world; resolves with its exit status and parsed --json report. */
function imsecLoad(w: World, args: string[]): Promise<{ status: number | null; report: LoadReport; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        'bin/imsec.mjs',
        'load',
        '--pcscf',
        `${w.ip}:${w.pcscf.port}`,
        '--pcscf-encap-port',
        String(w.pcBackend.encapPort),
        '--impi',
        `00101{n:10}@${DOMAIN}`,
        '--k',
        K,
        '--opc',
        OPC,
        '--json',
        '--quiet',
        ...args,
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (status) => {
      try {
        resolve({ status, report: JSON.parse(out) as LoadReport, stderr: err });
      } catch {
        reject(new Error(`no JSON report (exit ${status}): ${err}`));
      }
    });
  });
}

async function withWorld(o: Parameters<typeof startWorld>[0], fn: (w: World) => Promise<void>): Promise<void> {
  const w = await startWorld(o);
  try {
    await fn(w);
  } finally {
    await w.close();
  }
}

const N = 2000;
for (const mode of ['udp-enc-tun', 'trans'] as const) {
  test(`${N} UEs register and de-register through imsec load, no failure, no SA set left (mod=${mode})`, async (t) => {
    if (mode === 'trans' && !canRaw) return t.skip('mod=trans needs CAP_NET_RAW (raw ESP sockets) at both ends; run as root');
    await withWorld({ mode, subscribers: N }, async (w) => {
      const { status, report, stderr } = await imsecLoad(w, ['--count', String(N), '--rate', '500', '--concurrency', '50', '--mode', mode]);
      assert.equal(status, 0, `${stderr}\n${JSON.stringify(report.failures)}`);
      assert.equal(report.failures_total, 0, JSON.stringify(report.failures));
      assert.equal(report.outcomes.registered, N);
      assert.equal(report.outcomes.deregistered, N);
      assert.equal(report.latency_ms.register_401.count, N);
      assert.equal(report.latency_ms.protected_register_200.count, N);
      assert.equal(report.sa_sets_left, 0);
      // No descriptor per registered UE (userspace ESP: the protected ports are inside the SAs).
      const proc = report.process as { open_fds_registered?: number };
      if (proc.open_fds_registered !== undefined)
        assert.ok(proc.open_fds_registered < 200, `open fds with ${N} UEs registered: ${proc.open_fds_registered}`);
      assert.equal(w.scscf.bindings.size, 0, 'every binding gone at the S-CSCF');
      await until(() => w.liveSets(w.pcBackend).length === 0, 'no live SA set at the P-CSCF', 10_000);
    });
  });
}

test('churn with refreshes and MESSAGEs (MO and MT): no failure, live-SA count back to zero at both ends', async () => {
  await withWorld({ subscribers: 300 }, async (w) => {
    const { status, report, stderr } = await imsecLoad(w, [
      '--count',
      '300',
      '--rate',
      '300',
      '--concurrency',
      '60',
      '--duration',
      '20',
      '--expires',
      '30',
      '--churn',
      '20',
      '--message-rate',
      '30',
    ]);
    assert.equal(status, 0, `${stderr}\n${JSON.stringify(report.failures)}`);
    assert.equal(report.failures_total, 0, JSON.stringify(report.failures));
    assert.ok(report.outcomes.churn_cycles > 20, `churn cycles: ${report.outcomes.churn_cycles}`);
    assert.ok(report.outcomes.refreshed > 0, 'refreshes happened (expires 30 s: at 15 s)');
    assert.ok(report.outcomes.messages_ok > 20, `messages: ${report.outcomes.messages_ok}`);
    assert.equal(report.outcomes.deregistered, 300 + report.outcomes.churn_cycles);
    assert.equal(report.sa_sets_left, 0);
    await until(() => w.liveSets(w.pcBackend).length === 0, 'no live SA set at the P-CSCF', 10_000);
  });
});

test('exit 1 when failures exceed --max-failures; failures counted by reason (403: unknown subscribers)', async () => {
  await withWorld({ subscribers: 5 }, async (w) => {
    // Subscribers 6..10 are not provisioned: the S-CSCF refuses them.
    const r = await imsecLoad(w, ['--count', '10', '--rate', '100', '--max-failures', '4']);
    assert.equal(r.status, 1);
    assert.equal(r.report.outcomes.registered, 5);
    assert.equal(r.report.failures_total, 5);
    assert.deepEqual(Object.keys(r.report.failures), ['register:status_403']);
    const ok = await imsecLoad(w, ['--count', '10', '--rate', '100', '--max-failures', '5']);
    assert.equal(ok.status, 0);
  });
});
