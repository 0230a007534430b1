// The stored form of a registration read back (issue 13 §3) across issue 9 §2's change of Bound:
// records now keep what the last Security-Server was made of (SPIs, algorithms); older ones hold it
// as text and/or parsed, and a restore must make the machine give the very text the 401 carried.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSecurityServer, parseSecurityHeaderOrThrow, serializeMechanisms, verifySecurityVerify } from '../secagree/index.ts';
import { boundOfRecord } from './persist.ts';
import { securityServerText } from './registration-state.ts';
import type { RegistrationRecord } from './state-store.ts';

const server = [
  buildSecurityServer(
    { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mod: 'UDP-enc-tun' },
    { spiC: 3_000_000_001, spiS: 3_000_000_002, portC: 5062, portS: 5064 },
  ),
];
const text = serializeMechanisms(server);
const rest = {
  impus: ['sip:alice@ims.example'],
  contact: 'sip:alice@192.0.2.1:5060',
  serviceRoute: [],
  natDetected: true,
  mode: 'udp-enc-tunnel',
};
const record = (bound: Record<string, unknown>): RegistrationRecord => ({ v: 1, impi: 'alice', expiresAt: 9_000, lifetime: 8_000, bound });

test('boundOfRecord: the Security-Server of the 401 again, from a record of now and from older ones that kept it as text or parsed', () => {
  for (const stored of [
    {
      ...rest,
      ueIp: '192.0.2.1',
      innerIp: '10.0.0.9',
      serverSpiC: 3_000_000_001 | 0,
      serverSpiS: 3_000_000_002 | 0,
      alg: 'hmac-sha-1-96',
      ealg: 'aes-cbc',
    },
    { ...rest, ue: { ip: '192.0.2.1', innerIp: '10.0.0.9' }, lastServerText: text },
    { ...rest, ue: { ip: '192.0.2.1', innerIp: '10.0.0.9' }, lastServer: server, lastServerText: text },
    { ...rest, ue: { ip: '192.0.2.1', innerIp: '10.0.0.9' }, lastServer: JSON.parse(JSON.stringify(server)) as unknown },
  ]) {
    const b = boundOfRecord(record(stored), 'set-7');
    const sent = securityServerText(b, { portC: 5062, portS: 5064 });
    assert.equal(sent, text, JSON.stringify(Object.keys(stored)));
    assert.ok(!('lastServer' in b) && !('lastServerText' in b) && !('ue' in b));
    assert.deepEqual([b.ueIp, b.innerIp], ['192.0.2.1', '10.0.0.9']);
    assert.deepEqual([b.current, b.old, b.expiresAt, b.lifetime, b.contact], ['set-7', [], 9_000, 8_000, rest.contact]);
    // The UE's Security-Verify (what the 401 carried) is accepted against it, verbatim and parsed.
    assert.ok(verifySecurityVerify(text, sent, sent).ok);
    assert.ok(verifySecurityVerify([text], parseSecurityHeaderOrThrow(sent, 'Security-Server'), undefined).ok);
  }
});
