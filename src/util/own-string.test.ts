import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ownString } from './own-string.ts';

test('ownString returns an equal string for any text (UTF-8 round trip, lone surrogates aside)', () => {
  fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (s) => assert.equal(ownString(s), s)));
  const msg = 'SIP/2.0 401 Unauthorized\r\nSecurity-Server: ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=3;port-s=4\r\n\r\n';
  const slice = msg.slice(msg.indexOf('ipsec-3gpp'), msg.indexOf('\r\n\r\n'));
  assert.equal(ownString(slice), slice);
});
