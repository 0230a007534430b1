// The network side of AKA (HSS/AuC, TS 33.102 §6.3.2 and §6.3.5): authentication vectors and
// the check of a resynchronisation token. AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A;
// AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S with MAC-S = f1*(SQN_MS, AMF* = 0000) (spec digest §2.1, §2.3).
import { randomBytes, randomFillSync } from 'node:crypto';
import { concatBytes, equalBytes, xorBytes } from '../util/bytes.ts';
import { checkLen } from './errors.ts';
import { AMF_LEN, KEY_LEN, RAND_LEN, SQN_LEN, milenage, milenageKeys, milenageMacs } from './milenage.ts';
import { sqnToBytes } from './sqn.ts';

/** Length of AUTN = (SQN ⊕ AK) ‖ AMF ‖ MAC-A in octets. */
export const AUTN_LEN = 16;
/** Length of AUTS = (SQN_MS ⊕ AK*) ‖ MAC-S in octets. */
export const AUTS_LEN = 14;
/** AMF* of the resynchronisation MAC: the dummy value 0x0000 (33.102 §6.3.3; pitfall 7). */
export const amfStar = (): Uint8Array => new Uint8Array(AMF_LEN);

/** Source of random octets; defaults to node:crypto randomBytes. */
export type Rng = (n: number) => Uint8Array;

/** What the HSS/AuC needs for one authentication vector (TS 33.102 §6.3.2). */
export interface VectorInput {
  readonly k: Uint8Array;
  readonly opc: Uint8Array;
  /** 48-bit SQN as 6 octets or an integer (see sqn.ts nextSqnAfter). */
  readonly sqn: Uint8Array | number | bigint;
  readonly amf: Uint8Array;
  /** A fixed RAND (tests, replays); otherwise 16 octets from `rng`. */
  readonly rand?: Uint8Array;
}

/** One authentication vector (AV = RAND ‖ XRES ‖ CK ‖ IK ‖ AUTN) plus the parts AUTN is made of. */
export interface AuthVector {
  readonly rand: Uint8Array;
  readonly xres: Uint8Array;
  readonly ck: Uint8Array;
  readonly ik: Uint8Array;
  readonly ak: Uint8Array;
  readonly macA: Uint8Array;
  readonly autn: Uint8Array;
  readonly sqn: Uint8Array;
  readonly amf: Uint8Array;
}

// RANDs cut from a 4 KiB block of CSPRNG output (one randomFillSync per 256 vectors, not one per
// vector); each is copied out and its bytes in the block zeroed, so no RAND is handed out twice.
const POOL = new Uint8Array(4096);
let poolOff = POOL.length;
const defaultRng: Rng = (n) => {
  if (n > 256) return new Uint8Array(randomBytes(n));
  if (poolOff + n > POOL.length) {
    randomFillSync(POOL);
    poolOff = 0;
  }
  const out = POOL.slice(poolOff, poolOff + n);
  POOL.fill(0, poolOff, (poolOff += n));
  return out;
};

/** Generates one vector for (K, OPc, SQN, AMF) and a fresh or given RAND. */
export function generateVector(input: VectorInput, rng: Rng = defaultRng): AuthVector {
  checkLen(input.k, KEY_LEN, 'k');
  checkLen(input.opc, KEY_LEN, 'opc');
  checkLen(input.amf, AMF_LEN, 'amf');
  const sqn = input.sqn instanceof Uint8Array ? input.sqn.slice() : sqnToBytes(input.sqn);
  checkLen(sqn, SQN_LEN, 'sqn');
  const rand = input.rand ? input.rand.slice() : rng(RAND_LEN);
  checkLen(rand, RAND_LEN, 'rand');
  const m = milenage(input.k, input.opc, rand, sqn, input.amf);
  const concealed = xorBytes(sqn, m.ak);
  const autn = concatBytes(concealed, input.amf, m.macA);
  concealed.fill(0);
  m.macS.fill(0);
  m.akStar.fill(0);
  return { rand, xres: m.res, ck: m.ck, ik: m.ik, ak: m.ak, macA: m.macA, autn, sqn, amf: input.amf.slice() };
}

/** What the HSS needs to check a resynchronisation request (TS 33.102 §6.3.5). */
export interface AutsInput {
  readonly k: Uint8Array;
  readonly opc: Uint8Array;
  /** The RAND of the challenge the UE refused. */
  readonly rand: Uint8Array;
  /** 14 octets, as decoded from auts="…" (base64). */
  readonly auts: Uint8Array;
}

/** The outcome of {@link verifyAuts}: whether MAC-S checks, and the SQN_MS it carries. */
export interface AutsCheck {
  /** MAC-S in the AUTS equals f1*(K, RAND, SQN_MS, 0000). */
  readonly ok: boolean;
  /** SQN_MS = AUTS[0..5] ⊕ f5*(K, RAND), 6 octets; trust it only when ok. */
  readonly sqnMs: Uint8Array;
  /** The MAC-S this side computed (XMAC-S), for diagnostics; AUTS[6..13] holds the UE's. */
  readonly macS: Uint8Array;
}

/** Recovers SQN_MS from an AUTS and checks MAC-S with AMF* = 0000 (never the AUTN's AMF). */
export function verifyAuts(input: AutsInput): AutsCheck {
  checkLen(input.auts, AUTS_LEN, 'auts');
  const keys = milenageKeys(input.k, input.opc, input.rand);
  const sqnMs = xorBytes(input.auts.subarray(0, SQN_LEN), keys.akStar);
  for (const v of Object.values(keys)) v.fill(0);
  const macs = milenageMacs(input.k, input.opc, input.rand, sqnMs, amfStar());
  macs.macA.fill(0);
  const ok = equalBytes(macs.macS, input.auts.subarray(SQN_LEN, AUTS_LEN));
  return { ok, sqnMs, macS: macs.macS };
}
