// Memory per registered UE and CPU per registration of `imsec load`'s engine (issue 9 §2: the load
// generator ≤ 8 KB per registered UE, CPU per registration −30 %), old code against new in the same
// run. The parent starts `imsec core` and `imsec pcscf` (compiled: run `npm run build` first) on
// loopback once; then, per round, a child process runs N UEs through the engine of a baseline
// commit's src/ (extracted with `git archive` under .bench-base/) and one through this tree's, each
// bundled by esbuild the same way (bench/load-memory-child.ts) and run compiled. Each child
// registers its N UEs, waits until the burst's transactions have ended, takes heap / RSS per
// registered UE after a forced GC, and de-registers everyone. Prints per-round figures and the
// ratios of the medians. A benchmark, not a test: the machine's load makes CPU figures noisy.
//
//   npm run bench:load-memory [-- --n 3000] [--base <commit>] [--rounds 2] [--json] [--snapshot DIR] [--profile DIR]
// --profile DIR: in round 0, each child writes load-{old,new}.cpuprofile (node --cpu-prof, the whole
// child) and load-{old,new}.heapprofile (sampled allocations of the registration phase) there;
// profiling slows the children, so that round's CPU figures are not comparable to a plain run's.
// --child-flags '…': node/V8 flags for both children; --new-flags '…': for the new one only (with
// --base HEAD: what a flag alone does, e.g. '--max-semi-space-size=32').
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HssStore } from '../src/scscf/hss-store.ts';
import { fromHex } from '../src/util/bytes.ts';
import { bundleOldAndNew } from './baseline-bundles.ts';
import type { LoadFigures } from './load-memory-child.ts';
import { pcscfArgs } from './support/pcscf-args.ts';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : dflt;
};
const flag = (name: string): boolean => argv.includes(`--${name}`);
const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');
const DOMAIN = 'ims.example';

/** main when issue 9's load-side memory work began. */
const DEFAULT_BASE = '99effdb';

const n = Number(arg('n', '3000'));
const rounds = Number(arg('rounds', '2'));
const base = arg('base', DEFAULT_BASE);
const { sha, oldBundle, newBundle } = await bundleOldAndNew(join(here, 'load-memory-child.ts'), base);

const dir = mkdtempSync(join(tmpdir(), 'imsec-bench-load-memory-'));
const db = join(dir, 'hss.sqlite');
const store = new HssStore(db);
const [k, opc, amf] = [fromHex('465b5ce8b199b49faa5f0a2ee238a6bc'), fromHex('cd63cb71954a9f4e48a5994e37a02baf'), fromHex('8000')];
store.addMany(
  (function* () {
    for (let i = 1; i <= n; i++) {
      const id = `00101${String(i).padStart(10, '0')}@${DOMAIN}`;
      yield { impi: id, impus: [`sip:${id}`], k, opc, amf };
    }
  })(),
);
store.close();
const port = 30000 + (process.pid % 4000) * 2;
const procs: ChildProcess[] = [];
const start = (args: string[]): ChildProcess => {
  const c = spawn(process.execPath, ['bin/imsec.mjs', ...args, '--log-level', 'warn'], {
    cwd: repo,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  procs.push(c);
  return c;
};
const out: Record<string, unknown> = { n, base: sha.slice(0, 9), note: 'shared machine: CPU figures are noisy; compare the ratios' };
try {
  start(['core', '--listen', `127.0.0.1:${port}`, '--domain', DOMAIN, '--db', db]);
  const encap = port + 4;
  start(pcscfArgs(port, encap));
  await bound(port);
  await bound(encap);
  const flagsOf = (name: string): string[] => arg(name, '').split(' ').filter(Boolean);
  const run = (bundleFile: string, snapshot?: string, profile?: { dir: string; name: string }): LoadFigures => {
    const r = spawnSync(
      process.execPath,
      [
        '--expose-gc',
        ...flagsOf('child-flags'),
        ...(bundleFile === newBundle ? flagsOf('new-flags') : []),
        ...(profile ? ['--cpu-prof', '--cpu-prof-dir', profile.dir, '--cpu-prof-name', `${profile.name}.cpuprofile`] : []),
        bundleFile,
        ...(profile ? ['--alloc-prof', join(profile.dir, `${profile.name}.heapprofile`)] : []),
        '--n',
        String(n),
        '--pcscf',
        `127.0.0.1:${port + 1}`,
        '--encap',
        String(encap),
        '--domain',
        DOMAIN,
        ...['--rate', arg('rate', '800'), '--concurrency', arg('concurrency', '100')],
        ...(snapshot ? ['--snapshot', snapshot] : []),
      ],
      { cwd: repo, encoding: 'utf8', maxBuffer: 1 << 26 },
    );
    if (r.status !== 0) throw new Error(`child ${bundleFile} failed: ${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as LoadFigures;
  };
  const rows: { round: number; code: string; figures: LoadFigures }[] = [];
  const snap = arg('snapshot', '');
  const prof = arg('profile', '');
  for (let i = 0; i < rounds; i++) {
    for (const [code, file] of [
      ['old', oldBundle],
      ['new', newBundle],
    ] as const) {
      const f = run(
        file,
        snap && i === 0 ? join(snap, `load-${code}.heapsnapshot`) : undefined,
        prof && i === 0 ? { dir: resolve(prof), name: `load-${code}` } : undefined,
      );
      rows.push({ round: i, code, figures: f });
      if (!flag('json'))
        console.log(
          `round ${i} ${code}: N=${f.n} registered ${f.registered} failures ${f.failures}  heap B/UE ${Math.round(f.heapPerUe)}  ` +
            `RSS B/UE ${Math.round(f.rssPerUe)}  CPU ms/reg ${f.cpuMsPerRegistration.toFixed(3)}  de-registered ${f.deregistered}  sets left ${f.setsLeft}`,
        );
    }
  }
  const median = (code: string, pick: (f: LoadFigures) => number): number => {
    const xs = rows
      .filter((r) => r.code === code)
      .map((r) => pick(r.figures))
      .sort((a, b) => a - b);
    return xs.length % 2 ? xs[(xs.length - 1) >> 1]! : (xs[xs.length / 2 - 1]! + xs[xs.length / 2]!) / 2;
  };
  for (const [name, pick] of [
    ['heap_per_registered_ue', (f: LoadFigures) => f.heapPerUe],
    ['rss_per_registered_ue', (f: LoadFigures) => f.rssPerUe],
    ['cpu_ms_per_registration', (f: LoadFigures) => f.cpuMsPerRegistration],
  ] as const) {
    const [o, w] = [median('old', pick), median('new', pick)];
    out[name] = { old: +o.toFixed(3), new: +w.toFixed(3), ratio: +(w / o).toFixed(3) };
  }
  out['rounds'] = rows;
  console.log(JSON.stringify(flag('json') ? out : { ...out, rounds: undefined }, null, flag('json') ? 0 : 2));
} finally {
  for (const p of procs) p.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}

/** Waits until something has bound UDP 127.0.0.1:port. */
async function bound(p: number): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    const inUse = await new Promise<boolean>((res) => {
      const s = createSocket('udp4');
      s.once('error', () => res(true));
      s.bind(p, '127.0.0.1', () => s.close(() => res(false)));
    });
    if (inUse) return;
    if (Date.now() > end) throw new Error(`nothing bound 127.0.0.1:${p} (core / pcscf did not start: npm run build?)`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
