// The stored form of a registration read back (issue 13 §3) across issue 9 §2's change of Bound:
// records now keep the last Security-Server as text only; older ones hold it parsed as well (or
// only parsed), and a restore must give the machine the same text the 401 carried.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSecurityServer, parseSecurityHeaderOrThrow, serializeMechanisms, verifySecurityVerify } from '../secagree/index.ts';
import { boundOfRecord } from './persist.ts';
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
  ue: { ip: '192.0.2.1' },
  natDetected: true,
  mode: 'udp-enc-tunnel',
};
const record = (bound: Record<string, unknown>): RegistrationRecord => ({ v: 1, impi: 'alice', expiresAt: 9_000, lifetime: 8_000, bound });

test('boundOfRecord: the Security-Server text as stored, rebuilt from an older record that kept it parsed, never the parsed form', () => {
  for (const stored of [
    { ...rest, lastServerText: text },
    { ...rest, lastServer: server, lastServerText: text },
    { ...rest, lastServer: JSON.parse(JSON.stringify(server)) as unknown },
  ]) {
    const b = boundOfRecord(record(stored), 'set-7');
    assert.equal(b.lastServerText, text, JSON.stringify(Object.keys(stored)));
    assert.ok(!('lastServer' in b));
    assert.deepEqual([b.current, b.old, b.expiresAt, b.lifetime, b.contact], ['set-7', [], 9_000, 8_000, rest.contact]);
    // The UE's Security-Verify (what the 401 carried) is accepted against it, verbatim and parsed.
    assert.ok(verifySecurityVerify(text, b.lastServerText, b.lastServerText).ok);
    assert.ok(verifySecurityVerify([text], parseSecurityHeaderOrThrow(b.lastServerText, 'Security-Server'), undefined).ok);
  }
});
