// The xfrm backend: 33.203 SA sets as Linux kernel SAs and policies over NETLINK_XFRM (ip-xfrm(8)
// semantics), SIP on ordinary UDP/TCP sockets on the protected ports. install = 4 × NEWSA then the
// policies, every ACK read, rollback on failure; remove/close delete only what carries our tag.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../../util/clock.ts';
import { isIP } from 'node:net';
import { canonicalAddress, type Sa } from '../../sa.ts';
import type { SaSet } from '../../sa-set.ts';
import { ENCRYPTION_ALGS, INTEGRITY_ALGS } from '../../algorithms.ts';
import type { Addr, BackendCounters, BackendFeatures, IpsecBackend, ProtectedContext, ProtectedEndpoint, SaStats } from '../backend.ts';
import { NAT_T_PORT } from '../../types.ts';
import { BackendError } from '../errors.ts';
import { XfrmUdpEndpoint, type ProtectedLookup } from './endpoint.ts';
import { XfrmError } from './errors.ts';
import { XfrmEvents, type KernelEvent } from './events.ts';
import { KernelSas, type Installed, type KernelSa, type XfrmSaStats } from './kernel-sas.ts';
import { PolicyTable } from './policies.ts';
import { configuredPeer, familyOf, innerOf, ownerTag, selectorOf } from './plan.ts';
import { adoptedPeer, kernelMismatch } from './adopt.ts';
import { reconcile, type ReconcileResult } from './reconcile.ts';
import { XfrmNetlink, type XfrmTransport } from './socket.ts';
import { getSaMessage, parseSa } from './messages.ts';
import { EncapSockets, fitsOutbound, InboundIndex, pickOutbound, readXfrmStat, UeKeepalives, type EncapOpener } from './support.ts';
import { openProtectedTcp, type ProtectedTcpOptions, type ProtectedTcpTransport } from './tcp.ts';

export type { XfrmSaStats } from './kernel-sas.ts';

/** Options of the Linux XFRM backend (`XfrmBackend`). */
export interface XfrmBackendOptions {
  /**
   * Low half of the ownership tag (0..65535). Reconcile deletes stale entries of *this* instance,
   * so two processes sharing a network namespace need different instances.
   */
  readonly instance?: number;
  /**
   * The clock the SA sets' expiresAt are in (the UE's / P-CSCF's): the kernel gets hard lifetimes
   * relative to it; NAT-keepalive timers run on it.
   */
  readonly clock: Clock;
  /** XFRM policy priority (lower wins); default 0. */
  readonly priority?: number;
  /**
   * Delete stale tagged entries of this instance at start (default true). False when a state store
   * restores sets first (`restore`): the caller reconciles after the restores, removing only orphans.
   */
  readonly reconcile?: boolean;
  /** Wall-clock ms (default Date.now): the kernel's add_time of an adopted SA is wall-clock seconds. */
  readonly wallNow?: () => number;
  /**
   * NAT-keepalive interval (RFC 3948 §4, spec digest §15A point 3): a UE's UDP-enc-tun sets get one
   * 0xFF octet from its ESP-in-UDP socket to the P-CSCF's every `keepaliveMs` (default 20 s; 0 = off).
   */
  readonly keepaliveMs?: number;
  /** ESP-in-UDP mapping changes and expiries of our SAs, as the kernel reports them. */
  readonly onKernelEvent?: (e: KernelEvent & { set: SaSet; sa: Sa }) => void;
  /**
   * The UE's local ESP-in-UDP port for UDP-enc-tun sets (default 4500, spec digest §15A point 1);
   * the UE's SA table and the P-CSCF read it as `encapPort` (the userspace backend's property).
   */
  readonly encapPort?: number;
  /** Test hooks: a netlink transport instead of the real socket (disables kernel events), SPI randomness, ESP-in-UDP sockets. */
  readonly transport?: XfrmTransport;
  readonly randomUint32?: () => number;
  readonly openEspInUdp?: EncapOpener;
}

export interface XfrmBackendCounters extends BackendCounters {
  /** Messages on a protected port that match no installed SA (dropped, never given to SIP). */
  readonly unprotected: number;
}

/** Kernel SAs carry any protocol, so SIP over TCP too (spec digest §6.2); every Annex H algorithm has a Linux name. */
export const XFRM_FEATURES: BackendFeatures = Object.freeze<BackendFeatures>({
  modes: ['transport', 'udp-enc-tunnel'],
  transports: ['udp', 'tcp'],
  integrity: INTEGRITY_ALGS,
  encryption: ENCRYPTION_ALGS,
});

/** SAs and policies in the Linux kernel over NETLINK_XFRM (what `ip xfrm` does): needs CAP_NET_ADMIN, ESP in the kernel and the native addon built at install. SIP runs over UDP and TCP on ordinary sockets through them. */
export class XfrmBackend implements IpsecBackend, ProtectedLookup {
  readonly name = 'xfrm' as const;
  readonly features = XFRM_FEATURES;
  readonly tag: number;
  /** Our ESP-in-UDP port (written into UDP-enc-tun sets by the UE and the P-CSCF). */
  readonly encapPort: number;
  readonly #nl: XfrmTransport;
  readonly #now: () => number;
  readonly #rand: () => number;
  readonly #wall: () => number;
  readonly #kernel: KernelSas;
  readonly #policies: PolicyTable;
  readonly #installed = new Map<SaSet, Installed>();
  readonly #inbound = new InboundIndex();
  readonly #endpoints = new Map<string, XfrmUdpEndpoint>();
  readonly #tcp = new Set<ProtectedTcpTransport>();
  readonly #encap: EncapSockets;
  readonly #events: XfrmEvents;
  readonly #keepalive: UeKeepalives;
  /** SPIs handed out by allocateSpis and not yet installed (`addr|spi`), oldest first. */
  readonly #reserved = new Set<string>();
  #order = 0;
  #reqid = 0;
  #unprotected = 0;
  #closed = false;
  /** handOver(): the kernel keeps our SAs and policies for the next run; close() removes nothing. */
  #handedOver = false;

  private constructor(opts: XfrmBackendOptions, nl: XfrmTransport) {
    this.tag = ownerTag(opts.instance ?? 0);
    this.encapPort = opts.encapPort || NAT_T_PORT;
    this.#nl = nl;
    const clock = opts.clock;
    this.#now = () => clock.now();
    this.#rand = opts.randomUint32 ?? (() => randomBytes(4).readUInt32BE(0));
    this.#wall = opts.wallNow ?? Date.now;
    this.#kernel = new KernelSas(nl, this.tag, this.#now);
    this.#encap = new EncapSockets(opts.openEspInUdp);
    this.#keepalive = new UeKeepalives(this.#encap, clock, opts.keepaliveMs);
    this.#policies = new PolicyTable(nl, opts.priority ?? 0, this.#now);
    this.#events = new XfrmEvents(!opts.transport, (ev) => this.#onEvent(ev, opts.onKernelEvent));
  }

  /** Opens netlink (needs the addon and CAP_NET_ADMIN) and removes this instance's stale leftovers. */
  static async create(opts: XfrmBackendOptions): Promise<XfrmBackend> {
    const inst = opts.instance ?? 0;
    if (!Number.isInteger(inst) || inst < 0 || inst > 0xffff)
      throw new XfrmError('XFRM_BAD_PARAMS', `instance must be 0..65535, got ${inst}`);
    const b = new XfrmBackend(opts, opts.transport ?? new XfrmNetlink());
    if (opts.reconcile ?? true) b.reconcile();
    return b;
  }

  get sets(): readonly SaSet[] {
    return [...this.#installed.keys()];
  }

  /** unknownSpi / malformed: this namespace's /proc/net/xfrm_stat (every SA, not only ours). */
  get counters(): XfrmBackendCounters {
    const s = readXfrmStat();
    return {
      unknownSpi: s.XfrmInNoStates ?? 0,
      malformed: (s.XfrmInHdrError ?? 0) + (s.XfrmInStateProtoError ?? 0),
      keepalive: 0,
      keepalivesSent: this.#keepalive.sent,
      nonEsp: 0,
      noEndpoint: 0,
      unprotected: this.#unprotected,
    };
  }

  /** Deletes entries with this backend's tag that no installed set owns (a crashed run's leftovers). */
  reconcile(): ReconcileResult {
    const ownedSas = new Set<string>();
    for (const i of this.#installed.values()) for (const k of i.sas.values()) ownedSas.add(`${k.peer.dst}|${k.sa.spi}`);
    return reconcile(this.#nl, this.tag, ownedSas, (key) => this.#policies.has(key));
  }

  /** RFC 4303 §2.1 / 33.203 §7.1: random SPIs ≥ 256 that no live SA of this host has (GETSA each). */
  /** The set counts as installed here (sends and inbound lookups see it); the undo forgets it again. */
  #track(inst: Installed, undo: (() => void)[]): void {
    this.#installed.set(inst.set, inst);
    this.#inbound.set(inst, true);
    undo.push(() => {
      this.#installed.delete(inst.set);
      this.#inbound.set(inst, false);
    });
  }

  /**
   * udp-enc-tunnel: holds the UDP_ENCAP socket on our encapsulation port (its release goes into `undo`).
   * Spec digest §17: without it, arriving ESP-in-UDP never reaches XFRM.
   */
  #acquireEncap(set: SaSet, undo: (() => void)[]): string | undefined {
    if (set.config.mode !== 'udp-enc-tunnel') return undefined;
    const [ip, port] = encapEndpoint(set);
    const key = this.#encap.acquire(ip, port);
    undo.push(() => this.#encap.release(key));
    return key;
  }

  allocateSpis(localIp: string, n: number): number[] {
    if (isIP(localIp) === 0) throw new BackendError('BACKEND_BAD_PARAMS', `localIp must be an IP address, got ${JSON.stringify(localIp)}`);
    return this.#kernel.freeSpis(canonicalAddress(localIp), n, this.#rand, this.#reserved);
  }

  async install(set: SaSet): Promise<void> {
    if (this.#closed) throw new XfrmError('XFRM_BAD_PARAMS', 'the xfrm backend is closed');
    if (this.#installed.has(set)) return;
    if (!set.live) throw new XfrmError('XFRM_BAD_PARAMS', `SA set ${set.id} is deleted`);
    const undo: (() => void)[] = [];
    let step = 'start';
    try {
      step = `ESP-in-UDP socket ${encapEndpoint(set).join(':')}`;
      const encapKey = this.#acquireEncap(set, undo);
      const inst: Installed = { set, reqid: this.#nextReqid(), order: ++this.#order, sas: new Map(), ...(encapKey ? { encapKey } : {}) };
      const now = this.#now();
      for (const sa of set.all) {
        const k: KernelSa = { sa, peer: configuredPeer(sa.params), installedAt: now, writtenExpiry: undefined, lastPackets: 0 };
        step = `NEWSA ${sa.name} spi 0x${sa.spi.toString(16)} ${sa.params.src} -> ${sa.params.dst}`;
        this.#kernel.write(inst, k, false, step);
        undo.push(() => this.#kernel.delete(k, `rollback: DELSA ${sa.name}`));
        inst.sas.set(sa.name, k);
        this.#reserved.delete(`${k.peer.dst}|${sa.spi}`);
      }
      this.#track(inst, undo);
      for (const k of inst.sas.values()) {
        const dir = k.sa.direction;
        const sel = selectorOf(k.sa.params, this.tag);
        // Inbound port pairs shared with other sets: snapshot their kernel counters (contextFor compares deltas).
        if (dir === 'in') for (const o of this.#policies.owners(dir, sel)) this.#snapshot(o.set, o.sa);
        step = `policy dir ${dir} for ${k.sa.name}`;
        undo.push(this.#policies.add(dir, sel, { set, sa: k.sa, reqid: inst.reqid, order: inst.order, peer: () => k.peer }));
      }
      this.#keepalive.update(this.#installed.values());
    } catch (e) {
      const failures: string[] = [];
      for (const u of undo.reverse()) {
        try {
          u();
        } catch (f) {
          failures.push((f as Error).message);
        }
      }
      const why = e instanceof Error ? e.message : String(e);
      throw new XfrmError(
        'XFRM_INSTALL_FAILED',
        `xfrm: installing SA set ${set.id} failed: ${why.startsWith(step) ? '' : `${step}: `}${why}; rolled back ${undo.length} step(s)` +
          (failures.length ? `; rollback problems: ${failures.join('; ')}` : ''),
        (e as { errno?: number }).errno,
      );
    }
  }

  async remove(set: SaSet): Promise<void> {
    const inst = this.#installed.get(set);
    if (!inst) return;
    this.#installed.delete(set);
    this.#inbound.set(inst, false);
    // The kernel's final counters into the Sa's (their last read; best effort, a failed read keeps the previous one).
    try {
      this.#kernel.query(inst);
    } catch {
      // the removal below reports a kernel that does not answer
    }
    const problems: string[] = [];
    const attempt = (f: () => void) => {
      try {
        f();
      } catch (e) {
        problems.push((e as Error).message);
      }
    };
    // Policies first, so that no policy is left naming a deleted SA.
    for (const k of inst.sas.values()) attempt(() => this.#policies.remove(k.sa.direction, selectorOf(k.sa.params, this.tag), set));
    for (const k of inst.sas.values()) {
      attempt(() => this.#kernel.delete(k, `DELSA ${k.sa.name} spi 0x${k.sa.spi.toString(16)}`));
      this.#events.forget(k.peer.dst, k.sa.spi);
    }
    if (inst.encapKey) attempt(() => this.#encap.release(inst.encapKey!));
    this.#keepalive.update(this.#installed.values());
    if (problems.length) throw new XfrmError('XFRM_KERNEL', `xfrm: removing SA set ${set.id}: ${problems.join('; ')}`);
  }

  /**
   * A set read back from a state store (issue 13 §3), whose SAs the kernel kept when the previous
   * run ended: adopted as the kernel has them (adopt.ts says why, and what must match), policies
   * re-pointed in place (UPDPOLICY). Same shape as install(): every step records its undo.
   *
   * A set the kernel does not hold, or holds differently, is refused (XFRM_RESTORE_MISMATCH) and
   * nothing is written: re-adding it would need its sequence numbers, which only the lost kernel SA
   * had (the store's marks do not follow the kernel's counters), and a guess could repeat outbound
   * numbers under the same keys (with AES-GCM, its IVs). That happens when the kernel lost the SAs
   * (a reboot, a flush), not when the process died; the UE then registers again (spec digest §8
   * rule 6). What is left of ours is removed by reconcile() once every set is restored.
   */
  async restore(set: SaSet): Promise<void> {
    if (this.#closed) throw new XfrmError('XFRM_BAD_PARAMS', 'the xfrm backend is closed');
    if (this.#installed.has(set)) return;
    if (!set.live) throw new XfrmError('XFRM_BAD_PARAMS', `SA set ${set.id} is deleted`);
    const found = set.all.map((sa) => {
      const dst = canonicalAddress(sa.params.dst);
      const r = this.#nl.get(getSaMessage({ family: familyOf(dst), dst, spi: sa.spi }, this.#nl.nextSeq()), `GETSA ${sa.name}`, parseSa);
      return { sa, r, why: kernelMismatch(sa, r, this.tag) };
    });
    const reqids = new Set(found.map((f) => f.r?.reqid));
    const bad = found.find((f) => f.why !== undefined)?.why ?? (reqids.size > 1 ? 'its four kernel SAs carry different reqids' : undefined);
    if (bad !== undefined) throw new XfrmError('XFRM_RESTORE_MISMATCH', `xfrm: SA set ${set.id} cannot be adopted: ${bad}`);
    const reqid = found[0]!.r!.reqid;
    // New sets of this run must not reuse an adopted reqid (the outbound templates name it).
    if (reqid >>> 16 === (this.tag & 0xffff)) this.#reqid = Math.max(this.#reqid, reqid & 0xffff);
    const undo: (() => void)[] = [];
    let step = 'start';
    try {
      step = `ESP-in-UDP socket ${encapEndpoint(set).join(':')}`;
      const encapKey = this.#acquireEncap(set, undo);
      const inst: Installed = { set, reqid, order: ++this.#order, sas: new Map(), ...(encapKey ? { encapKey } : {}) };
      const now = this.#now();
      for (const { sa, r } of found) {
        // UPDSA lifetimes count from the kernel's add time (wall-clock seconds): placed on our clock.
        const added = r!.cur.addTime > 0 ? now - Math.max(0, this.#wall() - r!.cur.addTime * 1000) : now;
        inst.sas.set(sa.name, { sa, peer: adoptedPeer(r!), installedAt: added, writtenExpiry: undefined, lastPackets: r!.cur.packets });
      }
      this.#track(inst, undo);
      for (const k of inst.sas.values()) {
        const dir = k.sa.direction;
        step = `policy dir ${dir} for ${k.sa.name}`;
        undo.push(
          this.#policies.add(dir, selectorOf(k.sa.params, this.tag), { set, sa: k.sa, reqid, order: inst.order, peer: () => k.peer }, true),
        );
      }
      // The stored lifetime goes to the kernel now (UPDSA keeps the SAs and their numbers).
      step = 'UPDSA lifetimes';
      this.#syncLifetime(inst);
      this.#keepalive.update(this.#installed.values());
    } catch (e) {
      for (const u of undo.reverse()) {
        try {
          u();
        } catch {
          // the error below names the step that failed; reconcile() removes what stays behind
        }
      }
      const why = e instanceof Error ? e.message : String(e);
      throw new XfrmError(
        'XFRM_INSTALL_FAILED',
        `xfrm: adopting SA set ${set.id} failed: ${step}: ${why}`,
        (e as { errno?: number }).errno,
      );
    }
  }

  /**
   * Leaves every SA and policy of ours in the kernel for the next run of this P-CSCF (its state
   * store restores the sets, `restore`): the sets are forgotten here, nothing is deleted, and close()
   * then removes nothing. A planned restart keeps its registrations as a crash does.
   */
  handOver(): void {
    this.#handedOver = true;
    for (const inst of this.#installed.values()) {
      this.#inbound.set(inst, false);
      if (inst.encapKey) this.#encap.release(inst.encapKey);
    }
    this.#installed.clear();
    this.#policies.clear();
    this.#keepalive.update(this.#installed.values());
  }

  /**
   * Brings the kernel in line with the sets: hard lifetimes after setLifetime (UPDSA, which keeps
   * the SAs and their sequence numbers; spec digest §8 rule 3) and policy templates after state
   * changes (temporary → current → old). Sends call it for their set; callers may call it anytime.
   */
  refresh(set?: SaSet): void {
    for (const inst of set ? [this.#installed.get(set)] : [...this.#installed.values()]) if (inst) this.#syncLifetime(inst);
    this.#policies.resync(set);
  }

  /** Annex M: the peer's NAT-mapped address and encapsulation port (spec digest §15A points 2 and 6). */
  setPeerEncap(set: SaSet, peer: Addr): void {
    const inst = this.#installed.get(set);
    if (!inst || set.config.mode !== 'udp-enc-tunnel') return;
    this.#kernel.movePeer(inst, peer, () => this.#policies.resync(set));
    this.#keepalive.update(this.#installed.values());
  }

  /** The kernel's counters for the set's SAs (`ip -s xfrm state`); also copied into each Sa's counters. */
  query(set: SaSet): XfrmSaStats[] {
    const inst = this.#installed.get(set);
    return inst ? this.#kernel.query(inst) : [];
  }

  saStats(set: SaSet): SaStats[] {
    return this.query(set);
  }

  async openEndpoint(local: Addr): Promise<ProtectedEndpoint> {
    const key = `${canonicalAddress(local.address)}|${local.port}`;
    let ep = this.#endpoints.get(key);
    if (!ep) {
      ep = await XfrmUdpEndpoint.open(this, local);
      this.#endpoints.set(key, ep);
      ep.onClose(() => this.#endpoints.delete(key));
    }
    return ep;
  }

  /**
   * SIP over TCP on a protected port through the kernel SAs (spec digest §6.2): `server` listens on
   * port_us / port_ps and answers on the accepted connections; `client` connects from port_uc /
   * port_pc. Each message's ReceiveContext.via is its ProtectedContext.
   */
  async openTcp(opts: Omit<ProtectedTcpOptions, 'lookup'>): Promise<ProtectedTcpTransport> {
    const t = await openProtectedTcp({ ...opts, lookup: this });
    this.#tcp.add(t);
    return t;
  }

  /** Removes every set, then anything else with our tag; closes sockets. Afterwards the SAD/SPD hold nothing of ours. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const problems: string[] = [];
    for (const set of [...this.#installed.keys()]) await this.remove(set).catch((e: Error) => problems.push(e.message));
    for (const t of this.#tcp) await t.close();
    for (const ep of [...this.#endpoints.values()]) ep.close();
    try {
      this.#policies.clear();
      if (!this.#handedOver) this.reconcile();
    } catch (e) {
      problems.push((e as Error).message);
    }
    this.#keepalive.close();
    this.#encap.closeAll();
    this.#events.close();
    this.#nl.close();
    if (problems.length) throw new XfrmError('XFRM_KERNEL', `xfrm: close: ${problems.join('; ')}`);
  }

  // ---------------------------------------------------------------- ProtectedLookup

  contextFor(local: Addr, remote: Addr): ProtectedContext | undefined {
    this.#events.drain();
    const cands = this.#inbound.match(local, remote);
    let pick = cands[0];
    if (cands.length > 1) {
      // Several sets share this port pair (the server ports survive re-registration): the one whose
      // inbound SA the kernel counted new packets on carried it; otherwise the best set.
      const moved = cands.filter((c) => this.#snapshot(c.set, c.sa));
      pick = pickOutbound(moved.length ? moved : cands);
    }
    if (!pick) return undefined;
    const p = pick.sa.params;
    const tunnel = p.mode === 'udp-enc-tunnel';
    const map = tunnel ? this.#events.mappingOf(canonicalAddress(p.dst), p.spi) : undefined;
    // Without a kernel mapping event in this run: the port the kernel SA expects now (moved by
    // setPeerEncap, or adopted as moved at a restart), not the configured one.
    const expected = tunnel ? this.#installed.get(pick.set)?.sas.get(pick.sa.name)?.peer.encap?.sport : undefined;
    return {
      set: pick.set,
      sa: pick.sa,
      local: { address: local.address, port: local.port },
      remote: { address: remote.address, port: remote.port },
      outerSrc: tunnel ? (map?.newSrc ?? p.src) : remote.address,
      ...(tunnel ? { outerEncapSrcPort: map?.newSport ?? expected ?? p.encap?.srcPort ?? 4500 } : {}),
    };
  }

  prepareSend(local: Addr, to: Addr, given?: SaSet): { set: SaSet; sa: Sa; dst: string } {
    const cands = [...this.#installed.values()].flatMap((i) =>
      i.set.live && (!given || i.set === given)
        ? i.set.outbound.filter((sa) => fitsOutbound(sa, local, to)).map((sa) => ({ set: i.set, sa, order: i.order }))
        : [],
    );
    const found = pickOutbound(cands);
    if (!found)
      throw new BackendError(
        'BACKEND_NO_SA',
        `no live SA set${given ? ` (${given.id})` : ''} protects ${local.address}:${local.port} -> ${to.address}:${to.port}`,
      );
    const inst = this.#installed.get(found.set)!;
    if (this.#syncLifetime(inst)) this.#policies.resync(found.set);
    this.#policies.point('out', selectorOf(found.sa.params, this.tag), found.set);
    this.#keepalive.noteSent(inst.sas.get(found.sa.name)!.peer);
    return { set: found.set, sa: found.sa, dst: innerOf(found.sa.params).dst };
  }

  countUnprotected(): void {
    this.#unprotected++;
  }

  // ---------------------------------------------------------------- internals

  /** reqids of this instance: its number in the high half, a counter in the low half. */
  #nextReqid(): number {
    this.#reqid = (this.#reqid % 0xffff) + 1;
    return (((this.tag & 0xffff) << 16) | this.#reqid) >>> 0;
  }

  /** UPDSA of the SAs whose kernel lifetime predates the set's expiresAt; true when any was written. */
  #syncLifetime(inst: Installed): boolean {
    let wrote = false;
    for (const k of inst.sas.values()) {
      if (k.writtenExpiry === inst.set.expiresAt) continue;
      this.#kernel.write(inst, k, true, `UPDSA ${k.sa.name} lifetime`);
      wrote = true;
    }
    return wrote;
  }

  /** Reads the SA's kernel packet count; true when it grew since the last look. */
  #snapshot(set: SaSet, sa: Sa): boolean {
    const k = this.#installed.get(set)?.sas.get(sa.name);
    if (!k) return false;
    const packets = this.#kernel.stats(k)?.cur.packets ?? k.lastPackets;
    const grew = packets > k.lastPackets;
    k.lastPackets = packets;
    return grew;
  }

  #onEvent(ev: KernelEvent, cb: XfrmBackendOptions['onKernelEvent']): void {
    for (const inst of this.#installed.values()) {
      for (const k of inst.sas.values()) if (k.sa.spi === ev.spi && k.peer.dst === ev.dst) cb?.({ ...ev, set: inst.set, sa: k.sa });
    }
  }
}

/** Our end's ESP-in-UDP address and port for a set (Annex M: 4500 unless configured). */
function encapEndpoint(set: SaSet): [string, number] {
  return set.role === 'ue'
    ? [set.config.ue.ip, set.config.encap?.uePort ?? 4500]
    : [set.config.pcscf.ip, set.config.encap?.pcscfPort ?? 4500];
}
