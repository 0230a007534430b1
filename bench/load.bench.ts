// npm run bench:load [-- --full] [-- --ues N] [-- --node-flags '…'] [-- --hold S --expires S] [-- --cpu-prof DIR] [-- --heap-snapshot DIR] [-- --state-compare] [-- --no-challenge-reregister]: the
// core, the P-CSCF and `imsec load` as three processes on loopback; N UEs (10k, held 40 s with
// expiry 3600 s: the throughput run; --full adds issue 9 §2's run: 100k UEs, expiry 120 s so that
// refreshes happen, held 600 s) register, hold, de-register. UEs are spread over 127.0.1.x, one
// address per 5,000 UEs (their protected ports must differ per address; src/load/capacity.ts).
// Prints ONE JSON object: registrations/s, failures, p50/p99, CPU ms per registration and RSS bytes
// per registered UE of each process, RSS drift between the start and the end of the hold, SA sets
// left at both ends. A benchmark, not a test: the figures depend on the machine and its load.
//
// How each figure is taken: every process prints a `stats` line on SIGUSR2 (after a forced GC).
// Baseline: before the load starts. Loaded: during the hold, once the registration burst's
// transactions have ended (Timer J/K: 64·T1 after the last REGISTER; T1 = 500 ms ⇒ 32 s).
// CPU per registration = CPU between the two / registrations; RSS per UE = RSS growth / registered.
// --heap-snapshot DIR: the P-CSCF writes a heap snapshot at both points, the load process one at the
// second (compare them per constructor with scripts/heap-diff.mjs to see where the bytes per UE go).
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HssStore } from '../src/scscf/hss-store.ts';
import { fromHex } from '../src/util/bytes.ts';
import { BenchProcess, bound, sleep, type BenchProcessOptions, type Stats } from './support/bench-process.ts';
import { pcscfArgs } from './support/pcscf-args.ts';

const K = '465b5ce8b199b49faa5f0a2ee238a6bc';
const OPC = 'cd63cb71954a9f4e48a5994e37a02baf';
const DOMAIN = 'ims.example';
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const value = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1]! : dflt);

// --node-flags '…': V8/Node flags for all three processes (e.g. to try a heap setting), as an operator would pass them.
const nodeFlags = args.includes('--node-flags') ? args[args.indexOf('--node-flags') + 1]!.split(' ').filter(Boolean) : [];
const spacesMb = (s: Stats): Record<string, string> =>
  Object.fromEntries(
    Object.entries((s['heap_spaces'] ?? {}) as Record<string, { size: number; used: number }>).map(([k, v]) => [
      k,
      `${(v.size / 1e6).toFixed(1)} / ${(v.used / 1e6).toFixed(1)}`,
    ]),
  );

/** RSS of a child as the kernel counts it now, without a signal or a GC in the process. */
const rssOf = (p: BenchProcess): number =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p.child.pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024;
/**
 * CPU ms a child has used so far (user + system, all its threads), as the kernel counts it, without a
 * signal or a forced GC in the process: /proc/PID/stat utime and stime, in clock ticks (100 per second).
 */
const cpuOf = (p: BenchProcess): number => {
  const fields = readFileSync(`/proc/${p.child.pid}/stat`, 'utf8')
    .replace(/^.*\) /s, '')
    .split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // fields 14 and 15 of proc(5), after pid and comm
};
/** The kernel's UDP counters (all of this network namespace): datagrams sent and datagrams dropped for a full receive buffer. */
function udpCounters(): { out: number; rcvbuf_errors: number } {
  const lines = readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Udp:'));
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/).map(Number);
  return { out: values[names.indexOf('OutDatagrams')]!, rcvbuf_errors: values[names.indexOf('RcvbufErrors')]! };
}
/** --expose-gc and the caller's --node-flags for every process, a CPU profile each with --cpu-prof, heap snapshots where asked. */
const procOptions = (o: { cpuProf?: string }, heapDir?: string): BenchProcessOptions => ({
  nodeFlags: ['--expose-gc', ...nodeFlags],
  ...(o.cpuProf && { cpuProf: o.cpuProf }),
  ...(heapDir && { heapDir }),
});
const cpuMs = (a: Stats, b: Stats) => b.cpu_user_ms + b.cpu_system_ms - a.cpu_user_ms - a.cpu_system_ms;

async function run(
  n: number,
  o: {
    rate: number;
    concurrency: number;
    locals: string;
    hssSync: string;
    holdS: number;
    expires: number;
    cpuProf?: string;
    heapDir?: string;
    state?: boolean;
    /** The core accepts integrity-protected re-REGISTERs without a new challenge (a refresh keeps its SA set). */
    noChallengeReregister?: boolean;
  },
) {
  // The loaded figures are taken 34 s into the hold (below): a shorter hold would end the load first.
  if (o.holdS < 40) throw new Error(`--hold ${o.holdS}: the hold must last at least 40 s (figures are taken 34 s into it)`);
  const dir = mkdtempSync(join(tmpdir(), 'imsec-bench-load-'));
  const db = join(dir, 'hss.sqlite');
  const store = new HssStore(db);
  const k = fromHex(K);
  const opc = fromHex(OPC);
  const amf = fromHex('8000');
  store.addMany(
    (function* () {
      for (let i = 1; i <= n; i++) {
        const id = `00101${String(i).padStart(10, '0')}@${DOMAIN}`;
        yield { impi: id, impus: [`sip:${id}`], k, opc, amf };
      }
    })(),
  );
  store.close();
  const port = 20000 + (process.pid % 5000) * 2;
  // Per-event logging off (--log-level warn), as a loaded service would run.
  const core = new BenchProcess(
    'core',
    [
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
      o.hssSync,
      ...(o.noChallengeReregister ? ['--no-challenge-reregister'] : []),
    ],
    procOptions(o),
  );
  const encap = port + 4;
  const pcscf = new BenchProcess(
    'pcscf',
    [...pcscfArgs(port, encap), '--log-level', 'warn', ...(o.state ? ['--state', join(dir, 'pcscf-state.db')] : [])],
    procOptions(o, o.heapDir),
  );
  let load: BenchProcess | undefined;
  try {
    await bound(port, core);
    await bound(encap, pcscf);
    const [core0, pc0] = [await core.stats(), await pcscf.stats()];
    const startCpu = { core: cpuOf(core), pcscf: cpuOf(pcscf) };
    if (o.heapDir) await pcscf.snapshot(o.heapDir);
    const t0 = Date.now();
    const udp0 = udpCounters();
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
        String(n),
        '--k',
        K,
        '--opc',
        OPC,
        '--rate',
        String(o.rate),
        '--concurrency',
        String(o.concurrency),
        '--duration',
        String(o.holdS),
        '--expires',
        String(o.expires),
        '--local',
        o.locals,
        '--json',
        '--max-failures',
        String(n),
        '--interval',
        '10',
      ],
      procOptions(o, o.heapDir),
    );
    await load.until(/ hold /, 'stderr', 6 * 3_600_000);
    const holdStart = Date.now();
    const burstCpu = { core: cpuOf(core), pcscf: cpuOf(pcscf), load: cpuOf(load) };
    const regWall = (holdStart - t0) / 1000;
    await sleep(34_000); // the burst's transactions end (Timer J = 64·T1 = 32 s)
    const [core1, pc1, load1] = [await core.stats(), await pcscf.stats(), await load.stats()];
    const udp1 = udpCounters();
    if (o.heapDir) await pcscf.snapshot(o.heapDir);
    if (o.heapDir) await load.snapshot(o.heapDir);
    // Memory flat during the hold (refreshes every expires/2). A forced GC of a heap of a gigabyte stops
    // a process for seconds, and a stopped P-CSCF or load process drops datagrams and makes refreshes
    // late: so the figures after a forced GC are taken twice only (34 s into the hold, above, and in its
    // last minute), and once a minute in between the RSS is read from /proc without touching the processes.
    // heap_total and external tell V8 pages kept after the GC and off-heap memory apart from the rest of the RSS.
    const series: Record<string, number | boolean>[] = [];
    const sample = (p: Stats, l: Stats) =>
      series.push({
        t_s: Math.round((Date.now() - holdStart) / 1000),
        forced_gc: true,
        rss_pcscf: p.rss,
        heap_pcscf: p['heap_used'] as number,
        heap_total_pcscf: p['heap_total'] as number,
        external_pcscf: p['external'] as number,
        gc_ms_pcscf: p['gc_ms'] as number,
        rss_load: l.rss,
        heap_load: l['heap_used'] as number,
        heap_total_load: l['heap_total'] as number,
        external_load: l['external'] as number,
        gc_ms_load: l['gc_ms'] as number,
      });
    sample(pc1, load1);
    const holdEnd = holdStart + o.holdS * 1000 - 3_000;
    // The load process times its hold itself and may have begun de-registering: stop sampling then.
    const holding = () => !/ (end|done) /.test(load!.lines.slice(-3).join('\n'));
    let forcedLast = false;
    while (o.holdS >= 60 && holding()) {
      const left = holdEnd - Date.now();
      if (left <= 5_000) break;
      const lastMinute = left <= 65_000;
      await sleep(lastMinute ? left - 5_000 : 60_000);
      if (!holding()) break;
      if (lastMinute) {
        const l = await load.tryStats();
        if (!l || !holding()) break;
        sample(await pcscf.stats(), l);
        forcedLast = true;
        break;
      }
      series.push({ t_s: Math.round((Date.now() - holdStart) / 1000), forced_gc: false, rss_pcscf: rssOf(pcscf), rss_load: rssOf(load) });
    }
    const udp2 = udpCounters();
    const last = forcedLast ? (series.at(-1) as Record<string, number>) : undefined;
    await load.until(/"report":"imsec-load"/, 'stdout', 6 * 3_600_000);
    const report = JSON.parse(load.stdout) as {
      registrations_per_s: number;
      failures_total: number;
      failures: Record<string, number>;
      outcomes: { registered: number; refreshed: number };
      latency_ms: { registration: { p50: number; p99: number }; register_401: { p99: number }; protected_register_200: { p99: number } };
      process: {
        cpu_user_ms: number;
        cpu_system_ms: number;
        rss_per_registered_ue_bytes?: number;
        heap_per_registered_ue_bytes?: number;
        open_fds_registered?: number;
      };
      sa_sets_left: number;
      outcomes_refreshed?: number;
    };
    const pcEnd = await pcscf.stats();
    const regs = report.outcomes.registered || 1;
    const registered = (load1['registered'] as number) || 1;
    return {
      ues: n,
      registrations_per_s: report.registrations_per_s,
      registration_phase_wall_s: Math.round(regWall),
      failures: report.failures_total,
      failure_reasons: report.failures,
      p50_ms: report.latency_ms.registration.p50,
      p99_ms: report.latency_ms.registration.p99,
      cpu_ms_per_registration: {
        pcscf: +(cpuMs(pc0, pc1) / regs).toFixed(3),
        core: +(cpuMs(core0, core1) / regs).toFixed(3),
        load: +((load1.cpu_user_ms + load1.cpu_system_ms) / regs).toFixed(3),
      },
      // The same while registering only: from the start to the last registration (the `hold` line), read
      // from /proc. It leaves out what the burst costs afterwards (the P-CSCF's heap compaction once it
      // is quiet, the end of the burst's transactions, the forced GC of the stats), which the figure above counts.
      cpu_ms_per_registration_while_registering: {
        pcscf: +((burstCpu.pcscf - startCpu.pcscf) / regs).toFixed(3),
        core: +((burstCpu.core - startCpu.core) / regs).toFixed(3),
        load: +(burstCpu.load / regs).toFixed(3),
      },
      // The kernel's part of it (socket calls; on loopback the sender also pays the receiver's delivery).
      cpu_system_share: {
        pcscf: +((pc1.cpu_system_ms - pc0.cpu_system_ms) / cpuMs(pc0, pc1)).toFixed(2),
        core: +((core1.cpu_system_ms - core0.cpu_system_ms) / cpuMs(core0, core1)).toFixed(2),
        load: +(load1.cpu_system_ms / (load1.cpu_user_ms + load1.cpu_system_ms)).toFixed(2),
      },
      rss_bytes_per_registered_ue: {
        pcscf: Math.round((pc1.rss - pc0.rss) / registered),
        core: Math.round((core1.rss - core0.rss) / registered),
        // Like the P-CSCF's: after a forced GC once the burst's transactions ended (the report's own
        // figure, load_at_all_registered, is taken as the last registration answers).
        load: Math.round((load1.rss - (load1['rss_base'] as number)) / registered),
        load_at_all_registered: report.process.rss_per_registered_ue_bytes ?? null,
      },
      // Where the load process's RSS goes besides the live heap (after the same GC): V8's committed
      // heap, and memory outside it (Buffers, OpenSSL contexts) — absolute, so they include the baseline.
      load_memory_per_registered_ue: {
        heap_total: Math.round((load1['heap_total'] as number) / registered),
        external: Math.round((load1['external'] as number) / registered),
        array_buffers: Math.round((load1['array_buffers'] as number) / registered),
      },
      heap_bytes_per_registered_ue: {
        pcscf: Math.round(((pc1.heap_used as number) - (pc0.heap_used as number)) / registered),
        load: Math.round(((load1.heap_used as number) - (load1['heap_base'] as number)) / registered),
        load_at_all_registered: report.process.heap_per_registered_ue_bytes ?? null,
      },
      // V8's spaces (MB committed / used) 34 s into the hold, after a forced GC: what of the RSS is live objects.
      heap_spaces_mb: { pcscf: spacesMb(pc1), load: spacesMb(load1) },
      ...(last && {
        rss_drift_during_hold_bytes: {
          pcscf: last.rss_pcscf! - pc1.rss,
          load: last.rss_load! - load1.rss,
          over_s: Math.round((Date.now() - holdStart) / 1000) - 34,
        },
        // Once a minute through the hold (t_s from the hold's start): RSS as it is, and at the first and the
        // last sample RSS and heap after a forced GC (forced_gc: true, with how long the GC stopped each process).
        hold_series: series,
      }),
      // Kernel UDP counters of the whole network namespace (anything else running on the host counts too):
      // 12 datagrams per registration is the minimum with its de-registration (8 + 4); more means
      // retransmissions. Drops for a full receive buffer mean a process stopped reading for a while.
      udp: {
        datagrams_per_registration_to_hold: +((udp1.out - udp0.out) / regs).toFixed(2),
        receive_buffer_drops: { registration: udp1.rcvbuf_errors - udp0.rcvbuf_errors, hold: udp2.rcvbuf_errors - udp1.rcvbuf_errors },
      },
      refreshed: report.outcomes.refreshed,
      open_fds_load: report.process.open_fds_registered ?? null,
      sa_sets_left: { load: report.sa_sets_left, pcscf: pcEnd['live_sa_sets'] },
    };
  } finally {
    await load?.stop();
    await pcscf.stop();
    await core.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One loopback address per 5,000 UEs (src/load/capacity.ts UES_PER_ADDRESS): 127.0.1.1, 127.0.1.2, … */
const localsFor = (n: number) => Array.from({ length: Math.max(1, Math.ceil(n / 5000)) }, (_, i) => `127.0.1.${i + 1}`).join(',');

const common = {
  rate: Number(value('--rate', '2000')),
  concurrency: Number(value('--concurrency', '200')),
  hssSync: value('--hss-sync', 'normal'),
  noChallengeReregister: flag('--no-challenge-reregister'),
  nodeFlags,
  ...(args.includes('--cpu-prof') && { cpuProf: value('--cpu-prof', '/tmp') }),
  ...(args.includes('--heap-snapshot') && { heapDir: value('--heap-snapshot', '/tmp') }),
};
/**
 * CPU ms of a fixed piece of work (objects in a Map, JSON, HMAC-SHA-1) in this process. This machine's
 * speed changes by up to 1.7× from one quarter of an hour to the next with nothing else running: two
 * runs' CPU figures are comparable only when their speed checks agree.
 */
function speedCheck(): number {
  speedWork(); // warms the JIT: the first pass costs twice the next
  const c0 = process.cpuUsage();
  speedWork();
  const c = process.cpuUsage(c0);
  return Math.round((c.user + c.system) / 1000);
}
function speedWork(): void {
  const key = Buffer.alloc(20, 7);
  const data = Buffer.alloc(1024, 1);
  let sink = 0;
  for (let round = 0; round < 4; round++) {
    const m = new Map<string, { i: number; s: string }>();
    for (let i = 0; i < 50_000; i++) m.set(`k${i}`, { i, s: `v${i}` });
    sink += JSON.stringify([...m.values()].slice(0, 5_000)).length;
    for (let i = 0; i < 5_000; i++) sink += createHmac('sha1', key).update(data).digest()[0]!;
  }
  if (sink < 0) throw new Error('unreachable');
}
const speedAtStart = speedCheck();
const out: Record<string, unknown> = {
  machine: {
    speed_check_cpu_ms: { start: speedAtStart } as Record<string, number>,
    cpus: (await import('node:os')).cpus().length,
    loadavg_at_start: (await import('node:os')).loadavg().map((x) => +x.toFixed(1)),
    note: 'shared machine: figures are noisy; hss-sync normal unless --hss-sync full',
  },
  config: common,
};
const n1 = Number(value('--ues', '10000'));
const first = {
  ...common,
  locals: value('--local', localsFor(n1)),
  holdS: Number(value('--hold', '40')),
  expires: Number(value('--expires', '3600')),
};
out[`ues_${n1}`] = await run(n1, first);
if (flag('--state-compare')) {
  // Issue 13 §3: the same run with the P-CSCF state store (SQLite) on; ratios against the run above.
  const base = out[`ues_${n1}`] as { registrations_per_s: number; cpu_ms_per_registration: { pcscf: number } };
  const withState = await run(n1, { ...first, state: true });
  out['with_state_store'] = withState;
  out['state_store_ratio'] = {
    registrations_per_s: +(withState.registrations_per_s / base.registrations_per_s).toFixed(3),
    pcscf_cpu_ms_per_registration: +(withState.cpu_ms_per_registration.pcscf / base.cpu_ms_per_registration.pcscf).toFixed(3),
  };
}
// Issue 9 §2: 100k registered, expiry 120 s (refreshes really happen), held 10 minutes.
if (flag('--full'))
  out['ues_100000'] = await run(100_000, {
    ...common,
    locals: localsFor(100_000),
    holdS: Number(value('--full-hold', '600')),
    expires: Number(value('--full-expires', '120')),
  });
(out['machine'] as { speed_check_cpu_ms: Record<string, number> }).speed_check_cpu_ms['end'] = speedCheck();
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
