// The SAD: installed SA sets, inbound lookup by (destination, SPI) (RFC 4303 §4.4.2, §3.4.2),
// the inbound pipeline and the outbound send. Inbound order: parse → RFC 3948 classify → lookup →
// sa.open (replay pre-check, ICV, window, decrypt, padding, NH 59) → inner selectors → deliver.
import { type EspDrop, type InnerSegment, parseInner, parseWire, sealToWire } from './esp/index.ts';
import { IpsecError } from './errors.ts';
import { canonicalAddress, type Sa, sameAddress } from './sa.ts';
import { type SaSet, selectOutbound } from './sa-set.ts';
import { NAT_T_PORT } from './types.ts';
import { randomUint32 } from '../util/random-hex.ts';

/** Why the SAD dropped an inbound datagram: an ESP pipeline drop (RFC 4303 §3.4), a NAT-keepalive (RFC 3948 §2.3) or something that is not ESP. */
export type SadDrop = EspDrop | 'keepalive' | 'non-esp';

/** The SAD's verdict on one inbound datagram: the opened payload with its set and SA, or a drop with its reason. */
export type ReceiveResult =
  | {
      ok: true;
      set: SaSet;
      sa: Sa;
      seq: number;
      inner: InnerSegment;
      /** Outer UDP source port of an authenticated UDP-encapsulated packet (port_Uenc, §15A point 2). */
      outerEncapSrcPort?: number;
      /** Outer source address of the authenticated packet (the UE's public address behind a NAT). */
      outerSrc: string;
    }
  | { ok: false; drop: SadDrop; spi?: number; seq?: number; set?: SaSet; sa?: Sa };

/** Where an inbound ESP datagram came from and arrived at (outer addresses, and UDP ports when encapsulated). */
export interface EspArrival {
  readonly src: string;
  readonly dst: string;
  /** Outer UDP ports when the ESP came UDP-encapsulated (RFC 3948). */
  readonly encap?: { readonly srcPort: number; readonly dstPort: number };
  readonly esp: Uint8Array;
}

/** Drops counted on the SAD itself (no SA was found to count them on). */
export interface SadCounters {
  unknownSpi: number;
  malformed: number;
  keepalive: number;
  nonEsp: number;
}

/** Options of the security association database (`Sad`). */
export interface SadOptions {
  /** Extra UDP ports that carry ESP-in-UDP besides 4500 (spec digest §15A point 1). */
  readonly encapPorts?: readonly number[];
  /**
   * If given, hard-expired sets never match a lookup (checked on the hit only). The SAD never
   * changes a set's state nor drops it: expiry belongs to the set's owner (sa-slots.ts).
   */
  readonly now?: () => number;
  /** Randomness for allocateSpis (tests); default node:crypto. */
  readonly randomUint32?: () => number;
}

const SPI_MIN = 256;

/** An SPI (0..2^32-1) as the int32 of the same 32 bits: a small integer on every 64-bit build, never a boxed number. */
function spiKey(spi: number): number {
  return spi | 0;
}
const SPI_SPAN = 0x1_0000_0000 - SPI_MIN;

/** Not safe for concurrent use (one event loop owns it). */
export class Sad {
  readonly counters: SadCounters = { unknownSpi: 0, malformed: 0, keepalive: 0, nonEsp: 0 };
  readonly #sets = new Set<SaSet>();
  /**
   * Destination (canonical text) → SPI → inbound SA; only live inbound SAs of installed sets. Two
   * levels rather than one "dst|spi" string key: a host has one or a few local addresses, and a
   * string per SA was ~60 bytes (issue 9 §2). The SA itself is the entry (its set is `sa.set`).
   * The SPI is keyed as a signed 32-bit integer (`spiKey`): an SPI above 2^31-1 as it is would be a
   * boxed number per key.
   */
  readonly #inbound = new Map<string, Map<number, Sa>>();
  readonly #encapPorts: number[];
  readonly #now: (() => number) | undefined;
  readonly #rand: () => number;

  constructor(opts: SadOptions = {}) {
    this.#encapPorts = [...new Set([NAT_T_PORT, ...(opts.encapPorts ?? [])])];
    this.#now = opts.now;
    this.#rand = opts.randomUint32 ?? randomUint32;
  }

  get sets(): readonly SaSet[] {
    return [...this.#sets];
  }

  /** Whether `set` is installed here. */
  has(set: SaSet): boolean {
    return this.#sets.has(set);
  }

  /** Installs a set: its inbound SPIs must be free for their destination (33.203 §7.1). */
  install(set: SaSet): void {
    if (this.#sets.has(set)) return;
    if (!set.live) throw new IpsecError('IPSEC_SA_DELETED', `SA set ${set.id} is deleted: cannot install`);
    for (const sa of set.inbound) {
      const other = this.#find(sa.dst, sa.spi);
      if (other && other.live && other.set!.live) {
        throw new IpsecError('IPSEC_SPI_IN_USE', `SPI ${sa.spi} is already live for ${sa.dst} (${other.name} of set ${other.set!.id})`);
      }
    }
    for (const sa of set.inbound) {
      const dst = canonicalAddress(sa.params.dst);
      (this.#inbound.get(dst) ?? this.#inbound.set(dst, new Map()).get(dst)!).set(spiKey(sa.spi), sa);
    }
    // ESP-in-UDP may arrive on a configured encapsulation port other than 4500 (§15A point 1).
    for (const sa of set.inbound) {
      const port = sa.params.encap?.dstPort;
      if (port !== undefined && !this.#encapPorts.includes(port)) this.#encapPorts.push(port);
    }
    this.#sets.add(set);
  }

  /** Removes a set (it stays in whatever state it is in; callers normally apply 'deleted' first). */
  remove(set: SaSet): void {
    if (!this.#sets.delete(set)) return;
    for (const sa of set.inbound) {
      const dst = canonicalAddress(sa.params.dst);
      const bySpi = this.#inbound.get(dst);
      if (bySpi?.get(spiKey(sa.spi)) !== sa) continue;
      bySpi.delete(spiKey(sa.spi));
      if (bySpi.size === 0) this.#inbound.delete(dst);
    }
  }

  /**
   * `n` distinct random SPIs in 256..2^32-1, unused by the installed inbound SAs for `dst`
   * (the receiver picks its inbound SPIs, spec digest §6.1). O(1) expected: one map probe per try.
   */
  allocateSpis(dst: string, n = 2): number[] {
    const out: number[] = [];
    for (let tries = 0; out.length < n; tries++) {
      if (tries > 1000 * n) throw new IpsecError('IPSEC_SPI_IN_USE', `could not find ${n} free SPIs for ${dst}`);
      const spi = SPI_MIN + (this.#rand() % SPI_SPAN);
      if (!out.includes(spi) && !this.#find(dst, spi)) out.push(spi);
    }
    return out;
  }

  /** The inbound SA for (dst, spi), live or not (an installed SA always has its set). */
  #find(dst: string, spi: number): Sa | undefined {
    return this.#inbound.get(canonicalAddress(dst))?.get(spiKey(spi));
  }

  /** The live inbound SA for (dst, spi), if any. */
  lookup(dst: string, spi: number): { set: SaSet; sa: Sa } | undefined {
    const sa = this.#live(dst, spi);
    return sa && { set: sa.set!, sa };
  }

  #live(dst: string, spi: number): Sa | undefined {
    const sa = this.#find(dst, spi);
    if (!sa) return undefined;
    const set = sa.set!;
    // Hard-expired SAs do not match (only the hit set is looked at, so lookups stay O(1)); deleting
    // the set is its owner's job, on its own timer (one owner of the lifecycle, issue 10 §2).
    if (this.#now && set.expiresAt !== undefined && this.#now() >= set.expiresAt) return undefined;
    return sa.live && set.live ? sa : undefined;
  }

  /** Inbound pipeline for one whole IP packet as it came off the wire. */
  receive(ip: Uint8Array): ReceiveResult {
    const w = parseWire(ip, { encapPorts: this.#encapPorts });
    switch (w.kind) {
      case 'esp':
        return this.receiveEsp({ src: w.src, dst: w.dst, esp: w.esp, ...(w.encap ? { encap: w.encap } : {}) });
      case 'keepalive':
        // RFC 3948 §2.3/§4: ignore quietly, and never take it as a sign of life.
        this.counters.keepalive++;
        return { ok: false, drop: 'keepalive' };
      case 'non-esp':
      case 'other':
        this.counters.nonEsp++;
        return { ok: false, drop: 'non-esp' };
      case 'malformed':
        this.counters.malformed++;
        return { ok: false, drop: 'malformed' };
    }
  }

  /** Inbound pipeline from the ESP packet on (after the IP/UDP layers, e.g. from a UDP socket on 4500). */
  receiveEsp(a: EspArrival): ReceiveResult {
    if (a.esp.length < 8) {
      this.counters.malformed++;
      return { ok: false, drop: 'short' };
    }
    const spi = new DataView(a.esp.buffer, a.esp.byteOffset, 8).getUint32(0);
    const sa = this.#live(a.dst, spi);
    if (!sa) {
      // RFC 4303 §3.4.2: no valid SA → discard (an auditable event: counted on the SAD).
      this.counters.unknownSpi++;
      return { ok: false, drop: 'unknown-spi', spi };
    }
    const set = sa.set!;
    const p = sa.params;
    // The SA's framing is part of its policy: tunnel SAs arrive UDP-encapsulated, transport ones not.
    // Checked before the ICV, so nothing but the drop counter moves.
    if ((p.mode === 'udp-enc-tunnel') !== (a.encap !== undefined)) {
      sa.countDrop('selector');
      return { ok: false, drop: 'selector', spi, set, sa };
    }
    const r = sa.open(a.esp);
    if (!r.ok) return { ok: false, drop: r.drop, spi, set, sa, ...(r.seq !== undefined ? { seq: r.seq } : {}) };
    const inner = parseInner(p.mode, r.nextHeader, r.payload, { src: a.src, dst: a.dst });
    if (!inner) {
      sa.countDrop('malformed');
      return { ok: false, drop: 'malformed', spi, seq: r.seq, set, sa };
    }
    // RFC 4303 §5.2 / 33.203 §7.1: the decrypted packet must match the SA's selectors (addresses
    // and ports; protocol any). In tunnel mode the inner addresses are checked (RFC 3948 §3.1.1).
    const wantSrc = p.mode === 'udp-enc-tunnel' ? (p.innerSrc ?? p.src) : p.src;
    const wantDst = p.mode === 'udp-enc-tunnel' ? (p.innerDst ?? p.dst) : p.dst;
    if (
      !sameAddress(inner.src, wantSrc) ||
      !sameAddress(inner.dst, wantDst) ||
      inner.srcPort !== p.srcPort ||
      inner.dstPort !== p.dstPort
    ) {
      sa.countDrop('selector');
      return { ok: false, drop: 'selector', spi, seq: r.seq, set, sa };
    }
    sa.countDelivered(inner.payload.length);
    return { ok: true, set, sa, seq: r.seq, inner, outerSrc: a.src, ...(a.encap ? { outerEncapSrcPort: a.encap.srcPort } : {}) };
  }

  /**
   * Seals `payload` (a UDP payload, or TCP with `protocol: 6`) from srcPort to dstPort over the
   * set's outbound SA for that port pair. Returns the whole outer IP packet (for a raw socket or a
   * pcap) and the ESP packet as `udpPayload` (for udp-enc-tunnel: what a UDP socket bound to the
   * encapsulation port sends). Throws IPSEC_NO_SA_FOR_PORTS, IPSEC_SA_DELETED, IPSEC_SEQ_EXHAUSTED.
   */
  send(
    set: SaSet,
    srcPort: number,
    dstPort: number,
    payload: Uint8Array,
    opts: { protocol?: number } = {},
  ): { ip: Uint8Array; udpPayload: Uint8Array; sa: Sa } {
    if (!set.live) throw new IpsecError('IPSEC_SA_DELETED', `SA set ${set.id} is deleted`);
    const sa = selectOutbound(set, srcPort, dstPort);
    if (!sa) {
      const have = set.outbound.map((s) => `${s.name} ${s.params.srcPort}->${s.params.dstPort}`).join(', ');
      throw new IpsecError('IPSEC_NO_SA_FOR_PORTS', `SA set ${set.id} has no outbound SA for ports ${srcPort}->${dstPort} (has ${have})`);
    }
    const out = sa.outbound();
    const w = sealToWire(sa.params, out, {
      srcPort,
      dstPort,
      payload,
      ...(opts.protocol !== undefined ? { protocol: opts.protocol } : {}),
    });
    sa.countSent(payload.length);
    // `ip` stays lazy (see sealToWire): only pcap and raw IPv4 sends need the outer packet.
    return {
      get ip() {
        return w.ip;
      },
      udpPayload: w.udpPayload,
      sa,
    };
  }
}
