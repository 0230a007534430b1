// The in-memory IPsec backend: the userspace backend's ESP engine (the SAD: SPI lookup, replay
// window, ICV, decrypt, selectors, lazy expiry) with an in-memory wire instead of sockets, so UE and
// P-CSCF tests run without sockets and in virtual time (the SIP layer's MemoryNetwork, one level
// down). Outbound: endpoint.send → pick the set → SAD seal → wire. Inbound: wire → SAD → the
// endpoint bound to the inner destination port. Delivery is a microtask: time moves only by the clock.
import { isIP } from 'node:net';
import type { Clock } from '../../util/clock.ts';
import { ENCRYPTION_ALGS, INTEGRITY_ALGS } from '../algorithms.ts';
import { classifyEncapPayload } from '../esp/index.ts';
import { canonicalAddress, sameAddress } from '../sa.ts';
import type { SaSet } from '../sa-set.ts';
import { Sad, type ReceiveResult } from '../sad.ts';
import { NAT_T_PORT } from '../types.ts';
import type {
  Addr,
  BackendCounters,
  BackendFeatures,
  IpsecBackend,
  ProtectedContext,
  ProtectedEndpoint,
  ProtectedHandler,
  SaStats,
} from './backend.ts';
import { engineSaStats } from './engine-stats.ts';
import { BackendError } from './errors.ts';
import { DEFAULT_KEEPALIVE_MS, NAT_KEEPALIVE, NatKeepalive } from './nat-keepalive.ts';

/** One outer packet on the in-memory wire: ESP (raw, or in UDP when `encap`) or a NAT-keepalive. */
export interface WirePacket {
  readonly src: string;
  readonly dst: string;
  /** ESP-in-UDP (RFC 3948) ports; absent for transport-mode ESP (IP protocol 50). */
  readonly encap?: { readonly srcPort: number; readonly dstPort: number };
  /** The ESP packet or the keepalive octet; a filter may change octets (tampering tests). */
  readonly payload: Uint8Array;
  /** False when the filter dropped it or nobody was there to take it. */
  delivered: boolean;
}

/**
 * The wire between memory backends: ESP-in-UDP goes to the backend on (dst, dstPort); raw ESP to
 * every backend on dst (as raw sockets would). Logs every packet; `filter` drops (return false) or
 * tampers with packets.
 */
export class MemoryWire {
  readonly log: WirePacket[] = [];
  filter: ((p: WirePacket) => boolean) | undefined;
  readonly #encap = new Map<string, MemoryBackend>();
  readonly #raw = new Map<string, Set<MemoryBackend>>();

  attach(b: MemoryBackend): void {
    const k = encapKey(b.localIp, b.encapPort);
    if (this.#encap.has(k)) throw new BackendError('BACKEND_BIND_FAILED', `memory wire: ${b.localIp}:${b.encapPort} is taken`);
    this.#encap.set(k, b);
    const a = canonicalAddress(b.localIp);
    let s = this.#raw.get(a);
    if (!s) this.#raw.set(a, (s = new Set()));
    s.add(b);
  }

  detach(b: MemoryBackend): void {
    const k = encapKey(b.localIp, b.encapPort);
    if (this.#encap.get(k) === b) this.#encap.delete(k);
    this.#raw.get(canonicalAddress(b.localIp))?.delete(b);
  }

  /** The first free encapsulation port from 40000 on `address` (for encapPort 0). */
  freePort(address: string): number {
    let p = 40000;
    while (this.#encap.has(encapKey(address, p))) p++;
    return p;
  }

  send(p: Omit<WirePacket, 'delivered'>): void {
    // Copies (Uint8Array.from: a Buffer's slice() would be a view of the sender's memory).
    const packet: WirePacket = { ...p, payload: Uint8Array.from(p.payload), delivered: false };
    this.log.push(packet);
    const to = packet.encap
      ? [this.#encap.get(encapKey(packet.dst, packet.encap.dstPort))].filter((b): b is MemoryBackend => b !== undefined)
      : [...(this.#raw.get(canonicalAddress(packet.dst)) ?? [])];
    if (to.length === 0 || (this.filter && !this.filter(packet))) return;
    packet.delivered = true;
    // Each receiver gets its own copy, as from a socket: the engine may work in place, the log stays as sent.
    for (const b of to) queueMicrotask(() => b.receive({ ...packet, payload: Uint8Array.from(packet.payload) }));
  }
}

export interface MemoryBackendOptions {
  readonly wire: MemoryWire;
  /** This side's (outer) address. */
  readonly localIp: string;
  /** The UE's / P-CSCF's clock: lazy hard expiry in the SAD, keepalive timers. */
  readonly clock: Clock;
  /** Local ESP-in-UDP port; default 4500, 0 = the wire's next free port. */
  readonly encapPort?: number;
  /** NAT-keepalive interval for the UE's UDP-enc-tun sets (RFC 3948 §4); default 20 000, 0 = off. */
  readonly keepaliveMs?: number;
  /** Called for every inbound drop; never given key material. */
  readonly onDrop?: (r: Extract<ReceiveResult, { ok: false }>, from: Addr) => void;
  /** SPI randomness (tests that want fixed SPIs); default node:crypto. */
  readonly randomUint32?: () => number;
}

/** Like the userspace engine: both modes, UDP inside the SAs, every algorithm. */
export const MEMORY_FEATURES: BackendFeatures = Object.freeze<BackendFeatures>({
  modes: ['transport', 'udp-enc-tunnel'],
  transports: ['udp'],
  integrity: INTEGRITY_ALGS,
  encryption: ENCRYPTION_ALGS,
});

const STATE_RANK = { current: 0, temporary: 1, old: 2, deleted: 3 } as const;

export class MemoryBackend implements IpsecBackend {
  readonly name = 'memory' as const;
  readonly features = MEMORY_FEATURES;
  readonly localIp: string;
  readonly encapPort: number;
  readonly sad: Sad;
  readonly #wire: MemoryWire;
  readonly #onDrop: MemoryBackendOptions['onDrop'];
  readonly #endpoints = new Map<string, MemoryEndpoint>();
  /** Install order (newest wins among sets in the same state). */
  readonly #installOrder = new Map<SaSet, number>();
  /** `srcPort|dstPort` of each outbound SA → the sets that have one: a send looks at a handful, not all. */
  readonly #byPorts = new Map<string, Set<SaSet>>();
  readonly #peerEncap = new Map<SaSet, Addr>();
  readonly #keepalive: NatKeepalive;
  #seq = 0;
  #noEndpoint = 0;
  #closed = false;

  constructor(o: MemoryBackendOptions) {
    if (isIP(o.localIp) === 0)
      throw new BackendError('BACKEND_BAD_PARAMS', `localIp must be an IP address, got ${JSON.stringify(o.localIp)}`);
    this.localIp = o.localIp;
    this.#wire = o.wire;
    this.#onDrop = o.onDrop;
    this.encapPort = o.encapPort === 0 ? o.wire.freePort(o.localIp) : (o.encapPort ?? NAT_T_PORT);
    this.sad = new Sad({ now: () => o.clock.now(), ...(o.randomUint32 && { randomUint32: o.randomUint32 }) });
    this.#keepalive = new NatKeepalive({
      intervalMs: o.keepaliveMs ?? DEFAULT_KEEPALIVE_MS,
      clock: o.clock,
      send: async (peer) => this.#sendKeepalive(peer),
    });
    o.wire.attach(this);
  }

  get sets(): readonly SaSet[] {
    return this.sad.sets;
  }

  get counters(): BackendCounters {
    return { ...this.sad.counters, noEndpoint: this.#noEndpoint, keepalivesSent: this.#keepalive.sent };
  }

  saStats(set: SaSet): SaStats[] {
    return this.#installOrder.has(set) ? engineSaStats(set) : [];
  }

  allocateSpis(localIp: string, n: number): number[] {
    return this.sad.allocateSpis(localIp, n);
  }

  async install(set: SaSet): Promise<void> {
    if (this.#closed) throw new BackendError('BACKEND_BAD_PARAMS', 'the memory backend is closed');
    this.sad.install(set);
    if (this.#installOrder.has(set)) return;
    this.#installOrder.set(set, ++this.#seq);
    for (const sa of set.outbound) {
      const k = portsKey(sa.params.srcPort, sa.params.dstPort);
      let s = this.#byPorts.get(k);
      if (!s) this.#byPorts.set(k, (s = new Set()));
      s.add(set);
    }
    this.#keepalivePeers();
  }

  async remove(set: SaSet): Promise<void> {
    this.sad.remove(set);
    this.#installOrder.delete(set);
    this.#peerEncap.delete(set);
    for (const sa of set.outbound) {
      const k = portsKey(sa.params.srcPort, sa.params.dstPort);
      const s = this.#byPorts.get(k);
      s?.delete(set);
      if (s?.size === 0) this.#byPorts.delete(k);
    }
    this.#keepalivePeers();
  }

  setPeerEncap(set: SaSet, peer: Addr): void {
    this.#peerEncap.set(set, peer);
    this.#keepalivePeers();
  }

  /** Where this set's outbound ESP-in-UDP goes: the learnt NAT mapping, else the configured peer. */
  peerEncapOf(set: SaSet): Addr | undefined {
    if (set.config.mode !== 'udp-enc-tunnel') return undefined;
    const p = set.outbound[0]!.params;
    return this.#peerEncap.get(set) ?? { address: p.dst, port: p.encap?.dstPort ?? NAT_T_PORT };
  }

  async openEndpoint(local: Addr): Promise<ProtectedEndpoint> {
    const k = endpointKey(local.address, local.port);
    if (this.#endpoints.has(k))
      throw new BackendError('BACKEND_PORT_IN_USE', `protected port ${local.address}:${local.port} is already open`);
    const ep = new MemoryEndpoint(this, local, () => {
      if (this.#endpoints.get(k) === ep) this.#endpoints.delete(k);
    });
    this.#endpoints.set(k, ep);
    return ep;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#keepalive.close();
    for (const set of this.sad.sets) await this.remove(set);
    this.#endpoints.clear();
    this.#wire.detach(this);
  }

  /** The set for an endpoint's send: the given one, else current > temporary > old, newest first. */
  pickSet(local: Addr, to: Addr, given?: SaSet): SaSet {
    if (given) return given;
    let best: SaSet | undefined;
    for (const set of this.#byPorts.get(portsKey(local.port, to.port)) ?? []) {
      if (!set.live) continue;
      // The SIP layer addresses the peer by its inner address; in transport mode inner = outer.
      const fits = set.outbound.some(
        (sa) =>
          sa.params.srcPort === local.port &&
          sa.params.dstPort === to.port &&
          (sameAddress(sa.params.dst, to.address) || (sa.params.innerDst !== undefined && sameAddress(sa.params.innerDst, to.address))),
      );
      if (!fits) continue;
      const rank = STATE_RANK[set.state];
      if (
        !best ||
        rank < STATE_RANK[best.state] ||
        (rank === STATE_RANK[best.state] && this.#installOrder.get(set)! > this.#installOrder.get(best)!)
      )
        best = set;
    }
    if (!best)
      throw new BackendError('BACKEND_NO_SA', `no live SA set protects ${local.address}:${local.port} -> ${to.address}:${to.port}`);
    return best;
  }

  /** Seals one message over `set` and puts it on the wire (called by the endpoint). */
  sendOver(set: SaSet, local: Addr, to: Addr, bytes: Uint8Array): void {
    if (this.#closed) throw new BackendError('BACKEND_BAD_PARAMS', 'the memory backend is closed');
    const { udpPayload, sa } = this.sad.send(set, local.port, to.port, bytes);
    const p = sa.params;
    if (p.mode === 'udp-enc-tunnel') {
      const peer = this.peerEncapOf(set)!;
      this.#wire.send({
        src: this.localIp,
        dst: peer.address,
        encap: { srcPort: this.encapPort, dstPort: peer.port },
        payload: udpPayload,
      });
      this.#keepalive.noteSent(peer);
    } else {
      this.#wire.send({ src: this.localIp, dst: p.dst, payload: udpPayload });
    }
  }

  /** One packet from the wire (called by MemoryWire). */
  receive(pkt: WirePacket): void {
    if (this.#closed) return;
    if (pkt.encap) {
      // RFC 3948 §2.2/§2.3 classification, as the userspace backend's ESP-in-UDP socket does it.
      const kind = classifyEncapPayload(pkt.payload);
      if (kind !== 'esp') {
        if (kind === 'keepalive')
          this.sad.counters.keepalive++; // never a sign of life
        else if (kind === 'non-esp') this.sad.counters.nonEsp++;
        else this.sad.counters.malformed++;
        return;
      }
      const from = { address: pkt.src, port: pkt.encap.srcPort };
      this.#deliver(
        this.sad.receiveEsp({
          src: pkt.src,
          dst: this.localIp,
          encap: { srcPort: pkt.encap.srcPort, dstPort: this.encapPort },
          esp: pkt.payload,
        }),
        from,
      );
      return;
    }
    this.#deliver(this.sad.receiveEsp({ src: pkt.src, dst: this.localIp, esp: pkt.payload }), { address: pkt.src, port: 0 });
  }

  #deliver(r: ReceiveResult, from: Addr): void {
    if (!r.ok) {
      this.#onDrop?.(r, from);
      return;
    }
    const ep =
      this.#endpoints.get(endpointKey(r.inner.dst, r.inner.dstPort)) ?? this.#endpoints.get(endpointKey(this.localIp, r.inner.dstPort));
    if (!ep) {
      this.#noEndpoint++;
      return;
    }
    ep.deliver(r.inner.payload, {
      set: r.set,
      sa: r.sa,
      local: { address: r.inner.dst, port: r.inner.dstPort },
      remote: { address: r.inner.src, port: r.inner.srcPort },
      outerSrc: r.outerSrc,
      ...(r.outerEncapSrcPort !== undefined ? { outerEncapSrcPort: r.outerEncapSrcPort } : {}),
    });
  }

  #keepalivePeers(): void {
    if (!this.#keepalive.enabled) return;
    const peers: Addr[] = [];
    for (const s of this.#installOrder.keys())
      if (s.live && s.role === 'ue' && s.config.mode === 'udp-enc-tunnel') peers.push(this.peerEncapOf(s)!);
    this.#keepalive.setPeers(peers);
  }

  #sendKeepalive(peer: Addr): void {
    this.#wire.send({
      src: this.localIp,
      dst: peer.address,
      encap: { srcPort: this.encapPort, dstPort: peer.port },
      payload: NAT_KEEPALIVE,
    });
  }
}

class MemoryEndpoint implements ProtectedEndpoint {
  readonly #handlers: ProtectedHandler[] = [];
  constructor(
    readonly backend: MemoryBackend,
    readonly local: Addr,
    private readonly onClose: () => void,
  ) {}

  async send(bytes: Uint8Array, to: Addr, opts: { set?: SaSet } = {}): Promise<SaSet> {
    const set = this.backend.pickSet(this.local, to, opts.set);
    this.backend.sendOver(set, this.local, to, bytes);
    return set;
  }

  onMessage(handler: ProtectedHandler): void {
    this.#handlers.push(handler);
  }

  deliver(bytes: Uint8Array, ctx: ProtectedContext): void {
    for (const h of this.#handlers) h(bytes, ctx);
  }

  close(): void {
    this.#handlers.length = 0;
    this.onClose();
  }
}

const endpointKey = (address: string, port: number): string => `${canonicalAddress(address)}|${port}`;
const encapKey = (address: string, port: number): string => `${canonicalAddress(address)}|${port}`;
const portsKey = (srcPort: number, dstPort: number): string => `${srcPort}|${dstPort}`;

// Checked by the compiler: the twin offers exactly the backend interface.
void (0 as unknown as MemoryBackend satisfies IpsecBackend);
