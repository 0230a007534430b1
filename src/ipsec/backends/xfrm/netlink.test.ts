// Netlink framing byte for byte (netlink(7)): attribute padding, message headers, several messages
// in one datagram, and nlmsgerr with and without the request echo and extended-ack TLVs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  NLMSG_ERROR,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  align4,
  attrOf,
  decodeAttrs,
  decodeError,
  decodeMessages,
  encodeAttrs,
  encodeMessage,
} from './netlink.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

test('align4 rounds up to 4 octets', () => {
  assert.deepEqual([0, 1, 3, 4, 5, 8].map(align4), [0, 4, 4, 4, 8, 8]);
});

test('attributes: nla_len counts header + value, each TLV padded to 4 octets with zeros', () => {
  const out = encodeAttrs([
    { type: 5, value: bytes('aabbcc') },
    { type: 0x14, value: bytes('01020304') },
    { type: 2, value: new Uint8Array(0) },
  ]);
  assert.equal(hex(out), '07000500aabbcc00' + '0800140001020304' + '04000200');
  const back = decodeAttrs(out)!;
  assert.deepEqual(
    back.map((a) => [a.type, hex(a.value)]),
    [
      [5, 'aabbcc'],
      [0x14, '01020304'],
      [2, ''],
    ],
  );
  assert.equal(hex(attrOf(back, 0x14)!), '01020304');
});

test('attributes: the NLA_F_NESTED / NET_BYTEORDER bits are masked off; overruns are undefined', () => {
  assert.equal(decodeAttrs(bytes('05000580ff000000'))![0]!.type, 5);
  assert.equal(decodeAttrs(bytes('09000500aabbcc')), undefined, 'length past the end');
  assert.equal(decodeAttrs(bytes('02000500')), undefined, 'length shorter than the header');
  assert.deepEqual(decodeAttrs(new Uint8Array(0)), []);
});

test('message header: len, type, flags, seq, pid little-endian; body padded; attributes after', () => {
  const m = encodeMessage({ type: 0x10, flags: 0x5, seq: 0x01020304, body: bytes('aabbcc'), attrs: [{ type: 1, value: bytes('ff') }] });
  // len 16 + 4 (body padded) + 8 (attr) = 28
  assert.equal(hex(m), '1c000000' + '1000' + '0500' + '04030201' + '00000000' + 'aabbcc00' + '05000100ff000000');
});

test('a datagram with two messages splits in two; an impossible length is undefined', () => {
  const a = encodeMessage({ type: 0x10, flags: 2, seq: 9, body: bytes('01020304') });
  const b = encodeMessage({ type: 3, flags: 2, seq: 9, body: bytes('00000000') });
  const both = new Uint8Array([...a, ...b]);
  const msgs = decodeMessages(both)!;
  assert.deepEqual(
    msgs.map((m) => [m.type, m.flags, m.seq, hex(m.payload)]),
    [
      [0x10, 2, 9, '01020304'],
      [3, 2, 9, '00000000'],
    ],
  );
  const bad = both.slice();
  bad[0] = 0xff; // nlmsg_len 255 > datagram
  assert.equal(decodeMessages(bad), undefined);
  bad[0] = 0x08; // shorter than a header
  assert.equal(decodeMessages(bad), undefined);
});

test('nlmsgerr: an ACK (error 0, capped) names the request it answers', () => {
  const p = bytes('00000000' + '28000000 1300 0500 07000000 00000000');
  const e = decodeError({ type: NLMSG_ERROR, flags: NLM_F_CAPPED, seq: 7, pid: 0, payload: p })!;
  assert.deepEqual(e, { errno: 0, requestType: 0x13, requestSeq: 7 });
});

test('nlmsgerr: -EEXIST with an extended-ack message after the capped header', () => {
  const msg = Buffer.from('File exists\0');
  const tlv = encodeAttrs([{ type: 1, value: new Uint8Array(msg) }]);
  const p = new Uint8Array([...bytes('efffffff' + 'a8010000 1000 0500 04030201 00000000'), ...tlv]);
  const e = decodeError({ type: NLMSG_ERROR, flags: NLM_F_CAPPED | NLM_F_ACK_TLVS, seq: 0x01020304, pid: 0, payload: p })!;
  assert.deepEqual(e, { errno: 17, requestType: 0x10, requestSeq: 0x01020304, message: 'File exists' });
});

test('nlmsgerr: without NETLINK_CAP_ACK the request is echoed and the TLVs follow it', () => {
  const req = encodeMessage({ type: 0x14, flags: 5, seq: 3, body: bytes('aabbccdd') });
  const tlv = encodeAttrs([
    { type: 1, value: new Uint8Array(Buffer.from('No such file\0')) },
    { type: 2, value: bytes('10000000') },
  ]);
  const p = new Uint8Array([...bytes('feffffff'), ...req, ...tlv]);
  const e = decodeError({ type: NLMSG_ERROR, flags: NLM_F_ACK_TLVS, seq: 3, pid: 0, payload: p })!;
  assert.deepEqual(e, { errno: 2, requestType: 0x14, requestSeq: 3, message: 'No such file' });
  assert.equal(decodeError({ type: NLMSG_ERROR, flags: 0, seq: 3, pid: 0, payload: bytes('feffffff') }), undefined, 'too short');
});
