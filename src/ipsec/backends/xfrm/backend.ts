// The xfrm backend: 33.203 SA sets as Linux kernel SAs and policies over NETLINK_XFRM (ip-xfrm(8)
// semantics), SIP on ordinary UDP/TCP sockets on the protected ports. install = 4 × NEWSA then the
// policies, every ACK read, rollback on failure; remove/close delete only what carries our tag.
import { isIP } from 'node:net';
import { canonicalAddress, sameAddress as sameAddr, type Sa, type SaName } from '../../sa.ts';
import type { SaSet } from '../../sa-set.ts';
import { DEFAULT_REPLAY_WINDOW } from '../../types.ts';
import type { Addr, BackendCounters, IpsecBackend, ProtectedContext, ProtectedEndpoint } from '../backend.ts';
import { BackendError } from '../errors.ts';
import { XfrmUdpEndpoint, type ProtectedLookup } from './endpoint.ts';
import { XfrmError } from './errors.ts';
import { XfrmEvents, type KernelEvent } from './events.ts';
import { delSaMessage, getSaMessage, parseSa, saMessage, type SaRecord } from './messages.ts';
import { type PolicyOwner, PolicyTable } from './policies.ts';
import { configuredPeer, familyOf, hardSeconds, ownerTag, saSpecOf, selectorOf, wipeAlgorithms, type KernelPeer } from './plan.ts';
import { reconcile, type ReconcileResult } from './reconcile.ts';
import { EncapSockets, matchInbound, pickOutbound, readXfrmStat } from './support.ts';
import { ESRCH, XfrmNetlink, type XfrmTransport } from './socket.ts';
import { openProtectedTcp, type ProtectedTcpOptions, type ProtectedTcpTransport } from './tcp.ts';

export interface XfrmBackendOptions {
  /** Low half of the ownership tag (0..65535): backends with different instances never touch each other's entries. */
  readonly instance?: number;
  /** Clock (ms) the SA sets' expiresAt are in; the kernel gets hard lifetimes relative to it. */
  readonly now?: () => number;
  /** XFRM policy priority (lower wins); default 0. */
  readonly priority?: number;
  /** Delete stale tagged entries of this instance at start (default true). */
  readonly reconcile?: boolean;
  /** ESP-in-UDP mapping changes and hard expiries of our SAs, as the kernel reports them. */
  readonly onKernelEvent?: (e: KernelEvent & { set: SaSet; sa: Sa }) => void;
  /** Test hook: a netlink transport instead of the real socket. */
  readonly transport?: XfrmTransport;
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

export interface XfrmBackendCounters extends BackendCounters {
  /** Messages on a protected port that match no installed SA (dropped). */
  readonly unprotected: number;
}

interface KernelSa {
  readonly sa: Sa;
  peer: KernelPeer;
  /** Our clock when NEWSA went out: hard lifetimes count from the kernel's add_time. */
  installedAt: number;
  /** The expiresAt its lifetime was written for. */
  writtenExpiry: number | undefined;
  lastPackets: number;
}

interface Installed {
  readonly set: SaSet;
  readonly reqid: number;
  readonly order: number;
  readonly sas: Map<SaName, KernelSa>;
  readonly encapKey?: string;
}

export class XfrmBackend implements IpsecBackend, ProtectedLookup {
  readonly name = 'xfrm' as const;
  readonly tag: number;
  readonly #nl: XfrmTransport;
  readonly #now: () => number;
  readonly #policies: PolicyTable;
  readonly #installed = new Map<SaSet, Installed>();
  readonly #endpoints = new Map<string, XfrmUdpEndpoint>();
  readonly #tcp = new Set<ProtectedTcpTransport>();
  readonly #encap = new EncapSockets();
  readonly #events: XfrmEvents;
  readonly #reserved = new Map<string, number>();
  #order = 0;
  #reqid = 0;
  #unprotected = 0;
  #closed = false;

  private constructor(opts: XfrmBackendOptions, nl: XfrmTransport) {
    this.tag = ownerTag(opts.instance ?? 0);
    this.#nl = nl;
    this.#now = opts.now ?? Date.now;
    this.#policies = new PolicyTable(nl, opts.priority ?? 0, this.#now);
    this.#events = new XfrmEvents(!opts.transport, (ev) => this.#onEvent(ev, opts.onKernelEvent));
  }

  /** Opens netlink (needs the addon and CAP_NET_ADMIN) and removes this instance's stale leftovers. */
  static async create(opts: XfrmBackendOptions = {}): Promise<XfrmBackend> {
    const inst = opts.instance ?? 0;
    if (!Number.isInteger(inst) || inst < 0 || inst > 0xffff) throw new XfrmError('XFRM_BAD_PARAMS', `instance must be 0..65535, got ${inst}`);
    const b = new XfrmBackend(opts, opts.transport ?? new XfrmNetlink());
    if (opts.reconcile ?? true) b.reconcile();
    return b;
  }

  get sets(): readonly SaSet[] {
    return [...this.#installed.keys()];
  }

  get counters(): XfrmBackendCounters {
    const s = readXfrmStat();
    return { unknownSpi: s.XfrmInNoStates ?? 0, malformed: (s.XfrmInHdrError ?? 0) + (s.XfrmInStateProtoError ?? 0), keepalive: 0, nonEsp: 0, noEndpoint: 0, unprotected: this.#unprotected };
  }

  /** Deletes entries with this backend's tag that no installed set owns (a crashed run's leftovers). */
  reconcile(): ReconcileResult {
    const ownedSas = new Set<string>();
    for (const i of this.#installed.values()) for (const k of i.sas.values()) ownedSas.add(`${k.peer.dst}|${k.sa.spi}`);
    return reconcile(this.#nl, this.tag, ownedSas, (key) => this.#policies.has(key));
  }

  allocateSpis(localIp: string, n: number): number[] {
    if (isIP(localIp) === 0) throw new BackendError('BACKEND_BAD_PARAMS', `localIp must be an IP address, got ${JSON.stringify(localIp)}`);
    const out: number[] = [];
    const family = familyOf(localIp);
    for (let tries = 0; out.length < n; tries++) {
      if (tries > 100 * n) throw new XfrmError('XFRM_KERNEL', `could not find ${n} free SPIs for ${localIp}`);
      const spi = 256 + Math.floor(Math.random() * (0x1_0000_0000 - 256));
      const key = `${canonicalAddress(localIp)}|${spi}`;
      if (out.includes(spi) || this.#reserved.has(key)) continue;
      // RFC 4303 §2.1 / 33.203 §7.1: unique among the live inbound SAs of this host (any owner).
      const live = this.#nl.get(getSaMessage({ family, dst: localIp, spi }, this.#nl.nextSeq()), `GETSA spi 0x${spi.toString(16)}`, () => true);
      if (!live) out.push(spi);
    }
    for (const spi of out) this.#reserved.set(`${canonicalAddress(localIp)}|${spi}`, this.#now());
    while (this.#reserved.size > 4096) this.#reserved.delete(this.#reserved.keys().next().value!);
    return out;
  }

  async install(set: SaSet): Promise<void> {
    if (this.#closed) throw new XfrmError('XFRM_BAD_PARAMS', 'the xfrm backend is closed');
    if (this.#installed.has(set)) return;
    if (!set.live) throw new XfrmError('XFRM_BAD_PARAMS', `SA set ${set.id} is deleted`);
    const undo: (() => void)[] = [];
    let step = 'start';
    const now = this.#now();
    try {
      let encapKey: string | undefined;
      if (set.config.mode === 'udp-enc-tunnel') {
        const local = set.role === 'ue' ? { ip: set.config.ue.ip, port: set.config.encap?.uePort } : { ip: set.config.pcscf.ip, port: set.config.encap?.pcscfPort };
        step = `ESP-in-UDP socket ${local.ip}:${local.port ?? 4500}`;
        encapKey = this.#encap.acquire(local.ip, local.port ?? 4500);
        undo.push(() => this.#encap.release(encapKey!));
      }
      const inst: Installed = { set, reqid: this.#nextReqid(), order: ++this.#order, sas: new Map(), ...(encapKey ? { encapKey } : {}) };
      for (const sa of set.all) {
        const k: KernelSa = { sa, peer: configuredPeer(sa.params), installedAt: now, writtenExpiry: set.expiresAt, lastPackets: 0 };
        step = `NEWSA ${sa.name} spi 0x${sa.spi.toString(16)} ${sa.params.src} -> ${sa.params.dst}`;
        this.#writeSa(inst, k, false, step);
        undo.push(() => this.#deleteSa(k, `rollback DELSA ${sa.name}`));
        inst.sas.set(sa.name, k);
        this.#reserved.delete(`${canonicalAddress(sa.params.dst)}|${sa.spi}`);
      }
      this.#installed.set(set, inst);
      undo.push(() => this.#installed.delete(set));
      for (const k of inst.sas.values()) {
        const dir = k.sa.direction;
        const sel = selectorOf(k.sa.params, this.tag);
        // Snapshot co-owners' kernel counters: the inbound context lookup compares deltas.
        if (dir === 'in') for (const o of this.#policies.owners(dir, sel)) this.#kernelSa(o)!.lastPackets = this.#stats(this.#kernelSa(o)!)?.cur.packets ?? 0;
        step = `policy dir ${dir} for ${k.sa.name}`;
        undo.push(this.#policies.add(dir, sel, this.#owner(inst, k)));
      }
    } catch (e) {
      const failures: string[] = [];
      for (const u of undo.reverse()) {
        try {
          u();
        } catch (f) {
          failures.push((f as Error).message);
        }
      }
      const errno = (e as { errno?: number }).errno;
      const why = e instanceof Error ? e.message : String(e);
      throw new XfrmError(
        'XFRM_INSTALL_FAILED',
        `xfrm: installing SA set ${set.id} failed: ${why.startsWith(step) ? '' : `${step}: `}${why}; rolled back ${undo.length} step(s)` +
          (failures.length ? `; rollback problems: ${failures.join('; ')}` : ''),
        errno,
      );
    }
  }

  async remove(set: SaSet): Promise<void> {
    const inst = this.#installed.get(set);
    if (!inst) return;
    this.#installed.delete(set);
    const problems: string[] = [];
    const attempt = (f: () => void) => {
      try {
        f();
      } catch (e) {
        problems.push((e as Error).message);
      }
    };
    for (const k of inst.sas.values()) attempt(() => this.#policies.remove(k.sa.direction, selectorOf(k.sa.params, this.tag), set));
    for (const k of inst.sas.values()) attempt(() => this.#deleteSa(k, `DELSA ${k.sa.name} spi 0x${k.sa.spi.toString(16)}`));
    if (inst.encapKey) this.#encap.release(inst.encapKey);
    if (problems.length) throw new XfrmError('XFRM_KERNEL', `xfrm: removing SA set ${set.id}: ${problems.join('; ')}`);
  }

  /**
   * Brings the kernel in line with the sets: hard lifetimes after setLifetime (UPDSA keeps the
   * SA's sequence numbers; 33.203 §7.4 / spec digest §8 rule 3) and policy templates after state
   * changes (temporary → current → old). Sends call it for their set; callers may call it anytime.
   */
  refresh(set?: SaSet): void {
    for (const inst of set ? [this.#installed.get(set)].filter((i) => i !== undefined) : this.#installed.values()) {
      for (const k of inst.sas.values()) {
        if (k.writtenExpiry === inst.set.expiresAt) continue;
        this.#writeSa(inst, k, true, `UPDSA ${k.sa.name} lifetime`);
        k.writtenExpiry = inst.set.expiresAt;
      }
    }
    this.#policies.resync(set);
  }

  setPeerEncap(set: SaSet, peer: Addr): void {
    const inst = this.#installed.get(set);
    if (!inst || set.config.mode !== 'udp-enc-tunnel') return;
    for (const k of inst.sas.values()) {
      const p = k.sa.params;
      if (k.sa.direction === 'in') {
        if (k.peer.encap?.sport === peer.port) continue;
        k.peer = { dst: k.peer.dst, encap: { sport: peer.port, dport: k.peer.encap!.dport } };
        this.#writeSa(inst, k, true, `UPDSA ${k.sa.name} encap sport ${peer.port}`);
        continue;
      }
      const next: KernelPeer = { dst: peer.address, encap: { sport: k.peer.encap!.sport, dport: peer.port } };
      if (next.dst === k.peer.dst && next.encap!.dport === k.peer.encap?.dport) continue;
      if (familyOf(peer.address) !== familyOf(p.src)) throw new XfrmError('XFRM_BAD_PARAMS', `setPeerEncap: ${peer.address} is not of the SA's family`);
      if (next.dst === k.peer.dst) {
        k.peer = next;
        this.#writeSa(inst, k, true, `UPDSA ${k.sa.name} encap dport ${peer.port}`);
        continue;
      }
      // A new outer destination is a new SA identity: add it with the old sequence numbers, re-point the policy, delete the old one.
      const old = { ...k, peer: k.peer };
      const replay = this.#stats(k)?.replay;
      k.peer = next;
      k.installedAt = this.#now();
      this.#writeSa(inst, k, false, `NEWSA ${k.sa.name} towards ${peer.address}`, replay);
      this.#policies.resync(set);
      this.#deleteSa(old, `DELSA ${k.sa.name} old destination`);
    }
  }

  /** The kernel's counters for the set's SAs; also copied into each Sa's counters. */
  query(set: SaSet): XfrmSaStats[] {
    const inst = this.#installed.get(set);
    if (!inst) return [];
    const out: XfrmSaStats[] = [];
    for (const k of inst.sas.values()) {
      const r = this.#stats(k);
      if (!r) continue;
      const c = k.sa.counters;
      c.packets = r.cur.packets;
      c.bytes = r.cur.bytes;
      c.drops.replay = r.stats.replay;
      c.drops.icv = r.stats.integrityFailed;
      out.push({ name: k.sa.name, spi: k.sa.spi, packets: r.cur.packets, bytes: r.cur.bytes, replayDrops: r.stats.replay, integrityFailures: r.stats.integrityFailed, replayWindow: r.replayWindow, hardSeconds: r.hardSeconds, seq: (k.sa.direction === 'out' ? r.replay?.oseq : r.replay?.seq) ?? 0 });
    }
    return out;
  }

  async openEndpoint(local: Addr): Promise<ProtectedEndpoint> {
    const key = `${local.address}|${local.port}`;
    let ep = this.#endpoints.get(key);
    if (!ep) {
      ep = await XfrmUdpEndpoint.open(this, local);
      this.#endpoints.set(key, ep);
      ep.onClose(() => this.#endpoints.delete(key));
    }
    return ep;
  }

  /**
   * SIP over TCP on a protected port through the kernel SAs (spec digest §6.2): `server` listens
   * on port_us / port_ps; `client` connects from port_uc / port_pc. Contexts carry the SA set.
   */
  async openTcp(opts: Omit<ProtectedTcpOptions, 'lookup'>): Promise<ProtectedTcpTransport> {
    const t = await openProtectedTcp({ ...opts, lookup: this });
    this.#tcp.add(t);
    return t;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const problems: string[] = [];
    for (const set of [...this.#installed.keys()]) await this.remove(set).catch((e: Error) => problems.push(e.message));
    for (const t of this.#tcp) await t.close();
    for (const ep of [...this.#endpoints.values()]) ep.close();
    try {
      this.#policies.clear();
      this.reconcile();
    } catch (e) {
      problems.push((e as Error).message);
    }
    this.#encap.closeAll();
    this.#events.close();
    this.#nl.close();
    if (problems.length) throw new XfrmError('XFRM_KERNEL', `xfrm: close: ${problems.join('; ')}`);
  }

  // ---------------------------------------------------------------- ProtectedLookup

  contextFor(local: Addr, remote: Addr): ProtectedContext | undefined {
    this.#events.drain();
    const cands = matchInbound(this.#installed.values(), local, remote);
    let pick = cands[0];
    if (cands.length > 1) {
      // Several sets share this port pair (old/current/temporary keep the server ports): the one
      // whose inbound SA counted new packets in the kernel carried it; else the best set.
      const moved = cands.filter((c) => {
        const k = this.#installed.get(c.set)!.sas.get(c.sa.name)!;
        const packets = this.#stats(k)?.cur.packets ?? k.lastPackets;
        const grew = packets > k.lastPackets;
        k.lastPackets = packets;
        return grew;
      });
      pick = pickOutbound(moved.length ? moved : cands);
    }
    if (!pick) return undefined;
    const p = pick.sa.params;
    const ev = this.#events.mappingOf(canonicalAddress(p.dst), p.spi);
    return {
      set: pick.set,
      sa: pick.sa,
      local: { address: local.address, port: local.port },
      remote: { address: remote.address, port: remote.port },
      outerSrc: p.mode === 'udp-enc-tunnel' ? (ev?.newSrc ?? p.src) : remote.address,
      ...(p.mode === 'udp-enc-tunnel' ? { outerEncapSrcPort: ev?.newSport ?? p.encap?.srcPort ?? 4500 } : {}),
    };
  }

  prepareSend(local: Addr, to: Addr, given?: SaSet): { set: SaSet; sa: Sa } {
    const found = pickOutbound(
      [...this.#installed.values()].flatMap((i) =>
        i.set.live && (!given || i.set === given) ? i.set.outbound.filter((sa) => fitsOutbound(sa, local, to)).map((sa) => ({ set: i.set, sa, order: i.order })) : [],
      ),
    );
    if (!found) throw new BackendError('BACKEND_NO_SA', `no live SA set${given ? ` (${given.id})` : ''} protects ${local.address}:${local.port} -> ${to.address}:${to.port}`);
    this.refresh(found.set);
    this.#policies.point('out', selectorOf(found.sa.params, this.tag), found.set);
    return found;
  }

  countUnprotected(): void {
    this.#unprotected++;
  }

  // ---------------------------------------------------------------- internals

  #nextReqid(): number {
    this.#reqid = (this.#reqid % 0xffff) + 1;
    return ((this.tag & 0xffff) << 16 | this.#reqid) >>> 0 || 1;
  }

  #owner(inst: Installed, k: KernelSa): PolicyOwner {
    return { set: inst.set, sa: k.sa, reqid: inst.reqid, order: inst.order, peer: () => k.peer };
  }

  #kernelSa(o: { set: SaSet; sa: Sa }): KernelSa | undefined {
    return this.#installed.get(o.set)?.sas.get(o.sa.name);
  }

  #writeSa(inst: Installed, k: KernelSa, update: boolean, step: string, replay?: SaRecord['replay']): void {
    const spec = saSpecOf(k.sa, {
      tag: this.tag,
      reqid: inst.reqid,
      peer: k.peer,
      hardSeconds: hardSeconds(inst.set.expiresAt, k.installedAt),
      replayWindow: k.sa.params.replayWindow ?? DEFAULT_REPLAY_WINDOW,
      ...(replay ? { replay } : {}),
    });
    try {
      this.#nl.request(saMessage(spec, { seq: this.#nl.nextSeq(), update }), step);
    } finally {
      wipeAlgorithms(spec.algs);
    }
  }

  #deleteSa(k: KernelSa, step: string): void {
    try {
      this.#nl.request(delSaMessage({ family: familyOf(k.peer.dst), dst: k.peer.dst, spi: k.sa.spi }, this.#nl.nextSeq()), step);
    } catch (e) {
      if ((e as { errno?: number }).errno !== ESRCH) throw e; // already expired in the kernel
    }
  }

  #stats(k: KernelSa): SaRecord | undefined {
    return this.#nl.get(getSaMessage({ family: familyOf(k.peer.dst), dst: k.peer.dst, spi: k.sa.spi }, this.#nl.nextSeq()), `GETSA ${k.sa.name}`, parseSa);
  }

  #onEvent(ev: KernelEvent, cb: XfrmBackendOptions['onKernelEvent']): void {
    for (const inst of this.#installed.values()) {
      for (const k of inst.sas.values()) {
        if (k.sa.spi === ev.spi && k.peer.dst === ev.dst) cb?.({ ...ev, set: inst.set, sa: k.sa });
      }
    }
  }
}

function fitsOutbound(sa: Sa, local: Addr, to: Addr): boolean {
  const p = sa.params;
  const dst = p.mode === 'udp-enc-tunnel' ? (p.innerDst ?? p.dst) : p.dst;
  return p.srcPort === local.port && p.dstPort === to.port && (sameAddr(dst, to.address) || sameAddr(p.dst, to.address));
}

