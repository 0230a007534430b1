// The kernel side of one installed SA set: its four XFRM SAs (NEWSA/UPDSA/DELSA/GETSA), where each
// points now (NAT-moved peers, spec digest §15A point 6), the lifetime written, and the per-SA
// counters the kernel keeps (`ip -s xfrm state`: lifetime current, stats).
import { canonicalAddress as canonical, type Sa, type SaName } from '../../sa.ts';
import type { SaSet } from '../../sa-set.ts';
import { DEFAULT_REPLAY_WINDOW } from '../../types.ts';
import type { Addr } from '../backend.ts';
import { XfrmError } from './errors.ts';
import { delSaMessage, getSaMessage, parseSa, saMessage, type SaRecord } from './messages.ts';
import { familyOf, hardSeconds, saSpecOf, wipeAlgorithms, type KernelPeer } from './plan.ts';
import { ESRCH, type XfrmTransport } from './socket.ts';

export interface KernelSa {
  readonly sa: Sa;
  peer: KernelPeer;
  /** Our clock when NEWSA went out: UPDSA lifetimes count from the kernel's add_time. */
  installedAt: number;
  /** The set's expiresAt the kernel lifetime was written for. */
  writtenExpiry: number | undefined;
  /** Packets the kernel had counted when we last looked (inbound set disambiguation). */
  lastPackets: number;
}

export interface Installed {
  readonly set: SaSet;
  readonly reqid: number;
  readonly order: number;
  readonly sas: Map<SaName, KernelSa>;
  readonly encapKey?: string;
}

/** Per-SA figures from the kernel (GETSA): lifetime counters and drop statistics. */
export interface XfrmSaStats {
  readonly name: SaName;
  readonly spi: number;
  readonly packets: number;
  readonly bytes: number;
  readonly replayDrops: number;
  readonly integrityFailures: number;
  readonly replayWindow: number;
  readonly hardSeconds: number;
  /** Outbound: the last sequence number sent; inbound: the highest one received. */
  readonly seq: number;
}

export class KernelSas {
  constructor(
    private readonly nl: XfrmTransport,
    private readonly tag: number,
    private readonly now: () => number,
  ) {}

  /** NEWSA (or UPDSA) with the SA's keys, which are zeroed again right after the message is built and sent. */
  write(inst: Installed, k: KernelSa, update: boolean, step: string, replay?: SaRecord['replay']): void {
    const spec = saSpecOf(k.sa, {
      tag: this.tag,
      reqid: inst.reqid,
      peer: k.peer,
      hardSeconds: hardSeconds(inst.set.expiresAt, k.installedAt),
      replayWindow: k.sa.params.replayWindow ?? DEFAULT_REPLAY_WINDOW,
      ...(replay ? { replay } : {}),
    });
    try {
      this.nl.request(saMessage(spec, { seq: this.nl.nextSeq(), update }), step);
    } finally {
      wipeAlgorithms(spec.algs);
    }
    k.writtenExpiry = inst.set.expiresAt;
  }

  /** DELSA; an SA the kernel already expired (ESRCH) counts as deleted. */
  delete(k: KernelSa, step: string): void {
    try {
      this.nl.request(delSaMessage({ family: familyOf(k.peer.dst), dst: k.peer.dst, spi: k.sa.spi }, this.nl.nextSeq()), step);
    } catch (e) {
      if ((e as { errno?: number }).errno !== ESRCH) throw e;
    }
  }

  /**
   * `n` random SPIs in 256..2^32-1 with no live SA at `dst` (GETSA each) and not in `reserved`
   * (handed out, not yet installed; the oldest are forgotten past 4096), which they join.
   */
  freeSpis(dst: string, n: number, rand: () => number, reserved: Set<string>): number[] {
    const out: number[] = [];
    for (let tries = 0; out.length < n; tries++) {
      if (tries > 100 * n) throw new XfrmError('XFRM_KERNEL', `could not find ${n} free SPIs for ${dst}`);
      const spi = 256 + (rand() % (0x1_0000_0000 - 256));
      if (out.includes(spi) || reserved.has(`${dst}|${spi}`)) continue;
      const live = this.nl.get(
        getSaMessage({ family: familyOf(dst), dst, spi }, this.nl.nextSeq()),
        `GETSA spi 0x${spi.toString(16)}`,
        () => true,
      );
      if (!live) out.push(spi);
    }
    for (const spi of out) reserved.add(`${dst}|${spi}`);
    while (reserved.size > 4096) reserved.delete(reserved.values().next().value!);
    return out;
  }

  /** GETSA: the kernel's record (no keys), or undefined when it is gone. */
  stats(k: KernelSa): SaRecord | undefined {
    return this.nl.get(
      getSaMessage({ family: familyOf(k.peer.dst), dst: k.peer.dst, spi: k.sa.spi }, this.nl.nextSeq()),
      `GETSA ${k.sa.name} spi 0x${k.sa.spi.toString(16)}`,
      parseSa,
    );
  }

  /** The kernel's counters for the set's SAs, also copied into each Sa's counters. */
  query(inst: Installed): XfrmSaStats[] {
    const out: XfrmSaStats[] = [];
    for (const k of inst.sas.values()) {
      const r = this.stats(k);
      if (!r) continue;
      const c = k.sa.counters;
      c.packets = r.cur.packets;
      c.bytes = r.cur.bytes;
      c.drops.replay = r.stats.replay;
      c.drops.icv = r.stats.integrityFailed;
      const seq = (k.sa.direction === 'out' ? r.replay?.oseq : r.replay?.seq) ?? 0;
      out.push({
        name: k.sa.name,
        spi: k.sa.spi,
        packets: r.cur.packets,
        bytes: r.cur.bytes,
        replayDrops: r.stats.replay,
        integrityFailures: r.stats.integrityFailed,
        replayWindow: r.replayWindow,
        hardSeconds: r.hardSeconds,
        seq,
      });
    }
    return out;
  }

  /**
   * The peer of a UDP-enc-tun set moved (Annex M; the P-CSCF learnt port_Uenc): inbound SAs expect
   * the new source port (UPDSA), outbound ones send to the new port (UPDSA) or, for a new outer
   * address, are re-added there with their sequence numbers before the old one goes. `repoint`
   * runs between add and delete so the policies never name a missing SA.
   */
  movePeer(inst: Installed, peer: Addr, repoint: () => void): void {
    for (const k of inst.sas.values()) {
      const enc = k.peer.encap;
      if (!enc) continue;
      if (k.sa.direction === 'in') {
        if (enc.sport === peer.port) continue;
        k.peer = { dst: k.peer.dst, encap: { sport: peer.port, dport: enc.dport } };
        this.write(inst, k, true, `UPDSA ${k.sa.name} encap sport ${peer.port}`);
        continue;
      }
      if (familyOf(peer.address) !== familyOf(k.peer.dst))
        throw new XfrmError('XFRM_BAD_PARAMS', `setPeerEncap: ${peer.address} is not of the SA's address family`);
      const next: KernelPeer = { dst: canonical(peer.address), encap: { sport: enc.sport, dport: peer.port } };
      if (next.dst === k.peer.dst && peer.port === enc.dport) continue;
      if (next.dst === k.peer.dst) {
        k.peer = next;
        this.write(inst, k, true, `UPDSA ${k.sa.name} encap dport ${peer.port}`);
        continue;
      }
      const old: KernelSa = { ...k };
      const replay = this.stats(k)?.replay;
      k.peer = next;
      k.installedAt = this.now();
      this.write(inst, k, false, `NEWSA ${k.sa.name} towards ${peer.address}:${peer.port}`, replay);
      repoint();
      this.delete(old, `DELSA ${k.sa.name} at its old destination ${old.peer.dst}`);
    }
  }
}
