// npm run bench:core-register [-- --base REV] [-- --ues N] [-- --runs R] [-- --batch B]:
// the S-CSCF + HSS in-process, CPU µs per registration (REGISTER → 401 → REGISTER → 200, the 401's
// SQN committed to an SQLite file, grouped commits as `imsec core` runs them). Only the core's own
// work is timed (process.cpuUsage around feeding B datagrams and the turn that commits and answers
// them); the driver's Milenage and parsing happen outside. With --base REV (default main), REV's src/
// is extracted under .bench-base/ and child processes alternate between its code and this tree's
// (one process per run and variant: no shared JIT or heap), printing the ratio new/old. Round 0 registers every UE,
// round 1 re-registers them (integrity-protected REGISTER, challenged again).
// A benchmark, not a test: on a shared machine the figures are noisy; compare ratios from one run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { extractBase } from './baseline-bundles.ts';

const HERE = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const value = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const N = Number(value('--ues', '4000'));
const RUNS = Number(value('--runs', '3'));
const BATCH = Number(value('--batch', '100'));
const DOMAIN = 'ims.example';

interface ChildResult {
  round0_us: number;
  round1_us: number;
  failures: number;
}

async function child(root: string): Promise<ChildResult> {
  const imp = (p: string) => import(pathToFileURL(join(root, p)).href);
  const core = await imp('src/scscf/index.ts');
  // The driver's side (UE answers) always from this tree: it is not timed.
  const aka = await import('../src/aka/index.ts');
  const { fromHex } = await import('../src/util/bytes.ts');
  const K = fromHex('465b5ce8b199b49faa5f0a2ee238a6bc');
  const OPC = fromHex('cd63cb71954a9f4e48a5994e37a02baf');
  const impiOf = (i: number) => `00101${String(i).padStart(10, '0')}@${DOMAIN}`;
  const dir = mkdtempSync(join(tmpdir(), 'imsec-bench-corereg-'));
  const store = new core.HssStore(join(dir, 'hss.sqlite'), { synchronous: 'normal' });
  store.addMany(
    (function* () {
      for (let i = 1; i <= N; i++) yield { impi: impiOf(i), impus: [`sip:${impiOf(i)}`], k: K, opc: OPC, amf: fromHex('8000') };
    })(),
  );
  const hss = new core.Hss(store, { groupCommits: true });
  const sent: Uint8Array[] = [];
  const done = Promise.resolve();
  const local = { address: '127.0.0.1', port: 6060 };
  const stub = { protocol: 'udp', local, send: (b: Uint8Array) => (sent.push(b), done), close: async () => {} };
  let feed!: (b: Uint8Array, ctx: unknown) => void;
  const scscf = await core.Scscf.start({
    address: local.address,
    port: local.port,
    domain: DOMAIN,
    hss,
    transport: (onReceive: typeof feed) => ((feed = onReceive), stub),
  });
  const ctx = { protocol: 'udp', local, remote: { address: '127.0.0.1', port: 5060 }, transport: stub };
  const enc = new TextEncoder();
  const dec = new TextDecoder('latin1');
  let branch = 0;
  const register = (i: number, round: number, cseq: number, auth: string) => {
    const impi = impiOf(i);
    const port = 6000 + (i % 50000);
    return enc.encode(
      `REGISTER sip:${DOMAIN} SIP/2.0\r\n` +
        `Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-p${++branch}\r\n` +
        `Via: SIP/2.0/UDP 127.0.2.1:${port};received=127.0.2.1;rport=${port};branch=z9hG4bK-u${branch}\r\n` +
        `Max-Forwards: 69\r\nFrom: <sip:${impi}>;tag=t${i}\r\nTo: <sip:${impi}>\r\nCall-ID: bench-${round}-${i}\r\nCSeq: ${cseq} REGISTER\r\n` +
        `Contact: <sip:u${i}@127.0.2.1:${port}>;expires=3600\r\n` +
        `Path: <sip:term@127.0.0.1:5060;lr>\r\nSupported: path\r\n` +
        `Authorization: ${auth}\r\nContent-Length: 0\r\n\r\n`,
    );
  };
  const cpuNow = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const turn = () => new Promise<void>((r) => setImmediate(r));
  // Feeds the datagrams B at a time (as one poll phase would), timing only the core's work.
  const timed = async (msgs: Uint8Array[]): Promise<{ us: number; out: string[] }> => {
    let us = 0;
    const out: string[] = [];
    for (let at = 0; at < msgs.length; at += BATCH) {
      sent.length = 0;
      const t0 = cpuNow();
      for (const m of msgs.slice(at, at + BATCH)) feed(m, ctx);
      await turn(); // the grouped SQN commit and the 401s run in this turn
      us += cpuNow() - t0;
      for (const s of sent) out.push(dec.decode(s));
    }
    return { us, out };
  };
  let failures = 0;
  const roundUs: number[] = [];
  for (let round = 0; round < 2; round++) {
    const ip = round > 0 ? 'yes' : 'no';
    const first: Uint8Array[] = [];
    for (let i = 1; i <= N; i++)
      first.push(
        register(
          i,
          round,
          1,
          `Digest username="${impiOf(i)}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="", response="", integrity-protected="${ip}"`,
        ),
      );
    const a = await timed(first);
    const second: Uint8Array[] = [];
    for (const raw of a.out) {
      const nonce = /nonce="([^"]+)"/.exec(raw)?.[1];
      const i = Number(/Call-ID: bench-\d+-(\d+)/.exec(raw)?.[1]);
      if (!raw.startsWith('SIP/2.0 401') || nonce === undefined) {
        failures++;
        continue;
      }
      const res = aka.f2(K, OPC, aka.parseNonceOrThrow(nonce).rand);
      const base = {
        username: impiOf(i),
        realm: DOMAIN,
        uri: `sip:${DOMAIN}`,
        nonce,
        qop: 'auth',
        nc: '00000001',
        cnonce: 'c0ffee',
      } as const;
      const response = aka.digestResponse({ ...base, method: 'REGISTER', algorithm: 'AKAv1-MD5', res });
      second.push(
        register(
          i,
          round,
          2,
          `Digest username="${impiOf(i)}", realm="${DOMAIN}", uri="sip:${DOMAIN}", nonce="${nonce}", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="c0ffee", response="${response}", integrity-protected="yes"`,
        ),
      );
    }
    const b = await timed(second);
    failures += b.out.filter((r) => !r.startsWith('SIP/2.0 200')).length + (N - b.out.length);
    roundUs.push((a.us + b.us) / N);
  }
  await scscf.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
  return { round0_us: +roundUs[0]!.toFixed(1), round1_us: +roundUs[1]!.toFixed(1), failures };
}

if (args.includes('--child')) {
  process.stdout.write(JSON.stringify(await child(resolve(value('--child', HERE)))) + '\n');
} else {
  const base = value('--base', 'main');
  const { sha, root: against } = extractBase(base);
  const variants: [string, string][] = [
    [`old (${sha.slice(0, 12)})`, against],
    ['new', HERE],
  ];
  const results: Record<string, ChildResult[]> = {};
  for (let r = 0; r < RUNS; r++) {
    for (const [name, root] of variants) {
      const p = spawnSync(
        process.execPath,
        ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', root, '--ues', String(N), '--batch', String(BATCH)],
        { cwd: HERE, encoding: 'utf8' },
      );
      if (p.status !== 0) throw new Error(`${name}: ${p.stderr}`);
      (results[name] ??= []).push(JSON.parse(p.stdout) as ChildResult);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const summary: Record<string, unknown> = { loadavg: loadavg().map((x) => +x.toFixed(1)), ues: N, runs: RUNS, batch: BATCH };
  for (const [name] of variants) {
    const rs = results[name]!;
    summary[name] = {
      round0_us_per_registration: median(rs.map((x) => x.round0_us)),
      round1_us_per_registration: median(rs.map((x) => x.round1_us)),
      failures: rs.reduce((s, x) => s + x.failures, 0),
      all: rs,
    };
  }
  const m = (n: string, k: 'round0_us' | 'round1_us') => median(results[n]!.map((x) => x[k]));
  const old = variants[0]![0];
  summary['ratio_new_over_old'] = {
    round0: +(m('new', 'round0_us') / m(old, 'round0_us')).toFixed(3),
    round1: +(m('new', 'round1_us') / m(old, 'round1_us')).toFixed(3),
  };
  process.stdout.write(JSON.stringify(summary, null, 1) + '\n');
}
