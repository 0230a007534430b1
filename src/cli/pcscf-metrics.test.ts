// `imsec pcscf --metrics`: a real curl scrapes /metrics after a UE registered through the P-CSCF
// and finds the registration, the sec-agree outcome, ESP packets over the SAs, SIP counts and the
// transaction latency; /healthz and /readyz answer; the logs never carry a key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { FakeScscf, LOOP, ScriptedUe } from '../pcscf/_test-kit.ts';
import { toHex } from '../util/bytes.ts';
import type { IpsecBackend, SaStats } from '../ipsec/backends/backend.ts';
import type { SaName } from '../ipsec/sa.ts';
import type { SaSet } from '../ipsec/sa-set.ts';
import { parsePcscfArgs, runPcscf } from './pcscf.ts';

const run = promisify(execFile);
const HAVE_CURL = spawnSync('curl', ['--version']).status === 0;

async function curl(url: string): Promise<{ status: number; body: string }> {
  const { stdout } = await run('curl', ['-s', '-w', '\n%{http_code}', url]);
  const i = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) };
}

/** The value of one sample line `name{labels} value` (labels given in any order, all must match). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

test(
  'metrics scraped by curl after a registration; health and readiness; no key in the logs',
  { skip: HAVE_CURL ? false : 'curl not installed (scripts/install-sysdeps.sh installs it)' },
  async () => {
    const scscf = await FakeScscf.start();
    const lines: string[] = [];
    const ac = new AbortController();
    const args = parsePcscfArgs({
      listen: `${LOOP}:0`,
      portC: '0',
      portS: '0',
      scscf: `${LOOP}:${scscf.endpoint.port}`,
      mode: 'udp-enc-tun',
      encapPort: '0',
      json: true,
      metrics: `${LOOP}:0`,
      logLevel: 'trace',
    });
    let metricsAt: { address: string; port: number } | undefined;
    const running = runPcscf(args, { signal: ac.signal, write: (l) => lines.push(l), onReady: (i) => (metricsAt = i.metrics) });
    let ue: ScriptedUe | undefined;
    const secrets: Uint8Array[] = [];
    try {
      for (let i = 0; i < 400 && metricsAt === undefined; i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(metricsAt, 'the P-CSCF came up with a metrics listener');
      const base = `http://${LOOP}:${metricsAt.port}`;
      assert.deepEqual(await curl(`${base}/healthz`), { status: 200, body: 'ok\n' });
      assert.deepEqual(await curl(`${base}/readyz`), { status: 200, body: 'ready\n' });
      assert.equal((await curl(`${base}/nope`)).status, 404);

      const hello = JSON.parse(lines.find((l) => l.includes('"listening"'))!);
      ue = await ScriptedUe.create({
        pcscf: { address: LOOP, port: hello.port, portC: hello.port_c, portS: hello.port_s },
        pcEncapPort: hello.encap_port,
        impi: 'alice@ims.example.org',
        impu: 'sip:alice@ims.example.org',
        pairs: [{ alg: 'hmac-sha-1-96', ealg: 'aes-cbc' }],
      });
      const respond = ue.usim.respond.bind(ue.usim);
      ue.usim.respond = (rand, autn) => {
        const r = respond(rand, autn);
        if (r.result === 'ok') secrets.push(new Uint8Array(r.ck), new Uint8Array(r.ik));
        return r;
      };
      assert.equal((await ue.register()).res.status, 200);
      assert.equal((await ue.send('MESSAGE')).res.status, 200);

      const { status, body } = await curl(`${base}/metrics`);
      assert.equal(status, 200);
      assert.equal(sample(body, 'imsec_pcscf_registrations', { state: 'registered', service: 'pcscf' }), 1);
      assert.equal(sample(body, 'imsec_pcscf_registrations', { state: 'pending' }), 0);
      assert.equal(sample(body, 'imsec_pcscf_registrations_total'), 1);
      assert.equal(sample(body, 'imsec_pcscf_secagree_total', { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mode: 'udp-enc-tunnel' }), 1);
      assert.equal(sample(body, 'imsec_pcscf_sa_sets', { state: 'current', mode: 'udp-enc-tunnel' }), 1);
      // SM7 and the MESSAGE came in over SA1/SA2; the 200s went out over the SAs.
      assert.ok(sample(body, 'imsec_esp_packets_total', { dir: 'in' })! >= 2, body);
      assert.ok(sample(body, 'imsec_esp_packets_total', { dir: 'out' })! >= 2);
      assert.ok(sample(body, 'imsec_esp_bytes_total', { dir: 'in' })! > 500);
      assert.equal(sample(body, 'imsec_esp_drops_total', { reason: 'icv' }), 0);
      assert.equal(sample(body, 'imsec_pcscf_sip_requests_total', { dir: 'recv', method: 'REGISTER' }), 2);
      assert.equal(sample(body, 'imsec_pcscf_sip_requests_total', { dir: 'send', method: 'REGISTER' }), 2, 'both forwarded to the S-CSCF');
      assert.equal(sample(body, 'imsec_pcscf_sip_responses_total', { dir: 'send', method: 'REGISTER', status: '401' }), 1);
      assert.equal(sample(body, 'imsec_pcscf_sip_responses_total', { dir: 'send', method: 'REGISTER', status: '200' }), 1);
      assert.equal(sample(body, 'imsec_pcscf_sip_transaction_seconds_count', { side: 'client', method: 'REGISTER' }), 2);
      assert.equal(sample(body, 'imsec_pcscf_sip_transaction_seconds_count', { side: 'server', method: 'REGISTER' }), 2);
      assert.equal(sample(body, 'imsec_pcscf_sip_transaction_seconds_count', { side: 'server', method: 'MESSAGE' }), 1);
      assert.equal(sample(body, 'imsec_pcscf_keepalives_total', { dir: 'in' }), 0);
      assert.equal(sample(body, 'imsec_pcscf_limit_rejections_total'), undefined, 'no limit hit, no series');
      assert.ok(
        sample(body, 'imsec_process_resident_memory_bytes')! > 0 || sample(body, 'imsec_nodejs_heap_size_used_bytes')! > 0,
        'process metrics',
      );
    } finally {
      ac.abort();
      await running.catch(() => {});
      await ue?.close();
      await scscf.close();
    }
    // After the stop the listener is gone.
    assert.notEqual(spawnSync('curl', ['-s', '-o', '/dev/null', `http://${LOOP}:${metricsAt!.port}/healthz`]).status, 0);
    assert.equal(secrets.length, 2);
    const text = lines.join('\n');
    assert.ok(lines.length > 5 && lines.every((l) => JSON.parse(l).level !== undefined), 'JSON log records');
    for (const key of secrets) {
      for (const form of [toHex(key), toHex(key).toUpperCase(), Buffer.from(key).toString('base64')])
        assert.ok(!text.includes(form), 'a key in the logs');
    }
  },
);

test('limit rejections are the admission and overload reasons only', async () => {
  const { isLimitReason } = await import('./pcscf-metrics.ts');
  for (const r of ['overload-pending-source', 'overload-pending-total', 'overload-challenge-rate', 'admission-too-many-sas'])
    assert.ok(isLimitReason(r), r);
  for (const r of ['too-many-hops', 'not-registered', 'no-acceptable-mechanism']) assert.ok(!isLimitReason(r), r);
});

test('ESP totals: live sets as the backend reports them (the kernel for xfrm), removed sets at their final Sa counters', async () => {
  const { EspTotalsReader } = await import('./pcscf-metrics.ts');
  const { makePair } = await import('../../test/support/ims-fixture.ts');
  const a = makePair({ alg: 'hmac-sha-1-96', ealg: 'null', mode: 'transport' }).pcscf;
  const b = makePair({ alg: 'hmac-sha-1-96', ealg: 'null', mode: 'transport' }).pcscf;
  // Like xfrm before a read: the Sa counters are 0, the backend (the kernel) has the figures.
  const kernel = new Map<SaSet, SaStats[]>();
  const row = (set: SaSet, name: SaName, packets: number, bytes: number): SaStats => ({
    name,
    spi: set.sas[name].spi,
    packets,
    bytes,
    replayDrops: 0,
    integrityFailures: 0,
    seq: packets,
  });
  kernel.set(a, [row(a, 'SA1', 3, 300), row(a, 'SA2', 2, 200), row(a, 'SA3', 0, 0), row(a, 'SA4', 0, 0)]);
  kernel.set(b, [row(b, 'SA1', 1, 10), row(b, 'SA2', 0, 0), row(b, 'SA3', 0, 0), row(b, 'SA4', 5, 50)]);
  let sets = [a, b];
  const source = {
    get sets() {
      return sets;
    },
    saStats: (s: SaSet) => kernel.get(s) ?? [],
  };
  const reader = new EspTotalsReader();
  // SA1 and SA4 are the P-CSCF's inbound SAs, SA2 and SA3 its outbound ones (33.203 §7.1).
  assert.deepEqual(reader.read(source), { inPackets: 9, inBytes: 360, outPackets: 2, outBytes: 200 });
  // b goes; its final figures are in its Sa counters (the xfrm backend reads them before DELSA).
  b.sas.SA1.counters.packets = 4;
  b.sas.SA1.counters.bytes = 40;
  b.sas.SA4.counters.packets = 6;
  b.sas.SA4.counters.bytes = 60;
  sets = [a];
  await new Promise((r) => setTimeout(r, 110)); // past the 100 ms read cache
  assert.deepEqual(reader.read(source), { inPackets: 13, inBytes: 400, outPackets: 2, outBytes: 200 });
});

/** P-CSCF metrics on a backend with no sets, fed events by hand: the registry and an emitter. */
async function eventMetrics() {
  const { Registry } = await import('prom-client');
  const { registerPcscfMetrics } = await import('./pcscf-metrics.ts');
  const registry = new Registry();
  const handlers = new Map<string, ((ev: unknown) => void)[]>();
  const on = (name: string, fn: (ev: unknown) => void) => handlers.set(name, [...(handlers.get(name) ?? []), fn]);
  const emit = (name: string, ev: unknown) => handlers.get(name)?.forEach((f) => f(ev));
  const backend = {
    sets: [],
    saStats: () => [],
    counters: { keepalive: 0, nonEsp: 0, malformed: 0, unknownSpi: 0 },
  } as unknown as IpsecBackend;
  registerPcscfMetrics({ registry, backend, on: on as never, drops: { counts: {} } as never });
  return { registry, emit };
}

test('a set the backend failed to remove is counted (imsec_pcscf_sa_removal_failures_total)', async () => {
  const { registry, emit } = await eventMetrics();
  emit('sa-deleted', { impi: 'a', set: 's1', reason: 'deregistered', code: 'deleted' });
  emit('sa-deleted', { impi: 'a', set: 's2', reason: 'expired', code: 'expired', error: 'xfrm: removing SA set s2: DELSA SA1: EPERM' });
  const text = await registry.metrics();
  assert.equal(sample(text, 'imsec_pcscf_sa_removal_failures_total'), 1);
});

test('auth timeouts are counted by the code of the deletion, whatever its reason text says', async () => {
  const { registry, emit } = await eventMetrics();
  const created = (set: string) =>
    emit('sa-created', { impi: 'a', set, mode: 'trans', alg: 'hmac-sha-1-96', ealg: 'null', spis: { uc: 1, us: 2, pc: 3, ps: 4 } });
  for (const s of ['t1', 't2', 't3']) created(s);
  emit('sa-deleted', { impi: 'a', set: 't1', reason: 'timer ran out', code: 'auth-timeout' });
  // A failed set-up whose text happens to name reg-await-auth is not a timeout (the old regex counted it).
  emit('sa-deleted', { impi: 'a', set: 't2', reason: '403 while reg-await-auth ran', code: 'failed' });
  // Only temporary sets count: a current set's lifetime is no authentication failure.
  emit('sa-deleted', { impi: 'a', set: 'c1', reason: 'lifetime', code: 'auth-timeout' });
  emit('sa-deleted', { impi: 'a', set: 't1', reason: 'again', code: 'auth-timeout' });
  emit('sa-deleted', { impi: 'a', set: 't3', reason: 'expired', code: 'auth-timeout' });
  assert.equal(sample(await registry.metrics(), 'imsec_pcscf_auth_timeouts_total'), 2);
});
