// --backend and --transport of `imsec pcscf` / `imsec ue`: parsing, TCP only with xfrm, and the one
// clear error (naming CAP_NET_ADMIN and ESP) where the xfrm backend cannot work — this host's kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { xfrmPreflight } from '../ipsec/backends/xfrm/preflight.ts';
import { assertTransport, parseBackend, parseXfrmInstance } from './backend-choice.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const KEY = '00112233445566778899aabbccddeeff';

function xfrmWorksHere(): string | undefined {
  try {
    xfrmPreflight(4);
    return 'the xfrm backend works on this host (a kernel with ESP): the refusal cannot be shown here';
  } catch {
    return undefined;
  }
}

test('parseBackend, parseXfrmInstance, assertTransport', () => {
  assert.equal(parseBackend(undefined), 'userspace');
  assert.equal(parseBackend('XFRM'), 'xfrm');
  assert.throws(() => parseBackend('kernel'), /--backend must be userspace or xfrm/);
  assert.equal(parseXfrmInstance(undefined), undefined);
  assert.equal(parseXfrmInstance('7'), 7);
  assert.throws(() => parseXfrmInstance('65535'), /--xfrm-instance must be 0..65534/);
  assert.equal(assertTransport('tcp', 'xfrm'), 'tcp');
  assert.equal(assertTransport(undefined, 'userspace'), 'udp');
  assert.throws(() => assertTransport('tcp', 'userspace'), /use udp, or --backend xfrm/);
  assert.throws(() => assertTransport('sctp', 'xfrm'), /must be udp or tcp/);
});

for (const [name, argv] of [
  [
    'imsec pcscf --backend xfrm',
    ['pcscf', '--listen', '127.0.0.1:0', '--port-c', '0', '--port-s', '0', '--scscf', '127.0.0.1:6060', '--backend', 'xfrm'],
  ],
  [
    'imsec ue message --backend xfrm --transport tcp',
    [
      'ue',
      'message',
      '--pcscf',
      '127.0.0.1:5060',
      '--impi',
      'a@b',
      '--impu',
      'sip:a@b',
      '--k',
      KEY,
      '--opc',
      KEY,
      '--to',
      'sip:b@b',
      '--text',
      'x',
      '--backend',
      'xfrm',
      '--transport',
      'tcp',
    ],
  ],
] as const) {
  test(`${name} on a host without ESP (or CAP_NET_ADMIN) exits 2 naming both`, { skip: xfrmWorksHere() }, () => {
    const r = spawnSync(process.execPath, ['bin/imsec.mjs', ...argv], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^imsec: .*(no IPv4 ESP|no CAP_NET_ADMIN|native addon)/);
    assert.match(r.stderr, /CAP_NET_ADMIN/);
    assert.match(r.stderr, /ESP \(esp4\/esp6 and xfrm_user/);
    assert.doesNotMatch(r.stdout, /listening|registered/);
  });
}
