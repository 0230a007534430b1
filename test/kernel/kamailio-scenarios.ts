// The checks of kamailio-guest.ts, in the VM: one scenario run against Kamailio 5.6's P-CSCF and,
// as the control, against imsec's own P-CSCF (which must not show Kamailio's quirks).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { RpcChild } from './guest-rpc.ts';
import type { KamAgentOptions, UeSpec } from './kamailio-agent.ts';

export interface KCtx {
  check(name: string, f: () => Promise<unknown> | unknown): Promise<boolean>;
  sh(cmd: string): string;
  startAgent(ns: string, o: KamAgentOptions): Promise<RpcChild>;
  startKamailio(): Promise<{ stop: () => Promise<void>; log: () => string }>;
  readonly nsNet: string;
  readonly nsUe: string;
  readonly out: string;
  readonly only?: readonly string[] | undefined;
}

// test/support/ims-world.ts's domain (not imported: its import graph costs seconds under TCG).
const DOMAIN = 'ims.mnc001.mcc001.3gppnetwork.org';
const NET = '192.0.2.1';
const UE = '192.0.2.2';
const ECHO = `sip:echo@${DOMAIN}`;

interface Reg { ok: boolean; reason?: string; detail?: string; set: { id: string; mode: string; alg: string; ealg: string; ue: { portC: number; portS: number; spiC: number; spiS: number }; pcscf: { portC: number; portS: number; spiC: number; spiS: number } } | null; steps: string[] }

export async function kamailioScenarios(c: KCtx): Promise<void> {
  let kam: Awaited<ReturnType<KCtx['startKamailio']>> | undefined;
  let core: RpcChild | undefined;
  let ues: RpcChild | undefined;
  try {
    const up = await c.check('kamailio: start Kamailio (P-CSCF, ims_ipsec_pcscf) and imsec core (S-CSCF) in one namespace, the UEs in another', async () => {
      core = await c.startAgent(c.nsNet, { role: 'core', address: NET });
      kam = await c.startKamailio();
      ues = await c.startAgent(c.nsUe, { role: 'ues', address: UE });
    });
    if (!up) return;
    let n = 0;
    const spec = (s: Partial<UeSpec>): UeSpec => ({ sub: 1, backend: 'userspace', localPort: 5060, pcscf: NET, ...s });
    await c.check('kamailio: smoke', async () => {
      const id = `u${++n}`;
      await ues!.call('create', { id, spec: spec({}) });
      const r = await ues!.call<Reg>('register', { id }, 60_000);
      const m = await ues!.call('message', { id, to: ECHO, text: 'hi' }, 60_000).catch((e: Error) => e.message);
      const mt = await core!.call('message', { impu: 'sip:001010000000001@' + DOMAIN, text: 'down' }, 60_000).catch((e: Error) => e.message);
      const d = await ues!.call<Reg>('deregister', { id }, 60_000);
      const st = await ues!.call('status', { id });
      await ues!.call('close', { id });
      return { r, m, mt, d, st };
    });
  } finally {
    await ues?.call('stop', {}, 20_000).catch(() => {});
    await ues?.stop();
    await kam?.stop();
    await core?.stop();
    c.sh(`cp /proc/net/xfrm_stat ${join(c.out, 'xfrm_stat.txt')} 2>/dev/null; true`);
  }
}
