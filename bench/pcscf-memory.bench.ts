// npm run bench:pcscf-memory [-- --ues 20000] [--rate 1000] [--quiet 45] [--log-info] [--heap-snapshot DIR]: the
// P-CSCF's RSS and heap per registered UE after a registration burst, without and with the
// compaction after a burst (issue 9 §2; src/util/heap-compaction.ts), in one run and one process.
// The core, the P-CSCF (its quiet time set to --quiet s) and `imsec load` run as three processes on
// loopback (compiled: `npm run build` first); N UEs register and hold. 34 s after the last one
// (the burst's transactions have ended: Timer J = 32 s) the P-CSCF's figures after a forced GC
// (SIGUSR2, as npm run bench:load takes them): "without"; then, once its own compaction has run
// (--quiet s after the burst, plus a margin), the same figures again: "with". Both against the
// figures before the load. A benchmark, not a test: the machine is shared, RSS figures are noisy.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HssStore } from '../src/scscf/hss-store.ts';
import { fromHex } from '../src/util/bytes.ts';
import { BenchProcess, bound, sleep, type Stats as ProcStats } from './support/bench-process.ts';
import { pcscfArgs } from './support/pcscf-args.ts';

const K = '465b5ce8b199b49faa5f0a2ee238a6bc';
const OPC = 'cd63cb71954a9f4e48a5994e37a02baf';
const DOMAIN = 'ims.example';
const args = process.argv.slice(2);
const value = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);
const N = Number(value('--ues', '20000'));
const RATE = Number(value('--rate', '1000'));
const QUIET_S = Number(value('--quiet', '45'));
// "Without" is taken 34 s after the burst (its transactions have ended): a shorter quiet time would
// let the compaction run first, and "without" would be a second "with".
if (!(QUIET_S >= 40))
  throw new Error(`--quiet ${value('--quiet', '')}: at least 40 s (the figures without the compaction are taken 34 s after the burst)`);
const HEAP_DIR = args.includes('--heap-snapshot') ? value('--heap-snapshot', '/tmp') : undefined;

type Stats = ProcStats & { heap_used: number; heap_spaces: Record<string, { size: number; used: number }> };
const procOptions = HEAP_DIR ? { heapDir: HEAP_DIR } : {};

const dir = mkdtempSync(join(tmpdir(), 'imsec-bench-pcscf-memory-'));
const db = join(dir, 'hss.sqlite');
const store = new HssStore(db);
store.addMany(
  (function* () {
    for (let i = 1; i <= N; i++) {
      const id = `00101${String(i).padStart(10, '0')}@${DOMAIN}`;
      yield { impi: id, impus: [`sip:${id}`], k: fromHex(K), opc: fromHex(OPC), amf: fromHex('8000') };
    }
  })(),
);
store.close();
const port = 20000 + (process.pid % 5000) * 2;
const encap = port + 4;
const locals = Array.from({ length: Math.max(1, Math.ceil(N / 5000)) }, (_, i) => `127.0.1.${i + 1}`).join(',');
const core = new BenchProcess(
  'core',
  ['core', '--listen', `127.0.0.1:${port}`, '--domain', DOMAIN, '--db', db, '--log-level', 'warn'],
  procOptions,
);
// --log-level info logs every registration (a cost of its own): warn unless --log-info, which shows
// the P-CSCF's heap-compacted line (its pause and CPU).
const LOG_INFO = args.includes('--log-info');
const pcscf = new BenchProcess(
  'pcscf',
  [...pcscfArgs(port, encap), '--log-level', LOG_INFO ? 'info' : 'warn', '--heap-compaction-quiet', String(QUIET_S)],
  procOptions,
);
let load: BenchProcess | undefined;
try {
  await bound(port, core);
  await bound(encap, pcscf);
  const pc0 = (await pcscf.stats()) as Stats;
  if (HEAP_DIR) await pcscf.snapshot(HEAP_DIR);
  const hold = QUIET_S + 30;
  load = new BenchProcess(
    'load',
    [
      'load',
      '--pcscf',
      `127.0.0.1:${port + 1}`,
      '--pcscf-encap-port',
      String(encap),
      '--impi',
      `00101{n:10}@${DOMAIN}`,
      '--count',
      String(N),
      '--k',
      K,
      '--opc',
      OPC,
      '--rate',
      String(RATE),
      '--concurrency',
      '200',
      '--duration',
      String(hold),
      '--expires',
      '3600',
      '--local',
      locals,
      '--json',
      '--max-failures',
      String(N),
      '--interval',
      '10',
    ],
    procOptions,
  );
  await load.until(/ hold /, 'stderr', 3_600_000);
  const holdStart = Date.now();
  await sleep(34_000);
  const without = (await pcscf.stats()) as Stats;
  if (HEAP_DIR) await pcscf.snapshot(HEAP_DIR);
  await sleep(Math.max(0, holdStart + (QUIET_S + 8) * 1000 - Date.now()));
  const withC = (await pcscf.stats()) as Stats;
  const registered = (N || 1) as number;
  const per = (s: Stats) => ({
    rss_per_ue: Math.round((s.rss - pc0.rss) / registered),
    heap_per_ue: Math.round((s.heap_used - pc0.heap_used) / registered),
    old_space_mb: `${(s.heap_spaces['old_space']!.size / 1e6).toFixed(1)} committed / ${(s.heap_spaces['old_space']!.used / 1e6).toFixed(1)} used`,
    // What of the RSS is not the live heap: V8's committed heap (all spaces) and off-heap memory, absolute MB.
    rss_mb: +(s.rss / 1e6).toFixed(1),
    heap_committed_mb: +((s['heap_total'] as number) / 1e6).toFixed(1),
    external_mb: +((s['external'] as number) / 1e6).toFixed(1),
    new_space_mb: +((s.heap_spaces['new_space']?.size ?? 0) / 1e6).toFixed(1),
  });
  const w = per(without);
  const c = per(withC);
  process.stdout.write(
    JSON.stringify(
      {
        ues: N,
        rate: RATE,
        note: 'shared machine: noisy; "without" at +34 s after the burst, "with" after the P-CSCF compacted at +quiet s; same process',
        before_load: { rss_mb: +(pc0.rss / 1e6).toFixed(1), heap_committed_mb: +((pc0['heap_total'] as number) / 1e6).toFixed(1) },
        without: w,
        with: c,
        rss_ratio_with_over_without: +(c.rss_per_ue / w.rss_per_ue).toFixed(3),
        compaction_line:
          [...pcscf.lines, ...pcscf.stdout.split('\n')].find((l) => l.includes('heap-compacted')) ??
          (LOG_INFO ? null : 'not logged: --log-info to see it'),
      },
      null,
      2,
    ) + '\n',
  );
} finally {
  await load?.stop();
  await pcscf.stop();
  await core.stop();
  rmSync(dir, { recursive: true, force: true });
}
