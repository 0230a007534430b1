// AES-GCM (RFC 4106) and AES-GMAC (RFC 4543) ESP vectors, and the computed packets of
// test-vectors.md §7. Sources:
// - GCM: draft-mcgrew-gcm-test-01 §4 (IETF test cases for GCM in IPsec ESP) as transcribed in two
//   independent places that agree: Linux crypto/testmgr.h aes_gcm_rfc4106_tv_template (key‖salt,
//   assoc = SPI‖Seq‖IV, ctext = ciphertext‖tag) and a Go "gcm" package test table (key, nonce =
//   salt‖IV, AAD = SPI‖Seq, ctext, tag). Only cases with 32-bit sequence numbers (8-octet AAD) apply.
// - GMAC: draft-mcgrew-gcm-test-01 as transcribed in Linux testmgr.h aes_gcm_rfc4543_tv_template
//   (assoc = SPI‖Seq‖IV, ptext = payload‖padding‖trailer, ctext = ptext‖tag).
// The plaintexts include the ESP trailer, so sealing the bare payload also checks our padding.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromHex, toHex } from '../../../util/bytes.ts';
import { expandKeys } from '../../keys.ts';
import { openEsp } from '../open.ts';
import { ReplayWindow } from '../replay-window.ts';
import { sealEsp } from '../seal.ts';
import { createTransform } from '../transform.ts';

const empty = new Uint8Array(0);

interface EspVector {
  name: string;
  key: string;
  salt: string;
  spi: number;
  seq: number;
  iv: string;
  payload: string;
  padLen: number; // implied by the plaintext; checked through the byte-for-byte ciphertext
  nh: number;
  esp: string;
}

/** Splits "payload‖pad‖padlen‖nh" hex into its parts. */
function trailerOf(ptext: string): { payload: string; padLen: number; nh: number } {
  const b = fromHex(ptext);
  const padLen = b[b.length - 2]!;
  return { payload: toHex(b.subarray(0, b.length - 2 - padLen)), padLen, nh: b[b.length - 1]! };
}

function gcm(
  name: string,
  key: string,
  salt: string,
  spi: number,
  seq: number,
  iv: string,
  ptext: string,
  ct: string,
  tag: string,
): EspVector {
  const spiSeq = spi.toString(16).padStart(8, '0') + seq.toString(16).padStart(8, '0');
  return { name, key, salt, spi, seq, iv, ...trailerOf(ptext), esp: spiSeq + iv + ct + tag };
}

const GCM_VECTORS: EspVector[] = [
  gcm(
    'draft-mcgrew-gcm-test-01, AES-128, SPI a5f8 seq 10 (Go table case 2)',
    'feffe9928665731c6d6a8f9467308308',
    'cafebabe',
    0xa5f8,
    10,
    'facedbaddecaf888',
    '4500003e698f000080114dccc0a80102c0a801010a980035002a2343b2d001000001000000000000037369700963796265726369747902646b00000100010001',
    'deb22cd9b07c72c16e3a65beeb8df304a5a5897d33ae530f1ba76d5d114d2a5c3de81827c10e9a4f51330d0eec416642cfbb85a5b47e48a4ec3b9ba95d918bd1',
    '83b70d3aa8bc6ee4c309e9d85a41ad4a',
  ),
  gcm(
    'draft-mcgrew-gcm-test-01, zero key, seq 1 (Go case 4 = testmgr.h)',
    '00000000000000000000000000000000',
    '00000000',
    0,
    1,
    '0000000000000000',
    '4500003c99c500008001cb7a40679318010101010800075c020044006162636465666768696a6b6c6d6e6f707172737475767761626364656667686901020201',
    '4688daf2f973a392732909c331d56d60f694abaa414b5e7ff5fdcdfff5e9a284456476492719ffb64de7d9dca1e1d894bc3bd57873ed4d181d19d4d5c8c18af3',
    'f821d496eeb096e98ad2b69e4799c71d',
  ),
  gcm(
    'draft-mcgrew-gcm-test-01, empty payload, seq 2^32-1 (Go case 12 = testmgr.h)',
    '7d773d00c144c525ac619d18c84a3f47',
    'd9664267',
    0x335467ae,
    0xffffffff,
    '43457e9182443bc6',
    '01020201',
    '437f866b',
    'cb3f699fe9b0822bac961c4504bef270',
  ),
];

describe('AES-GCM (RFC 4106) ESP packets, byte for byte', () => {
  for (const v of GCM_VECTORS) {
    it(v.name, () => {
      const keys = { ikEsp: empty, ckEsp: fromHex(v.key), salt: fromHex(v.salt) };
      const tx = createTransform('null', 'aes-gcm', keys, { iv: () => fromHex(v.iv) });
      const esp = sealEsp(tx, v.spi, v.seq, fromHex(v.payload), v.nh);
      assert.equal(toHex(esp), v.esp);
      const r = openEsp(createTransform('null', 'aes-gcm', keys), new ReplayWindow(), v.spi, fromHex(v.esp));
      assert.ok(r.ok);
      assert.equal(toHex(r.payload), v.payload);
      const bad = fromHex(v.esp);
      bad[12]! ^= 0x80; // inside the IV: changes the nonce
      assert.deepEqual(openEsp(createTransform('null', 'aes-gcm', keys), new ReplayWindow(), v.spi, bad), {
        ok: false,
        drop: 'icv',
        seq: v.seq,
      });
    });
  }
});

describe('AES-GMAC (RFC 4543) ESP packet, byte for byte', () => {
  it('draft-mcgrew-gcm-test-01 via testmgr.h aes_gcm_rfc4543_tv_template: SPI 4321 seq 7, IV 0', () => {
    const payload = '45000030da3a00008001df3bc0a80005c0a800010800c6cd020007006162636465666768696a6b6c6d6e6f7071727374';
    const want = '0000432100000007' + '0000000000000000' + payload + '01020201' + 'f2a9a836e155106aa8dcd618e4099aaa';
    const keys = { ikEsp: fromHex('4c80cdefbb5d10da906ac73c3613a634'), ckEsp: empty, salt: fromHex('22433c64') };
    const tx = createTransform('aes-gmac', 'null', keys, { iv: () => new Uint8Array(8) });
    assert.equal(toHex(sealEsp(tx, 0x4321, 7, fromHex(payload), 1)), want);
    const r = openEsp(createTransform('aes-gmac', 'null', keys), new ReplayWindow(), 0x4321, fromHex(want));
    assert.ok(r.ok && toHex(r.payload) === payload && r.nextHeader === 1);
    const bad = fromHex(want);
    bad[30]! ^= 1; // payload octet: authenticated, not encrypted
    assert.equal(openEsp(createTransform('aes-gmac', 'null', keys), new ReplayWindow(), 0x4321, bad).ok, false);
  });
});

describe('test-vectors.md §7: transport packets with ICV (computed, cross-checked with openssl)', () => {
  const ck = fromHex('b40ba9a3c58b2a05bbf0d987b21bf8cb');
  const ik = fromHex('f769bcd751044604127672711c6d3441');
  const payload = fromHex('138913c5000d000068656c6c6f');
  const cases = [
    [
      'hmac-sha-1-96',
      'aes-cbc',
      '000102030405060708090a0b0c0d0e0f',
      '0000123400000001000102030405060708090a0b0c0d0e0ff980106f027b0460be327907c23c73f7c5b2ed9aae9b01a217a7fdd4',
    ],
    ['hmac-sha-1-96', 'null', '', '0000123400000001138913c5000d000068656c6c6f0101113ae8b082bf682ed6c47771f9'],
    ['hmac-md5-96', 'null', '', '0000123400000001138913c5000d000068656c6c6f010111a7e11cd04d98c2ff4721a18a'],
  ] as const;
  for (const [alg, ealg, iv, esp] of cases) {
    it(`${alg} + ealg=${ealg}`, () => {
      const keys = expandKeys(ik, ck, alg, ealg);
      const t = createTransform(alg, ealg, keys, { iv: () => fromHex(iv) });
      assert.equal(toHex(sealEsp(t, 0x1234, 1, payload, 17)), esp);
      const r = openEsp(createTransform(alg, ealg, keys), new ReplayWindow(), 0x1234, fromHex(esp));
      assert.ok(r.ok && toHex(r.payload) === toHex(payload) && r.nextHeader === 17 && r.seq === 1);
    });
  }
});
