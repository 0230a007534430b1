import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../util/errors.ts';
import { formatSpi, parseHostPortArg, parseIntArg, parseKeyHex, parsePortArg } from './parse-args.ts';

test('formatSpi: 0x and 8 hex digits', () => {
  assert.equal(formatSpi(0x1234), '0x00001234');
  assert.equal(formatSpi(0xffffffff), '0xffffffff');
});

test('parseIntArg: digits only, inside the range; everything else an InputError naming the flag', () => {
  assert.equal(parseIntArg('0', '--n', 0, 5), 0);
  assert.equal(parseIntArg('5', '--n', 0, 5), 5);
  for (const bad of ['', '6', '-1', '1e2', '0x1', ' 1', '1.0', '9'.repeat(20)]) {
    assert.throws(
      () => parseIntArg(bad, '--n', 0, 5),
      (e: unknown) => e instanceof InputError && /^--n: must be an integer 0\.\.5/.test(e.message),
      bad,
    );
  }
  assert.equal(parsePortArg('65535', '--p'), 65535);
  assert.throws(() => parsePortArg('0', '--p', 1), /--p: must be a port 1\.\.65535/);
});

test('parseKeyHex: exact length, optional 0x; a bad value is never echoed', () => {
  assert.deepEqual(
    parseKeyHex('0x00112233445566778899aabbccddeeff', '--k', 16),
    Uint8Array.from([0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
  );
  assert.throws(() => parseKeyHex('00', '--k', 16), /--k: must be 16 octets/);
  const secret = 'zz112233445566778899aabbccddeeff';
  assert.throws(
    () => parseKeyHex(secret, '--k', 16),
    (e: unknown) => e instanceof InputError && !e.message.includes('112233'),
  );
});

test('parseHostPortArg: ADDR:PORT, [IPv6]:PORT, host names; defaults only when asked', () => {
  assert.deepEqual(parseHostPortArg('127.0.0.1:6060', '--listen'), { address: '127.0.0.1', port: 6060 });
  assert.deepEqual(parseHostPortArg('[::1]:0', '--listen'), { address: '::1', port: 0 });
  assert.deepEqual(parseHostPortArg('pcscf.example:5070', '--x'), { address: 'pcscf.example', port: 5070 });
  assert.deepEqual(parseHostPortArg('2001:db8::1', '--x', { defaultPort: 5060 }), { address: '2001:db8::1', port: 5060 });
  assert.deepEqual(parseHostPortArg('[2001:db8::1]', '--x', { defaultPort: 5060 }), { address: '2001:db8::1', port: 5060 });
  for (const bad of ['127.0.0.1', ':6060', '1.2.3.4:70000', '::1:6060', '[1.2.3.4]:5', 'a b:5', 'h:', '[::1]:x']) {
    assert.throws(
      () => parseHostPortArg(bad, '--listen'),
      (e: unknown) => e instanceof InputError && e.message.startsWith('--listen: expected ADDR:PORT'),
      bad,
    );
  }
  assert.throws(() => parseHostPortArg('h:0', '--x', { defaultPort: 5060, minPort: 1 }), InputError);
});
