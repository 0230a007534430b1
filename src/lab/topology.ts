// buildNatLab: UE namespaces on a private LAN bridged inside a NAT namespace whose public veth
// leads to the network namespace (P-CSCF and core), with nftables masquerade and short conntrack
// UDP timeouts in the NAT. Documentation prefixes only (RFC 5737, RFC 3849). Transactional.
import { randomBytes } from 'node:crypto';
import { sweepStaleLabs, writeMarker } from './cleanup.ts';
import { LabError, LabUnavailableError } from './errors.ts';
import { NatLab, type LabFamily, type LabHost, type LabPlan, type NatType } from './lab.ts';
import { ip6NatAvailability, labAvailability, nsArgv, run } from './netns.ts';

export interface NatLabOptions {
  /** Namespace and interface name prefix: [a-z][a-z0-9]{0,8}; default 'imsec' + 4 random hex digits. */
  prefix?: string;
  /** Number of UE namespaces, 1..250 (default 1). */
  ues?: number;
  /** Default 'ipv4'; 'ipv6' and 'dual' add the IPv6 LAN/WAN and an ip6 NAT table. */
  family?: LabFamily;
  /** The NAT's conntrack UDP timeout, unreplied and stream alike (default 30 s). */
  udpTimeoutS?: number;
  /** 'masquerade' keeps the UE's source port when free (default); 'random' picks a new one per mapping. */
  natType?: NatType;
  /** Same topology with plain routing: the network sees the UEs' private addresses. */
  noNat?: boolean;
  /** Progress callback before each build step (the demo prints it). Throwing aborts and rolls back. */
  onStep?: (step: BuildStep) => void | Promise<void>;
}

export type BuildStep = 'namespaces' | 'links' | 'addresses' | 'forwarding' | 'nat' | 'conntrack-timeouts';

export const LAN4 = { net: '198.51.100.0/24', gw: '198.51.100.1', ue: (i: number) => `198.51.100.${2 + i}` };
export const LAN6 = { net: '2001:db8:100::/64', gw: '2001:db8:100::1', ue: (i: number) => `2001:db8:100::${(2 + i).toString(16)}` };
export const WAN4 = { nat: '203.0.113.1', net: '203.0.113.10', len: 24 };
export const WAN6 = { nat: '2001:db8:203::1', net: '2001:db8:203::10', len: 64 };

function bad(msg: string): never {
  throw new LabError('LAB_BAD_OPTIONS', `buildNatLab: ${msg}`);
}

/** Validates the options and fixes every name and address. Creates nothing. */
export function planNatLab(opts: NatLabOptions = {}): LabPlan {
  const p = opts.prefix ?? `imsec${randomBytes(2).toString('hex')}`;
  // 9 characters leave room for '-u249' + 'p' inside the kernel's 15-character interface names.
  if (!/^[a-z][a-z0-9]{0,8}$/.test(p)) bad(`prefix ${JSON.stringify(p)} must match [a-z][a-z0-9]{0,8}`);
  const n = opts.ues ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > 250) bad(`ues ${n} must be an integer 1..250`);
  const family = opts.family ?? 'ipv4';
  if (!['ipv4', 'ipv6', 'dual'].includes(family)) bad(`family ${JSON.stringify(family)} must be ipv4, ipv6 or dual`);
  const udpTimeoutS = opts.udpTimeoutS ?? 30;
  if (!Number.isInteger(udpTimeoutS) || udpTimeoutS < 1 || udpTimeoutS > 86_400)
    bad(`udpTimeoutS ${udpTimeoutS} must be an integer 1..86400`);
  const natType = opts.natType ?? 'masquerade';
  if (natType !== 'masquerade' && natType !== 'random') bad(`natType ${JSON.stringify(natType)} must be masquerade or random`);
  const v4 = family !== 'ipv6';
  const v6 = family !== 'ipv4';
  const host = (ns: string, iface: string, a4: string, a6: string): LabHost => ({
    ns,
    iface,
    ip: v4 ? a4 : a6,
    ...(v4 ? { ip4: a4 } : {}),
    ...(v6 ? { ip6: a6 } : {}),
  });
  const ue = Array.from({ length: n }, (_, i) => host(`${p}-ue${i}`, `${p}-u${i}`, LAN4.ue(i), LAN6.ue(i)));
  const net = host(`${p}-net`, `${p}-net`, WAN4.net, WAN6.net);
  const nat = {
    ns: `${p}-nat`,
    lanIface: `${p}-br`,
    lanIp: v4 ? LAN4.gw : LAN6.gw,
    ...(v4 ? { lanIp4: LAN4.gw } : {}),
    ...(v6 ? { lanIp6: LAN6.gw } : {}),
    publicIface: `${p}-pub`,
    publicIp: v4 ? WAN4.nat : WAN6.nat,
    ...(v4 ? { publicIp4: WAN4.nat } : {}),
    ...(v6 ? { publicIp6: WAN6.nat } : {}),
  };
  const namespaces = [nat.ns, net.ns, ...ue.map((u) => u.ns)];
  return { prefix: p, family, natted: !opts.noNat, natType, udpTimeoutS, ue, nat, net, namespaces };
}

/** The NAT namespace's ruleset for one family ('ip' or 'ip6'). */
export function natRuleset(table: 'ip' | 'ip6', publicIface: string, natType: NatType): string {
  return [
    `table ${table} imsec {`,
    // An empty prerouting nat chain: older kernels only un-NAT replies when one is registered.
    '  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "${publicIface}" masquerade${natType === 'random' ? ' random' : ''}`,
    '  }',
    // Like a home router: from the public side only replies enter the LAN, so a peer that sends to
    // a UE's private address (a P-CSCF bug) is dropped instead of routed.
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    iifname "${publicIface}" ct state established,related accept`,
    `    iifname "${publicIface}" drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

// Runs fn over items, `limit` at a time. On a failure it starts nothing new but still waits for
// the calls in flight, so a rollback never races a namespace that is being created.
async function eachLimit<T>(items: readonly T[], limit: number, fn: (t: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { e: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (e) {
        failed ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.e;
}

/**
 * Builds the lab. Throws LabUnavailableError (nothing created) when the host cannot run it, and
 * LabError/LabCommandError after removing whatever it had created when a step fails.
 */
export async function buildNatLab(opts: NatLabOptions = {}): Promise<NatLab> {
  const plan = planNatLab(opts);
  const v4 = plan.family !== 'ipv6';
  const v6 = plan.family !== 'ipv4';
  const avail = v6 ? ip6NatAvailability() : labAvailability();
  if (!avail.ok) throw new LabUnavailableError(avail.reason);
  sweepStaleLabs();
  writeMarker(plan.prefix, plan.namespaces);
  const lab = new NatLab(plan); // tracked from here on: a signal mid-build removes what exists
  const ip = (...args: string[]) => run(['ip', ...args]);
  const inNs = (ns: string, argv: string[], input?: string) => run(nsArgv(ns, argv), input === undefined ? {} : { input });
  const sysctl = (ns: string, ...kv: string[]) => inNs(ns, ['sysctl', '-qw', ...kv]);
  const { nat, net, ue } = plan;
  try {
    await opts.onStep?.('namespaces');
    await eachLimit(plan.namespaces, 8, async (ns) => {
      await ip('netns', 'add', ns);
      lab.adopt(ns);
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      // No duplicate address detection: the addresses are usable at once, not after ~1 s.
      if (v6) await sysctl(ns, 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0');
    });

    await opts.onStep?.('links');
    // Each veth is created with both ends already in their namespaces: nothing ever appears in
    // the root namespace, and names only have to be unique inside the lab.
    await ip('-n', nat.ns, 'link', 'add', nat.lanIface, 'type', 'bridge', 'mcast_snooping', '0');
    await ip('link', 'add', nat.publicIface, 'netns', nat.ns, 'type', 'veth', 'peer', 'name', net.iface, 'netns', net.ns);
    await eachLimit(ue, 8, async (u, i) => {
      await ip('link', 'add', u.iface, 'netns', u.ns, 'type', 'veth', 'peer', 'name', `${plan.prefix}-b${i}`, 'netns', nat.ns);
      await ip('-n', nat.ns, 'link', 'set', `${plan.prefix}-b${i}`, 'master', nat.lanIface, 'up');
    });

    await opts.onStep?.('addresses');
    const addr = (ns: string, iface: string, a: string, len: number, six: boolean) =>
      six
        ? ip('-n', ns, '-6', 'addr', 'add', `${a}/${len}`, 'dev', iface, 'nodad')
        : ip('-n', ns, 'addr', 'add', `${a}/${len}`, 'dev', iface);
    const up = (ns: string, iface: string) => ip('-n', ns, 'link', 'set', iface, 'up');
    const route = (ns: string, via: string, six: boolean) => ip('-n', ns, ...(six ? ['-6'] : []), 'route', 'add', 'default', 'via', via);
    if (v4) await addr(nat.ns, nat.lanIface, LAN4.gw, 24, false);
    if (v6) await addr(nat.ns, nat.lanIface, LAN6.gw, 64, true);
    await up(nat.ns, nat.lanIface);
    if (v4) await addr(nat.ns, nat.publicIface, WAN4.nat, WAN4.len, false);
    if (v6) await addr(nat.ns, nat.publicIface, WAN6.nat, WAN6.len, true);
    await up(nat.ns, nat.publicIface);
    if (v4) await addr(net.ns, net.iface, WAN4.net, WAN4.len, false);
    if (v6) await addr(net.ns, net.iface, WAN6.net, WAN6.len, true);
    await up(net.ns, net.iface);
    // Default routes everywhere. With NAT the network's route to the LAN leads into the NAT's
    // forward filter (dropped), as the Internet's would; without NAT it is plain routing.
    if (v4) await route(nat.ns, WAN4.net, false);
    if (v6) await route(nat.ns, WAN6.net, true);
    if (v4) await route(net.ns, WAN4.nat, false);
    if (v6) await route(net.ns, WAN6.nat, true);
    await eachLimit(ue, 8, async (u) => {
      if (u.ip4) await addr(u.ns, u.iface, u.ip4, 24, false);
      if (u.ip6) await addr(u.ns, u.iface, u.ip6, 64, true);
      await up(u.ns, u.iface);
      if (u.ip4) await route(u.ns, LAN4.gw, false);
      if (u.ip6) await route(u.ns, LAN6.gw, true);
    });

    await opts.onStep?.('forwarding');
    await sysctl(nat.ns, ...(v4 ? ['net.ipv4.ip_forward=1'] : []), ...(v6 ? ['net.ipv6.conf.all.forwarding=1'] : []));

    if (plan.natted) {
      await opts.onStep?.('nat');
      const script =
        (v4 ? natRuleset('ip', nat.publicIface, plan.natType) : '') + (v6 ? natRuleset('ip6', nat.publicIface, plan.natType) : '');
      await inNs(nat.ns, ['nft', '-f', '-'], script);
      // After the nft table: the nat table pulls in nf_conntrack, whose sysctls exist only then.
      await opts.onStep?.('conntrack-timeouts');
      await lab.setUdpTimeout(plan.udpTimeoutS);
    }
  } catch (e) {
    try {
      await lab.destroy();
    } catch (te) {
      // Both matter: why the build failed, and that something of the lab is still there.
      throw new LabError(
        'LAB_TEARDOWN_FAILED',
        `buildNatLab failed (${(e as Error).message}) and the rollback failed: ${(te as Error).message}`,
      );
    }
    throw e;
  }
  return lab;
}
