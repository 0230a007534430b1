// A built NAT lab at run time: its names and addresses, commands and long-running processes in its
// namespaces, the NAT's conntrack table, captures, and the teardown of everything it created.
// Everything the lab makes lives inside namespaces it created (veths are born in them), so deleting
// those namespaces removes veths, bridge, nft tables and sysctls too; the root namespace is untouched.
import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { startCapture, type CaptureOptions, type StopCapture } from './capture.ts';
import { deleteNamespaceSync, removeMarker, track, untrack, type Teardown } from './cleanup.ts';
import { parseConntrack, type ConntrackEntry } from './conntrack.ts';
import { LabError, LabUnavailableError } from './errors.ts';
import { nsArgv, run, toolMissing, type RunOptions, type RunResult } from './netns.ts';
import { LabProcess, type SpawnOptions } from './process.ts';

export type LabFamily = 'ipv4' | 'ipv6' | 'dual';
export type NatType = 'masquerade' | 'random';

/** A host with one interface; `ip` is the IPv4 address when the lab has one, else the IPv6 one. */
export interface LabHost {
  readonly ns: string;
  readonly iface: string;
  readonly ip: string;
  readonly ip4?: string;
  readonly ip6?: string;
}

export interface LabNat {
  readonly ns: string;
  /** The bridge on the private LAN, and its addresses (the UEs' default gateway). */
  readonly lanIface: string;
  readonly lanIp: string;
  readonly lanIp4?: string;
  readonly lanIp6?: string;
  /** The veth towards the network namespace; packets on it carry the translated addresses. */
  readonly publicIface: string;
  readonly publicIp: string;
  readonly publicIp4?: string;
  readonly publicIp6?: string;
}

/** Everything topology.ts decides before it creates anything. */
export interface LabPlan {
  readonly prefix: string;
  readonly family: LabFamily;
  /** false for noNat: the same topology with plain routing. */
  readonly natted: boolean;
  readonly natType: NatType;
  readonly udpTimeoutS: number;
  readonly ue: readonly LabHost[];
  readonly nat: LabNat;
  readonly net: LabHost;
  /** Every namespace of the lab, in creation order. */
  readonly namespaces: readonly string[];
}

const killAll = (pid: number) => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
};

export class NatLab implements Teardown, LabPlan {
  readonly prefix: string;
  readonly family: LabFamily;
  readonly natted: boolean;
  readonly natType: NatType;
  readonly udpTimeoutS: number;
  readonly ue: readonly LabHost[];
  readonly nat: LabNat;
  readonly net: LabHost;
  readonly namespaces: readonly string[];
  /** Namespaces this lab actually created (the only ones teardown deletes). */
  private readonly created: string[] = [];
  private readonly procs = new Set<LabProcess>();
  private readonly execPids = new Set<number>();
  private closed = false;
  private teardown: Promise<void> | undefined;

  constructor(plan: LabPlan) {
    ({ prefix: this.prefix, family: this.family, natted: this.natted, natType: this.natType, udpTimeoutS: this.udpTimeoutS } = plan);
    ({ ue: this.ue, nat: this.nat, net: this.net, namespaces: this.namespaces } = plan);
    track(this);
  }

  get destroyed(): boolean {
    return this.closed;
  }

  /** Called by the builder right after `ip netns add NS` succeeded. */
  adopt(ns: string): void {
    this.created.push(ns);
  }

  private live(what: string): void {
    if (this.closed) throw new LabError('LAB_DESTROYED', `${what}: lab ${this.prefix} is destroyed`);
  }

  /** Runs a command inside `ns` to completion; throws LabCommandError on failure unless check: false. */
  async exec(ns: string, argv: readonly string[], opts: Omit<RunOptions, 'onPid'> = {}): Promise<RunResult> {
    this.live('exec');
    let pid: number | undefined;
    return run(nsArgv(ns, argv), {
      ...opts,
      onPid: (p) => {
        if (p !== undefined) this.execPids.add((pid = p));
        else if (pid !== undefined) this.execPids.delete(pid);
      },
    });
  }

  /** Starts a long-running child inside `ns`; destroy() kills it if it is still running. */
  spawn(ns: string, argv: readonly string[], opts: SpawnOptions = {}): LabProcess {
    this.live('spawn');
    // `ip netns exec` execs the command in place, so the pid we hold is the command's own.
    const p = new LabProcess(ns, nsArgv(ns, argv), opts);
    this.procs.add(p);
    void p.exited.then(() => this.procs.delete(p));
    return p;
  }

  /**
   * Runs `node SCRIPT ARGS…` inside `ns` with this Node binary, from any cwd; a `.ts` script (the
   * sources, not dist/) with `--import` of the repo's tsx as a file URL (resolved only then: the
   * built package has no tsx). NODE_TEST_CONTEXT is removed so a script run from a test does not
   * talk the test runner's protocol on stdout.
   */
  spawnNode(
    ns: string,
    scriptPath: string,
    args: readonly string[] = [],
    env: NodeJS.ProcessEnv = {},
    opts: Omit<SpawnOptions, 'env'> = {},
  ): LabProcess {
    const e: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete e.NODE_TEST_CONTEXT;
    const loader = scriptPath.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [];
    return this.spawn(ns, [process.execPath, ...loader, resolve(scriptPath), ...args], { ...opts, env: e });
  }

  private families(): ('ipv4' | 'ipv6')[] {
    return this.family === 'dual' ? ['ipv4', 'ipv6'] : [this.family];
  }

  private conntrack(args: string[]): Promise<RunResult> {
    const missing = toolMissing('conntrack');
    if (missing) throw new LabUnavailableError(missing);
    return this.exec(this.nat.ns, ['conntrack', ...args]);
  }

  /** Empties the NAT's connection-tracking table: every mapping is forgotten (a NAT reboot). */
  async conntrackFlush(): Promise<void> {
    for (const f of this.families()) await this.conntrack(['-F', '-f', f]);
  }

  /** The NAT's current conntrack entries (for a NATed UE flow, reply.dst:reply.dport is the mapping). */
  async conntrackList(): Promise<ConntrackEntry[]> {
    const out: ConntrackEntry[] = [];
    for (const f of this.families()) out.push(...parseConntrack((await this.conntrack(['-L', '-f', f, '-o', 'extended'])).stdout));
    return out;
  }

  /** Changes the NAT's UDP conntrack timeouts (both unreplied and stream) from now on. */
  async setUdpTimeout(seconds: number): Promise<void> {
    await this.exec(this.nat.ns, [
      'sysctl',
      '-qw',
      `net.netfilter.nf_conntrack_udp_timeout=${seconds}`,
      `net.netfilter.nf_conntrack_udp_timeout_stream=${seconds}`,
    ]);
  }

  /**
   * Gives the NAT another public address and translates to it from now on (`snat to`), forgetting
   * every mapping: what a UE behind it sees when its access network renumbers it (a UE IP change,
   * spec digest §15A point 6). The old address stays on the interface but carries no mapping.
   */
  async renumberPublic(address: string): Promise<void> {
    this.live('renumberPublic');
    if (!this.natted) throw new LabError('LAB_BAD_OPTIONS', `renumberPublic: lab ${this.prefix} has no NAT`);
    const six = isIP(address) === 6;
    if (!six && isIP(address) !== 4) throw new LabError('LAB_BAD_OPTIONS', `renumberPublic: not an IP address: ${JSON.stringify(address)}`);
    const { ns, publicIface } = this.nat;
    await this.exec(
      ns,
      six
        ? ['ip', '-6', 'addr', 'add', `${address}/64`, 'dev', publicIface, 'nodad']
        : ['ip', 'addr', 'add', `${address}/24`, 'dev', publicIface],
    );
    const table = six ? 'ip6' : 'ip';
    await this.exec(ns, ['nft', 'flush', 'chain', table, 'imsec', 'postrouting']);
    await this.exec(ns, ['nft', 'add', 'rule', table, 'imsec', 'postrouting', 'oifname', publicIface, 'snat', 'to', address]);
    if (!toolMissing('conntrack')) await this.conntrackFlush();
  }

  /**
   * Captures on `iface` inside `ns` into `file` (pcap) with a BPF `filter` ('' for all); resolves
   * once the tool listens, with a stop function that resolves when the file is complete.
   */
  async capture(ns: string, iface: string, filter: string, file: string, opts: CaptureOptions = {}): Promise<StopCapture> {
    this.live('capture');
    return startCapture((argv) => this.spawn(ns, argv), iface, filter, file, opts);
  }

  /**
   * Tears down everything the lab created: its processes (SIGTERM, SIGKILL after 1 s), anything
   * else still running in its namespaces, then the namespaces (with their veths, bridge and nft
   * tables). Idempotent; concurrent calls share one teardown.
   */
  destroy(): Promise<void> {
    this.teardown ??= this.doDestroy();
    return this.teardown;
  }

  private async doDestroy(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.procs].map((p) => p.kill('SIGTERM', 1_000)));
    this.execPids.forEach(killAll);
    const problems: string[] = [];
    await Promise.all(
      [...this.created].reverse().map(async (ns) => {
        // Children of our children (a demo's subprocesses) still hold the namespace: kill them.
        const pids = await run(['ip', 'netns', 'pids', ns], { check: false });
        pids.stdout.split(/\s+/).filter(Boolean).map(Number).forEach(killAll);
        const r = await run(['ip', 'netns', 'del', ns], { check: false });
        if (r.code !== 0 && existsSync(`/run/netns/${ns}`)) problems.push(`\`ip netns del ${ns}\`: ${r.stderr.trim()}`);
      }),
    );
    this.created.length = 0;
    untrack(this);
    removeMarker(this.prefix);
    if (problems.length) throw new LabError('LAB_TEARDOWN_FAILED', `lab ${this.prefix}: could not remove ${problems.join('; ')}`);
  }

  /** The synchronous teardown used by the exit/signal hooks: SIGKILL, then delete namespaces. */
  destroySync(): void {
    this.closed = true;
    for (const p of this.procs) p.killSync();
    this.execPids.forEach(killAll);
    for (const ns of [...this.created].reverse()) deleteNamespaceSync(ns);
    this.created.length = 0;
    untrack(this);
    removeMarker(this.prefix);
  }
}
