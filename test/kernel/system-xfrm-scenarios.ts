// The checks of system-xfrm-guest.ts, in the VM. A system scenario: register, MESSAGE both ways,
// kernel counters, re-register, MESSAGE both ways, de-register, stop, nothing of ours left in XFRM.
// The NAT lab (src/lab) with the P-CSCF on xfrm and the UE on userspace; a kill and reconcile.
import assert from 'node:assert/strict';
import { buildNatLab, labAvailability, type NatLab } from '../../src/lab/index.ts';
import { DOMAIN } from '../support/ims-world.ts';
import type { RpcChild } from './guest-rpc.ts';
import type { AgentOptions } from './system-xfrm-agent.ts';
import { parseXfrmStates } from './xfrm-parse.ts';

type Kind = 'xfrm' | 'userspace';
export interface Scenario {
  readonly id: string;
  readonly pc: Kind;
  readonly ue: Kind;
  readonly mode: 'trans' | 'udp-enc-tun';
  readonly transport: 'udp' | 'tcp';
  readonly family: 4 | 6;
}

export interface Ctx {
  check(name: string, f: () => Promise<unknown> | unknown): Promise<boolean>;
  sh(cmd: string): string;
  startAgent(ns: string, o: AgentOptions): Promise<RpcChild>;
  readonly nsNet: string;
  readonly nsUe: string;
}

interface RegResult {
  ok: boolean;
  set: { id: string; mode: string; ue: { portC: number; portS: number }; pcscf: { portC: number; portS: number } } | null;
}
interface Counters {
  id: string;
  state: string;
  counters: Record<string, number>;
}
interface NetStatus {
  registrations: { impi: string; nat: boolean; contact?: string }[];
  sets: (Counters & { mode: string })[];
  events: { name: string; ev: Record<string, unknown> }[];
  kernelEvents: Record<string, unknown>[];
}
interface UeStatus {
  impu: string;
  steps: string[];
  requests: { method: string; via: string; sa: string }[];
  sets: Counters[];
  status: Record<string, unknown>;
}

const ADDR = { 4: { net: '192.0.2.1', ue: '192.0.2.2' }, 6: { net: '2001:db8::1', ue: '2001:db8::2' } } as const;
const ECHO = `sip:echo@${DOMAIN}`;

async function until<T>(what: string, f: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v).slice(0, 600)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** MESSAGE UE → network (answered by the S-CSCF) and network → UE (over SA2), on the expected transport. */
async function messagesBothWays(c: Ctx, label: string, net: RpcChild, ue: RpcChild, transport: string, round: string): Promise<void> {
  const T = transport.toUpperCase();
  await c.check(`${label}: MESSAGE UE → network${round}`, async () => {
    const m = await ue.call<{ status: number; via: string[] }>('message', { to: ECHO, text: `up ${round}` });
    assert.equal(m.status, 200);
    assert.match(m.via.at(-1)!, new RegExp(`^SIP/2\\.0/${T} `), 'the UE names its transport in Via');
    return m.via.at(-1);
  });
  await c.check(`${label}: MESSAGE network → UE (P-CSCF port_pc → UE port_us, SA2)${round}`, async () => {
    const impu = (await ue.call<UeStatus>('status')).impu;
    const m = await net.call<{ status: number }>('message', { impu, text: `down ${round}` });
    assert.equal(m.status, 200);
    const r = (await ue.call<UeStatus>('status')).requests.at(-1)!;
    assert.equal(r.sa, 'SA2');
    assert.match(r.via, new RegExp(`^SIP/2\\.0/${T} `), 'the P-CSCF names the transport in its Via');
    return r.via;
  });
}

/** The xfrm side's view: the backend's query of the kernel and `ip -s xfrm state` in its namespace. */
function kernelView(c: Ctx, ns: string, set: Counters, sc: Scenario): Record<string, unknown> {
  const k = set.counters;
  for (const sa of ['SA1', 'SA2', 'SA4']) assert.ok((k[sa] ?? 0) > 0, `${sa} carried packets (${JSON.stringify(k)})`);
  // SA3 (port_ps → port_uc) carries only the P-CSCF's TCP responses.
  if (sc.transport === 'tcp') assert.ok((k.SA3 ?? 0) > 0, `SA3 carried the TCP responses (${JSON.stringify(k)})`);
  else assert.equal(k.SA3, 0, 'SA3 idle over UDP');
  const states = parseXfrmStates(c.sh(`ip -n ${ns} -s xfrm state`));
  assert.equal(states.length, 4, 'four kernel SAs');
  assert.ok(states.every((s) => s.mode === (sc.mode === 'trans' ? 'transport' : 'tunnel')));
  if (sc.mode === 'udp-enc-tun')
    assert.ok(
      states.every((s) => s.encap),
      'espinudp encapsulation',
    );
  assert.ok(
    states.every((s) => s.failed === 0 && s.replay === 0),
    'no integrity or replay failures',
  );
  return { query: k, ipXfrmPackets: states.map((s) => s.packets) };
}

async function stopAll(c: Ctx, label: string, agents: (RpcChild | undefined)[], namespaces: string[]): Promise<void> {
  await c.check(`${label}: stop every process; then ip xfrm state and ip xfrm policy are empty`, async () => {
    const left = [];
    for (const a of agents) left.push(await a?.call<{ leftSets: number }>('stop', {}, 20_000).catch((e: Error) => e.message));
    for (const a of agents) await a?.stop();
    for (const ns of namespaces) {
      assert.equal(c.sh(`ip -n ${ns} xfrm state`).trim(), '', `ip -n ${ns} xfrm state`);
      assert.equal(c.sh(`ip -n ${ns} xfrm policy`).trim(), '', `ip -n ${ns} xfrm policy`);
    }
    return { left };
  });
}

export async function systemScenario(c: Ctx, sc: Scenario): Promise<void> {
  const a = ADDR[sc.family];
  const label = `${sc.id}: P-CSCF ${sc.pc} + UE ${sc.ue}, ${sc.mode}, SIP over ${sc.transport.toUpperCase()}, IPv${sc.family}`;
  let net: RpcChild | undefined;
  let ue: RpcChild | undefined;
  try {
    const up = await c.check(`${label}: start core + P-CSCF and the UE in their namespaces`, async () => {
      [net, ue] = await Promise.all([
        c.startAgent(c.nsNet, { role: 'net', backend: sc.pc, address: a.net, instance: 1, mode: sc.mode }),
        c.startAgent(c.nsUe, {
          role: 'ue',
          backend: sc.ue,
          address: a.ue,
          instance: 2,
          mode: sc.mode,
          transport: sc.transport,
          pcscf: a.net,
        }),
      ]);
    });
    if (!up || !(await registerFlow(c, sc, label, net!, ue!))) return;
  } finally {
    await stopAll(c, label, [ue, net], [c.nsNet, c.nsUe]);
  }
}

async function registerFlow(c: Ctx, sc: Scenario, label: string, net: RpcChild, ue: RpcChild): Promise<boolean> {
  let first: RegResult | undefined;
  const ok = await c.check(`${label}: register (IMS AKA, SA set installed at both ends)`, async () => {
    first = await ue.call<RegResult>('register', {}, 60_000);
    if (!first.ok) {
      // What the two sides saw, for the report (the sets are gone by now; their logs are in the output directory).
      const k = [c.nsNet, c.nsUe].map(
        (ns) => `--- ${ns}: ${c.sh(`ip netns exec ${ns} cat /proc/net/xfrm_stat | grep -v -E '\\s0$'; true`)}`,
      );
      const steps = (await ue.call<UeStatus>('status')).steps.join('\n');
      throw new Error(
        `${JSON.stringify(first)}\nUE: ${steps}\nP-CSCF: ${JSON.stringify(await net.call('status')).slice(0, 3000)}\n${k.join('\n')}`,
      );
    }
    assert.equal(first.set!.mode, sc.mode === 'trans' ? 'transport' : 'udp-enc-tunnel');
    return first.set;
  });
  if (!ok) return false;
  await messagesBothWays(c, label, net, ue, sc.transport, '');
  await c.check(`${label}: kernel counters moved (backend query and ip -s xfrm state)`, async () => {
    const out: Record<string, unknown> = {};
    const n = (await net.call<NetStatus>('status')).sets[0]!;
    const u = (await ue.call<UeStatus>('status')).sets[0]!;
    if (sc.pc === 'xfrm') out.pcscf = kernelView(c, c.nsNet, n, sc);
    else out.pcscfUserspace = n.counters;
    if (sc.ue === 'xfrm') out.ue = kernelView(c, c.nsUe, u, sc);
    else out.ueUserspace = u.counters;
    if (sc.transport === 'tcp') {
      const conns = c.sh(`ip netns exec ${c.nsUe} ss -tnH state established`);
      const { ue: p } = first!.set!;
      assert.match(conns, new RegExp(`:${p.portC}\\s+\\S+:${first!.set!.pcscf.portS}\\b`), `a connection port_uc → port_ps:\n${conns}`);
      assert.match(conns, new RegExp(`:${p.portS}\\s+\\S+:${first!.set!.pcscf.portC}\\b`), `a connection port_pc → port_us:\n${conns}`);
    }
    return out;
  });
  await c.check(`${label}: re-register over the current set (new client ports and SPIs, server ports kept)`, async () => {
    const r = await ue.call<RegResult>('reregister', {}, 60_000);
    assert.ok(r.ok, JSON.stringify(r));
    assert.notEqual(r.set!.id, first!.set!.id);
    assert.equal(r.set!.ue.portS, first!.set!.ue.portS);
    return r.set;
  });
  await messagesBothWays(c, label, net, ue, sc.transport, ' (after re-registration)');
  await c.check(`${label}: de-register; every SA set gone at both ends`, async () => {
    const r = await ue.call<RegResult>('deregister', {}, 60_000);
    assert.ok(r.ok, JSON.stringify(r));
    await until(
      'the P-CSCF to delete its sets',
      () => net.call<NetStatus>('status'),
      (s) => s.sets.length === 0,
    );
    assert.deepEqual((await ue.call<UeStatus>('status')).sets, []);
  });
  return true;
}

/** (d) The NAT lab in the VM: P-CSCF on xfrm in the network namespace, the UE on userspace behind the NAT. */
export async function natScenario(c: Ctx): Promise<void> {
  const label = 'd: NAT lab, P-CSCF xfrm (auto) + UE userspace behind the NAT';
  const avail = labAvailability();
  let lab: NatLab | undefined;
  const built = await c.check(`${label}: build the lab (namespaces, veths, nftables NAT)`, async () => {
    if (!avail.ok) throw new Error(`NAT lab unavailable in the guest: ${avail.reason}`);
    lab = await buildNatLab({ prefix: 'isys', ues: 1, natType: 'random' });
    return { ue: lab.ue[0]!.ip, nat: lab.nat.publicIp, net: lab.net.ip };
  });
  if (!built) return;
  let net: RpcChild | undefined;
  let ue: RpcChild | undefined;
  try {
    const L = lab!;
    const up = await c.check(`${label}: start the agents`, async () => {
      [net, ue] = await Promise.all([
        c.startAgent(L.net.ns, { role: 'net', backend: 'xfrm', address: L.net.ip, instance: 1, mode: 'auto' }),
        c.startAgent(L.ue[0]!.ns, {
          role: 'ue',
          backend: 'userspace',
          address: L.ue[0]!.ip,
          instance: 2,
          mode: 'auto',
          pcscf: L.net.ip,
          keepaliveMs: 300,
        }),
      ]);
    });
    if (!up) return;
    const reg = await c.check(`${label}: register; the P-CSCF detects the NAT and picks UDP-enc-tun`, async () => {
      const r = await ue!.call<RegResult>('register', {}, 60_000);
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.set!.mode, 'udp-enc-tunnel');
      const s = await net!.call<NetStatus>('status');
      const nat = s.events.find((e) => e.name === 'nat-detected');
      assert.ok(nat, `a nat-detected event: ${JSON.stringify(s.events.map((e) => e.name))}`);
      return { natDetected: nat.ev, ueNat: (await ue!.call<UeStatus>('status')).status.nat ?? null };
    });
    if (!reg) return;
    await messagesBothWays(c, label, net!, ue!, 'udp', '');
    await c.check(`${label}: port_Uenc learnt from the kernel's mapping event matches the NAT's conntrack mapping`, async () => {
      const s = await net!.call<NetStatus>('status');
      const mapping = s.kernelEvents.find((e) => e.kind === 'mapping');
      assert.ok(mapping, `an XFRM mapping event: ${JSON.stringify(s.kernelEvents)}`);
      const flows = (await L.conntrackList()).filter((e) => e.proto === 'udp' && e.orig.src === L.ue[0]!.ip && e.orig.dport === 4500);
      assert.equal(flows.length, 1, `one ESP-in-UDP flow through the NAT: ${JSON.stringify(flows)}`);
      const mapped = flows[0]!.reply.dport;
      assert.equal(mapping.newSport, mapped, 'the kernel saw the NAT-mapped source port');
      const learnt = s.events.find((e) => e.name === 'nat-mapping');
      assert.ok(learnt, `a nat-mapping event: ${JSON.stringify(s.events.map((e) => e.name))}`);
      assert.equal(learnt.ev.port, mapped, 'the P-CSCF learnt port_Uenc');
      assert.equal(s.sets[0]!.counters.SA2! > 0, true);
      return { mapped, kernel: mapping, pcscfEvent: learnt.ev };
    });
    await c.check(`${label}: the registered Contact holds the NAT's public address; the UE sends NAT-keepalives`, async () => {
      const reg = (await net!.call<NetStatus>('status')).registrations[0]!;
      assert.equal(reg.nat, true);
      assert.match(reg.contact ?? '', new RegExp(`@${L.nat.publicIp.replace(/\./g, '\\.')}:`), `Contact ${reg.contact}`);
      await new Promise((r) => setTimeout(r, 1000));
      const k = (await ue!.call<{ keepalivesSent: number }>('status')).keepalivesSent;
      assert.ok(k > 0, 'keepalives sent');
      assert.equal((await ue!.call<{ status: number }>('message', { to: ECHO, text: 'after the keepalives' })).status, 200);
      return { contact: reg.contact, keepalivesSent: k };
    });
    await c.check(`${label}: de-register`, async () => {
      const r = await ue!.call<RegResult>('deregister', {}, 60_000);
      assert.ok(r.ok, JSON.stringify(r));
      await until(
        'the P-CSCF to delete its sets',
        () => net!.call<NetStatus>('status'),
        (s) => s.sets.length === 0,
      );
    });
  } finally {
    await stopAll(c, label, [ue, net], [lab!.net.ns, lab!.ue[0]!.ns]);
    await lab!.destroy();
  }
}

/** (r) A P-CSCF that dies without stopping leaves its tagged SAs; a restart with its instance removes them, and only them. */
export async function crashScenario(c: Ctx): Promise<void> {
  const label = 'r: P-CSCF on xfrm killed while registered, restarted with the same instance';
  const a = ADDR[4];
  const start = (instance: number) => c.startAgent(c.nsNet, { role: 'net', backend: 'xfrm', address: a.net, instance, mode: 'trans' });
  let net: RpcChild | undefined;
  let ue: RpcChild | undefined;
  try {
    const up = await c.check(`${label}: register, add a foreign SA, kill the P-CSCF (no clean-up): its SAs and policies stay`, async () => {
      [net, ue] = await Promise.all([
        start(1),
        c.startAgent(c.nsUe, { role: 'ue', backend: 'userspace', address: a.ue, instance: 2, mode: 'trans', pcscf: a.net }),
      ]);
      const r = await ue.call<RegResult>('register', {}, 60_000);
      assert.ok(r.ok, JSON.stringify(r));
      c.sh(
        `ip -n ${c.nsNet} xfrm state add src 192.0.2.9 dst 192.0.2.1 proto esp spi 0x4242 mode transport auth 'hmac(sha1)' 0x${'11'.repeat(20)} enc 'cbc(aes)' 0x${'22'.repeat(16)}`,
      );
      await net.stop(); // stdin closed: the agent exits at once, without removing anything
      net = undefined;
      const states = parseXfrmStates(c.sh(`ip -n ${c.nsNet} xfrm state`));
      assert.equal(states.length, 5, 'four SAs of the dead P-CSCF and the foreign one');
      assert.equal((c.sh(`ip -n ${c.nsNet} xfrm policy`).match(/^src /gm) ?? []).length, 4, 'its four policies');
    });
    if (!up) return;
    await c.check(`${label}: the restarted backend's reconcile deletes exactly the tagged leftovers; the foreign SA stays`, async () => {
      net = await start(1);
      const states = parseXfrmStates(c.sh(`ip -n ${c.nsNet} xfrm state`));
      assert.deepEqual(
        states.map((s) => s.spi),
        [0x4242],
      );
      assert.equal(c.sh(`ip -n ${c.nsNet} xfrm policy`).trim(), '');
      c.sh(`ip -n ${c.nsNet} xfrm state delete src 192.0.2.9 dst 192.0.2.1 proto esp spi 0x4242`);
    });
  } finally {
    await stopAll(c, label, [ue, net], [c.nsNet, c.nsUe]);
  }
}
