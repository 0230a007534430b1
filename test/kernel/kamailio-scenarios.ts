// The checks of kamailio-guest.ts, in the VM: one scenario run against Kamailio 5.6's P-CSCF and,
// as the control, against imsec's own P-CSCF, which must not show Kamailio's quirks (digest §17.1):
// the unprotected REGISTER must come from port 5060; the last Security-Client offer wins; the 200
// OK to the protected REGISTER comes from port_pc to port_us; the 200 OK to a de-registration
// leaves in clear (its SAs are gone); a second registration from the same address and port meets
// the SAs Kamailio kept. Then 11 §1: an xfrm registration idle past reg-await-auth, refreshed, MT.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { RpcChild } from './guest-rpc.ts';
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

// test/support/ims-world.ts's domain and subscribers (not imported: its import graph costs seconds under TCG).
const DOMAIN = 'ims.mnc001.mcc001.3gppnetwork.org';
const impuOf = (i: number) => `sip:00101${String(i).padStart(10, '0')}@${DOMAIN}`;
const NET = '192.0.2.1';
const UE = '192.0.2.2';
const ECHO = `sip:echo@${DOMAIN}`;
/** What Kamailio 5.6's ims_ipsec_pcscf installs (digest §17: hmac-md5-96, hmac-sha-1-96 × aes-cbc, des-ede3-cbc, null). */
// des-ede3-cbc is left out: against Kamailio 5.6.3 the protected REGISTER with it failed in our
// runs (both backends; not yet explained, see README "Against Kamailio").
const KAMAILIO_PAIRS = ['hmac-sha-1-96/aes-cbc', 'hmac-sha-1-96/null', 'hmac-md5-96/aes-cbc', 'hmac-md5-96/null'];

type SetView = { id: string; mode: string; alg: string; ealg: string; ue: { portC: number; portS: number; spiC: number; spiS: number }; pcscf: { portC: number; portS: number; spiC: number; spiS: number } };
interface Reg { ok: boolean; reason?: string; detail?: string; unprotectedAnswer?: boolean; set: SetView | null; steps: string[] }
interface UeStat { state: string; requests: { method: string; sa: string; set: string; text: string }[]; steps: string[]; sets: unknown[] }

interface Target {
  readonly name: 'kamailio' | 'imsec';
  readonly core: RpcChild;
  readonly ues: RpcChild;
}

let n = 0;
let addr = 10;
/**
 * A UE on a fresh address (192.0.2.10 on): Kamailio 5.6 keeps state per UE address and port that
 * can spoil the next registration from there (see the second-registration check), so each case
 * gets its own; `sameAddress` reuses the previous one.
 */
const spec = (s: Partial<UeSpec>, sameAddress = false): UeSpec => ({
  sub: 1, backend: 'userspace', localPort: 5060, pcscf: NET, localIp: `192.0.2.${sameAddress ? addr : ++addr}`, ...s,
});

/**
 * Kamailio 5.6 answers a REGISTER over TCP inside its SAs but then refuses the UE's MESSAGE over UDP
 * (403 "register first": it saved the contact for TCP): its xfrm UEs stay on UDP (README).
 */
const udpFor = (t: Target, backend: string): Partial<UeSpec> => (t.name === 'kamailio' && backend === 'xfrm' ? { transport: 'udp' } : {});

async function withUe<T>(t: Target, s: UeSpec, f: (id: string) => Promise<T>): Promise<T> {
  const id = `u${++n}`;
  await t.ues.call('create', { id, spec: s });
  try {
    return await f(id);
  } finally {
    await t.ues.call('close', { id }).catch(() => {});
  }
}

const reg = (t: Target, op: 'register' | 'reregister' | 'deregister', id: string) => t.ues.call<Reg>(op, { id }, 90_000);
const stepsText = (r: Reg) => r.steps.join('\n');

async function mo(t: Target, id: string, text: string): Promise<void> {
  const m = await t.ues.call<{ status: number }>('message', { id, to: ECHO, text }, 60_000);
  assert.equal(m.status, 200, `MO MESSAGE: ${JSON.stringify(m)}`);
}

async function mt(t: Target, id: string, sub: number, text: string): Promise<string> {
  const m = await t.core.call<{ status: number }>('message', { impu: impuOf(sub), text }, 60_000);
  assert.equal(m.status, 200, `MT MESSAGE: ${JSON.stringify(m)}`);
  const r = (await t.ues.call<UeStat>('status', { id })).requests.at(-1);
  assert.equal(r?.text, text, 'the UE got it');
  assert.equal(r?.sa, 'SA2', 'over SA2 (port_pc → port_us)');
  return r.sa;
}

/** Nothing of the registration left in the kernel of the UE's namespace (and, when asked, the network's). */
function noSas(c: KCtx, alsoNet: boolean): void {
  assert.equal(c.sh(`ip -n ${c.nsUe} xfrm state`).trim(), '', 'no SA left in the UE namespace');
  if (alsoNet) assert.equal(c.sh(`ip -n ${c.nsNet} xfrm state`).trim(), '', `no SA left at the P-CSCF; its policies:\n${c.sh(`ip -n ${c.nsNet} xfrm policy`)}`);
}

/** The de-registration: protected answer (imsec), or Kamailio's clear one, reported as such. */
function checkDeregistration(t: Target, backend: string, r: Reg): string {
  const text = stepsText(r);
  if (t.name === 'imsec') {
    assert.ok(r.ok && !r.unprotectedAnswer, `de-registered with a protected answer: ${text}`);
    assert.match(text, /de-registered; every SA set deleted/);
    return 'answer protected';
  }
  if (backend === 'userspace') {
    // The UE holds its protected ports, sees the clear 200 there, refuses it as SIP but ends the wait.
    assert.ok(r.ok && r.unprotectedAnswer, `de-registered, answer unprotected: ${text}`);
    assert.match(text, /de-registered; the P-CSCF's answer was not protected/);
    assert.match(text, /discarded an unprotected 200/);
    return 'answer in clear, reported';
  }
  // xfrm: the kernel's policy drops the clear answer before any socket sees it; Timer F ends the wait.
  assert.ok(!r.ok && r.reason === 'timeout', JSON.stringify(r));
  assert.match(text, /de-registration not confirmed: timeout: no final response \(Timer F\); every SA set removed locally/);
  assert.doesNotMatch(text, /registration failed/);
  return 'no answer through the kernel policy; reported as not confirmed';
}

/** Registration, MO and MT, refresh, MO and MT again, de-registration; on one backend. */
async function fullFlow(c: KCtx, t: Target, backend: 'userspace' | 'xfrm'): Promise<void> {
  const label = `${t.name}: UE ${backend}`;
  // The first registration meets cold processes under TCG: a longer T1 there (Timer F = 64·T1).
  await withUe(t, spec({ backend, ...udpFor(t, backend), ...(backend === 'userspace' && { t1: 400 }) }), async (id) => {
    const ok = await c.check(`${label}: register with the default offers (the preferred pair sent last, the 200 OK over SA2 port_pc → port_us)`, async () => {
      let r = await reg(t, 'register', id);
      // The very first registration meets cold processes (node, Kamailio) under TCG: one more try.
      if (!r.ok && r.reason === 'timeout') r = await reg(t, 'register', id);
      assert.ok(r.ok, stepsText(r));
      // Kamailio 5.6 takes the last Security-Client entry: the UE sends its preferred pair last.
      assert.equal(`${r.set!.alg}/${r.set!.ealg}`, 'hmac-sha-1-96/aes-cbc');
      assert.equal(r.set!.mode, 'transport');
      // Over UDP the 200 OK to the protected REGISTER comes from port_pc to port_us (SA2); over TCP on the connection (SA3).
      const tcp = /over TCP inside the SAs/.test(stepsText(r));
      assert.match(stepsText(r), tcp ? /200 OK over SA3 of set/ : /200 OK over SA2 of set/);
      // 11 §3: on xfrm the ~1,450-octet protected REGISTER goes over TCP inside the SAs; on userspace it stays on UDP.
      if (backend === 'xfrm' && t.name === 'imsec') assert.match(stepsText(r), /REGISTER is \d+ octets: over TCP inside the SAs/);
      else assert.doesNotMatch(stepsText(r), /over TCP/);
      return { set: r.set, tcp: /over TCP/.test(stepsText(r)) };
    });
    if (!ok) return;
    await c.check(`${label}: MESSAGE UE → network and network → UE (SA2)`, async () => {
      await mo(t, id, 'mo 1');
      return mt(t, id, 1, 'mt 1');
    });
    await c.check(`${label}: refresh (re-REGISTER over the current set), then MESSAGE both ways`, async () => {
      const r = await reg(t, 'reregister', id);
      assert.ok(r.ok, stepsText(r));
      await mo(t, id, 'mo 2');
      await mt(t, id, 1, 'mt 2');
      return { set: r.set?.id };
    });
    await c.check(`${label}: de-register; every SA gone at both ends`, async () => {
      const r = await reg(t, 'deregister', id);
      const how = checkDeregistration(t, backend, r);
      noSas(c, t.name === 'imsec');
      // Kamailio 5.6 keeps the inbound SAs it made for the refresh's new Security-Client (never used).
      return { how, pcscfSasLeft: (c.sh(`ip -n ${c.nsNet} xfrm state`).match(/^src /gm) ?? []).length };
    });
  });
}

/** Each pair Kamailio supports, offered alone, on both backends: registration, MO MESSAGE, de-registration. */
async function pairs(c: KCtx, t: Target): Promise<void> {
  for (const [i, pair] of KAMAILIO_PAIRS.entries()) {
    const backend = i % 2 === 0 ? 'userspace' : 'xfrm';
    for (const b of [backend, backend === 'xfrm' ? 'userspace' : 'xfrm'] as const) {
      const [alg, ealg] = pair.split('/') as [string, string];
      await c.check(`${t.name}: ${pair}, UE ${b}: register, MESSAGE, de-register`, async () =>
        withUe(t, spec({ backend: b, ...udpFor(t, b), offers: [{ alg, ealg }] as UeSpec['offers'] }), async (id) => {
          const r = await reg(t, 'register', id);
          assert.ok(r.ok, stepsText(r));
          assert.equal(`${r.set!.alg}/${r.set!.ealg}`, pair);
          await mo(t, id, pair);
          checkDeregistration(t, b, await reg(t, 'deregister', id));
          noSas(c, false);
        }));
    }
  }
}

async function quirks(c: KCtx, t: Target): Promise<void> {
  await c.check(`${t.name}: the unprotected REGISTER from port 5070, not 5060`, async () =>
    withUe(t, spec({ localPort: 5070 }), async (id) => {
      const r = await reg(t, 'register', id);
      if (t.name === 'imsec') {
        assert.ok(r.ok, stepsText(r));
        await reg(t, 'deregister', id);
        return 'registered';
      }
      // Kamailio 5.6 takes it for a re-registration and answers port-s=0: the UE says why and what to do.
      assert.ok(!r.ok, stepsText(r));
      assert.match(stepsText(r), /5060/, 'the failure names port 5060');
      noSas(c, false);
      return r.detail;
    }));
  await c.check(`${t.name}: --mode both (trans and UDP-enc-tun offered) falls back to trans without a NAT`, async () =>
    withUe(t, spec({ modes: ['trans', 'UDP-enc-tun'] }), async (id) => {
      const r = await reg(t, 'register', id);
      assert.ok(r.ok, stepsText(r));
      assert.equal(r.set!.mode, 'transport');
      await mo(t, id, 'both');
      await reg(t, 'deregister', id);
      return r.set;
    }));
  await c.check(`${t.name}: a second registration from the same address and port after a UE vanished (no de-registration)`, async () => {
    const first = await withUe(t, spec({}), async (id) => {
      const r = await reg(t, 'register', id);
      assert.ok(r.ok, stepsText(r));
      return r.set!;
    }); // closed without de-registration: the P-CSCF still holds the contact and its SAs
    return withUe(t, spec({}, true), async (id) => {
      const r = await reg(t, 'register', id);
      if (t.name === 'kamailio' && !r.ok) {
        // Kamailio 5.6 kept the vanished UE's contact and SAs for this address and port: the UE
        // ends cleanly (nothing of it left) and says what happened.
        noSas(c, false);
        return { kamailio: 'second registration refused', first: { ue: first.ue, pcscf: first.pcscf }, steps: r.steps.slice(-3) };
      }
      assert.ok(r.ok, stepsText(r));
      // New SPIs and ports on the UE's side every time: the P-CSCF's stale SAs cannot match ours.
      assert.notEqual(r.set!.ue.spiC, first.ue.spiC);
      assert.notEqual(r.set!.ue.portC, first.ue.portC);
      await mo(t, id, 'second');
      await mt(t, id, 1, 'second mt');
      await reg(t, 'deregister', id);
      return { first: { ue: first.ue, pcscf: first.pcscf }, second: { ue: r.set!.ue, pcscf: r.set!.pcscf } };
    });
  });
}

/** 11 §1: an xfrm registration idle past reg-await-auth (short here), refreshed, then an MT request delivered. */
async function idleLifetime(c: KCtx, t: Target): Promise<void> {
  await c.check(`${t.name}: xfrm registration idle past reg-await-auth (3 s here), then refresh and an MT MESSAGE`, async () =>
    withUe(t, spec({ backend: 'xfrm', ...udpFor(t, 'xfrm'), regAwaitAuthMs: 3000 }), async (id) => {
      const r = await reg(t, 'register', id);
      assert.ok(r.ok, stepsText(r));
      await new Promise((res) => setTimeout(res, 5000));
      const states = c.sh(`ip -n ${c.nsUe} xfrm state`);
      assert.equal((states.match(/^src /gm) ?? []).length, 4, `the four kernel SAs outlived reg-await-auth:\n${states}`);
      const rr = await reg(t, 'reregister', id);
      assert.ok(rr.ok, stepsText(rr));
      assert.doesNotMatch(stepsText(rr), /falling back|ESRCH/);
      await mt(t, id, 1, 'after idle');
      await reg(t, 'deregister', id);
      return { set: rr.set?.id };
    }));
}

async function scenario(c: KCtx, t: Target): Promise<void> {
  const want = (k: string) => !c.only || c.only.includes(k);
  if (want('flow')) for (const b of ['userspace', 'xfrm'] as const) await fullFlow(c, t, b);
  if (want('quirks')) await quirks(c, t);
  if (want('idle')) await idleLifetime(c, t);
  if (want('pairs') && t.name === 'kamailio') await pairs(c, t);
}

export async function kamailioScenarios(c: KCtx): Promise<void> {
  let kam: Awaited<ReturnType<KCtx['startKamailio']>> | undefined;
  let core: RpcChild | undefined;
  let ues: RpcChild | undefined;
  try {
    const up = await c.check('kamailio: start Kamailio (P-CSCF, ims_ipsec_pcscf) and imsec core (S-CSCF) in one namespace, the UEs in another', async () => {
      const t0 = Date.now();
      // The two node agents first, then Kamailio's ~100 processes: under TCG they starve each other.
      [core, ues] = await Promise.all([c.startAgent(c.nsNet, { role: 'core', address: NET }), c.startAgent(c.nsUe, { role: 'ues', address: UE })]);
      kam = await c.startKamailio();
      return { startMs: Date.now() - t0 };
    });
    if (!up) return;
    await scenario(c, { name: 'kamailio', core: core!, ues: ues! });
    await kam!.stop();
    kam = undefined;
    const control = await c.check('imsec: the same scenario against imsec P-CSCF (xfrm) as the control: start it where Kamailio was', async () => {
      assert.equal(c.sh(`ip -n ${c.nsNet} xfrm state`).trim(), '', 'Kamailio left no SA behind');
      await core!.call('startPcscf', {}, 60_000);
    });
    if (control) await scenario(c, { name: 'imsec', core: core!, ues: ues! });
  } finally {
    await ues?.call('stop', {}, 20_000).catch(() => {});
    await ues?.stop();
    await kam?.stop();
    await core?.call('stop', {}, 20_000).catch(() => {});
    await core?.stop();
    for (const ns of [c.nsNet, c.nsUe]) c.sh(`ip netns exec ${ns} cat /proc/net/xfrm_stat > ${join(c.out, `xfrm_stat-${ns}.txt`)} 2>/dev/null; ip -n ${ns} xfrm policy > ${join(c.out, `xfrm_policy-${ns}.txt`)}; true`);
  }
}
