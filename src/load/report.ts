// What a load run measured: counters by outcome and by failure reason, one latency histogram per
// phase, per-interval rows, and the process's CPU and RSS. The report is JSON (snake_case) and
// carries its histograms, so reports of several machines merge exactly (`imsec load merge`).
import { Histogram, type HistogramJson } from './histogram.ts';

/** Latency phases (ms): the exchanges of 9 §1 plus whole procedures. */
export const PHASES = [
  /** REGISTER (unprotected, or over the current set on a refresh) → 401. */
  'register_401',
  /** Protected REGISTER over the temporary set → 200. */
  'protected_register_200',
  /** A whole initial registration: first REGISTER → 200 (incl. resync round trips). */
  'registration',
  /** A whole refresh. */
  'refresh',
  /** MESSAGE sent by a UE → its final response (MO; the MT side answers it). */
  'message',
  /** De-registration → 200. */
  'deregister',
] as const;
export type Phase = (typeof PHASES)[number];

export const OUTCOMES = [
  'registered',
  'refreshed',
  /** Refreshes tried again after one failed while the registration was still valid (each retry counts). */
  'refresh_retries',
  /** Refreshes that succeeded on a retry: the registration was kept (the failed tries are under failures). */
  'refresh_recovered',
  'deregistered',
  'messages_ok',
  'messages_mt_answered',
  'churn_cycles',
  /** A challenge failed the SQN check, the UE sent AUTS and the registration then succeeded. */
  'sync_failure_recovered',
  'sync_failures',
  'mac_failures',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface IntervalRow {
  readonly t: string;
  readonly elapsed_s: number;
  readonly registered: number;
  readonly in_flight: number;
  readonly attempts: number;
  readonly successes: number;
  readonly failures: number;
  readonly attempts_per_s: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly messages: number;
  readonly rss_bytes: number;
}

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p99_9: number;
  readonly max: number;
  readonly mean: number;
}

export interface ProcessFigures {
  readonly cpu_user_ms: number;
  readonly cpu_system_ms: number;
  readonly rss_max_bytes: number;
  readonly rss_end_bytes: number;
  /** RSS growth while every UE was registered, per registered UE (after a GC when --expose-gc). */
  readonly rss_per_registered_ue_bytes?: number;
  /** V8 heap growth (after a GC) per registered UE: the JS objects' share of the RSS figure. */
  readonly heap_per_registered_ue_bytes?: number;
  /** Open file descriptors while every UE was registered (Linux; userspace: not one per UE). */
  readonly open_fds_registered?: number;
}

export interface LoadReport {
  readonly report: 'imsec-load';
  readonly version: 1;
  readonly sources: number;
  readonly started_at: string;
  readonly ended_at: string;
  readonly duration_s: number;
  readonly config: Record<string, unknown>;
  readonly ues: number;
  readonly attempts: number;
  readonly outcomes: Record<Outcome, number>;
  readonly failures_total: number;
  readonly failures: Record<string, number>;
  /** Initial registrations per second over the registration phase (first attempt → last answer). */
  readonly registrations_per_s: number;
  readonly peak_registered: number;
  readonly latency_ms: Record<Phase, LatencySummary>;
  readonly process: ProcessFigures | ProcessFigures[];
  readonly histograms: Record<Phase, HistogramJson>;
  readonly interrupted: boolean;
  /** Live SA sets on the load side after the de-registrations (before closing): 0 means no leak. */
  readonly sa_sets_left: number;
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

export function summarize(h: Histogram): LatencySummary {
  return {
    count: h.count,
    p50: round(h.percentileMs(0.5)),
    p90: round(h.percentileMs(0.9)),
    p99: round(h.percentileMs(0.99)),
    p99_9: round(h.percentileMs(0.999)),
    max: round(h.maxMs),
    mean: round(h.meanMs),
  };
}

/** The live counters of a run. */
export class LoadStats {
  readonly hist = Object.fromEntries(PHASES.map((p) => [p, new Histogram()])) as Record<Phase, Histogram>;
  readonly outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  readonly failures: Record<string, number> = {};
  failuresTotal = 0;
  attempts = 0;
  /** Registration phase: first initial attempt and last initial answer (ms, performance.now()). */
  firstAttemptAt: number | undefined;
  lastInitialAt: number | undefined;
  peakRegistered = 0;
  // Per-interval figures (reset at each row).
  readonly #intervalHist = new Histogram();
  #iAttempts = 0;
  #iSuccesses = 0;
  #iFailures = 0;
  #iMessages = 0;

  attempt(): void {
    this.attempts++;
    this.#iAttempts++;
  }

  success(phase: Phase, ms: number): void {
    this.hist[phase].recordMs(ms);
    if (phase === 'registration' || phase === 'refresh') {
      this.#intervalHist.recordMs(ms);
      this.#iSuccesses++;
    }
    if (phase === 'message') this.#iMessages++;
  }

  fail(key: string): void {
    this.failures[key] = (this.failures[key] ?? 0) + 1;
    this.failuresTotal++;
    this.#iFailures++;
  }

  count(o: Outcome, n = 1): void {
    this.outcomes[o] += n;
  }

  /** One CSV/status row for the interval just ended, then the interval counters start again. */
  intervalRow(elapsedS: number, intervalS: number, registered: number, inFlight: number, rss: number): IntervalRow {
    const row: IntervalRow = {
      t: new Date().toISOString(),
      elapsed_s: round(elapsedS, 1),
      registered,
      in_flight: inFlight,
      attempts: this.#iAttempts,
      successes: this.#iSuccesses,
      failures: this.#iFailures,
      attempts_per_s: round(this.#iAttempts / intervalS, 1),
      p50_ms: round(this.#intervalHist.percentileMs(0.5)),
      p99_ms: round(this.#intervalHist.percentileMs(0.99)),
      messages: this.#iMessages,
      rss_bytes: rss,
    };
    this.#intervalHist.reset();
    this.#iAttempts = this.#iSuccesses = this.#iFailures = this.#iMessages = 0;
    return row;
  }
}

export const CSV_COLUMNS: readonly (keyof IntervalRow)[] = [
  't',
  'elapsed_s',
  'registered',
  'in_flight',
  'attempts',
  'successes',
  'failures',
  'attempts_per_s',
  'p50_ms',
  'p99_ms',
  'messages',
  'rss_bytes',
];

export function csvLine(row: IntervalRow): string {
  return CSV_COLUMNS.map((c) => String(row[c])).join(',') + '\n';
}

export function buildReport(o: {
  stats: LoadStats;
  startedAt: Date;
  endedAt: Date;
  config: Record<string, unknown>;
  ues: number;
  process: ProcessFigures;
  interrupted: boolean;
  saSetsLeft: number;
}): LoadReport {
  const s = o.stats;
  const regSpan = s.firstAttemptAt !== undefined && s.lastInitialAt !== undefined ? (s.lastInitialAt - s.firstAttemptAt) / 1000 : 0;
  return {
    report: 'imsec-load',
    version: 1,
    sources: 1,
    started_at: o.startedAt.toISOString(),
    ended_at: o.endedAt.toISOString(),
    duration_s: round((o.endedAt.getTime() - o.startedAt.getTime()) / 1000, 1),
    config: o.config,
    ues: o.ues,
    attempts: s.attempts,
    outcomes: { ...s.outcomes },
    failures_total: s.failuresTotal,
    failures: { ...s.failures },
    registrations_per_s: regSpan > 0 ? round(s.outcomes.registered / regSpan, 1) : 0,
    peak_registered: s.peakRegistered,
    latency_ms: Object.fromEntries(PHASES.map((p) => [p, summarize(s.hist[p])])) as Record<Phase, LatencySummary>,
    process: o.process,
    histograms: Object.fromEntries(PHASES.map((p) => [p, s.hist[p].toJSON()])) as Record<Phase, HistogramJson>,
    interrupted: o.interrupted,
    sa_sets_left: o.saSetsLeft,
  };
}

/**
 * Merges reports of machines that ran in parallel (disjoint ranges): counts add, histograms add
 * (percentiles recomputed exactly), rates add, the time span is the union, process figures listed.
 */
export function mergeReports(reports: readonly LoadReport[]): LoadReport {
  if (reports.length === 0) throw new RangeError('no reports to merge');
  for (const r of reports) if (r.report !== 'imsec-load' || r.version !== 1) throw new RangeError('not an imsec load report (version 1)');
  const hist = Object.fromEntries(PHASES.map((p) => [p, new Histogram()])) as Record<Phase, Histogram>;
  const outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  const failures: Record<string, number> = {};
  for (const r of reports) {
    for (const p of PHASES) hist[p].add(r.histograms[p]);
    for (const o of OUTCOMES) outcomes[o] += r.outcomes[o] ?? 0;
    for (const [k, n] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + n;
  }
  const start = Math.min(...reports.map((r) => Date.parse(r.started_at)));
  const end = Math.max(...reports.map((r) => Date.parse(r.ended_at)));
  const sum = (f: (r: LoadReport) => number) => reports.reduce((a, r) => a + f(r), 0);
  return {
    report: 'imsec-load',
    version: 1,
    sources: sum((r) => r.sources),
    started_at: new Date(start).toISOString(),
    ended_at: new Date(end).toISOString(),
    duration_s: round((end - start) / 1000, 1),
    config: reports[0]!.config,
    ues: sum((r) => r.ues),
    attempts: sum((r) => r.attempts),
    outcomes,
    failures_total: sum((r) => r.failures_total),
    failures,
    registrations_per_s: round(
      sum((r) => r.registrations_per_s),
      1,
    ),
    peak_registered: sum((r) => r.peak_registered),
    latency_ms: Object.fromEntries(PHASES.map((p) => [p, summarize(hist[p])])) as Record<Phase, LatencySummary>,
    process: reports.flatMap((r) => (Array.isArray(r.process) ? r.process : [r.process])),
    histograms: Object.fromEntries(PHASES.map((p) => [p, hist[p].toJSON()])) as Record<Phase, HistogramJson>,
    interrupted: reports.some((r) => r.interrupted),
    sa_sets_left: sum((r) => r.sa_sets_left ?? 0),
  };
}

/** The human report: outcomes, failures by reason, the latency table, rate, CPU and RSS. */
export function formatReport(r: LoadReport): string {
  const lines: string[] = [];
  const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;
  lines.push(`imsec load report${r.sources > 1 ? ` (${r.sources} machines merged)` : ''}${r.interrupted ? ' — interrupted' : ''}`);
  lines.push(
    `  UEs ${r.ues}, attempts ${r.attempts}, ${r.duration_s} s, registrations/s ${r.registrations_per_s}, peak registered ${r.peak_registered}`,
  );
  lines.push(
    `  outcomes: ${
      OUTCOMES.filter((o) => r.outcomes[o])
        .map((o) => `${o} ${r.outcomes[o]}`)
        .join(', ') || 'none'
    }`,
  );
  const f = Object.entries(r.failures).sort((a, b) => b[1] - a[1]);
  lines.push(`  SA sets left after de-registration (load side): ${r.sa_sets_left}`);
  lines.push(`  failures: ${r.failures_total}${f.length ? ` (${f.map(([k, n]) => `${k} ${n}`).join(', ')})` : ''}`);
  lines.push('  latency ms               count      p50      p90      p99    p99.9      max');
  for (const p of PHASES) {
    const l = r.latency_ms[p];
    if (l.count === 0) continue;
    const c = (x: number) => x.toFixed(1).padStart(8);
    lines.push(`    ${p.padEnd(22)} ${String(l.count).padStart(7)} ${c(l.p50)} ${c(l.p90)} ${c(l.p99)} ${c(l.p99_9)} ${c(l.max)}`);
  }
  for (const p of Array.isArray(r.process) ? r.process : [r.process]) {
    lines.push(
      `  load process: CPU ${Math.round(p.cpu_user_ms + p.cpu_system_ms)} ms (user ${Math.round(p.cpu_user_ms)}, system ${Math.round(p.cpu_system_ms)}), RSS max ${mb(p.rss_max_bytes)}${p.rss_per_registered_ue_bytes !== undefined ? `, ${Math.round(p.rss_per_registered_ue_bytes)} B per registered UE` : ''}${p.heap_per_registered_ue_bytes !== undefined ? ` (heap ${p.heap_per_registered_ue_bytes} B)` : ''}${p.open_fds_registered !== undefined ? `, ${p.open_fds_registered} open fds when all registered` : ''}`,
    );
  }
  return lines.join('\n') + '\n';
}
