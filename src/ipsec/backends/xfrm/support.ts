// Small pieces of the xfrm backend: the ESP-in-UDP sockets it holds open (RFC 3948; spec digest
// §17: without a UDP_ENCAP socket arriving ESP-in-UDP never reaches XFRM), the inbound match of a
// message to SA sets, the best-set choice, and /proc/net/xfrm_stat (namespace-wide drop counters).
import { readFileSync } from 'node:fs';
import { canonicalAddress, sameAddress, type Sa } from '../../sa.ts';
import type { SaSet } from '../../sa-set.ts';
import type { Addr } from '../backend.ts';
import { loadNative, sys } from './native.ts';
import { familyOf, innerOf } from './plan.ts';
import { bestOwner } from './policies.ts';

export class EncapSockets {
  readonly #socks = new Map<string, { fd: number; refs: number }>();

  /** Opens (or shares) a UDP_ENCAP_ESPINUDP socket on ip:port; returns its key for release(). */
  acquire(ip: string, port: number): string {
    const key = `${canonicalAddress(ip)}|${port}`;
    const s = this.#socks.get(key);
    if (s) {
      s.refs++;
      return key;
    }
    const native = loadNative();
    const { fd } = sys(`ESP-in-UDP socket on ${ip}:${port}`, () => native.espInUdpSocket(familyOf(ip), ip, port));
    this.#socks.set(key, { fd, refs: 1 });
    return key;
  }

  release(key: string): void {
    const s = this.#socks.get(key);
    if (!s || --s.refs > 0) return;
    this.#socks.delete(key);
    loadNative().close(s.fd);
  }

  closeAll(): void {
    for (const key of [...this.#socks.keys()]) {
      const s = this.#socks.get(key)!;
      s.refs = 1;
      this.release(key);
    }
  }
}

export interface Candidate {
  readonly set: SaSet;
  readonly sa: Sa;
  readonly order: number;
}

const isAny = (a: string) => a === '0.0.0.0' || a === '::';

/**
 * Live inbound SAs that could have carried a message from `remote` to `local` (the kernel
 * already enforced ESP through the inbound policy): selector ports and inner addresses.
 */
export function matchInbound(installed: Iterable<{ set: SaSet; order: number }>, local: Addr, remote: Addr): Candidate[] {
  const out: Candidate[] = [];
  for (const { set, order } of installed) {
    if (!set.live) continue;
    for (const sa of set.inbound) {
      const p = sa.params;
      const inner = innerOf(p);
      if (p.dstPort !== local.port || p.srcPort !== remote.port || !sameAddress(inner.src, remote.address)) continue;
      if (!isAny(local.address) && !sameAddress(inner.dst, local.address)) continue;
      out.push({ set, sa, order });
    }
  }
  return out;
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
