// An IMS on loopback for end-to-end tests: the real S-CSCF + HSS (SQLite in memory), the real
// P-CSCF on its own userspace backend, and real UEs (each on its own backend unless shared).
// Everything binds ephemeral ports; close() tears it all down.
import type { PendingLimitsConfig } from '../../src/pcscf/pending-limits.ts';
import { UserspaceBackend } from '../../src/ipsec/backends/userspace.ts';
import type { IpsecBackend } from '../../src/ipsec/backends/backend.ts';
import type { SaSet } from '../../src/ipsec/sa-set.ts';
import { Pcscf } from '../../src/pcscf/pcscf.ts';
import type { PcscfMode } from '../../src/pcscf/types.ts';
import type { SecAgreePolicy } from '../../src/secagree/index.ts';
import { Hss } from '../../src/scscf/hss.ts';
import { HssStore } from '../../src/scscf/hss-store.ts';
import { Scscf } from '../../src/scscf/scscf.ts';
import { systemClock, type Clock } from '../../src/util/clock.ts';
import { Ue } from '../../src/ue/ue.ts';
import type { UeOptions } from '../../src/ue/ue-types.ts';
import { fromHex } from '../../src/util/bytes.ts';
import type { SipTraceEvent } from '../../src/util/trace.ts';

export const DOMAIN = 'ims.mnc001.mcc001.3gppnetwork.org';
export const K = '465b5ce8b199b49faa5f0a2ee238a6bc';
export const OPC = 'cd63cb71954a9f4e48a5994e37a02baf';

export function subscriber(i: number): { impi: string; impu: string } {
  const msin = String(i).padStart(10, '0');
  return { impi: `00101${msin}@${DOMAIN}`, impu: `sip:00101${msin}@${DOMAIN}` };
}

export interface WorldOptions {
  readonly ip?: string;
  readonly mode?: PcscfMode;
  readonly policy?: SecAgreePolicy;
  readonly subscribers?: number;
  readonly clock?: Clock;
  /** Initial SQN of every subscriber in the HSS (to put the network behind a USIM, etc.). */
  readonly sqn?: number;
  /** The P-CSCF's pending-registration limits (issue 10 §2). */
  readonly limits?: Partial<PendingLimitsConfig>;
  /** Where the P-CSCF sends its requests for the S-CSCF (a test relay in front of it); default the S-CSCF itself. */
  readonly scscfHop?: { readonly address: string; readonly port: number };
}

export async function startWorld(o: WorldOptions = {}) {
  const ip = o.ip ?? '127.0.0.1';
  const trace: SipTraceEvent[] = [];
  const store = new HssStore(':memory:');
  for (let i = 1; i <= (o.subscribers ?? 2); i++) {
    const s = subscriber(i);
    store.add({
      impi: s.impi,
      impus: [s.impu],
      k: fromHex(K),
      opc: fromHex(OPC),
      amf: fromHex('8000'),
      ...(o.sqn !== undefined && { sqn: o.sqn }),
    });
  }
  const clockOpt = o.clock ? { clock: o.clock } : {};
  const scscf = await Scscf.start({ address: ip, port: 0, domain: DOMAIN, hss: new Hss(store), ...clockOpt, trace: (e) => trace.push(e) });
  const pcBackend = await UserspaceBackend.create({ localIp: ip, encapPort: 0, clock: o.clock ?? systemClock });
  const pcscf = await Pcscf.start({
    address: ip,
    port: 0,
    portC: 0,
    portS: 0,
    scscf: o.scscfHop ?? scscf.local,
    backend: pcBackend,
    mode: o.mode ?? 'udp-enc-tun',
    policy: o.policy ?? { allowDeprecated: true },
    ...(o.limits && { limits: o.limits }),
    ...clockOpt,
    trace: (e) => trace.push(e),
  });
  const ues: Ue[] = [];
  const backends: UserspaceBackend[] = [];

  /** A UE for subscriber i (1-based), on its own backend unless one is given. */
  const ue = async (i: number, extra: Partial<UeOptions> & { backend?: IpsecBackend & { encapPort?: number } } = {}) => {
    let backend = extra.backend;
    if (!backend) {
      const b = await UserspaceBackend.create({ localIp: extra.localIp ?? ip, encapPort: 0, clock: o.clock ?? systemClock });
      backends.push(b);
      backend = b;
    }
    const s = subscriber(i);
    const u = await Ue.create({
      impi: s.impi,
      impu: s.impu,
      pcscf: { address: ip, port: pcscf.port },
      localIp: ip,
      k: fromHex(K),
      opc: fromHex(OPC),
      modes: [o.mode === 'trans' ? 'trans' : 'UDP-enc-tun'],
      pcscfEncapPort: pcBackend.encapPort,
      reRegister: 'off',
      expires: 3600,
      ...clockOpt,
      trace: (e) => trace.push(e),
      ...extra,
      backend,
    });
    ues.push(u);
    return u;
  };

  const liveSets = (b: { sets: readonly SaSet[] }) => b.sets.filter((s) => s.live);

  const close = async () => {
    for (const u of ues) await u.close().catch(() => {});
    await pcscf.stop().catch(() => {});
    await scscf.stop().catch(() => {});
    for (const b of backends) await b.close().catch(() => {});
    await pcBackend.close().catch(() => {});
    store.close();
  };
  return { ip, store, scscf, pcscf, pcBackend, ue, ues, backends, trace, liveSets, close };
}

export type World = Awaited<ReturnType<typeof startWorld>>;

export async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
