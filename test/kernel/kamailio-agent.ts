// Runs inside the VM, in one network namespace, driven over JSON lines (guest-rpc.ts) by
// kamailio-guest.ts. `core`: imsec's embedded S-CSCF + HSS, the S-CSCF behind Kamailio's P-CSCF.
// With `startPcscf` the same process runs imsec's own P-CSCF (xfrm) in front of it: the control.
// `ues`: one process holding UEs one after another (each on its own backend), so that a case costs
// an RPC, not a node start-up under TCG. Never prints keys.
import { UserspaceBackend } from '../../src/ipsec/backends/userspace.ts';
import { XfrmBackend } from '../../src/ipsec/backends/xfrm/index.ts';
import type { IpsecBackend } from '../../src/ipsec/backends/backend.ts';
import type { SaSet } from '../../src/ipsec/sa-set.ts';
import { Pcscf } from '../../src/pcscf/pcscf.ts';
import { Hss } from '../../src/scscf/hss.ts';
import { HssStore } from '../../src/scscf/hss-store.ts';
import { Scscf } from '../../src/scscf/scscf.ts';
import type { AlgPair } from '../../src/secagree/index.ts';
import { systemClock } from '../../src/sip/clock.ts';
import { Ue } from '../../src/ue/ue.ts';
import { fromHex } from '../../src/util/bytes.ts';
import { DOMAIN, K, OPC, subscriber } from '../support/ims-world.ts';
import { serve, type Handler } from './guest-rpc.ts';

export interface KamAgentOptions {
  readonly role: 'core' | 'ues';
  readonly address: string;
  readonly t1?: number;
}

const o = JSON.parse(process.argv[2]!) as KamAgentOptions;
const timers = { timers: { t1: o.t1 ?? 100 } };
const log = (who: string, t: string) => process.stderr.write(`${(performance.timeOrigin + performance.now()).toFixed(0)} ${who}: ${t}\n`);

async function core(): Promise<Record<string, Handler>> {
  const store = new HssStore(':memory:');
  for (let i = 1; i <= 8; i++) {
    const s = subscriber(i);
    store.add({ impi: s.impi, impus: [s.impu], k: fromHex(K), opc: fromHex(OPC), amf: fromHex('8000') });
  }
  const hss = new Hss(store);
  // By default a refresh over the SAs is not challenged again (24.228 R2-1a); `challenge` turns it on.
  const startScscf = (challengeReRegister: boolean) =>
    Scscf.start({
      address: o.address,
      port: 6060,
      domain: DOMAIN,
      hss,
      challengeReRegister,
      ...timers,
      onEvent: (e) => log('scscf', JSON.stringify(e)),
    });
  let scscf = await startScscf(false);
  let pcscf: { p: Pcscf; backend: IpsecBackend } | undefined;
  return {
    message: async (a: { impu: string; text: string }) => ({ status: (await scscf.sendMessage(a.impu, a.text)).status }),
    /** Restarts the S-CSCF (same address, same HSS) challenging every refresh or none; its registrations are lost. */
    challenge: async (a: { reRegister: boolean }) => {
      await scscf.stop();
      scscf = await startScscf(a.reRegister);
      return {};
    },
    /** imsec's P-CSCF on the kernel's XFRM, where Kamailio was (after it stopped). */
    startPcscf: async () => {
      const backend = await XfrmBackend.create({ instance: 1, encapPort: 4500, clock: systemClock });
      const p = await Pcscf.start({
        address: o.address,
        port: 5060,
        portC: 5100,
        portS: 6100,
        scscf: scscf.local,
        backend,
        mode: 'auto',
        policy: { allowDeprecated: true },
        ...timers,
      });
      pcscf = { p, backend };
      return {};
    },
    liveSets: () => ({ sets: pcscf ? pcscf.backend.sets.filter((x) => x.live).length : null }),
    stop: async () => {
      if (pcscf) {
        await pcscf.p.stop();
        await pcscf.backend.close();
      }
      await scscf.stop();
      store.close();
      return {};
    },
  };
}

export interface UeSpec {
  readonly sub: number;
  readonly backend: 'xfrm' | 'userspace';
  readonly localPort?: number;
  readonly pcscf: string;
  /** The UE's address (default the agent's): Kamailio keeps state per UE address and port. */
  readonly localIp?: string;
  readonly offers?: AlgPair[];
  readonly modes?: ('trans' | 'UDP-enc-tun')[];
  readonly transport?: 'udp' | 'tcp';
  readonly regAwaitAuthMs?: number;
  readonly expires?: number;
  /** SIP T1 of this UE in ms (the agent's default otherwise). */
  readonly t1?: number;
}

interface Held {
  readonly ue: Ue;
  readonly backend: IpsecBackend;
  readonly steps: string[];
  readonly requests: { method: string; sa: string; set: string; text: string }[];
}

function setView(set: SaSet | undefined) {
  return set
    ? { id: set.id, mode: set.config.mode, alg: set.config.alg, ealg: set.config.ealg, ue: set.config.ue, pcscf: set.config.pcscf }
    : null;
}

async function ues(): Promise<Record<string, Handler>> {
  const held = new Map<string, Held>();
  let instance = 10;
  const get = (id: string): Held => {
    const h = held.get(id);
    if (!h) throw new Error(`no UE ${id}`);
    return h;
  };
  const proc = async (h: Held, r: Promise<{ ok: boolean }>) => {
    const from = h.steps.length;
    const res = await r;
    return { ...res, set: setView(h.ue.sas.current), steps: h.steps.slice(from) };
  };
  return {
    create: async (a: { id: string; spec: UeSpec }) => {
      const s = subscriber(a.spec.sub);
      const backend: IpsecBackend =
        a.spec.backend === 'userspace'
          ? await UserspaceBackend.create({ localIp: a.spec.localIp ?? o.address, encapPort: 0, clock: systemClock })
          : await XfrmBackend.create({ instance: instance++, encapPort: 4500, clock: systemClock });
      const steps: string[] = [];
      const requests: Held['requests'] = [];
      let ue: Ue;
      try {
        ue = await Ue.create({
          impi: s.impi,
          impu: s.impu,
          pcscf: { address: a.spec.pcscf, port: 5060 },
          localIp: a.spec.localIp ?? o.address,
          localPort: a.spec.localPort ?? 0,
          k: fromHex(K),
          opc: fromHex(OPC),
          backend,
          reRegister: 'off',
          expires: a.spec.expires ?? 3600,
          timers: { t1: a.spec.t1 ?? timers.timers.t1 },
          ...(a.spec.offers && { offers: a.spec.offers }),
          ...(a.spec.modes && { modes: a.spec.modes }),
          ...(a.spec.transport && { transport: a.spec.transport }),
          ...(a.spec.regAwaitAuthMs !== undefined && { regAwaitAuthMs: a.spec.regAwaitAuthMs }),
        });
      } catch (e) {
        await backend.close();
        throw e;
      }
      ue.on('step', (t) => {
        steps.push(t);
        log(`ue ${a.id}`, t);
      });
      ue.on('request', (r) =>
        requests.push({ method: r.request.method, sa: r.sa, set: r.set.id, text: new TextDecoder().decode(r.request.body) }),
      );
      held.set(a.id, { ue, backend, steps, requests });
      return { impu: s.impu, plainPort: ue.plainPort };
    },
    register: (a: { id: string }) => proc(get(a.id), get(a.id).ue.register()),
    reregister: (a: { id: string }) => proc(get(a.id), get(a.id).ue.reRegister()),
    deregister: (a: { id: string }) => proc(get(a.id), get(a.id).ue.deregister()),
    message: async (a: { id: string; to: string; text: string }) => {
      const res = await get(a.id).ue.sendMessage(a.to, a.text);
      return { status: res.status, reason: res.reason };
    },
    status: (a: { id: string }) => {
      const h = get(a.id);
      return {
        state: h.ue.state,
        requests: h.requests,
        steps: h.steps.slice(-40),
        sets: h.ue
          .status()
          .sets.map((s) => ({ id: s.id, state: s.state, sas: s.sas.map((r) => ({ name: r.name, spi: r.spi, packets: r.packets })) })),
      };
    },
    /** Closes a UE: `crash` leaves the P-CSCF's side as it is (no de-registration). */
    close: async (a: { id: string }) => {
      const h = get(a.id);
      held.delete(a.id);
      await h.ue.close();
      const left = h.backend.sets.filter((s) => s.live).length;
      await h.backend.close();
      return { leftSets: left };
    },
    stop: async () => {
      for (const [id, h] of held) {
        held.delete(id);
        await h.ue.close().catch(() => {});
        await h.backend.close().catch(() => {});
      }
      return {};
    },
  };
}

serve(o.role === 'core' ? await core() : await ues());
