// What the SIP layer and the network functions need from an IPsec backend: install and remove
// SA sets, allocate SPIs, and protected endpoints bound to the protected ports that deliver each
// message with the SA set it arrived on (design: strongSwan's kernel_ipsec_t, cut to IMS).
import type { ReceiveHandler, SendFailureSink, SipTransport } from '../../sip/transport.ts';
import type { EncryptionAlg, IntegrityAlg } from '../algorithms.ts';
import type { Sa, SaName } from '../sa.ts';
import type { SaSet } from '../sa-set.ts';
import type { EspMode } from '../types.ts';

/** An IP address (v4 or v6, textual) and a port. */
export interface Addr {
  readonly address: string;
  readonly port: number;
}

/** What came with a message received over an SA. */
export interface ProtectedContext {
  readonly set: SaSet;
  readonly sa: Sa;
  /** Inner (selector) addresses and ports of the message. */
  readonly local: Addr;
  readonly remote: Addr;
  /** Outer source of the authenticated packet (a UE's public address behind a NAT). */
  readonly outerSrc: string;
  /** Outer UDP source port of an authenticated ESP-in-UDP packet (port_Uenc, spec §15A point 2). */
  readonly outerEncapSrcPort?: number;
}

/** Receives each SIP payload that arrived over an SA, with the SA set and SA it came through. */
export type ProtectedHandler = (bytes: Uint8Array, ctx: ProtectedContext) => void;

/** A SIP endpoint on one local protected port (port_uc, port_us, port_pc or port_ps). */
export interface ProtectedEndpoint {
  readonly local: Addr;
  /**
   * Sends one SIP message to `to` over an SA of this endpoint's port pair. With `set`, exactly
   * that set is used (the P-CSCF answers a protected REGISTER over the new set although the
   * current one has the same port pair); without it the newest usable set is chosen: current,
   * then temporary, then old. Resolves to the set used; rejects with BackendError when none fits.
   */
  send(bytes: Uint8Array, to: Addr, opts?: { set?: SaSet }): Promise<SaSet>;
  /**
   * `send` without a Promise per message (the transaction layer's path, see SipTransport.post): a
   * failure, now or later, goes to `sink` once; nothing is thrown. Optional: callers fall back to send.
   */
  post?(bytes: Uint8Array, to: Addr, set: SaSet | undefined, sink: SendFailureSink): void;
  onMessage(handler: ProtectedHandler): void;
  close(): void;
}

/** A backend's inbound drop and traffic counters (what `imsec pcscf` reports and exports as metrics). */
export interface BackendCounters {
  readonly unknownSpi: number;
  readonly malformed: number;
  /** NAT-keepalives received (RFC 3948 §2.3): ignored, never a sign of life. */
  readonly keepalive: number;
  /** NAT-keepalives sent (only a backend on the NATed side sends them, spec digest §15A point 3). */
  readonly keepalivesSent?: number;
  readonly nonEsp: number;
  /** Authenticated packets for a port with no endpoint open. */
  readonly noEndpoint: number;
}

/** What a backend can carry, asked before an offer is made or a set installed. */
export interface BackendFeatures {
  readonly modes: readonly EspMode[];
  /** SIP transports inside the SAs: udp everywhere, tcp where `openTcp` exists (xfrm). */
  readonly transports: readonly ('udp' | 'tcp')[];
  readonly integrity: readonly IntegrityAlg[];
  readonly encryption: readonly EncryptionAlg[];
}

/** One SA's counters as the backend sees them (the kernel's for xfrm, the engine's otherwise). */
export interface SaStats {
  readonly name: SaName;
  readonly spi: number;
  readonly packets: number;
  readonly bytes: number;
  readonly replayDrops: number;
  readonly integrityFailures: number;
  /** Outbound: the last sequence number sent; inbound: the highest one received. */
  readonly seq: number;
}

/** Where the SAs of a UE or P-CSCF live: installs and deletes SA sets, allocates SPIs, and opens the protected ports' endpoints. Implemented by {@link UserspaceBackend} and {@link XfrmBackend}. */
export interface IpsecBackend {
  readonly name: 'userspace' | 'xfrm' | 'memory';
  /**
   * This side's local ESP-in-UDP port (RFC 3948): what a UE writes into its UDP-enc-tun sets and
   * a P-CSCF advertises (spec digest §15A point 1). 4500 unless configured otherwise.
   */
  readonly encapPort: number;
  readonly features: BackendFeatures;
  /** Per-SA counters of an installed set, in the set's SA order; [] for a set not installed. */
  saStats(set: SaSet): SaStats[];
  /** Fresh inbound SPIs for `localIp`: unique among this backend's live inbound SAs, never 0–255. */
  allocateSpis(localIp: string, n: number): number[];
  install(set: SaSet): Promise<void>;
  remove(set: SaSet): Promise<void>;
  /**
   * A set read back from a state store, already authenticated (issue 13 §3). Absent: install()
   * (userspace SAs die with their process and are built again). xfrm adopts the SAs the kernel kept
   * and refuses a set the kernel does not hold as stored.
   */
  restore?(set: SaSet): Promise<void>;
  /** After the restores: removes what a previous run of this backend left and no set owns (xfrm: our tagged SAs and policies). */
  reconcile?(): { readonly deletedSas: number; readonly deletedPolicies: number };
  /** Leaves the SAs in place for the next run, which restores them (xfrm: the kernel keeps them); close() then removes nothing. */
  handOver?(): void;
  /** Opens (or returns the already open) protected endpoint on a local address and port. */
  openEndpoint(local: Addr): Promise<ProtectedEndpoint>;
  /**
   * Brings the backend's copy of a set in line with the set after a lifetime or state change
   * (SaSet.setLifetime, temporary → current → old): xfrm rewrites the kernel SAs' hard lifetimes
   * (UPDSA) and the policies. Absent: the backend reads the set itself (userspace). Throws when the
   * backend cannot follow (the caller reports it: the kernel SA would die early, issue 11 §1).
   */
  refresh?(set?: SaSet): void;
  /** Where outbound ESP-in-UDP for this set goes when a NAT rewrote the peer's port (Annex M). */
  setPeerEncap(set: SaSet, peer: Addr): void;
  /**
   * SIP over TCP on a protected port (spec digest §6.2), for backends whose SAs carry any protocol
   * (xfrm): `server` listens on port_us / port_ps, `client` connects from port_uc / port_pc. Each
   * message's ReceiveContext.via is its ProtectedContext. Absent: the backend carries UDP only.
   */
  openTcp?(opts: {
    local: Addr;
    role: 'server' | 'client';
    onReceive: ReceiveHandler;
    onError?: (e: Error) => void;
  }): Promise<SipTransport>;
  readonly sets: readonly SaSet[];
  readonly counters: BackendCounters;
  close(): Promise<void>;
}
