// How `imsec demo --nat` shows what happened: the timeline (each SIP message once, from its sender,
// with the addresses its stack used), the NAT facts (where the NAT was detected, the mapping, the
// keepalives), the SA rows of both sides, and the JSON summary (snake_case, never keys).
import { spiText } from '../../ipsec/sa.ts';
import type { NatDemoResult } from './nat.ts';
import type { SaRow, SipLine } from './nat-common.ts';

const NODE = { ue: 'UE', pcscf: 'P-CSCF', scscf: 'S-CSCF' } as const;

function peerOf(r: NatDemoResult, m: SipLine): string {
  if (m.node === 'ue' || m.node === 'scscf') return 'P-CSCF';
  const s = r.endpoints.scscf;
  return s && m.remote.address === s.address && m.remote.port === s.port ? 'S-CSCF' : 'UE';
}

const hp = (a: { address: string; port: number }) => (a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);

export function natTimelineLines(r: NatDemoResult): string[] {
  return r.messages.map((m) => {
    const who = NODE[m.node as keyof typeof NODE] ?? m.node;
    const line = m.first_line.length > 46 ? `${m.first_line.slice(0, 45)}…` : m.first_line;
    const prot = m.sa ? `ESP ${m.sa.name} spi ${spiText(m.sa.spi)}` : 'unprotected';
    return `${String(Math.round(m.t - r.t0)).padStart(6)} ms  ${who.padEnd(6)} → ${peerOf(r, m).padEnd(6)}  ${line.padEnd(46)}  ${`${hp(m.local)} → ${hp(m.remote)}`.padEnd(42)}  ${prot}`;
  });
}

export function natFactLines(r: NatDemoResult): string[] {
  const n = r.nat;
  const out = [
    `lab ${r.lab.prefix}: UE ${r.lab.ue_private} (private) → NAT ${r.lab.nat_public} (public, ${r.lab.nat_type}, UDP timeout ${n.nat_udp_timeout_s} s) → network ${r.lab.network}`,
  ];
  out.push(
    n.detected
      ? `NAT detected by the P-CSCF on the first REGISTER (24.229 F.1): top Via ${n.detected.via} ≠ packet source ${hp(n.detected.source)} (${n.detected.differs ?? 'address'} differs) → mod=UDP-enc-tun`
      : 'no NAT detected (Via and source agreed)',
  );
  if (n.ue_public_address)
    out.push(
      `the UE learnt its public address from the 401's Via received/rport: ${n.ue_public_address.address}${n.ue_public_address.port ? `:${n.ue_public_address.port}` : ''} → Contact of the protected REGISTER (24.229 F.2)`,
    );
  const v = n.pcscf_view;
  if (v) {
    out.push(
      `mapped public address at the P-CSCF: ${v.ip}, port_Uenc ${v.port_uenc ?? '?'} (from the first authenticated ESP-in-UDP packet); inner (private) address ${v.inner_ip ?? v.ip}`,
    );
    if (v.contact) out.push(`registered Contact: ${v.contact}`);
  }
  out.push(
    `NAT-keepalives (RFC 3948, one 0xFF octet after ${n.keepalive_ms} ms of silence; 20 s by default, shortened for the demo): ` +
      `${n.keepalives_sent_idle} during the ${n.idle_s} s idle pause, ${n.keepalives_sent_total} in all; the P-CSCF ignored ${n.keepalives_received_by_pcscf} (never a sign of life)`,
  );
  return out;
}

export function natSaTable(r: NatDemoResult): Record<string, string | number>[] {
  return r.sa_rows.map((x: SaRow) => ({
    side: x.side === 'ue' ? 'UE' : 'P-CSCF',
    set: x.set,
    set_state: x.set_state,
    sa: x.sa,
    dir: x.dir,
    spi: spiText(x.spi),
    outer: `${x.src} → ${x.dst}`,
    ports: x.ports,
    alg: x.alg,
    ealg: x.ealg,
    mode: x.mode,
    packets: x.packets,
    drops: x.drops,
  }));
}

export function natJsonSummary(r: NatDemoResult, opts: Record<string, unknown>): Record<string, unknown> {
  return {
    ok: r.ok,
    options: opts,
    lab: r.lab,
    endpoints: r.endpoints,
    nat: r.nat,
    steps: r.steps.map((s) => ({ step: s.step, ok: s.ok, ms: s.ms, detail: s.detail })),
    messages: r.messages.map((m) => ({
      t_ms: Math.round(m.t - r.t0),
      from: NODE[m.node as keyof typeof NODE] ?? m.node,
      to: peerOf(r, m),
      first_line: m.first_line,
      local: m.local,
      remote: m.remote,
      protected: m.sa ? { sa: m.sa.name, spi: m.sa.spi, set: m.sa.set, set_state: m.sa.state } : null,
    })),
    sa_rows: r.sa_rows,
    leftover_live_sets: r.leftover,
  };
}
