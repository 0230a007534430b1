// P-CSCF side of the agreement (33.203 §7.2, Annex H, Annex M; spec digest §5.4, §10.6, §15A.5):
// pick (alg, ealg, mod) from the UE's Security-Client by policy and build the Security-Server.
// Steps: resolve the policy → only ipsec-3gpp entries → consistent SPIs/ports → mode from the
// NAT test → first policy pair the UE offered with that mode and prot=esp.
import { ENCRYPTION, INTEGRITY, type EncryptionAlg, type IntegrityAlg } from '../ipsec/algorithms.ts';
import { SecAgreeError, type SecAgreeCode } from './errors.ts';
import {
  IPSEC_3GPP,
  checkSpiPortSet,
  effectiveEalg,
  effectiveMod,
  effectiveProt,
  formatQ,
  spiPortSetOf,
  type SecMechanism,
  type SpiPortSet,
  type UsableMod,
} from './mechanism.ts';
import { formatPair, resolvedAllowList, type SecAgreePolicy } from './policy.ts';

/** What the P-CSCF knows about the unprotected REGISTER beyond its headers. */
export interface NegotiationContext {
  /** 24.229 F.1: top Via address ≠ source of the unprotected REGISTER. */
  readonly natDetected: boolean;
}

/** The algorithms and mode the P-CSCF picked. */
export interface Choice {
  readonly alg: IntegrityAlg;
  readonly ealg: EncryptionAlg;
  readonly mod: UsableMod;
}

/** A successful negotiation: the choice, and the UE's SPIs and ports from its chosen mechanism. */
export interface Negotiated extends Choice {
  readonly ok: true;
  /** The UE's spi-c/spi-s/port-c/port-s (spi_uc, spi_us, port_uc, port_us). */
  readonly client: SpiPortSet;
  /** 0-based index of the chosen entry in the Security-Client list. */
  readonly index: number;
}

/** An expected failure: the caller rejects the REGISTER (494 per RFC 3329, or 403; digest §10.6). */
export interface Failure {
  readonly ok: false;
  readonly error: SecAgreeError;
}

/** The outcome of {@link negotiate}: the choice, or a failure to answer with 494 / 403. */
export type NegotiationResult = Negotiated | Failure;

export const fail = (code: SecAgreeCode, message: string, field?: string, value?: string): Failure => ({
  ok: false,
  error: new SecAgreeError(code, message, field, value),
});

export const ALL_USABLE_MODS: readonly UsableMod[] = ['trans', 'UDP-enc-tun'];

/** ipsec-3gpp entries with their 0-based index in the whole list. */
export function ipsecEntries(ms: readonly SecMechanism[]): { m: SecMechanism; index: number }[] {
  const out: { m: SecMechanism; index: number }[] = [];
  for (let index = 0; index < ms.length; index++) if (ms[index]!.name === IPSEC_3GPP) out.push({ m: ms[index]!, index });
  return out;
}

/** Absent q ranks below every explicit q; among equals the first wins (strict >). */
export function bestByQ<T extends { m: SecMechanism }>(xs: readonly T[]): T | undefined {
  let best: T | undefined;
  for (const x of xs) if (best === undefined || (x.m.q ?? -1) > (best.m.q ?? -1)) best = x;
  return best;
}

/**
 * Chooses the security mechanism for a Security-Client. Never returns a pair the UE did not
 * offer; skips other mechanisms, prot=ah, unknown algorithm names and pairs isValidPair refuses.
 * NAT detected → only `mod=UDP-enc-tun` entries (none offered ⇒ SECAGREE_NAT_NO_UDP_ENC_TUN; no
 * fallback to trans, which cannot cross a NAPT); no NAT → only `trans` entries (absent mod).
 * @throws SecAgreeError SECAGREE_BAD_POLICY when the policy itself is invalid (misuse)
 */
export function negotiate(client: readonly SecMechanism[], policy: SecAgreePolicy, ctx: NegotiationContext): NegotiationResult {
  const { allow, disabled } = resolvedAllowList(policy);
  const modes = policy.modes ?? ALL_USABLE_MODS;
  const want: UsableMod = ctx.natDetected ? 'UDP-enc-tun' : 'trans';
  const entries = ipsecEntries(client);
  if (entries.length === 0) return fail('SECAGREE_NO_COMMON_ALG', 'Security-Client offers no ipsec-3gpp mechanism', 'Security-Client');

  // A UE lists one entry per pair, all with the same SPIs and ports (digest §4.3); entries that
  // disagree leave the SA set ambiguous, so the whole offer is refused.
  const first = entries[0]!.m;
  for (const { m, index } of entries) {
    // Four comparisons per entry (every REGISTER): no tuple arrays unless one differs.
    if (m.spiC === first.spiC && m.spiS === first.spiS && m.portC === first.portC && m.portS === first.portS) continue;
    for (const [f, a, b] of [
      ['spi-c', first.spiC, m.spiC],
      ['spi-s', first.spiS, m.spiS],
      ['port-c', first.portC, m.portC],
      ['port-s', first.portS, m.portS],
    ] as const) {
      if (a !== b) {
        return fail(
          'SECAGREE_CLIENT_INCONSISTENT',
          `Security-Client mechanism ${index + 1}: ${f}=${b ?? '(absent)'} differs from ${f}=${a ?? '(absent)'} of mechanism ${entries[0]!.index + 1}`,
          f,
          String(b),
        );
      }
    }
  }

  if (!modes.includes(want)) {
    return ctx.natDetected
      ? fail('SECAGREE_NAT_NO_UDP_ENC_TUN', 'a NAT was detected but this P-CSCF policy does not allow mod=UDP-enc-tun', 'mod', want)
      : fail('SECAGREE_NO_COMMON_ALG', 'no NAT was detected but this P-CSCF policy does not allow mod=trans', 'mod', want);
  }
  if (ctx.natDetected && !entries.some(({ m }) => effectiveMod(m) === 'UDP-enc-tun')) {
    return fail(
      'SECAGREE_NAT_NO_UDP_ENC_TUN',
      'a NAT was detected but Security-Client offers no mod=UDP-enc-tun entry (33.203 Annex M)',
      'mod',
      'UDP-enc-tun',
    );
  }

  const candidates = entries.filter(({ m }) => effectiveProt(m) === 'esp' && effectiveMod(m) === want && m.alg !== undefined);
  for (const pair of allow) {
    // bestByQ over the candidates offering this pair, without building their list.
    const algToken = INTEGRITY[pair.alg].token;
    const ealgToken = ENCRYPTION[pair.ealg].token;
    let hit: (typeof candidates)[number] | undefined;
    for (const c of candidates) {
      if (c.m.alg === algToken && effectiveEalg(c.m) === ealgToken && (hit === undefined || (c.m.q ?? -1) > (hit.m.q ?? -1))) hit = c;
    }
    if (hit === undefined) continue;
    const set = spiPortSetOf(hit.m);
    if ('missing' in set) {
      return fail('SECAGREE_CLIENT_INCOMPLETE', `Security-Client mechanism ${hit.index + 1}: ${set.missing} is missing`, set.missing);
    }
    return { ok: true, alg: pair.alg, ealg: pair.ealg, mod: want, client: set, index: hit.index };
  }

  const offered = [...new Set(candidates.map(({ m }) => `${m.alg}/${effectiveEalg(m)}`))];
  const off = disabled.length > 0 ? `; deprecated pairs disabled by policy: ${disabled.map(formatPair).join(', ')}` : '';
  return fail(
    'SECAGREE_NO_COMMON_ALG',
    `no acceptable alg/ealg with prot=esp;mod=${want} in Security-Client (offered: ${offered.join(', ') || 'none'}; allowed: ${allow.map(formatPair).join(', ') || 'none'}${off})`,
    'alg',
  );
}

/**
 * The Security-Server entry the P-CSCF sends with the 401 (digest §5.4, Kamailio's shape):
 * `ipsec-3gpp;q=0.1;prot=esp;mod=…;spi-c=spi_pc;spi-s=spi_ps;port-c=port_pc;port-s=port_ps;alg=…;ealg=…`.
 * `server` holds the P-CSCF's own inbound SPIs and protected ports (§6.1), not the UE's.
 * @throws SecAgreeError when an SPI or port is out of range (misuse)
 */
export function buildSecurityServer(choice: Choice, server: SpiPortSet, q = 0.1): SecMechanism {
  checkSpiPortSet(server, 'Security-Server');
  formatQ(q);
  return {
    name: IPSEC_3GPP,
    q,
    prot: 'esp',
    mod: choice.mod,
    spiC: server.spiC,
    spiS: server.spiS,
    portC: server.portC,
    portS: server.portS,
    alg: INTEGRITY[choice.alg].token,
    ealg: ENCRYPTION[choice.ealg].token,
    extra: [],
  };
}
