// The network side of the NAT lab, run inside its network namespace: HSS (SQLite in memory),
// S-CSCF and the P-CSCF with its ESP-in-UDP socket on 4500 (33.203 Annex M; spec digest §15A),
// as commands for an agent: status, network-initiated MESSAGE, SA rows, the keylog file.
import { writeFileSync } from 'node:fs';
import { isEncryptionAlg, isIntegrityAlg } from '../../ipsec/algorithms.ts';
import { UserspaceBackend } from '../../ipsec/backends/userspace.ts';
import { espSaLines } from '../../ipsec/key-export.ts';
import { NAT_T_PORT } from '../../ipsec/types.ts';
import { PCSCF_EVENT_NAMES, Pcscf } from '../../pcscf/pcscf.ts';
import { Hss } from '../../scscf/hss.ts';
import { HssStore } from '../../scscf/hss-store.ts';
import { Scscf } from '../../scscf/scscf.ts';
import { fromHex } from '../../util/bytes.ts';
import type { SipTraceEvent } from '../../util/trace.ts';
import type { AgentServer, Handler } from './agent-protocol.ts';
import { NAT_DOMAIN, natSubscriber, saRows, sipLine, type NetAgentOptions } from './nat-common.ts';
import { DemoRecorder, type Installed } from './recorder.ts';
import { DEMO_SUBSCRIBER } from './run.ts';
import { systemClock } from '../../util/clock.ts';

export interface NetNode {
  readonly pcscf: Pcscf;
  readonly scscf: Scscf;
  readonly backend: UserspaceBackend;
  /** Every SA set the P-CSCF installed, in order (deleted ones too). */
  readonly installed: readonly Installed[];
  readonly handlers: Record<string, Handler>;
  /** Where the ready event's facts come from. */
  readonly facts: Record<string, unknown>;
  stop(): Promise<void>;
}

/** Starts HSS, S-CSCF and P-CSCF; `server` gets their events (set it before traffic flows). */
export async function startNetNode(o: NetAgentOptions, server: () => AgentServer | undefined): Promise<NetNode> {
  const emit = (ev: string, p: Record<string, unknown>) => server()?.emit(ev, p);
  const trace = o.trace ? (e: SipTraceEvent) => e.dir === 'send' && emit('sip', { ...sipLine(e) }) : undefined;
  const timers = o.t1 ? { timers: { t1: o.t1 } } : {};
  const store = new HssStore(':memory:');
  for (let i = 1; i <= o.subscribers; i++) {
    const s = natSubscriber(i);
    store.add({
      impi: s.impi,
      impus: [s.impu],
      k: fromHex(DEMO_SUBSCRIBER.k),
      opc: fromHex(DEMO_SUBSCRIBER.opc),
      amf: fromHex(DEMO_SUBSCRIBER.amf),
    });
  }
  const stops: (() => Promise<unknown> | unknown)[] = [() => store.close()];
  const stop = async () => {
    for (const s of stops.reverse())
      await Promise.resolve()
        .then(s)
        .catch(() => {});
    stops.length = 0;
  };
  try {
    const scscf = await Scscf.start({
      address: o.address,
      port: o.scscfPort ?? 6060,
      domain: NAT_DOMAIN,
      hss: new Hss(store),
      ...timers,
      ...(trace && { trace }),
    });
    stops.push(() => scscf.stop());
    const backend = await UserspaceBackend.create({ localIp: o.address, encapPort: o.encapPort ?? NAT_T_PORT, clock: systemClock });
    stops.push(() => backend.close());
    const rec = new DemoRecorder();
    const installed = rec.installed;
    const recorded = rec.recordInstalls('pcscf', backend);
    const alg = o.alg && isIntegrityAlg(o.alg) ? o.alg : undefined;
    const ealg = o.ealg && isEncryptionAlg(o.ealg) ? o.ealg : undefined;
    const pcscf = await Pcscf.start({
      address: o.address,
      port: o.port ?? 5060,
      portC: 0,
      portS: 0,
      scscf: scscf.local,
      backend: recorded,
      mode: o.mode ?? 'auto',
      natInnerAddress: o.natInnerAddress ?? 'private',
      policy: { allowDeprecated: true, ...(alg && ealg && { allow: [{ alg, ealg }] }) },
      ...timers,
      ...(trace && { trace }),
    });
    stops.push(() => pcscf.stop());
    for (const name of PCSCF_EVENT_NAMES) pcscf.on(name, (ev) => emit(`pcscf:${name}`, { ...(ev as object) }));

    const handlers: Record<string, Handler> = {
      /** The P-CSCF's registrations (public IP, inner IP, port_Uenc, sets) and counters. */
      status: () => ({
        registrations: pcscf.registrations(),
        counters: pcscf.counters,
        backend: backend.counters,
        encap: backend.sets.filter((s) => s.live).map((s) => ({ set: s.id, peer: backend.peerEncapOf(s) ?? null })),
      }),
      /** A network-initiated MESSAGE from the S-CSCF to a registered IMPU (through the NAT to the UE). */
      message: async (a) => {
        try {
          const res = await scscf.sendMessage(String(a.impu), String(a.text ?? 'hello from the network'));
          return { status: res.status, reason: res.reason, warning: res.headers.get('Warning') ?? null };
        } catch (e) {
          // No final response at all (Timer F at the S-CSCF): status null, and why.
          return { status: null, reason: e instanceof Error ? e.message : String(e), warning: null };
        }
      },
      /** Rows for every SA the P-CSCF installed (no keys). */
      sets: () => installed.flatMap((i) => saRows('pcscf', i.set)),
      /** The Wireshark esp_sa lines of every set the P-CSCF installed, into a file (mode 0600). */
      keylog: (a) => {
        const path = String(a.path);
        const lines = installed.flatMap((i) => espSaLines(i.set).filter((l) => !l.startsWith('#')));
        writeFileSync(path, lines.join('\n') + '\n', { mode: 0o600 });
        return { path, records: lines.length };
      },
    };
    const facts = {
      address: o.address,
      pcscf: { port: pcscf.port, port_c: pcscf.portC, port_s: pcscf.portS, encap_port: backend.encapPort },
      scscf: { address: scscf.local.address, port: scscf.local.port },
    };
    return { pcscf, scscf, backend, installed, handlers, facts, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
