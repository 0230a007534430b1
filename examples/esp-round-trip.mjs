// ESP (RFC 4303) in userspace: 33.203 Annex I keys from an AKA run's CK/IK, one SA sealed on one
// side and opened on the other, then what the receiver does with a replayed and a tampered packet.
// Exits 1 if anything behaves otherwise. Run: node examples/esp-round-trip.mjs
import { expandKeys } from 'imsec/ipsec';
import { IPPROTO_UDP, buildUdp, createInbound, createOutbound, parseUdp } from 'imsec/esp';

const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));

// CK and IK of TS 35.208 Test Set 1 (what the USIM and the P-CSCF both hold after AKA).
const ck = hex('b40ba9a3c58b2a05bbf0d987b21bf8cb');
const ik = hex('f769bcd751044604127672711c6d3441');
const alg = 'hmac-sha-1-96';
const ealg = 'aes-cbc';
const keys = expandKeys(ik, ck, alg, ealg);
const sa = { spi: 0x1000, alg, ealg, keys };

const sender = createOutbound(sa);
const receiver = createInbound(sa);

// A SIP request in UDP from port_uc to port_ps, as the UE would send it over SA1.
const sip = new TextEncoder().encode('MESSAGE sip:bob@ims.example.org SIP/2.0\r\nContent-Length: 0\r\n\r\n');
const udp = buildUdp('2001:db8::1', '2001:db8::2', 5064, 5066, sip);
const esp = sender.seal(udp, IPPROTO_UDP);

const checks = [];
const opened = receiver.open(esp);
const inner = opened.ok ? parseUdp(opened.payload, '2001:db8::1', '2001:db8::2') : undefined;
checks.push([
  'round trip',
  opened.ok && new TextDecoder().decode(inner.payload) === new TextDecoder().decode(sip),
  opened.ok ? `seq ${opened.seq}, ${esp.length} octets on the wire` : opened.drop,
]);

const replayed = receiver.open(esp);
checks.push(['replay dropped', !replayed.ok && replayed.drop === 'replay', replayed.ok ? 'accepted!' : replayed.drop]);

const tampered = sender.seal(udp, IPPROTO_UDP);
tampered[tampered.length - 20] ^= 0x01; // one bit of the ciphertext
const t = receiver.open(tampered);
checks.push(['tampering dropped', !t.ok && t.drop === 'icv', t.ok ? 'accepted!' : t.drop]);

for (const [name, ok, detail] of checks) console.log(`${name.padEnd(18)} ${ok ? 'ok' : 'FAILED'}  ${detail}`);
process.exitCode = checks.every(([, ok]) => ok) ? 0 : 1;
