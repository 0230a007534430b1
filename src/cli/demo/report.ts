// How the demo shows what happened: a timeline of SIP messages (who sent what to whom, and
// unprotected or under which SA and SPI), the SA table with counters, and the JSON summary.
import { spiText } from '../../ipsec/sa.ts';
import type { SipTraceEvent } from '../../util/trace.ts';
import type { DemoResult } from './run.ts';

const NODE_NAME = { ue: 'UE', pcscf: 'P-CSCF', scscf: 'S-CSCF' } as const;

function peerOf(r: DemoResult, e: SipTraceEvent): string {
  const { pcscf, scscf } = r.endpoints;
  const p = e.remote.port;
  if (p === scscf.port && e.remote.address === scscf.address) return 'S-CSCF';
  if (e.remote.address === pcscf.address && (p === pcscf.plain || p === pcscf.portC || p === pcscf.portS)) return 'P-CSCF';
  return 'UE';
}

/** One line per message sent (each message once, from its sender). */
export function timelineLines(r: DemoResult): string[] {
  const t0 = r.recorder.t0;
  return r.recorder.messages
    .filter((e) => e.dir === 'send')
    .map((e) => {
      const who = NODE_NAME[e.node as keyof typeof NODE_NAME] ?? e.node;
      const prot = e.sa ? `ESP ${e.sa.name} spi ${spiText(e.sa.spi)} (${e.sa.state} set)` : 'unprotected';
      const ports = `${e.local.port}→${e.remote.port}`;
      return `${String(e.t - t0).padStart(6)} ms  ${who.padEnd(6)} → ${peerOf(r, e).padEnd(6)}  ${truncate(e.firstLine, 58).padEnd(58)}  ${ports.padEnd(11)}  ${prot}`;
    });
}

export interface SaTableRow {
  side: string;
  set: string;
  set_state: string;
  sa: string;
  dir: string;
  spi: string;
  ports: string;
  alg: string;
  ealg: string;
  mode: string;
  packets: number;
  bytes: number;
  drops: string;
}

export function saTable(r: DemoResult): SaTableRow[] {
  return r.recorder.installed.flatMap(({ side, set }) =>
    set.summary().map((row) => ({
      side: side === 'ue' ? 'UE' : 'P-CSCF',
      set: set.id,
      set_state: set.state,
      sa: row.name,
      dir: row.direction,
      spi: spiText(row.spi),
      ports: `${row.srcPort}→${row.dstPort}`,
      alg: row.alg,
      ealg: row.ealg,
      mode: row.mode,
      packets: row.packets,
      bytes: row.bytes,
      drops:
        Object.entries(row.drops)
          .filter(([, n]) => n > 0)
          .map(([k, n]) => `${k}=${n}`)
          .join(',') || '-',
    })),
  );
}

export function jsonSummary(r: DemoResult, opts: Record<string, unknown>): Record<string, unknown> {
  const t0 = r.recorder.t0;
  return {
    ok: r.ok,
    options: opts,
    endpoints: {
      ue: r.endpoints.ue,
      pcscf: {
        address: r.endpoints.pcscf.address,
        port: r.endpoints.pcscf.plain,
        port_c: r.endpoints.pcscf.portC,
        port_s: r.endpoints.pcscf.portS,
        encap_port: r.endpoints.pcscf.encapPort ?? null,
      },
      scscf: r.endpoints.scscf,
    },
    steps: r.steps.map((s) => ({ step: s.step, ok: s.ok, ms: s.ms, detail: s.detail })),
    messages: r.recorder.messages
      .filter((e) => e.dir === 'send')
      .map((e) => ({
        t_ms: e.t - t0,
        from: NODE_NAME[e.node as keyof typeof NODE_NAME] ?? e.node,
        to: peerOf(r, e),
        first_line: e.firstLine,
        src_port: e.local.port,
        dst_port: e.remote.port,
        protected: e.sa ? { sa: e.sa.name, spi: e.sa.spi, set: e.sa.set, set_state: e.sa.state } : null,
      })),
    sa_sets: r.recorder.installed.map(({ side, set }) => ({
      side,
      id: set.id,
      state: set.state,
      alg: set.config.alg,
      ealg: set.config.ealg,
      mode: set.config.mode,
      sas: set.summary().map((row) => ({
        name: row.name,
        direction: row.direction,
        spi: row.spi,
        src: row.src,
        dst: row.dst,
        src_port: row.srcPort,
        dst_port: row.dstPort,
        packets: row.packets,
        bytes: row.bytes,
        drops: row.drops,
      })),
    })),
    leftover_live_sets: r.leftover,
  };
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n - 1) + '…';
}
