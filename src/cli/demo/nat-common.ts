// What the NAT agents (net and UE side) share: the lab's subscribers (TS 35.208 Test Set 1 keys,
// numbered IMPIs), SA-set rows for reports (summary data only, never keys), trace events without
// bytes, and the options each agent is started with (JSON on its command line).
import type { SaSet } from '../../ipsec/sa-set.ts';
import type { SipTraceEvent } from '../../util/trace.ts';
import { DEMO_SUBSCRIBER } from './run.ts';

export const NAT_DOMAIN = DEMO_SUBSCRIBER.domain;

/** Subscriber i (1-based); subscriber 1 is the loopback demo's DEMO_SUBSCRIBER. */
export function natSubscriber(i: number): { impi: string; impu: string } {
  const msin = String(i).padStart(10, '0');
  return { impi: `00101${msin}@${NAT_DOMAIN}`, impu: `sip:00101${msin}@${NAT_DOMAIN}` };
}

export interface NetAgentOptions {
  /** The network namespace's address: S-CSCF, P-CSCF and its SAs. */
  readonly address: string;
  /** Plain SIP port of the P-CSCF (default 5060) and of the S-CSCF (default 6060). */
  readonly port?: number;
  readonly scscfPort?: number;
  /** The P-CSCF's ESP-in-UDP port (default 4500, spec digest §15A point 1). */
  readonly encapPort?: number;
  readonly subscribers: number;
  readonly mode?: 'auto' | 'udp-enc-tun' | 'trans';
  readonly natInnerAddress?: 'private' | 'public';
  /** RFC 3261 T1 for both network functions (short in tests: Timer F = 64·T1). */
  readonly t1?: number;
  /** Emit a `sip` event per message sent (the demo's timeline). */
  readonly trace?: boolean;
  readonly alg?: string;
  readonly ealg?: string;
}

export interface UeAgentOptions {
  readonly localIp: string;
  readonly pcscf: { readonly address: string; readonly port?: number; readonly encapPort?: number };
  /** How many UEs this agent hosts, for subscribers first .. first+count-1. */
  readonly count: number;
  readonly first: number;
  /** Encapsulation port of UE k (k = 0..count-1): encapPort + k (default 4500 + k; spec digest §15A point 1). */
  readonly encapPort?: number;
  /** Plain SIP port of UE k: plainPort + k (default 5060 + k). */
  readonly plainPort?: number;
  /** RFC 3948 keepalive interval, ms (0 = off; default 20 000). */
  readonly keepaliveMs?: number;
  /** Modes offered in Security-Client (default both). */
  readonly modes?: readonly ('trans' | 'UDP-enc-tun')[];
  readonly natInnerAddress?: 'private' | 'public';
  readonly t1?: number;
  readonly trace?: boolean;
  readonly alg?: string;
  readonly ealg?: string;
}

/** One SA of a set as the reports show it (the set's state, ports, outer addresses, counters). */
export interface SaRow {
  side: 'ue' | 'pcscf';
  set: string;
  set_state: string;
  mode: string;
  sa: string;
  dir: string;
  spi: number;
  src: string;
  dst: string;
  ports: string;
  alg: string;
  ealg: string;
  packets: number;
  bytes: number;
  drops: string;
}

export function saRows(side: 'ue' | 'pcscf', set: SaSet): SaRow[] {
  return set.summary().map((r) => ({
    side,
    set: set.id,
    set_state: set.state,
    mode: r.mode,
    sa: r.name,
    dir: r.direction,
    spi: r.spi,
    src: r.src,
    dst: r.dst,
    ports: `${r.srcPort}→${r.dstPort}`,
    alg: r.alg,
    ealg: r.ealg,
    packets: r.packets,
    bytes: r.bytes,
    drops:
      Object.entries(r.drops)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${k}=${n}`)
        .join(',') || '-',
  }));
}

/** A trace event as an agent reports it (no bytes). */
export interface SipLine {
  t: number;
  node: string;
  local: { address: string; port: number };
  remote: { address: string; port: number };
  sa?: { name: string; spi: number; set: string; state: string };
  first_line: string;
}

export function sipLine(e: SipTraceEvent): SipLine {
  return {
    // Sub-millisecond wall clock, so that the lines of two agents interleave in the right order.
    t: Math.max(e.t, performance.timeOrigin + performance.now()),
    node: e.node,
    local: { address: e.local.address, port: e.local.port },
    remote: { address: e.remote.address, port: e.remote.port },
    ...(e.sa ? { sa: { ...e.sa } } : {}),
    first_line: e.firstLine,
  };
}

/** Reads the agent's JSON options from argv[2]. */
export function agentOptions<T>(): T {
  const raw = process.argv[2];
  if (!raw) throw new Error('usage: AGENT \'{"json":"options"}\'');
  return JSON.parse(raw) as T;
}
