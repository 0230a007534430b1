// Bidding-down protection (33.203 Annex H; spec digest §5.6, §10.7, §18.5): on the protected
// REGISTER, Security-Verify must equal the Security-Server the P-CSCF sent, and Security-Client
// must equal the one of the unprotected REGISTER. Compared semantically, first difference wins.
import { normaliseHyphens, parseSecurityHeader, parseSecurityHeaderOrThrow } from './codec.ts';
import { SecAgreeError, type SecAgreeCode } from './errors.ts';
import { IPSEC_3GPP, effectiveEalg, effectiveMod, effectiveProt, formatQ, type SecMechanism } from './mechanism.ts';
import type { Failure } from './negotiate.ts';

/** Header values as received (one string per header instance) or an already parsed list. */
export type MechanismsInput = string | readonly string[] | readonly SecMechanism[];

/** The outcome of a bidding-down check (33.203 Annex H): ok, or the difference found. */
export type VerifyResult = { readonly ok: true } | Failure;

const OK: VerifyResult = { ok: true };

const isParsed = (x: MechanismsInput): x is readonly SecMechanism[] => Array.isArray(x) && (x.length === 0 || typeof x[0] === 'object');

const norm = (s: string): string => normaliseHyphens(s).toLowerCase();
const show = (v: string | number | undefined): string => (v === undefined ? '(absent)' : String(v));

/**
 * The comparable fields of one mechanism, in the order differences are reported. Absent
 * prot/mod/ealg compare equal to their Annex H defaults (esp, trans, null): same meaning, no
 * bidding down. Extensions compare as a sorted list, so parameter order never matters.
 */
function fieldsOf(m: SecMechanism): [string, string][] {
  const f: [string, string][] = [
    ['name', norm(m.name)],
    ['q', m.q === undefined ? '(absent)' : formatQ(m.q)],
  ];
  if (norm(m.name) === IPSEC_3GPP) {
    f.push(
      ['prot', effectiveProt(m)],
      ['mod', effectiveMod(m)],
      ['spi-c', show(m.spiC)],
      ['spi-s', show(m.spiS)],
      ['port-c', show(m.portC)],
      ['port-s', show(m.portS)],
      ['alg', m.alg === undefined ? '(absent)' : norm(m.alg)],
      ['ealg', norm(effectiveEalg(m))],
    );
  }
  const extra = m.extra.map((e) => (e.value === undefined ? norm(e.name) : `${norm(e.name)}=${normaliseHyphens(e.value)}`)).sort();
  f.push(['extensions', extra.join(';') || '(none)']);
  return f;
}

interface Difference {
  readonly index?: number;
  readonly field: string;
  readonly expected: string;
  readonly received: string;
}

/** The first semantic difference between two mechanism lists, or undefined when they are equal. */
export function firstDifference(expected: readonly SecMechanism[], received: readonly SecMechanism[]): Difference | undefined {
  const n = Math.min(expected.length, received.length);
  for (let i = 0; i < n; i++) {
    const a = fieldsOf(expected[i]!);
    const b = fieldsOf(received[i]!);
    // Field 0 is the name; once names agree both lists have the same fields in the same order.
    for (let k = 0; k < a.length; k++) {
      const [field, va] = a[k]!;
      const vb = b[k]?.[1] ?? '(absent)';
      if (va !== vb) return { index: i, field, expected: va, received: vb };
    }
  }
  if (expected.length !== received.length) {
    return { field: 'mechanism count', expected: String(expected.length), received: String(received.length) };
  }
  return undefined;
}

function compare(
  expected: MechanismsInput,
  received: MechanismsInput,
  header: string,
  code: SecAgreeCode,
  was: string,
  now: string,
): VerifyResult {
  // `expected` is what this side sent or stored: trusted, so a failure to parse it is a bug.
  const exp = isParsed(expected) ? expected : parseSecurityHeaderOrThrow(expected, header);
  const parsed = isParsed(received) ? { ok: true as const, value: received } : parseSecurityHeader(received, header);
  if (!parsed.ok) {
    // An unparsable copy is not the header that was sent: report it as a mismatch, not a throw.
    const e = parsed.error;
    return { ok: false, error: new SecAgreeError(code, `${header} does not parse (${e.message})`, e.field, e.value) };
  }
  const rec: readonly SecMechanism[] = parsed.value;
  const d = firstDifference(exp, rec);
  if (d === undefined) return { ok: true };
  const where = d.index === undefined ? header : `${header} mechanism ${d.index + 1}`;
  return {
    ok: false,
    error: new SecAgreeError(code, `${where}: ${d.field} differs: ${was} ${d.expected}, ${now} ${d.received}`, d.field, d.received),
  };
}

/**
 * Security-Verify of the protected REGISTER against the Security-Server sent in the 401: same
 * mechanisms in the same order, same q and parameters. Mismatch ⇒ SECAGREE_VERIFY_MISMATCH naming
 * the first differing field; the P-CSCF then rejects and deletes the temporary SAs (§10.7).
 * An unparsable `received` is a mismatch too; an unparsable `sentServer` throws (misuse).
 * `sentText`: the Security-Server value exactly as it went out (serializeMechanisms of `sentServer`);
 * a Security-Verify that repeats it verbatim is accepted without parsing.
 */
export function verifySecurityVerify(received: MechanismsInput, sentServer: MechanismsInput, sentText?: string): VerifyResult {
  // The UE echoes the Security-Server it got (RFC 3329 §2.3.1): the same text parses to the same
  // mechanisms, so an exact copy of what was sent needs no parsing. Anything else is compared field by field.
  if (sentText !== undefined && typeof received !== 'string' && received.length === 1 && received[0] === sentText) return OK;
  if (sentText !== undefined && received === sentText) return OK;
  return compare(sentServer, received, 'Security-Verify', 'SECAGREE_VERIFY_MISMATCH', 'sent', 'received');
}

/**
 * Security-Client of the protected REGISTER against the one of the unprotected REGISTER
 * (Annex H: "identical"). Mismatch ⇒ SECAGREE_CLIENT_CHANGED naming the first differing field.
 */
export function verifySecurityClientUnchanged(first: MechanismsInput, later: MechanismsInput): VerifyResult {
  return compare(first, later, 'Security-Client', 'SECAGREE_CLIENT_CHANGED', 'first', 'now');
}
