// `imsec pcscf`: runs the P-CSCF (33.203 access edge, src/pcscf/) on the userspace or the xfrm
// IPsec backend until SIGINT/SIGTERM, then deletes its SAs. One line per event (JSON with --json).
import { DEFAULT_PENDING_LIMITS, type PendingLimitsConfig } from '../pcscf/pending-limits.ts';
import type { Command } from 'commander';
import { z } from 'zod';
import { NAT_T_PORT } from '../ipsec/types.ts';
import { Pcscf, PCSCF_EVENT_NAMES, REG_AWAIT_AUTH_MS, type PcscfEventName, type PcscfEvents, type PcscfMode } from '../pcscf/index.ts';
import { DEFAULT_ALLOW, formatPair, parseAlgPairList, type SecAgreePolicy } from '../secagree/index.ts';
import { systemClock } from '../sip/clock.ts';
import { InputError } from '../util/errors.ts';
import { statsOnSignal } from './stats-signal.ts';
import { DEFAULT_BURST_COMPACTION } from '../util/burst-compaction.ts';
import { startBurstCompaction, type TrimReport } from '../util/heap-compaction.ts';
import { mallocTrimFunction } from '../ipsec/backends/xfrm/native.ts';
import { PROBE_INSTANCE } from '../ipsec/backends/xfrm/preflight.ts';
import { guardProcess } from './serve-guard.ts';
import { EspDropReporter, formatDrop, type EspDropEvent } from './esp-drops.ts';
import { createLogger, DropLog, logLevelField, type LogLevel } from './log.ts';
import { newRegistry, parseMetricsListen, startMetricsServer, type MetricsServer } from './metrics.ts';
import { registerPcscfMetrics } from './pcscf-metrics.ts';
import { SipMeter } from './sip-meter.ts';
import {
  BACKEND_HELP,
  instanceOfNode,
  openBackend,
  parseBackend,
  parseXfrmInstance,
  XFRM_INSTANCE_HELP,
  type BackendKind,
} from './backend-choice.ts';
import { addConfigOptions, boolField, checkedString, intField, portField, resolveConfig, secondsField } from './config.ts';
import { parseHostPortArg, parseIntArg, parsePortArg } from './parse-args.ts';
import { openPcscfState } from './pcscf-state.ts';

export interface PcscfCliOptions {
  listen: string;
  portC: string;
  portS: string;
  scscf: string;
  mode?: string;
  policy?: string;
  allowDeprecated?: boolean;
  encapPort?: string;
  regAwaitAuth?: string;
  maxPendingPerSource?: string;
  maxPending?: string;
  challengeRate?: string;
  maxInFlightPerSource?: string;
  json?: boolean;
  backend?: string;
  xfrmInstance?: string;
  metrics?: string;
  logLevel?: LogLevel;
  state?: string;
  stateKeyFile?: string;
  /** Commander's --no-heap-compaction: false. */
  heapCompaction?: boolean;
  heapCompactionQuiet?: string;
}

export interface PcscfArgs {
  address: string;
  port: number;
  portC: number;
  portS: number;
  scscf: { address: string; port: number };
  mode: PcscfMode;
  policy: SecAgreePolicy;
  encapPort: number;
  regAwaitAuthMs: number;
  /** Issue 10 §2: only the limits given (the P-CSCF's defaults fill the rest). */
  limits: Partial<PendingLimitsConfig>;
  json: boolean;
  backend: BackendKind;
  xfrmInstance?: number;
  /** ADDR:PORT of the /metrics, /healthz, /readyz listener. */
  metrics?: string;
  logLevel: LogLevel;
  /** Issue 13 §3: the state store (an SQLite file or a postgres:// URL) and the key of its key column. */
  state?: string;
  stateKeyFile?: string;
  /**
   * Issue 9 §2: after a registration burst, once new registrations have been this quiet for this
   * long, one compacting GC returns the old-space pages the burst's dead objects left (0: never).
   */
  heapCompactionQuietMs: number;
}

const hostPort = (text: string, flag: string) => parseHostPortArg(text, flag);
const port = (text: string | undefined, flag: string, dflt: number): number => (text === undefined ? dflt : parsePortArg(text, flag));

/** Checks and converts the command-line options (exit 2 on anything malformed). */
export function parsePcscfArgs(o: PcscfCliOptions): PcscfArgs {
  const listen = hostPort(o.listen, '--listen');
  const scscf = hostPort(o.scscf, '--scscf');
  const mode = (o.mode ?? 'auto') as PcscfMode;
  if (!['auto', 'udp-enc-tun', 'trans'].includes(mode))
    throw new InputError(`--mode: must be auto, udp-enc-tun or trans, got ${JSON.stringify(o.mode)}`);
  const portC = port(o.portC, '--port-c', 0);
  const portS = port(o.portS, '--port-s', 0);
  if (portC !== 0 && portC === portS) throw new InputError('--port-c and --port-s must differ');
  let regAwaitAuthMs = REG_AWAIT_AUTH_MS;
  if (o.regAwaitAuth !== undefined) {
    regAwaitAuthMs = parseIntArg(o.regAwaitAuth, '--reg-await-auth', 1, 999_999, 'seconds') * 1000;
  }
  const policy: SecAgreePolicy = {
    ...(o.policy !== undefined ? { allow: parseAlgPairList(o.policy, '--policy') } : {}),
    ...(o.allowDeprecated ? { allowDeprecated: true } : {}),
  };
  const xfrmInstance = parseXfrmInstance(o.xfrmInstance);
  const count = (v: string | undefined, flag: string): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^[0-9]{1,9}$/.test(v) || Number(v) === 0) throw new InputError(`${flag}: an integer 1..999999999, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  const perSource = count(o.maxPendingPerSource, '--max-pending-per-source');
  const total = count(o.maxPending, '--max-pending');
  const rate = count(o.challengeRate, '--challenge-rate');
  const inFlight = count(o.maxInFlightPerSource, '--max-in-flight-per-source');
  const limits: Partial<PendingLimitsConfig> = {
    ...(inFlight !== undefined && { maxInFlightPerSource: inFlight }),
    ...(perSource !== undefined && { maxPendingPerSource: perSource }),
    ...(total !== undefined && { maxPendingTotal: total }),
    // The burst is two seconds' worth of the rate.
    ...(rate !== undefined && { challengesPerSecond: rate, challengeBurst: 2 * rate }),
  };
  return {
    ...listen,
    portC,
    portS,
    scscf,
    mode,
    policy,
    regAwaitAuthMs,
    limits,
    encapPort: port(o.encapPort, '--encap-port', NAT_T_PORT),
    json: o.json === true,
    backend: parseBackend(o.backend),
    ...(xfrmInstance !== undefined && { xfrmInstance }),
    ...(o.metrics !== undefined && { metrics: (parseMetricsListen(o.metrics), o.metrics) }),
    logLevel: o.logLevel ?? 'info',
    ...(o.state !== undefined && { state: checkState(o.state, listen.port) }),
    ...(o.stateKeyFile !== undefined && { stateKeyFile: o.stateKeyFile }),
    heapCompactionQuietMs:
      o.heapCompaction === false
        ? 0
        : o.heapCompactionQuiet === undefined
          ? DEFAULT_BURST_COMPACTION.quietMs
          : parseIntArg(o.heapCompactionQuiet, '--heap-compaction-quiet', 1, 86_400, 'seconds') * 1000,
  };
}

/** --state needs a fixed plain port (its rows are filed under ADDR:PORT). */
function checkState(state: string, port: number): string {
  if (state === '') throw new InputError('--state: an SQLite file or a postgres:// URL');
  if (port === 0)
    throw new InputError("--state: needs a fixed --listen port (the stored registrations are filed under the P-CSCF's ADDR:PORT)");
  return state;
}

/** The settings of `imsec pcscf` (flags and --config file keys), with their defaults. */
export const PcscfConfigSchema = z.strictObject({
  listen: checkedString((s) => hostPort(s, '--listen'), 'ADDR:PORT ([IPv6]:PORT)'),
  portC: portField(),
  portS: portField(),
  scscf: checkedString((s) => hostPort(s, '--scscf'), 'ADDR:PORT ([IPv6]:PORT) of the S-CSCF'),
  mode: z.enum(['auto', 'udp-enc-tun', 'trans'], { error: 'expected auto, udp-enc-tun or trans' }).default('auto'),
  policy: checkedString((s) => parseAlgPairList(s, '--policy'), 'comma-separated alg/ealg pairs').optional(),
  allowDeprecated: boolField().default(false),
  encapPort: portField().default(NAT_T_PORT),
  regAwaitAuth: secondsField().default(REG_AWAIT_AUTH_MS / 1000),
  maxPendingPerSource: intField(1, 999_999_999, 'a count').default(DEFAULT_PENDING_LIMITS.maxPendingPerSource),
  maxPending: intField(1, 999_999_999, 'a count').default(DEFAULT_PENDING_LIMITS.maxPendingTotal),
  challengeRate: intField(1, 999_999_999, 'challenges per second').default(DEFAULT_PENDING_LIMITS.challengesPerSecond),
  maxInFlightPerSource: intField(1, 999_999_999, 'a count').default(DEFAULT_PENDING_LIMITS.maxInFlightPerSource!),
  backend: z.enum(['userspace', 'xfrm'], { error: 'expected userspace or xfrm' }).default('userspace'),
  xfrmInstance: intField(0, PROBE_INSTANCE - 1, 'an instance').optional(),
  json: boolField().default(false),
  metrics: checkedString(parseMetricsListen, 'ADDR:PORT for /metrics, /healthz, /readyz').optional(),
  logLevel: logLevelField(),
  state: checkedString(
    (s) =>
      s.length > 0 ||
      (() => {
        throw new InputError('empty');
      })(),
    'an SQLite file or a postgres:// URL',
  ).optional(),
  stateKeyFile: z.string({ error: 'expected a file name' }).optional(),
  heapCompaction: boolField().default(true),
  heapCompactionQuiet: intField(1, 86_400, 'seconds').default(DEFAULT_BURST_COMPACTION.quietMs / 1000),
});
export type PcscfConfig = z.output<typeof PcscfConfigSchema>;

/** The run arguments for a validated configuration. */
export function pcscfArgsFromConfig(c: PcscfConfig): PcscfArgs {
  return parsePcscfArgs({
    listen: c.listen,
    portC: String(c.portC),
    portS: String(c.portS),
    scscf: c.scscf,
    mode: c.mode,
    ...(c.policy !== undefined && { policy: c.policy }),
    allowDeprecated: c.allowDeprecated,
    encapPort: String(c.encapPort),
    regAwaitAuth: String(c.regAwaitAuth),
    maxPendingPerSource: String(c.maxPendingPerSource),
    maxPending: String(c.maxPending),
    challengeRate: String(c.challengeRate),
    maxInFlightPerSource: String(c.maxInFlightPerSource),
    json: c.json,
    backend: c.backend,
    ...(c.xfrmInstance !== undefined && { xfrmInstance: String(c.xfrmInstance) }),
    ...(c.metrics !== undefined && { metrics: c.metrics }),
    logLevel: c.logLevel,
    ...(c.state !== undefined && { state: c.state }),
    ...(c.stateKeyFile !== undefined && { stateKeyFile: c.stateKeyFile }),
    heapCompaction: c.heapCompaction,
    heapCompactionQuiet: String(c.heapCompactionQuiet),
  });
}

function flat(prefix: string, v: unknown, out: string[]): void {
  if (v === undefined) return;
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flat(prefix ? `${prefix}.${k}` : k, x, out);
    return;
  }
  out.push(`${prefix}=${Array.isArray(v) ? v.join(',') : String(v)}`);
}

/** One human line per event: `time event k=v … [: message]`; addresses as ADDR:PORT. Never keys (events carry none). */
export function formatEvent<K extends PcscfEventName>(name: K, ev: PcscfEvents[K], at: Date = new Date()): string {
  const { message, from, source, ...rest } = ev as Record<string, unknown>;
  const parts: string[] = [];
  for (const [k, a] of [
    ['from', from],
    ['source', source],
  ] as const) {
    const x = a as { address: string; port: number } | undefined;
    if (x) parts.push(`${k}=${x.address.includes(':') ? `[${x.address}]` : x.address}:${x.port}`);
  }
  flat('', rest, parts);
  return `${at.toISOString().slice(11, 23)} ${name} ${parts.join(' ')}${message === undefined ? '' : `: ${String(message)}`}`;
}

export interface RunOptions {
  /** Stops the P-CSCF when aborted (the command uses SIGINT/SIGTERM). */
  readonly signal: AbortSignal;
  /** Log lines (JSON with --json or when stdout is not a TTY); default stdout. */
  readonly write?: (line: string) => void;
  /** Called once the ESP drop reporter exists, so a metrics exporter can read its counts. */
  readonly onDrops?: (drops: EspDropReporter) => void;
  /** How often the P-CSCF's own drops (unprotected packets on a protected port) are logged; default 10 s. */
  readonly dropLogIntervalMs?: number;
  /** Called once the P-CSCF listens, with the metrics listener's address when --metrics is set. */
  readonly onReady?: (info: { metrics?: { address: string; port: number } }) => void;
}

/** Human lines on a terminal: the event line format above, the level when it is not info. */
function prettyPcscf(rec: Record<string, unknown>): string {
  const { level, time, event, msg, ...rest } = rec;
  const lv = Number(level) >= 40 ? `${Number(level) >= 50 ? 'ERROR' : 'WARN'} ` : '';
  if (event === 'esp-dropped') return formatDrop(rest as unknown as EspDropEvent, new Date(String(time)));
  const line = formatEvent(
    String(event ?? 'log') as PcscfEventName,
    { ...rest, ...(msg !== undefined && { message: msg }) } as never,
    new Date(String(time)),
  );
  return lv ? line.replace(' ', ` ${lv}`) : line;
}

/** Starts the backend and the P-CSCF, logs events until `signal` aborts, then removes every SA. */
export async function runPcscf(a: PcscfArgs, r: RunOptions): Promise<void> {
  const log = createLogger({ level: a.logLevel, ...(a.json && { json: true }), ...(r.write && { write: r.write }), pretty: prettyPcscf });
  const clock = systemClock;
  // Metrics only when served: the SIP meter sees every message and the registration gauges keep
  // one entry per UE, a cost for nothing when nobody scrapes them.
  const served = a.metrics !== undefined;
  const registry = newRegistry('pcscf');
  const sip = served ? new SipMeter(registry, 'imsec_pcscf') : undefined;
  let ready = false;
  // The backend's lazy expiry and kernel lifetimes run on the P-CSCF's clock (SA lifetimes are in its time scale).
  // Issue 10 §5: every inbound ESP drop is counted; one line per reason and SPI, rate-limited.
  const drops = new EspDropReporter({
    now: () => clock.now(),
    emit: (e) =>
      e.event === 'esp-dropped'
        ? log.warn({ event: e.event, ...e.drop })
        : log.warn({ event: e.event, count: e.count, window_ms: e.windowMs }),
  });
  r.onDrops?.(drops);
  // Issue 13 §3: the state store first — its stored ports decide port_pc/port_ps when none are given.
  const opened =
    a.state === undefined
      ? undefined
      : openPcscfState({
          state: a.state,
          ...(a.stateKeyFile !== undefined && { stateKeyFile: a.stateKeyFile }),
          node: `${a.address}:${a.port}`,
          portC: a.portC,
          portS: a.portS,
          clock,
          onError: (what, e) => log.error({ event: 'state-error', what, error: e.message }, 'state store write failed'),
        });
  const ports = { portC: opened?.portC ?? a.portC, portS: opened?.portS ?? a.portS };
  let backend: Awaited<ReturnType<typeof openBackend>>;
  try {
    // xfrm with a state store: the kernel's SAs of the previous run are adopted, so its tag must be
    // the same run after run (from the node unless given) and nothing is removed before the restore.
    const node = `${a.address}:${a.port}`;
    const instance = a.xfrmInstance ?? (opened ? instanceOfNode(node) : undefined);
    backend = await openBackend(a.backend, {
      localIp: a.address,
      encapPort: a.encapPort,
      clock,
      ...(instance !== undefined && { instance }),
      ...(opened && { reconcile: false }),
      onDrop: (d, from) =>
        drops.note({
          reason: d.drop,
          from,
          ...(d.spi !== undefined && { spi: d.spi }),
          ...(d.seq !== undefined && { seq: d.seq }),
          ...(d.set && { set: d.set.id }),
        }),
    });
  } catch (e) {
    opened?.state.close();
    throw e;
  }
  let pcscf: Pcscf;
  let metrics: MetricsServer | undefined;
  try {
    pcscf = await Pcscf.start({
      address: a.address,
      port: a.port,
      portC: ports.portC,
      portS: ports.portS,
      scscf: a.scscf,
      backend,
      policy: a.policy,
      mode: a.mode,
      clock,
      regAwaitAuthMs: a.regAwaitAuthMs,
      limits: a.limits,
      ...(sip && { trace: sip.tracer() }),
      ...(opened && { state: opened.state }),
    });
  } catch (e) {
    await backend.close();
    opened?.state.close();
    throw e;
  }
  if (served) {
    // Restored registrations (--state) had their 'registered' event in the previous run.
    const restored =
      pcscf.restoredRegistrations > 0
        ? pcscf
            .registrations()
            .filter((v) => v.state === 'registered')
            .map((v) => v.impi)
        : [];
    registerPcscfMetrics({ registry, backend, drops, on: (name, fn) => pcscf.on(name, fn), registered: restored });
  }
  try {
    if (a.metrics !== undefined)
      metrics = await startMetricsServer({ listen: a.metrics, registry, ready: () => ready && !r.signal.aborted });
  } catch (e) {
    await pcscf.stop();
    await backend.close();
    opened?.state.close();
    throw e;
  }
  // The P-CSCF's own drops (unprotected packets on a protected port): one record per reason per interval.
  const own = new DropLog(log, r.dropLogIntervalMs ?? 10_000);
  for (const name of PCSCF_EVENT_NAMES) {
    if (name === 'dropped') continue;
    // Not listening at all when the level is off: a per-registration event then costs nothing.
    const level = name === 'rejected' || name === 'sa-error' ? 'warn' : 'info';
    if (!log.isLevelEnabled(level)) continue;
    pcscf.on(name, (ev) => (name === 'sa-deleted' && 'error' in ev ? undefined : log[level]({ event: name, ...ev })));
  }
  // A set the backend failed to remove may leave kernel SAs behind: never silent, whatever the level.
  pcscf.on('sa-deleted', (ev) => ev.error !== undefined && log.error({ event: 'sa-removal-failed', ...ev }));
  // SIGUSR2: one stats line on stderr after a forced GC (npm run bench:load asks for it).
  const unstats = statsOnSignal('pcscf', () => ({ live_sa_sets: backend.sets.filter((s) => s.live).length }));
  pcscf.on('dropped', (ev) => own.note(ev.reason, 1, { port: ev.port }));
  const stopCompaction = startCompaction(a, pcscf, log);
  // Inside the SAs: UDP always; TCP too when the backend's SAs carry it (xfrm, spec digest §6.2).
  const inside = backend.openTcp ? 'udp+tcp' : 'udp';
  const hello = {
    address: a.address,
    port: pcscf.port,
    port_c: pcscf.portC,
    port_s: pcscf.portS,
    encap_port: backend.encapPort,
    scscf: `${a.scscf.address}:${a.scscf.port}`,
    mode: a.mode,
    backend: a.backend,
    protected_transports: inside,
    ...(opened && {
      state: opened.state.kind,
      state_keys: opened.state.keysSealed ? 'aes-256-gcm' : 'plain (0600 file)',
      restored_registrations: pcscf.restoredRegistrations,
      ...(pcscf.restoreReport.orphans && {
        orphans_removed: pcscf.restoreReport.orphans.deletedSas + pcscf.restoreReport.orphans.deletedPolicies,
      }),
    }),
    ...(metrics && { metrics: `${metrics.address.includes(':') ? `[${metrics.address}]` : metrics.address}:${metrics.port}` }),
  };
  log.info({ event: 'listening', ...hello }, 'pcscf listening');
  ready = true;
  r.onReady?.({ ...(metrics && { metrics: { address: metrics.address, port: metrics.port } }) });
  if (!r.signal.aborted) await new Promise<void>((resolve) => r.signal.addEventListener('abort', () => resolve(), { once: true }));
  ready = false;
  unstats();
  stopCompaction();
  try {
    await pcscf.stop();
    await backend.close();
  } finally {
    opened?.state.close();
    own.close();
    await metrics?.close();
  }
  log.info(
    { event: 'stopped' },
    !opened
      ? 'pcscf stopped, SAs removed'
      : backend.handOver
        ? 'pcscf stopped, SAs left in the kernel and registrations kept in the state store for the next start'
        : 'pcscf stopped, SAs removed here, registrations kept in the state store',
  );
}

/**
 * Issue 9 §2: one compacting GC after each burst of new registrations ('registered' events: a
 * refresh without a new challenge is not one), once they have been quiet for a while; and, at most
 * once per 10 minutes, when old space stays committed far beyond its live size under traffic that
 * never lets the process go quiet (100k UEs refreshing every minute).
 */
function startCompaction(a: PcscfArgs, pcscf: Pcscf, log: ReturnType<typeof createLogger>): () => void {
  if (a.heapCompactionQuietMs === 0) return () => {};
  let registered = 0;
  pcscf.on('registered', () => registered++);
  const mb = (n: number) => +(n / 1e6).toFixed(1);
  // The C heap after the GC (glibc malloc_trim, in the optional native addon): 'absent' without it.
  const trim = (t: TrimReport | undefined) =>
    t === undefined
      ? 'absent'
      : 'error' in t
        ? { error: t.error }
        : { released: t.released, rss_mb: { before: mb(t.rssBefore), after: mb(t.rssAfter) } };
  return startBurstCompaction({
    clock: systemClock,
    count: () => registered,
    mallocTrim: mallocTrimFunction(),
    policy: { ...DEFAULT_BURST_COMPACTION, quietMs: a.heapCompactionQuietMs },
    onCompacted: (r, n, reason) =>
      log.info(
        {
          event: 'heap-compacted',
          reason,
          new_registrations: n,
          old_space_mb: { before: mb(r.oldSpaceBefore), after: mb(r.oldSpaceAfter), used: mb(r.oldSpaceUsed) },
          rss_mb: { before: mb(r.rssBefore), after: mb(r.rssAfter) },
          malloc_trim: trim(r.trim),
          pause_ms: Math.round(r.pauseMs),
          cpu_ms: Math.round(r.cpuMs),
        },
        reason === 'burst' ? 'heap compacted after a registration burst' : 'heap compacted: old space fragmented under steady traffic',
      ),
    onUnavailable: () => log.warn({ event: 'heap-compaction-unavailable' }, 'heap compaction off: this process cannot reach gc'),
  });
}

const HELP = `
Mode: auto (default) picks mod=UDP-enc-tun when the top Via of the unprotected REGISTER differs from
  its packet source (a NAT, 33.203 Annex M), mod=trans otherwise; udp-enc-tun / trans force that mode
  when the UE offered it. mod=trans with the userspace backend needs CAP_NET_RAW (raw ESP sockets).
Backend: userspace (default; SIP over UDP inside the SAs) or xfrm (Linux kernel SAs over netlink;
  needs CAP_NET_ADMIN and a kernel with ESP: esp4/esp6, xfrm_user; SIP over UDP and TCP inside).
Policy: comma-separated alg/ealg pairs, most preferred first (default ${DEFAULT_ALLOW.map(formatPair).join(',')}).
Port 0 (for --listen, --port-c, --port-s) picks a free port; the line "pcscf listening" says which.

Example:
  imsec pcscf --listen 127.0.0.1:5060 --port-c 5064 --port-s 5066 --scscf 127.0.0.1:6060 --mode udp-enc-tun
  imsec pcscf --config /etc/imsec/pcscf.yaml --log-level debug   (flags override the file)
  imsec pcscf --config /etc/imsec/pcscf.yaml --print-config
`;

export function registerPcscf(program: Command): void {
  const cmd = program
    .command('pcscf')
    .description('run the P-CSCF (33.203 access edge: sec-agree, IPsec SAs, NAT detection) until SIGINT/SIGTERM')
    .option('--listen <addr:port>', "plain SIP address and port (UEs' first REGISTER, S-CSCF side); required")
    .option('--port-c <n>', 'protected client port port_pc; required')
    .option('--port-s <n>', 'protected server port port_ps; required')
    .option('--scscf <addr:port>', 'the S-CSCF; required')
    .option('--mode <mode>', 'auto | udp-enc-tun | trans (default auto)')
    .option('--policy <list>', 'accepted alg/ealg pairs in preference order')
    .option('--allow-deprecated', 'also accept hmac-md5-96 and des-ede3-cbc')
    .option('--encap-port <n>', `local ESP-in-UDP port (RFC 3948), default ${NAT_T_PORT}`)
    .option('--reg-await-auth <s>', `lifetime of a temporary SA set in seconds, default ${REG_AWAIT_AUTH_MS / 1000}`)
    .option(
      '--max-pending-per-source <n>',
      `registrations waiting for authentication from one address; more get 503 (default ${DEFAULT_PENDING_LIMITS.maxPendingPerSource})`,
    )
    .option('--max-pending <n>', `registrations waiting for authentication in total (default ${DEFAULT_PENDING_LIMITS.maxPendingTotal})`)
    .option(
      '--max-in-flight-per-source <n>',
      `unprotected REGISTERs from one address waiting at the S-CSCF; more are dropped unread (default ${DEFAULT_PENDING_LIMITS.maxInFlightPerSource})`,
    )
    .option(
      '--challenge-rate <n>',
      `new challenges (vectors) per second, burst twice that (default ${DEFAULT_PENDING_LIMITS.challengesPerSecond})`,
    )
    .option('--backend <b>', `${BACKEND_HELP} (default userspace)`)
    .option('--xfrm-instance <n>', XFRM_INSTANCE_HELP)
    .option('--json', 'log JSON lines even on a terminal (the default when stdout is not one)')
    .option('--metrics <addr:port>', 'serve Prometheus /metrics, /healthz and /readyz on this address')
    .option('--log-level <level>', 'fatal | error | warn | info | debug | trace | silent (default info)')
    .option('--state <file|url>', 'keep registrations and SA sets in this store (SQLite file, or postgres://…) and restore them at start')
    .option(
      '--state-key-file <file>',
      'AES-256 key (64 hex digits) sealing the stored ESP keys; else IMSEC_STATE_KEY, else stored unsealed in the 0600 file',
    )
    .option(
      '--heap-compaction-quiet <s>',
      `after a burst of new registrations (${DEFAULT_BURST_COMPACTION.minNew}+), compact the heap once when they have been quiet this long (default ${DEFAULT_BURST_COMPACTION.quietMs / 1000}; at most once per ${DEFAULT_BURST_COMPACTION.minIntervalMs / 60_000} min)`,
    )
    .option(
      '--no-heap-compaction',
      'never compact the heap: neither after a registration burst nor when old space stays fragmented under steady traffic (2x its live size and 128 MiB over it, at most once per 10 min)',
    );
  addConfigOptions(cmd)
    .addHelpText('after', HELP)
    .action(async (_o: unknown, self: Command) => {
      const config = resolveConfig(self, PcscfConfigSchema);
      if (config === undefined) return;
      const args = pcscfArgsFromConfig(config);
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const unguard = guardProcess();
      try {
        await runPcscf(args, { signal: ac.signal });
      } finally {
        unguard();
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
