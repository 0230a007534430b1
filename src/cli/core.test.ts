// `imsec core`: listen parsing, the event line format (no keys), a run in-process over UDP driven by a
// fake P-CSCF, and the real command in a child process stopped by SIGTERM.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newCallId, systemClock } from '../sip/index.ts';
import { openUdpTransport } from '../sip/udp-transport.ts';
import { HssStore } from '../scscf/hss-store.ts';
import { ALICE, DOMAIN, FakePcscf, UeSide, usimOf } from '../scscf/_test-helpers.ts';
import { fromHex } from '../util/bytes.ts';
import { InputError } from '../util/errors.ts';
import { formatEvent, parseListen, runCore } from './core.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'imsec-cli-core-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const DB = join(dir, 'hss.sqlite');
{
  const s = new HssStore(DB);
  s.add({ impi: ALICE.impi, impus: ALICE.impus, k: fromHex(ALICE.k), op: fromHex(ALICE.op), amf: fromHex('8000') });
  s.close();
}

test('parseListen: IPv4, [IPv6], port 0; bad input is an InputError', () => {
  assert.deepEqual(parseListen('127.0.0.1:6060'), { address: '127.0.0.1', port: 6060 });
  assert.deepEqual(parseListen('[::1]:0'), { address: '::1', port: 0 });
  for (const bad of ['127.0.0.1', ':6060', '1.2.3.4:70000', '::1:6060']) assert.throws(() => parseListen(bad), InputError, bad);
});

test('formatEvent: TIME TYPE key=value (snake_case, lists joined) or one JSON object', () => {
  const t = new Date('2024-01-02T03:04:05.678Z');
  const e = {
    type: 'registered',
    impi: 'a@x',
    impus: ['sip:a@x', 'tel:+1'],
    contact: 'sip:a@1.2.3.4:5',
    expires: 60,
    refresh: false,
  } as const;
  assert.equal(
    formatEvent(e, false, t),
    '2024-01-02T03:04:05.678Z registered impi=a@x impus=sip:a@x,tel:+1 contact=sip:a@1.2.3.4:5 expires=60 refresh=false',
  );
  assert.deepEqual(JSON.parse(formatEvent({ type: 'challenge', impi: 'a@x', impu: 'sip:a@x', callId: 'c1', reason: 'initial' }, true, t)), {
    t: '2024-01-02T03:04:05.678Z',
    event: 'challenge',
    impi: 'a@x',
    impu: 'sip:a@x',
    call_id: 'c1',
    reason: 'initial',
  });
});

test('runCore: listening line, one line per event of a full registration, no key material, stopped on abort', async () => {
  const lines: string[] = [];
  const ac = new AbortController();
  let onListening!: (port: number) => void;
  const listening = new Promise<number>((resolve) => (onListening = resolve));
  const done = runCore(
    { listen: '127.0.0.1:0', domain: DOMAIN, db: DB, jsonEvents: true },
    {
      signal: ac.signal,
      out: (l) => {
        lines.push(l);
        const j = JSON.parse(l);
        if (j.event === 'listening') onListening(j.port);
      },
    },
  );
  const port = await listening;
  const udp = await openUdpTransport({ address: '127.0.0.1', port: 0, onReceive: (b, c) => pcscf.layer.receive(b, c) });
  const pcscf = new FakePcscf(systemClock, udp.local);
  pcscf.transport = udp;
  pcscf.scscf = { address: '127.0.0.1', port };
  const usim = usimOf(ALICE, { sqnMs: 0x20 * 100 }); // ahead of the fresh store: exercises the resync line too
  try {
    const ue = new UeSide(pcscf);
    const callId = newCallId();
    const { final: again } = await ue.registerFully(usim, { callId, expires: 60 });
    assert.equal(again.status, 401, 'the answer carried auts: a second challenge');
    const ok = await pcscf.send(ue.register({ callId, cseq: 3, expires: 60, auth: ue.answer(again, usim), integrityProtected: 'yes' }));
    assert.equal(ok.status, 200);
  } finally {
    pcscf.layer.close();
    await udp.close();
  }
  ac.abort();
  await done;
  const events = lines.map((l) => JSON.parse(l).event);
  assert.deepEqual(events, ['listening', 'challenge', 'resync', 'challenge', 'registered', 'stopped']);
  assert.equal(JSON.parse(lines[0]!).service_route, `<sip:orig@127.0.0.1:${port};lr>`);
  assert.equal(JSON.parse(lines.at(-1)!).resyncs, 1);
  assert.ok(!/\b(ck|ik|xres|nonce)\b/i.test(lines.join('\n')), 'no key material or nonces in the output');
});

test('runCore: a missing store is an InputError (exit 2), nothing is created', async () => {
  const missing = join(dir, 'nope.sqlite');
  await assert.rejects(
    runCore({ listen: '127.0.0.1:0', domain: DOMAIN, db: missing }, { signal: AbortSignal.abort(), out: () => {} }),
    InputError,
  );
});

test('the command: registerCore in a child process prints the listening line and stops cleanly on SIGTERM', async () => {
  const script = `import { Command } from 'commander';
const { registerCore } = await import(${JSON.stringify(join(REPO, 'src/cli/core.ts'))});
const p = new Command(); p.exitOverride(); registerCore(p);
await p.parseAsync(['node', 'imsec', 'core', '--listen', '127.0.0.1:0', '--domain', '${DOMAIN}', '--db', ${JSON.stringify(DB)}]);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('"listening"')) resolve();
    });
    child.on('exit', () => reject(new Error(`exited early: ${err}`)));
  });
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 0, err);
  // stdout is a pipe, not a terminal: JSON lines.
  const lines = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines[0]!['event'], 'listening');
  assert.equal(lines[0]!['address'], '127.0.0.1');
  assert.match(String(lines[0]!['service_route']), /^<sip:orig@127\.0\.0\.1:\d+;lr>$/);
  assert.equal(lines[0]!['subscribers'], 1);
  assert.equal(lines.at(-1)!['event'], 'stopped');
  assert.equal(lines.at(-1)!['registers'], 0);
});
