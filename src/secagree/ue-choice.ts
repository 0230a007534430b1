// UE side of the agreement (24.229 §5.1.1.2.1, §5.1.1.5.1; 33.203 §7.2; spec digest §5.1, §5.5,
// §10.5): build the Security-Client offer, and pick the Security-Server entry to use — the
// highest-q ipsec-3gpp entry the UE supports; an incomplete Security-Server means "abandon".
import {
  ENCRYPTION,
  encryptionAlgOfToken,
  INTEGRITY,
  integrityAlgOfToken,
  isValidPair,
  type EncryptionAlg,
  type IntegrityAlg,
} from '../ipsec/algorithms.ts';
import {
  IPSEC_3GPP,
  checkSpiPortSet,
  effectiveEalg,
  effectiveMod,
  effectiveProt,
  spiPortSetOf,
  type SecMechanism,
  type SpiPortSet,
  type UsableMod,
} from './mechanism.ts';
import { ALL_USABLE_MODS, bestByQ, fail, ipsecEntries, type Failure } from './negotiate.ts';
import type { AlgPair } from './policy.ts';

/** What the UE can run: the pairs it offered and the modes it applies. */
export interface UeSupport {
  /** The pairs the UE offered (and so can run). */
  readonly pairs: readonly AlgPair[];
  /** Default: trans and UDP-enc-tun (the UE applies whatever mode the P-CSCF chose). */
  readonly modes?: readonly UsableMod[];
}

/** The mechanism the UE takes from the P-CSCF's Security-Server (highest q it supports). */
export interface ServerChoice {
  readonly ok: true;
  readonly alg: IntegrityAlg;
  readonly ealg: EncryptionAlg;
  readonly mod: UsableMod;
  /** The P-CSCF's spi-c/spi-s/port-c/port-s (spi_pc, spi_ps, port_pc, port_ps). */
  readonly server: SpiPortSet;
  /** 0-based index of the chosen entry; Security-Verify echoes the whole list regardless. */
  readonly index: number;
}

/** The outcome of {@link chooseServerMechanism}: the choice or why none is usable. */
export type ServerChoiceResult = ServerChoice | Failure;

/** The parameters without which an ipsec-3gpp Security-Server entry cannot set up SAs. */
const REQUIRED = ['alg', 'spi-c', 'spi-s', 'port-c', 'port-s'] as const;

/**
 * Picks the Security-Server entry to build the temporary SA set from. Any ipsec-3gpp entry that
 * lacks alg, spi-c, spi-s, port-c or port-s ⇒ SECAGREE_SERVER_INCOMPLETE (the UE abandons the
 * registration and starts again with a new Call-ID); no supported entry ⇒
 * SECAGREE_NO_SERVER_MECHANISM.
 */
export function chooseServerMechanism(server: readonly SecMechanism[], supported: UeSupport | readonly AlgPair[]): ServerChoiceResult {
  const support: UeSupport = 'pairs' in supported ? supported : { pairs: supported };
  const modes = support.modes ?? ALL_USABLE_MODS;
  const entries = ipsecEntries(server);
  if (entries.length === 0) return fail('SECAGREE_NO_SERVER_MECHANISM', 'Security-Server has no ipsec-3gpp mechanism', 'Security-Server');
  for (const { m, index } of entries) {
    const set = spiPortSetOf(m);
    const missing = m.alg === undefined ? REQUIRED[0] : 'missing' in set ? set.missing : undefined;
    if (missing !== undefined) {
      return fail(
        'SECAGREE_SERVER_INCOMPLETE',
        `Security-Server mechanism ${index + 1}: ${missing} is missing (24.229 §5.1.1.5.1: abandon the registration)`,
        missing,
      );
    }
  }
  const usable = entries.filter(({ m }) => {
    const alg = integrityAlgOfToken(m.alg!);
    const ealg = encryptionAlgOfToken(effectiveEalg(m));
    const mod = effectiveMod(m);
    return (
      effectiveProt(m) === 'esp' &&
      mod !== 'tun' &&
      modes.includes(mod) &&
      alg !== undefined &&
      ealg !== undefined &&
      isValidPair(alg, ealg) &&
      support.pairs.some((p) => p.alg === alg && p.ealg === ealg)
    );
  });
  const best = bestByQ(usable);
  if (best === undefined) {
    return fail('SECAGREE_NO_SERVER_MECHANISM', 'no Security-Server entry uses an alg/ealg/mod this UE supports', 'Security-Server');
  }
  const m = best.m;
  return {
    ok: true,
    alg: integrityAlgOfToken(m.alg!)!,
    ealg: encryptionAlgOfToken(effectiveEalg(m))!,
    mod: effectiveMod(m) as UsableMod,
    server: spiPortSetOf(m) as SpiPortSet,
    index: best.index,
  };
}

/**
 * The UE's Security-Client offer (digest §4.3, §5.1): one entry per pair and mode, all with the
 * same SPIs and ports, no q (as deployed UEs send it), prot and mod spelled out.
 * @throws SecAgreeError when an SPI or port is out of range (misuse)
 */
export function buildSecurityClient(pairs: readonly AlgPair[], ue: SpiPortSet, modes: readonly UsableMod[] = ['trans']): SecMechanism[] {
  checkSpiPortSet(ue, 'Security-Client');
  return modes.flatMap((mod) =>
    pairs.map((p) => ({
      name: IPSEC_3GPP,
      prot: 'esp' as const,
      mod,
      spiC: ue.spiC,
      spiS: ue.spiS,
      portC: ue.portC,
      portS: ue.portS,
      alg: INTEGRITY[p.alg].token,
      ealg: ENCRYPTION[p.ealg].token,
      extra: [],
    })),
  );
}
