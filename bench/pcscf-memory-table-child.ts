// The measuring side of bench/pcscf-memory-table.bench.ts, bundled by esbuild once per code base
// (bench/baseline-bundles.ts) and run with plain node --expose-gc: N registrations filed in one
// P-CSCF RegistrationTable as after their 200 OK (state registered with its Bound, temporary set
// installed on a userspace backend, promoted, indexed, the ESP-in-UDP source learnt), then heap and
// RSS per registration after forced GCs. What differs between code bases is what the table and the
// registration keep, not SIP: the Bound is the literal the machine builds (--parsed-server: with the
// parsed Security-Server beside its text, as before issue 9 §2's cut).
import { randomBytes } from 'node:crypto';
import { UserspaceBackend } from '../src/ipsec/backends/userspace.ts';
import { expandKeys } from '../src/ipsec/keys.ts';
import { createSaSet } from '../src/ipsec/sa-set.ts';
import { RegistrationTable } from '../src/pcscf/registrations.ts';
import { IDLE, type Bound } from '../src/pcscf/registration-state.ts';
import { buildSecurityServer, serializeMechanisms } from '../src/secagree/index.ts';
import { HeapClock } from '../src/util/timer-heap.ts';

const argv = process.argv.slice(2);
const n = Number(argv[argv.indexOf('--n') + 1] ?? 20000);
const parsedServer = argv.includes('--parsed-server');
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
const CHOICE = { alg: 'hmac-sha-1-96', ealg: 'aes-cbc', mod: 'UDP-enc-tun' } as const;
const held: unknown[] = [];

async function one(i: number): Promise<void> {
  const impi = `00101${String(i).padStart(10, '0')}@ims.example`;
  const ueIp = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const portUe = 10000 + 2 * (i % 25000);
  const [spiC, spiS] = backend.allocateSpis('127.0.0.1', 2) as [number, number];
  const ue = { ip: ueIp, portC: portUe, portS: portUe + 1, spiC: 0x10000 + 2 * i, spiS: 0x10001 + 2 * i };
  const pc = { ip: '127.0.0.1', portC: 5062, portS: 5064, spiC, spiS };
  const server = [buildSecurityServer(CHOICE, { spiC, spiS, portC: 5062, portS: 5064 })];
  const set = createSaSet({
    role: 'pcscf',
    id: `${impi}#${i + 1}`,
    ue,
    pcscf: pc,
    alg: 'hmac-sha-1-96',
    ealg: 'aes-cbc',
    mode: 'udp-enc-tunnel',
    encap: { uePort: 4500, pcscfPort: 4500 },
    keys: expandKeys(ik, ck, 'hmac-sha-1-96', 'aes-cbc'),
    expiresAt: now + 60_000,
  });
  const impu = `sip:${impi}`;
  const reg = table.getOrNew(impi);
  const bound = {
    current: set.id,
    old: [],
    lifetime: now + 600_000,
    impus: [impu],
    contact: `sip:${impi.slice(0, 15)}@${ueIp}:${portUe + 1}`,
    serviceRoute: [],
    expiresAt: now + 600_000,
    ...(parsedServer && { lastServer: server }),
    lastServerText: serializeMechanisms(server),
    ue: { ip: ueIp, innerIp: undefined },
    natDetected: true,
    mode: 'udp-enc-tunnel',
  } as unknown as Bound;
  reg.state = { kind: 'registered', bound };
  table.settle(reg, IDLE);
  await table.installTemporary(reg, set);
  table.promote(reg, set, now + 600_000);
  table.settled(reg, IDLE);
  reg.encap = { address: ueIp, port: 40000 };
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
