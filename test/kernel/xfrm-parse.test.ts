// The parsers of the kernel's XFRM reports, on output recorded in the VM (iproute2 6.1, kernel 6.1):
// a legacy-window transport SA and an ESN-window (replay-window 64) UDP-encapsulated tunnel SA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseXfrmStat, parseXfrmStates, statDelta } from './xfrm-parse.ts';

const STATES = `src 192.0.2.2 dst 192.0.2.1
\tproto esp spi 0x00010040(65600) reqid 1(0x00000001) mode transport
\treplay-window 32 seq 0x00000000 flag  (0x00000000)
\tauth-trunc hmac(md5) 0x757575c7123473c523606cd3fce6309f (128 bits) 96
\tenc ecb(cipher_null) 
\tanti-replay context: seq 0x3, oseq 0x0, bitmap 0x00000007
\tsel src 0.0.0.0/0 dst 0.0.0.0/0 uid 0
\tlifetime config:
\t  limit: soft (INF)(bytes), hard (INF)(bytes)
\t  limit: soft (INF)(packets), hard (INF)(packets)
\t  expire add: soft 0(sec), hard 0(sec)
\t  expire use: soft 0(sec), hard 0(sec)
\tlifetime current:
\t  710(bytes), 3(packets)
\t  add 2026-11-29 13:51:18 use 2026-11-29 13:51:18
\tstats:
\t  replay-window 0 replay 0 failed 1
src 2001:db8::1 dst 2001:db8::2
\tproto esp spi 0x00040730(263984) reqid 32(0x00000020) mode tunnel
\treplay-window 0 seq 0x00000000 flag  (0x00000000)
\taead rfc4106(gcm(aes)) 0x1eaea7ed8a296283effbdb687211c5f1d0b314fa (160 bits) 128
\tencap type espinudp sport 4500 dport 4500 addr ::
\tanti-replay esn context:
\t seq-hi 0x0, seq 0x0, oseq-hi 0x0, oseq 0x1f
\t replay_window 64, bitmap-length 2
\t 00000000 00000000 
\tsel src ::/0 dst ::/0 uid 0
\tlifetime config:
\t  limit: soft (INF)(bytes), hard (INF)(bytes)
\t  limit: soft (INF)(packets), hard (INF)(packets)
\t  expire add: soft 0(sec), hard 0(sec)
\t  expire use: soft 0(sec), hard 0(sec)
\tlifetime current:
\t  850(bytes), 31(packets)
\t  add 2026-11-29 13:51:18 use 2026-11-29 13:51:18
\tstats:
\t  replay-window 2 replay 1 failed 0
`;

test('parseXfrmStates reads addresses, SPI, mode, counters, sequence numbers and encap, legacy and ESN', () => {
  const [a, b] = parseXfrmStates(STATES);
  assert.deepEqual(a, {
    src: '192.0.2.2',
    dst: '192.0.2.1',
    spi: 0x10040,
    mode: 'transport',
    bytes: 710,
    packets: 3,
    replayWindowDrops: 0,
    replay: 0,
    failed: 1,
    seq: 3,
    oseq: 0,
  });
  assert.deepEqual(b, {
    src: '2001:db8::1',
    dst: '2001:db8::2',
    spi: 0x40730,
    mode: 'tunnel',
    bytes: 850,
    packets: 31,
    replayWindowDrops: 2,
    replay: 1,
    failed: 0,
    seq: 0,
    oseq: 0x1f,
    encap: { sport: 4500, dport: 4500 },
  });
  assert.deepEqual(parseXfrmStates(''), []);
});

test('parseXfrmStat and statDelta', () => {
  const before = parseXfrmStat('XfrmInError             \t0\nXfrmInStateSeqError     \t2\n');
  const after = parseXfrmStat('XfrmInError             \t0\nXfrmInStateSeqError     \t5\nXfrmInNoStates\t1\n');
  assert.deepEqual(before, { XfrmInError: 0, XfrmInStateSeqError: 2 });
  assert.deepEqual(statDelta(before, after), { XfrmInError: 0, XfrmInStateSeqError: 3, XfrmInNoStates: 1 });
});
