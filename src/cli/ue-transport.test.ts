// SIP over TCP inside userspace SAs is refused up front with a message that says what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { assertUdpOverUserspace } from './ue.ts';

test('udp is accepted; tcp over the userspace backend gets a clear error; anything else is bad input', () => {
  assertUdpOverUserspace('udp');
  assertUdpOverUserspace(undefined);
  assert.throws(() => assertUdpOverUserspace('tcp'), /SIP over TCP inside userspace SAs is not supported/);
  assert.throws(() => assertUdpOverUserspace('sctp'), /must be udp or tcp/);
});

test('imsec ue register --transport tcp exits 2 before touching the network', () => {
  const r = spawnSync(
    process.execPath,
    [
      'bin/imsec.mjs',
      'ue',
      'register',
      '--pcscf',
      '127.0.0.1:5060',
      '--impi',
      'a@b',
      '--impu',
      'sip:a@b',
      '--k',
      '00112233445566778899aabbccddeeff',
      '--opc',
      '00112233445566778899aabbccddeeff',
      '--transport',
      'tcp',
    ],
    { cwd: new URL('../..', import.meta.url).pathname, encoding: 'utf8' },
  );
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--transport tcp: SIP over TCP inside userspace SAs is not supported/);
});
