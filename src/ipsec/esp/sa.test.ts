// One SA end to end: round trips for every valid (alg, ealg) pair, tampering, replay, window
// behaviour, crafted bad padding and dummy packets with valid ICVs, sequence exhaustion, misuse
// errors, key redaction, and "open never throws" on arbitrary bytes (fast-check).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { allValidPairs, type EncryptionAlg, type IntegrityAlg } from '../algorithms.ts';
import { expandKeys } from '../keys.ts';
import { createInbound, createOutbound, type EspSaCrypto } from './index.ts';
import { createTransform } from './transform.ts';
import { ESP_HEADER_LEN, writeU32 } from './wire.ts';

const IK = randomBytes(16);
const CK = randomBytes(16);
const SPI = 0x1000;

function sa(alg: IntegrityAlg, ealg: EncryptionAlg, extra: Partial<EspSaCrypto> = {}): EspSaCrypto {
  return { spi: SPI, alg, ealg, keys: expandKeys(IK, CK, alg, ealg), ...extra };
}

/** Seals an arbitrary plaintext body (payload‖pad‖padlen‖nh) with a valid ICV, bypassing seal.ts. */
function craft(s: EspSaCrypto, seq: number, body: Uint8Array): Uint8Array {
  const t = createTransform(s.alg, s.ealg, s.keys);
  const pkt = new Uint8Array(ESP_HEADER_LEN + t.ivLen + body.length + t.icvLen);
  writeU32(pkt, 0, s.spi);
  writeU32(pkt, 4, seq);
  pkt.set(body, ESP_HEADER_LEN + t.ivLen);
  t.seal(pkt, seq);
  return pkt;
}

/** A body of `payload` with the given padding octets, aligned for any cipher (16). */
function body(payloadLen: number, pad: number[], nh: number): Uint8Array {
  const b = new Uint8Array(payloadLen + pad.length + 2);
  b.set(pad, payloadLen);
  b[b.length - 2] = pad.length;
  b[b.length - 1] = nh;
  return b;
}

describe('ESP SA round trips', () => {
  for (const { alg, ealg } of allValidPairs()) {
    it(`${alg} + ${ealg}: payloads 0..300 seal and open in order`, () => {
      const out = createOutbound(sa(alg, ealg));
      const inb = createInbound(sa(alg, ealg));
      for (let n = 0; n <= 300; n++) {
        const p = randomBytes(n);
        const esp = out.seal(p, 17);
        assert.equal(esp.length % 4, 0, 'ICV 4-octet aligned');
        const r = inb.open(esp);
        assert.ok(r.ok, `n=${n}: ${JSON.stringify(r)}`);
        assert.equal(r.seq, n + 1);
        assert.equal(r.nextHeader, 17);
        assert.deepEqual(Buffer.from(r.payload), p);
      }
      assert.equal(out.lastSeq, 301);
      assert.equal(inb.highestSeq, 301);
    });

    it(`${alg} + ${ealg}: any single flipped octet is dropped, and the window does not move`, () => {
      const out = createOutbound(sa(alg, ealg));
      const inb = createInbound(sa(alg, ealg));
      assert.ok(inb.open(out.seal(randomBytes(10), 17)).ok); // T = 1
      const esp = out.seal(randomBytes(37), 17); // seq 2
      for (let i = 0; i < esp.length; i++) {
        const bad = Uint8Array.from(esp);
        bad[i]! ^= 1 << (i % 8);
        const r = inb.open(bad);
        assert.equal(r.ok, false);
        // A flipped sequence octet may land on a seen or invalid number: then the replay check answers first.
        const seq = Buffer.from(bad).readUInt32BE(4);
        const expected = i < 4 ? 'unknown-spi' : seq === 1 ? 'replay' : seq === 0 ? 'outside-window' : 'icv';
        assert.equal(!r.ok && r.drop, expected, `octet ${i}`);
        assert.equal(inb.highestSeq, 1, `octet ${i} moved the window`);
      }
      assert.ok(inb.open(esp).ok, 'the genuine packet still passes');
    });
  }
});

describe('ESP SA anti-replay through open()', () => {
  const s = sa('hmac-sha-1-96', 'aes-cbc');
  it('a replayed packet is dropped as replay, an old one as outside-window', () => {
    const out = createOutbound(s);
    const inb = createInbound(s);
    const first = out.seal(Uint8Array.of(1), 17);
    assert.ok(inb.open(first).ok);
    assert.deepEqual(inb.open(first), { ok: false, drop: 'replay', seq: 1 });
    for (let i = 0; i < 70; i++) out.seal(Uint8Array.of(2), 17);
    const late = out.seal(Uint8Array.of(3), 17); // seq 72
    assert.ok(inb.open(late).ok);
    const old = createOutbound(s, { __testLastSeq: 7 }).seal(Uint8Array.of(4), 17); // seq 8 = 72 - 64
    assert.deepEqual(inb.open(old), { ok: false, drop: 'outside-window', seq: 8 });
    const inWindow = createOutbound(s, { __testLastSeq: 8 }).seal(Uint8Array.of(4), 17); // seq 9
    assert.ok(inb.open(inWindow).ok, 'out of order but inside the window');
  });

  it('a forged packet with a huge sequence number does not move the window', () => {
    const out = createOutbound(s);
    const inb = createInbound(s);
    assert.ok(inb.open(out.seal(Uint8Array.of(1), 17)).ok);
    const forged = out.seal(Uint8Array.of(2), 17);
    writeU32(forged, 4, 0xfffffff0);
    assert.deepEqual(inb.open(forged), { ok: false, drop: 'icv', seq: 0xfffffff0 });
    assert.equal(inb.highestSeq, 1);
    assert.ok(inb.open(out.seal(Uint8Array.of(3), 17)).ok, 'seq 3 still accepted');
  });

  it('honours a larger window (1024)', () => {
    const s2 = { ...s, replayWindow: 1024 };
    const inb = createInbound(s2);
    assert.ok(inb.open(createOutbound(s2, { __testLastSeq: 2000 }).seal(Uint8Array.of(1), 17)).ok);
    assert.ok(inb.open(createOutbound(s2, { __testLastSeq: 1000 }).seal(Uint8Array.of(1), 17)).ok); // 1001 > 2001-1024
    assert.equal(inb.open(createOutbound(s2, { __testLastSeq: 976 }).seal(Uint8Array.of(1), 17)).ok, false);
  });
});

describe('ESP SA trailer checks with a valid ICV', () => {
  for (const { alg, ealg } of allValidPairs()) {
    const s = sa(alg, ealg);
    it(`${alg} + ${ealg}: wrong pad content ⇒ padding`, () => {
      const inb = createInbound(s);
      const pad = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 99];
      assert.deepEqual(inb.open(craft(s, 1, body(15, pad, 17))), { ok: false, drop: 'padding', seq: 1 });
      assert.equal(inb.highestSeq, 1, 'the window moved: the packet was authentic');
    });
    it(`${alg} + ${ealg}: pad length beyond the data ⇒ padding`, () => {
      const b = body(12, [1, 2], 17);
      b[b.length - 2] = 200;
      assert.deepEqual(createInbound(s).open(craft(s, 5, b)), { ok: false, drop: 'padding', seq: 5 });
    });
    it(`${alg} + ${ealg}: next header 59 ⇒ dummy, after the window commit`, () => {
      const inb = createInbound(s);
      const dummy = craft(s, 9, body(14, [], 59));
      assert.deepEqual(inb.open(dummy), { ok: false, drop: 'dummy', seq: 9 });
      assert.equal(inb.highestSeq, 9);
      assert.deepEqual(inb.open(dummy), { ok: false, drop: 'replay', seq: 9 });
    });
  }
});

describe('ESP SA sequence numbers and misuse', () => {
  const s = sa('hmac-sha-1-96', 'aes-cbc');
  it('starts at 1 and refuses to send past 2^32-1', () => {
    const fresh = createOutbound(s);
    assert.equal(fresh.lastSeq, 0);
    assert.equal(Buffer.from(fresh.seal(new Uint8Array(0), 17)).readUInt32BE(4), 1);
    const out = createOutbound(s, { __testLastSeq: 0xfffffffe });
    assert.equal(out.exhausted, false);
    const last = out.seal(Uint8Array.of(1), 17);
    assert.equal(Buffer.from(last).readUInt32BE(4), 0xffffffff);
    assert.equal(out.exhausted, true);
    assert.throws(() => out.seal(Uint8Array.of(1), 17), { name: 'EspError', code: 'ESP_SEQ_EXHAUSTED' });
    assert.equal(out.lastSeq, 0xffffffff);
    assert.ok(createInbound(s).open(last).ok);
  });

  it('never sends next header 59 and checks its arguments', () => {
    const out = createOutbound(s);
    assert.throws(() => out.seal(Uint8Array.of(1), 59), { code: 'ESP_BAD_INPUT' });
    assert.throws(() => out.seal(Uint8Array.of(1), 256), { code: 'ESP_BAD_INPUT' });
    assert.throws(() => out.seal(new Uint8Array(70000), 17), { code: 'ESP_BAD_INPUT' });
    assert.equal(out.lastSeq, 0, 'a refused seal consumes no sequence number');
  });

  it('rejects bad SPIs, invalid pairs and wrong key lengths without printing keys', () => {
    assert.throws(() => createOutbound({ ...s, spi: 0 }), { code: 'ESP_BAD_INPUT' });
    assert.throws(() => createInbound({ ...s, spi: 255 }), { code: 'ESP_BAD_INPUT' });
    assert.throws(() => createInbound({ ...s, spi: 2 ** 32 }), { code: 'ESP_BAD_INPUT' });
    assert.throws(() => createOutbound({ ...s, alg: 'null' }), { code: 'ESP_UNSUPPORTED' });
    assert.throws(() => createOutbound({ ...s, alg: 'aes-gmac' }), { code: 'ESP_UNSUPPORTED' });
    const short = { ...s, keys: { ikEsp: IK, ckEsp: CK } }; // 16-octet key for SHA-1 (pitfall 8)
    assert.throws(
      () => createOutbound(short),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'ESP_BAD_KEY');
        assert.match(e.message, /ikEsp.*20 octets, got 16/);
        assert.ok(!e.message.includes(IK.toString('hex')));
        return true;
      },
    );
    assert.throws(() => createInbound({ ...sa('null', 'aes-gcm'), keys: { ikEsp: new Uint8Array(0), ckEsp: CK } }), {
      code: 'ESP_BAD_KEY',
    });
    assert.throws(() => createInbound({ ...s, replayWindow: 16 }), { code: 'ESP_BAD_INPUT' });
  });

  it('never shows keys in util.inspect or JSON', () => {
    for (const { alg, ealg } of allValidPairs()) {
      const x = sa(alg, ealg);
      const text =
        inspect(createOutbound(x), { showHidden: true, depth: 9 }) +
        JSON.stringify(createInbound(x)) +
        inspect(createInbound(x), { showHidden: true, depth: 9 });
      for (const k of [x.keys.ikEsp, x.keys.ckEsp]) if (k.length) assert.ok(!text.includes(Buffer.from(k).toString('hex').slice(0, 8)));
      assert.ok(!/\d+, \d+, \d+/.test(text), 'no byte arrays');
    }
  });
});

describe('AES-GCM / GMAC IVs', () => {
  for (const [alg, ealg] of [
    ['null', 'aes-gcm'],
    ['aes-gmac', 'null'],
  ] as const) {
    it(`${alg} + ${ealg}: IV = R + seq, R differing between SAs that share the key`, () => {
      const a = createOutbound(sa(alg, ealg));
      const b = createOutbound(sa(alg, ealg));
      const iv = (e: Uint8Array) => Buffer.from(e.subarray(8, 16)).readBigUInt64BE();
      const a1 = iv(a.seal(Uint8Array.of(1), 17));
      const a2 = iv(a.seal(Uint8Array.of(1), 17));
      assert.equal((a2 - a1) & 0xffffffffffffffffn, 1n);
      assert.notEqual(iv(b.seal(Uint8Array.of(1), 17)), a1);
    });
  }
});

describe('open() never throws', () => {
  for (const { alg, ealg } of allValidPairs()) {
    it(`${alg} + ${ealg}: arbitrary bytes, truncations and mutations give a verdict`, () => {
      const s = sa(alg, ealg);
      const inb = createInbound(s);
      const genuine = createOutbound(s).seal(randomBytes(40), 17);
      const spiPrefix = genuine.subarray(0, 4);
      fc.assert(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 200 }),
            fc.uint8Array({ maxLength: 200 }).map((b) => Uint8Array.from([...spiPrefix, ...b])),
            fc.nat({ max: genuine.length }).map((n) => genuine.subarray(0, n)),
            fc.tuple(fc.nat({ max: genuine.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
              const c = Uint8Array.from(genuine);
              c[i]! ^= x;
              return c;
            }),
          ),
          (bytes) => {
            const r = inb.open(bytes);
            assert.equal(typeof r.ok, 'boolean');
          },
        ),
        { numRuns: 400 },
      );
    });
  }
});
