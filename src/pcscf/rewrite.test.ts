// The P-CSCF's message edits: sec-agree stripping, integrity-protected, ik/ck removal (pitfall 4),
// Route/identity handling and the proxy basics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseDigestHeader } from '../aka/index.ts';
import { createRequest, createResponse } from '../sip/builders.ts';
import { toHex } from '../util/bytes.ts';
import {
  addPath,
  assertIdentity,
  decrementMaxForwards,
  impiOf,
  markIntegrityProtected,
  popVia,
  pushVia,
  removeOwnRoutes,
  stripSecAgree,
  takeAkaKeys,
  warningValue,
} from './rewrite.ts';

function req(headers: [string, string][] = [], maxForwards?: number) {
  return createRequest({
    method: 'REGISTER',
    uri: 'sip:ims.example.org',
    via: 'SIP/2.0/UDP 192.0.2.5:6001;branch=z9hG4bKr',
    from: '<sip:alice@ims.example.org>;tag=1',
    to: '<sip:alice@ims.example.org>',
    callId: 'c1',
    cseq: 1,
    headers,
    ...(maxForwards !== undefined ? { maxForwards } : {}),
  });
}

test('stripSecAgree: Security-* headers gone, sec-agree removed from Require / Proxy-Require, empty ones dropped, Supported kept', () => {
  const r = req([
    ['Security-Client', 'ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=3;port-s=4'],
    ['Security-Verify', 'ipsec-3gpp;alg=hmac-sha-1-96'],
    ['Require', 'sec-agree, precondition'],
    ['Proxy-Require', 'sec-agree'],
    ['Supported', 'path, sec-agree'],
  ]);
  stripSecAgree(r);
  assert.equal(r.headers.has('Security-Client'), false);
  assert.equal(r.headers.has('Security-Verify'), false);
  assert.equal(r.headers.get('Require'), 'precondition');
  assert.equal(r.headers.has('Proxy-Require'), false);
  assert.deepEqual(r.headers.raw('Supported'), ['path, sec-agree']);
});

test('markIntegrityProtected and impiOf: the flag lands on every Digest Authorization, the username is the IMPI', () => {
  const r = req([
    ['Authorization', 'Digest username="alice@ims.example.org", realm="ims.example.org", uri="sip:ims.example.org", nonce="", response=""'],
  ]);
  assert.equal(impiOf(r), 'alice@ims.example.org');
  markIntegrityProtected(r, false);
  assert.match(r.headers.get('Authorization')!, /, integrity-protected="no"$/);
  markIntegrityProtected(r, true);
  assert.match(r.headers.get('Authorization')!, /integrity-protected="yes"$/);
  assert.doesNotMatch(r.headers.get('Authorization')!, /"no"/);
  assert.equal(impiOf(req()), undefined);
  const spoof = req([['Authorization', 'Digest username="a", realm="r", uri="sip:r", nonce="", response="", integrity-protected="yes"']]);
  markIntegrityProtected(spoof, false);
  assert.match(spoof.headers.get('Authorization')!, /integrity-protected="no"$/, 'a UE cannot claim protection');
});

test('property: markIntegrityProtected leaves every parameter as the UE wrote it and exactly one integrity-protected with our flag; impiOf reads the username', () => {
  const name = fc.constantFrom('username', 'realm', 'nonce', 'uri', 'response', 'integrity-protected', 'Integrity-Protected', 'x-vendor');
  const value = fc.constantFrom('"alice@ims.example.org"', 'abc', '"q,r=s"', '"integrity-protected=yes"', '"a\\"b"', '""', 'yes');
  const sep = fc.constantFrom(', ', ',', ' ,\t', ' , ', ', , ');
  const tail = fc.constantFrom('', ' ', ',', ', ', ' , \t');
  const line = fc
    .uniqueArray(fc.tuple(name, value), { minLength: 0, maxLength: 6, selector: ([n]) => n.toLowerCase() })
    .chain((ps) => fc.tuple(fc.constant(ps), fc.array(sep, { minLength: ps.length, maxLength: ps.length }), tail))
    .map(([ps, ss, t]) => 'Digest' + ps.map(([n, v], i) => `${i === 0 ? ' ' : ss[i]}${n}=${v}`).join('') + (ps.length > 0 ? t : ''));
  fc.assert(
    fc.property(line, fc.boolean(), (l, protectedArrival) => {
      const before = parseDigestHeader(l);
      assert.ok(before.ok, l);
      const r = req([['Authorization', l]]);
      const username = before.value.params.find((p) => p.name.toLowerCase() === 'username')?.value;
      assert.equal(impiOf(r), username || undefined);
      markIntegrityProtected(r, protectedArrival);
      const after = parseDigestHeader(r.headers.get('Authorization')!);
      assert.ok(after.ok, r.headers.get('Authorization'));
      const flag = <P extends { name: string }>(ps: readonly P[]) => ps.filter((p) => p.name.toLowerCase() === 'integrity-protected');
      assert.deepEqual(
        after.value.params.filter((p) => flag([p]).length === 0),
        before.value.params.filter((p) => flag([p]).length === 0),
      );
      assert.deepEqual(
        flag(after.value.params).map((p) => p.value),
        [protectedArrival ? 'yes' : 'no'],
      );
    }),
    { numRuns: 2000 },
  );
});

test('takeAkaKeys: returns ik/ck and removes them from every challenge; other parameters stay as they were', () => {
  const ik = '00112233445566778899aabbccddeeff';
  const ck = 'ffeeddccbbaa99887766554433221100';
  const res = createResponse(req(), 401, undefined, [
    ['WWW-Authenticate', `Digest realm="ims.example.org", nonce="bm9uY2U=", algorithm=AKAv1-MD5, qop="auth", ik="${ik}", ck="${ck}"`],
    ['WWW-Authenticate', `Digest realm="other", nonce="x", ik="${ik}"`],
  ]);
  const keys = takeAkaKeys(res);
  assert.equal(toHex(keys!.ik), ik);
  assert.equal(toHex(keys!.ck), ck);
  const lines = res.headers.raw('WWW-Authenticate');
  assert.deepEqual(lines, [
    'Digest realm="ims.example.org", nonce="bm9uY2U=", algorithm=AKAv1-MD5, qop="auth"',
    'Digest realm="other", nonce="x"',
  ]);
  assert.equal(takeAkaKeys(res), undefined, 'nothing left to take');
  const bad = createResponse(req(), 401, undefined, [['WWW-Authenticate', 'Digest realm="r", nonce="n", ik="zz", ck="00"']]);
  assert.equal(takeAkaKeys(bad), undefined);
  assert.doesNotMatch(bad.headers.get('WWW-Authenticate')!, /ik=|ck=/, 'malformed keys are removed too');
});

test('property: whatever the spelling (case, spaces, separators), no parameter named ik or ck survives takeAkaKeys (pitfall 4)', () => {
  const name = fc.constantFrom('ik', 'IK', 'Ck', 'cK', 'ck', 'realm', 'nonce', 'x-ik', 'ikx', 'qop', 'auth-ck');
  const value = fc.constantFrom('"00112233445566778899aabbccddeeff"', 'abc', '"q,r=s"', '"ik=1"');
  const sep = fc.constantFrom(', ', ',', ' ,\t', ' , ');
  const eq = fc.constantFrom('=', ' =', '= ', '\t=\t');
  const line = fc
    .array(fc.tuple(name, eq, value), { minLength: 1, maxLength: 6 })
    .chain((ps) => fc.array(sep, { minLength: ps.length, maxLength: ps.length }).map((ss) => ({ ps, ss })))
    .map(({ ps, ss }) => 'Digest ' + ps.map(([n, e, v], i) => `${i === 0 ? '' : ss[i]}${n}${e}${v}`).join(''));
  fc.assert(
    fc.property(fc.array(line, { minLength: 1, maxLength: 3 }), (lines) => {
      const res = createResponse(
        req(),
        401,
        undefined,
        lines.map((l): [string, string] => ['WWW-Authenticate', l]),
      );
      takeAkaKeys(res);
      for (const l of res.headers.raw('WWW-Authenticate')) {
        const h = parseDigestHeader(l);
        if (!h.ok) continue;
        for (const p of h.value.params) assert.ok(!/^(?:ik|ck)$/i.test(p.name), `${p.name} left in ${l}`);
      }
    }),
    { numRuns: 2000 },
  );
});

test('Route, Path, Via and Max-Forwards: own Route entries removed, Path on top, our Via on top and off again', () => {
  const r = req([['Route', '<sip:192.0.2.1:5066;lr>, <sip:orig@192.0.2.9:5060;lr>']], 1);
  assert.equal(
    removeOwnRoutes(r, (u) => u.includes('192.0.2.1')),
    1,
  );
  assert.deepEqual(r.headers.getAll('Route'), ['<sip:orig@192.0.2.9:5060;lr>']);
  addPath(r, 'sip:term@192.0.2.1:5060;lr');
  assert.equal(r.headers.get('Path'), '<sip:term@192.0.2.1:5060;lr>');
  assert.equal(decrementMaxForwards(r), true);
  assert.equal(r.headers.get('Max-Forwards'), '0');
  assert.equal(decrementMaxForwards(r), false, 'arrived with 0: 483');
  const branch = pushVia(r, '192.0.2.1', 5060);
  assert.equal(r.headers.get('Via'), `SIP/2.0/UDP 192.0.2.1:5060;branch=${branch};rport`);
  const res = createResponse(r, 200);
  assert.equal(popVia(res).headers.getAll('Via').length, 1);
  assert.equal(res.headers.getAll('Via').length, 2, 'popVia copies');
});

test('assertIdentity: P-Preferred-Identity and any UE-supplied P-Asserted-Identity give way to ours; Warning text is quoted safely', () => {
  const r = req([
    ['P-Preferred-Identity', '<sip:alice@ims.example.org>'],
    ['P-Asserted-Identity', '<sip:boss@ims.example.org>'],
  ]);
  assertIdentity(r, 'sip:alice@ims.example.org');
  assert.equal(r.headers.has('P-Preferred-Identity'), false);
  assert.deepEqual(r.headers.getAll('P-Asserted-Identity'), ['<sip:alice@ims.example.org>']);
  assert.equal(warningValue('192.0.2.1', 'a "quoted"\r\nthing'), '399 192.0.2.1 "a \\"quoted\\" thing"');
});
