// The fuzz targets (issue 10 §6): every parser of untrusted input and the ESP inbound pipeline,
// each a fast-check property over arbitrary and mutated-valid inputs. The invariants:
// - a parser either returns a value or fails with its layer's typed error (an ImsecError with a
//   code); any other exception is a bug;
// - what parses re-serializes to something that parses to the same value (codecs with a serializer);
// - ESP inbound, for every algorithm pair and both modes: a packet whose ESP octets differ from the
//   ones a legitimate peer sealed is never accepted (a forged packet accepted is a failure), and
//   nothing throws.
// `fuzz/run.ts` runs them with a printed seed; `fuzz/fuzz.test.ts` runs a short pass in the suite.
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { parseAuts, parseNonce } from '../src/aka/digest.ts';
import { parseDigestHeader, serializeDigestHeader } from '../src/aka/digest-header.ts';
import { allValidPairs } from '../src/ipsec/algorithms.ts';
import { parseWire } from '../src/ipsec/esp/index.ts';
import { buildPcap, readCapture } from '../src/ipsec/pcap.ts';
import { Sad } from '../src/ipsec/sad.ts';
import type { EspMode } from '../src/ipsec/types.ts';
import { negotiate, parseSecurityHeader, serializeMechanisms } from '../src/secagree/index.ts';
import { parseCSeq } from '../src/sip/cseq.ts';
import { parseNameAddr } from '../src/sip/name-addr.ts';
import { parseMessage, splitHeadLines } from '../src/sip/parser.ts';
import { serializeMessage } from '../src/sip/serializer.ts';
import { StreamFramer } from '../src/sip/stream-framer.ts';
import { parseUri } from '../src/sip/uri.ts';
import { validateRequest, validateResponse } from '../src/sip/validate.ts';
import { parseVia } from '../src/sip/via.ts';
import { ImsecError } from '../src/util/errors.ts';
import { exchange, makePair, type PairOptions } from '../test/support/ims-fixture.ts';

export interface FuzzTarget {
  readonly name: string;
  // The argument tuple differs per target; only fc.assert reads it.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly property: () => fc.IProperty<any>;
}

/** Runs `f`; an ImsecError (expected, typed) is fine, anything else is a bug and rethrown. */
/** The value of a parser's result; a failure must carry a typed ImsecError with a code. */
function typedFailure<T>(r: { ok: true; value: T } | { ok: false; error: unknown }): T | undefined {
  if (r.ok) return r.value;
  if (r.error instanceof ImsecError && typeof r.error.code === 'string') return undefined;
  throw new Error('untyped parse error');
}

function expectedOnly<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (e instanceof ImsecError && typeof e.code === 'string') return undefined;
    throw e;
  }
}

const enc = new TextEncoder();
const crlf = (s: string) => enc.encode(s.replace(/\r?\n/g, '\r\n'));

// ---- mutation of valid inputs (bit flips, overwrites, cuts, insertions, splices) ----
type Mutation = { kind: 'flip' | 'set' | 'cut' | 'insert' | 'dup'; at: number; byte: number; len: number };
const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('flip', 'set', 'cut', 'insert', 'dup'),
  at: fc.nat(),
  byte: fc.integer({ min: 0, max: 255 }),
  len: fc.integer({ min: 1, max: 16 }),
});

export function mutate(input: Uint8Array, ms: readonly Mutation[]): Uint8Array {
  let b = Array.from(input);
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    switch (m.kind) {
      case 'flip':
        if (at < b.length) b[at] = b[at]! ^ (1 << (m.byte & 7));
        break;
      case 'set':
        if (at < b.length) b[at] = m.byte;
        break;
      case 'cut':
        b.splice(at, m.len);
        break;
      case 'insert':
        b.splice(at, 0, ...new Array<number>(m.len).fill(m.byte));
        break;
      case 'dup':
        b.splice(at, 0, ...b.slice(at, at + m.len));
        break;
    }
  }
  return Uint8Array.from(b);
}

const mutated = (seeds: readonly Uint8Array[]) =>
  fc.tuple(fc.constantFrom(...seeds), fc.array(mutationArb, { minLength: 1, maxLength: 6 })).map(([s, ms]) => mutate(s, ms));
const textOf = (b: Uint8Array) => new TextDecoder().decode(b);
const mutatedText = (seeds: readonly string[]) => mutated(seeds.map((s) => enc.encode(s))).map(textOf);

// ---- SIP ----
const SIP_SEEDS = [
  crlf(`REGISTER sip:ims.example.net SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKabc;rport
Max-Forwards: 70
From: <sip:alice@ims.example.net>;tag=1
To: <sip:alice@ims.example.net>
Call-ID: x1@192.0.2.10
CSeq: 1 REGISTER
Contact: <sip:alice@192.0.2.10:5060>;expires=600000
Authorization: Digest username="alice@ims.example.net", realm="ims.example.net", uri="sip:ims.example.net", nonce="", response=""
Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;prot=esp;mod=trans;spi-c=1000;spi-s=1001;port-c=5062;port-s=5064
Require: sec-agree
Proxy-Require: sec-agree
Supported: path, sec-agree
Content-Length: 0

`),
  crlf(`SIP/2.0 401 Unauthorized
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKabc;received=198.51.100.1;rport=4000
From: <sip:alice@ims.example.net>;tag=1
To: <sip:alice@ims.example.net>;tag=2
Call-ID: x1@192.0.2.10
CSeq: 1 REGISTER
WWW-Authenticate: Digest realm="ims.example.net", nonce="AAAA", algorithm=AKAv1-MD5, qop="auth"
Security-Server: ipsec-3gpp;q=0.1;alg=hmac-sha-1-96;ealg=aes-cbc;prot=esp;mod=trans;spi-c=2000;spi-s=2001;port-c=5066;port-s=5068
Content-Length: 5

hello`),
  crlf(`MESSAGE sip:bob@ims.example.net SIP/2.0
v: SIP/2.0/UDP [2001:db8::10]:5060;branch=z9hG4bKm
 ;rport
f: <sip:alice@ims.example.net>;tag=9
t: sip:bob@ims.example.net
i: m1
CSeq: 7 MESSAGE
Max-Forwards: 70
c: text/plain
l: 2

hi`),
];

const sipMessage: FuzzTarget = {
  name: 'sip-message',
  property: () =>
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), mutated(SIP_SEEDS)), (bytes) => {
      const parsed = parseMessage(bytes); // a result: never throws, whatever the bytes
      if (!parsed.ok) {
        if (!(parsed.error instanceof ImsecError)) throw new Error('untyped parse error');
        return;
      }
      const msg = parsed.value;
      // What parses must validate without throwing, and survive serialize → parse.
      if (msg.kind === 'request') validateRequest(msg);
      else validateResponse(msg);
      const once = serializeMessage(msg);
      const again = parseMessage(once);
      if (!again.ok || !equal(serializeMessage(again.value), once))
        throw new Error('serialize(parse(serialize(m))) differs from serialize(m)');
    }),
};

const HEADER_SEEDS = {
  via: [
    'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKabc;rport;received=192.0.2.1',
    'SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bK1;maddr=239.1.1.1;ttl=16',
  ],
  nameAddr: [
    '"Alice" <sip:alice@ims.example.net;transport=udp>;tag=abc',
    'sip:bob@example.net;tag=1',
    '<tel:+15551234567;phone-context=ims.example.net>',
  ],
  uri: ['sip:alice:pw@[2001:db8::1]:5060;transport=tcp;lr?subject=x&h=y', 'sips:ims.example.net', 'tel:+1-555-123-4567;ext=9'],
  cseq: ['1 REGISTER', '4294967295 INVITE'],
};

const sipHeaders: FuzzTarget = {
  name: 'sip-headers',
  property: () =>
    fc.property(
      fc.constantFrom('via', 'nameAddr', 'uri', 'cseq', 'split') as fc.Arbitrary<keyof typeof HEADER_SEEDS | 'split'>,
      fc.oneof(
        fc.string({ maxLength: 200 }),
        fc.string({ unit: 'binary', maxLength: 120 }),
        mutatedText(Object.values(HEADER_SEEDS).flat()),
      ),
      (which, text) => {
        switch (which) {
          // Results: never a throw, and a failure carries a typed error.
          case 'via':
            typedFailure(parseVia(text));
            break;
          case 'nameAddr':
            typedFailure(parseNameAddr(text));
            break;
          case 'uri':
            typedFailure(parseUri(text));
            break;
          case 'cseq':
            typedFailure(parseCSeq(text));
            break;
          case 'split':
            expectedOnly(() => splitHeadLines(text));
            break;
        }
      },
    ),
};

const streamFramer: FuzzTarget = {
  name: 'stream-framer',
  property: () =>
    fc.property(
      fc.array(fc.oneof(mutated(SIP_SEEDS), fc.constant(crlf('\r\n\r\n')), fc.uint8Array({ maxLength: 80 })), { maxLength: 5 }),
      fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }),
      (parts, cuts) => {
        const stream = Uint8Array.from(parts.flatMap((p) => Array.from(p)));
        const f = new StreamFramer({ maxMessageSize: 4096 });
        let failed = false;
        let framed = 0;
        for (let pos = 0, i = 0; pos < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          const r = f.push(stream.subarray(pos, pos + n)); // never throws on bad input
          if (failed && r.messages.length > 0) throw new Error('messages after a framing error');
          for (const m of r.messages) framed += m.length;
          failed ||= r.error !== undefined;
          pos += n;
        }
        if (framed > stream.length) throw new Error('framed more octets than were fed');
      },
    ),
};

// ---- sec-agree ----
const SECAGREE_SEEDS = [
  'ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;prot=esp;mod=trans;spi-c=1000;spi-s=1001;port-c=5062;port-s=5064, ipsec-3gpp;alg=hmac-md5-96;ealg=null;mod=UDP-enc-tun;spi-c=1000;spi-s=1001;port-c=5062;port-s=5064',
  'ipsec-3gpp;q=0.5;alg=aes-gmac;ealg=null;spi-c=1;spi-s=2;port-c=3;port-s=4, tls;q=0.1, digest;d-alg=md5;d-qop="auth"',
  'ipsec-3gpp;alg=hmac-sha-1-96;spi-c="4294967295";spi-s=256;port-c=65535;port-s=1;x-ext=[2001:db8::1]',
];

const secagree: FuzzTarget = {
  name: 'secagree',
  property: () =>
    fc.property(
      fc.array(fc.oneof(fc.string({ maxLength: 200 }), mutatedText(SECAGREE_SEEDS)), { minLength: 1, maxLength: 3 }),
      fc.boolean(),
      (values, nat) => {
        const parsed = parseSecurityHeader(values, 'Security-Client'); // a result: never throws
        if (!parsed.ok) return;
        const ms = parsed.value;
        // One q rule both ways (issue 10 §5): whatever parses serializes, and parses back the same.
        const text = serializeMechanisms(ms);
        const back = parseSecurityHeader(text, 'Security-Client');
        if (!back.ok || !isDeepStrictEqual(back.value, ms)) throw new Error(`round trip changed ${text}`);
        const r = negotiate(ms, { allowDeprecated: true }, { natDetected: nat });
        if (r.ok && r.client.spiC === undefined) throw new Error('negotiation chose an entry without spi-c');
      },
    ),
};

// ---- Digest and AKA nonce / AUTS ----
const DIGEST_SEEDS = [
  'Digest username="alice@ims.example.net", realm="ims.example.net", uri="sip:ims.example.net", nonce="3Q6x/ABCD==", response="6629fae49393a05397450978507c4ef1", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="0a4f113b"',
  'Digest realm="ims.example.net", nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", algorithm=AKAv1-MD5, qop="auth,auth-int", ik="00112233445566778899aabbccddeeff", ck="00112233445566778899aabbccddeeff"',
  'Digest username="a", auts="AAECAwQFBgcICQoLDA0=", integrity-protected="yes"',
];

const digest: FuzzTarget = {
  name: 'digest',
  property: () =>
    fc.property(fc.oneof(fc.string({ maxLength: 300 }), mutatedText(DIGEST_SEEDS), fc.base64String({ maxLength: 80 })), (text) => {
      const h = typedFailure(parseDigestHeader(text));
      if (h) {
        const again = parseDigestHeader(serializeDigestHeader(h));
        if (!again.ok || !isDeepStrictEqual(again.value, h)) throw new Error('Digest header round trip changed the value');
      }
      // Results: never a throw, whatever the text.
      parseNonce(text);
      parseAuts(text);
    }),
};

// ---- ESP inbound: every algorithm pair, both modes ----
interface EspCase {
  readonly opts: PairOptions;
  /** Genuine packets sealed by the UE side (what a legitimate peer sends to the P-CSCF). */
  readonly packets: { ip: Uint8Array; src: string; dst: string; esp: Uint8Array; encap?: { srcPort: number; dstPort: number } }[];
}

let espCases: EspCase[] | undefined;
function espCasesOnce(): EspCase[] {
  if (espCases) return espCases;
  espCases = [];
  for (const { alg, ealg } of allValidPairs()) {
    for (const mode of ['transport', 'udp-enc-tunnel'] as EspMode[]) {
      const opts: PairOptions = { alg, ealg, mode, ...(mode === 'udp-enc-tunnel' && { encap: { uePort: 5100, pcscfPort: 5200 } }) };
      const sent = exchange(makePair(opts), 1).filter((p) => p.from === 'ue');
      const packets = sent.map((p) => {
        const w = parseWire(p.ip, { encapPorts: [4500, 5100, 5200] });
        if (w.kind !== 'esp') throw new Error('fixture did not produce ESP');
        return { ip: p.ip, src: w.src, dst: w.dst, esp: new Uint8Array(w.esp), ...(w.encap && { encap: w.encap }) };
      });
      // The target is only worth something if the genuine packets are accepted: check once.
      const sad = new Sad({ encapPorts: [5100, 5200] });
      sad.install(makePair(opts).pcscf);
      for (const g of packets) {
        if (!sad.receive(g.ip).ok)
          throw new Error(`${alg}/${ealg} ${mode}: the genuine packet is not accepted; the fuzz target would prove nothing`);
      }
      espCases.push({ opts, packets });
    }
  }
  return espCases;
}

const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

const espInbound: FuzzTarget = {
  name: 'esp-inbound',
  property: () => {
    const cases = espCasesOnce();
    return fc.property(
      fc.nat({ max: cases.length - 1 }),
      fc.nat(),
      fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
      fc.boolean(),
      (ci, pi, ms, wholePacket) => {
        const c = cases[ci]!;
        const genuine = c.packets[pi % c.packets.length]!;
        // A fresh receiver with the same keys: its replay window has seen nothing.
        const pcscf = makePair(c.opts).pcscf;
        const sad = new Sad({ encapPorts: [5100, 5200] });
        sad.install(pcscf);
        if (wholePacket) {
          const forged = mutate(genuine.ip, ms);
          const r = sad.receive(forged);
          if (!r.ok) return;
          const w = parseWire(forged, { encapPorts: [4500, 5100, 5200] });
          if (w.kind !== 'esp' || !c.packets.some((p) => equal(p.esp, w.esp))) {
            throw new Error(`${c.opts.alg}/${c.opts.ealg} ${c.opts.mode}: a forged packet was accepted`);
          }
          return;
        }
        const esp = mutate(genuine.esp, ms);
        const r = sad.receiveEsp({ src: genuine.src, dst: genuine.dst, esp, ...(genuine.encap && { encap: genuine.encap }) });
        if (r.ok && !c.packets.some((p) => equal(p.esp, esp))) {
          throw new Error(`${c.opts.alg}/${c.opts.ealg} ${c.opts.mode}: forged ESP accepted (${ms.map((m) => m.kind).join(',')})`);
        }
      },
    );
  },
};

// ---- pcap / pcapng reader ----
let pcapSeeds: Uint8Array[] | undefined;
function pcapSeedsOnce(): Uint8Array[] {
  if (pcapSeeds) return pcapSeeds;
  const pkts = exchange(makePair({ alg: 'hmac-sha-1-96', ealg: 'null', mode: 'transport' }), 1).map((p, i) => ({
    ip: p.ip,
    timestampUs: 1_700_000_000_000_000 + i,
  }));
  const classic = buildPcap(pkts.slice(0, 2));
  // A minimal pcapng: SHB, IDB (LINKTYPE_RAW), one EPB.
  const ip = pkts[0]!.ip;
  const pad = (n: number) => (4 - (n % 4)) % 4;
  const block = (type: number, body: number[]) => {
    const len = 12 + body.length;
    const b = Buffer.alloc(len);
    b.writeUInt32LE(type, 0);
    b.writeUInt32LE(len, 4);
    Buffer.from(body).copy(b, 8);
    b.writeUInt32LE(len, len - 4);
    return [...b];
  };
  const shb = block(0x0a0d0d0a, [0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  const idb = block(1, [101, 0, 0, 0, 0, 0, 0, 0]);
  const epbBody = Buffer.alloc(20 + ip.length + pad(ip.length));
  epbBody.writeUInt32LE(ip.length, 12);
  epbBody.writeUInt32LE(ip.length, 16);
  Buffer.from(ip).copy(epbBody, 20);
  const epb = block(6, [...epbBody]);
  pcapSeeds = [classic, Uint8Array.from([...shb, ...idb, ...epb])];
  return pcapSeeds;
}

const pcap: FuzzTarget = {
  name: 'pcap',
  property: () =>
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated(pcapSeedsOnce())), (bytes) => {
      const r = readCapture(bytes); // a result: never a throw
      const c = r.ok ? r.value : undefined;
      if (c && c.packets.length > 0 && c.packets.some((p) => p.ip.length > bytes.length)) throw new Error('a packet larger than the file');
    }),
};

export const TARGETS: readonly FuzzTarget[] = [sipMessage, sipHeaders, streamFramer, secagree, digest, espInbound, pcap];
