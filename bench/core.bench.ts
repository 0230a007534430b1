// npm run bench:core [-- --ues N] [-- --concurrency C] [-- --rounds R] [-- --cpu-prof DIR] [-- --hss-sync full|normal]:
// `imsec core` alone, as a separate process on loopback, driven by this process acting as the P-CSCF
// (the REGISTERs it forwards: its Via on top, Path, integrity-protected, Digest AKA answers computed
// with Milenage here). N subscribers register (REGISTER → 401 → REGISTER → 200), R rounds (each
// round after the first is a re-registration: challenged again, a new SQN per UE).
// Prints ONE JSON object: the core's CPU ms per registration (from its SIGUSR2 stats lines, so this
// driver's own CPU is not counted) and RSS / heap bytes per registered UE after a forced GC.
// A benchmark, not a test: on a shared machine the figures are noisy (the load average is printed).
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { digestResponse, f2, parseNonceOrThrow } from '../src/aka/index.ts';
import { HssStore } from '../src/scscf/hss-store.ts';
import { fromHex } from '../src/util/bytes.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const K = fromHex('465b5ce8b199b49faa5f0a2ee238a6bc');
const OPC = fromHex('cd63cb71954a9f4e48a5994e37a02baf');
const DOMAIN = 'ims.example';
const args = process.argv.slice(2);
const value = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const N = Number(value('--ues', '5000'));
const C = Number(value('--concurrency', '100'));
const ROUNDS = Number(value('--rounds', '2'));
const cpuProf = args.includes('--cpu-prof') ? value('--cpu-prof', '/tmp') : undefined;
const hssSync = value('--hss-sync', 'normal');

interface Stats {
  rss: number;
  heap_used: number;
  cpu_user_ms: number;
  cpu_system_ms: number;
  bindings?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const impiOf = (i: number) => `00101${String(i).padStart(10, '0')}@${DOMAIN}`;

const dir = mkdtempSync(join(tmpdir(), 'imsec-bench-core-'));
const db = join(dir, 'hss.sqlite');
const store = new HssStore(db);
store.addMany(
  (function* () {
    for (let i = 1; i <= N; i++) yield { impi: impiOf(i), impus: [`sip:${impiOf(i)}`], k: K, opc: OPC, amf: fromHex('8000') };
  })(),
);
store.close();

const port = 30000 + (process.pid % 5000) * 2;
const self = port + 1;
const core: ChildProcess = spawn(
  process.execPath,
  [
    '--expose-gc',
    ...(cpuProf ? ['--cpu-prof', '--cpu-prof-dir', cpuProf, '--cpu-prof-name', 'core.cpuprofile'] : []),
    'bin/imsec.mjs',
    'core',
    '--listen',
    `127.0.0.1:${port}`,
    '--domain',
    DOMAIN,
    '--db',
    db,
    '--log-level',
    'warn',
    '--hss-sync',
    hssSync,
  ],
  { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] },
);
const waiters: ((s: Stats) => void)[] = [];
let errBuf = '';
core.stderr!.on('data', (d: Buffer) => {
  errBuf += d.toString();
  for (let i = errBuf.indexOf('\n'); i >= 0; i = errBuf.indexOf('\n')) {
    const line = errBuf.slice(0, i);
    errBuf = errBuf.slice(i + 1);
    if (line.startsWith('{"event":"stats"')) waiters.shift()?.(JSON.parse(line) as Stats);
    else process.stderr.write(`core: ${line}\n`);
  }
});
const stats = () =>
  new Promise<Stats>((resolve) => {
    waiters.push(resolve);
    core.kill('SIGUSR2');
  });

const sock = createSocket('udp4');
await new Promise<void>((r) => sock.bind(self, '127.0.0.1', () => r()));
// Call-ID → what to do with the response.
const pending = new Map<string, (status: number, raw: string) => void>();
sock.on('message', (m) => {
  const raw = m.toString('latin1');
  const status = Number(raw.slice(8, 11));
  const callId = /\r\nCall-ID: *([^\r]+)/i.exec(raw)?.[1];
  if (status < 200 || callId === undefined) return;
  const cb = pending.get(callId);
  if (cb) {
    pending.delete(callId);
    cb(status, raw);
  }
});

let branchN = 0;
function register(i: number, round: number, cseq: number, auth: string): string {
  const impi = impiOf(i);
  const callId = `bench-${round}-${i}`;
  return (
    `REGISTER sip:${DOMAIN} SIP/2.0\r\n` +
    `Via: SIP/2.0/UDP 127.0.0.1:${self};branch=z9hG4bK-p${++branchN}\r\n` +
    `Via: SIP/2.0/UDP 127.0.2.1:${6000 + (i % 50000)};received=127.0.2.1;rport=${6000 + (i % 50000)};branch=z9hG4bK-u${branchN}\r\n` +
    `Max-Forwards: 69\r\nFrom: <sip:${impi}>;tag=t${i}\r\nTo: <sip:${impi}>\r\nCall-ID: ${callId}\r\nCSeq: ${cseq} REGISTER\r\n` +
    `Contact: <sip:u${i}@127.0.2.1:${6000 + (i % 50000)}>;expires=3600\r\n` +
    `Path: <sip:term@127.0.0.1:${self};lr>\r\nSupported: path\r\n` +
    `Authorization: ${auth}\r\nContent-Length: 0\r\n\r\n`
  );
}

function send(text: string, callId: string): Promise<{ status: number; raw: string }> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      pending.delete(callId);
      reject(new Error(`timeout ${callId}`));
    }, 10_000);
    pending.set(callId, (status, raw) => {
      clearTimeout(t);
      resolve({ status, raw });
    });
    sock.send(text, port, '127.0.0.1');
  });
}

async function registerOne(i: number, round: number): Promise<boolean> {
  const impi = impiOf(i);
  const callId = `bench-${round}-${i}`;
  const ip = round > 0 ? 'yes' : 'no';
  const first = await send(
    register(
      i,
      round,
      1,
      `Digest username="${impi}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="", response="", integrity-protected="${ip}"`,
    ),
    callId,
  );
  if (first.status !== 401) return false;
  const nonce = /nonce="([^"]+)"/.exec(first.raw)![1]!;
  const { rand } = parseNonceOrThrow(nonce);
  const res = f2(K, OPC, rand);
  const base = { username: impi, realm: DOMAIN, uri: `sip:${DOMAIN}`, nonce, qop: 'auth', nc: '00000001', cnonce: 'c0ffee' } as const;
  const response = digestResponse({ ...base, method: 'REGISTER', algorithm: 'AKAv1-MD5', res });
  const second = await send(
    register(
      i,
      round,
      2,
      `Digest username="${impi}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="${nonce}", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="c0ffee", response="${response}", integrity-protected="yes"`,
    ),
    callId,
  );
  return second.status === 200;
}

async function round(r: number): Promise<{ ok: number; failed: number; wallS: number }> {
  let next = 1;
  let ok = 0;
  let failed = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next <= N) {
        const i = next++;
        if (await registerOne(i, r).catch(() => false)) ok++;
        else failed++;
      }
    }),
  );
  return { ok, failed, wallS: Number(process.hrtime.bigint() - t0) / 1e9 };
}

const cpu = (a: Stats, b: Stats) => b.cpu_user_ms + b.cpu_system_ms - a.cpu_user_ms - a.cpu_system_ms;
// The core has bound its port once ours can no longer bind it (its SIGUSR2 handler is installed before).
for (const end = Date.now() + 60_000; ;) {
  const inUse = await new Promise<boolean>((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(true));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(false)));
  });
  if (inUse) break;
  if (core.exitCode !== null || Date.now() > end) throw new Error('the core did not start');
  await sleep(100);
}
const out: Record<string, unknown> = { loadavg_at_start: loadavg().map((x) => +x.toFixed(1)), ues: N, concurrency: C, hss_sync: hssSync };
try {
  const s0 = await stats();
  const rounds: unknown[] = [];
  let prev = s0;
  let first: Stats | undefined;
  for (let r = 0; r < ROUNDS; r++) {
    const res = await round(r);
    const s = await stats();
    first ??= s;
    rounds.push({
      round: r,
      ...res,
      registrations_per_s: Math.round(res.ok / res.wallS),
      core_cpu_ms_per_registration: +(cpu(prev, s) / Math.max(1, res.ok + res.failed)).toFixed(3),
    });
    prev = s;
  }
  out['rounds'] = rounds;
  out['core_rss_bytes_per_registered_ue'] = Math.round((first!.rss - s0.rss) / N);
  out['core_heap_bytes_per_registered_ue_incl_transactions'] = Math.round((first!.heap_used - s0.heap_used) / N);
  out['loadavg_at_end'] = loadavg().map((x) => +x.toFixed(1));
} finally {
  sock.close();
  await new Promise<void>((r) => {
    core.once('exit', () => r());
    core.kill('SIGTERM');
  });
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
