// What the NAT test files share: availability (skip with the lab's reason), starting the test
// agents in the lab's namespaces, reading the P-CSCF's and the UEs' views, and small waits.
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../../src/cli/demo/agent-protocol.ts';
import { natSubscriber, type NetAgentOptions, type UeAgentOptions } from '../../src/cli/demo/nat-common.ts';
import { labAvailability, type NatLab } from '../../src/lab/index.ts';
import type { RegistrationView } from '../../src/pcscf/types.ts';
import type { UeStatus } from '../../src/ue/ue-types.ts';

const AGENT = fileURLToPath(new URL('./agents/agent.ts', import.meta.url));

const avail = labAvailability();
/** false when the lab can run here, else the reason (node:test prints it with the skip). */
export const skipNoLab: string | false = avail.ok ? false : `NAT lab unavailable: ${avail.reason}`;

export const impuOf = (i: number): string => natSubscriber(i).impu;
export const impiOf = (i: number): string => natSubscriber(i).impi;

/** SIP T1 in the lab: short, so that Timer F (64·T1) proves a lost request in a few seconds. */
export const T1 = 100;

export async function startNet(lab: NatLab, o: Partial<NetAgentOptions> = {}): Promise<AgentClient> {
  const opts: NetAgentOptions = { address: lab.net.ip, subscribers: 60, t1: T1, ...o };
  const a = new AgentClient(lab.spawnNode(lab.net.ns, AGENT, ['net', JSON.stringify(opts)], {}, { stdin: 'pipe' }));
  await a.ready(60_000);
  return a;
}

/** UEs for subscribers first.. in UE namespace `ns` (index into lab.ue). */
export async function startUes(lab: NatLab, ns: number, o: Partial<UeAgentOptions> & { first: number }): Promise<AgentClient> {
  const host = lab.ue[ns]!;
  const opts: UeAgentOptions = { localIp: host.ip, pcscf: { address: lab.net.ip }, count: 1, keepaliveMs: 1000, t1: T1, ...o };
  const a = new AgentClient(lab.spawnNode(host.ns, AGENT, ['ue', JSON.stringify(opts)], {}, { stdin: 'pipe' }));
  await a.ready(60_000);
  return a;
}

export interface NetStatus {
  registrations: RegistrationView[];
  counters: { rejected: Record<string, number> };
  backend: { keepalive: number; unknownSpi: number };
  encap: { set: string; peer: { address: string; port: number } | null }[];
}

export async function registration(net: AgentClient, i: number): Promise<RegistrationView | undefined> {
  const st = await net.call<NetStatus>('status');
  return st.registrations.find((r) => r.impi === impiOf(i));
}

export interface UeAgentStatus {
  ue: number;
  encap_port: number;
  plain_port: number;
  status: UeStatus;
  counters: { keepalivesSent?: number; keepalive: number };
}

export async function ueStatus(ue: AgentClient, k = 0): Promise<UeAgentStatus> {
  return (await ue.call<UeAgentStatus[]>('status', { ue: k }))[0]!;
}

export interface ProcResult {
  ue: number;
  ok: boolean;
  ms: number;
  reason?: string;
  detail?: string;
  status?: number | null;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 50 ms until it holds (or throws naming `what`). */
export async function eventually<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: last ${JSON.stringify(v)}`);
    await sleep(50);
  }
}
