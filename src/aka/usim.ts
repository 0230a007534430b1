// The UE side of AKA (USIM, TS 33.102 §6.3.3): checks AUTN and returns RES/CK/IK or a failure.
// Order: AK = f5 → SQN = AUTN[0..5] ⊕ AK → XMAC-A vs MAC-A (constant time) → SQN freshness
// (read-only) → commit SQN → outputs. Nothing is recorded unless the MAC verified.
import { concatBytes, equalBytes, xorBytes } from '../util/bytes.ts';
import { AkaError, akaInputError, checkLen } from './errors.ts';
import { AUTN_LEN, amfStar } from './hss.ts';
import { AMF_LEN, KEY_LEN, RAND_LEN, SQN_LEN, computeOpc, milenageForAutn, milenageKeys, milenageMacs } from './milenage.ts';
import { SqnArray, SqnFloor, type SqnFreshness, sqnFromBytes, sqnToBytes, toSqn } from './sqn.ts';

/** A USIM's keys and its SQN freshness rule (default: the TS 33.102 Annex C.2 array). */
export interface UsimOptions {
  readonly k: Uint8Array;
  /** Exactly one of opc and op. */
  readonly opc?: Uint8Array;
  readonly op?: Uint8Array;
  /** Annex C array: IND length (default 5), starting SEQ_MS per slot, age limit L, jump limit Δ. */
  readonly indLen?: number;
  readonly seqMs?: readonly number[];
  readonly ageLimit?: number;
  readonly maxJump?: number;
  /** Simple rule instead of the Annex C array: accept only SQN > sqnMs. */
  readonly sqnMs?: number | bigint | Uint8Array;
  /** Test UEs: any SQN is fresh (the MAC is still checked). */
  readonly acceptAnySqn?: boolean;
  /** A custom freshness rule; replaces all the options above except k/opc/op. */
  readonly freshness?: SqnFreshness;
}

/** AUTN verified and SQN fresh: RES for the Digest response, CK/IK for the SAs. */
export interface UsimOk {
  readonly result: 'ok';
  readonly res: Uint8Array;
  readonly ck: Uint8Array;
  readonly ik: Uint8Array;
  readonly sqn: Uint8Array;
  readonly amf: Uint8Array;
}

/** XMAC-A ≠ MAC-A: the network is not authentic (33.203 §6.1.2). sqn/amf are unauthenticated. */
export interface UsimMacFailure {
  readonly result: 'mac_failure';
  readonly sqn: Uint8Array;
  readonly amf: Uint8Array;
}

/** MAC fine, SQN not acceptable: answer with AUTS (14 octets; base64 in auts="…"). */
export interface UsimSyncFailure {
  readonly result: 'sync_failure';
  readonly reason: 'not_fresh' | 'too_old' | 'too_far';
  readonly auts: Uint8Array;
  readonly sqn: Uint8Array;
  readonly amf: Uint8Array;
  /** The SQN_MS carried in the AUTS (the highest SQN accepted so far). */
  readonly sqnMs: Uint8Array;
}

/** The outcome of {@link Usim.respond}: `ok`, `mac_failure` or `sync_failure` (with the AUTS to send). */
export type UsimResult = UsimOk | UsimMacFailure | UsimSyncFailure;

/** AUTS = (SQN_MS ⊕ AK*) ‖ f1*(K, RAND, SQN_MS, AMF* = 0000) (33.102 §6.3.3). */
export function buildAuts(k: Uint8Array, opc: Uint8Array, rand: Uint8Array, sqnMs: Uint8Array | number | bigint): Uint8Array {
  const sqn = sqnToBytes(toSqn(sqnMs, 'sqnMs'));
  const keys = milenageKeys(k, opc, rand);
  const macs = milenageMacs(k, opc, rand, sqn, amfStar());
  const concealed = xorBytes(sqn, keys.akStar);
  const auts = concatBytes(concealed, macs.macS);
  for (const v of [keys.res, keys.ck, keys.ik, keys.ak, keys.akStar, macs.macA, macs.macS, concealed]) v.fill(0);
  return auts;
}

function freshnessFrom(o: UsimOptions): SqnFreshness {
  if (o.freshness) return o.freshness;
  const acceptAny = o.acceptAnySqn === true;
  if (o.sqnMs !== undefined) {
    if (o.seqMs !== undefined) throw akaInputError('sqnMs', 'give sqnMs (simple rule) or seqMs (Annex C array), not both');
    return new SqnFloor(o.sqnMs, { acceptAny });
  }
  return new SqnArray({ indLen: o.indLen, seqMs: o.seqMs, ageLimit: o.ageLimit, maxJump: o.maxJump, acceptAny });
}

/**
 * A USIM: K, OPc and the SQN state. Keys sit in private fields (not shown by util.inspect or
 * JSON.stringify). Not safe for concurrent use; one instance per subscriber.
 */
export class Usim {
  readonly #k: Uint8Array;
  readonly #opc: Uint8Array;
  readonly freshness: SqnFreshness;

  constructor(opts: UsimOptions) {
    checkLen(opts.k, KEY_LEN, 'k');
    if ((opts.opc === undefined) === (opts.op === undefined)) throw akaInputError('op/opc', 'give exactly one of op and opc');
    if (opts.opc !== undefined) checkLen(opts.opc, KEY_LEN, 'opc');
    this.#k = opts.k.slice();
    this.#opc = opts.opc !== undefined ? opts.opc.slice() : computeOpc(opts.k, opts.op!);
    this.freshness = freshnessFrom(opts);
  }

  /** SQN_MS (6 octets): the highest SQN accepted so far. */
  get sqnMs(): Uint8Array {
    return sqnToBytes(this.freshness.highest());
  }

  /** Runs the AUTN check for one challenge (33.102 §6.3.3). */
  respond(rand: Uint8Array, autn: Uint8Array): UsimResult {
    return usimRespond(this.#k, this.#opc, this.freshness, rand, autn);
  }
}

/**
 * The AUTN check of {@link Usim.respond} over K, OPc (16 octets each, checked) and an SQN freshness rule
 * kept elsewhere: a load generator's UEs keep only their SQN state, and would otherwise build a Usim (two
 * key copies) per challenge.
 */
export function usimRespond(k: Uint8Array, opc: Uint8Array, freshness: SqnFreshness, rand: Uint8Array, autn: Uint8Array): UsimResult {
  checkLen(rand, RAND_LEN, 'rand');
  checkLen(autn, AUTN_LEN, 'autn');
  // AK = f5 → SQN = AUTN[0..5] ⊕ AK → XMAC-A = f1(SQN, AMF), with f2..f4 in the same computation.
  const m = milenageForAutn(k, opc, rand, autn);
  const macOk = equalBytes(m.xmacA, autn.subarray(SQN_LEN + AMF_LEN, AUTN_LEN));
  m.xmacA.fill(0);
  m.ak.fill(0);
  m.akStar.fill(0);
  if (!macOk) {
    wipeOutputs(m);
    return { result: 'mac_failure', sqn: m.sqn, amf: m.amf };
  }
  const sqnValue = sqnFromBytes(m.sqn);
  const verdict = freshness.check(sqnValue);
  if (!verdict.ok) {
    wipeOutputs(m);
    const sqnMs = sqnToBytes(freshness.highest());
    return { result: 'sync_failure', reason: verdict.reason, auts: buildAuts(k, opc, rand, sqnMs), sqn: m.sqn, amf: m.amf, sqnMs };
  }
  freshness.accept(sqnValue);
  return { result: 'ok', res: m.res, ck: m.ck, ik: m.ik, sqn: m.sqn, amf: m.amf };
}

function wipeOutputs(m: { readonly res: Uint8Array; readonly ck: Uint8Array; readonly ik: Uint8Array }): void {
  m.res.fill(0);
  m.ck.fill(0);
  m.ik.fill(0);
}

/** For callers that prefer to throw: the AkaError matching a failed USIM result. */
export function akaFailureError(r: UsimMacFailure | UsimSyncFailure): AkaError {
  return r.result === 'mac_failure'
    ? new AkaError('AKA_MAC_FAILURE', 'AUTN: MAC-A does not verify (network authentication failure)')
    : new AkaError('AKA_SYNC_FAILURE', `AUTN: SQN not acceptable (${r.reason}); resynchronise with AUTS`);
}
