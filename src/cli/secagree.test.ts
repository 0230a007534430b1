// `imsec secagree negotiate` end to end through bin/imsec.mjs: output keys and exit statuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SPIS = 'spi-c=1236;spi-s=1237;port-c=7004;port-s=7005';
const KAMAILIO_ISSUE = `ipsec-3gpp;alg=hmac-md5-96;ealg=null;${SPIS}, ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;${SPIS}`;

function imsec(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/imsec.mjs', 'secagree', 'negotiate', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('chooses hmac-sha-1-96/null from the Kamailio-issue offer and prints the Security-Server (JSON, snake_case)', () => {
  const r = imsec('--client', KAMAILIO_ISSUE, '--json', '--spi-c', '5000', '--spi-s', '5001', '--port-c', '6000', '--port-s', '6001');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    alg: 'hmac-sha-1-96',
    ealg: 'null',
    mod: 'trans',
    nat: false,
    spi_c: 1236,
    spi_s: 1237,
    port_c: 7004,
    port_s: 7005,
    security_server: 'ipsec-3gpp;q=0.1;prot=esp;mod=trans;spi-c=5000;spi-s=5001;port-c=6000;port-s=6001;alg=hmac-sha-1-96;ealg=null',
  });
});

test('with --nat it picks the UDP-enc-tun entry and uses the default server SPIs and ports', () => {
  const r = imsec(
    '--client',
    `ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;${SPIS}`,
    '--client',
    `ipsec-3gpp;mod=UDP-enc-tun;alg=hmac-sha-1-96;ealg=null;${SPIS}`,
    '--nat',
    '--json',
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.mod, 'UDP-enc-tun');
  assert.equal(out.ealg, 'null');
  assert.equal(
    out.security_server,
    'ipsec-3gpp;q=0.1;prot=esp;mod=UDP-enc-tun;spi-c=4096;spi-s=4097;port-c=5062;port-s=5063;alg=hmac-sha-1-96;ealg=null',
  );
});

test('no common algorithm: message on stderr, nothing on stdout, exit 1', () => {
  const r = imsec(
    '--client',
    `ipsec-3gpp;alg=hmac-md5-96;ealg=des-ede3-cbc;${SPIS}`,
    '--policy',
    'hmac-sha-1-96/aes-cbc,hmac-sha-1-96/null',
  );
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /no acceptable alg\/ealg.*SECAGREE_NO_COMMON_ALG/);
});

test('a garbage Security-Client exits 2 naming the problem', () => {
  const r = imsec('--client', 'ipsec-3gpp;spi-c=0x10');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /spi-c: SPI must be 1 to 10 decimal digits, got "0x10"/);
  assert.equal(imsec('--client', '<<>>').status, 2);
  assert.equal(imsec('--client', KAMAILIO_ISSUE, '--policy', 'null/aes-cbc').status, 2);
  assert.equal(imsec('--client', KAMAILIO_ISSUE, '--port-s', '70000').status, 2);
});
