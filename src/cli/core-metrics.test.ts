// `imsec core --metrics`: curl scrapes /metrics after a registration with a resync and finds the
// vectors issued, the sync failure, the registration and the REGISTER transactions.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { newCallId, systemClock } from '../sip/index.ts';
import { openUdpTransport } from '../sip/udp-transport.ts';
import { HssStore } from '../scscf/hss-store.ts';
import { ALICE, DOMAIN, FakePcscf, UeSide, usimOf } from '../scscf/_test-helpers.ts';
import { fromHex } from '../util/bytes.ts';
import { runCore } from './core.ts';

const run = promisify(execFile);
const HAVE_CURL = spawnSync('curl', ['--version']).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'imsec-core-metrics-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const DB = join(dir, 'hss.sqlite');
{
  const s = new HssStore(DB);
  s.add({ impi: ALICE.impi, impus: ALICE.impus, k: fromHex(ALICE.k), op: fromHex(ALICE.op), amf: fromHex('8000') });
  s.close();
}

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
  'core metrics scraped by curl: vectors, sync failure, registration, REGISTER transactions',
  { skip: HAVE_CURL ? false : 'curl not installed (scripts/install-sysdeps.sh installs it)' },
  async () => {
    const ac = new AbortController();
    let up!: (v: { port: number; metrics: number }) => void;
    const ready = new Promise<{ port: number; metrics: number }>((r) => (up = r));
    let port = 0;
    const done = runCore(
      { listen: '127.0.0.1:0', domain: DOMAIN, db: DB, jsonEvents: true, metrics: '127.0.0.1:0' },
      {
        signal: ac.signal,
        out: (l) => {
          const j = JSON.parse(l);
          if (j.event === 'listening') port = j.port;
        },
        onReady: (i) => up({ port, metrics: i.metrics!.port }),
      },
    );
    const at = await ready;
    const udp = await openUdpTransport({ address: '127.0.0.1', port: 0, onReceive: (b, c) => pcscf.layer.receive(b, c) });
    const pcscf = new FakePcscf(systemClock, udp.local);
    pcscf.transport = udp;
    pcscf.scscf = { address: '127.0.0.1', port: at.port };
    const usim = usimOf(ALICE, { sqnMs: 0x20 * 100 });
    let body = '';
    try {
      const ue = new UeSide(pcscf);
      const callId = newCallId();
      const { final: again } = await ue.registerFully(usim, { callId, expires: 60 });
      const ok = await pcscf.send(ue.register({ callId, cseq: 3, expires: 60, auth: ue.answer(again, usim), integrityProtected: 'yes' }));
      assert.equal(ok.status, 200);
      // Asynchronously: the server runs in this process.
      body = (await run('curl', ['-s', '-f', `http://127.0.0.1:${at.metrics}/metrics`])).stdout;
      assert.equal((await run('curl', ['-s', '-f', `http://127.0.0.1:${at.metrics}/readyz`])).stdout, 'ready\n');
    } finally {
      pcscf.layer.close();
      await udp.close();
      ac.abort();
      await done;
    }
    assert.equal(sample(body, 'imsec_hss_vectors_issued_total', { service: 'core' }), 2, 'one vector per challenge');
    assert.equal(sample(body, 'imsec_core_auth_failures_total', { reason: 'sync' }), 1);
    assert.equal(sample(body, 'imsec_core_challenges_total', { reason: 'initial' }), 1);
    assert.equal(sample(body, 'imsec_core_registrations_total', { kind: 'initial' }), 1);
    assert.equal(sample(body, 'imsec_core_registrations'), 1);
    assert.equal(sample(body, 'imsec_core_sip_requests_total', { dir: 'recv', method: 'REGISTER' }), 3);
    assert.equal(sample(body, 'imsec_core_sip_responses_total', { dir: 'send', method: 'REGISTER', status: '401' }), 2);
    assert.equal(sample(body, 'imsec_core_sip_transaction_seconds_count', { side: 'server', method: 'REGISTER' }), 3);
  },
);
