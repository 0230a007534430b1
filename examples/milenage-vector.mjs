// Milenage (TS 35.206) on TS 35.208 Test Set 1, then the AKA round trip: the HSS builds an
// authentication vector, the USIM checks AUTN and answers with RES. Exits 1 on any mismatch.
// Run: node examples/milenage-vector.mjs   (in the repository after `npm run build`, or anywhere
// imsec is installed)
import { Usim, computeOpc, generateVector, milenage } from 'imsec/aka';

const hex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b) => Buffer.from(b).toString('hex');

// TS 35.208 §4.3, Test Set 1.
const k = hex('465b5ce8b199b49faa5f0a2ee238a6bc');
const op = hex('cdc202d5123e20f62b6d676ac72cb318');
const rand = hex('23553cbe9637a89d218ae64dae47bf35');
const sqn = hex('ff9bb4d0b607');
const amf = hex('b9b9');
const expected = {
  opc: 'cd63cb71954a9f4e48a5994e37a02baf',
  macA: '4a9ffac354dfafb3',
  macS: '01cfaf9ec4e871e9',
  res: 'a54211d5e3ba50bf',
  ck: 'b40ba9a3c58b2a05bbf0d987b21bf8cb',
  ik: 'f769bcd751044604127672711c6d3441',
  ak: 'aa689c648370',
};

const opc = computeOpc(k, op);
const out = milenage(k, opc, rand, sqn, amf);
const got = {
  opc: toHex(opc),
  macA: toHex(out.macA),
  macS: toHex(out.macS),
  res: toHex(out.res),
  ck: toHex(out.ck),
  ik: toHex(out.ik),
  ak: toHex(out.ak),
};
let ok = true;
for (const [name, want] of Object.entries(expected)) {
  const match = got[name] === want;
  ok &&= match;
  console.log(`${name.padEnd(5)} ${got[name]} ${match ? 'ok' : `MISMATCH (35.208: ${want})`}`);
}

// HSS side → USIM side: the vector's AUTN verifies and RES equals XRES.
const av = generateVector({ k, opc, sqn, amf, rand });
const usim = new Usim({ k, opc });
const answer = usim.respond(av.rand, av.autn);
const akaOk = answer.result === 'ok' && toHex(answer.res) === toHex(av.xres);
console.log(
  `aka   USIM ${answer.result === 'ok' ? 'accepted AUTN, RES = XRES' : `refused: ${answer.result}`} ${akaOk ? 'ok' : 'MISMATCH'}`,
);
ok &&= akaOk;
process.exitCode = ok ? 0 : 1;
