// `imsec demo`: core (S-CSCF + HSS), P-CSCF and UE on loopback in one process, each on its own
// sockets. Steps: register → MESSAGE UE→network → MESSAGE network→UE → re-register (new SA set,
// old one deleted) → de-register. The result says what happened at each step, with the SA sets.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EncryptionAlg, IntegrityAlg } from '../../ipsec/algorithms.ts';
import { UserspaceBackend } from '../../ipsec/backends/userspace.ts';
import { espSaLines } from '../../ipsec/key-export.ts';
import { openPcapWriter } from '../../ipsec/pcap.ts';
import { NAT_T_PORT } from '../../ipsec/types.ts';
import type { SaSet } from '../../ipsec/sa-set.ts';
import { Pcscf } from '../../pcscf/pcscf.ts';
import { Hss } from '../../scscf/hss.ts';
import { HssStore } from '../../scscf/hss-store.ts';
import { Scscf } from '../../scscf/scscf.ts';
import { Ue } from '../../ue/ue.ts';
import { fromHex } from '../../util/bytes.ts';
import { DemoRecorder, type Installed } from './recorder.ts';
import { systemClock } from '../../util/clock.ts';

export interface DemoOptions {
  readonly mode: 'trans' | 'udp-enc-tun';
  readonly alg: IntegrityAlg;
  readonly ealg: EncryptionAlg;
  readonly ipv6: boolean;
  readonly pcap?: string;
  readonly keylog?: string;
  /** Progress lines while it runs (the human output); the caller prints the summary. */
  readonly progress?: (line: string) => void;
}

export interface StepResult {
  readonly step: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly detail: string;
}

export interface DemoResult {
  readonly ok: boolean;
  readonly steps: StepResult[];
  readonly recorder: DemoRecorder;
  readonly endpoints: {
    ue: string;
    pcscf: { plain: number; portC: number; portS: number; address: string; encapPort?: number };
    scscf: { address: string; port: number };
  };
  readonly leftover: { ue: number; pcscf: number };
}

// TS 35.208 Test Set 1 keys: a subscriber anybody can recompute by hand.
export const DEMO_SUBSCRIBER = {
  impi: '001010000000001@ims.mnc001.mcc001.3gppnetwork.org',
  impu: 'sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org',
  domain: 'ims.mnc001.mcc001.3gppnetwork.org',
  k: '465b5ce8b199b49faa5f0a2ee238a6bc',
  opc: 'cd63cb71954a9f4e48a5994e37a02baf',
  amf: '8000',
} as const;

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const say = o.progress ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'imsec-demo-'));
  const rec = new DemoRecorder(o.pcap ? openPcapWriter(o.pcap) : undefined);
  const ip = o.ipv6 ? '::1' : '127.0.0.1';
  // A raw ESP socket sees every protocol-50 packet to its address: in IPv4 trans mode the UE gets
  // its own loopback address so each side only sees its own traffic.
  const ueIp = o.ipv6 || o.mode !== 'trans' ? ip : '127.0.0.2';
  const steps: StepResult[] = [];
  const cleanups: (() => Promise<unknown> | unknown)[] = [() => rmSync(dir, { recursive: true, force: true }), () => rec.close()];

  const step = async (name: string, fn: () => Promise<string>): Promise<boolean> => {
    const t = Date.now();
    say(`… ${name}`);
    try {
      const detail = await fn();
      steps.push({ step: name, ok: true, ms: Date.now() - t, detail });
      return true;
    } catch (e) {
      steps.push({ step: name, ok: false, ms: Date.now() - t, detail: e instanceof Error ? e.message : String(e) });
      return false;
    }
  };

  let endpoints: DemoResult['endpoints'] | undefined;
  let ueBackend: UserspaceBackend | undefined;
  let pcBackend: UserspaceBackend | undefined;
  try {
    const store = new HssStore(join(dir, 'hss.sqlite'));
    cleanups.push(() => store.close());
    store.add({
      impi: DEMO_SUBSCRIBER.impi,
      impus: [DEMO_SUBSCRIBER.impu],
      k: fromHex(DEMO_SUBSCRIBER.k),
      opc: fromHex(DEMO_SUBSCRIBER.opc),
      amf: fromHex(DEMO_SUBSCRIBER.amf),
    });
    const scscf = await Scscf.start({ address: ip, port: 0, domain: DEMO_SUBSCRIBER.domain, hss: new Hss(store), trace: rec.trace });
    cleanups.push(() => scscf.stop());

    // 4500 when free, so Wireshark dissects the ESP-in-UDP without being told the port.
    pcBackend = await UserspaceBackend.create({ localIp: ip, encapPort: NAT_T_PORT, wireLog: rec.wireLog, clock: systemClock }).catch(() =>
      UserspaceBackend.create({ localIp: ip, encapPort: 0, wireLog: rec.wireLog, clock: systemClock }),
    );
    cleanups.push(() => pcBackend?.close());
    const pcscf = await Pcscf.start({
      address: ip,
      port: 0,
      portC: 0,
      portS: 0,
      scscf: scscf.local,
      backend: rec.recordInstalls('pcscf', pcBackend),
      mode: o.mode,
      policy: { allow: [{ alg: o.alg, ealg: o.ealg }], allowDeprecated: true },
      trace: rec.trace,
    });
    cleanups.push(() => pcscf.stop());
    for (const port of [pcscf.port, pcscf.portC, pcscf.portS]) rec.markAccess(ip, port);

    ueBackend = await UserspaceBackend.create({ localIp: ueIp, encapPort: 0, wireLog: rec.wireLog, clock: systemClock });
    cleanups.push(() => ueBackend?.close());
    const ue = await Ue.create({
      impi: DEMO_SUBSCRIBER.impi,
      impu: DEMO_SUBSCRIBER.impu,
      pcscf: { address: ip, port: pcscf.port },
      localIp: ueIp,
      k: fromHex(DEMO_SUBSCRIBER.k),
      opc: fromHex(DEMO_SUBSCRIBER.opc),
      offers: [{ alg: o.alg, ealg: o.ealg }],
      modes: [o.mode === 'trans' ? 'trans' : 'UDP-enc-tun'],
      backend: rec.recordInstalls('ue', ueBackend),
      pcscfEncapPort: pcBackend.encapPort,
      reRegister: 'off',
      expires: 3600,
      trace: rec.trace,
    });
    cleanups.push(() => ue.close());
    endpoints = {
      ue: ueIp,
      pcscf: { address: ip, plain: pcscf.port, portC: pcscf.portC, portS: pcscf.portS, encapPort: pcBackend.encapPort },
      scscf: { address: scscf.local.address, port: scscf.local.port },
    };

    const live = (side: 'ue' | 'pcscf') => (side === 'ue' ? ueBackend! : pcBackend!).sets.filter((s) => s.live);
    const got: string[] = [];
    ue.onRequest((r) => {
      got.push(Buffer.from(r.request.body).toString());
      return { status: 200 };
    });

    let before: SaSet | undefined;
    const ok =
      (await step('register', async () => {
        const r = await ue.register();
        if (!r.ok) throw new Error(`registration failed: ${r.reason}${'detail' in r && r.detail ? ` (${r.detail})` : ''}`);
        const set = live('ue').find((s) => s.state === 'current');
        if (!set) throw new Error('registered, but the UE has no current SA set');
        return `registered ${DEMO_SUBSCRIBER.impu}; SA set ${set.id} current (${set.config.alg}/${set.config.ealg}, ${set.config.mode})`;
      })) &&
      (await step('message UE → network', async () => {
        const res = await ue.sendMessage(`sip:echo@${DEMO_SUBSCRIBER.domain}`, 'Hello from the UE');
        if (res.status !== 200) throw new Error(`MESSAGE answered ${res.status} ${res.reason}`);
        return `200 ${res.reason}`;
      })) &&
      (await step('message network → UE', async () => {
        const res = await scscf.sendMessage(DEMO_SUBSCRIBER.impu, 'Hello from the network');
        if (res.status !== 200) throw new Error(`MESSAGE answered ${res.status} ${res.reason}`);
        if (!got.includes('Hello from the network')) throw new Error('the UE did not receive the MESSAGE');
        return `200 ${res.reason}; the UE received it over its current SA set`;
      })) &&
      (await step('re-register', async () => {
        before = live('ue').find((s) => s.state === 'current');
        const r = await ue.reRegister();
        if (!r.ok) throw new Error(`re-registration failed: ${r.reason}`);
        const after = live('ue').find((s) => s.state === 'current');
        if (!after || after === before) throw new Error('no new current SA set after re-registration');
        // 33.203 §7.4: the P-CSCF's old set goes once its transactions are done; the UE keeps its old
        // set (taking requests, sending nothing new) until the P-CSCF sends over the new one.
        for (let i = 0; i < 100 && pcBackend!.sets.some((s) => s.live && s.state === 'old'); i++) await sleep(20);
        if (pcBackend!.sets.some((s) => s.live && s.state === 'old'))
          throw new Error('the P-CSCF still has an old SA set after re-registration');
        if (before && before.state !== 'old') throw new Error(`the UE's previous SA set ${before.id} is ${before.state}, not old`);
        return `new SA set ${after.id} current; the P-CSCF deleted the old one, the UE keeps ${before?.id ?? '-'} as old until the P-CSCF uses the new set`;
      })) &&
      (await step('message network → UE over the new set', async () => {
        const res = await scscf.sendMessage(DEMO_SUBSCRIBER.impu, 'Hello over the new set');
        if (res.status !== 200) throw new Error(`MESSAGE answered ${res.status} ${res.reason}`);
        if (!got.includes('Hello over the new set')) throw new Error('the UE did not receive the MESSAGE');
        for (let i = 0; i < 100 && before?.live; i++) await sleep(20);
        if (before?.live) throw new Error(`old SA set ${before.id} still ${before.state} after the P-CSCF sent over the new set`);
        return `200 ${res.reason}; the UE deleted its old set ${before?.id ?? '-'} (33.203 §7.4)`;
      })) &&
      (await step('de-register', async () => {
        const r = await ue.deregister();
        if (!r.ok) throw new Error(`de-registration failed: ${r.reason}`);
        for (let i = 0; i < 100 && (live('ue').length > 0 || live('pcscf').length > 0); i++) await sleep(20);
        const left = live('ue').length + live('pcscf').length;
        if (left > 0) throw new Error(`${left} SA set(s) still live after de-registration`);
        return 'de-registered; no SA set left on either side';
      }));
    if (o.keylog) writeKeylog(o.keylog, rec.installed);
    return {
      ok,
      steps,
      recorder: rec,
      endpoints,
      leftover: { ue: ueBackend.sets.filter((s) => s.live).length, pcscf: pcBackend.sets.filter((s) => s.live).length },
    };
  } catch (e) {
    steps.push({ step: 'setup', ok: false, ms: 0, detail: e instanceof Error ? e.message : String(e) });
    return {
      ok: false,
      steps,
      recorder: rec,
      endpoints: endpoints ?? { ue: ueIp, pcscf: { address: ip, plain: 0, portC: 0, portS: 0 }, scscf: { address: ip, port: 0 } },
      leftover: { ue: 0, pcscf: 0 },
    };
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // Best effort: one failed cleanup must not keep the others from running.
      }
    }
  }
}

/** Wireshark esp_sa lines for every SA the P-CSCF installed (the UE's are the same SAs). */
function writeKeylog(path: string, installed: readonly Installed[]): void {
  const lines = installed.filter((i) => i.side === 'pcscf').flatMap((i) => espSaLines(i.set));
  writeFileSync(path, lines.join('\n') + '\n', { mode: 0o600 });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
