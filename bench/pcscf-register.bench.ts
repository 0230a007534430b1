// npm run bench:pcscf-register [-- --ues N] [-- --rounds R] [-- --chunk C] [-- --baseline DIR]: CPU of the P-CSCF's
// registration machine (registration-state.ts `step`) per registration, in-process: N UEs through
// unprotected REGISTER → 401 with ik/ck → temporary set installed → protected REGISTER → 200, the
// SIP messages built beforehand (not timed): the machine, its parsing of Security-Client /
// Security-Verify / Authorization / To / Contact, the forwarded copy and the decisions. With
// --baseline DIR (a checkout of an older imsec, e.g. `git worktree add /tmp/old main`), the same
// run against DIR's registration-state.ts, interleaved, and the ratio new/old (of the best rounds,
// and the median of each round's ratio). A benchmark, not a test: CPU time on a shared machine is
// noisy; compare the ratio, not the figures. DIR must be an absolute path.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSecurityClient, serializeMechanisms } from '../src/secagree/index.ts';
import { createRequest, createResponse } from '../src/sip/builders.ts';
import type { SipRequest } from '../src/sip/message.ts';
import type { RegAction, RegEnv, RegEvent, RegState, RegTransition } from '../src/pcscf/registration-state.ts';

type Step = (s: RegState, e: RegEvent, env: RegEnv) => RegTransition;
const args = process.argv.slice(2);
const value = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const N = Number(value('--ues', '2000'));
const ROUNDS = Number(value('--rounds', '5'));
const CHUNK = Number(value('--chunk', '100'));
const baseline = args.includes('--baseline') ? value('--baseline', '') : undefined;
const REPO = fileURLToPath(new URL('..', import.meta.url));

const PC = '192.0.2.1';
const UE_IP = '198.51.100.7';
const DOMAIN = 'ims.example';
const impiOf = (i: number) => `00101${String(i).padStart(10, '0')}@${DOMAIN}`;
const env = (impi: string): RegEnv => ({
  impi,
  now: 1_000_000,
  mode: 'udp-enc-tun',
  policy: {},
  natInnerAddress: 'private',
  regAwaitAuthMs: 240_000,
  address: PC,
  port: 5060,
  portC: 5100,
  portS: 6100,
  pathUri: `sip:term@${PC}:5060;lr`,
  isMine: () => false,
  setWithClientPort: () => undefined,
  admit: () => ({ ok: true }),
});

function register(i: number, portUc: number, verify?: string): SipRequest {
  const impi = impiOf(i);
  const client = serializeMechanisms(
    buildSecurityClient(
      [
        { alg: 'hmac-sha-1-96', ealg: 'aes-cbc' },
        { alg: 'hmac-sha-1-96', ealg: 'null' },
      ],
      { spiC: 10000 + 2 * i, spiS: 10001 + 2 * i, portC: portUc, portS: portUc + 1 },
      ['UDP-enc-tun'],
    ),
  );
  const auth = verify
    ? `Digest username="${impi}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5Sp/6w1Tfr7M=", response="6629fae49393a05397450978507c4ef1", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="0a4f113b"`
    : `Digest username="${impi}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="", response=""`;
  return createRequest({
    method: 'REGISTER',
    uri: `sip:${DOMAIN}`,
    via: `SIP/2.0/UDP ${UE_IP}:${portUc};branch=z9hG4bK${i}x${verify ? 2 : 1};rport`,
    from: `<sip:${impi}>;tag=f${i}`,
    to: `<sip:${impi}>`,
    callId: `call-${i}`,
    cseq: verify ? 2 : 1,
    headers: [
      ['Contact', `<sip:${impi.split('@')[0]}@${UE_IP}:${portUc + 1}>;expires=600`],
      ['Authorization', auth],
      ['Require', 'sec-agree'],
      ['Proxy-Require', 'sec-agree'],
      ['Supported', 'path, sec-agree'],
      ['Security-Client', client],
      ...(verify ? ([['Security-Verify', verify]] as [string, string][]) : []),
    ],
  });
}

const relayText = (t: RegTransition): string => {
  const r = t.actions.find((a) => a.kind === 'relay') as Extract<RegAction, { kind: 'relay' }>;
  const ss = r.securityServer as unknown;
  return typeof ss === 'string' ? ss : serializeMechanisms(ss as Parameters<typeof serializeMechanisms>[0]);
};
const forwardOf = (t: RegTransition) => (t.actions.find((a) => a.kind === 'forward') as Extract<RegAction, { kind: 'forward' }>).arrival;
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Registrations of UEs lo..hi-1; returns CPU ms spent in `step` (message building excluded). */
function round(step: Step, IDLE: RegState, lo: number, hi: number): number {
  let ms = 0;
  const n = hi - lo;
  const first = Array.from({ length: n }, (_, j) => register(lo + j, 20000 + 2 * ((lo + j) % 20000)));
  const keys = { ik: new Uint8Array(16).fill(1), ck: new Uint8Array(16).fill(2) };
  const texts: string[] = [];
  const states: RegState[] = [];
  let t0 = cpu();
  for (let i = lo; i < hi; i++) {
    const e = env(impiOf(i));
    const a = step(
      IDLE,
      {
        type: 'unprotected-register',
        req: first[i - lo]!,
        from: { address: UE_IP, port: 20000 + 2 * (i % 20000) },
        protocol: 'udp',
        roundId: i + 1,
      },
      e,
    );
    const arrival = forwardOf(a);
    const r401 = createResponse(arrival.req, 401);
    const b = step(a.state, { type: 'answered', arrival, res: r401, keys }, e);
    const c = step(
      b.state,
      { type: 'temporary-installed', roundId: i + 1, set: `S${i}`, spis: { spiC: 50000 + 2 * i, spiS: 50001 + 2 * i }, res: r401 },
      e,
    );
    texts.push(relayText(c));
    states.push(c.state);
  }
  ms += cpu() - t0;
  const second = Array.from({ length: n }, (_, j) => register(lo + j, 20000 + 2 * ((lo + j) % 20000), texts[j]));
  t0 = cpu();
  for (let i = lo; i < hi; i++) {
    const e = env(impiOf(i));
    const p = step(states[i - lo]!, { type: 'register-over-set', req: second[i - lo]!, set: `S${i}`, roundId: N + i + 1 }, e);
    const arrival = forwardOf(p);
    const ok = createResponse(arrival.req, 200, undefined, [
      ['Contact', `<sip:${impiOf(i).split('@')[0]}@${UE_IP}:${20001 + 2 * (i % 20000)}>;expires=600`],
      ['P-Associated-URI', `<sip:${impiOf(i)}>`],
      ['Service-Route', `<sip:orig@scscf.${DOMAIN};lr>`],
    ]);
    const r = step(p.state, { type: 'answered', arrival, res: ok }, e);
    if (r.state.kind !== 'registered') throw new Error(`UE ${i} not registered: ${JSON.stringify(r.actions.map((x) => x.kind))}`);
  }
  return ms + cpu() - t0;
}

const load = async (dir: string) => {
  const m = (await import(join(dir, 'src/pcscf/registration-state.ts'))) as { step: Step; IDLE: RegState };
  return m;
};
const impls: [string, { step: Step; IDLE: RegState }][] = [['new', await load(REPO)]];
if (baseline) impls.push(['old', await load(baseline)]);
const best: Record<string, number> = {};
// On a loaded machine the best round of each drifts with the load: the median of the per-round
// ratios (old and new run back to back in each round) is the steadier figure.
// Within a round old and new alternate every CHUNK registrations (the machine's speed drifts
// within seconds; interleaving finely puts both under the same drift).
const ratios: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const took: Record<string, number> = {};
  for (let lo = 0, c = 0; lo < N; lo += CHUNK, c++) {
    for (const [name, m] of (r + c) % 2 === 0 ? impls : [...impls].reverse())
      took[name] = (took[name] ?? 0) + round(m.step, m.IDLE, lo, Math.min(N, lo + CHUNK));
  }
  for (const [name, ms] of Object.entries(took)) if (r > 0) best[name] = Math.min(best[name] ?? Infinity, ms); // round 0 warms up
  if (r > 0 && baseline) ratios.push(took['new']! / took['old']!);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const perReg = Object.fromEntries(Object.entries(best).map(([k, v]) => [k, +((v / N) * 1000).toFixed(1)]));
process.stdout.write(
  JSON.stringify({
    ues: N,
    rounds: ROUNDS,
    chunk: CHUNK,
    us_per_registration_best_round: perReg,
    ...(baseline && {
      ratio_new_over_old: +(best['new']! / best['old']!).toFixed(3),
      ratio_new_over_old_median_of_rounds: +median(ratios).toFixed(3),
    }),
    loadavg: (await import('node:os')).loadavg().map((x) => +x.toFixed(1)),
  }) + '\n',
);
