// The measuring side of bench/pcscf-memory-table.bench.ts, bundled by esbuild once per code base
// (bench/baseline-bundles.ts) and run with plain node --expose-gc: N registrations filed in one
// P-CSCF RegistrationTable as after their 200 OK (state registered with its Bound, temporary set
// installed on a userspace backend, promoted, indexed, the ESP-in-UDP source learnt), then heap and
// RSS per registration after forced GCs. The state is the registration machine's own
// (registration-state.ts `step`): unprotected REGISTER, 401, temporary set, protected REGISTER,
// 200 OK with P-Associated-URI and Service-Route, each message serialized and parsed again as if it
// had come off the wire (header values are slices of the message, as in the P-CSCF).
import { randomBytes } from 'node:crypto';
import { UserspaceBackend } from '../src/ipsec/backends/userspace.ts';
import { expandKeys } from '../src/ipsec/keys.ts';
import { createSaSet } from '../src/ipsec/sa-set.ts';
import { RegistrationTable } from '../src/pcscf/registrations.ts';
import { IDLE, step, type Arrival, type RegAction, type RegEnv, type RegState } from '../src/pcscf/registration-state.ts';
import { buildSecurityClient, serializeMechanisms } from '../src/secagree/index.ts';
import { createRequest, createResponse } from '../src/sip/builders.ts';
import type { SipMessage, SipRequest, SipResponse } from '../src/sip/message.ts';
import { parseMessageOrThrow } from '../src/sip/parser.ts';
import { serializeMessage } from '../src/sip/serializer.ts';
import { HeapClock } from '../src/util/timer-heap.ts';
import { BENCH_SA_SET } from './support/bench-sa-set.ts';

const argv = process.argv.slice(2);
const n = Number(argv[argv.indexOf('--n') + 1] ?? 20000);
const gc = (globalThis as { gc?: () => void }).gc!;

const now = 1_000_000;
const clock = new HeapClock(() => now);
const backend = await UserspaceBackend.create({ localIp: '127.0.0.1', encapPort: 0, clock });
const table = new RegistrationTable(
  backend,
  clock,
  () => {},
  { setGone: () => {} },
  () => false,
);
const ik = randomBytes(16);
const ck = randomBytes(16);
const DOMAIN = 'ims.example';
const PORT_C = 5062;
const PORT_S = 5064;
const env = (impi: string): RegEnv => ({
  impi,
  now,
  mode: 'udp-enc-tun',
  policy: {},
  natInnerAddress: 'private',
  regAwaitAuthMs: 240_000,
  address: '127.0.0.1',
  port: 5060,
  portC: PORT_C,
  portS: PORT_S,
  pathUri: 'sip:term@127.0.0.1:5060;lr',
  isMine: () => false,
  setWithClientPort: () => undefined,
  admit: () => ({ ok: true }),
});
/** As off the wire: serialized and parsed again. */
const wire = <M extends SipMessage>(m: M): M => parseMessageOrThrow(serializeMessage(m)) as M;
const forwardOf = (actions: readonly RegAction[]): Arrival => (actions.find((a) => a.kind === 'forward') as { arrival: Arrival }).arrival;
let cseq = 1;
function register(impi: string, ueIp: string, portUe: number, clientText: string, verify?: string): SipRequest {
  const headers: [string, string][] = [
    ['Contact', `<sip:${impi.slice(0, 15)}@${ueIp}:${portUe + 1}>;expires=600`],
    ['Authorization', `Digest username="${impi}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="", response=""`],
    ['Security-Client', clientText],
  ];
  if (verify !== undefined) headers.push(['Security-Verify', verify]);
  return wire(
    createRequest({
      method: 'REGISTER',
      uri: `sip:${DOMAIN}`,
      via: `SIP/2.0/UDP ${ueIp}:5060;branch=z9hG4bK${cseq}`,
      from: `<sip:${impi}>;tag=f${cseq}`,
      to: `<sip:${impi}>`,
      callId: `c${cseq}-${impi}`,
      cseq: cseq++,
      headers,
    }),
  );
}
const held: unknown[] = [];

async function one(i: number): Promise<void> {
  const impi = `00101${String(i).padStart(10, '0')}@ims.example`;
  const ueIp = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const portUe = 10000 + 2 * (i % 25000);
  const [spiC, spiS] = backend.allocateSpis('127.0.0.1', 2) as [number, number];
  const ue = { ip: ueIp, portC: portUe, portS: portUe + 1, spiC: 0x10000 + 2 * i, spiS: 0x10001 + 2 * i };
  const pc = { ip: '127.0.0.1', portC: 5062, portS: 5064, spiC, spiS };
  const clientText = serializeMechanisms(
    buildSecurityClient([{ alg: 'hmac-sha-1-96', ealg: 'aes-cbc' }], { spiC: ue.spiC, spiS: ue.spiS, portC: ue.portC, portS: ue.portS }, [
      'UDP-enc-tun',
    ]),
  );
  const set = createSaSet({
    ...BENCH_SA_SET,
    role: 'pcscf',
    id: `${impi}#${i + 1}`,
    ue,
    pcscf: pc,
    keys: expandKeys(ik, ck, BENCH_SA_SET.alg, BENCH_SA_SET.ealg),
    expiresAt: now + 60_000,
  });
  // The registration machine, SM1 to SM12 (as register.ts feeds it).
  const e = env(impi);
  const roundId = i + 1;
  const t1 = step(
    IDLE,
    {
      type: 'unprotected-register',
      req: register(impi, ueIp, portUe, clientText),
      from: { address: ueIp, port: 5060 },
      protocol: 'udp',
      roundId,
    },
    e,
  );
  const a1 = forwardOf(t1.actions);
  const r401 = wire(createResponse(a1.req, 401));
  const t2 = step(t1.state, { type: 'answered', arrival: a1, res: r401, keys: { ik, ck } }, e);
  const t3 = step(t2.state, { type: 'temporary-installed', roundId, set: set.id, spis: { spiC, spiS }, res: r401 }, e);
  const verify = (t3.actions[0] as { securityServer?: string }).securityServer;
  const t4 = step(t3.state, { type: 'register-over-set', req: register(impi, ueIp, portUe, clientText, verify), set: set.id, roundId }, e);
  const a2 = forwardOf(t4.actions);
  const r200 = wire(
    createResponse(a2.req, 200, undefined, [
      ['Contact', `<sip:${impi.slice(0, 15)}@${ueIp}:${portUe + 1}>;expires=600`],
      ['P-Associated-URI', `<sip:${impi}>, <tel:+1555${String(i).padStart(7, '0')}>`],
      ['Service-Route', `<sip:orig@scscf.${DOMAIN}:6060;lr>`],
    ]) as SipResponse,
  );
  const t5 = step(t4.state, { type: 'answered', arrival: a2, res: r200 }, e);
  if (t5.state.kind !== 'registered') throw new Error(`not registered: ${t5.state.kind} ${JSON.stringify(t5.actions.map((a) => a.kind))}`);
  const reg = table.getOrNew(impi);
  reg.state = t5.state as RegState;
  table.settle(reg, IDLE);
  await table.installTemporary(reg, set);
  table.promote(reg, set, now + 600_000);
  table.settled(reg, IDLE);
  // The ESP-in-UDP source learnt from the first authenticated packet (pcscf.ts #learnEncap): an
  // ephemeral port as `imsec load` uses, not the configured 4500, so the backend keeps it.
  reg.encap = { address: ueIp, port: 40000 };
  backend.setPeerEncap(set, reg.encap);
  held.push(reg);
}

for (let i = 0; i < 300; i++) await one(n + i);
const settle = (): NodeJS.MemoryUsage => {
  for (let k = 0; k < 4; k++) gc();
  return process.memoryUsage();
};
await table.clear('warm-up');
held.length = 0;
settle();
await new Promise((r) => setTimeout(r, 300));
const m0 = settle();
for (let i = 0; i < n; i++) await one(i);
settle();
await new Promise((r) => setTimeout(r, 300));
const m1 = settle();
if (table.size !== n) throw new Error(`${table.size} registrations filed, not ${n}`);
process.stdout.write(JSON.stringify({ n, heapPerReg: (m1.heapUsed - m0.heapUsed) / n, rssPerReg: (m1.rss - m0.rss) / n }) + '\n');
await table.clear('done');
await backend.close();
process.exit(0);
