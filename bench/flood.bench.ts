// Flood benchmark (issue 10 §2; a measurement, not a test): `imsec core` and `imsec pcscf` as
// separate processes on loopback; an attacker on 127.0.0.1 sends unanswered initial REGISTERs for
// existing IMPIs (fresh Call-ID each) as fast as the rate allows, while a legitimate UE on
// 127.0.0.2 registers and de-registers in a loop. Prints one JSON object: the legitimate UE's
// registration latency before / during the flood (with the ratio, same run), the P-CSCF's RSS before,
// at its peak during and after the flood (reg-await-auth shortened so pending state can expire),
// its heap after a forced GC at the same points (retained state must come back to the idle figure),
// and what the attacker got back (responses by status).
//   npm run bench:flood -- [--rate 3000] [--seconds 20] [--reg-await-auth 15] [--challenge-rate N]
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserspaceBackend } from '../src/ipsec/backends/userspace.ts';
import { HssStore } from '../src/scscf/hss-store.ts';
import { Ue } from '../src/ue/index.ts';
import { fromHex } from '../src/util/bytes.ts';
import { systemClock } from '../src/util/clock.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const RATE = arg('rate', 3000);
const SECONDS = arg('seconds', 20);
const REG_AWAIT_AUTH = arg('reg-await-auth', 15);
/** The P-CSCF's --challenge-rate (0: its default). */
const CHALLENGE_RATE = arg('challenge-rate', 0);
const SUBSCRIBERS = 2000;
const DOMAIN = 'ims.example.org';
const K = '465b5ce8b199b49faa5f0a2ee238a6bc';
const OPC = 'cd63cb71954a9f4e48a5994e37a02baf';
const base = 30000 + Math.floor(Math.random() * 20000);
const CORE = base;
const PCSCF = base + 1;
const ENCAP = base + 4;

const impi = (i: number) => `u${i}@${DOMAIN}`;
const impu = (i: number) => `sip:u${i}@${DOMAIN}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function imsec(args: string[]): ChildProcess {
  const p = spawn(process.execPath, ['bin/imsec.mjs', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '';
  p.stderr!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('{"event":"stats"')) statsWaiters.get(p)?.shift()?.(JSON.parse(line) as { heap_used: number; rss: number });
      else process.stderr.write(line + '\n');
    }
  });
  return p;
}

const statsWaiters = new Map<ChildProcess, ((s: { heap_used: number; rss: number }) => void)[]>();
/** Heap in use after a forced GC (the process's SIGUSR2 stats line): retained state, not RSS the allocator keeps. */
function heapKb(p: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    if (!statsWaiters.has(p)) statsWaiters.set(p, []);
    statsWaiters.get(p)!.push((s) => resolve(Math.round(s.heap_used / 1024)));
    p.kill('SIGUSR2');
  });
}

async function waitFor(p: ChildProcess, text: string): Promise<void> {
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes(text)) resolve();
      if (buf.length > 1e5) buf = buf.slice(-1000);
    });
    p.once('exit', (c) => reject(new Error(`exited ${c} before "${text}"`)));
  });
  p.stdout!.resume(); // drain the event lines from now on
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'imsec-flood-'));
  const db = join(dir, 'hss.sqlite');
  const store = new HssStore(db);
  store.addMany(
    Array.from({ length: SUBSCRIBERS }, (_, i) => ({
      impi: impi(i + 1),
      impus: [impu(i + 1)],
      k: fromHex(K),
      opc: fromHex(OPC),
      amf: fromHex('8000'),
    })),
  );
  store.close();
  const core = imsec(['core', '--listen', `127.0.0.1:${CORE}`, '--domain', DOMAIN, '--db', db, '--reg-await-auth', String(REG_AWAIT_AUTH)]);
  const pcscf = imsec([
    'pcscf',
    '--listen',
    `127.0.0.1:${PCSCF}`,
    '--port-c',
    String(base + 2),
    '--port-s',
    String(base + 3),
    '--scscf',
    `127.0.0.1:${CORE}`,
    '--mode',
    'udp-enc-tun',
    '--encap-port',
    String(ENCAP),
    '--reg-await-auth',
    String(REG_AWAIT_AUTH),
    ...(CHALLENGE_RATE ? ['--challenge-rate', String(CHALLENGE_RATE)] : []),
  ]);
  const out: Record<string, unknown> = {
    note: 'shared 2-core machine: figures are noisy',
    rate_per_s: RATE,
    seconds: SECONDS,
    reg_await_auth_s: REG_AWAIT_AUTH,
    challenge_rate: CHALLENGE_RATE || 'default',
  };
  try {
    await Promise.all([waitFor(core, 'listening'), waitFor(pcscf, 'listening')]);
    const pid = pcscf.pid!;
    out.pcscf_rss_kb_idle = rssKb(pid);
    out.pcscf_heap_kb_idle = await heapKb(pcscf);

    // The legitimate UE: subscriber SUBSCRIBERS (never flooded), from 127.0.0.2.
    const backend = await UserspaceBackend.create({ localIp: '127.0.0.2', encapPort: 0, clock: systemClock });
    const ue = await Ue.create({
      impi: impi(SUBSCRIBERS),
      impu: impu(SUBSCRIBERS),
      pcscf: { address: '127.0.0.1', port: PCSCF },
      localIp: '127.0.0.2',
      k: fromHex(K),
      opc: fromHex(OPC),
      modes: ['UDP-enc-tun'],
      pcscfEncapPort: ENCAP,
      backend,
      reRegister: 'off',
      expires: 3600,
    });
    const legit = async (): Promise<number | string> => {
      const t0 = performance.now();
      const r = await ue.register();
      const ms = performance.now() - t0;
      if (!r.ok) return `failed: ${r.reason}`;
      await ue.deregister();
      return Math.round(ms);
    };
    const before: (number | string)[] = [];
    for (let i = 0; i < 5; i++) before.push(await legit());

    // The attacker: one UDP socket on 127.0.0.1, fire and forget.
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const got: Record<string, number> = {};
    sock.on('message', (m) => {
      const s = m.subarray(8, 11).toString();
      got[s] = (got[s] ?? 0) + 1;
    });
    const lport = sock.address().port;
    let sent = 0;
    let sampling = true;
    const flood = (async () => {
      const end = Date.now() + SECONDS * 1000;
      const perTick = Math.max(1, Math.round(RATE / 100));
      // At least SECONDS, and as long as the legitimate UE is being measured.
      while (Date.now() < end || sampling) {
        for (let k = 0; k < perTick; k++) {
          const i = 1 + (sent % (SUBSCRIBERS - 1));
          const spi = 1000 + 2 * (sent % 100000);
          const cid = `flood-${sent}-${Math.random().toString(36).slice(2)}`;
          const msg = [
            `REGISTER sip:${DOMAIN} SIP/2.0`,
            `Via: SIP/2.0/UDP 127.0.0.1:${lport};branch=z9hG4bK${cid};rport`,
            'Max-Forwards: 70',
            `From: <${impu(i)}>;tag=${sent}`,
            `To: <${impu(i)}>`,
            `Call-ID: ${cid}`,
            'CSeq: 1 REGISTER',
            `Contact: <sip:u${i}@127.0.0.1:${40000 + (sent % 20000)}>;expires=600000`,
            `Authorization: Digest username="${impi(i)}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="", response=""`,
            `Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;mod=UDP-enc-tun;spi-c=${spi};spi-s=${spi + 1};port-c=${20000 + (sent % 20000)};port-s=${40000 + (sent % 20000)}`,
            'Require: sec-agree',
            'Proxy-Require: sec-agree',
            'Supported: path, sec-agree',
            'Content-Length: 0',
            '',
            '',
          ].join('\r\n');
          sock.send(msg, PCSCF, '127.0.0.1');
          sent++;
        }
        await sleep(10);
      }
    })();
    const floodStart = Date.now();
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssKb(pid))), 250);
    await sleep(2000);
    const during: (number | string)[] = [];
    while (during.length < 8) {
      during.push(await legit());
      await sleep(500);
    }
    sampling = false;
    out.flood_seconds_actual = Number(((Date.now() - floodStart) / 1000).toFixed(1));
    await flood;
    clearInterval(sampler);
    out.attacker = { sent, answered_by_status: got };
    out.legit_register_ms_before = before;
    out.legit_register_ms_during = during;
    const med = (xs: (number | string)[]) => {
      const n = xs.filter((x): x is number => typeof x === 'number').sort((a, b) => a - b);
      return n.length ? n[Math.floor(n.length / 2)]! : NaN;
    };
    out.legit_median_ratio_during_vs_before = Number((med(during) / med(before)).toFixed(2));
    out.pcscf_rss_kb_peak_during = peak;
    out.pcscf_rss_kb_right_after = rssKb(pid);
    out.pcscf_heap_kb_right_after = await heapKb(pcscf);
    // Pending rounds end after reg-await-auth; the flood's last transactions after Timer J (64·T1 = 32 s).
    await sleep((Math.max(REG_AWAIT_AUTH, 32) + 5) * 1000);
    out.pcscf_rss_kb_after_pending_and_transactions_end = rssKb(pid);
    out.pcscf_heap_kb_after_pending_and_transactions_end = await heapKb(pcscf);
    out.legit_register_ms_after = [await legit()];
    await ue.close();
    await backend.close();
    sock.close();
  } finally {
    core.kill('SIGTERM');
    pcscf.kill('SIGTERM');
    await sleep(500);
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(out, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
