// The P-CSCF's pure decisions: NAT test (24.229 F.1), mode, admission (33.203 §7.1 rule 3),
// de-registration and expiry, identities and contacts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandKeys } from '../ipsec/keys.ts';
import { createSaSet, type SaSet } from '../ipsec/sa-set.ts';
import { createRequest, createResponse } from '../sip/builders.ts';
import { parseViaOrThrow } from '../sip/via.ts';
import { fromHex } from '../util/bytes.ts';
import {
  admissionCheck,
  associatedIdentities,
  clientPortLookupIn,
  claimedIdentity,
  detectNat,
  grantedExpires,
  impuKey,
  isDeregistration,
  sameContact,
  wantsUdpEncTun,
} from './decisions.ts';

const via = (v: string) => parseViaOrThrow(v);

test('detectNat: address or (UDP) port differ ⇒ NAT; TCP ports and domain names do not count', () => {
  assert.deepEqual(detectNat(via('SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bK1'), { address: '192.0.2.5', port: 5060 }, 'udp'), {
    natDetected: false,
  });
  assert.deepEqual(detectNat(via('SIP/2.0/UDP 192.0.2.5;branch=z9hG4bK1'), { address: '192.0.2.5', port: 5060 }, 'udp'), {
    natDetected: false,
  });
  assert.deepEqual(detectNat(via('SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1'), { address: '198.51.100.1', port: 5060 }, 'udp'), {
    natDetected: true,
    differs: 'address',
  });
  assert.deepEqual(detectNat(via('SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bK1'), { address: '192.0.2.5', port: 40123 }, 'udp'), {
    natDetected: true,
    differs: 'port',
  });
  assert.deepEqual(detectNat(via('SIP/2.0/TCP 192.0.2.5:5060;branch=z9hG4bK1'), { address: '192.0.2.5', port: 40123 }, 'tcp'), {
    natDetected: false,
  });
  assert.deepEqual(detectNat(via('SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1'), { address: '2001:db8:0:0::1', port: 5060 }, 'udp'), {
    natDetected: false,
  });
  assert.deepEqual(detectNat(via('SIP/2.0/UDP ue.example.org:5060;branch=z9hG4bK1'), { address: '192.0.2.5', port: 5060 }, 'udp'), {
    natDetected: false,
  });
});

test('wantsUdpEncTun: auto follows the NAT verdict, a forced mode wins', () => {
  assert.equal(wantsUdpEncTun('auto', true), true);
  assert.equal(wantsUdpEncTun('auto', false), false);
  assert.equal(wantsUdpEncTun('udp-enc-tun', false), true);
  assert.equal(wantsUdpEncTun('trans', true), false);
});

let spi = 1000;
function set(ueIp: string, portUc: number): SaSet {
  return createSaSet({
    role: 'pcscf',
    ue: { ip: ueIp, portC: portUc, portS: 6001, spiC: spi++, spiS: spi++ },
    pcscf: { ip: '192.0.2.1', portC: 5064, portS: 5066, spiC: spi++, spiS: spi++ },
    alg: 'hmac-sha-1-96',
    ealg: 'null',
    mode: 'transport',
    keys: expandKeys(fromHex('00'.repeat(16)), fromHex('11'.repeat(16)), 'hmac-sha-1-96', 'null'),
  });
}

test('admissionCheck: refuses a (UE IP, port_uc) already tied to a live set and a fourth set (more than six SAs per direction)', () => {
  const a = set('192.0.2.5', 6000);
  assert.deepEqual(admissionCheck('192.0.2.5', 6002, clientPortLookupIn([a]), [a]), { ok: true });
  const clash = admissionCheck('192.0.2.5', 6000, clientPortLookupIn([a]), []);
  assert.equal(clash.ok, false);
  assert.equal(!clash.ok && clash.reason, 'admission-port-in-use');
  assert.deepEqual(admissionCheck('192.0.2.6', 6000, clientPortLookupIn([a]), []), { ok: true }, 'another address may use the same port');
  a.apply('deleted');
  assert.deepEqual(admissionCheck('192.0.2.5', 6000, clientPortLookupIn([a]), []), { ok: true }, 'a deleted set ties nothing');
  const three = [set('192.0.2.5', 1), set('192.0.2.5', 2), set('192.0.2.5', 3)];
  assert.deepEqual(admissionCheck('192.0.2.5', 4, clientPortLookupIn(three), three.slice(0, 2)), { ok: true });
  const four = admissionCheck('192.0.2.5', 4, clientPortLookupIn(three), three);
  assert.equal(!four.ok && four.reason, 'admission-too-many-sas');
});

function register(headers: [string, string][]) {
  return createRequest({
    method: 'REGISTER',
    uri: 'sip:ims.example.org',
    via: 'SIP/2.0/UDP 192.0.2.5:6001;branch=z9hG4bKr',
    from: '<sip:alice@ims.example.org>;tag=1',
    to: '<sip:alice@ims.example.org>',
    callId: 'c1',
    cseq: 1,
    headers,
  });
}

test('isDeregistration: Expires 0, every contact expires=0, or Contact *', () => {
  assert.equal(isDeregistration(register([['Contact', '<sip:a@192.0.2.5:6001>;expires=600000']])), false);
  assert.equal(isDeregistration(register([['Contact', '<sip:a@192.0.2.5:6001>;expires=0']])), true);
  assert.equal(
    isDeregistration(
      register([
        ['Contact', '<sip:a@192.0.2.5:6001>'],
        ['Expires', '0'],
      ]),
    ),
    true,
  );
  assert.equal(
    isDeregistration(
      register([
        ['Contact', '<sip:a@192.0.2.5:6001>;expires=60'],
        ['Expires', '0'],
      ]),
    ),
    false,
  );
  assert.equal(
    isDeregistration(
      register([
        ['Contact', '*'],
        ['Expires', '0'],
      ]),
    ),
    true,
  );
  assert.equal(isDeregistration(register([])), false);
});

test('grantedExpires: the matching Contact expires, else the first, else Expires', () => {
  const req = register([['Contact', '<sip:a@192.0.2.5:6001>']]);
  const res = createResponse(req, 200, undefined, [
    ['Contact', '<sip:b@192.0.2.9>;expires=30, <sip:a@192.0.2.5:6001>;expires=600'],
    ['Expires', '99'],
  ]);
  assert.equal(grantedExpires(res, 'sip:a@192.0.2.5:6001'), 600);
  assert.equal(grantedExpires(res), 30);
  assert.equal(grantedExpires(createResponse(req, 200, undefined, [['Expires', '99']])), 99);
  assert.equal(grantedExpires(createResponse(req, 200)), undefined);
});

test('identities: impuKey normalises host case and drops port/params; claimed = P-Preferred-Identity, else From', () => {
  assert.equal(impuKey('sip:alice@IMS.Example.org:5060;user=phone'), 'sip:alice@ims.example.org');
  assert.equal(impuKey('tel:+15551234'), 'tel:+15551234');
  assert.equal(impuKey('not a uri'), undefined);
  assert.equal(claimedIdentity(register([])), 'sip:alice@ims.example.org');
  assert.equal(claimedIdentity(register([['P-Preferred-Identity', '"Bob" <sip:bob@ims.example.org>']])), 'sip:bob@ims.example.org');
  const req = register([]);
  assert.deepEqual(
    associatedIdentities(createResponse(req, 200, undefined, [['P-Associated-URI', '<sip:alice@ims.example.org>, <tel:+15551234>']]), req),
    ['sip:alice@ims.example.org', 'tel:+15551234'],
  );
  assert.deepEqual(associatedIdentities(createResponse(req, 200), req), ['sip:alice@ims.example.org'], 'falls back to To');
});

test('sameContact: user, host and port (default 5060)', () => {
  assert.equal(sameContact('sip:alice@192.0.2.5:6001', 'sip:alice@192.0.2.5:6001;transport=udp'), true);
  assert.equal(sameContact('sip:alice@192.0.2.5', 'sip:alice@192.0.2.5:5060'), true);
  assert.equal(sameContact('sip:alice@192.0.2.5:6001', 'sip:bob@192.0.2.5:6001'), false);
  assert.equal(sameContact('sip:alice@192.0.2.5:6001', 'sip:alice@192.0.2.5:6002'), false);
  assert.equal(sameContact('sip:alice@UE.example.org', 'sip:alice@ue.example.org'), true);
});

test('admissionCheck behind a NAT: UEs sharing the public address are told apart by their private inner address', () => {
  const mk = (inner: string, portUc: number) =>
    createSaSet({
      role: 'pcscf',
      ue: { ip: '203.0.113.1', innerIp: inner, portC: portUc, portS: 6001, spiC: spi++, spiS: spi++ },
      pcscf: { ip: '203.0.113.10', portC: 5064, portS: 5066, spiC: spi++, spiS: spi++ },
      alg: 'hmac-sha-1-96',
      ealg: 'null',
      mode: 'udp-enc-tunnel',
      keys: expandKeys(fromHex('00'.repeat(16)), fromHex('11'.repeat(16)), 'hmac-sha-1-96', 'null'),
    });
  const a = mk('198.51.100.2', 7000);
  assert.deepEqual(
    admissionCheck('203.0.113.1', 7000, clientPortLookupIn([a]), [], '198.51.100.3'),
    { ok: true },
    'another UE of the same home, same port_uc',
  );
  const same = admissionCheck('203.0.113.1', 7000, clientPortLookupIn([a]), [], '198.51.100.2');
  assert.equal(!same.ok && same.reason, 'admission-port-in-use');
  assert.match(!same.ok ? same.message : '', /203\.0\.113\.1 \(inner 198\.51\.100\.2\)/);
});
