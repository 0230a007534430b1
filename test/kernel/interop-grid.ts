// The kernel-interop grid, shared by the guest orchestrator and the host test: modes × families ×
// algorithm pairs, the addresses, ports and SPIs of each 33.203 SA set, the SIP messages, and the
// shape of the JSON result the guest writes (the host asserts on it).
import { allValidPairs, type EncryptionAlg, type IntegrityAlg } from '../../src/ipsec/algorithms.ts';
import type { SaSetPeer } from '../../src/ipsec/sa-set.ts';
import type { SaName } from '../../src/ipsec/sa.ts';
import type { EspMode } from '../../src/ipsec/types.ts';

export type Family = 'IPv4' | 'IPv6';
export type Side = 'kernel' | 'userspace';
export const MODES: readonly EspMode[] = ['transport', 'udp-enc-tunnel'];
export const FAMILIES: readonly Family[] = ['IPv4', 'IPv6'];
export const SA_NAMES: readonly SaName[] = ['SA1', 'SA2', 'SA3', 'SA4'];
/** Messages per SA and direction: several, so sequence numbers advance and padding lengths vary. */
export const MESSAGES_PER_SA = 3;

/** Netns "k" (kernel ESP) and "u" (our userspace ESP) on a veth pair: documentation prefixes only. */
export const ADDR: Readonly<Record<Family, Readonly<Record<Side, string>>>> = {
  IPv4: { kernel: '192.0.2.1', userspace: '192.0.2.2' },
  IPv6: { kernel: '2001:db8::1', userspace: '2001:db8::2' },
};
export const NETNS: Readonly<Record<Side, string>> = { kernel: 'imsec-k', userspace: 'imsec-u' };

export interface Batch {
  readonly index: number;
  readonly mode: EspMode;
  readonly family: Family;
  readonly name: string;
}

/** One VM boot runs every batch; a batch is one mode × family with all pairs installed at once. */
export function batches(): Batch[] {
  const out: Batch[] = [];
  for (const mode of MODES) for (const family of FAMILIES) out.push({ index: out.length, mode, family, name: `${mode}-${family}` });
  return out;
}

export interface SetSpec {
  readonly id: string;
  readonly batch: string;
  readonly mode: EspMode;
  readonly family: Family;
  readonly alg: IntegrityAlg;
  readonly ealg: EncryptionAlg;
  /** Which 33.203 role the kernel side plays (alternates, so both roles' xfrm export is used). */
  readonly kernelRole: 'ue' | 'pcscf';
  /** 32 (Kamailio's, the kernel's legacy bitmap) or 64 (our default, the kernel's ESN bitmap). */
  readonly replayWindow: number;
  readonly ue: SaSetPeer;
  readonly pcscf: SaSetPeer;
  /** reqid base of this set's four kernel SAs (unique in the batch). */
  readonly reqidBase: number;
}

export function setId(mode: EspMode, family: Family, alg: IntegrityAlg, ealg: EncryptionAlg): string {
  return `${mode === 'transport' ? 'trans' : 'udpenc'}-${family === 'IPv4' ? 'v4' : 'v6'}-${alg}-${ealg}`;
}

/** The SA sets of one batch: every valid pair, distinct ports and SPIs (all live at once). */
export function batchSpecs(b: Batch): SetSpec[] {
  return allValidPairs().map(({ alg, ealg }, i) => {
    const kernelRole = i % 2 === 0 ? 'pcscf' : 'ue';
    const ueSide: Side = kernelRole === 'ue' ? 'kernel' : 'userspace';
    const pSide: Side = kernelRole === 'pcscf' ? 'kernel' : 'userspace';
    // Ports 20000 + 1000·batch + 10·pair (+0..3); SPIs 0x<batch+1><pair><1..4>00, all ≥ 256.
    const port = 20000 + 1000 * b.index + 10 * i;
    const spi = (n: number) => ((b.index + 1) << 16) | (i << 8) | (n << 4);
    return {
      id: setId(b.mode, b.family, alg, ealg),
      batch: b.name,
      mode: b.mode,
      family: b.family,
      alg,
      ealg,
      kernelRole,
      replayWindow: i % 4 < 2 ? 32 : 64,
      ue: { ip: ADDR[b.family][ueSide], portC: port, portS: port + 1, spiC: spi(1), spiS: spi(2) },
      pcscf: { ip: ADDR[b.family][pSide], portC: port + 2, portS: port + 3, spiC: spi(3), spiS: spi(4) },
      reqidBase: 1 + 4 * i,
    };
  });
}

/** Who sends on an SA: the UE sends SA1 and SA4, the P-CSCF SA2 and SA3 (spec digest §6.2). */
export function senderOf(spec: SetSpec, sa: SaName): Side {
  const ueSends = sa === 'SA1' || sa === 'SA4';
  return ueSends === (spec.kernelRole === 'ue') ? 'kernel' : 'userspace';
}

/**
 * A SIP message for SA `sa`, number `m`: requests on SA1/SA2, responses on SA3/SA4 (as 33.203 uses
 * them), with a body whose length varies so that every padding length of a 16-octet block occurs.
 */
export function sipMessage(spec: SetSpec, sa: SaName, m: number, from: string, fromPort: number): string {
  const tag = `${spec.id}-${sa}-${m}`;
  const body = `${tag} ${'.'.repeat((m * 5 + SA_NAMES.indexOf(sa) * 3 + spec.reqidBase) % 16)}`;
  const host = from.includes(':') ? `[${from}]` : from;
  const start = sa === 'SA1' || sa === 'SA2' ? `MESSAGE sip:peer@ims.example SIP/2.0` : `SIP/2.0 200 OK`;
  return (
    `${start}\r\nVia: SIP/2.0/UDP ${host}:${fromPort};branch=z9hG4bK-${tag}\r\nCall-ID: ${tag}\r\n` +
    `CSeq: ${m + 1} MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`
  );
}

/** The SPI on the wire of each SA (spec digest §6.2: SA1 spi_ps, SA2 spi_us, SA3 spi_uc, SA4 spi_pc). */
export function spiOf(spec: SetSpec, sa: SaName): number {
  return { SA1: spec.pcscf.spiS, SA2: spec.ue.spiS, SA3: spec.ue.spiC, SA4: spec.pcscf.spiC }[sa];
}

// ------------------------------------------------------------------ the guest's JSON result

export interface SentMessage {
  readonly sa: SaName;
  readonly sender: Side;
  readonly text: string;
  readonly from: { address: string; port: number };
  readonly to: { address: string; port: number };
  error?: string;
}

/** What a receiving application saw (kernel side: a UDP socket; userspace side: our endpoint). */
export interface ReceivedMessage {
  readonly setId?: string;
  readonly sa?: SaName;
  readonly local: { address: string; port: number };
  readonly remote: { address: string; port: number };
  readonly outerSrc?: string;
  readonly outerEncapSrcPort?: number;
  readonly text: string;
}

/** Our per-SA view (SaSet.summary rows, trimmed). */
export interface OurSa {
  name: SaName;
  direction: 'in' | 'out';
  spi: number;
  seq: number;
  packets: number;
  drops: Record<string, number>;
}

/** Added to the sequence number of a forged packet (a fresh number, so only the ICV can refuse it). */
export const FORGED_SEQ_DELTA = 1000;

/**
 * A packet that must be refused. `replay`: a captured packet resent as is (the replay window refuses
 * it). `forged`: a captured packet with its sequence number moved FORGED_SEQ_DELTA ahead and the old
 * ICV (the ICV check refuses it, and the window must not move). `to`: who must refuse it.
 */
export interface AttackRecord {
  readonly kind: 'replay' | 'forged';
  readonly to: Side;
  readonly sa: SaName;
  readonly spi: number;
  error?: string;
}

export interface SetResult {
  readonly spec: SetSpec;
  /** `ip xfrm` commands (from xfrmCommands) that the kernel refused, with its message. */
  installError?: string;
  userspaceError?: string;
  sent: SentMessage[];
  attacks: AttackRecord[];
}

export interface KernelStateSnapshot {
  [spiHex: string]: import('./xfrm-parse.ts').XfrmStateStats;
}

export interface BatchResult {
  readonly batch: Batch;
  readonly sets: SetResult[];
  /** Everything each side's applications received (drained after the exchange, and after the attacks: none expected). */
  kernelReceived: ReceivedMessage[];
  userspaceReceived: ReceivedMessage[];
  lateKernelReceived: ReceivedMessage[];
  lateUserspaceReceived: ReceivedMessage[];
  /** Kernel SA counters after the exchange and after the attacks, by SPI. */
  kernelStates: { exchanged: KernelStateSnapshot; attacked: KernelStateSnapshot };
  /** Our SA counters, by set id, after the exchange and after the attacks. */
  ours: { exchanged: Record<string, OurSa[]>; attacked: Record<string, OurSa[]> };
  /** Our backend's SAD-level counters (unknown SPI, malformed, no endpoint …) after the attacks. */
  backendCounters: Record<string, number>;
  /** /proc/net/xfrm_stat deltas in the kernel netns, for the exchange and for the attacks. */
  xfrmStat: { exchange: Record<string, number>; attacks: Record<string, number> };
  ms: number;
  errors: string[];
}

export interface GuestResult {
  readonly kernel: string;
  batches: BatchResult[];
  errors: string[];
  timings: Record<string, number>;
  /** tcpdump's "packets dropped by kernel" for capture.pcap (NaN if it did not say). */
  captureDrops?: number;
}
