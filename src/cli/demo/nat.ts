// `imsec demo --nat`: the demo flow through a real NAT (33.203 Annex M; 24.229 Annex F; RFC 3948).
// Builds the NAT lab, runs core + P-CSCF in the network namespace and the UE behind the NAT (agents),
// then register → MESSAGE UE→network → idle pause (keepalives) → MESSAGE network→UE → re-register →
// de-register, and gathers the NAT facts, the timeline and the SA rows. Always tears the lab down.
import { fileURLToPath } from 'node:url';
import { buildNatLab, ip6NatAvailability, labAvailability, type NatLab, type StopCapture } from '../../lab/index.ts';
import type { RegistrationView } from '../../pcscf/types.ts';
import type { UeStatus } from '../../ue/ue-types.ts';
import { InputError } from '../../util/errors.ts';
import { AgentClient } from './agent-protocol.ts';
import { natSubscriber, type NetAgentOptions, type SaRow, type SipLine, type UeAgentOptions } from './nat-common.ts';
import type { StepResult } from './run.ts';

// The agent beside this file: nat-agent.ts in the sources, nat-agent.js in the build (dist/).
const AGENT = fileURLToPath(new URL(`./nat-agent${import.meta.url.slice(import.meta.url.lastIndexOf('.'))}`, import.meta.url));

export interface NatDemoOptions {
  readonly alg: string;
  readonly ealg: string;
  readonly ipv6: boolean;
  readonly pcap?: string;
  readonly keylog?: string;
  /** NAT-keepalive interval (RFC 3948 default 20 s; short here so the idle pause shows some). */
  readonly keepaliveMs?: number;
  /** The NAT's UDP conntrack timeout, and the idle pause (longer than it, to prove the keepalives work). */
  readonly udpTimeoutS?: number;
  readonly idleS?: number;
  readonly progress?: (line: string) => void;
}

export interface NatFacts {
  /** 24.229 F.1 at the P-CSCF: top Via sent-by vs packet source of the unprotected REGISTER. */
  detected?: { via: string; source: { address: string; port: number }; differs?: string };
  /** What the UE learnt from the 401's Via received/rport. */
  ue_public_address?: { address: string; port?: number };
  /** The P-CSCF's view: public IP, private inner IP, port_Uenc learnt from the first authenticated ESP-in-UDP packet. */
  pcscf_view?: { ip: string; inner_ip?: string; port_uenc?: number; contact?: string };
  keepalive_ms: number;
  nat_udp_timeout_s: number;
  idle_s: number;
  keepalives_sent_total: number;
  keepalives_sent_idle: number;
  keepalives_received_by_pcscf: number;
}

export interface NatDemoResult {
  ok: boolean;
  steps: StepResult[];
  t0: number;
  lab: { prefix: string; family: string; ue_private: string; nat_public: string; network: string; nat_type: string };
  endpoints: { pcscf?: Record<string, unknown>; scscf?: { address: string; port: number }; ue?: Record<string, unknown> };
  nat: NatFacts;
  messages: SipLine[];
  sa_rows: SaRow[];
  leftover: { ue: number; pcscf: number };
}

/** Why this host cannot run the NAT demo (not root, no ip/nft, …), or undefined. */
export function natDemoUnavailable(ipv6: boolean): string | undefined {
  if (process.getuid?.() !== 0) return 'demo --nat needs root (network namespaces)';
  const a = ipv6 ? ip6NatAvailability() : labAvailability();
  return a.ok ? undefined : `demo --nat: the NAT lab cannot run here: ${a.reason}`;
}

export async function runNatDemo(o: NatDemoOptions): Promise<NatDemoResult> {
  const why = natDemoUnavailable(o.ipv6);
  if (why) throw new InputError(why);
  const say = o.progress ?? (() => {});
  const keepaliveMs = o.keepaliveMs ?? 1000;
  const udpTimeoutS = o.udpTimeoutS ?? 4;
  const idleS = o.idleS ?? udpTimeoutS + 2;
  const t0 = Date.now();
  const steps: StepResult[] = [];
  const nat: NatFacts = {
    keepalive_ms: keepaliveMs,
    nat_udp_timeout_s: udpTimeoutS,
    idle_s: idleS,
    keepalives_sent_total: 0,
    keepalives_sent_idle: 0,
    keepalives_received_by_pcscf: 0,
  };
  const result: NatDemoResult = {
    ok: false,
    steps,
    t0,
    nat,
    messages: [],
    sa_rows: [],
    leftover: { ue: 0, pcscf: 0 },
    endpoints: {},
    lab: { prefix: '', family: o.ipv6 ? 'ipv6' : 'ipv4', ue_private: '', nat_public: '', network: '', nat_type: 'masquerade' },
  };
  const step = async (name: string, fn: () => Promise<string>): Promise<boolean> => {
    const t = Date.now();
    say(`… ${name}`);
    try {
      steps.push({ step: name, ok: true, ms: 0, detail: await fn() });
    } catch (e) {
      steps.push({ step: name, ok: false, ms: 0, detail: e instanceof Error ? e.message : String(e) });
    }
    const last = steps[steps.length - 1]!;
    (last as { ms: number }).ms = Date.now() - t;
    return last.ok;
  };

  let lab: NatLab | undefined;
  let stopCapture: StopCapture | undefined;
  const agents: AgentClient[] = [];
  try {
    say('… building the lab (namespaces, veths, nftables masquerade)');
    lab = await buildNatLab({ ues: 1, family: o.ipv6 ? 'ipv6' : 'ipv4', udpTimeoutS, onStep: (s) => say(`    ${s}`) });
    const ueHost = lab.ue[0]!;
    result.lab = {
      prefix: lab.prefix,
      family: lab.family,
      ue_private: ueHost.ip,
      nat_public: lab.nat.publicIp,
      network: lab.net.ip,
      nat_type: lab.natType,
    };
    if (o.pcap) stopCapture = await lab.capture(lab.nat.ns, lab.nat.publicIface, 'udp', o.pcap);
    const netOpts: NetAgentOptions = { address: lab.net.ip, subscribers: 1, trace: true, alg: o.alg, ealg: o.ealg };
    const ueOpts: UeAgentOptions = {
      localIp: ueHost.ip,
      pcscf: { address: lab.net.ip },
      count: 1,
      first: 1,
      keepaliveMs,
      trace: true,
      alg: o.alg,
      ealg: o.ealg,
    };
    const net = new AgentClient(lab.spawnNode(lab.net.ns, AGENT, ['net', JSON.stringify(netOpts)], {}, { stdin: 'pipe' }));
    agents.push(net);
    const ue = new AgentClient(lab.spawnNode(ueHost.ns, AGENT, ['ue', JSON.stringify(ueOpts)], {}, { stdin: 'pipe' }));
    agents.push(ue);
    const netReady = await net.ready();
    const ueReady = await ue.ready();
    result.endpoints = {
      pcscf: netReady.pcscf as Record<string, unknown>,
      scscf: netReady.scscf as { address: string; port: number },
      ue: { address: ueHost.ip, ...((ueReady.ues as Record<string, unknown>[])[0] ?? {}) },
    };

    const impu = natSubscriber(1).impu;
    const ueStatus = async () => (await ue.call<{ status: UeStatus; counters: { keepalivesSent?: number } }[]>('status', { ue: 0 }))[0]!;
    const netStatus = () => net.call<{ registrations: RegistrationView[]; backend: { keepalive: number } }>('status');

    const ok =
      (await step('register', async () => {
        const [r] = await ue.call<{ ok: boolean; reason?: string; detail?: string }[]>('register');
        if (!r?.ok) throw new Error(`registration failed: ${r?.reason} (${r?.detail})`);
        const det = net.events.find((e) => e.ev === 'pcscf:nat-detected');
        if (det)
          nat.detected = {
            via: String(det.via),
            source: det.source as { address: string; port: number },
            ...(det.differs ? { differs: String(det.differs) } : {}),
          };
        const v = (await netStatus()).registrations[0];
        if (!v) throw new Error('registered, but the P-CSCF shows no registration');
        nat.pcscf_view = {
          ip: v.ue.ip,
          ...(v.ue.innerIp && { inner_ip: v.ue.innerIp }),
          ...(v.ue.encap && { port_uenc: v.ue.encap.port }),
          ...(v.contact && { contact: v.contact }),
        };
        const pub = (await ueStatus()).status.publicAddress;
        if (pub) nat.ue_public_address = pub;
        const mode = v.sets[0]?.sas[0]?.mode;
        return `registered ${impu}; mode ${mode}; the P-CSCF sees ${v.ue.ip}:${v.ue.encap?.port ?? '?'} (NAT) for ${v.ue.innerIp ?? v.ue.ip} (private)`;
      })) &&
      (await step('message UE → network', async () => {
        const r = await ue.call<{ status: number; reason: string }>('message', { ue: 0, text: 'Hello from behind the NAT' });
        if (r.status !== 200) throw new Error(`MESSAGE answered ${r.status} ${r.reason}`);
        return `${r.status} ${r.reason}`;
      })) &&
      (await step('idle (NAT keepalives)', async () => {
        const k0 = (await ueStatus()).counters.keepalivesSent ?? 0;
        const p0 = (await netStatus()).backend.keepalive;
        await new Promise((r) => setTimeout(r, idleS * 1000));
        nat.keepalives_sent_idle = ((await ueStatus()).counters.keepalivesSent ?? 0) - k0;
        const got = (await netStatus()).backend.keepalive - p0;
        if (nat.keepalives_sent_idle === 0) throw new Error('no keepalive was sent during the idle pause');
        return `${idleS} s idle (NAT UDP timeout ${udpTimeoutS} s): the UE sent ${nat.keepalives_sent_idle} keepalives (every ${keepaliveMs} ms of silence), the P-CSCF ignored ${got}`;
      })) &&
      (await step('message network → UE', async () => {
        const r = await net.call<{ status: number | null; reason: string }>('message', { impu, text: 'Hello through the NAT' });
        if (r.status !== 200) throw new Error(`MESSAGE answered ${r.status ?? 'nothing'} ${r.reason}`);
        const got = await ue.call<string[]>('received', { ue: 0 });
        if (!got.includes('Hello through the NAT')) throw new Error('the UE did not receive the MESSAGE');
        return `${r.status} ${r.reason}; the mapping survived the idle pause, the UE received it over its current SA set`;
      })) &&
      (await step('re-register', async () => {
        const [r] = await ue.call<{ ok: boolean; reason?: string }[]>('reregister');
        if (!r?.ok) throw new Error(`re-registration failed: ${r?.reason}`);
        const v = await waitFor(
          async () => (await netStatus()).registrations[0],
          (x) => x?.sets.length === 1,
          3000,
        );
        return `new SA set ${v?.sets[0]?.id ?? '?'} current at the P-CSCF (old one deleted); port_Uenc still ${v?.ue.encap?.port ?? '?'}`;
      })) &&
      (await step('de-register', async () => {
        const [r] = await ue.call<{ ok: boolean; reason?: string }[]>('deregister');
        if (!r?.ok) throw new Error(`de-registration failed: ${r?.reason}`);
        const v = await waitFor(
          async () => (await netStatus()).registrations.length,
          (n) => n === 0,
          3000,
        );
        if (v !== 0) throw new Error('the P-CSCF still has the registration');
        return 'de-registered; no SA set left on either side';
      }));
    const st = await ueStatus();
    nat.keepalives_sent_total = st.counters.keepalivesSent ?? 0;
    nat.keepalives_received_by_pcscf = (await netStatus()).backend.keepalive;
    result.sa_rows = [...(await ue.call<SaRow[]>('sets', { ue: 0 })), ...(await net.call<SaRow[]>('sets'))];
    result.leftover = { ue: st.status.sets.length, pcscf: (await netStatus()).registrations.reduce((n, r) => n + r.sets.length, 0) };
    if (o.keylog) await net.call('keylog', { path: o.keylog });
    result.ok = ok && result.leftover.ue === 0 && result.leftover.pcscf === 0;
  } catch (e) {
    steps.push({ step: 'setup', ok: false, ms: 0, detail: e instanceof Error ? e.message : String(e) });
  } finally {
    result.messages = agents.flatMap((a) => a.events.filter((e) => e.ev === 'sip') as unknown as SipLine[]).sort((a, b) => a.t - b.t);
    await stopCapture?.().catch(() => {});
    await Promise.all(agents.map((a) => a.quit().catch(() => {})));
    say('… tearing the lab down');
    await lab?.destroy().catch((e: unknown) => steps.push({ step: 'teardown', ok: false, ms: 0, detail: (e as Error).message }));
  }
  result.ok = result.ok && steps.every((s) => s.ok);
  return result;
}

async function waitFor<T>(get: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const end = Date.now() + ms;
  let v = await get();
  while (!ok(v) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    v = await get();
  }
  return v;
}
