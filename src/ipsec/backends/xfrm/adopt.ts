// Taking over kernel SAs at a restart (issue 13 §3). With the xfrm backend the kernel keeps the SAs
// and policies when the P-CSCF process dies (even by SIGKILL); a P-CSCF restarted with its state
// store adopts them instead of deleting and re-adding them.
//
// Why adopting is right: the kernel SA holds the only exact sequence-number state — its outbound
// counter counts every packet it sent (the process never sees the numbers), its replay window every
// packet it accepted. Kept as they are, no number is sent twice and nothing accepted before the
// crash is accepted again, without a guess; the store's marks could only approximate them.
//
// What "the same SA" means: identity dst + SPI + ESP, our tag in the selector (a foreign SA with
// that identity is never taken), and every parameter the stored set fixes — source, mode, selector
// (addresses, ports, protocol), algorithms, replay window, encapsulation. The keys are not compared:
// a kernel under lockdown redacts them in GETSA, and an SA with our tag, SPI and parameters was
// written by us. The far-side ESP-in-UDP port may differ from the configured one: a NAT moved it
// (Annex M) and the kernel SA followed; it is adopted as the kernel has it.
import { canonicalAddress, type Sa } from '../../sa.ts';
import { DEFAULT_REPLAY_WINDOW } from '../../types.ts';
import type { SaRecord } from './messages.ts';
import { policyKey, selectorOf, wipeAlgorithms, xfrmAlgorithms, xfrmModeOf, type KernelPeer } from './plan.ts';

/** Why the kernel's SA is not the stored `sa` (undefined: it is, adopt it). */
export function kernelMismatch(sa: Sa, r: SaRecord | undefined, tag: number): string | undefined {
  const p = sa.params;
  const name = `${sa.name} spi 0x${sa.spi.toString(16)}`;
  if (!r) return `${name}: not in the kernel`;
  if (r.sel?.user !== tag) return `${name}: in the kernel without our tag (not ours)`;
  if (r.src !== canonicalAddress(p.src)) return `${name}: source ${r.src}, stored ${p.src}`;
  if (r.mode !== xfrmModeOf(p)) return `${name}: mode ${String(r.mode)}, stored ${xfrmModeOf(p)}`;
  if (policyKey('in', r.sel) !== policyKey('in', selectorOf(p, tag))) return `${name}: selector differs from the stored ports/addresses`;
  const a = xfrmAlgorithms(p);
  const want = { auth: a.auth?.name, crypt: a.crypt?.name, aead: a.aead?.name };
  wipeAlgorithms(a);
  if (r.algs.auth !== want.auth || r.algs.crypt !== want.crypt || r.algs.aead !== want.aead)
    return `${name}: algorithms ${JSON.stringify(r.algs)}, stored ${JSON.stringify(want)}`;
  const window = p.replayWindow ?? DEFAULT_REPLAY_WINDOW;
  if (r.replayWindow !== window) return `${name}: replay window ${r.replayWindow}, stored ${window}`;
  const enc = p.mode === 'udp-enc-tunnel' ? (p.encap ?? { srcPort: 4500, dstPort: 4500 }) : undefined;
  if (!enc !== !r.encap) return `${name}: ESP-in-UDP ${r.encap ? 'in the kernel only' : 'stored only'}`;
  // Our own port is fixed; the peer's may have moved (outbound: dport, inbound: sport).
  if (enc && r.encap && (sa.direction === 'out' ? r.encap.sport !== enc.srcPort : r.encap.dport !== enc.dstPort))
    return `${name}: our ESP-in-UDP port differs from the stored one`;
  return undefined;
}

/** Where the adopted SA points (the kernel's peer: a NAT-moved port is kept). */
export function adoptedPeer(r: SaRecord): KernelPeer {
  return { dst: r.dst, ...(r.encap ? { encap: { sport: r.encap.sport, dport: r.encap.dport } } : {}) };
}
