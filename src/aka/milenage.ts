// Milenage, TS 35.206 §4.1: OPc from OP and the functions f1, f1*, f2, f3, f4, f5, f5*.
// Steps: TEMP = E_K(RAND ⊕ OPc); OUT1 from SQN ‖ AMF; OUT2..OUT5 from TEMP (spec digest §2.4).
// AES-128 comes from node:crypto (aes-128-ecb without padding), one cipher per call.
import { createCipheriv } from 'node:crypto';
import { checkLen } from './errors.ts';

/** Length of K, OP and OPc in octets. */
export const KEY_LEN = 16;
/** Length of RAND in octets. */
export const RAND_LEN = 16;
/** Length of SQN (and of SQN ⊕ AK in AUTN) in octets. */
export const SQN_LEN = 6;
/** Length of AMF in octets. */
export const AMF_LEN = 2;
/** Length of MAC-A and MAC-S in octets. */
export const MAC_LEN = 8;
/** Length of RES / XRES as Milenage makes it (f2), in octets. */
export const RES_LEN = 8;
/** Length of AK and AK* in octets. */
export const AK_LEN = 6;

/** All Milenage outputs for one (K, OPc, RAND, SQN, AMF). */
export interface MilenageOutput {
  /** f1: MAC-A (or XMAC-A), 8 octets. */
  readonly macA: Uint8Array;
  /** f1*: MAC-S (or XMAC-S), 8 octets. */
  readonly macS: Uint8Array;
  /** f2: RES / XRES, 8 octets. */
  readonly res: Uint8Array;
  /** f3: CK, 16 octets. */
  readonly ck: Uint8Array;
  /** f4: IK, 16 octets. */
  readonly ik: Uint8Array;
  /** f5: AK, 6 octets. */
  readonly ak: Uint8Array;
  /** f5*: AK* (resynchronisation), 6 octets. */
  readonly akStar: Uint8Array;
}

/** The outputs that do not depend on SQN and AMF (f2, f3, f4, f5, f5*). */
export type MilenageKeys = Pick<MilenageOutput, 'res' | 'ck' | 'ik' | 'ak' | 'akStar'>;

// TS 35.206 §4.1: rotation amounts r1..r5 (bits) and constants c1..c5 (only the last octet is set).
const R_OCTETS = [8, 0, 4, 8, 12] as const;
const C_LAST = [0x00, 0x01, 0x02, 0x04, 0x08] as const;

/** AES-128-ECB of one or more whole 16-octet blocks. */
type Encrypt = (blocks: Uint8Array) => Uint8Array;

/** Runs `fn` with a single-block AES-128 encryptor keyed with K (one cipher object for the call). */
function withAes<T>(k: Uint8Array, fn: (e: Encrypt) => T): T {
  checkLen(k, KEY_LEN, 'k');
  const cipher = createCipheriv('aes-128-ecb', k, null);
  cipher.setAutoPadding(false);
  try {
    return fn((blocks) => {
      const out = cipher.update(blocks);
      const copy = new Uint8Array(out);
      out.fill(0);
      return copy;
    });
  } finally {
    cipher.final();
  }
}

function xorInto(dst: Uint8Array, src: Uint8Array): Uint8Array {
  for (let i = 0; i < dst.length; i++) dst[i]! ^= src[i]!;
  return dst;
}

/** rot(x, r): cyclic left rotation by r bits towards the most significant end (r a multiple of 8). */
function rotOctets(x: Uint8Array, octets: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = x[(i + octets) % 16]!;
  return out;
}

/** TEMP = E_K(RAND ⊕ OPc). */
function temp(e: Encrypt, opc: Uint8Array, rand: Uint8Array): Uint8Array {
  const x = xorInto(rand.slice(), opc);
  const t = e(x);
  x.fill(0);
  return t;
}

/** OUT1 = E_K(TEMP ⊕ rot(IN1 ⊕ OPc, r1) ⊕ c1) ⊕ OPc, IN1 = SQN ‖ AMF ‖ SQN ‖ AMF. */
function out1(e: Encrypt, opc: Uint8Array, tmp: Uint8Array, sqn: Uint8Array, amf: Uint8Array): Uint8Array {
  const in1 = new Uint8Array(16);
  in1.set(sqn, 0);
  in1.set(amf, 6);
  in1.set(sqn, 8);
  in1.set(amf, 14);
  const x = xorInto(rotOctets(xorInto(in1, opc), R_OCTETS[0]), tmp);
  x[15]! ^= C_LAST[0];
  const out = xorInto(e(x), opc);
  wipeAll(in1, x);
  return out;
}

/** OUTi = E_K(rot(TEMP ⊕ OPc, ri) ⊕ ci) ⊕ OPc for i = 2..5. */
function outN(e: Encrypt, opc: Uint8Array, tmp: Uint8Array, i: 2 | 3 | 4 | 5): Uint8Array {
  const y = xorInto(tmp.slice(), opc);
  const x = rotOctets(y, R_OCTETS[i - 1]!);
  x[15]! ^= C_LAST[i - 1]!;
  const out = xorInto(e(x), opc);
  wipeAll(x, y);
  return out;
}

function wipeAll(...bufs: Uint8Array[]): void {
  for (const b of bufs) b.fill(0);
}

function checkCommon(opc: Uint8Array, rand: Uint8Array): void {
  checkLen(opc, KEY_LEN, 'opc');
  checkLen(rand, RAND_LEN, 'rand');
}

/** OPc = E_K(OP) ⊕ OP (TS 35.206 §4.1). */
export function computeOpc(k: Uint8Array, op: Uint8Array): Uint8Array {
  checkLen(op, KEY_LEN, 'op');
  return withAes(k, (e) => xorInto(e(op), op));
}

/** f2, f3, f4, f5 and f5*: everything that depends on RAND only. */
export function milenageKeys(k: Uint8Array, opc: Uint8Array, rand: Uint8Array): MilenageKeys {
  checkCommon(opc, rand);
  return withAes(k, (e) => {
    const t = temp(e, opc, rand);
    const o2 = outN(e, opc, t, 2);
    const o5 = outN(e, opc, t, 5);
    const keys: MilenageKeys = {
      ak: o2.slice(0, 6),
      res: o2.slice(8, 16),
      ck: outN(e, opc, t, 3),
      ik: outN(e, opc, t, 4),
      akStar: o5.slice(0, 6),
    };
    wipeAll(t, o2, o5);
    return keys;
  });
}

/** f1 and f1*: MAC-A and MAC-S over SQN ‖ AMF. */
export function milenageMacs(
  k: Uint8Array,
  opc: Uint8Array,
  rand: Uint8Array,
  sqn: Uint8Array,
  amf: Uint8Array,
): { macA: Uint8Array; macS: Uint8Array } {
  checkCommon(opc, rand);
  checkLen(sqn, SQN_LEN, 'sqn');
  checkLen(amf, AMF_LEN, 'amf');
  return withAes(k, (e) => {
    const t = temp(e, opc, rand);
    const o1 = out1(e, opc, t, sqn, amf);
    const macs = { macA: o1.slice(0, 8), macS: o1.slice(8, 16) };
    wipeAll(t, o1);
    return macs;
  });
}

// Scratch for milenage(): one event loop, no re-entry (nothing in there calls out), wiped after each use.
const SCRATCH = new Uint8Array(96);

/**
 * Every Milenage output at once: TEMP, then OUT1..OUT5 as one 5-block ECB call (each block is encrypted
 * on its own). The vector path of every registration: no closure, no intermediate copies.
 */
export function milenage(k: Uint8Array, opc: Uint8Array, rand: Uint8Array, sqn: Uint8Array, amf: Uint8Array): MilenageOutput {
  checkLen(k, KEY_LEN, 'k');
  checkCommon(opc, rand);
  checkLen(sqn, SQN_LEN, 'sqn');
  checkLen(amf, AMF_LEN, 'amf');
  const cipher = createCipheriv('aes-128-ecb', k, null);
  cipher.setAutoPadding(false);
  const x = SCRATCH.subarray(0, 80);
  const in1 = SCRATCH.subarray(80, 96);
  for (let j = 0; j < 16; j++) x[j] = rand[j]! ^ opc[j]!;
  const t = cipher.update(x.subarray(0, 16)); // TEMP = E_K(RAND ⊕ OPc)
  // Block 0: rot(IN1 ⊕ OPc, r1) ⊕ TEMP ⊕ c1, IN1 = SQN ‖ AMF ‖ SQN ‖ AMF (r1 = 8 octets).
  in1.set(sqn, 0);
  in1.set(amf, 6);
  in1.set(sqn, 8);
  in1.set(amf, 14);
  for (let j = 0; j < 16; j++) x[j] = in1[(j + R_OCTETS[0]) % 16]! ^ opc[(j + R_OCTETS[0]) % 16]! ^ t[j]!;
  x[15]! ^= C_LAST[0];
  // Blocks 1..4 (OUT2..OUT5): rot(TEMP ⊕ OPc, ri) ⊕ ci.
  for (let i = 1; i < 5; i++) {
    const r = R_OCTETS[i]!;
    for (let j = 0; j < 16; j++) x[16 * i + j] = t[(j + r) % 16]! ^ opc[(j + r) % 16]!;
    x[16 * i + 15]! ^= C_LAST[i]!;
  }
  const yb = cipher.update(x);
  cipher.final();
  // A Uint8Array view: Buffer's slice() would share memory, and the outputs must be copies (y is wiped).
  const y = new Uint8Array(yb.buffer, yb.byteOffset, yb.length);
  for (let i = 0; i < 80; i++) y[i]! ^= opc[i % 16]!;
  const out: MilenageOutput = {
    macA: y.slice(0, 8),
    macS: y.slice(8, 16),
    ak: y.slice(16, 22),
    res: y.slice(24, 32),
    ck: y.slice(32, 48),
    ik: y.slice(48, 64),
    akStar: y.slice(64, 70),
  };
  wipeAll(t, SCRATCH, y);
  return out;
}

// Small wrappers named as in TS 35.206; the outputs not returned are wiped.
function pick<T extends Record<string, Uint8Array>>(all: T, name: keyof T): Uint8Array {
  for (const key of Object.keys(all)) if (key !== name) all[key]!.fill(0);
  return all[name]!;
}
type F1 = (k: Uint8Array, opc: Uint8Array, rand: Uint8Array, sqn: Uint8Array, amf: Uint8Array) => Uint8Array;
type F25 = (k: Uint8Array, opc: Uint8Array, rand: Uint8Array) => Uint8Array;
/** f1 (TS 35.206 §4.1): the network authentication code MAC-A, 8 octets. */
export const f1: F1 = (k, opc, rand, sqn, amf) => pick(milenageMacs(k, opc, rand, sqn, amf), 'macA');
/** f1* (TS 35.206 §4.1): the resynchronisation code MAC-S, 8 octets (call it with AMF* = 0000 for an AUTS). */
export const f1Star: F1 = (k, opc, rand, sqn, amf) => pick(milenageMacs(k, opc, rand, sqn, amf), 'macS');
/** f2 (TS 35.206 §4.1): RES / XRES, 8 octets. */
export const f2: F25 = (k, opc, rand) => pick(milenageKeys(k, opc, rand), 'res');
/** f3 (TS 35.206 §4.1): the cipher key CK, 16 octets. */
export const f3: F25 = (k, opc, rand) => pick(milenageKeys(k, opc, rand), 'ck');
/** f4 (TS 35.206 §4.1): the integrity key IK, 16 octets. */
export const f4: F25 = (k, opc, rand) => pick(milenageKeys(k, opc, rand), 'ik');
/** f5 (TS 35.206 §4.1): the anonymity key AK, 6 octets (hides SQN in AUTN). */
export const f5: F25 = (k, opc, rand) => pick(milenageKeys(k, opc, rand), 'ak');
/** f5* (TS 35.206 §4.1): the anonymity key AK* of resynchronisation, 6 octets (hides SQN_MS in AUTS). */
export const f5Star: F25 = (k, opc, rand) => pick(milenageKeys(k, opc, rand), 'akStar');
