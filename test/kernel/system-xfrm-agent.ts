// Runs inside the VM, in one network namespace, driven over JSON lines (guest-rpc.ts) by
// system-xfrm-guest.ts: `net` = HSS + S-CSCF + P-CSCF, `core` = HSS + S-CSCF alone (the P-CSCF then
// runs as `imsec pcscf`, system-xfrm-restart.ts), `ue` = one UE; each on the backend it is told
// (xfrm: kernel SAs; userspace: our ESP engine). `stop` shuts down cleanly (SAs removed).
import { UserspaceBackend } from '../../src/ipsec/backends/userspace.ts';
import { XfrmBackend, type KernelEvent } from '../../src/ipsec/backends/xfrm/index.ts';
import type { IpsecBackend } from '../../src/ipsec/backends/backend.ts';
import type { SaSet } from '../../src/ipsec/sa-set.ts';
import { PCSCF_EVENT_NAMES, Pcscf } from '../../src/pcscf/pcscf.ts';
import { Hss } from '../../src/scscf/hss.ts';
import { HssStore } from '../../src/scscf/hss-store.ts';
import { Scscf } from '../../src/scscf/scscf.ts';
import { systemClock } from '../../src/sip/clock.ts';
import { Ue } from '../../src/ue/ue.ts';
import { fromHex } from '../../src/util/bytes.ts';
import { DOMAIN, K, OPC, subscriber } from '../support/ims-world.ts';
import { serve, type Handler } from './guest-rpc.ts';

export interface AgentOptions {
  readonly role: 'net' | 'ue' | 'core';
  /** ue: which subscriber of ims-world.ts (default 1). */
  readonly subscriber?: number;
  readonly backend: 'xfrm' | 'userspace';
  readonly address: string;
  /** Ownership-tag instance of an xfrm backend. */
  readonly instance: number;
  /** net: P-CSCF mode; ue: modes offered. */
  readonly mode: 'auto' | 'trans' | 'udp-enc-tun';
  readonly transport?: 'udp' | 'tcp';
  /** ue: the P-CSCF's plain SIP address. */
  readonly pcscf?: string;
  readonly t1?: number;
  /** ue on userspace: RFC 3948 NAT-keepalive interval (the backend's default is 20 s). */
  readonly keepaliveMs?: number;
}

const o = JSON.parse(process.argv[2]!) as AgentOptions;
const kernelEvents: KernelEvent[] = [];
const timers = { timers: { t1: o.t1 ?? 200 } };

async function openBackend(encapPort: number): Promise<IpsecBackend> {
  // The backends' clock must be the network functions' (systemClock: performance.now), or the
  // kernel's hard lifetimes come out wrong.
  const clock = systemClock;
  if (o.backend === 'userspace')
    return UserspaceBackend.create({
      localIp: o.address,
      encapPort,
      clock,
      ...(o.keepaliveMs !== undefined && { keepaliveMs: o.keepaliveMs }),
    });
  return XfrmBackend.create({
    instance: o.instance,
    encapPort: encapPort || 4500,
    clock,
    onKernelEvent: ({ set: _s, sa: _a, ...e }) => void kernelEvents.push(e as KernelEvent),
  });
}

/** Per SA of a set: the kernel's counters (xfrm) or our engine's (userspace). */
function counters(b: IpsecBackend, set: SaSet): Record<string, number> {
  return Object.fromEntries(b.saStats(set).map((s) => [s.name, s.packets]));
}

const liveSets = (b: IpsecBackend) => b.sets.filter((s) => s.live);

async function net(): Promise<Record<string, Handler>> {
  const store = new HssStore(':memory:');
  for (let i = 1; i <= 4; i++) {
    const s = subscriber(i);
    store.add({ impi: s.impi, impus: [s.impu], k: fromHex(K), opc: fromHex(OPC), amf: fromHex('8000') });
  }
  const scscf = await Scscf.start({ address: o.address, port: 6060, domain: DOMAIN, hss: new Hss(store), ...timers });
  const backend = await openBackend(4500);
  const pcscf = await Pcscf.start({
    address: o.address,
    port: 5060,
    portC: 5062,
    portS: 5064,
    scscf: scscf.local,
    backend,
    mode: o.mode,
    policy: { allowDeprecated: true },
    ...timers,
  });
  const events: { name: string; ev: unknown }[] = [];
  for (const name of PCSCF_EVENT_NAMES) {
    pcscf.on(name, (ev) => {
      events.push({ name, ev });
      process.stderr.write(`${(performance.timeOrigin + performance.now()).toFixed(0)} pcscf: ${name} ${JSON.stringify(ev)}\n`);
    });
  }
  return {
    message: async (a: { impu: string; text: string }) => {
      const res = await scscf.sendMessage(a.impu, a.text);
      return { status: res.status };
    },
    status: () => ({
      registrations: pcscf.registrations().map((r) => ({ impi: r.impi, state: r.state, nat: r.nat, ue: r.ue, contact: r.contact })),
      sets: liveSets(backend).map((s) => ({
        id: s.id,
        state: s.state,
        mode: s.config.mode,
        ue: s.config.ue,
        counters: counters(backend, s),
      })),
      events,
      kernelEvents,
      rejected: pcscf.counters.rejected,
      backend: backend.counters,
      drops: liveSets(backend).map((x) => x.summary().map((r) => ({ sa: r.name, packets: r.packets, drops: r.drops }))),
    }),
    stop: async () => {
      await pcscf.stop();
      await scscf.stop();
      const left = liveSets(backend).length;
      await backend.close();
      store.close();
      return { leftSets: left };
    },
  };
}

/** HSS + S-CSCF only: what a P-CSCF restart must not disturb (it keeps the registrations). */
async function core(): Promise<Record<string, Handler>> {
  const store = new HssStore(':memory:');
  for (let i = 1; i <= 4; i++) {
    const s = subscriber(i);
    store.add({ impi: s.impi, impus: [s.impu], k: fromHex(K), opc: fromHex(OPC), amf: fromHex('8000') });
  }
  const seen: Record<string, number> = {};
  const scscf = await Scscf.start({
    address: o.address,
    port: 6060,
    domain: DOMAIN,
    hss: new Hss(store),
    ...timers,
    trace: (e) => {
      if (e.dir !== 'recv' || e.firstLine.startsWith('SIP/2.0')) return;
      const m = e.firstLine.split(' ')[0]!;
      seen[m] = (seen[m] ?? 0) + 1;
    },
  });
  return {
    message: async (a: { impu: string; text: string }) => ({ status: (await scscf.sendMessage(a.impu, a.text)).status }),
    seen: () => ({ ...seen }),
    stop: async () => {
      await scscf.stop();
      store.close();
      return { leftSets: 0 };
    },
  };
}

async function ue(): Promise<Record<string, Handler>> {
  const s = subscriber(o.subscriber ?? 1);
  // Userspace, UDP-enc-tun: every ESP-in-UDP payload sent, kept for a replay (a captured packet sent again).
  const sent: { at: number; payload: Uint8Array; to: string }[] = [];
  const backend =
    o.backend === 'userspace'
      ? await UserspaceBackend.create({
          localIp: o.address,
          encapPort: 0,
          clock: systemClock,
          ...(o.keepaliveMs !== undefined && { keepaliveMs: o.keepaliveMs }),
          wireLog: (ip, dir) => {
            // IPv4 + UDP carrying more than a keepalive octet: the ESP packet (UDP payload).
            if (dir === 'out' && ip[0]! >> 4 === 4 && ip[9] === 17 && ip.length > 28 + 8)
              sent.push({ at: sent.length, payload: ip.slice(28), to: `${ip[16]}.${ip[17]}.${ip[18]}.${ip[19]}` });
          },
        })
      : await openBackend(0);
  const modes =
    o.mode === 'trans'
      ? ['trans' as const]
      : o.mode === 'udp-enc-tun'
        ? ['UDP-enc-tun' as const]
        : ['trans' as const, 'UDP-enc-tun' as const];
  const u = await Ue.create({
    impi: s.impi,
    impu: s.impu,
    pcscf: { address: o.pcscf!, port: 5060 },
    localIp: o.address,
    k: fromHex(K),
    opc: fromHex(OPC),
    modes,
    backend,
    pcscfEncapPort: 4500,
    reRegister: 'off',
    expires: 3600,
    transport: o.transport ?? 'udp',
    ...timers,
  });
  const requests: { method: string; via: string; sa: string; set: string }[] = [];
  u.on('request', (r) => requests.push({ method: r.request.method, via: r.request.headers.get('Via') ?? '', sa: r.sa, set: r.set.id }));
  const steps: string[] = [];
  u.on('step', (t) => {
    steps.push(t);
    process.stderr.write(`${(performance.timeOrigin + performance.now()).toFixed(0)} ue: ${t}\n`);
  });
  const proc = async (r: Promise<{ ok: boolean }>) => {
    const res = await r;
    const set = u.sas.current;
    return {
      ...res,
      set: set
        ? { id: set.id, mode: set.config.mode, alg: set.config.alg, ealg: set.config.ealg, ue: set.config.ue, pcscf: set.config.pcscf }
        : null,
    };
  };
  return {
    register: () => proc(u.register()),
    reregister: () => proc(u.reRegister()),
    deregister: () => proc(u.deregister()),
    message: async (a: { to: string; text: string }) => {
      const res = await u.sendMessage(a.to, a.text);
      return { status: res.status, via: res.headers.getAll('Via') };
    },
    /** How many ESP packets were sent so far (a mark for `replay`). */
    sentMark: () => sent.length,
    /** Sends the ESP packets sent since `from` again, byte for byte, to port `port` (a replay). */
    replay: async (a: { from: number; port: number }) => {
      const { createSocket } = await import('node:dgram');
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, o.address, () => r()));
      const again = sent.slice(a.from);
      for (const p of again) await new Promise<void>((r) => sock.send(p.payload, a.port, p.to, () => r()));
      sock.close();
      return { replayed: again.length };
    },
    status: () => ({
      impu: s.impu,
      status: u.status(),
      requests,
      steps: steps.slice(-30),
      sets: liveSets(backend).map((x) => ({ id: x.id, state: x.state, counters: counters(backend, x) })),
      keepalivesSent: backend.counters.keepalivesSent ?? 0,
      backend: backend.counters,
    }),
    stop: async () => {
      await u.close();
      const left = liveSets(backend).length;
      await backend.close();
      return { leftSets: left };
    },
  };
}

serve(o.role === 'net' ? await net() : o.role === 'core' ? await core() : await ue());
