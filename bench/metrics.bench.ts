// npm run bench:metrics: what the P-CSCF's metrics cost per SIP message, as a ratio to parsing the
// same message (the least work any SIP element does with it), both measured in this run. The ESP
// path has no metrics code at all (packet counts are read from the SAs' counters at scrape time).
// A benchmark, not a test: figures depend on the machine and on what else runs on it.
import { Registry } from 'prom-client';
import { SipMeter } from '../src/cli/sip-meter.ts';
import { parseMessage } from '../src/sip/parser.ts';
import type { SipTraceEvent } from '../src/util/trace.ts';

const enc = new TextEncoder();
const req = enc.encode(
  [
    'REGISTER sip:ims.example SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1234567890abcdef;rport',
    'Max-Forwards: 70',
    'From: <sip:00101000000001@ims.example>;tag=abcdef',
    'To: <sip:00101000000001@ims.example>',
    'Call-ID: 0123456789abcdef@192.0.2.10',
    'CSeq: 2 REGISTER',
    'Contact: <sip:00101000000001@192.0.2.10:5060>;expires=600000',
    'Authorization: Digest username="00101000000001@ims.example", realm="ims.example", uri="sip:ims.example", nonce="I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="c0ffee", response="0123456789abcdef0123456789abcdef"',
    'Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1111;spi-s=2222;port-c=5062;port-s=5064',
    'Security-Verify: ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=3333;spi-s=4444;port-c=5066;port-s=5068',
    'Require: sec-agree',
    'Proxy-Require: sec-agree',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n'),
);
const res = enc.encode(
  [
    'SIP/2.0 200 OK',
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1234567890abcdef;rport=5060',
    'From: <sip:a@ims.example>;tag=abcdef',
    'To: <sip:a@ims.example>;tag=x',
    'Call-ID: 0123456789abcdef@192.0.2.10',
    'CSeq: 2 REGISTER',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n'),
);
const ep = { address: '192.0.2.1', port: 5060 };
const ev = (bytes: Uint8Array, dir: 'send' | 'recv', firstLine: string, t: number): SipTraceEvent => ({
  t,
  node: 'pcscf',
  dir,
  local: ep,
  remote: ep,
  firstLine,
  bytes,
});

function time(n: number, fn: (i: number) => void): number {
  for (let i = 0; i < 2000; i++) fn(i);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / n;
}

const N = 200_000;
const meter = new SipMeter(new Registry(), 'bench');
// A request received and its final response sent: the server-transaction pair the P-CSCF sees most.
const reqEv = ev(req, 'recv', 'REGISTER sip:ims.example SIP/2.0', 0);
const resEv = ev(res, 'send', 'SIP/2.0 200 OK', 1);
const parseNs = time(N, (i) => parseMessage(i % 2 ? res : req));
const meterNs = time(N, (i) => meter.see(i % 2 ? resEv : reqEv));
console.log(
  JSON.stringify({
    messages: N,
    parse_ns_per_message: Math.round(parseNs),
    metrics_ns_per_message: Math.round(meterNs),
    ratio_to_parse: +(meterNs / parseNs).toFixed(3),
    open_transactions_after: meter.open,
  }),
);
