// Small pieces of the xfrm backend: the ESP-in-UDP sockets it holds open (RFC 3948; spec digest
// §17: without a UDP_ENCAP socket arriving ESP-in-UDP never reaches XFRM) and the UE's keepalives
// from them, the inbound match of a message to SA sets, the best-set choice, /proc/net/xfrm_stat.
import { readFileSync } from 'node:fs';
import { canonicalAddress, sameAddress, type Sa } from '../../sa.ts';
import type { SaSet } from '../../sa-set.ts';
import type { Addr } from '../backend.ts';
import { loadNative, sys } from './native.ts';
import { DEFAULT_KEEPALIVE_MS, NAT_KEEPALIVE, NatKeepalive } from '../nat-keepalive.ts';
import { familyOf, innerOf, type KernelPeer } from './plan.ts';
import { bestOwner } from './policies.ts';
import type { Clock } from '../../../util/clock.ts';

/** One UDP_ENCAP_ESPINUDP socket: it only has to stay open; `send` is for NAT-keepalives. */
export interface EncapSocket {
  send(to: Addr, bytes: Uint8Array): void;
  close(): void;
}
export type EncapOpener = (ip: string, port: number) => EncapSocket;

export const openEspInUdp: EncapOpener = (ip, port) => {
  const native = loadNative();
  const { fd } = sys(`ESP-in-UDP socket on ${ip}:${port}`, () => native.espInUdpSocket(familyOf(ip), ip, port));
  return {
    send: (to, bytes) => void sys(`send from ESP-in-UDP socket ${ip}:${port}`, () => native.udpSend(fd, to.address, to.port, bytes)),
    close: () => native.close(fd),
  };
};

export class EncapSockets {
  readonly #socks = new Map<string, { sock: EncapSocket; refs: number }>();

  constructor(private readonly open: EncapOpener = openEspInUdp) {}

  /** Opens (or shares) the socket on ip:port; returns its key for release(). */
  acquire(ip: string, port: number): string {
    const key = `${canonicalAddress(ip)}|${port}`;
    const s = this.#socks.get(key);
    if (s) s.refs++;
    else this.#socks.set(key, { sock: this.open(ip, port), refs: 1 });
    return key;
  }

  /** Sends from the socket with this key (acquire's result); false when it is not open. */
  send(key: string, to: Addr, bytes: Uint8Array): boolean {
    const s = this.#socks.get(key);
    s?.sock.send(to, bytes);
    return !!s;
  }

  release(key: string): void {
    const s = this.#socks.get(key);
    if (!s || --s.refs > 0) return;
    this.#socks.delete(key);
    s.sock.close();
  }

  closeAll(): void {
    for (const s of this.#socks.values()) s.sock.close();
    this.#socks.clear();
  }
}

export interface Candidate {
  readonly set: SaSet;
  readonly sa: Sa;
  readonly order: number;
}

const isAny = (a: string) => a === '0.0.0.0' || a === '::';

/**
 * Inbound SAs by (inner source, its port, our port) — what a received message tells us — so that
 * each message is matched without a scan of every set; `match` keeps the live ones for `local`
 * (the kernel already enforced ESP through the inbound policy).
 */
export class InboundIndex {
  readonly #byKey = new Map<string, Candidate[]>();

  set(inst: { set: SaSet; order: number }, present: boolean): void {
    for (const sa of inst.set.inbound) {
      const k = key(innerOf(sa.params).src, sa.params.srcPort, sa.params.dstPort);
      const list = (this.#byKey.get(k) ?? []).filter((c) => c.set !== inst.set);
      if (present) list.push({ set: inst.set, sa, order: inst.order });
      if (list.length) this.#byKey.set(k, list);
      else this.#byKey.delete(k);
    }
  }

  match(local: Addr, remote: Addr): Candidate[] {
    const any = local.address === '0.0.0.0' || local.address === '::';
    return (this.#byKey.get(key(remote.address, remote.port, local.port)) ?? []).filter(
      (c) => c.set.live && (any || sameAddress(innerOf(c.sa.params).dst, local.address)),
    );
  }
}

const key = (remoteAddress: string, remotePort: number, localPort: number): string =>
  `${canonicalAddress(remoteAddress)}|${remotePort}|${localPort}`;

/**
 * NAT-keepalives of the UE side (RFC 3948 §2.3/§4, spec digest §15A point 3): one 0xFF octet from
 * the UE's ESP-in-UDP socket to the P-CSCF's encapsulation address whenever nothing went there
 * for the interval. The kernel sends the ESP itself, so only our own sends reset the silence.
 */
export class UeKeepalives {
  readonly #timer: NatKeepalive;
  /** `addr|port` of each peer → the encapsulation socket it is sent from. */
  readonly #from = new Map<string, string>();

  constructor(
    private readonly encap: EncapSockets,
    clock: Clock,
    intervalMs = DEFAULT_KEEPALIVE_MS,
  ) {
    this.#timer = new NatKeepalive({
      intervalMs,
      clock,
      send: async (peer) =>
        void this.encap.send(this.#from.get(`${canonicalAddress(peer.address)}|${peer.port}`) ?? '', peer, NAT_KEEPALIVE),
    });
  }

  get sent(): number {
    return this.#timer.sent;
  }

  /** The peers: each live UE-side UDP-enc-tun set's outbound destination (after setPeerEncap). */
  update(installed: Iterable<{ set: SaSet; encapKey?: string; sas: Map<string, { sa: Sa; peer: KernelPeer }> }>): void {
    if (!this.#timer.enabled) return;
    this.#from.clear();
    const peers: Addr[] = [];
    for (const inst of installed) {
      if (!inst.set.live || inst.set.role !== 'ue' || !inst.encapKey) continue;
      const out = [...inst.sas.values()].find((k) => k.sa.direction === 'out' && k.peer.encap);
      if (!out) continue;
      const peer = { address: out.peer.dst, port: out.peer.encap!.dport };
      if (!this.#from.has(`${peer.address}|${peer.port}`)) peers.push(peer);
      this.#from.set(`${peer.address}|${peer.port}`, inst.encapKey);
    }
    this.#timer.setPeers(peers);
  }

  noteSent(peer: KernelPeer): void {
    if (peer.encap) this.#timer.noteSent({ address: peer.dst, port: peer.encap.dport });
  }

  close(): void {
    this.#timer.close();
  }
}

/** An outbound SA for (local port → remote port), addressed by its inner (tunnel) or outer destination. */
export function fitsOutbound(sa: Sa, local: Addr, to: Addr): boolean {
  const p = sa.params;
  return p.srcPort === local.port && p.dstPort === to.port && (sameAddress(innerOf(p).dst, to.address) || sameAddress(p.dst, to.address));
}

/** current > temporary > old, newest install first (the userspace backend's order). */
export function pickOutbound<T extends { set: SaSet; order: number }>(cands: readonly T[]): T | undefined {
  return bestOwner(cands);
}

/** /proc/net/xfrm_stat of this network namespace (CONFIG_XFRM_STATISTICS); {} when absent. */
export function readXfrmStat(): Record<string, number> {
  try {
    const out: Record<string, number> = {};
    for (const line of readFileSync('/proc/net/xfrm_stat', 'utf8').split('\n')) {
      const m = /^(\w+)\s+(\d+)/.exec(line);
      if (m) out[m[1]!] = Number(m[2]);
    }
    return out;
  } catch {
    return {};
  }
}
