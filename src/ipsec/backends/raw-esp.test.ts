// IPv4 fragmentation of outgoing raw ESP packets (RFC 791; RFC 4303 §3.3.4): the kernel does not
// fragment IP_HDRINCL packets, so a protected REGISTER longer than the link MTU is split here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finish, sum16 } from '../esp/checksum.ts';
import { buildIpPacket } from '../esp/index.ts';
import { fragmentIpv4 } from './raw-esp.ts';

test('fragmentIpv4: 8-octet aligned pieces within the MTU, one ID, MF on all but the last, valid header checksums, payload intact', () => {
  const payload = Uint8Array.from({ length: 3001 }, (_, i) => i & 0xff);
  const whole = buildIpPacket({ src: '198.51.100.2', dst: '203.0.113.10', protocol: 50, payload });
  const frags = fragmentIpv4(whole, 1500);
  assert.equal(frags.length, 3);
  const id = new DataView(frags[0]!.buffer).getUint16(4);
  const joined: number[] = [];
  for (const [i, f] of frags.entries()) {
    const dv = new DataView(f.buffer);
    assert.ok(f.length <= 1500);
    assert.equal(dv.getUint16(2), f.length, 'total length');
    assert.equal(dv.getUint16(4), id, 'same identification');
    const flags = dv.getUint16(6);
    assert.equal((flags & 0x2000) !== 0, i < frags.length - 1, 'MF');
    assert.equal(flags & 0x4000, 0, 'DF cleared');
    assert.equal((flags & 0x1fff) * 8, joined.length, 'offset in 8-octet units');
    assert.equal(finish(sum16(f, 0, 20)), 0, 'header checksum verifies');
    assert.equal(f[9], 50);
    joined.push(...f.subarray(20));
  }
  assert.deepEqual(Uint8Array.from(joined), payload);
});
