// The userspace backend: ESP sealed and opened in this process (no kernel ESP, no root for
// UDP-enc-tun). Outbound: endpoint.send → pick the set → SAD seal → wire socket. Inbound: wire
// socket → RFC 3948 classify → SAD (lookup, replay, ICV, decrypt, selectors) → the endpoint
// bound to the inner destination port, with the SA set the message arrived on. NAT-keepalives
// (RFC 3948 §4) from the encapsulation socket for the UE's UDP-encapsulated sets (Annex M).
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { Clock } from '../../util/clock.ts';
import { buildIpPacket, buildUdp, classifyEncapPayload } from '../esp/index.ts';
import { containFault, guard } from '../../util/guard.ts';
import { literalFirstLookup, PostQueue } from '../../sip/udp-transport.ts';
import type { SendFailureSink } from '../../sip/transport.ts';
import { BackendError } from './errors.ts';
import { canonicalAddress, flatString, sameAddress } from '../sa.ts';
import type { SaSet } from '../sa-set.ts';
import { Sad, type ReceiveResult } from '../sad.ts';
import { NAT_T_PORT } from '../types.ts';
import { ENCRYPTION_ALGS, INTEGRITY_ALGS } from '../algorithms.ts';
import type { Addr, BackendCounters, BackendFeatures, IpsecBackend, ProtectedEndpoint, ProtectedHandler, SaStats } from './backend.ts';
import { engineSaStats } from './engine-stats.ts';
import { DEFAULT_KEEPALIVE_MS, NAT_KEEPALIVE, NatKeepalive } from './nat-keepalive.ts';
import { openRawEsp, type RawEspSocket } from './raw-esp.ts';

/** Options of the userspace ESP backend (`UserspaceBackend`). */
export interface UserspaceBackendOptions {
  /** This side's (outer) address: the source of what we send, the destination of what we accept. */
  readonly localIp: string;
  /** Local port of the ESP-in-UDP socket (RFC 3948); default 4500, 0 = ephemeral (load mode, demo). */
  readonly encapPort?: number;
  /** Called with every outer IP packet sent or received (pcap logging). */
  readonly wireLog?: (ip: Uint8Array, dir: 'in' | 'out') => void;
  /** Called for every inbound drop (logging); never given key material. */
  readonly onDrop?: (r: Extract<ReceiveResult, { ok: false }>, from: Addr) => void;
  /** The clock the SA sets' expiresAt are in (the UE's / P-CSCF's): lazy hard expiry in the SAD, keepalive timers. */
  readonly clock: Clock;
  /**
   * NAT-keepalive interval (RFC 3948 §4, spec digest §15A point 3): one 0xFF octet to the P-CSCF's
   * encapsulation address after this many ms without sending there. Only for SA sets of role 'ue'
   * in udp-enc-tunnel mode (the P-CSCF sends none). Default 20 000; 0 = off.
   */
  readonly keepaliveMs?: number;
}

const STATE_RANK = { current: 0, temporary: 1, old: 2, deleted: 3 } as const;

/** Transport mode needs a raw ESP socket (root) at install; the engine carries UDP only. */
export const USERSPACE_FEATURES: BackendFeatures = Object.freeze<BackendFeatures>({
  modes: ['transport', 'udp-enc-tunnel'],
  transports: ['udp'],
  integrity: INTEGRITY_ALGS,
  encryption: ENCRYPTION_ALGS,
});

/** SAs in imsec's own ESP engine on ordinary sockets: ESP in UDP (RFC 3948) needs no privilege; transport mode sends raw IP protocol 50 (CAP_NET_RAW and the optional raw-socket package). Create with `UserspaceBackend.create({ localIp, encapPort, clock })`. */
export class UserspaceBackend implements IpsecBackend {
  readonly name = 'userspace' as const;
  readonly features = USERSPACE_FEATURES;
  readonly sad: Sad;
  readonly #opts: UserspaceBackendOptions;
  readonly #endpoints = new Map<string, Endpoint>();
  /**
   * Installed sets by the (local port, peer port, peer address) their outbound SAs protect, in
   * install order: pickSet in O(1). Most flows have one set (an idle registration): the set itself,
   * a Set only while a flow has several (a re-registration's new and old sets). Only a send that
   * names no set needs it (the P-CSCF and the UE always name theirs): it is built at the first such
   * send, one pass over the sets installed then, and kept up to date from then on, so a backend
   * whose users name their sets holds no index at all (~200 octets per set, issue 9 §2).
   */
  #byFlow: Map<string, SaSet | Set<SaSet>> | undefined;
  /** The UE-side UDP-encapsulated sets holding a reference on their keepalive peer (peerEncapOf: the peer held). */
  readonly #keepaliveHolders = new Set<SaSet>();
  #encap: Socket | undefined;
  #encapPort: number | undefined;
  #raw: RawEspSocket | undefined;
  #noEndpoint = 0;
  readonly #keepalive: NatKeepalive;
  /** The sinks of posted ESP-in-UDP sends (see postOver); failures without a sink are dropped as a send's were. */
  readonly #posts = new PostQueue(() => {});

  private constructor(opts: UserspaceBackendOptions) {
    if (isIP(opts.localIp) === 0)
      throw new BackendError('BACKEND_BAD_PARAMS', `localIp must be an IP address, got ${JSON.stringify(opts.localIp)}`);
    this.#opts = opts;
    this.sad = new Sad({ now: () => opts.clock.now() });
    const intervalMs = opts.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
    if (!Number.isInteger(intervalMs) || intervalMs < 0)
      throw new BackendError('BACKEND_BAD_PARAMS', `keepaliveMs must be an integer >= 0, got ${intervalMs}`);
    this.#keepalive = new NatKeepalive({ intervalMs, clock: opts.clock, send: (peer) => this.#sendKeepalive(peer) });
  }

  /** Creates the backend and binds its ESP-in-UDP socket (needs no privileges). */
  static async create(opts: UserspaceBackendOptions): Promise<UserspaceBackend> {
    const b = new UserspaceBackend(opts);
    await b.#bindEncap(opts.encapPort ?? NAT_T_PORT);
    return b;
  }

  /** The bound local ESP-in-UDP port (what a UE puts in its SA set as its encapsulation port). */
  get encapPort(): number {
    return this.#encapPort!;
  }

  get sets(): readonly SaSet[] {
    return this.sad.sets;
  }

  get counters(): BackendCounters {
    return { noEndpoint: this.#noEndpoint, ...this.sad.counters, keepalivesSent: this.#keepalive.sent };
  }

  saStats(set: SaSet): SaStats[] {
    return this.sad.has(set) ? engineSaStats(set) : [];
  }

  allocateSpis(localIp: string, n: number): number[] {
    return this.sad.allocateSpis(localIp, n);
  }

  async install(set: SaSet): Promise<void> {
    // Transport mode needs the raw ESP socket; open it on first use so UDP-enc-tun needs no root.
    if (set.config.mode === 'transport') await this.#ensureRaw();
    // Re-installing an installed set changes nothing (it keeps its place in the install order).
    if (this.sad.has(set)) return;
    this.sad.install(set);
    if (this.#byFlow) for (const k of flowKeys(set)) addFlow(this.#byFlow, k, set);
    this.#keepaliveFor(set, undefined);
  }

  async remove(set: SaSet): Promise<void> {
    const held = this.#heldPeer(set);
    const installed = this.sad.has(set);
    this.sad.remove(set);
    if (installed && this.#byFlow) for (const k of flowKeys(set)) removeFlow(this.#byFlow, k, set);
    set.learntPeer = undefined;
    this.#keepaliveFor(set, held);
  }

  /** The flow index, built from the installed sets (in install order) at its first use (see #byFlow). */
  #flows(): Map<string, SaSet | Set<SaSet>> {
    let m = this.#byFlow;
    if (m === undefined) {
      m = this.#byFlow = new Map();
      for (const set of this.sad.sets) for (const k of flowKeys(set)) addFlow(m, k, set);
    }
    return m;
  }

  setPeerEncap(set: SaSet, peer: Addr): void {
    const held = this.#heldPeer(set);
    // Without a NAT the learnt source is the configured peer: nothing to keep (most sets).
    const configured = configuredPeer(set);
    if (configured && configured.port === peer.port && sameAddress(configured.address, peer.address)) set.learntPeer = undefined;
    else set.learntPeer = peer;
    this.#keepaliveFor(set, held);
  }

  /** Where this set's outbound ESP-in-UDP goes: the learnt NAT mapping, else the configured peer. */
  peerEncapOf(set: SaSet): Addr | undefined {
    if (set.config.mode !== 'udp-enc-tunnel') return undefined;
    return set.learntPeer ?? configuredPeer(set);
  }

  /**
   * Opens the protected endpoint on a local port. A port has one owner at a time (many UEs can
   * share one backend in load mode): opening a port that is open throws BACKEND_PORT_IN_USE,
   * and `endpoint.close()` gives the port back.
   */
  async openEndpoint(local: Addr): Promise<ProtectedEndpoint> {
    const k = endpointKey(local.address, local.port);
    if (this.#endpoints.has(k))
      throw new BackendError('BACKEND_PORT_IN_USE', `protected port ${local.address}:${local.port} is already open`);
    const ep = new Endpoint(this, local, k);
    this.#endpoints.set(k, ep);
    return ep;
  }

  /** (Endpoint.close) Forgets `ep` if it is still the endpoint open on its port. */
  endpointClosed(ep: { readonly key: string }): void {
    if (this.#endpoints.get(ep.key) === ep) this.#endpoints.delete(ep.key);
  }

  async close(): Promise<void> {
    this.#keepalive.close();
    for (const set of this.sad.sets) this.sad.remove(set);
    this.#endpoints.clear();
    this.#raw?.close();
    this.#raw = undefined;
    const s = this.#encap;
    this.#encap = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  /** Picks the set for an endpoint's send: the given one, else current > temporary > old, newest first. */
  pickSet(local: Addr, to: Addr, given?: SaSet): SaSet {
    if (given) return given;
    let best: SaSet | undefined;
    // The SIP layer addresses the peer by its inner address; in transport mode inner = outer. The
    // index holds both, so only the sets of this flow are looked at (not every set of the backend).
    const flow = this.#flows().get(flowKey(local.port, to.port, to.address));
    // In install order: of two sets in the same state, the later one wins (newest first).
    for (const set of flow === undefined ? [] : flow instanceof Set ? flow : [flow]) {
      if (set.live && (!best || STATE_RANK[set.state] <= STATE_RANK[best.state])) best = set;
    }
    if (!best)
      throw new BackendError('BACKEND_NO_SA', `no live SA set protects ${local.address}:${local.port} -> ${to.address}:${to.port}`);
    return best;
  }

  /** Seals and sends one message (called by Endpoint.send). */
  async sendOver(set: SaSet, local: Addr, to: Addr, bytes: Uint8Array): Promise<void> {
    const out = this.#seal(set, local, to, bytes);
    if (out.peer) {
      const peer = out.peer;
      await new Promise<void>((resolve, reject) =>
        this.#encap!.send(out.esp, peer.port, peer.address, (err) => (err ? reject(err) : resolve())),
      );
      this.#keepalive.noteSent(peer);
    } else await this.#raw!.send(out.esp, out.dst, out.ipv4);
  }

  /**
   * Endpoint.post's path: sendOver without a Promise or a callback per message (ESP-in-UDP: the
   * socket's one callback and queue of sinks; transport mode keeps the raw socket's Promise).
   */
  postOver(set: SaSet, local: Addr, to: Addr, bytes: Uint8Array, sink: SendFailureSink): void {
    let out: Sealed;
    try {
      out = this.#seal(set, local, to, bytes);
      if (out.peer) {
        this.#encap!.send(out.esp, out.peer.port, out.peer.address, this.#posts.callback);
        this.#posts.push(sink);
        this.#keepalive.noteSent(out.peer);
        return;
      }
    } catch (e) {
      return sink.sendFailed(e instanceof Error ? e : new Error(String(e)));
    }
    this.#raw!.send(out.esp, out.dst, out.ipv4).catch((e: Error) => sink.sendFailed(e));
  }

  /** Picks the SA by ports, seals, logs the outer packet; where the ESP bytes go. Throws what sad.send throws. */
  #seal(set: SaSet, local: Addr, to: Addr, bytes: Uint8Array): Sealed {
    const sent = this.sad.send(set, local.port, to.port, bytes);
    const { udpPayload, sa } = sent;
    const p = sa.params;
    if (p.mode === 'udp-enc-tunnel') {
      const peer = this.peerEncapOf(set)!;
      if (this.#opts.wireLog) {
        // As it goes on the wire: towards the NAT-learned peer port when it differs from the SA's.
        const logged =
          peer.port === (p.encap?.dstPort ?? NAT_T_PORT) && sameAddress(peer.address, p.dst)
            ? sent.ip
            : buildIpPacket({
                src: p.src,
                dst: peer.address,
                protocol: 17,
                payload: buildUdp(p.src, peer.address, this.encapPort, peer.port, udpPayload, { zeroChecksum: isIP(p.src) === 4 }),
              });
        this.#opts.wireLog(logged, 'out');
      }
      return { esp: udpPayload, peer, dst: p.dst, ipv4: undefined };
    }
    this.#opts.wireLog?.(sent.ip, 'out');
    // IPv4 goes out with our own header (IP_HDRINCL); IPv6 raw sockets take the ESP bytes alone.
    return { esp: udpPayload, peer: undefined, dst: p.dst, ipv4: isIP(p.dst) === 4 ? sent.ip : undefined };
  }

  /**
   * The UE side's live UDP-encapsulated sets need keepalives towards their P-CSCF (spec digest §15A
   * point 3): each such set holds one reference on its peer, moved when the peer moves and dropped
   * when the set goes. O(1) per change, whatever the number of sets on the backend. `held`: the
   * peer the set held a reference on before the change (#heldPeer, read before the change).
   */
  #keepaliveFor(set: SaSet, held: Addr | undefined): void {
    if (!this.#keepalive.enabled) return;
    const wants =
      set.live && set.role === 'ue' && set.config.mode === 'udp-enc-tunnel' && this.sad.has(set) ? this.peerEncapOf(set) : undefined;
    if (held && wants && sameAddress(held.address, wants.address) && held.port === wants.port) return;
    if (held) {
      this.#keepalive.release(held);
      this.#keepaliveHolders.delete(set);
    }
    if (wants) {
      this.#keepalive.retain(wants);
      this.#keepaliveHolders.add(set);
    }
  }

  /** The peer `set` holds a keepalive reference on: its peerEncapOf, as long as every change of that goes through #keepaliveFor. */
  #heldPeer(set: SaSet): Addr | undefined {
    return this.#keepaliveHolders.has(set) ? this.peerEncapOf(set) : undefined;
  }

  /** RFC 3948 §2.3: one octet 0xFF, same ports as the ESP-in-UDP traffic. */
  async #sendKeepalive(peer: Addr): Promise<void> {
    const s = this.#encap;
    if (!s) return;
    const local = this.#opts.localIp;
    this.#opts.wireLog?.(
      buildIpPacket({
        src: local,
        dst: peer.address,
        protocol: 17,
        payload: buildUdp(local, peer.address, this.encapPort, peer.port, NAT_KEEPALIVE, { zeroChecksum: isIP(local) === 4 }),
      }),
      'out',
    );
    await new Promise<void>((resolve, reject) => s.send(NAT_KEEPALIVE, peer.port, peer.address, (err) => (err ? reject(err) : resolve())));
  }

  async #bindEncap(port: number): Promise<void> {
    const family = isIP(this.#opts.localIp) === 6 ? 'udp6' : 'udp4';
    // One socket carries every SA of the backend (thousands of UEs in load mode): a large receive
    // buffer rides out short stalls instead of dropping ESP (capped by net.core.rmem_max).
    // Literal-first lookup: node:dgram would pass every destination (always an IP literal here: the
    // SA's peer or the learnt NAT mapping) through dns.lookup and a next tick per datagram.
    const s = createSocket({ type: family, reuseAddr: false, recvBufferSize: 8 * 1024 * 1024, lookup: literalFirstLookup as never });
    await new Promise<void>((resolve, reject) => {
      s.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new BackendError('BACKEND_BIND_FAILED', `cannot bind ESP-in-UDP socket ${this.#opts.localIp}:${port}: ${e.code ?? e.message}`),
        ),
      );
      s.bind(port, this.#opts.localIp, () => resolve());
    });
    // The boundary for ESP-in-UDP: a bug anywhere above (SAD, SIP, the P-CSCF) costs one datagram.
    s.on(
      'message',
      guard(
        'esp.encap',
        (msg: Buffer, rinfo: { address: string; port: number }) =>
          this.#onEncap(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), { address: rinfo.address, port: rinfo.port }),
        (msg) => msg.length,
      ),
    );
    this.#encap = s;
    this.#encapPort = s.address().port;
  }

  async #ensureRaw(): Promise<void> {
    if (this.#raw) return;
    this.#raw = await openRawEsp(
      this.#opts.localIp,
      guard(
        'esp.raw',
        (esp: Uint8Array, src: string, ipPacket?: Uint8Array) => {
          if (ipPacket) this.#opts.wireLog?.(ipPacket, 'in');
          else this.#opts.wireLog?.(buildIpPacket({ src, dst: this.#opts.localIp, protocol: 50, payload: esp }), 'in');
          this.#deliver(this.sad.receiveEsp({ src, dst: this.#opts.localIp, esp }), { address: src, port: 0 });
        },
        (esp) => esp.length,
      ),
    );
  }

  #onEncap(payload: Uint8Array, from: Addr): void {
    const local = this.#opts.localIp;
    this.#opts.wireLog?.(
      buildIpPacket({
        src: from.address,
        dst: local,
        protocol: 17,
        payload: buildUdp(from.address, local, from.port, this.encapPort, payload, { zeroChecksum: isIP(local) === 4 }),
      }),
      'in',
    );
    const kind = classifyEncapPayload(payload);
    if (kind === 'keepalive') {
      // RFC 3948 §2.3/§4: ignore quietly; never a sign of life.
      this.sad.counters.keepalive++;
      return;
    }
    if (kind !== 'esp') {
      if (kind === 'non-esp') this.sad.counters.nonEsp++;
      else this.sad.counters.malformed++;
      return;
    }
    this.#deliver(
      this.sad.receiveEsp({ src: from.address, dst: local, encap: { srcPort: from.port, dstPort: this.encapPort }, esp: payload }),
      from,
    );
  }

  #deliver(r: ReceiveResult, from: Addr): void {
    if (!r.ok) {
      this.#opts.onDrop?.(r, from);
      return;
    }
    const ep =
      this.#endpoints.get(endpointKey(r.inner.dst, r.inner.dstPort)) ??
      this.#endpoints.get(endpointKey(this.#opts.localIp, r.inner.dstPort));
    if (!ep) {
      this.#noEndpoint++;
      return;
    }
    const local = { address: r.inner.dst, port: r.inner.dstPort };
    const remote = { address: r.inner.src, port: r.inner.srcPort };
    // Two literals, not a spread of a conditional object (a temporary and a dictionary-shaped copy per packet).
    ep.deliver(
      r.inner.payload,
      r.outerEncapSrcPort !== undefined
        ? { set: r.set, sa: r.sa, local, remote, outerSrc: r.outerSrc, outerEncapSrcPort: r.outerEncapSrcPort }
        : { set: r.set, sa: r.sa, local, remote, outerSrc: r.outerSrc },
    );
  }
}

/**
 * A protected port. `imsec load` holds two per registered UE (100k UEs): the handler is a field (one
 * handler is the rule; an array only for more), each called inside its own boundary here rather than
 * through a guard closure, and the close goes through the backend by key: no closures, contexts or
 * spare array slots per endpoint (~850 bytes per UE before).
 */
class Endpoint implements ProtectedEndpoint {
  #handlers: ProtectedHandler | ProtectedHandler[] | undefined;
  constructor(
    readonly backend: UserspaceBackend,
    readonly local: Addr,
    readonly key: string,
  ) {}

  async send(bytes: Uint8Array, to: Addr, opts: { set?: SaSet } = {}): Promise<SaSet> {
    const set = this.backend.pickSet(this.local, to, opts.set);
    await this.backend.sendOver(set, this.local, to, bytes);
    return set;
  }

  post(bytes: Uint8Array, to: Addr, set: SaSet | undefined, sink: SendFailureSink): void {
    let picked: SaSet;
    try {
      picked = this.backend.pickSet(this.local, to, set);
    } catch (e) {
      return sink.sendFailed(e as Error);
    }
    this.backend.postOver(picked, this.local, to, bytes, sink);
  }

  onMessage(handler: ProtectedHandler): void {
    const h = this.#handlers;
    this.#handlers = h === undefined ? handler : Array.isArray(h) ? [...h, handler] : [h, handler];
  }

  deliver(bytes: Uint8Array, ctx: Parameters<ProtectedHandler>[1]): void {
    const h = this.#handlers;
    if (h === undefined) return;
    if (!Array.isArray(h)) return deliverOne(h, bytes, ctx);
    // Each handler is its own boundary: one that throws does not keep the message from the others.
    for (const one of h) deliverOne(one, bytes, ctx);
  }

  close(): void {
    this.#handlers = undefined;
    this.backend.endpointClosed(this);
  }
}

/** One handler as its own boundary (util/guard.ts): what it throws or rejects is contained and counted. */
function deliverOne(h: ProtectedHandler, bytes: Uint8Array, ctx: Parameters<ProtectedHandler>[1]): void {
  try {
    const r: unknown = h(bytes, ctx);
    if (r !== null && typeof r === 'object' && typeof (r as PromiseLike<unknown>).then === 'function')
      (r as PromiseLike<unknown>).then(undefined, (e: unknown) => containFault('esp.deliver', e, bytes.length));
  } catch (e) {
    containFault('esp.deliver', e, bytes.length);
  }
}

/** Where one sealed message goes: the ESP-in-UDP peer, or (transport mode) the raw socket's destination. */
interface Sealed {
  readonly esp: Uint8Array;
  readonly peer: Addr | undefined;
  readonly dst: string;
  /** Transport mode over IPv4: the whole packet (the raw socket sends our own header). */
  readonly ipv4: Uint8Array | undefined;
}

/** Files `set` under flow `k` (after the sets installed before it). */
function addFlow(m: Map<string, SaSet | Set<SaSet>>, k: string, set: SaSet): void {
  const had = m.get(k);
  if (had === undefined || had === set) m.set(k, set);
  else if (had instanceof Set) had.add(set);
  else m.set(k, new Set([had, set]));
}

function removeFlow(m: Map<string, SaSet | Set<SaSet>>, k: string, set: SaSet): void {
  const had = m.get(k);
  if (had === set) m.delete(k);
  else if (had instanceof Set) {
    had.delete(set);
    // Back to the single-set form once one is left.
    if (had.size === 1) m.set(k, had.values().next().value as SaSet);
  }
}

/** The peer a UDP-encapsulated set's outbound SAs name (a fresh object; undefined in transport mode). */
function configuredPeer(set: SaSet): Addr | undefined {
  if (set.mode !== 'udp-enc-tunnel') return undefined;
  // Both outbound SAs go to the same address and encapsulation port.
  const sa = set.role === 'ue' ? set.SA1 : set.SA2;
  return { address: sa.dst, port: sa.encap?.dstPort ?? NAT_T_PORT };
}

function flowKey(srcPort: number, dstPort: number, dst: string): string {
  return flatString(`${srcPort}|${dstPort}|${canonicalAddress(dst)}`);
}

/** Every flow a set's outbound SAs protect (outer and inner destination). */
function flowKeys(set: SaSet): Set<string> {
  const keys = new Set<string>();
  for (const sa of set.outbound) {
    const p = sa.params;
    keys.add(flowKey(p.srcPort, p.dstPort, p.dst));
    if (p.innerDst !== undefined) keys.add(flowKey(p.srcPort, p.dstPort, p.innerDst));
  }
  return keys;
}

function endpointKey(address: string, port: number): string {
  return `${address.toLowerCase()}|${port}`;
}
