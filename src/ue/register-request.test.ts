// The UE's message builders and readers (24.229 §5.1.1.2.1, RFC 3310, RFC 3608) and port choice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildNonce, generateVector, parseDigestHeaderOrThrow, paramRecord } from '../aka/index.ts';
import { createResponse, parseMessageOrThrow, serializeMessage } from '../sip/index.ts';
import {
  akaAuthorization,
  buildProtectedRequest,
  buildRegister,
  contactUser,
  initialAuthorization,
  parseAkaChallenge,
  parseRegisterOk,
} from './register-request.ts';
import { choosePort } from './sa-table.ts';
import { UeError } from './errors.ts';
import { buildSecurityClient, serializeMechanisms } from '../secagree/index.ts';
import { UDP_MAX_REQUEST } from './sip-io.ts';
import { DEFAULT_OFFERS } from './ue-types.ts';

const ID = { impi: 'alice@ims.example', impu: 'sip:alice@ims.example', domain: 'ims.example' };
const K = new Uint8Array(16).fill(1);
const OPC = new Uint8Array(16).fill(2);

test('initial Authorization: username, realm, uri, empty nonce and response (24.229 §5.1.1.2.1)', () => {
  assert.equal(
    initialAuthorization(ID),
    'Digest username="alice@ims.example", realm="ims.example", uri="sip:ims.example", nonce="", response=""',
  );
});

test('REGISTER: Request-URI sip:DOMAIN, rport, Contact expires, sec-agree tags; Expires 0 only to de-register', () => {
  const dialog = { callId: 'c1', fromTag: 't1', cseq: 1 };
  const req = buildRegister({
    id: ID,
    dialog,
    localIp: '10.0.0.1',
    port: 5060,
    expires: 600000,
    authorization: initialAuthorization(ID),
    securityClient: 'ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1000;spi-s=1001;port-c=2000;port-s=2001',
  });
  const back = parseMessageOrThrow(serializeMessage(req));
  assert.equal(back.kind, 'request');
  // Compact header names on the wire (RFC 3261 §7.3.3), full names after parsing.
  assert.match(
    Buffer.from(serializeMessage(req)).toString(),
    /^REGISTER sip:ims\.example SIP\/2\.0\r\nv: SIP\/2\.0\/UDP 10\.0\.0\.1:5060;branch=z9hG4bK[0-9a-f]+;rport\r\n/,
  );
  assert.equal(back.headers.get('Call-ID'), 'c1');
  assert.equal(req.headers.get('Contact'), '<sip:alice@10.0.0.1:5060>;expires=600000');
  assert.equal(req.headers.get('From'), '<sip:alice@ims.example>;tag=t1');
  assert.equal(req.headers.get('To'), '<sip:alice@ims.example>');
  assert.equal(req.headers.has('Expires'), false);
  assert.equal(req.headers.has('Security-Verify'), false);
  const dereg = buildRegister({
    id: ID,
    dialog,
    localIp: '::1',
    port: 7001,
    expires: 0,
    authorization: 'Digest x="y"',
    securityClient: 's',
    securityVerify: ['v1', 'v2'],
  });
  assert.equal(dereg.headers.get('Expires'), '0');
  assert.equal(dereg.headers.get('Contact'), '<sip:alice@[::1]:7001>;expires=0');
  assert.deepEqual(dereg.headers.raw('Security-Verify'), ['v1', 'v2'], 'several Security-Server lines echoed line by line');
});

test('contactUser: the IMPU user, a tel number, else the IMPI user', () => {
  assert.equal(contactUser(ID), 'alice');
  assert.equal(contactUser({ ...ID, impu: 'tel:+15550100' }), '+15550100');
  assert.equal(contactUser({ ...ID, impu: 'sip:ims.example' }), 'alice');
});

test('parseAkaChallenge: RAND/AUTN from the nonce, qop auth preferred, non-AKA challenges skipped', () => {
  const v = generateVector({ k: K, opc: OPC, sqn: 5, amf: new Uint8Array([0x80, 0]) });
  const nonce = buildNonce(v.rand, v.autn);
  const r = parseAkaChallenge([
    'Basic realm="x"',
    `Digest realm="ims.example", nonce="${nonce}", algorithm=AKAv1-MD5, qop="auth-int,auth", opaque="o1"`,
  ]);
  assert.ok(r.ok);
  assert.deepEqual(r.challenge.rand, v.rand);
  assert.deepEqual(r.challenge.autn, v.autn);
  assert.equal(r.challenge.qop, 'auth');
  assert.equal(r.challenge.opaque, 'o1');
  const none = parseAkaChallenge([`Digest realm="r", nonce="${nonce}", algorithm=MD5`]);
  assert.ok(!none.ok);
  assert.match(none.reason, /not AKAv1-MD5/);
  assert.ok(!parseAkaChallenge(['Digest realm="r", nonce="AAAA", algorithm=AKAv1-MD5']).ok, 'a nonce shorter than RAND ‖ AUTN');
  assert.ok(!parseAkaChallenge([]).ok);
});

test('akaAuthorization: qop/nc/cnonce only with a response; auts and opaque carried (RFC 3310 §3.4)', () => {
  const v = generateVector({ k: K, opc: OPC, sqn: 5, amf: new Uint8Array([0x80, 0]) });
  const ch = (
    parseAkaChallenge([
      `Digest realm="ims.example", nonce="${buildNonce(v.rand, v.autn)}", algorithm=AKAv1-MD5, qop="auth", opaque="zz"`,
    ]) as { ok: true; challenge: never }
  ).challenge;
  const full = paramRecord(
    parseDigestHeaderOrThrow(
      akaAuthorization({ username: 'u', uri: 'sip:d', challenge: ch, response: 'abc', nc: '00000001', cnonce: 'cn', auts: 'AUTS' }),
    ),
  );
  assert.deepEqual(full, {
    username: 'u',
    realm: 'ims.example',
    uri: 'sip:d',
    nonce: full['nonce'],
    response: 'abc',
    algorithm: 'AKAv1-MD5',
    qop: 'auth',
    nc: '00000001',
    cnonce: 'cn',
    opaque: 'zz',
    auts: 'AUTS',
  });
  const empty = paramRecord(
    parseDigestHeaderOrThrow(akaAuthorization({ username: 'u', uri: 'sip:d', challenge: ch, response: '', nc: '00000001', cnonce: 'cn' })),
  );
  assert.equal(empty['response'], '');
  assert.equal(empty['qop'], undefined);
  assert.equal(empty['auts'], undefined);
});

test('parseRegisterOk: expires of our Contact, else Expires, else the request; P-Associated-URI and Service-Route in order', () => {
  const req = buildRegister({
    id: ID,
    dialog: { callId: 'c', fromTag: 't', cseq: 2 },
    localIp: '10.0.0.1',
    port: 7001,
    expires: 600000,
    authorization: 'Digest a="b"',
    securityClient: 's',
  });
  const ok = createResponse(req, 200, undefined, [
    ['Contact', '<sip:other@10.0.0.9:5060>;expires=10, <sip:alice@10.0.0.1:7001>;expires=3600'],
    ['Service-Route', '<sip:orig@scscf:6060;lr>'],
    ['Service-Route', '<sip:second;lr>'],
    ['P-Associated-URI', '<sip:alice@ims.example>, <tel:+1555>'],
  ]);
  assert.deepEqual(parseRegisterOk(ok, { host: '10.0.0.1', port: 7001 }, 600000), {
    expires: 3600,
    impus: ['sip:alice@ims.example', 'tel:+1555'],
    serviceRoute: ['<sip:orig@scscf:6060;lr>', '<sip:second;lr>'],
  });
  const bare = createResponse(req, 200, undefined, [['Expires', '1800']]);
  assert.equal(parseRegisterOk(bare, { host: '10.0.0.1', port: 7001 }, 600000).expires, 1800);
  assert.equal(parseRegisterOk(createResponse(req, 200), { host: '10.0.0.1', port: 7001 }, 77).expires, 77);
});

test('buildProtectedRequest: Route = P-CSCF port_ps then Service-Route; Via/Contact port_us; P-Preferred-Identity', () => {
  const r = buildProtectedRequest({
    method: 'MESSAGE',
    target: 'sip:bob@ims.example',
    id: ID,
    localIp: '10.0.0.1',
    portUs: 7001,
    pcscfIp: '10.0.0.2',
    portPs: 6101,
    serviceRoute: ['<sip:orig@scscf;lr>'],
    callId: 'm1',
    fromTag: 'f',
    body: new TextEncoder().encode('hi'),
  });
  assert.deepEqual(r.headers.getAll('Route'), ['<sip:10.0.0.2:6101;lr>', '<sip:orig@scscf;lr>']);
  assert.match(r.headers.get('Via')!, /^SIP\/2\.0\/UDP 10\.0\.0\.1:7001;branch=/);
  assert.equal(r.headers.get('Contact'), '<sip:alice@10.0.0.1:7001>');
  assert.equal(r.headers.get('P-Preferred-Identity'), '<sip:alice@ims.example>');
  assert.equal(r.headers.get('Content-Type'), 'text/plain');
  assert.equal(r.headers.get('To'), '<sip:bob@ims.example>');
});

test('choosePort: random within the range, never a used one; a full range is an error', () => {
  const used = new Set<number>([20000, 20001]);
  let i = 0;
  const seq = [0, 0.1, 0.99];
  const p = choosePort([20000, 20002], used, () => seq[i++ % 3]!);
  assert.equal(p, 20002);
  for (let n = 0; n < 200; n++) {
    const q = choosePort([30000, 30010], used);
    assert.ok(q >= 30000 && q <= 30010);
  }
  assert.throws(
    () => choosePort([20000, 20001], used),
    (e: unknown) => e instanceof UeError && e.code === 'UE_NO_PORT',
  );
  assert.throws(() => choosePort([5, 2], used), UeError);
});

test('protected REGISTER with the five default offers: compact and without redundant parameters, still over 1,300 octets (why xfrm sends it over TCP)', () => {
  const offers = buildSecurityClient(DEFAULT_OFFERS, { spiC: 3737242817, spiS: 3737242818, portC: 44483, portS: 43036 })
    .reverse()
    .map(({ prot: _p, mod: _m, ...e }) => e);
  const sc = serializeMechanisms(offers);
  assert.doesNotMatch(sc, /prot=|mod=/, 'Annex H defaults (prot=esp, mod=trans) left out');
  const id = {
    impi: '001010000000001@ims.mnc001.mcc001.3gppnetwork.org',
    impu: 'sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org',
    domain: 'ims.mnc001.mcc001.3gppnetwork.org',
  };
  const auth = `Digest username="${id.impi}", realm="${id.domain}", uri="sip:${id.domain}", nonce="${'A'.repeat(43)}=", response="${'0'.repeat(32)}", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="${'0'.repeat(32)}"`;
  const ss = ['ipsec-3gpp;prot=esp;mod=trans;spi-c=4096;spi-s=4097;port-c=5100;port-s=6100;alg=hmac-sha-1-96;ealg=aes-cbc'];
  const req = buildRegister({
    id,
    dialog: { callId: '02bc5a1fbae757bd89bb02fbe4eb8aa9', fromTag: 'abcdef0123', cseq: 2 },
    localIp: '192.0.2.2',
    port: 43036,
    expires: 600000,
    authorization: auth,
    securityClient: sc,
    securityVerify: ss,
  });
  const bytes = serializeMessage(req);
  const text = Buffer.from(bytes).toString();
  for (const h of ['Via', 'From', 'To', 'Call-ID', 'Contact', 'Supported', 'Content-Length'])
    assert.doesNotMatch(text, new RegExp(`\r\n${h}:`), `${h} in compact form`);
  assert.doesNotMatch(text, /User-Agent|Allow:/);
  // Before: 1,657 octets (full names, prot/mod on every entry, Allow, User-Agent).
  assert.ok(bytes.length < 1480 && bytes.length > UDP_MAX_REQUEST, `${bytes.length} octets`);
  const back = parseMessageOrThrow(bytes);
  assert.equal(back.headers.getAll('Security-Client').join(', '), sc);
  assert.deepEqual(back.headers.raw('Security-Verify'), ss, 'Security-Verify echoed exactly');
});
