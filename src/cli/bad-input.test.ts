// Issue 10 §5: every bad input is one line on stderr and exit 2, before any packet is sent or file
// written; a reader that goes away (EPIPE) ends the command quietly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPcap } from '../ipsec/pcap.ts';
import { espSaLines } from '../ipsec/key-export.ts';
import { exchange, makePair } from '../../test/support/ims-fixture.ts';

const BIN = new URL('../../bin/imsec.mjs', import.meta.url).pathname;
const K = ['--k', '465b5ce8b199b49faa5f0a2ee238a6bc', '--opc', 'cd63cb71954a9f4e48a5994e37a02baf'];

function imsec(args: string[], cwd?: string) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000, ...(cwd && { cwd }) });
}

function refused(args: string[], message: RegExp, cwd?: string): void {
  const r = imsec(args, cwd);
  assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0]!, message);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.equal(r.stdout, '', 'nothing printed before the refusal');
}

test('demo --pcap / --keylog into a missing directory: exit 2 before the demo runs', () => {
  refused(['demo', '--pcap', '/no/such/dir/x.pcap'], /--pcap: cannot write .*\/no\/such\/dir/);
  refused(['demo', '--keylog', '/no/such/dir/x'], /--keylog: cannot write/);
});

test('aka digest: a RES outside 4..16 octets is refused', () => {
  const base = ['aka', 'digest', '--username', 'a@b', '--realm', 'b', '--uri', 'sip:b', '--nonce', 'AAAA'];
  refused([...base, '--res', 'ab'.repeat(40_000)], /--res: RES is 4 to 16 octets.*got 40000/);
  refused([...base, '--res', 'abcdef'], /--res: RES is 4 to 16 octets.*got 3/);
  assert.equal(imsec([...base, '--res', 'a54211d5e3ba50bf']).status, 0);
  assert.equal(imsec([...base, '--res', '']).status, 0, 'the empty password of a sync failure');
});

test('secagree negotiate: spi-c = spi-s (flags or Security-Client) is refused', () => {
  const client = 'ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;prot=esp;mod=trans;spi-c=1000;spi-s=1001;port-c=5000;port-s=5001';
  refused(['secagree', 'negotiate', '--client', client, '--spi-c', '7000', '--spi-s', '7000'], /--spi-c and --spi-s must differ/);
  refused(['secagree', 'negotiate', '--client', client.replace('spi-s=1001', 'spi-s=1000')], /spi-c = spi-s = 1000/);
});

test('subscriber add without a realm, remove with an empty IMPI: exit 2, no store touched', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imsec-bad-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = join(dir, 'hss.db');
  refused(
    ['subscriber', 'add', '--db', db, '--impi', 'norealm', '--impu', 'sip:a@example.net', ...K],
    /--impi: a private identity is user@realm/,
  );
  refused(
    ['subscriber', 'add', '--db', db, '--impi', 'a@example.net', '--impu', 'not a uri', ...K],
    /--impu: not a sip:, sips: or tel: URI/,
  );
  refused(['subscriber', 'remove', '--db', db, '--impi', ''], /--impi: a private identity is user@realm/);
  assert.deepEqual(readdirSync(dir), [], 'no store created');
});

test('ue register --impu / ue message --to that are not URIs: exit 2 before registering', () => {
  const ue = ['--pcscf', '127.0.0.1:9', '--impi', 'a@example.net', ...K, '--mode', 'udp-enc-tun'];
  refused(['ue', 'register', ...ue, '--impu', 'not a uri'], /--impu: not a sip:, sips: or tel: URI/);
  refused(
    ['ue', 'message', ...ue, '--impu', 'sip:a@example.net', '--to', 'not a uri', '--text', 'x'],
    /--to: not a sip:, sips: or tel: URI/,
  );
});

test('core --advertise that is neither an IP address nor a host name: exit 2 before listening', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imsec-bad-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  refused(['core', '--domain', 'example.net', '--db', ':memory:', '--listen', '127.0.0.1:0', '--advertise', 'not an ip'], /--advertise/);
});

test('EPIPE: esp decode into a reader that goes away ends quietly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'imsec-epipe-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pair = makePair({ alg: 'hmac-sha-1-96', ealg: 'null', mode: 'transport' });
  const packets = [];
  for (let i = 0; i < 400; i++) packets.push(...exchange(pair, 10 * i + 1).map((p) => p.ip));
  writeFileSync(join(dir, 'c.pcap'), buildPcap(packets.map((ip, i) => ({ ip, timestampUs: 1_700_000_000_000_000 + i }))));
  writeFileSync(join(dir, 'keys'), espSaLines(pair.ue).join('\n') + '\n');
  const child = spawn(process.execPath, [BIN, 'esp', 'decode', '--keys', join(dir, 'keys'), '--pcap', join(dir, 'c.pcap')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b) => (stderr += b));
  // Like `| head -1`: read the first chunk, then close our end.
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  assert.equal(stderr, '', 'no stack trace');
  assert.equal(code, 0);
});
