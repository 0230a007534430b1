// Milenage, TS 35.206 §4.1: OPc from OP and the functions f1, f1*, f2, f3, f4, f5, f5*.
// Steps: TEMP = E_K(RAND ⊕ OPc); OUT1 from SQN ‖ AMF; OUT2..OUT5 from TEMP (spec digest §2.4).
// AES-128 comes from node:crypto (aes-128-ecb without padding), one context per K kept for reuse
// (milenage-aes.ts).
import type { Cipher } from 'node:crypto';
import { checkLen } from './errors.ts';
import { aesDone, aesEcb } from './milenage-aes.ts';

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

// Scratch for the functions below: one event loop, no re-entry (nothing in there calls out), wiped after
// each use. Inputs are assembled here and encrypted as one update() per step: TEMP first, then every
// OUTi block it feeds (each block is still encrypted on its own: ECB).
const SCRATCH = new Uint8Array(96);

/** TEMP = E_K(RAND ⊕ OPc), with x (16 octets) as scratch for RAND ⊕ OPc. */
function temp(cipher: Cipher, opc: Uint8Array, rand: Uint8Array, x: Uint8Array): Buffer {
  for (let j = 0; j < 16; j++) x[j] = rand[j]! ^ opc[j]!;
  return cipher.update(x);
}

/** Into x[at..at+15]: rot(IN1 ⊕ OPc, r1) ⊕ TEMP ⊕ c1, IN1 = SQN ‖ AMF ‖ SQN ‖ AMF (r1 = 8 octets), the input of OUT1. */
function in1Block(x: Uint8Array, at: number, opc: Uint8Array, t: Uint8Array, sqn: Uint8Array, amf: Uint8Array): void {
  const in1 = SCRATCH.subarray(80, 96);
  in1.set(sqn, 0);
  in1.set(amf, 6);
  in1.set(sqn, 8);
  in1.set(amf, 14);
  for (let j = 0; j < 16; j++) x[at + j] = in1[(j + R_OCTETS[0]) % 16]! ^ opc[(j + R_OCTETS[0]) % 16]! ^ t[j]!;
  x[at + 15]! ^= C_LAST[0];
  in1.fill(0);
}

/** Into x[at..at+15]: rot(TEMP ⊕ OPc, ri) ⊕ ci, the input of OUTi for i = 2..5. */
function outBlock(x: Uint8Array, at: number, opc: Uint8Array, t: Uint8Array, i: number): void {
  const r = R_OCTETS[i - 1]!;
  for (let j = 0; j < 16; j++) x[at + j] = t[(j + r) % 16]! ^ opc[(j + r) % 16]!;
  x[at + 15]! ^= C_LAST[i - 1]!;
}

/** The cipher's output as OUTi = E_K(…) ⊕ OPc, in place, as a Uint8Array view (Buffer's slice() would share memory; outputs are copies). */
function xorOpc(yb: Buffer, opc: Uint8Array): Uint8Array {
  const y = new Uint8Array(yb.buffer, yb.byteOffset, yb.length);
  for (let i = 0; i < y.length; i++) y[i]! ^= opc[i % 16]!;
  return y;
}

function checkCommon(k: Uint8Array, opc: Uint8Array, rand: Uint8Array): void {
  checkLen(k, KEY_LEN, 'k');
  checkLen(opc, KEY_LEN, 'opc');
  checkLen(rand, RAND_LEN, 'rand');
}

function checkSqnAmf(sqn: Uint8Array, amf: Uint8Array): void {
  checkLen(sqn, SQN_LEN, 'sqn');
  checkLen(amf, AMF_LEN, 'amf');
}

/** OPc = E_K(OP) ⊕ OP (TS 35.206 §4.1). */
export function computeOpc(k: Uint8Array, op: Uint8Array): Uint8Array {
  checkLen(k, KEY_LEN, 'k');
  checkLen(op, KEY_LEN, 'op');
  const cipher = aesEcb(k);
  const y = xorOpc(cipher.update(op), op);
  aesDone(cipher);
  const out = y.slice();
  y.fill(0);
  return out;
}

/** f2, f3, f4, f5 and f5*: everything that depends on RAND only (TEMP, then OUT2..OUT5 as one 4-block call). */
export function milenageKeys(k: Uint8Array, opc: Uint8Array, rand: Uint8Array): MilenageKeys {
  checkCommon(k, opc, rand);
  const cipher = aesEcb(k);
  const x = SCRATCH.subarray(0, 64);
  const t = temp(cipher, opc, rand, x.subarray(0, 16));
  for (let i = 2; i <= 5; i++) outBlock(x, 16 * (i - 2), opc, t, i);
  const y = xorOpc(cipher.update(x), opc);
  aesDone(cipher);
  const keys: MilenageKeys = {
    ak: y.slice(0, 6),
    res: y.slice(8, 16),
    ck: y.slice(16, 32),
    ik: y.slice(32, 48),
    akStar: y.slice(48, 54),
  };
  wipe(t, y);
  return keys;
}

/** f1 and f1*: MAC-A and MAC-S over SQN ‖ AMF. */
export function milenageMacs(
  k: Uint8Array,
  opc: Uint8Array,
  rand: Uint8Array,
  sqn: Uint8Array,
  amf: Uint8Array,
): { macA: Uint8Array; macS: Uint8Array } {
  checkCommon(k, opc, rand);
  checkSqnAmf(sqn, amf);
  const cipher = aesEcb(k);
  const x = SCRATCH.subarray(0, 16);
  const t = temp(cipher, opc, rand, x);
  in1Block(x, 0, opc, t, sqn, amf);
  const y = xorOpc(cipher.update(x), opc);
  aesDone(cipher);
  const macs = { macA: y.slice(0, 8), macS: y.slice(8, 16) };
  wipe(t, y);
  return macs;
}

/**
 * The USIM's side of AUTN (TS 33.102 §6.3.3) in one computation under one AES context: f2..f5* as
 * milenageKeys gives them, SQN = AUTN[0..5] ⊕ AK, and XMAC-A = f1 over that SQN and AUTN's AMF. TEMP is
 * encrypted once (milenageKeys then milenageMacs would do it twice, and ask for K's context twice).
 */
export function milenageForAutn(
  k: Uint8Array,
  opc: Uint8Array,
  rand: Uint8Array,
  autn: Uint8Array,
): MilenageKeys & { readonly sqn: Uint8Array; readonly amf: Uint8Array; readonly xmacA: Uint8Array } {
  checkCommon(k, opc, rand);
  checkLen(autn, 16, 'autn');
  const cipher = aesEcb(k);
  const x = SCRATCH.subarray(0, 64);
  const t = temp(cipher, opc, rand, x.subarray(0, 16));
  for (let i = 2; i <= 5; i++) outBlock(x, 16 * (i - 2), opc, t, i);
  const y = xorOpc(cipher.update(x), opc);
  const sqn = new Uint8Array(SQN_LEN);
  for (let i = 0; i < SQN_LEN; i++) sqn[i] = autn[i]! ^ y[i]!;
  const amf = autn.slice(SQN_LEN, SQN_LEN + AMF_LEN);
  const x1 = SCRATCH.subarray(0, 16);
  in1Block(x1, 0, opc, t, sqn, amf);
  const y1 = xorOpc(cipher.update(x1), opc);
  aesDone(cipher);
  const out = {
    ak: y.slice(0, 6),
    res: y.slice(8, 16),
    ck: y.slice(16, 32),
    ik: y.slice(32, 48),
    akStar: y.slice(48, 54),
    sqn,
    amf,
    xmacA: y1.slice(0, 8),
  };
  y1.fill(0);
  wipe(t, y);
  return out;
}

/**
 * Every Milenage output at once: TEMP, then OUT1..OUT5 as one 5-block call. The vector path of every
 * registration: no closure, no intermediate copies.
 */
export function milenage(k: Uint8Array, opc: Uint8Array, rand: Uint8Array, sqn: Uint8Array, amf: Uint8Array): MilenageOutput {
  checkCommon(k, opc, rand);
  checkSqnAmf(sqn, amf);
  const cipher = aesEcb(k);
  const x = SCRATCH.subarray(0, 80);
  const t = temp(cipher, opc, rand, x.subarray(0, 16));
  in1Block(x, 0, opc, t, sqn, amf);
  for (let i = 2; i <= 5; i++) outBlock(x, 16 * (i - 1), opc, t, i);
  const y = xorOpc(cipher.update(x), opc);
  aesDone(cipher);
  const out: MilenageOutput = {
    macA: y.slice(0, 8),
    macS: y.slice(8, 16),
    ak: y.slice(16, 22),
    res: y.slice(24, 32),
    ck: y.slice(32, 48),
    ik: y.slice(48, 64),
    akStar: y.slice(64, 70),
  };
  wipe(t, y);
  return out;
}

/** Wipes TEMP, the scratch and the cipher output once the results are copied out (no rest-array per call). */
function wipe(t: Uint8Array, y: Uint8Array): void {
  t.fill(0);
  SCRATCH.fill(0);
  y.fill(0);
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
