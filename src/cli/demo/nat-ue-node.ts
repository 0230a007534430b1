// The UE side of the NAT lab, run inside a UE namespace: one or many UEs, each with its own
// userspace backend and so its own ESP-in-UDP socket and NAT mapping (spec digest §15A points 1-3),
// as agent commands: register, MESSAGE, re-/de-register, status (public address, keepalives).
import { isEncryptionAlg, isIntegrityAlg } from '../../ipsec/algorithms.ts';
import { UserspaceBackend } from '../../ipsec/backends/userspace.ts';
import { NAT_T_PORT } from '../../ipsec/types.ts';
import { Ue } from '../../ue/ue.ts';
import { fromHex } from '../../util/bytes.ts';
import type { SipTraceEvent } from '../../util/trace.ts';
import type { AgentServer, Handler } from './agent-protocol.ts';
import { NAT_DOMAIN, natSubscriber, saRows, sipLine, type UeAgentOptions } from './nat-common.ts';
import { DemoRecorder, type Installed } from './recorder.ts';
import { DEMO_SUBSCRIBER } from './run.ts';
import { systemClock } from '../../util/clock.ts';

export interface HostedUe {
  readonly k: number;
  readonly ue: Ue;
  readonly backend: UserspaceBackend;
  readonly installed: readonly Installed[];
  /** Bodies of the requests that reached this UE over its SAs. */
  readonly received: string[];
}

export interface UeNode {
  readonly ues: readonly HostedUe[];
  readonly handlers: Record<string, Handler>;
  stop(): Promise<void>;
}

/** Port ranges for protected ports, one slice per hosted UE so UEs of one agent never pick the same. */
function portRange(k: number, count: number): [number, number] {
  const span = Math.max(20, Math.floor(30_000 / Math.max(1, count)));
  return [20_000 + k * span, 20_000 + (k + 1) * span - 1];
}

export interface UeNodeHooks {
  /** Every outer packet a UE's backend sends or receives (test agents replay them). */
  readonly wireLog?: (k: number, ip: Uint8Array, dir: 'in' | 'out') => void;
}

export async function startUeNode(o: UeAgentOptions, server: () => AgentServer | undefined, hooks: UeNodeHooks = {}): Promise<UeNode> {
  const emit = (ev: string, p: Record<string, unknown>) => server()?.emit(ev, p);
  const hosted: HostedUe[] = [];
  const stop = async () => {
    for (const h of hosted) {
      await h.ue.close().catch(() => {});
      await h.backend.close().catch(() => {});
    }
  };
  const alg = o.alg && isIntegrityAlg(o.alg) ? o.alg : undefined;
  const ealg = o.ealg && isEncryptionAlg(o.ealg) ? o.ealg : undefined;
  try {
    for (let k = 0; k < o.count; k++) {
      const backend = await UserspaceBackend.create({
        localIp: o.localIp,
        encapPort: (o.encapPort ?? NAT_T_PORT) + k,
        clock: systemClock,
        ...(o.keepaliveMs !== undefined && { keepaliveMs: o.keepaliveMs }),
        ...(hooks.wireLog && { wireLog: (ip: Uint8Array, dir: 'in' | 'out') => hooks.wireLog!(k, ip, dir) }),
      });
      const rec = new DemoRecorder();
      const recorded = rec.recordInstalls('ue', backend);
      const received: string[] = [];
      const s = natSubscriber(o.first + k);
      const ue = await Ue.create({
        impi: s.impi,
        impu: s.impu,
        pcscf: { address: o.pcscf.address, port: o.pcscf.port ?? 5060 },
        pcscfEncapPort: o.pcscf.encapPort ?? NAT_T_PORT,
        localIp: o.localIp,
        localPort: (o.plainPort ?? 5060) + k,
        k: fromHex(DEMO_SUBSCRIBER.k),
        opc: fromHex(DEMO_SUBSCRIBER.opc),
        modes: o.modes ?? ['trans', 'UDP-enc-tun'],
        ...(alg && ealg && { offers: [{ alg, ealg }] }),
        ...(o.natInnerAddress && { natInnerAddress: o.natInnerAddress }),
        backend: recorded,
        portRange: portRange(k, o.count),
        reRegister: 'off',
        expires: 3600,
        ...(o.t1 && { timers: { t1: o.t1 } }),
        ...(o.trace && { trace: (e: SipTraceEvent) => e.dir === 'send' && emit('sip', { ...sipLine(e) }) }),
      });
      const h: HostedUe = { k, ue, backend, installed: rec.installed, received };
      hosted.push(h);
      ue.onRequest((r) => {
        const body = Buffer.from(r.request.body).toString();
        received.push(body);
        emit('ue:request', { ue: k, method: r.request.method, body, sa: r.sa, set: r.set.id });
        return { status: 200 };
      });
      ue.on('step', (text) => emit('ue:step', { ue: k, text }));
    }
  } catch (e) {
    await stop();
    throw e;
  }

  const one = (a: Record<string, unknown>): HostedUe => {
    const k = Number(a.ue ?? 0);
    const h = hosted[k];
    if (!h) throw new Error(`no UE ${k} here (this agent hosts ${hosted.length})`);
    return h;
  };
  const which = (a: Record<string, unknown>): HostedUe[] =>
    Array.isArray(a.ues) ? a.ues.map((k) => one({ ue: k })) : a.ue !== undefined ? [one(a)] : hosted;
  const procedure = async (h: HostedUe, run: () => ReturnType<Ue['register']>) => {
    const t = Date.now();
    const r = await run();
    return {
      ue: h.k,
      ok: r.ok,
      ms: Date.now() - t,
      ...(r.ok ? { expires: r.expires } : { reason: r.reason, detail: r.detail, status: r.status ?? null }),
    };
  };
  /** Runs `fn` over the chosen UEs, `limit` at a time (50 registrations at once would only time out). */
  const each = async <T>(hs: HostedUe[], limit: number, fn: (h: HostedUe) => Promise<T>): Promise<T[]> => {
    const out: T[] = new Array(hs.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(limit, hs.length) }, async () => {
        while (next < hs.length) {
          const i = next++;
          out[i] = await fn(hs[i]!);
        }
      }),
    );
    return out;
  };
  const status = (h: HostedUe) => ({
    ue: h.k,
    encap_port: h.backend.encapPort,
    plain_port: h.ue.plainPort,
    status: h.ue.status(),
    counters: h.backend.counters,
  });
  const handlers: Record<string, Handler> = {
    register: (a) => each(which(a), Number(a.concurrency ?? 8), (h) => procedure(h, () => h.ue.register())),
    reregister: (a) => each(which(a), Number(a.concurrency ?? 8), (h) => procedure(h, () => h.ue.reRegister())),
    deregister: (a) => each(which(a), Number(a.concurrency ?? 8), (h) => procedure(h, () => h.ue.deregister())),
    /** A MESSAGE from UE `ue` over SA1 of its current set (to the network's echo service by default). */
    message: async (a) => {
      const h = one(a);
      const res = await h.ue.sendMessage(String(a.to ?? `sip:echo@${NAT_DOMAIN}`), String(a.text ?? 'hello from the UE'));
      return { status: res.status, reason: res.reason };
    },
    status: (a) => which(a).map(status),
    received: (a) => one(a).received,
    sets: (a) => which(a).flatMap((h) => h.installed.flatMap((i) => saRows('ue', i.set))),
  };
  return { ues: hosted, handlers, stop };
}
