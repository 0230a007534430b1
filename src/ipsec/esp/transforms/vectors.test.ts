// Published vectors through the transforms: RFC 3602 §4 (AES-CBC, cases 1–8), RFC 2202 (HMAC),
// draft-mcgrew-gcm-test-01 (RFC 4106 AES-GCM ESP packets, RFC 4543 AES-GMAC) and the computed
// packets of test-vectors.md §7. Each case names its source.
import assert from 'node:assert/strict';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { fromHex, toHex } from '../../../util/bytes.ts';
import { openEsp } from '../open.ts';
import { ReplayWindow } from '../replay-window.ts';
import { sealEsp } from '../seal.ts';
import { createTransform } from '../transform.ts';
import { CbcCipher, CONTEXT_CACHE } from './cbc.ts';
import { Hmac96 } from './hmac-96.ts';

const empty = new Uint8Array(0);
const fixedIv = (hex: string) => () => fromHex(hex);

describe('RFC 3602 §4 cases 1–4: raw AES-128-CBC (source: test-vectors.md §4.1, libreswan transcription)', () => {
  const cases = [
    [
      '06a9214036b8a15b512e03d534120006',
      '3dafba429d9eb430b422da802c9fac41',
      '53696e676c6520626c6f636b206d7367',
      'e353779c1079aeb82708942dbe77181a',
    ],
    [
      'c286696d887c9aa0611bbb3e2025a45a',
      '562e17996d093d28ddb3ba695a2e6f58',
      '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
      'd296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1',
    ],
    [
      '6c3ea0477630ce21a2ce334aa746c2cd',
      'c782dc4c098c66cbd9cd27d825682c81',
      '5468697320697320612034382d62797465206d657373616765202865786163746c7920332041455320626c6f636b7329',
      'd0a02b3836451753d493665d33f0e8862dea54cdb293abc7506939276772f8d5021c19216bad525c8579695d83ba2684',
    ],
    [
      '56e47a38c5598974bc46903dba290349',
      '8ce82eefbea0da3c44699ed7db51b7d9',
      'a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf',
      'c30e32ffedc0774e6aff6af0869f71aa0f3af07a9a31a9c684db207eb0ef8e4e35907aa632c3ffdf868bb7b29d3d46ad83ce9f9a102ee99d49a53e87f4c3da55',
    ],
  ] as const;
  cases.forEach(([key, iv, pt, ct], i) => {
    it(`case ${i + 1}: encrypts and decrypts byte for byte`, () => {
      const c = new CbcCipher('aes-128-cbc', fromHex(key), fixedIv(iv));
      // A prior unrelated packet leaves chaining state behind: the IV correction must undo it.
      c.encrypt(new Uint8Array(48), 0, 16, 32);
      const pkt = new Uint8Array(16 + pt.length / 2);
      pkt.set(fromHex(pt), 16);
      c.encrypt(pkt, 0, 16, pkt.length - 16);
      assert.equal(toHex(pkt.subarray(0, 16)), iv);
      assert.equal(toHex(pkt.subarray(16)), ct);
      c.decrypt(fromHex(iv + ct.slice(0, 32)), 0, 16, 16); // unrelated decrypt first
      assert.equal(toHex(c.decrypt(pkt, 0, 16, pkt.length - 16)), pt);
    });
  });
});

describe('RFC 3602 §4 cases 5–8: ESP packets, AES-CBC without ICV (source: test-vectors.md §4.2, RUB-NDS transcription)', () => {
  // Cases 5/6 and 7/8 share a key: each pair runs through one transform, in order, as a real SA would.
  const pairs = [
    [
      {
        key: '90d382b410eeba7ad938c46cec1a82bf',
        spi: 0x4321,
        seq: 1,
        iv: 'e96e8c08ab465763fd098d45dd3ff893',
        nh: 1,
        payload:
          '08000ebda70a00008e9c083db95b070008090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637',
        esp: '0000432100000001e96e8c08ab465763fd098d45dd3ff893f663c25d325c18c6a9453e194e120849a4870b66cc6b9965330013b4898dc856a4699e523a55db080b59ec3a8e4b7e52775b07d1db34ed9c538ab50c551b874aa269add047ad2d5913ac19b7cfbad4a6',
      },
      {
        key: '90d382b410eeba7ad938c46cec1a82bf',
        spi: 0x4321,
        seq: 8,
        iv: '69d08df7d203329db093fc4924e5bd80',
        nh: 1,
        payload: '0800b5e8a80a0500a69c083d0b660e00777777777777777777777777',
        esp: '000043210000000869d08df7d203329db093fc4924e5bd80f51995881ec4e0c4488987ce742e8109689bb379d2d750c0d915dca346a89f75',
      },
    ],
    [
      {
        key: '0123456789abcdef0123456789abcdef',
        spi: 0x8765,
        seq: 2,
        iv: 'f4e765244f6407adf13dc1380f673f37',
        nh: 4,
        payload:
          '45000054090400004001f988c0a87b03c0a87bc808009f76a90a0100b49c083d02a2040008090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637',
        esp: '0000876500000002f4e765244f6407adf13dc1380f673f37773b5241a4c449225e4f3ce5ed611b0c237ca96cf74a93013c1b0ea1a0cf70f8e4ecaec78ac53aad7a0f022b859243c647752e94a859352b8a4d4d2decd136e5c177f132ad3fbfb2201ac9904c74ee0a109e0ca1e4dfe9d5a100b842f1c22f0d',
      },
      {
        key: '0123456789abcdef0123456789abcdef',
        spi: 0x8765,
        seq: 5,
        iv: '85d47224b5f3dd5d2101d4ea8dffab22',
        nh: 4,
        payload:
          '45000044090c00004001f990c0a87b03c0a87bc80800d63caa0a0200c69c083da3de0300ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
        esp: '000087650000000585d47224b5f3dd5d2101d4ea8dffab2215b92683819596a8047232cc00f7048fe45318e11f8a0f62ede3c3fc61203bb50f980a08c9843fd3a1b06d5c07ff9639b7eb7dfb3512e5de435e7207ed971ef3d2726d9b5ef6affc6d17a0decbb13892',
      },
    ],
  ];
  pairs.forEach((pair, p) => {
    it(`cases ${5 + 2 * p}–${6 + 2 * p}: seal byte for byte, then open`, () => {
      let iv = '';
      const keys = { ikEsp: empty, ckEsp: fromHex(pair[0]!.key) };
      const tx = createTransform('null', 'aes-cbc', keys, { iv: () => fromHex(iv) });
      const rx = createTransform('null', 'aes-cbc', keys);
      const w = new ReplayWindow();
      for (const c of pair) {
        iv = c.iv;
        assert.equal(toHex(sealEsp(tx, c.spi, c.seq, fromHex(c.payload), c.nh)), c.esp);
        const r = openEsp(rx, w, c.spi, fromHex(c.esp));
        assert.deepEqual(r.ok && { seq: r.seq, nh: r.nextHeader, p: toHex(r.payload) }, { seq: c.seq, nh: c.nh, p: c.payload });
      }
    });
  });
});

describe('HMAC-*-96 against RFC 2202 and node createHmac', () => {
  const rfc2202: [string, 'md5' | 'sha1', string, string, string][] = [
    ['md5 case 1', 'md5', '0b'.repeat(16), toHex(Buffer.from('Hi There')), '9294727a3638bb1c13f48ef8158bfc9d'],
    [
      'md5 case 2',
      'md5',
      toHex(Buffer.from('Jefe')),
      toHex(Buffer.from('what do ya want for nothing?')),
      '750c783e6ab0b503eaa86e310a5db738',
    ],
    ['md5 case 3', 'md5', 'aa'.repeat(16), 'dd'.repeat(50), '56be34521d144c88dbb8c733f0e8b3f6'],
    ['sha1 case 1', 'sha1', '0b'.repeat(20), toHex(Buffer.from('Hi There')), 'b617318655057264e28bc0b6fb378c8ef146be00'],
    [
      'sha1 case 2',
      'sha1',
      toHex(Buffer.from('Jefe')),
      toHex(Buffer.from('what do ya want for nothing?')),
      'effcdf6ae5eb2fa2d27416d5f184df9c259a7c79',
    ],
    ['sha1 case 3', 'sha1', 'aa'.repeat(20), 'dd'.repeat(50), '125d7342b9ac11cd91a39af48aa17b4f63f175d3'],
  ];
  for (const [name, alg, key, data, mac] of rfc2202) {
    it(`RFC 2202 ${name}: ICV = leftmost 96 bits`, () => {
      const h = new Hmac96(alg, fromHex(key));
      const d = fromHex(data);
      const pkt = new Uint8Array(d.length + 12);
      pkt.set(d);
      h.sign(pkt, d.length);
      assert.equal(toHex(pkt.subarray(d.length)), mac.slice(0, 24));
      assert.ok(h.verify(pkt, d.length));
      pkt[0]! ^= 1;
      assert.ok(!h.verify(pkt, d.length));
    });
  }
  it('matches createHmac for random keys and lengths 0..3000', () => {
    for (let n = 0; n <= 3000; n += 37) {
      for (const [alg, kl] of [
        ['md5', 16],
        ['sha1', 20],
      ] as const) {
        const key = randomBytes(kl);
        const d = randomBytes(n);
        const pkt = new Uint8Array(n + 12);
        pkt.set(d);
        new Hmac96(alg, key).sign(pkt, n);
        assert.equal(toHex(pkt.subarray(n)), createHmac(alg, key).update(d).digest('hex').slice(0, 24));
      }
    }
  });
});

describe('CBC chaining across packets equals one-shot CBC per packet (node:crypto as oracle)', () => {
  for (const [name, kl, bl] of [
    ['aes-128-cbc', 16, 16],
    ['des-ede3-cbc', 24, 8],
  ] as const) {
    it(`${name}: 200 packets of varying size`, () => {
      const key = randomBytes(kl);
      const tx = new CbcCipher(name, key);
      const rx = new CbcCipher(name, key);
      for (let i = 0; i < 200; i++) {
        const n = bl * (1 + (i % 9));
        const pt = randomBytes(n);
        const pkt = new Uint8Array(bl + n);
        pkt.set(pt, bl);
        tx.encrypt(pkt, 0, bl, n);
        const ref = createCipheriv(name, key, pkt.subarray(0, bl)).setAutoPadding(false).update(pt);
        assert.equal(toHex(pkt.subarray(bl)), toHex(ref));
        assert.equal(toHex(rx.decrypt(pkt, 0, bl, n)), toHex(pt));
      }
    });
  }
});

describe('CBC contexts (issue 9 §2: memory per SA)', () => {
  it(`only the ${CONTEXT_CACHE} ciphers used last keep OpenSSL contexts; one pushed out still chains correctly from a new context`, () => {
    const key = randomBytes(16);
    const tx = new CbcCipher('aes-128-cbc', key);
    const rx = new CbcCipher('aes-128-cbc', key);
    const roundTrip = () => {
      const pt = randomBytes(48);
      const pkt = new Uint8Array(16 + 48);
      pkt.set(pt, 16);
      tx.encrypt(pkt, 0, 16, 48);
      const ref = createCipheriv('aes-128-cbc', key, pkt.subarray(0, 16)).setAutoPadding(false).update(pt);
      assert.equal(toHex(pkt.subarray(16)), toHex(ref));
      assert.equal(toHex(rx.decrypt(pkt, 0, 16, 48)), toHex(pt));
    };
    roundTrip();
    roundTrip();
    assert.ok(tx.hasContexts && rx.hasContexts);
    const others = Array.from({ length: CONTEXT_CACHE }, () => new CbcCipher('aes-128-cbc', randomBytes(16)));
    for (const c of others) c.encrypt(new Uint8Array(32), 0, 16, 16);
    assert.ok(!tx.hasContexts && !rx.hasContexts, 'the least recently used ciphers gave their contexts up');
    assert.equal(others.filter((c) => c.hasContexts).length, CONTEXT_CACHE);
    roundTrip();
    roundTrip();
    assert.ok(tx.hasContexts && rx.hasContexts);
  });
});
